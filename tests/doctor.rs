//! `secretsubst doctor` run as a person would in a sidecar: settings with their sources and no
//! credential, then each profile checked against the Vault test server, the values file and a
//! Kubernetes API, with the verdict and hint of every failure.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::json;
use support::kube::KubeServer;
use support::output::{stderr, stdout};
use support::run::Run;
use support::vault::{Policy, VaultServer};

const ROOT: &str = "root-token-s3cr3t";
/// Every credential and value these tests use: none may reach either stream.
const SECRETS: &[&str] = &[
    ROOT,
    "reader-s3cr3t",
    "wrong-s3cr3t",
    "role-s3cr3t",
    "secret-id-s3cr3t",
    "app-s3cr3t",
    "typo-s3cr3t",
];

fn server() -> support::vault::Builder {
    VaultServer::builder()
        .kv2("secret")
        .kv1("legacy")
        .put("secret/app", json!({"password": "app-s3cr3t"}))
        .token(ROOT, Policy::Root)
}

/// `doctor ARGS` with verbose logs against `server` (Vault with token auth unless `env` says
/// otherwise).
fn doctor(server: &VaultServer, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = Run::new(["doctor", "--verbose-sensitive-output"])
        .args(args)
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", server.addr())
        .env("AVP_AUTH_TYPE", "token")
        .envs(env)
        .output();
    assert_no_secret(&out);
    out
}

/// Asserts that stdout holds `text`.
fn assert_shows(out: &Output, text: &str) {
    let all = stdout(out);
    assert!(all.contains(text), "{all}");
}

fn assert_no_secret(out: &Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
}

/// The output with the run's own addresses and directories named.
fn text(out: &Output, replace: &[(&str, &str)]) -> String {
    let mut text = stdout(out);
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    text
}

/// The value and source shown for setting `name` in the first block that lists it.
fn setting<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    line.trim()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .skip(1)
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn doctor_shows_each_setting_with_its_source_and_checks_every_profile() {
    let vault = server().start();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "team.yaml", "team/db:\n  pw: x\n");
    write(
        dir.path(),
        "avp.yaml",
        &format!(
            "VAULT_TOKEN: {ROOT}\nAVP_ROLEID: typo-s3cr3t\nbackends:\n  team:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: team.yaml\n    VAULT_ADDR: https://vault.example\n"
        ),
    );
    let out = Run::new(["doctor", "-c", "avp.yaml"])
        .dir(dir.path())
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", vault.addr())
        .env("ARGOCD_ENV_AVP_AUTH_TYPE", "token")
        .env("ARGOCD_EXEC_TIMEOUT", "30s")
        .output();
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // Ephemeral ports have five digits: the columns stay aligned.
    let port = vault.port().to_string();
    insta::assert_snapshot!(
        "doctor_vault_and_file",
        text(&out, &[(&format!(":{port}"), ":PORT_")])
    );
    // Only Vault's health check, one token lookup and one mount listing: no secret is read.
    let paths: Vec<String> = vault.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/sys/health",
            "/v1/auth/token/lookup-self",
            "/v1/sys/internal/ui/mounts"
        ]
    );
}

#[test]
fn doctor_in_json_gives_the_same_report_as_one_object() {
    let vault = server().start();
    let out = doctor(&vault, &[("VAULT_TOKEN", ROOT)], &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let profile = &report["profiles"][0];
    assert_eq!(profile["name"], "default");
    assert_eq!(profile["status"], "ok");
    let token = profile["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "VAULT_TOKEN")
        .unwrap();
    assert_eq!(
        token,
        &json!({"name": "VAULT_TOKEN", "value": "[redacted]", "source": "env", "note": null})
    );
    let steps: Vec<(&str, &str)> = profile["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["step"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("connect", "ok"), ("login", "ok"), ("kv", "ok")]);
    assert_eq!(
        profile["checks"][2]["detail"],
        "legacy/ (kv v1), secret/ (kv v2)"
    );
}

#[test]
fn a_refused_token_fails_the_login_with_a_hint_and_exit_1() {
    let vault = server().start();
    let out = doctor(&vault, &[("VAULT_TOKEN", "wrong-s3cr3t")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("\nerror: doctor: 1 of 1 profiles failed\n"));
    let text = stdout(&out);
    assert_shows(
        &out,
        "  login    FAILED  403 permission denied; invalid token: the token lookup (the token is invalid, expired or revoked)\n                   hint: VAULT_TOKEN is not valid here: expired, revoked, or from another Vault or namespace (VAULT_NAMESPACE)\n",
    );
    assert!(text.ends_with("\n1 profile: 0 ok, 1 failed\n"), "{text}");
    // The KV check needs a token: it is not attempted.
    assert!(!text.contains("  kv "), "{text}");
}

#[test]
fn an_approle_login_shows_the_tokens_policies_and_a_wrong_secret_id_names_the_settings() {
    let vault = server()
        .approle(
            "approle",
            "role-s3cr3t",
            "secret-id-s3cr3t",
            Policy::Read(vec!["secret/data/app".into()]),
        )
        .start();
    let approle = |secret_id: &str| {
        doctor(
            &vault,
            &[
                ("AVP_AUTH_TYPE", "approle"),
                ("AVP_ROLE_ID", "role-s3cr3t"),
                ("AVP_SECRET_ID", secret_id),
            ],
            &[],
        )
    };
    let out = approle("secret-id-s3cr3t");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert_shows(
        &out,
        "  login    ok  approle at auth/approle: policies default, read; expires in ",
    );
    assert_shows(&out, "  kv       ok  secret/ (kv v2)\n");
    assert_eq!(setting(&text, "AVP_SECRET_ID"), ["[redacted]", "env"]);
    let out = approle("wrong-s3cr3t");
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "hint: check AVP_ROLE_ID and AVP_SECRET_ID (a secret_id may have expired); and that the auth method is mounted at auth/approle (AVP_MOUNT_PATH, VAULT_NAMESPACE)",
    );
}

#[test]
fn an_address_nobody_listens_on_is_named_with_its_hint() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", format!("http://127.0.0.1:{port}"))
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_TOKEN", ROOT)
        .output();
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_shows(
        &out,
        "  connect  FAILED  cannot reach Vault for the health check: client error (Connect): tcp connect error: Connection refused (os error 111)\n                   hint: nothing listens at VAULT_ADDR: check its host and port\n",
    );
    assert!(!text.contains("  login "), "{text}");
}

#[test]
fn tls_failures_name_the_ca_or_the_scheme() {
    let tls = server().tls().start();
    let out = doctor(&tls, &[("VAULT_TOKEN", ROOT)], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_shows(&out, "invalid peer certificate: UnknownIssuer");
    assert_shows(
        &out,
        "hint: VAULT_CACERT (or VAULT_CAPATH) must hold the CA that signed Vault's certificate",
    );
    let ca = tls.tls().unwrap().ca_cert.display().to_string();
    let out = doctor(&tls, &[("VAULT_TOKEN", ROOT), ("VAULT_CACERT", &ca)], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // https:// towards a server that speaks plain HTTP.
    let plain = server().start();
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", plain.addr().replace("http://", "https://"))
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_TOKEN", ROOT)
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "hint: the server answered without TLS: VAULT_ADDR says https:// where it speaks plain HTTP",
    );
}

#[test]
fn the_kv_check_names_mounts_the_token_cannot_use_and_a_forced_wrong_version() {
    let vault = server()
        .token("reader-s3cr3t", Policy::Read(vec!["cubbyhole/".into()]))
        .start();
    let out = doctor(&vault, &[("VAULT_TOKEN", "reader-s3cr3t")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "  kv       FAILED  the token can use no KV secrets engine\n                   hint: grant its policy read access to paths under a KV mount, or check VAULT_NAMESPACE\n",
    );
    let v2_only = VaultServer::builder()
        .kv2("secret")
        .token(ROOT, Policy::Root)
        .start();
    let out = doctor(
        &v2_only,
        &[("VAULT_TOKEN", ROOT), ("AVP_KV_VERSION", "1")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "  kv       FAILED  AVP_KV_VERSION is v1 but the token's KV mounts are secret/ (kv v2)\n                   hint: unset AVP_KV_VERSION to detect each mount's version\n",
    );
}

#[test]
fn invalid_settings_of_a_profile_fail_its_check_and_the_others_are_still_checked() {
    let vault = server().start();
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "avp.yaml",
        "backends:\n  broken:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: /nonexistent/values.yaml\n  odd:\n    AVP_TYPE: nosuchbackend\n",
    );
    let out = doctor(&vault, &[("VAULT_TOKEN", ROOT)], &["-c", &config]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with("\nerror: doctor: 2 of 3 profiles failed\n"));
    let text = stdout(&out);
    assert_shows(
        &out,
        "  settings  FAILED  values file /nonexistent/values.yaml: cannot read: No such file or directory (os error 2)\n",
    );
    assert!(
        text.contains("  settings  FAILED  Must provide a supported Vault Type, received nosuchbackend (valid types: "),
        "{text}"
    );
    assert!(text.ends_with("\n3 profiles: 1 ok, 2 failed\n"), "{text}");
}

#[test]
fn profile_flags_select_what_is_checked_and_an_unknown_name_is_an_error() {
    let vault = server().start();
    let dir = tempfile::tempdir().unwrap();
    let values = write(dir.path(), "v.yaml", "a:\n  b: c\n");
    let config = write(
        dir.path(),
        "avp.yaml",
        &format!("backends:\n  team:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: {values}\n"),
    );
    let out = doctor(
        &vault,
        &[("VAULT_TOKEN", "wrong-s3cr3t")],
        &["-c", &config, "--profile", "team"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("profile default"),
        "{}",
        stdout(&out)
    );
    assert!(vault.requests().is_empty());
    let out = doctor(&vault, &[], &["-c", &config, "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: doctor: no profile \"nope\" (configured: default, team)\n"
    );
}

#[test]
fn a_default_profile_without_a_type_beside_named_ones_is_unused_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(dir.path(), "v.yaml", "a:\n  b: c\n");
    let config = write(
        dir.path(),
        "avp.yaml",
        &format!("backends:\n  team:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: {values}\n"),
    );
    let out = Run::new(["doctor", "-c", &config]).output();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert_shows(
        &out,
        "profile default (no AVP_TYPE)\n  AVP_MAX_CONCURRENCY  128                        default\n  AVP_MAX_RETRIES      VAULT_MAX_RETRIES, else 2  default\n  backend  unused  AVP_TYPE is not set: only placeholders with a profile prefix or in annotated manifests resolve\n",
    );
    assert!(
        text.ends_with("\n2 profiles: 1 ok, 0 failed, 1 unused\n"),
        "{text}"
    );
    // Without named profiles, no backend at all is a failure.
    let out = Run::new(["doctor"]).output();
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "  settings  FAILED  Must provide a supported Vault Type, received nothing: AVP_TYPE is not set",
    );
}

#[test]
fn an_unreadable_settings_secret_is_reported_and_the_rest_still_checked() {
    let vault = server().start();
    let kube = KubeServer::start();
    kube.forbid("locked");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path());
    let out = doctor(
        &vault,
        &[
            ("VAULT_TOKEN", ROOT),
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ],
        &["-s", "locked:avp"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("run\n  ARGOCD_EXEC_TIMEOUT  90s  default\n  secret  FAILED  cannot read Secret locked/avp: 403 secrets \"avp\" is forbidden: "),
        "{text}"
    );
    assert_shows(
        &out,
        "hint: the repo-server's service account needs get on that Secret (a Role and RoleBinding in its namespace)",
    );
    assert!(
        text.ends_with("\n1 profile: 1 ok, 0 failed; the run's own checks failed\n"),
        "{text}"
    );
    assert!(stderr(&out).ends_with("\nerror: doctor: the run's own checks failed\n"));
    // Settings from a readable Secret name it as their source.
    kube.add_secret("argocd", "avp", &[("VAULT_TOKEN", ROOT)]);
    let out = Run::new(["doctor", "-s", "avp"])
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", vault.addr())
        .env("AVP_AUTH_TYPE", "token")
        .env("KUBECONFIG", kubeconfig.to_str().unwrap())
        .output();
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        setting(&stdout(&out), "VAULT_TOKEN"),
        ["[redacted]", "Secret argocd/avp"]
    );
}

#[test]
fn a_server_that_never_answers_is_cut_off_at_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and reads nothing.
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(4) {
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(10));
    });
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", format!("http://{addr}"))
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_TOKEN", ROOT)
        .env("ARGOCD_EXEC_TIMEOUT", "3s")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert_shows(
        &out,
        "  answer  FAILED  gave up waiting for the backend's answer: ARGOCD_EXEC_TIMEOUT (3s) is about to end the plugin\n",
    );
    drop(held);
}

#[test]
fn sops_manifests_without_an_identity_fail_the_runs_own_check() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(dir.path(), "v.yaml", "a:\n  b: c\n");
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", &values)
        .env("AVP_SOPS_MANIFESTS", "decrypt")
        .output();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("  sops manifests  FAILED  no age identity found (looked in "),
        "{text}"
    );
    let key = format!(
        "{}/testdata/sops/keys/test.agekey",
        support::run::CRATE_ROOT
    );
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", &values)
        .env("AVP_SOPS_MANIFESTS", "decrypt")
        .env("SOPS_AGE_KEY_FILE", &key)
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_shows(
        &out,
        &format!("  sops manifests  ok  1 identity from SOPS_AGE_KEY_FILE {key}\n"),
    );
}
