//! The real binary against the IBM Cloud test server (IAM and Secrets Manager v2 on one loopback
//! port): both path forms and every secret type, versions, the group look-up, errors and
//! retries, both credentials, the exact requests of a run, `doctor` and a profile. Every run is
//! verbose, and no value, key or token may reach stderr.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::json;
use support::ibm::{API_KEY, CR_TOKEN, IbmServer, NO_ACCESS_KEY, PROFILE_ID, PROFILE_NAME};
use support::output::{assert_output, stderr, stdout};
use support::run::Run;

const VERBOSE: &str = "--verbose-sensitive-output";
/// Every value and credential of these tests holds `s3cr3t`; tokens are `iam-access-token-N`.
const LEAKS: &[&str] = &[
    "s3cr3t",
    "iam-access-token",
    API_KEY,
    NO_ACCESS_KEY,
    CR_TOKEN,
];

/// The standard secrets in the `default` group.
fn server() -> IbmServer {
    let server = IbmServer::start();
    server.put(
        "default",
        "kv",
        "app",
        json!({"data": {"user": "admin-s3cr3t", "n": 3, "flag": true, "cfg": {"a": [1, "x"]}}}),
    );
    server
}

/// The settings of `server` with `changes` applied (an empty value removes the key).
fn env_with(server: &IbmServer, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = server.env();
    for (key, value) in changes {
        env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
    }
    env
}

fn assert_no_leak(out: &Output) {
    let all = format!("{}{}", stderr(out), String::from_utf8_lossy(&out.stdout));
    for leak in LEAKS {
        assert!(!stderr(out).contains(leak), "stderr leaks {leak:?}: {all}");
    }
}

/// `generate -` on `input`, verbose, with the server's settings changed by `changes`.
fn run(server: &IbmServer, changes: &[(&str, &str)], input: &str) -> Output {
    let env = env_with(server, changes);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Run::generate(input).envs(&env).arg(VERBOSE).output();
    assert_no_leak(&out);
    out
}

fn errors(out: &Output) -> Vec<String> {
    support::output::error_lines(out, LEAKS)
}

const SECRET: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  x: ";

#[test]
fn each_type_gives_its_fields_by_secret_name() {
    let server = server();
    server.put(
        "default",
        "username_password",
        "db",
        json!({"username": "app-user", "password": "db-pw-s3cr3t"}),
    );
    server.put(
        "default",
        "imported_cert",
        "tls",
        json!({"certificate": "imported-cert", "private_key": "tls-key-s3cr3t", "intermediate": "imported-inter"}),
    );
    server.put(
        "default",
        "public_cert",
        "web",
        json!({"certificate": "public-cert", "private_key": "web-key-s3cr3t", "intermediate": "public-inter"}),
    );
    server.put(
        "default",
        "private_cert",
        "internal",
        json!({"certificate": "private-cert", "private_key": "internal-key-s3cr3t", "issuing_ca": "issuing", "ca_chain": ["ca-1", "ca-2"]}),
    );
    server.put(
        "default",
        "iam_credentials",
        "ci",
        json!({"api_key": "ci-key-s3cr3t", "reuse_api_key": true, "ttl": "1d", "service_id": "ServiceId-3f1c2b4d"}),
    );
    let p = "ibmcloud";
    let input = format!(
        "kind: Config\nspec:\n  user: <path:{p}/username_password/secrets/groups/default/db#username>\n  password: <path:{p}/username_password/secrets/groups/default/db#password>\n  imported: <path:{p}/imported_cert/secrets/groups/default/tls#intermediate>\n  public: <path:{p}/public_cert/secrets/groups/default/web#certificate>\n  key: <path:{p}/public_cert/secrets/groups/default/web#private_key>\n  issuing: <path:{p}/private_cert/secrets/groups/default/internal#issuing_ca>\n  chain: <path:{p}/private_cert/secrets/groups/default/internal#ca_chain>\n  api: <path:{p}/iam_credentials/secrets/groups/default/ci#api_key>\n  n: <path:{p}/kv/secrets/groups/default/app#n>\n  flag: <path:{p}/kv/secrets/groups/default/app#flag>\n  a: <path:{p}/kv/secrets/groups/default/app#cfg | jsonPath {{.a[1]}}>\n"
    );
    assert_output(
        &run(&server, &[], &input),
        "kind: Config\nspec:\n  user: app-user\n  password: db-pw-s3cr3t\n  imported: imported-inter\n  public: public-cert\n  key: web-key-s3cr3t\n  issuing: issuing\n  chain: [\"ca-1\",\"ca-2\"]\n  api: ci-key-s3cr3t\n  n: 3\n  flag: true\n  a: x\n",
    );
    // One token; one listing per type; one read per secret.
    assert_eq!(server.counts(), [1, 0, 6, 6]);
}

#[test]
fn the_group_form_reads_only_the_named_secrets() {
    let server = server();
    server.put(
        "default",
        "arbitrary",
        "token",
        json!({"payload": "tok-s3cr3t"}),
    );
    server.put(
        "default",
        "arbitrary",
        "unused",
        json!({"payload": "unused-s3cr3t"}),
    );
    server.put(
        "default",
        "username_password",
        "db",
        json!({"username": "app-user", "password": "db-pw-s3cr3t"}),
    );
    let input = "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: ibmcloud/arbitrary/secrets/groups/default\nstringData:\n  token: <token>\n  inline: <path:ibmcloud/arbitrary/secrets/groups/default#token>\n  pw: <path:ibmcloud/username_password/secrets/groups/default#db | jsonPath {.password}>\n  db: <path:ibmcloud/username_password/secrets/groups/default#db>\n";
    assert_output(
        &run(&server, &[], input),
        "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: ibmcloud/arbitrary/secrets/groups/default\nstringData:\n  token: tok-s3cr3t\n  inline: tok-s3cr3t\n  pw: db-pw-s3cr3t\n  db: \"{\\\"password\\\":\\\"db-pw-s3cr3t\\\",\\\"username\\\":\\\"app-user\\\"}\"\n",
    );
    // `unused` is never read.
    assert_eq!(server.counts(), [1, 0, 2, 2]);
    // A name the group does not hold is a missing key, as in AVP.
    let out = run(
        &server,
        &[],
        &format!("{SECRET}<path:ibmcloud/arbitrary/secrets/groups/default#nope>\n"),
    );
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:ibmcloud/arbitrary/secrets/groups/default#nope>: missing value: key \"nope\" not found in ibmcloud/arbitrary/secrets/groups/default"
        ]
    );
}

#[test]
fn versions_are_read_by_id_and_alias_and_an_iam_credentials_version_gives_its_api_key() {
    let server = server();
    let (_, first) = server.put(
        "default",
        "kv",
        "rotating",
        json!({"data": {"pw": "v1-s3cr3t"}}),
    );
    let (_, second) = server.put(
        "default",
        "kv",
        "rotating",
        json!({"data": {"pw": "v2-s3cr3t"}}),
    );
    server.put(
        "default",
        "kv",
        "rotating",
        json!({"data": {"pw": "v3-s3cr3t"}}),
    );
    server.put(
        "default",
        "iam_credentials",
        "ci",
        json!({"api_key": "ci-old-s3cr3t", "reuse_api_key": true}),
    );
    server.put(
        "default",
        "iam_credentials",
        "ci",
        json!({"api_key": "ci-new-s3cr3t", "reuse_api_key": true}),
    );
    let kv = "ibmcloud/kv/secrets/groups/default/rotating";
    let ci = "ibmcloud/iam_credentials/secrets/groups/default/ci";
    let input = format!(
        "kind: Secret\nstringData:\n  id: <path:{kv}#pw#{second}>\n  previous: <path:{kv}#pw#previous>\n  current: <path:{kv}#pw#current>\n  latest: <path:{kv}#pw>\n  key: <path:{ci}#api_key#previous>\n"
    );
    let out = run(&server, &[], &input);
    assert_output(
        &out,
        "kind: Secret\nstringData:\n  id: v2-s3cr3t\n  previous: v2-s3cr3t\n  current: v3-s3cr3t\n  latest: v3-s3cr3t\n  key: ci-old-s3cr3t\n",
    );
    assert!(
        stderr(&out).contains("unique secrets: 5, backend requests: 5"),
        "{}",
        stderr(&out)
    );
    // The first version's data is gone; so is an expired API key.
    server.forget("ci", 0);
    let input = format!(
        "kind: Secret\nmetadata:\n  name: s\nstringData:\n  old: <path:{kv}#pw#{first}>\n  key: <path:{ci}#api_key#previous>\n"
    );
    assert_eq!(
        errors(&run(&server, &[], &input)),
        [
            format!(
                "error: <stdin>: doc 1 (Secret/s): stringData.old: <path:{kv}#pw#{first}>: ibmsecretsmanager: version {first} of secret \"rotating\" holds no secret data (Secrets Manager keeps it for the current and previous versions only): {kv} (version {first})"
            ),
            format!(
                "error: <stdin>: doc 1 (Secret/s): stringData.key: <path:{ci}#api_key#previous>: ibmsecretsmanager: version previous of secret \"ci\" has no API key (an iam_credentials secret without reuse_api_key keeps no API key of an earlier version: read the current one): {ci} (version previous)"
            ),
        ]
    );
}

#[test]
fn a_group_is_named_by_id_or_by_name_looked_up_once() {
    let server = server();
    let team = server.group("team-a");
    server.put(&team, "kv", "app", json!({"data": {"user": "team-s3cr3t"}}));
    server.put(
        &team,
        "kv",
        "other",
        json!({"data": {"user": "other-s3cr3t"}}),
    );
    let input = "kind: Secret\nstringData:\n  a: <path:ibmcloud/kv/secrets/groups/team-a/app#user>\n  b: <path:ibmcloud/kv/secrets/groups/team-a/other#user>\n";
    assert_output(
        &run(&server, &[], input),
        "kind: Secret\nstringData:\n  a: team-s3cr3t\n  b: other-s3cr3t\n",
    );
    assert_eq!(server.counts(), [1, 1, 1, 2]);
    let by_id = format!(
        "kind: Secret\nstringData:\n  a: <path:ibmcloud/kv/secrets/groups/{team}/app#user>\n"
    );
    assert_output(
        &run(&server, &[], &by_id),
        "kind: Secret\nstringData:\n  a: team-s3cr3t\n",
    );
    // No group listing for an id.
    assert_eq!(server.counts(), [2, 1, 2, 3]);
    let out = run(
        &server,
        &[],
        &format!("{SECRET}<path:ibmcloud/kv/secrets/groups/nope/app#user>\n"),
    );
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:ibmcloud/kv/secrets/groups/nope/app#user>: ibmsecretsmanager: No such secret group nope: ibmcloud/kv/secrets/groups/nope/app"
        ]
    );
}

#[test]
fn an_unknown_secret_and_a_denied_one_are_reported_without_retries() {
    let server = server();
    server.put(
        "default",
        "kv",
        "locked",
        json!({"data": {"k": "locked-s3cr3t"}}),
    );
    server.deny("locked");
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:ibmcloud/kv/secrets/groups/default/nothing#k>\n  b: <path:ibmcloud/kv/secrets/groups/default/locked#k>\n";
    assert_eq!(
        errors(&run(&server, &[], input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:ibmcloud/kv/secrets/groups/default/nothing#k>: ibmsecretsmanager: kv secret \"nothing\" not found in secret group default: ibmcloud/kv/secrets/groups/default/nothing",
            "error: <stdin>: doc 1 (Secret/s): stringData.b: <path:ibmcloud/kv/secrets/groups/default/locked#k>: ibmsecretsmanager: 403 Forbidden: ibmcloud/kv/secrets/groups/default/locked (check the access policy of the service ID or trusted profile: reading secrets needs the SecretsReader role)",
        ]
    );
    assert_eq!(server.counts(), [1, 0, 1, 1]);
}

#[test]
fn throttling_is_retried_after_the_servers_wait() {
    let server = server();
    server.fail_next("/api/v2/secrets/", 1, 429, Some(1));
    let started = Instant::now();
    let out = run(
        &server,
        &[],
        &format!("{SECRET}<path:ibmcloud/kv/secrets/groups/default/app#user>\n"),
    );
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
    // A lower bound only: the server asked for one second, the default backoff is 0.25 s.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        stderr(&out).contains("backend requests: 2"),
        "{}",
        stderr(&out)
    );
    // The retry repeats the read only: the token and the listing are kept.
    assert_eq!(server.counts(), [1, 0, 1, 2]);
}

#[test]
fn server_errors_are_retried_and_a_bad_request_is_not() {
    let server = server();
    server.fail_next("/api/v2/secrets", 1, 503, None);
    server.fail_next("/api/v2/secrets/", 1, 500, None);
    let input = format!("{SECRET}<path:ibmcloud/kv/secrets/groups/default/app#user>\n");
    assert_output(
        &run(&server, &[], &input),
        &format!("{SECRET}admin-s3cr3t\n"),
    );
    // The listing failed once (503), then the read (500).
    assert_eq!(server.counts(), [1, 0, 2, 2]);
    server.fail_next("/api/v2/secrets/", 1, 400, None);
    assert_eq!(
        errors(&run(&server, &[], &input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:ibmcloud/kv/secrets/groups/default/app#user>: ibmsecretsmanager: 400 Bad Request: ibmcloud/kv/secrets/groups/default/app"
        ]
    );
    assert_eq!(server.counts(), [2, 0, 3, 3]);
}

#[test]
fn a_refused_api_key_fails_the_one_login_of_the_run() {
    let server = server();
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:ibmcloud/kv/secrets/groups/default/app#user>\n  b: <path:ibmcloud/kv/secrets/groups/default/other#user>\n";
    let out = run(&server, &[("AVP_IBM_API_KEY", "wrong-key-s3cr3t")], input);
    assert_eq!(
        errors(&out),
        [
            "error: ibmsecretsmanager: login failed: 400 BXNIM0415E: Provided API key could not be found: the IAM token exchange (check the API key AVP_IBM_API_KEY)"
        ]
    );
    assert_eq!(server.counts(), [1, 0, 0, 0]);
    let form = &server.http().requests()[0];
    assert_eq!(form.header("accept"), Some("application/json"));
    assert!(form.form().contains(&(
        "grant_type".into(),
        "urn:ibm:params:oauth:grant-type:apikey".into()
    )));
}

#[test]
fn a_trusted_profile_logs_in_with_the_pods_compute_resource_token() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa-token");
    std::fs::write(&file, format!("{CR_TOKEN}\n")).unwrap();
    let file = file.display().to_string();
    let input = format!("{SECRET}<path:ibmcloud/kv/secrets/groups/default/app#user>\n");
    for profile in [
        ("AVP_IBM_TRUSTED_PROFILE_ID", PROFILE_ID),
        ("AVP_IBM_TRUSTED_PROFILE_NAME", PROFILE_NAME),
    ] {
        let changes = [
            ("AVP_IBM_API_KEY", ""),
            profile,
            ("AVP_IBM_CR_TOKEN_PATH", file.as_str()),
        ];
        assert_output(
            &run(&server, &changes, &input),
            &format!("{SECRET}admin-s3cr3t\n"),
        );
    }
    let exchanges: Vec<_> = server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/identity/token")
        .map(|r| r.form())
        .collect();
    assert_eq!(exchanges.len(), 2);
    let field = |form: &Vec<(String, String)>, name: &str| {
        form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    assert_eq!(
        field(&exchanges[0], "grant_type").as_deref(),
        Some("urn:ibm:params:oauth:grant-type:cr-token")
    );
    assert_eq!(field(&exchanges[0], "cr_token").as_deref(), Some(CR_TOKEN));
    assert_eq!(
        field(&exchanges[0], "profile_id").as_deref(),
        Some(PROFILE_ID)
    );
    assert_eq!(
        field(&exchanges[1], "profile_name").as_deref(),
        Some(PROFILE_NAME)
    );
    let changes = [
        ("AVP_IBM_API_KEY", ""),
        ("AVP_IBM_TRUSTED_PROFILE_ID", PROFILE_ID),
        ("AVP_IBM_CR_TOKEN_PATH", "/nonexistent/token"),
    ];
    assert_eq!(
        errors(&run(&server, &changes, &input)),
        [
            "error: ibmsecretsmanager: login failed: cannot read a compute resource token for the trusted profile from /nonexistent/token (AVP_IBM_CR_TOKEN_PATH) (check the trusted profile Profile-8a1d3c2e-0f4b-4c5d-9e6f-7a8b9c0d1e2f (AVP_IBM_TRUSTED_PROFILE_ID))"
        ]
    );
}

#[test]
fn each_unique_secret_is_read_once_whatever_the_placeholders() {
    let server = server();
    let b = "ibmcloud/kv/secrets/groups/default/app";
    let a = "ibmcloud/kv/secrets/groups/default";
    let doc = format!(
        "kind: Secret\nstringData:\n  user: <path:{b}#user>\n  n: <path:{b}#n>\n  again: <path:{b}#user>\n  group: <path:{a}#app | jsonPath {{.user}}>\n"
    );
    let input = format!("---\n{doc}---\n{doc}---\n{doc}");
    let out = run(&server, &[], &input);
    let want = "kind: Secret\nstringData:\n  user: admin-s3cr3t\n  n: \"3\"\n  again: admin-s3cr3t\n  group: admin-s3cr3t\n";
    assert_output(&out, &format!("---\n{want}---\n{want}---\n{want}"));
    // Two paths (the single-secret and the group form) name one secret: it is read once.
    assert!(
        stderr(&out).contains("unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.counts(), [1, 0, 1, 1]);
}

/// 100 kv secrets in the group `bulk`; returns the server and the group's id.
fn hundred() -> (IbmServer, String) {
    let server = IbmServer::start();
    let bulk = server.group("bulk");
    for i in 0..100 {
        server.put(
            &bulk,
            "kv",
            &format!("s{i:03}"),
            json!({"data": {"v": format!("value-{i}")}}),
        );
    }
    (server, bulk)
}

/// 100 documents, each reading its own secret twice.
fn hundred_placeholders(group: &str) -> (String, String) {
    let (mut input, mut want) = (String::new(), String::new());
    for i in 0..100 {
        let path = format!("ibmcloud/kv/secrets/groups/{group}/s{i:03}");
        input.push_str(&format!(
            "---\nkind: ConfigMap\ndata:\n  v: <path:{path}#v>\n  again: <path:{path}#v>\n"
        ));
        want.push_str(&format!(
            "---\nkind: ConfigMap\ndata:\n  v: value-{i}\n  again: value-{i}\n"
        ));
    }
    (input, want)
}

#[test]
fn a_hundred_secrets_take_one_token_one_listing_and_a_hundred_reads() {
    let (server, bulk) = hundred();
    let (input, want) = hundred_placeholders(&bulk);
    let out = run(&server, &[], &input);
    assert_output(&out, &want);
    assert!(
        stderr(&out).contains("unique secrets: 100, backend requests: 100,"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("value-"),
        "verbose output leaks values"
    );
    assert_eq!(server.counts(), [1, 0, 1, 100]);
    // By the group's name: one listing of the secret groups more.
    let (server, _) = hundred();
    let (input, want) = hundred_placeholders("bulk");
    assert_output(&run(&server, &[], &input), &want);
    assert_eq!(server.counts(), [1, 1, 1, 100]);
}

#[test]
fn a_listing_is_followed_page_by_page() {
    let server = IbmServer::start();
    for i in 0..201 {
        server.put(
            "default",
            "kv",
            &format!("s{i:03}"),
            json!({"data": {"v": format!("value-{i}")}}),
        );
    }
    let out = run(
        &server,
        &[],
        "kind: A\nv: <path:ibmcloud/kv/secrets/groups/default/s200#v>\n",
    );
    assert_output(&out, "kind: A\nv: value-200\n");
    let pages: Vec<(Option<String>, Option<String>)> = server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/secrets")
        .map(|r| (r.param("offset"), r.param("limit")))
        .collect();
    let page = |offset: &str| (Some(offset.to_owned()), Some("200".to_owned()));
    assert_eq!(pages, [page("0"), page("200")]);
    let query = server.http().requests()[1].query.clone().unwrap();
    assert_eq!(query, "groups=default&secret_types=kv&limit=200&offset=0");
}

#[test]
fn settings_and_paths_are_checked_with_avps_errors() {
    let server = server();
    let input = format!("{SECRET}<path:ibmcloud/kv/secrets/groups/default/app#user>\n");
    let out = run(&server, &[("AVP_IBM_INSTANCE_URL", "")], &input);
    assert_eq!(
        errors(&out),
        ["error: AVP_IBM_INSTANCE_URL or VAULT_ADDR required for IBM Secrets Manager"]
    );
    // AVP's fallback.
    let url = server.url();
    let out = run(
        &server,
        &[("AVP_IBM_INSTANCE_URL", ""), ("VAULT_ADDR", &url)],
        &input,
    );
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
    let before = server.counts();
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:secret/data/app#k>\n  b: <path:ibmcloud/arbitrary/secrets/groups/default/x#k>\n  c: <path:ibmcloud/service_credentials/secrets/groups/default/x#k>\n";
    assert_eq!(
        errors(&run(&server, &[], input)),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:secret/data/app#k>: ibmsecretsmanager: Path is not in the correct format (ibmcloud/$TYPE/secrets/groups/$GROUP) for IBM Secrets Manager: secret/data/app",
            "error: <stdin>: doc 1 (Secret/s): stringData.b: <path:ibmcloud/arbitrary/secrets/groups/default/x#k>: ibmsecretsmanager: The 'ibmcloud/$TYPE/secrets/groups/$GROUP/$SECRET' path format is not supported for arbitrary secrets: ibmcloud/arbitrary/secrets/groups/default/x",
            "error: <stdin>: doc 1 (Secret/s): stringData.c: <path:ibmcloud/service_credentials/secrets/groups/default/x#k>: ibmsecretsmanager: secret type \"service_credentials\" is not one secretsubst reads from IBM Secrets Manager (supported: arbitrary, username_password, imported_cert, public_cert, private_cert, iam_credentials, kv): ibmcloud/service_credentials/secrets/groups/default/x",
        ]
    );
    // The login only: no path reached Secrets Manager.
    let after = server.counts();
    assert_eq!(
        [
            after[0] - before[0],
            after[1],
            after[2] - before[2],
            after[3] - before[3]
        ],
        [1, 0, 0, 0]
    );
}

fn doctor(server: &IbmServer, changes: &[(&str, &str)]) -> Output {
    let env = env_with(server, changes);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Run::new(["doctor", VERBOSE]).envs(&env).output();
    assert_no_leak(&out);
    assert!(!stdout(&out).contains("s3cr3t"), "{}", stdout(&out));
    out
}

#[test]
fn doctor_checks_the_token_and_the_instances_access() {
    let server = server();
    server.group("team-a");
    let url = server.url();
    let out = doctor(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out).replace(&url, "URL");
    assert!(
        text.contains("  AVP_IBM_API_KEY            [redacted]"),
        "{text}"
    );
    assert!(
        text.contains("  token   ok  URL exchanged the API key AVP_IBM_API_KEY for a token, valid for 3600s\n  access  ok  URL lists 1 secret group\n"),
        "{text}"
    );
    assert_eq!(server.counts(), [1, 1, 0, 0]);
    let out = doctor(&server, &[("AVP_IBM_API_KEY", "wrong-key-s3cr3t")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out).replace(&url, "URL");
    assert!(
        text.contains("  token  FAILED  400 BXNIM0415E: Provided API key could not be found: the IAM token exchange (check the API key AVP_IBM_API_KEY)\n                 hint: AVP_IBM_API_KEY must be a valid API key of a service ID of the account, for IAM at URL (IBMCLOUD_IAM_API_ENDPOINT)\n"),
        "{text}"
    );
    assert!(!text.contains("  access "), "{text}");
    let out = doctor(&server, &[("AVP_IBM_API_KEY", NO_ACCESS_KEY)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out).replace(&url, "URL");
    assert!(
        text.contains("  access  FAILED  403 Forbidden: the secret group listing (check the access policy of the service ID or trusted profile: reading secrets needs the SecretsReader role)\n                  hint: give the service ID (or trusted profile) an access policy on this Secrets Manager instance with the SecretsReader service role\n"),
        "{text}"
    );
}

#[test]
fn a_named_profile_reads_ibm_beside_the_default_backend() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings.yaml");
    let url = server.url();
    std::fs::write(
        &config,
        format!("backends:\n  ibm-prod:\n    AVP_TYPE: ibmsecretsmanager\n    AVP_IBM_INSTANCE_URL: {url}\n    IBMCLOUD_IAM_API_ENDPOINT: {url}\n    AVP_IBM_API_KEY: {API_KEY}\n"),
    )
    .unwrap();
    let out = Run::new(["generate", VERBOSE, "-c"])
        .arg(&config)
        .arg("-")
        .stdin(format!(
            "{SECRET}<path:ibm-prod:ibmcloud/kv/secrets/groups/default/app#user>\n"
        ))
        .output();
    assert_no_leak(&out);
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
    assert!(
        stderr(&out)
            .contains("ibmsecretsmanager (ibm-prod): unique secrets: 1, backend requests: 1"),
        "{}",
        stderr(&out)
    );
}
