//! Argo CD integration through the real binary: settings from a Kubernetes Secret (`-s`, against
//! an in-repo API server), `ARGOCD_ENV_` precedence, pipeline mode and `ARGOCD_EXEC_TIMEOUT`.

mod support;

use std::process::Output;

use support::kube::KubeServer;
use support::output::{stderr, stdout};
use support::run::Run;

const VALUES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/values.yaml");
const INPUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/apps/json/app.json");
const PLACEHOLDER_DOC: &str =
    "kind: Secret\nstringData:\n  user: <path:secret/data/app#username>\n";
const USER: &str = "orders-svc-s3cr3t-appuser";

/// Runs the binary with a cleared environment plus `env`, from the crate root.
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    Run::new(args)
        .env("HOME", "/nonexistent")
        .envs(env)
        .output()
}

/// A render command printing `text`, as `helm template` would.
fn render(text: &str) -> Vec<String> {
    vec!["printf".into(), "%s".into(), text.into()]
}

fn generate_piped(env: &[(&str, &str)], command: &[String]) -> Output {
    let mut args = vec!["generate", "--"];
    args.extend(command.iter().map(String::as_str));
    run(env, &args)
}

const FILE_BACKEND: [(&str, &str); 2] = [("AVP_TYPE", "file"), ("AVP_VALUES_FILE", VALUES)];

#[test]
fn settings_come_from_a_secret_in_the_default_namespace() {
    let server = KubeServer::start();
    server.add_secret(
        "argocd",
        "secretsubst",
        &[("AVP_TYPE", "file"), ("avp_values_file", VALUES)],
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let out = run(
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["generate", "-s", "secretsubst", INPUT],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).is_empty() && !stdout(&out).contains("<path:"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        server.requests(),
        ["/api/v1/namespaces/argocd/secrets/secretsubst"]
    );
}

#[test]
fn a_secret_may_carry_backend_profiles_and_the_config_file_wins_a_profile_whole() {
    let server = KubeServer::start();
    let backends = format!(
        "team-file:\n  AVP_TYPE: file\n  AVP_VALUES_FILE: {VALUES}\nother:\n  AVP_TYPE: vault\n"
    );
    server.add_secret("argocd", "secretsubst", &[("backends", &backends)]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let input = dir.path().join("in.yaml");
    std::fs::write(
        &input,
        "kind: Secret\nstringData:\n  user: <path:team-file:secret/data/app#username>\n",
    )
    .unwrap();
    let out = run(
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["generate", "-s", "secretsubst", input.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("user: {USER}")),
        "{}",
        stdout(&out)
    );
    // The -c file's `team-file` replaces the Secret's whole: it has no values file.
    let config = dir.path().join("settings.yaml");
    std::fs::write(&config, "backends:\n  team-file:\n    AVP_TYPE: file\n").unwrap();
    let out = run(
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &[
            "generate",
            "-c",
            config.to_str().unwrap(),
            "-s",
            "secretsubst",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(
        stderr(&out),
        "error: file (team-file): AVP_VALUES_FILE must be set when AVP_TYPE is file\n"
    );
}

#[test]
fn settings_come_from_a_secret_in_another_namespace() {
    let server = KubeServer::start();
    server.add_secret(
        "team-a",
        "cfg",
        &[("AVP_TYPE", "file"), ("AVP_VALUES_FILE", VALUES)],
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let out = run(
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["generate", "-s", "team-a:cfg", INPUT],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_missing_or_forbidden_secret_is_a_clear_error() {
    let server = KubeServer::start();
    server.forbid("locked");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
    let out = run(&env, &["generate", "-s", "nope", INPUT]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: cannot read Secret argocd/nope: 404 secrets \"nope\" not found\n"
    );
    let out = run(&env, &["generate", "-s", "locked:cfg", INPUT]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: cannot read Secret locked/cfg: 403 secrets \"cfg\" is forbidden: User \"system:serviceaccount:argocd:argocd-repo-server\" cannot get resource \"secrets\" in API group \"\" in the namespace \"locked\"\n"
    );
}

#[test]
fn the_environment_and_the_config_file_beat_the_secret() {
    let server = KubeServer::start();
    server.add_secret(
        "argocd",
        "cfg",
        &[
            ("AVP_TYPE", "nonsense"),
            ("AVP_VALUES_FILE", "/nowhere.yaml"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let file = dir.path().join("settings.env");
    std::fs::write(&file, format!("AVP_VALUES_FILE={VALUES}\n")).unwrap();
    let env = [
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("AVP_TYPE", "file"),
    ];
    let out = run(
        &env,
        &["generate", "-s", "cfg", "-c", file.to_str().unwrap(), INPUT],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn argocd_env_settings_beat_plain_environment_variables() {
    let out = run(
        &[
            ("AVP_TYPE", "not-valid-type"),
            ("ARGOCD_ENV_AVP_TYPE", "file"),
            ("AVP_VALUES_FILE", VALUES),
        ],
        &["generate", INPUT],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &[
            ("AVP_TYPE", "file"),
            ("AVP_VALUES_FILE", VALUES),
            ("ARGOCD_ENV_AVP_VALUES_FILE", "/nowhere.yaml"),
        ],
        &["generate", INPUT],
    );
    assert_eq!(
        stderr(&out),
        "error: values file /nowhere.yaml: cannot read: No such file or directory (os error 2)\n"
    );
}

#[test]
fn pipeline_mode_passes_a_good_render_through() {
    let out = generate_piped(&FILE_BACKEND, &render(PLACEHOLDER_DOC));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        PLACEHOLDER_DOC.replace("<path:secret/data/app#username>", USER)
    );
}

#[test]
fn pipeline_mode_fails_with_the_renderers_status_and_passes_its_stderr() {
    let script = "echo 'Error: chart not found' >&2; printf 'kind: A\\n'; exit 7";
    let out = generate_piped(&FILE_BACKEND, &["sh".into(), "-c".into(), script.into()]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!("Error: chart not found\nerror: `sh -c {script}` failed with exit status 7\n")
    );
}

#[test]
fn pipeline_mode_fails_on_an_empty_render() {
    let out = generate_piped(&FILE_BACKEND, &["true".into()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no Kubernetes manifests in <true>"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pipeline_commands_see_the_argocd_app_variables() {
    let script = "printf 'kind: ConfigMap\\nmetadata:\\n  name: %s\\n  namespace: %s\\n  labels:\\n    project: %s\\n' \"$ARGOCD_APP_NAME\" \"$ARGOCD_APP_NAMESPACE\" \"$ARGOCD_APP_PROJECT_NAME\"";
    let env = [
        ("ARGOCD_APP_NAME", "orders"),
        ("ARGOCD_APP_NAMESPACE", "shop"),
        ("ARGOCD_APP_PROJECT_NAME", "retail"),
    ];
    let out = generate_piped(&env, &["sh".into(), "-c".into(), script.into()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "kind: ConfigMap\nmetadata:\n  name: orders\n  namespace: shop\n  labels:\n    project: retail\n"
    );
}

#[test]
fn a_render_outlasting_argocd_exec_timeout_is_stopped_with_a_clear_error() {
    let env = [("ARGOCD_EXEC_TIMEOUT", "2s")];
    let out = generate_piped(&env, &["sleep".into(), "30".into()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: gave up waiting for `sleep 30`: ARGOCD_EXEC_TIMEOUT (2s) is about to end the plugin\n"
    );
}

#[test]
fn a_non_utf8_environment_variable_is_ignored_not_fatal() {
    use std::os::unix::ffi::OsStrExt as _;
    let out = Run::new(["generate", INPUT])
        .env_remove("PATH")
        .env_remove("HOME")
        .env("NOT_UTF8", std::ffi::OsStr::from_bytes(b"\xff"))
        .envs(&FILE_BACKEND)
        .output();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_kubernetes_api_that_never_answers_ends_at_the_deadline() {
    let server = KubeServer::start();
    server.add_secret(
        "argocd",
        "cfg",
        &[("AVP_TYPE", "file"), ("AVP_VALUES_FILE", VALUES)],
    );
    server.stall();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let out = run(
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("ARGOCD_EXEC_TIMEOUT", "3s"),
        ],
        &["generate", "-s", "cfg", INPUT],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: gave up waiting for Secret argocd/cfg from the Kubernetes API: ARGOCD_EXEC_TIMEOUT (3s) is about to end the plugin\n"
    );
}

#[test]
fn check_runs_the_renderer_and_reports_its_placeholders() {
    let text = "kind: Secret\nmetadata:\n  name: db\nstringData:\n  user: <path:secret/data/app#username>\n  gone: <path:secret/data/app#nope>\n";
    let mut args = vec!["check".to_owned(), "--".to_owned()];
    args.extend(render(text));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&FILE_BACKEND, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
LOCATION                                      PLACEHOLDER                      PROFILE  STATUS       REASON
<printf>: doc 1 (Secret/db): stringData.user  <path:secret/data/app#username>  default  ok
<printf>: doc 1 (Secret/db): stringData.gone  <path:secret/data/app#nope>      default  missing-key  missing value: key \"nope\" not found in secret/data/app
2 placeholders: 1 ok, 1 failed
"
    );
    assert!(!stdout(&out).contains(USER));
    // The renderer's failure is check's failure, with its status and stderr.
    let out = run(
        &FILE_BACKEND,
        &[
            "check",
            "--",
            "sh",
            "-c",
            "echo 'Error: chart not found' >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("Error: chart not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_reads_its_settings_from_a_secret() {
    let server = KubeServer::start();
    server.add_secret(
        "argocd",
        "secretsubst",
        &[("AVP_TYPE", "file"), ("avp_values_file", VALUES)],
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
    let out = run(
        &env,
        &["check", "--format", "json", "-s", "secretsubst", INPUT],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:?}");
    assert!(!stdout(&out).contains(USER));
    // An unreadable Secret is a setup failure: no report, exit 1.
    let out = run(&env, &["check", "-s", "nope", INPUT]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: cannot read Secret argocd/nope: 404 secrets \"nope\" not found\n"
    );
}
