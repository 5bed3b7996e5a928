//! The real binary against the in-repo Vault test server: auth methods, KV versions, namespaces,
//! TLS, errors, retries, the token cache, and request counts.

mod support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use support::output::{assert_failure, assert_output, stderr};
use support::run::Run;
use support::vault::{Policy, VaultServer};

const ROOT: &str = "root-token-s3cr3t";

/// A Secret reading one key, and the output expected for `value`.
const SECRET_DOC: &str = "kind: Secret\nmetadata:\n  name: db\nstringData:\n  password: <path:secret/data/app#password>\n";

fn expected(value: &str) -> String {
    SECRET_DOC.replace("<path:secret/data/app#password>", value)
}

/// One run of `secretsubst generate -` with a cleared environment, `HOME` in `home`.
fn generate(
    server: &VaultServer,
    home: &Path,
    env: &[(&str, &str)],
    input: &str,
    extra: &[&str],
) -> Output {
    generate_at(&server.addr(), home, env, input, extra)
}

/// Like [`generate`], against the Vault at `addr`.
fn generate_at(
    addr: &str,
    home: &Path,
    env: &[(&str, &str)],
    input: &str,
    extra: &[&str],
) -> Output {
    Run::generate(input)
        .home(home)
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", addr)
        .envs(env)
        .args(extra)
        .output()
}

fn app_server() -> support::vault::Builder {
    VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"password": "old-s3cr3t"}))
        .put(
            "secret/app",
            json!({"password": "new-s3cr3t", "port": 5432}),
        )
        .token(ROOT, Policy::Root)
}

fn token_env() -> Vec<(&'static str, &'static str)> {
    vec![("AVP_AUTH_TYPE", "token"), ("VAULT_TOKEN", ROOT)]
}

#[test]
fn token_auth_reads_latest_and_pinned_kv2_versions_with_typed_values() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Deployment\nspec:\n  port: <path:secret/data/app#port>\n  new: <path:secret/data/app#password>\n  old: <path:secret/data/app#password#1>\n  short: <path:secret/app#password>\n";
    let out = generate(&server, home.path(), &token_env(), input, &[]);
    assert_output(
        &out,
        "kind: Deployment\nspec:\n  port: 5432\n  new: new-s3cr3t\n  old: old-s3cr3t\n  short: new-s3cr3t\n",
    );
    assert_eq!(
        server.count("GET", "/v1/sys/internal/ui/mounts/"),
        1,
        "one mount lookup"
    );
    assert_eq!(server.count("GET", "/v1/secret/data/app"), 3);
    let versioned = server
        .requests()
        .into_iter()
        .filter(|r| r.query.as_deref() == Some("version=1"));
    assert_eq!(versioned.count(), 1);
}

#[test]
fn kv1_mounts_are_detected_and_read_verbatim() {
    let server = VaultServer::builder()
        .kv1("kv")
        .put("kv/app", json!({"password": "kv1-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = SECRET_DOC.replace("secret/data/app", "kv/app");
    let out = generate(&server, home.path(), &token_env(), &input, &[]);
    assert_output(&out, &expected("kv1-s3cr3t"));
    assert_eq!(server.count("GET", "/v1/kv/app"), 1);
}

#[test]
fn a_data_path_is_read_beside_its_mount_detection() {
    let server = app_server().latency(Duration::from_millis(300)).start();
    let home = tempfile::tempdir().unwrap();
    let out = generate(&server, home.path(), &token_env(), SECRET_DOC, &[]);
    assert_output(&out, &expected("new-s3cr3t"));
    assert_eq!(server.count("GET", "/v1/sys/internal/ui/mounts/"), 1);
    assert_eq!(server.count("GET", "/v1/secret/data/app"), 1);
    assert_eq!(
        server.max_in_flight(),
        2,
        "the read waited for the detection"
    );
}

#[test]
fn paths_without_a_data_segment_wait_for_their_mount_detection() {
    let server = VaultServer::builder()
        .kv1("kv")
        .put("kv/app", json!({"password": "kv1-s3cr3t"}))
        .kv2("secret")
        .put("secret/app", json!({"password": "kv2-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .latency(Duration::from_millis(100))
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Secret\nmetadata:\n  name: db\nstringData:\n  a: <path:kv/app#password>\n  b: <path:secret/app#password>\n";
    let out = generate(&server, home.path(), &token_env(), input, &[]);
    assert_output(
        &out,
        &input
            .replace("<path:kv/app#password>", "kv1-s3cr3t")
            .replace("<path:secret/app#password>", "kv2-s3cr3t"),
    );
    let reads: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| !r.path.contains("/ui/mounts/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads.contains(&"/v1/kv/app".to_owned()), "{reads:?}");
    assert!(
        reads.contains(&"/v1/secret/data/app".to_owned()),
        "{reads:?}"
    );
    assert_eq!(
        server.max_in_flight(),
        2,
        "two detections, then two reads: no GET before a path's engine is known"
    );
}

#[test]
fn a_pinned_version_on_a_kv1_data_path_is_read_again_without_the_version() {
    let server = VaultServer::builder()
        .kv1("kv")
        .put("kv/data/app", json!({"password": "kv1-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = SECRET_DOC.replace("secret/data/app#password", "kv/data/app#password#3");
    let out = generate(&server, home.path(), &token_env(), &input, &[]);
    assert_output(
        &out,
        &input.replace("<path:kv/data/app#password#3>", "kv1-s3cr3t"),
    );
    let queries: Vec<Option<String>> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/kv/data/app")
        .map(|r| r.query)
        .collect();
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(queries.contains(&None), "the KV v1 read has no version");
}

#[test]
fn explicit_kv_version_skips_detection() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let mut env = token_env();
    env.push(("AVP_KV_VERSION", "2"));
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    assert_eq!(server.count("GET", "/v1/sys/internal/ui/mounts/"), 0);
}

#[test]
fn kv_version_annotation_overrides_the_setting() {
    let server = VaultServer::builder()
        .kv1("kv")
        .put("kv/app", json!({"password": "kv1-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .start();
    let home = tempfile::tempdir().unwrap();
    let mut env = token_env();
    env.push(("AVP_KV_VERSION", "2"));
    let input = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/kv-version: \"1\"\nstringData:\n  password: <path:kv/app#password>\n";
    let out = generate(&server, home.path(), &env, input, &[]);
    assert_output(&out, &input.replace("<path:kv/app#password>", "kv1-s3cr3t"));
}

#[test]
fn denied_mount_detection_falls_back_to_kv2() {
    let server = app_server().deny_ui_mounts().start();
    let home = tempfile::tempdir().unwrap();
    let out = generate(&server, home.path(), &token_env(), SECRET_DOC, &[]);
    assert_output(&out, &expected("new-s3cr3t"));
}

#[test]
fn a_missing_secret_on_a_guessed_kv2_mount_hints_at_kv1() {
    let server = VaultServer::builder()
        .kv1("kv")
        .put("kv/app", json!({"password": "kv1-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .deny_ui_mounts()
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = SECRET_DOC.replace("secret/data/app", "kv/app");
    let err = assert_failure(
        &generate(&server, home.path(), &token_env(), &input, &[]),
        &["kv1-s3cr3t"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn generic_placeholders_read_the_annotation_path_and_secret_version() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: secret/data/app\n    avp.kubernetes.io/secret-version: \"1\"\nstringData:\n  password: <password>\n";
    let out = generate(&server, home.path(), &token_env(), input, &[]);
    assert_output(&out, &input.replace("<password>", "old-s3cr3t"));
}

/// Logs in with `env`, reads one secret, and checks that exactly one login happened at `login`.
fn assert_login(server: &VaultServer, env: &[(&str, &str)], login: &str) {
    let home = tempfile::tempdir().unwrap();
    let out = generate(server, home.path(), env, SECRET_DOC, &[]);
    assert_output(&out, &expected("new-s3cr3t"));
    let logins = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(login))
        .count();
    assert_eq!(logins, 1, "{:?}", server.requests());
}

#[test]
fn approle_login() {
    let server = app_server()
        .approle("approle", "role-1", "secret-id-s3cr3t", Policy::Root)
        .start();
    let env = [
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", "role-1"),
        ("AVP_SECRET_ID", "secret-id-s3cr3t"),
    ];
    assert_login(&server, &env, "/v1/auth/approle/login");
}

#[test]
fn approle_login_on_a_custom_mount() {
    let server = app_server()
        .approle("team-a", "role-1", "secret-id-s3cr3t", Policy::Root)
        .start();
    let env = [
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", "role-1"),
        ("AVP_SECRET_ID", "secret-id-s3cr3t"),
        ("AVP_MOUNT_PATH", "auth/team-a"),
    ];
    assert_login(&server, &env, "/v1/auth/team-a/login");
}

#[test]
fn userpass_login() {
    let server = app_server()
        .userpass("userpass", "argocd", "pw-s3cr3t", Policy::Root)
        .start();
    let env = [
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "argocd"),
        ("AVP_PASSWORD", "pw-s3cr3t"),
    ];
    assert_login(&server, &env, "/v1/auth/userpass/login/argocd");
}

#[test]
fn kubernetes_login_reads_the_service_account_token_file() {
    let server = app_server()
        .kubernetes("kubernetes", "argocd", "jwt-s3cr3t", Policy::Root)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let jwt = dir.path().join("token");
    std::fs::write(&jwt, "jwt-s3cr3t\n").unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "k8s"),
        ("AVP_K8S_ROLE", "argocd"),
        ("AVP_K8S_TOKEN_PATH", jwt.to_str().unwrap()),
    ];
    assert_login(&server, &env, "/v1/auth/kubernetes/login");
}

#[test]
fn github_login() {
    let server = app_server()
        .github("github", "ghp_s3cr3t", Policy::Root)
        .start();
    let env = [
        ("AVP_AUTH_TYPE", "github"),
        ("AVP_GITHUB_TOKEN", "ghp_s3cr3t"),
    ];
    assert_login(&server, &env, "/v1/auth/github/login");
}

fn tls_server() -> VaultServer {
    app_server().tls().cert("cert", Policy::Root).start()
}

fn tls_env(server: &VaultServer) -> Vec<(&'static str, String)> {
    let tls = server.tls().unwrap();
    vec![
        ("AVP_AUTH_TYPE", "token".to_owned()),
        ("VAULT_TOKEN", ROOT.to_owned()),
        ("VAULT_CACERT", tls.ca_cert.display().to_string()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn tls_with_a_ca_file() {
    let server = tls_server();
    let home = tempfile::tempdir().unwrap();
    let out = generate(
        &server,
        home.path(),
        &pairs(&tls_env(&server)),
        SECRET_DOC,
        &[],
    );
    assert_output(&out, &expected("new-s3cr3t"));
}

#[test]
fn tls_with_a_ca_directory() {
    let server = tls_server();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&server.tls().unwrap().ca_cert, dir.path().join("ca.pem")).unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "token"),
        ("VAULT_TOKEN", ROOT),
        ("VAULT_CAPATH", dir.path().to_str().unwrap()),
    ];
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
}

#[test]
fn tls_without_the_ca_fails_and_skip_verify_works() {
    let server = tls_server();
    let home = tempfile::tempdir().unwrap();
    let out = generate(&server, home.path(), &token_env(), SECRET_DOC, &[]);
    let err = assert_failure(&out, &[ROOT]);
    assert!(err.contains("cannot reach Vault"), "{err}");
    let mut env = token_env();
    env.push(("VAULT_SKIP_VERIFY", "true"));
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
}

#[test]
fn tls_server_name_is_what_the_certificate_is_checked_against() {
    let server = tls_server();
    let home = tempfile::tempdir().unwrap();
    let mut env = tls_env(&server);
    env.push(("VAULT_TLS_SERVER_NAME", "vault.test".to_owned()));
    assert_output(
        &generate(&server, home.path(), &pairs(&env), SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    env.pop();
    env.push((
        "VAULT_TLS_SERVER_NAME",
        "not-in-the-certificate.test".to_owned(),
    ));
    assert_failure(
        &generate(&server, home.path(), &pairs(&env), SECRET_DOC, &[]),
        &[ROOT],
    );
}

#[test]
fn cert_login_with_a_client_certificate() {
    let server = tls_server();
    let tls = server.tls().unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "cert"),
        ("VAULT_CACERT", tls.ca_cert.to_str().unwrap()),
        ("VAULT_CLIENT_CERT", tls.client_cert.to_str().unwrap()),
        ("VAULT_CLIENT_KEY", tls.client_key.to_str().unwrap()),
    ];
    assert_login(&server, &env, "/v1/auth/cert/login");
}

#[test]
fn missing_auth_settings_use_avp_wording() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("AVP_AUTH_TYPE", "approle"), ("AVP_ROLE_ID", "r")],
            "AVP_ROLE_ID and AVP_SECRET_ID for approle authentication cannot be empty",
        ),
        (
            &[("AVP_AUTH_TYPE", "userpass")],
            "AVP_USERNAME and AVP_PASSWORD for userpass authentication cannot be empty",
        ),
        (
            &[("AVP_AUTH_TYPE", "k8s")],
            "AVP_K8S_ROLE cannot be empty when using Kubernetes Auth",
        ),
        (
            &[("AVP_AUTH_TYPE", "github")],
            "AVP_GITHUB_TOKEN for github authentication cannot be empty",
        ),
        (
            &[("AVP_AUTH_TYPE", "oidc")],
            "Must provide a supported Authentication Type, received oidc (valid types: approle, cert, github, k8s, token, userpass)",
        ),
    ];
    for (env, message) in cases {
        let out = generate(&server, home.path(), env, SECRET_DOC, &[]);
        assert_eq!(assert_failure(&out, &[]), format!("error: {message}\n"));
    }
    assert!(server.requests().is_empty());
}

#[test]
fn namespaces_from_the_setting_and_the_annotation() {
    let server = VaultServer::builder()
        .namespace("team-a")
        .kv2("secret")
        .put("secret/app", json!({"password": "team-a-s3cr3t"}))
        .token("team-a-token", Policy::Root)
        .namespace("team-a/child")
        .kv2("secret")
        .put("secret/app", json!({"password": "child-s3cr3t"}))
        .start();
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "token"),
        ("VAULT_TOKEN", "team-a-token"),
        ("VAULT_NAMESPACE", "team-a"),
    ];
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("team-a-s3cr3t"),
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.namespace.as_deref() == Some("team-a"))
    );
    let input = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/namespace: team-a/child\nstringData:\n  password: <path:secret/data/app#password>\n";
    let out = generate(&server, home.path(), &env, input, &[]);
    assert_output(
        &out,
        &input.replace("<path:secret/data/app#password>", "child-s3cr3t"),
    );
}

#[test]
fn permission_denied_and_not_found_are_reported_per_placeholder() {
    let server = app_server()
        .put("secret/other", json!({"k": "other-s3cr3t"}))
        .token(
            "reader",
            Policy::Read(vec!["secret/data/app".into(), "secret/data/missing".into()]),
        )
        .start();
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "token"),
        ("VAULT_TOKEN", "reader"),
        ("AVP_KV_VERSION", "2"),
    ];
    let input = "kind: Secret\nmetadata:\n  name: db\nstringData:\n  a: <path:secret/data/other#k>\n  b: <path:secret/data/missing#k>\n  c: <path:secret/data/app#password#9>\n";
    let err = assert_failure(
        &generate(&server, home.path(), &env, input, &[]),
        &["other-s3cr3t", "reader"],
    );
    insta::assert_snapshot!(err);
    assert_eq!(
        server.count("GET", "/v1/secret/data/"),
        3,
        "403 and 404 are not retried"
    );
}

#[test]
fn deleted_and_destroyed_versions_get_a_hint() {
    let server = app_server()
        .delete_version("secret/app", 1)
        .destroy_version("secret/app", 2)
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Secret\nstringData:\n  a: <path:secret/data/app#password#1>\n  b: <path:secret/data/app#password#2>\n";
    let err = assert_failure(
        &generate(&server, home.path(), &token_env(), input, &[]),
        &["s3cr3t"],
    );
    assert!(err.contains("this version was deleted at"), "{err}");
    assert!(err.contains("this version was destroyed"), "{err}");
}

#[test]
fn transient_failures_are_retried() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let mut env = token_env();
    env.push(("AVP_KV_VERSION", "2"));
    server.fail_next(2, 503, None);
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    assert_eq!(server.count("GET", "/v1/secret/data/app"), 3);
}

#[test]
fn retries_give_up_after_vault_max_retries() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let mut env = token_env();
    env.extend([("AVP_KV_VERSION", "2"), ("VAULT_MAX_RETRIES", "1")]);
    server.fail_next(5, 429, Some(0));
    let err = assert_failure(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &[ROOT],
    );
    assert!(
        err.contains("429 request path \"secret/data/app\": rate limit quota exceeded"),
        "{err}"
    );
    assert!(err.contains("gave up after retrying"), "{err}");
    assert_eq!(server.count("GET", "/v1/secret/data/app"), 2);
}

fn approle_env() -> [(&'static str, &'static str); 4] {
    [
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", "role-1"),
        ("AVP_SECRET_ID", "secret-id-s3cr3t"),
        ("AVP_KV_VERSION", "2"),
    ]
}

fn approle_server() -> VaultServer {
    app_server()
        .approle("approle", "role-1", "secret-id-s3cr3t", Policy::Root)
        .approle("approle", "role-2", "secret-id-2-s3cr3t", Policy::Root)
        .start()
}

fn logins(server: &VaultServer) -> usize {
    server.count("POST", "/v1/auth/approle/login") + server.count("PUT", "/v1/auth/approle/login")
}

fn cache_files(home: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(home.join(".secretsubst")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn cached_token_is_reused_by_the_next_run_and_kept_private() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        assert_output(
            &generate(&server, home.path(), &approle_env(), SECRET_DOC, &[]),
            &expected("new-s3cr3t"),
        );
    }
    assert_eq!(logins(&server), 1);
    assert_eq!(server.count("GET", "/v1/auth/token/lookup-self"), 1);
    let files = cache_files(home.path());
    assert_eq!(files.len(), 1);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&home.path().join(".secretsubst")), 0o700);
}

#[test]
fn each_identity_has_its_own_cached_token() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    let mut env = approle_env().to_vec();
    assert!(
        generate(&server, home.path(), &env, SECRET_DOC, &[])
            .status
            .success()
    );
    env[1] = ("AVP_ROLE_ID", "role-2");
    env[2] = ("AVP_SECRET_ID", "secret-id-2-s3cr3t");
    assert!(
        generate(&server, home.path(), &env, SECRET_DOC, &[])
            .status
            .success()
    );
    assert_eq!(logins(&server), 2);
    assert_eq!(cache_files(home.path()).len(), 2);
}

#[test]
fn disabled_token_cache_logs_in_every_run_and_writes_nothing() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = generate(
            &server,
            home.path(),
            &approle_env(),
            SECRET_DOC,
            &["--disable-token-cache"],
        );
        assert_output(&out, &expected("new-s3cr3t"));
    }
    assert_eq!(logins(&server), 2);
    assert!(cache_files(home.path()).is_empty());
}

#[test]
fn a_revoked_cached_token_leads_to_a_fresh_login() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    assert!(
        generate(&server, home.path(), &approle_env(), SECRET_DOC, &[])
            .status
            .success()
    );
    server.revoke_tokens();
    assert_output(
        &generate(&server, home.path(), &approle_env(), SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    assert_eq!(logins(&server), 2);
}

#[test]
fn a_cached_token_refused_on_read_logs_in_again_once() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    assert!(
        generate(&server, home.path(), &approle_env(), SECRET_DOC, &[])
            .status
            .success()
    );
    server.fail_next_on("/v1/secret/data/", 1, 403);
    assert_output(
        &generate(&server, home.path(), &approle_env(), SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    assert_eq!(logins(&server), 2);
    assert_eq!(server.count("GET", "/v1/secret/data/app"), 3);
}

#[test]
fn concurrent_runs_share_the_cache_safely() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| generate(&server, home.path(), &approle_env(), SECRET_DOC, &[])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in &outputs {
        assert_output(out, &expected("new-s3cr3t"));
    }
    let files = cache_files(home.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert!(cached["vault_token"].as_str().unwrap().starts_with("hvs."));
    assert!(
        generate(&server, home.path(), &approle_env(), SECRET_DOC, &[])
            .status
            .success()
    );
    assert!(logins(&server) <= 2);
}

#[test]
fn two_thousand_placeholders_over_a_hundred_paths_make_a_hundred_reads() {
    let mut builder = approle_server_builder();
    for i in 0..100 {
        builder = builder.put(
            &format!("secret/app{i}"),
            json!({"user": format!("user{i}"), "pw": format!("pw{i}-s3cr3t")}),
        );
    }
    let server = builder.start();
    let home = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for doc in 0..500 {
        input.push_str(&format!(
            "---\nkind: Secret\nmetadata:\n  name: s{doc}\nstringData:\n"
        ));
        for j in 0..4 {
            let path = (doc * 4 + j) % 100;
            let key = if j % 2 == 0 { "user" } else { "pw" };
            input.push_str(&format!("  k{j}: <path:secret/data/app{path}#{key}>\n"));
        }
    }
    let out = generate(
        &server,
        home.path(),
        &approle_env(),
        &input,
        &["--verbose-sensitive-output"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.count("GET", "/v1/secret/data/"), 100);
    assert_eq!(logins(&server), 1);
    assert!(
        stderr(&out).contains("placeholders: 2000, unique secrets: 100, backend requests: 100"),
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        !err.contains("s3cr3t") && !err.contains("hvs."),
        "verbose output leaks: {err}"
    );
}

fn approle_server_builder() -> support::vault::Builder {
    app_server().approle("approle", "role-1", "secret-id-s3cr3t", Policy::Root)
}

#[test]
fn verbose_failures_print_no_token_or_credential() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Secret\nstringData:\n  a: <path:secret/data/app#nope>\n  b: <path:secret/data/gone#k>\n";
    let out = generate(
        &server,
        home.path(),
        &approle_env(),
        input,
        &["--verbose-sensitive-output"],
    );
    assert_failure(&out, &["secret-id-s3cr3t", "hvs.", "s3cr3t"]);
}

// ---------------------------------------------------------------------------------------------
// Hardening: deadlines, header values, credentials, refused paths, exact numbers, Retry-After
// ---------------------------------------------------------------------------------------------

#[test]
fn a_stuck_vault_ends_the_run_at_the_deadline_naming_what_it_waited_for() {
    let server = app_server()
        .approle("approle", "role-1", "secret-id-s3cr3t", Policy::Root)
        .start();
    server.set_latency(std::time::Duration::from_secs(120));
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("AVP_AUTH_TYPE", "token"), ("VAULT_TOKEN", ROOT)],
            "vault: KV version detection of secret/",
        ),
        (
            &[
                ("AVP_AUTH_TYPE", "token"),
                ("VAULT_TOKEN", ROOT),
                ("AVP_KV_VERSION", "2"),
            ],
            "vault: read of secret/data/app",
        ),
        (&approle_env(), "vault: login at auth/approle"),
    ];
    for (env, waited) in cases {
        let home = tempfile::tempdir().unwrap();
        let mut env = env.to_vec();
        env.push(("ARGOCD_EXEC_TIMEOUT", "3s"));
        let out = generate(&server, home.path(), &env, SECRET_DOC, &[]);
        let err = assert_failure(&out, &[ROOT, "s3cr3t"]);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: gave up waiting for "), "{err}");
        assert!(err.contains(waited), "{err}");
        assert!(
            err.ends_with(": ARGOCD_EXEC_TIMEOUT (3s) is about to end the plugin\n"),
            "{err}"
        );
    }
}

#[test]
fn a_signal_during_a_stuck_read_names_the_read() {
    let server = app_server().start();
    server.set_latency(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("secret.yaml");
    std::fs::write(&input, SECRET_DOC).unwrap();
    let (out, _) = Run::new(["generate".as_ref(), input.as_os_str()])
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", server.addr())
        .envs(&[
            ("AVP_AUTH_TYPE", "token"),
            ("VAULT_TOKEN", ROOT),
            ("AVP_KV_VERSION", "2"),
        ])
        .interrupted(libc::SIGTERM, Duration::from_secs(1));
    assert_eq!(
        assert_failure(&out, &[ROOT, "s3cr3t"]),
        "error: interrupted by SIGTERM while waiting for vault: read of secret/data/app\n"
    );
}

#[test]
fn a_token_or_namespace_with_a_final_line_break_works_and_one_inside_is_an_error() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let token = format!("{ROOT}\n");
    let env = [
        ("AVP_AUTH_TYPE", "token"),
        ("VAULT_TOKEN", token.as_str()),
        ("AVP_KV_VERSION", "2"),
    ];
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    let token = format!("{ROOT}\nX-Evil: 1");
    let cases = [
        (
            ("VAULT_TOKEN", token.as_str()),
            "VAULT_TOKEN holds the character '\\n'",
        ),
        (
            ("VAULT_NAMESPACE", "a\u{7}b"),
            "VAULT_NAMESPACE holds the character '\\u{7}'",
        ),
    ];
    for (setting, problem) in cases {
        let env = [("AVP_AUTH_TYPE", "token"), ("VAULT_TOKEN", ROOT), setting];
        let err = assert_failure(
            &generate(&server, home.path(), &env, SECRET_DOC, &[]),
            &[ROOT],
        );
        assert_eq!(
            err,
            format!("error: {problem}, which cannot be sent in an HTTP header\n")
        );
    }
}

#[test]
fn a_password_in_vault_addr_is_never_printed() {
    let home = tempfile::tempdir().unwrap();
    for addr in [
        "http://user:pw-s3cr3t@127.0.0.1:9",
        "http://user:pw-s3cr3t@[::1",
    ] {
        let env = [
            ("VAULT_MAX_RETRIES", "0"),
            ("AVP_AUTH_TYPE", "token"),
            ("VAULT_TOKEN", ROOT),
        ];
        let out = generate_at(addr, home.path(), &env, SECRET_DOC, &[]);
        let err = assert_failure(&out, &["pw-s3cr3t", ROOT]);
        assert!(
            err.contains("VAULT_ADDR is not a URL") || err.contains("cannot reach Vault"),
            "{err}"
        );
    }
}

#[test]
fn a_cached_token_is_not_reused_with_a_wrong_secret_id() {
    let server = approle_server();
    let home = tempfile::tempdir().unwrap();
    assert_output(
        &generate(&server, home.path(), &approle_env(), SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    let mut wrong = approle_env();
    wrong[2] = ("AVP_SECRET_ID", "a-wrong-secret-id");
    let err = assert_failure(
        &generate(&server, home.path(), &wrong, SECRET_DOC, &[]),
        &["new-s3cr3t", "a-wrong-secret-id", "secret-id-s3cr3t"],
    );
    assert!(err.contains("login failed"), "{err}");
    assert_eq!(logins(&server), 2);
}

#[test]
fn paths_that_hold_no_secrets_are_refused_without_a_request() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let env = token_env();
    for path in [
        "auth/token/lookup-self",
        "/sys/mounts",
        "identity/entity/id",
        "secret/../auth/token/lookup-self",
        "secret/%2e%2e/sys/raw/x",
        "secret\\..\\auth\\token\\lookup-self",
    ] {
        server.clear_requests();
        let doc = format!(
            "kind: ConfigMap\nmetadata:\n  annotations:\n    avp.kubernetes.io/kv-version: \"1\"\ndata:\n  t: <path:{path}#id>\n"
        );
        let err = assert_failure(&generate(&server, home.path(), &env, &doc, &[]), &[ROOT]);
        assert!(err.contains("secretsubst does not read"), "{path}: {err}");
        assert_eq!(server.requests().len(), 0, "{path}: a request was sent");
    }
}

#[test]
fn numbers_beyond_64_bits_keep_their_digits() {
    let big: serde_json::Value =
        serde_json::from_str(r#"{"big": 12345678901234567890123}"#).unwrap();
    let server = VaultServer::builder()
        .kv2("secret")
        .put("secret/n", big)
        .token(ROOT, Policy::Root)
        .start();
    let home = tempfile::tempdir().unwrap();
    let doc = "kind: A\nn: <path:secret/data/n#big>\ns: \"<path:secret/data/n#big>\"\n";
    assert_output(
        &generate(&server, home.path(), &token_env(), doc, &[]),
        "kind: A\nn: 12345678901234567890123\ns: \"12345678901234567890123\"\n",
    );
}

#[test]
fn retry_after_is_honoured_within_the_deadline() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let mut env = token_env();
    env.push(("AVP_KV_VERSION", "2"));
    server.fail_next(1, 429, Some(1));
    let started = std::time::Instant::now();
    assert_output(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &expected("new-s3cr3t"),
    );
    // A lower bound only: the server asked for one second, the default backoff is 0.25 s.
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    server.fail_next(1, 503, Some(20));
    env.push(("ARGOCD_EXEC_TIMEOUT", "10s"));
    let err = assert_failure(
        &generate(&server, home.path(), &env, SECRET_DOC, &[]),
        &[ROOT],
    );
    assert!(
        err.contains("(not retried: the retry in 20s would pass the run deadline)"),
        "{err}"
    );
}

/// A server that answers with headers and then stalls the body: a timeout while the body
/// arrives is transient, so it is retried, and the error says what happened.
#[test]
fn a_timeout_while_the_body_arrives_is_retried_and_named() {
    use std::io::{BufRead as _, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"data\":");
                std::thread::sleep(std::time::Duration::from_secs(30));
            });
        }
    });
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("AVP_AUTH_TYPE", "token"),
        ("VAULT_TOKEN", ROOT),
        ("AVP_KV_VERSION", "2"),
        ("VAULT_CLIENT_TIMEOUT", "500ms"),
        ("VAULT_MAX_RETRIES", "1"),
    ];
    let out = generate_at(&addr, home.path(), &env, SECRET_DOC, &[]);
    let err = assert_failure(&out, &[ROOT]);
    assert!(
        err.contains("vault: the answer to secret/data/app broke off: timed out"),
        "{err}"
    );
    assert!(err.contains("gave up after retrying"), "{err}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// `check` against Vault: every status a real backend can give, with verbose logs, and never a
/// value or token in either stream.
#[test]
fn check_names_ok_denied_not_found_and_missing_key_and_prints_no_value() {
    let server = app_server()
        .token(
            "reader-s3cr3t",
            Policy::Read(vec!["secret/data/app".into()]),
        )
        .put("secret/other", json!({"k": "other-s3cr3t"}))
        .start();
    let home = tempfile::tempdir().unwrap();
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  ok: <path:secret/data/app#password>\n  missing: <path:secret/data/app#nope>\n  denied: <path:secret/data/other#k>\n";
    let out = Run::new([
        "check",
        "--format",
        "json",
        "--verbose-sensitive-output",
        "-",
    ])
    .stdin(input)
    .home(home.path())
    .env("AVP_TYPE", "vault")
    .env("VAULT_ADDR", server.addr())
    .env("AVP_AUTH_TYPE", "token")
    .env("VAULT_TOKEN", "reader-s3cr3t")
    .output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for leak in ["new-s3cr3t", "old-s3cr3t", "other-s3cr3t", "reader-s3cr3t"] {
        assert!(!all.contains(leak), "{leak} leaked: {all}");
    }
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["field"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("stringData.ok", "ok"),
            ("stringData.missing", "missing-key"),
            ("stringData.denied", "denied")
        ]
    );
    // A login that fails makes every row of that backend an error, naming the cause.
    let out = Run::new(["check", "--format", "json", "-"])
        .stdin(input)
        .home(home.path())
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", server.addr())
        .env("AVP_AUTH_TYPE", "approle")
        .env("AVP_ROLE_ID", "nobody")
        .env("AVP_SECRET_ID", "wrong-s3cr3t")
        .output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["status"], "error", "{row}");
        assert!(
            row["reason"]
                .as_str()
                .unwrap()
                .starts_with("vault: login failed: "),
            "{row}"
        );
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong-s3cr3t"));
}

/// Every status `check` knows, from one Vault in one run with verbose logs on: the exact
/// report, and no value or token in either stream, in either format.
#[test]
fn check_reports_every_status_against_vault_and_never_a_value() {
    let server = app_server()
        .token(
            "reader-s3cr3t",
            Policy::Read(vec![
                "secret/data/app".into(),
                "secret/data/absent".into(),
                "secret/data/flaky".into(),
            ]),
        )
        .put("secret/other", json!({"k": "other-s3cr3t"}))
        .put("secret/flaky", json!({"k": "flaky-s3cr3t"}))
        .start();
    server.fail_next_on("/v1/secret/data/flaky", 10, 500);
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  ok: <path:secret/data/app#password>\n  missing: <path:secret/data/app#nope>\n  absent: <path:secret/data/absent#k>\n  denied: <path:secret/data/other#k>\n  invalid: <path:secret/data/app#password | nosuch>\n  error: <path:secret/data/flaky#k>\n";
    let check = |format: &str| {
        Run::new([
            "check",
            "--format",
            format,
            "--verbose-sensitive-output",
            "-",
        ])
        .stdin(input)
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", server.addr())
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_TOKEN", "reader-s3cr3t")
        .env("AVP_MAX_RETRIES", "0")
        .output()
    };
    for format in ["text", "json"] {
        let out = check(format);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        for leak in [
            "new-s3cr3t",
            "old-s3cr3t",
            "other-s3cr3t",
            "flaky-s3cr3t",
            "reader-s3cr3t",
        ] {
            assert!(!all.contains(leak), "{format}: {leak} leaked: {all}");
        }
        assert!(
            stderr(&out).ends_with("error: check: 5 of 6 rows failed\n"),
            "{}",
            stderr(&out)
        );
    }
    insta::assert_snapshot!(
        "check_every_status",
        String::from_utf8(check("text").stdout).unwrap()
    );
}

/// `generate --mask` reads Vault for real (a missing key still fails) and prints markers.
#[test]
fn mask_reads_vault_and_prints_markers_not_values() {
    let server = app_server().start();
    let home = tempfile::tempdir().unwrap();
    let env = token_env();
    let input = "kind: Deployment\nspec:\n  port: <path:secret/data/app#port>\n  pw: <path:secret/data/app#password>\n";
    let out = generate(&server, home.path(), &env, input, &["--mask"]);
    assert_output(
        &out,
        "kind: Deployment\nspec:\n  port: (masked default:secret/data/app#port)\n  pw: (masked default:secret/data/app#password)\n",
    );
    assert_eq!(server.count("GET", "secret/data/app"), 1);
    let out = generate(
        &server,
        home.path(),
        &env,
        "kind: A\nx: <path:secret/data/app#nope>\n",
        &["--mask"],
    );
    assert_failure(&out, &["new-s3cr3t", ROOT]);
}
