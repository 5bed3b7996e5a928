//! The real binary against the in-repo Google Cloud test server (tests/support/gcp.rs): reads,
//! keys and versions, Google's errors, retries, every ADC source with its token exchanges
//! counted, request counts, `doctor` and profiles. Every run is verbose, and points
//! `GCE_METADATA_HOST` at loopback, so that nothing ever asks metadata.google.internal; every
//! value and credential holds `s3cr3t`, which stderr must never show.
#![cfg(feature = "gcp")]

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::json;
use support::gcp::{self, GcpServer};
use support::output::{assert_output, stderr, stdout};
use support::run::Run;

const VERBOSE: &str = "--verbose-sensitive-output";
const DB: &str = "projects/test-project/secrets/db";
/// What every value and credential of these tests holds; a private key's PEM lines are
/// checked apart.
const MARK: &str = "s3cr3t";

/// A test server, a directory for credential files, and the service account file in it.
struct Setup {
    server: GcpServer,
    dir: tempfile::TempDir,
    credentials: String,
}

impl Setup {
    fn new() -> Setup {
        let server = GcpServer::start();
        let dir = tempfile::tempdir().unwrap();
        let credentials = server
            .service_account_file(dir.path())
            .display()
            .to_string();
        Setup {
            server,
            dir,
            credentials,
        }
    }

    /// A run against the server with the service account file and `env` (which may replace
    /// either), verbose, asserting that no value or credential reaches either stream on
    /// failure or stderr on success.
    fn run(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
        let out = Run::new(args)
            .stdin(input)
            .env("AVP_TYPE", "gcpsecretmanager")
            .env("AVP_GCP_ENDPOINT", self.server.url())
            .env("GCE_METADATA_HOST", "127.0.0.1:1")
            .env("GOOGLE_APPLICATION_CREDENTIALS", &self.credentials)
            .envs(env)
            .arg(VERBOSE)
            .output();
        assert_no_leak(&stderr(&out));
        if !out.status.success() {
            assert_no_leak(&stdout(&out));
        }
        out
    }

    fn generate(&self, input: &str) -> Output {
        self.run(&["generate", "-"], &[], input)
    }

    fn generate_with(&self, env: &[(&str, &str)], input: &str) -> Output {
        self.run(&["generate", "-"], env, input)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn assert_no_leak(text: &str) {
    assert!(
        !text.to_lowercase().contains(MARK),
        "a value or credential leaked: {text}"
    );
    for key in [gcp::KEY, gcp::OTHER_KEY] {
        let line = key.lines().nth(2).unwrap();
        assert!(!text.contains(line), "a private key leaked: {text}");
    }
}

fn errors(out: &Output) -> Vec<String> {
    support::output::error_lines(out, &[])
}

const SECRET: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  x: ";

fn one(path: &str) -> String {
    format!("{SECRET}<path:{path}>\n")
}

#[test]
fn json_keys_are_typed_and_the_secret_id_is_the_whole_payload() {
    let s = Setup::new();
    let payload = r#"{"user":"app-s3cr3t","port":5432,"tls":true,"cfg":{"replicas":2}}"#;
    s.server
        .add(DB, payload.as_bytes())
        .add("projects/test-project/secrets/token", b"plain-s3cr3t")
        .add("projects/test-project/secrets/bin", &[0, 0xff, 1]);
    let input = "kind: Deployment\nspec:\n  replicas: <path:projects/test-project/secrets/db#cfg | jsonPath {.replicas}>\n  port: <path:projects/test-project/secrets/db#port>\n  tls: <path:projects/test-project/secrets/db#tls>\n  user: <path:projects/test-project/secrets/db#user>\n  token: <path:projects/test-project/secrets/token#token>\n  bin: <path:projects/test-project/secrets/bin#bin>\n---\nkind: Secret\ndata:\n  whole: <path:projects/test-project/secrets/db#db | base64encode>\n";
    let whole = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, payload);
    let want = format!(
        "kind: Deployment\nspec:\n  replicas: \"2\"\n  port: 5432\n  tls: true\n  user: app-s3cr3t\n  token: plain-s3cr3t\n  bin: AP8B\n---\nkind: Secret\ndata:\n  whole: {whole}\n"
    );
    assert_output(&s.generate(input), &want);
    assert_eq!(s.server.accesses(), 3);
}

#[test]
fn a_key_that_is_neither_the_secret_id_nor_a_json_key_is_missing() {
    let s = Setup::new();
    s.server
        .add("projects/test-project/secrets/token", b"plain-s3cr3t")
        .add(DB, br#"{"user":"app-s3cr3t"}"#);
    let input = format!(
        "{SECRET}<path:projects/test-project/secrets/token#user>\n  y: <path:{DB}#token>\n"
    );
    assert_eq!(
        errors(&s.generate(&input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/token#user>: missing value: key \"user\" not found in projects/test-project/secrets/token",
            "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:projects/test-project/secrets/db#token>: missing value: key \"token\" not found in projects/test-project/secrets/db",
        ]
    );
}

#[test]
fn versions_are_pinned_by_number_or_latest_and_regional_names_read() {
    let s = Setup::new();
    s.server
        .add(DB, br#"{"pw":"v1-s3cr3t"}"#)
        .add(DB, br#"{"pw":"v2-s3cr3t"}"#)
        .add(
            "projects/test-project/locations/europe-west1/secrets/db",
            br#"{"pw":"eu-s3cr3t"}"#,
        );
    let input = format!(
        "{SECRET}<path:{DB}#pw#1>\n  latest: <path:{DB}#pw#latest>\n  none: <path:{DB}#pw>\n  eu: <path:projects/test-project/locations/europe-west1/secrets/db#pw>\n"
    );
    let want =
        format!("{SECRET}v1-s3cr3t\n  latest: v2-s3cr3t\n  none: v2-s3cr3t\n  eu: eu-s3cr3t\n");
    assert_output(&s.generate(&input), &want);
    let mut paths: Vec<String> = s
        .server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(":access"))
        .map(|r| r.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/v1/projects/test-project/locations/europe-west1/secrets/db/versions/latest:access",
            "/v1/projects/test-project/secrets/db/versions/1:access",
            "/v1/projects/test-project/secrets/db/versions/latest:access",
            "/v1/projects/test-project/secrets/db/versions/latest:access",
        ]
    );
}

#[test]
fn the_secret_version_annotation_pins_a_version() {
    let s = Setup::new();
    s.server
        .add(DB, br#"{"pw":"old-s3cr3t"}"#)
        .add(DB, br#"{"pw":"new-s3cr3t"}"#);
    let input = format!(
        "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: {DB}\n    avp.kubernetes.io/secret-version: \"1\"\nstringData:\n  pw: <pw>\n"
    );
    assert_output(&s.generate(&input), &input.replace("<pw>", "old-s3cr3t"));
}

#[test]
fn unknown_secrets_and_versions_are_404_not_found() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"v1-s3cr3t"}"#);
    let input =
        format!("{SECRET}<path:projects/test-project/secrets/nothing#k>\n  y: <path:{DB}#pw#7>\n");
    assert_eq!(
        errors(&s.generate(&input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/nothing#k>: gcpsecretmanager: 404 NOT_FOUND: Secret [projects/test-project/secrets/nothing] not found or has no versions: projects/test-project/secrets/nothing",
            "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:projects/test-project/secrets/db#pw#7>: gcpsecretmanager: 404 NOT_FOUND: Secret Version [projects/test-project/secrets/db/versions/7] not found: projects/test-project/secrets/db (version 7)",
        ]
    );
    assert_eq!(s.server.accesses(), 2, "404 is not retried");
}

#[test]
fn a_denied_read_is_403_with_the_role_to_grant_and_not_retried() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    s.server.deny(DB);
    assert_eq!(
        errors(&s.generate(&one(&format!("{DB}#pw")))),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/db#pw>: gcpsecretmanager: 403 PERMISSION_DENIED: Permission 'secretmanager.versions.access' denied for resource 'projects/test-project/secrets/db/versions/latest' (or it may not exist): projects/test-project/secrets/db (grant the identity secretsubst runs as roles/secretmanager.secretAccessor on the secret or its project)"
        ]
    );
    assert_eq!(s.server.accesses(), 1);
}

#[test]
fn throttling_is_retried_after_the_retry_after_it_names() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    s.server.http().fail_next(
        "/v1/projects/test-project/secrets/db",
        1,
        gcp::rpc_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute per project'.")
            .with_header("retry-after", "1"),
    );
    let started = Instant::now();
    let out = s.generate(&one(&format!("{DB}#pw")));
    assert_output(&out, &format!("{SECRET}x-s3cr3t\n"));
    // The resolver's own first backoff is at most 375 ms: a second's wait is the server's.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(s.server.accesses(), 2);
    assert!(
        stderr(&out).contains("unique secrets: 1, backend requests: 2"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("429 RESOURCE_EXHAUSTED: Quota exceeded"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    let http = s.server.http();
    http.fail_next(
        DB_PREFIX,
        1,
        gcp::rpc_error(500, "INTERNAL", "Internal error encountered."),
    );
    http.fail_next(
        DB_PREFIX,
        1,
        gcp::rpc_error(503, "UNAVAILABLE", "The service is currently unavailable."),
    );
    assert_output(
        &s.generate(&one(&format!("{DB}#pw"))),
        &format!("{SECRET}x-s3cr3t\n"),
    );
    assert_eq!(s.server.accesses(), 3);
}

const DB_PREFIX: &str = "/v1/projects/test-project/secrets/db";

#[test]
fn a_bad_request_is_not_retried() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    s.server.http().fail_next(
        DB_PREFIX,
        3,
        gcp::rpc_error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ),
    );
    assert_eq!(
        errors(&s.generate(&one(&format!("{DB}#pw")))),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/db#pw>: gcpsecretmanager: 400 INVALID_ARGUMENT: Request contains an invalid argument: projects/test-project/secrets/db"
        ]
    );
    assert_eq!(s.server.accesses(), 1);
}

#[test]
fn disabled_and_destroyed_versions_are_named() {
    let s = Setup::new();
    s.server
        .add(DB, br#"{"pw":"v1-s3cr3t"}"#)
        .add(DB, br#"{"pw":"v2-s3cr3t"}"#);
    s.server.disable(DB, 1);
    s.server.destroy(DB, 2);
    let input = format!("{SECRET}<path:{DB}#pw#1>\n  y: <path:{DB}#pw#2>\n");
    assert_eq!(
        errors(&s.generate(&input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/db#pw#1>: gcpsecretmanager: 400 FAILED_PRECONDITION: Secret Version [projects/test-project/secrets/db/versions/1] is in DISABLED state: projects/test-project/secrets/db (version 1) (enable the version or pin another one)",
            "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:projects/test-project/secrets/db#pw#2>: gcpsecretmanager: 400 FAILED_PRECONDITION: Secret Version [projects/test-project/secrets/db/versions/2] is in DESTROYED state: projects/test-project/secrets/db (version 2) (a destroyed version cannot be read: pin another version)",
        ]
    );
    assert_eq!(s.server.accesses(), 2);
}

#[test]
fn a_crc32c_mismatch_is_an_error_naming_the_secret() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    s.server.corrupt(DB);
    assert_eq!(
        errors(&s.generate(&one(&format!("{DB}#pw")))),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:projects/test-project/secrets/db#pw>: gcpsecretmanager: the payload of projects/test-project/secrets/db does not match its CRC32C checksum (corrupted on the way)"
        ]
    );
}

#[test]
fn paths_of_another_shape_get_avps_error_and_no_read() {
    let s = Setup::new();
    let input = format!(
        "{SECRET}<path:db#k>\n  y: <path:{DB}/versions/2#k>\n  z: <path:projects/../secrets/db#k>\n"
    );
    let format = "Path is not in the correct format (projects/$PROJECT_ID/secrets/$SECRET_ID) for GCP Secrets Manager";
    assert_eq!(
        errors(&s.generate(&input)),
        [
            format!(
                "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:db#k>: gcpsecretmanager: {format}: db"
            ),
            format!(
                "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:{DB}/versions/2#k>: gcpsecretmanager: {format}: {DB}/versions/2"
            ),
            format!(
                "error: <stdin>: doc 1 (Secret/s): stringData.z: <path:projects/../secrets/db#k>: gcpsecretmanager: {format}: projects/../secrets/db"
            ),
        ]
    );
    assert_eq!(s.server.accesses(), 0);
}

#[test]
fn names_are_percent_encoded_in_the_url() {
    let s = Setup::new();
    s.server
        .add("projects/test-project/secrets/a?b%c", b"odd-s3cr3t");
    assert_output(
        &s.generate(&one("projects/test-project/secrets/a?b%c#a?b%c")),
        &format!("{SECRET}odd-s3cr3t\n"),
    );
    let paths: Vec<String> = s
        .server
        .http()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths.contains(
            &"/v1/projects/test-project/secrets/a%3Fb%25c/versions/latest:access".to_owned()
        ),
        "{paths:?}"
    );
}

#[test]
fn a_service_account_makes_one_token_request_and_one_read_per_unique_secret() {
    let s = Setup::new();
    for name in ["a", "b", "c"] {
        s.server.add(
            &format!("projects/test-project/secrets/{name}"),
            format!(r#"{{"k":"{name}-s3cr3t"}}"#).as_bytes(),
        );
    }
    // Four documents, each reading a, b, c and a again, and one the whole payload of a.
    let mut input = String::new();
    let mut want = String::new();
    for doc in 0..4 {
        let head = format!("---\nkind: ConfigMap\nmetadata:\n  name: m{doc}\ndata:\n");
        input.push_str(&head);
        want.push_str(&head);
        for (i, name) in ["a", "b", "c", "a"].iter().enumerate() {
            input.push_str(&format!(
                "  k{i}: <path:projects/test-project/secrets/{name}#k>\n"
            ));
            want.push_str(&format!("  k{i}: {name}-s3cr3t\n"));
        }
    }
    input.push_str("  whole: <path:projects/test-project/secrets/a#a>\n");
    want.push_str("  whole: \"{\\\"k\\\":\\\"a-s3cr3t\\\"}\"\n");
    let out = s.generate(&input);
    assert_output(&out, &want);
    assert_eq!(s.server.token_requests(), 1);
    assert_eq!(s.server.accesses(), 3);
    assert_eq!(s.server.http().requests().len(), 4);
    assert!(
        stderr(&out).contains("unique secrets: 3, backend requests: 3"),
        "{}",
        stderr(&out)
    );
    // Each read carries the token issued to the assertion.
    let tokens: Vec<String> = s
        .server
        .http()
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":access"))
        .map(|r| r.bearer().unwrap().to_owned())
        .collect();
    assert_eq!(tokens, vec!["ya29.sa-s3cr3t-1"; 3]);
    let grant = &s.server.http().requests()[0];
    assert_eq!(
        grant.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = grant.form();
    assert_eq!(
        form[0],
        (
            "grant_type".to_owned(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()
        )
    );
}

#[test]
fn a_hundred_secrets_take_a_hundred_reads_and_one_token_request() {
    let s = Setup::new();
    let mut input = String::new();
    let mut want = String::new();
    for i in 0..100 {
        s.server.add(
            &format!("projects/test-project/secrets/s{i:03}"),
            format!(r#"{{"v":"value-{i}"}}"#).as_bytes(),
        );
        input.push_str(&format!("---\nkind: ConfigMap\ndata:\n  v: <path:projects/test-project/secrets/s{i:03}#v>\n  again: <path:projects/test-project/secrets/s{i:03}#v>\n"));
        want.push_str(&format!(
            "---\nkind: ConfigMap\ndata:\n  v: value-{i}\n  again: value-{i}\n"
        ));
    }
    let out = s.generate(&input);
    assert_output(&out, &want);
    assert_eq!(s.server.accesses(), 100);
    assert_eq!(s.server.token_requests(), 1);
    assert_eq!(s.server.http().requests().len(), 101);
    let err = stderr(&out);
    assert!(
        err.contains("unique secrets: 100, backend requests: 100,"),
        "{err}"
    );
    assert!(
        !err.contains("value-"),
        "verbose output leaks values: {err}"
    );
}

#[test]
fn a_refused_assertion_fails_the_login_once() {
    let s = Setup::new();
    let wrong = s
        .server
        .service_account_file_with(s.dir.path(), gcp::OTHER_KEY);
    let wrong = wrong.display().to_string();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    let input =
        format!("{SECRET}<path:{DB}#pw>\n  y: <path:projects/test-project/secrets/other#pw>\n");
    let out = s.generate_with(&[("GOOGLE_APPLICATION_CREDENTIALS", &wrong)], &input);
    assert_eq!(
        errors(&out),
        [
            "error: gcpsecretmanager: login failed: 400 invalid_grant: Invalid JWT Signature: the access token of service account secretsubst@test-project.iam.gserviceaccount.com"
        ]
    );
    assert_eq!(s.server.token_requests(), 1, "a 400 is not retried");
    assert_eq!(s.server.accesses(), 0);
}

#[test]
fn a_credentials_file_that_cannot_be_used_is_named() {
    let s = Setup::new();
    let missing = s.path("missing.json");
    let broken = s.path("broken.json");
    std::fs::write(
        &broken,
        r#"{"type": "service_account", "private_key": "x-s3cr3t"#,
    )
    .unwrap();
    let unsupported = s.path("gdch.json");
    std::fs::write(&unsupported, r#"{"type": "gdch_service_account"}"#).unwrap();
    let input = one(&format!("{DB}#pw"));
    for (file, want) in [
        (
            &missing,
            format!(
                "GOOGLE_APPLICATION_CREDENTIALS {missing}: cannot read: No such file or directory (os error 2)"
            ),
        ),
        (
            &broken,
            format!("GOOGLE_APPLICATION_CREDENTIALS {broken}: not JSON (line 1 column 52)"),
        ),
        (
            &unsupported,
            format!(
                "GOOGLE_APPLICATION_CREDENTIALS {unsupported}: credentials of type \"gdch_service_account\" are not supported (service_account, external_account and authorized_user are)"
            ),
        ),
    ] {
        let out = s.generate_with(&[("GOOGLE_APPLICATION_CREDENTIALS", file)], &input);
        assert_eq!(
            errors(&out),
            [format!("error: gcpsecretmanager: login failed: {want}")]
        );
    }
    assert_eq!(s.server.http().requests().len(), 0);
}

/// Workload identity federation with the subject token in `source`.
fn federated(s: &Setup, source: serde_json::Value, impersonate: bool) -> Output {
    let file = s
        .server
        .external_account_file(s.dir.path(), source, impersonate);
    s.server.add(DB, br#"{"pw":"wif-s3cr3t"}"#);
    let out = s.generate_with(
        &[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())],
        &format!("{}  y: <path:{DB}#pw>\n", one(&format!("{DB}#pw"))),
    );
    assert_output(&out, &format!("{SECRET}wif-s3cr3t\n  y: wif-s3cr3t\n"));
    assert_eq!(s.server.sts_requests(), 1);
    assert_eq!(s.server.token_requests(), 0);
    assert_eq!(s.server.accesses(), 1);
    out
}

#[test]
fn an_external_account_exchanges_a_file_token_and_impersonates() {
    let s = Setup::new();
    let token = s.path("token");
    std::fs::write(&token, format!("{}\n", gcp::SUBJECT_TOKEN)).unwrap();
    federated(&s, json!({"file": token}), true);
    assert_eq!(s.server.impersonations(), 1);
    let read = s
        .server
        .http()
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with(":access"))
        .unwrap();
    assert_eq!(read.bearer(), Some("ya29.impersonated-s3cr3t-2"));
    let exchange = s
        .server
        .http()
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/token")
        .unwrap();
    let form: std::collections::BTreeMap<String, String> = exchange.form().into_iter().collect();
    assert_eq!(form["audience"], gcp::AUDIENCE);
    assert_eq!(form["subject_token_type"], gcp::JWT_TOKEN_TYPE);
    assert_eq!(
        form["requested_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
}

#[test]
fn an_external_account_reads_a_json_subject_token_from_a_file() {
    let s = Setup::new();
    let token = s.path("token.json");
    std::fs::write(&token, json!({"token": gcp::SUBJECT_TOKEN}).to_string()).unwrap();
    federated(
        &s,
        json!({"file": token, "format": {"type": "json", "subject_token_field_name": "token"}}),
        false,
    );
    assert_eq!(s.server.impersonations(), 0);
}

#[test]
fn an_external_account_fetches_its_subject_token_from_a_url_with_headers() {
    let s = Setup::new();
    let (name, value) = gcp::SUBJECT_HEADER;
    federated(
        &s,
        json!({"url": format!("{}/subject", s.server.url()), "headers": {name: value}, "format": {"type": "json", "subject_token_field_name": "id_token"}}),
        true,
    );
    assert_eq!(s.server.http().count("GET", "/subject"), 1);
    assert_eq!(s.server.impersonations(), 1);
}

#[test]
fn a_refused_subject_token_names_the_pool() {
    let s = Setup::new();
    let token = s.path("token");
    std::fs::write(&token, "expired-s3cr3t").unwrap();
    let file = s
        .server
        .external_account_file(s.dir.path(), json!({"file": token}), true);
    let out = s.generate_with(
        &[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())],
        &one(&format!("{DB}#pw")),
    );
    assert_eq!(
        errors(&out),
        [format!(
            "error: gcpsecretmanager: login failed: 400 invalid_grant: Unable to parse the ID Token: the token exchange for {}",
            gcp::AUDIENCE
        )]
    );
    assert_eq!((s.server.sts_requests(), s.server.impersonations()), (1, 0));
}

#[test]
fn gcloud_user_credentials_under_home_are_used_without_the_variable() {
    let s = Setup::new();
    let home = tempfile::tempdir().unwrap();
    s.server.authorized_user_file(
        &home
            .path()
            .join(".config/gcloud/application_default_credentials.json"),
    );
    s.server.add(DB, br#"{"pw":"user-s3cr3t"}"#);
    let out = Run::generate(&one(&format!("{DB}#pw")))
        .home(home.path())
        .env("AVP_TYPE", "gcpsecretmanager")
        .env("AVP_GCP_ENDPOINT", s.server.url())
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .arg(VERBOSE)
        .output();
    assert_no_leak(&stderr(&out));
    assert_output(&out, &format!("{SECRET}user-s3cr3t\n"));
    assert_eq!(s.server.token_requests(), 1);
    let grant = &s.server.http().requests()[0];
    let form: std::collections::BTreeMap<String, String> = grant.form().into_iter().collect();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["client_id"], gcp::CLIENT_ID);
}

/// A run that finds no credentials file: the metadata server at `host`.
fn on_gke(s: &Setup, host: &str, args: &[&str], input: &str) -> Output {
    let home = tempfile::tempdir().unwrap();
    let out = Run::new(args)
        .stdin(input)
        .home(home.path())
        .env("AVP_TYPE", "gcpsecretmanager")
        .env("AVP_GCP_ENDPOINT", s.server.url())
        .env("GCE_METADATA_HOST", host)
        .arg(VERBOSE)
        .output();
    assert_no_leak(&stderr(&out));
    out
}

#[test]
fn without_a_credentials_file_the_metadata_server_gives_the_token() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"gke-s3cr3t"}"#);
    let out = on_gke(
        &s,
        &s.server.host(),
        &["generate", "-"],
        &one(&format!("{DB}#pw")),
    );
    assert_output(&out, &format!("{SECRET}gke-s3cr3t\n"));
    assert_eq!(s.server.metadata_token_requests(), 1);
    assert_eq!(s.server.http().requests().len(), 2);
    let request = &s.server.http().requests()[0];
    assert_eq!(request.header("metadata-flavor"), Some("Google"));
}

#[test]
fn an_unreachable_metadata_server_fails_the_login() {
    let s = Setup::new();
    let out = on_gke(
        &s,
        "127.0.0.1:1",
        &["generate", "-"],
        &one(&format!("{DB}#pw")),
    );
    let errors = errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("error: gcpsecretmanager: login failed: cannot reach the metadata server for the access token from the metadata server 127.0.0.1:1: "),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with("(gave up after retrying)"),
        "{errors:?}"
    );
}

/// The lines of `doctor`'s checks of the default profile.
fn checks(out: &Output) -> String {
    let text = stdout(out);
    text.lines()
        .skip_while(|l| !l.starts_with("profile default"))
        .filter(|l| {
            let l = l.trim_start();
            ["credentials ", "token ", "access ", "hint: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{}\n", l.trim()))
        .collect()
}

#[test]
fn doctor_checks_the_credentials_the_token_and_access_to_the_project() {
    let s = Setup::new();
    s.server.add(DB, b"x-s3cr3t");
    let out = s.run(&["doctor"], &[], "");
    assert_no_leak(&stdout(&out));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        checks(&out),
        format!(
            "credentials  ok  service account secretsubst@test-project.iam.gserviceaccount.com from GOOGLE_APPLICATION_CREDENTIALS {}\ntoken        ok  an access token was issued\naccess       ok  Secret Manager accepts the token in project test-project\n",
            s.credentials
        )
    );
    assert!(
        stdout(&out).contains("AVP_GCP_ENDPOINT"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.server.accesses(), 0, "doctor reads no secret");
    assert_eq!(
        s.server
            .http()
            .count("GET", "/v1/projects/test-project/secrets"),
        1
    );
    s.server.deny_list();
    let out = s.run(&["doctor"], &[], "");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(checks(&out).contains("access       ok  Secret Manager accepts the token in project test-project (listing secrets is denied, which reads do not need; they need roles/secretmanager.secretAccessor)\n"), "{}", checks(&out));
}

#[test]
fn doctor_names_a_refused_key_and_a_missing_file_with_hints() {
    let s = Setup::new();
    let wrong = s
        .server
        .service_account_file_with(s.dir.path(), gcp::OTHER_KEY);
    let out = s.run(
        &["doctor"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", wrong.to_str().unwrap())],
        "",
    );
    assert_no_leak(&stdout(&out));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        checks(&out),
        format!(
            "credentials  ok      service account secretsubst@test-project.iam.gserviceaccount.com from GOOGLE_APPLICATION_CREDENTIALS {}\ntoken        FAILED  400 invalid_grant: Invalid JWT Signature: the access token of service account secretsubst@test-project.iam.gserviceaccount.com\nhint: the key in GOOGLE_APPLICATION_CREDENTIALS may be deleted or disabled, or secretsubst@test-project.iam.gserviceaccount.com gone: create a new key, and check the file's token_uri\n",
            wrong.display()
        )
    );
    let missing = s.path("missing.json");
    let out = s.run(
        &["doctor"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", &missing)],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        checks(&out),
        format!(
            "credentials  FAILED  GOOGLE_APPLICATION_CREDENTIALS {missing}: cannot read: No such file or directory (os error 2)\nhint: GOOGLE_APPLICATION_CREDENTIALS must name a readable credentials JSON file (service_account, external_account or authorized_user); unset it on GKE to use Workload Identity through the metadata server\n"
        )
    );
}

#[test]
fn doctor_on_gke_asks_the_metadata_server_for_the_token_and_the_project() {
    let s = Setup::new();
    let host = s.server.host();
    let out = on_gke(&s, &host, &["doctor"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        checks(&out),
        format!(
            "credentials  ok  the metadata server at {host} (no GOOGLE_APPLICATION_CREDENTIALS, no ~/.config/gcloud/application_default_credentials.json)\ntoken        ok  an access token was issued\naccess       ok  Secret Manager accepts the token in project test-project\n"
        )
    );
    let out = on_gke(&s, "127.0.0.1:1", &["doctor"], "");
    assert_eq!(out.status.code(), Some(1));
    let checks = checks(&out);
    assert!(checks.contains("token        FAILED  cannot reach the metadata server for the access token from the metadata server 127.0.0.1:1: "), "{checks}");
    assert!(checks.contains("hint: the metadata server does not answer: outside GKE and GCE set GOOGLE_APPLICATION_CREDENTIALS"), "{checks}");
}

#[test]
fn a_profile_reads_secret_manager_beside_the_default_backend() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"profile-s3cr3t"}"#);
    let values = s.path("values.yaml");
    std::fs::write(&values, "app:\n  user: file-s3cr3t\n").unwrap();
    let config = s.path("settings.yaml");
    std::fs::write(
        &config,
        format!(
            "AVP_TYPE: file\nAVP_VALUES_FILE: {values}\nbackends:\n  gcp-prod:\n    AVP_TYPE: gcpsecretmanager\n    AVP_GCP_ENDPOINT: {}\n    GOOGLE_APPLICATION_CREDENTIALS: {}\n",
            s.server.url(),
            s.credentials
        ),
    )
    .unwrap();
    let input = format!("{SECRET}<path:app#user>\n  y: <path:gcp-prod:{DB}#pw>\n");
    let out = Run::generate(&input)
        .args(["-c", &config, VERBOSE])
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output();
    assert_no_leak(&stderr(&out));
    assert_output(&out, &format!("{SECRET}file-s3cr3t\n  y: profile-s3cr3t\n"));
    assert!(
        stderr(&out)
            .contains("gcpsecretmanager (gcp-prod): unique secrets: 1, backend requests: 1"),
        "{}",
        stderr(&out)
    );
    let input = format!("{SECRET}<path:gcp-prod:projects/test-project/secrets/gone#pw>\n");
    let out = Run::generate(&input)
        .args(["-c", &config])
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output();
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:gcp-prod:projects/test-project/secrets/gone#pw>: gcpsecretmanager (gcp-prod): 404 NOT_FOUND: Secret [projects/test-project/secrets/gone] not found or has no versions: projects/test-project/secrets/gone"
        ]
    );
}

#[test]
fn check_reports_each_placeholders_status_without_values() {
    let s = Setup::new();
    s.server.add(DB, br#"{"pw":"x-s3cr3t"}"#);
    s.server
        .add("projects/test-project/secrets/locked", b"y-s3cr3t");
    s.server.deny("projects/test-project/secrets/locked");
    let input = format!(
        "{SECRET}<path:{DB}#pw>\n  a: <path:{DB}#nope>\n  b: <path:projects/test-project/secrets/locked#locked>\n  c: <path:projects/test-project/secrets/gone#k>\n  d: <path:bad#k>\n"
    );
    let out = s.run(&["check", "--format", "json", "-"], &[], &input);
    assert_no_leak(&stdout(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let statuses: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ok", "missing-key", "denied", "not-found", "invalid"]
    );
}
