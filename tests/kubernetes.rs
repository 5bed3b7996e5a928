//! The `kubernetessecret` backend against the Kubernetes API test server: keys of Secrets, the
//! namespace allow-list, errors, retries, request counts, doctor, and no value on stderr.

mod support;

use std::process::Output;

use support::http::Reply;
use support::kube::KubeServer;
use support::output::{assert_failure, assert_output, stderr, stdout};
use support::run::Run;

const VALUES: &[&str] = &["db-s3cr3t", "team-s3cr3t", support::kube::TOKEN];

/// A cluster whose kubeconfig context is in `argocd`, the plugin's own namespace.
struct Cluster {
    server: KubeServer,
    kubeconfig: String,
    _dir: tempfile::TempDir,
}

fn cluster() -> Cluster {
    let server = KubeServer::start();
    server.add_secret(
        "argocd",
        "db",
        &[("password", "db-s3cr3t"), ("port", "5432")],
    );
    server.add_secret("team-a", "api", &[("token", "team-s3cr3t")]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server
        .kubeconfig_in(dir.path(), "argocd")
        .display()
        .to_string();
    Cluster {
        server,
        kubeconfig,
        _dir: dir,
    }
}

impl Cluster {
    fn run(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
        let out = Run::new(args)
            .arg("--verbose-sensitive-output")
            .stdin(input)
            .env("AVP_TYPE", "kubernetessecret")
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(env)
            .output();
        let err = stderr(&out);
        for value in VALUES {
            assert!(!err.contains(value), "stderr leaks {value:?}: {err}");
        }
        out
    }

    fn generate(&self, env: &[(&str, &str)], input: &str) -> Output {
        self.run(&["generate", "-"], env, input)
    }
}

const SECRET: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n";

#[test]
fn keys_of_a_secret_in_the_plugins_namespace_are_read_with_one_get() {
    let c = cluster();
    let input = format!(
        "{SECRET}  a: <path:db#password>\n  b: <path:argocd:db#password>\n  c: postgres://u:<path:db#password>@h:<path:db#port>/x\n"
    );
    let out = c.generate(&[], &input);
    assert_output(
        &out,
        &format!("{SECRET}  a: db-s3cr3t\n  b: db-s3cr3t\n  c: postgres://u:db-s3cr3t@h:5432/x\n"),
    );
    // `db` and `argocd:db` are one Secret, read once.
    assert_eq!(
        c.server.requests(),
        ["/api/v1/namespaces/argocd/secrets/db"]
    );
}

#[test]
fn another_namespace_needs_the_allow_list_and_is_refused_without_a_request() {
    let c = cluster();
    let input = format!("{SECRET}  t: <path:team-a:api#token>\n");
    let out = c.generate(&[], &input);
    let err = assert_failure(&out, VALUES);
    assert!(
        err.contains("error: <stdin>: doc 1 (Secret/s): stringData.t: <path:team-a:api#token>: kubernetessecret: namespace team-a may not be read (only the plugin's own namespace argocd: list others in AVP_K8S_SECRET_NAMESPACES)"),
        "{err}"
    );
    assert!(c.server.requests().is_empty());
    let allowed = [("AVP_K8S_SECRET_NAMESPACES", "team-a, argocd")];
    assert_output(
        &c.generate(&allowed, &input),
        &format!("{SECRET}  t: team-s3cr3t\n"),
    );
    // A list without the own namespace refuses it too.
    let only_team = [("AVP_K8S_SECRET_NAMESPACES", "team-a")];
    let err = assert_failure(
        &c.generate(&only_team, &format!("{SECRET}  a: <path:db#password>\n")),
        VALUES,
    );
    assert!(
        err.contains("kubernetessecret: namespace argocd may not be read (AVP_K8S_SECRET_NAMESPACES allows team-a)"),
        "{err}"
    );
}

#[test]
fn missing_secrets_keys_and_forbidden_namespaces_are_named() {
    let c = cluster();
    c.server.forbid("locked");
    let env = [("AVP_K8S_SECRET_NAMESPACES", "argocd,locked")];
    let input =
        format!("{SECRET}  a: <path:nothing#k>\n  b: <path:db#nope>\n  c: <path:locked:x#k>\n");
    let err = assert_failure(&c.generate(&env, &input), VALUES);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        lines,
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:nothing#k>: kubernetessecret: Secret argocd/nothing: 404 secrets \"nothing\" not found",
            "error: <stdin>: doc 1 (Secret/s): stringData.b: <path:db#nope>: missing value: key \"nope\" not found in argocd:db",
            "error: <stdin>: doc 1 (Secret/s): stringData.c: <path:locked:x#k>: kubernetessecret: Secret locked/x: 403 secrets \"x\" is forbidden: User \"system:serviceaccount:argocd:argocd-repo-server\" cannot get resource \"secrets\" in API group \"\" in the namespace \"locked\"",
        ]
    );
    // Neither a 404 nor a 403 is retried.
    assert_eq!(
        c.server
            .http()
            .count("GET", "/api/v1/namespaces/argocd/secrets/nothing"),
        1
    );
    assert_eq!(
        c.server.http().count("GET", "/api/v1/namespaces/locked/"),
        1
    );
}

#[test]
fn a_server_error_is_retried_and_binary_values_keep_their_bytes() {
    let c = cluster();
    c.server
        .add_secret_bytes("argocd", "bin", &[("key", &[0, 0xff, 1])]);
    c.server.http().fail_next(
        "/api/v1/namespaces/argocd/secrets/bin",
        1,
        Reply::json(
            503,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server is currently unable to handle the request", "reason": "ServiceUnavailable", "code": 503}),
        ),
    );
    let input = "kind: Secret\ndata:\n  key: <path:bin#key | base64encode>\n";
    assert_output(
        &c.generate(&[], input),
        "kind: Secret\ndata:\n  key: AP8B\n",
    );
    assert_eq!(
        c.server
            .http()
            .count("GET", "/api/v1/namespaces/argocd/secrets/bin"),
        2
    );
}

#[test]
fn a_hundred_secrets_take_a_hundred_gets() {
    let c = cluster();
    let mut input = String::from(SECRET);
    for i in 0..100 {
        c.server
            .add_secret("argocd", &format!("s{i}"), &[("k", "v"), ("w", "x")]);
        input.push_str(&format!(
            "  a{i}: <path:s{i}#k>\n  b{i}: <path:argocd:s{i}#w>\n"
        ));
    }
    let out = c.generate(&[], &input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        c.server
            .http()
            .count("GET", "/api/v1/namespaces/argocd/secrets/"),
        100
    );
    assert_eq!(c.server.requests().len(), 100);
    assert!(
        stderr(&out).contains("unique secrets: 100, backend requests: 100"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn doctor_names_the_api_server_and_the_readable_namespaces() {
    let c = cluster();
    let out = c.run(
        &["doctor"],
        &[("AVP_K8S_SECRET_NAMESPACES", "argocd,team-a")],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("  connect     ok  the API server answers: Kubernetes v1.31.2\n  namespaces  ok  AVP_K8S_SECRET_NAMESPACES allows argocd, team-a\n"),
        "{text}"
    );
    let out = Run::new(["doctor"])
        .env("AVP_TYPE", "kubernetessecret")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  connect  FAILED  Failed to perform login for kubernetes secret backend: could not connect to local Kubernetes cluster: no Kubernetes API configuration (in-cluster or kubeconfig): "),
        "{}",
        stdout(&out)
    );
}
