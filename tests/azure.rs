//! The real binary against the in-repo Azure test server (tests/support/azure.rs): Key Vault
//! reads, versions, missing and disabled secrets, refusals and retries, the three credentials
//! (client secret, Azure Workload Identity, managed identity), request counts, `doctor` and
//! profiles. Every run is verbose, and no stored value or credential may reach its output.
//! No run reaches the instance metadata service: each sets one of the other credentials.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::json;
use support::azure::{
    AzureServer, CLIENT_ID, CLIENT_SECRET, CREDENTIALS, FEDERATED_TOKEN, IDENTITY_HEADER,
    IDENTITY_PATH, TENANT, TOKEN_HEADER,
};
use support::http::Reply;
use support::output::{assert_output, stderr, stdout};
use support::run::Run;

const VERBOSE: &str = "--verbose-sensitive-output";
const SECRET: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n";

/// Every value a test stores contains this.
const VALUE_MARK: &str = "v4lue";

/// Asserts that neither stream holds a stored value or a credential.
fn assert_clean(out: &Output) {
    let all = format!("{}{}", stderr(out), stdout(out));
    let err = stderr(out);
    assert!(!err.contains(VALUE_MARK), "stderr leaks a value: {err}");
    for credential in CREDENTIALS {
        assert!(
            !all.contains(credential),
            "output leaks {credential:?}: {all}"
        );
    }
}

/// `generate -` of `input`, verbose, with `env`.
fn generate(env: &[(String, String)], input: &str) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Run::generate(input).envs(&env).arg(VERBOSE).output();
    assert_clean(&out);
    out
}

fn errors(out: &Output) -> Vec<String> {
    support::output::error_lines(out, &[VALUE_MARK])
}

/// A server with vault `app`: `user`, `password` (two versions) and `disabled-one`; returns
/// the first version of `password`.
fn app() -> (AzureServer, String) {
    let server = AzureServer::start();
    server.set("app", "user", "admin-v4lue");
    let first = server.set("app", "password", "old-v4lue");
    server.set("app", "password", "new-v4lue");
    server.set("app", "disabled-one", "off-v4lue");
    server.disable("app", "disabled-one");
    (server, first)
}

/// The paths of the requests to Key Vault, in order.
fn reads(server: &AzureServer) -> Vec<String> {
    server
        .http()
        .requests()
        .into_iter()
        .filter(|r| !r.path.contains("oauth2") && r.path != IDENTITY_PATH)
        .map(|r| r.path)
        .collect()
}

#[test]
fn keys_and_versions_are_read_once_each_with_one_token() {
    let (server, first) = app();
    let input = format!(
        "{SECRET}  a: <path:app#user>\n  b: <path:app#user>\n  c: <path:app#password>\n  d: <path:app#password#{first}>\n  url: \"postgres://<path:app#user>:<path:app#password>@db\"\n---\nkind: Secret\nmetadata:\n  name: t\ndata:\n  u: <path:app#user | base64encode>\n"
    );
    let out = generate(&server.env(), &input);
    assert_output(
        &out,
        &format!(
            "{SECRET}  a: admin-v4lue\n  b: admin-v4lue\n  c: new-v4lue\n  d: old-v4lue\n  url: \"postgres://admin-v4lue:new-v4lue@db\"\n---\nkind: Secret\nmetadata:\n  name: t\ndata:\n  u: YWRtaW4tdjRsdWU=\n"
        ),
    );
    assert_eq!(server.token_requests(), 1);
    let mut paths = reads(&server);
    paths.sort();
    assert_eq!(
        paths,
        [
            "/app/secrets/password".to_owned(),
            format!("/app/secrets/password/{first}"),
            "/app/secrets/user".to_owned(),
        ]
    );
    let get = server
        .http()
        .requests()
        .into_iter()
        .find(|r| r.path == "/app/secrets/user")
        .unwrap();
    assert_eq!(get.query.as_deref(), Some("api-version=7.4"));
    assert!(get.bearer().is_some_and(|t| t.starts_with(TOKEN_HEADER)));
    assert!(
        stderr(&out).contains("unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_client_secret_is_exchanged_once_per_run_as_entra_id_documents() {
    let (server, _) = app();
    let input = format!("{SECRET}  a: <path:app#user>\n  b: <path:app#password>\n");
    assert!(generate(&server.env(), &input).status.success());
    let tokens: Vec<_> = server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        tokens[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = tokens[0].form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("grant_type"), Some("client_credentials"));
    assert_eq!(field("client_id"), Some(CLIENT_ID));
    assert_eq!(field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(field("scope"), Some("https://vault.azure.net/.default"));
}

#[test]
fn a_refused_client_secret_names_the_aadsts_code_and_what_to_check() {
    let (server, _) = app();
    let env = server.env_with(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_CLIENT_SECRET", "wrong-s3cr3t"),
    ]);
    let out = generate(&env, &format!("{SECRET}  a: <path:app#user>\n"));
    assert!(!stderr(&out).contains("wrong-s3cr3t"));
    assert_eq!(
        errors(&out),
        [format!(
            "error: azurekeyvault: login failed: 401 invalid_client: AADSTS7000215: Invalid client secret provided: a token for client {CLIENT_ID} in tenant {TENANT} (AZURE_CLIENT_SECRET must be the value of a current client secret of the application (not its ID; it may have expired))"
        )]
    );
    // A refused credential is not retried, and no vault is asked.
    assert_eq!((server.token_requests(), reads(&server).len()), (1, 0));
}

#[test]
fn workload_identity_exchanges_the_projected_token_once() {
    let (server, _) = app();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, format!("{FEDERATED_TOKEN}\n")).unwrap();
    let file = file.display().to_string();
    let env = server.env_with(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", &file),
    ]);
    let input = format!("{SECRET}  a: <path:app#user>\n  b: <path:app#password>\n");
    assert_output(
        &generate(&env, &input),
        &format!("{SECRET}  a: admin-v4lue\n  b: new-v4lue\n"),
    );
    let tokens: Vec<_> = server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(tokens.len(), 1);
    let form = tokens[0].form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        field("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(field("client_assertion"), Some(FEDERATED_TOKEN));
    assert_eq!(field("client_secret"), None);

    std::fs::write(
        dir.path().join("azure-identity-token"),
        "eyJ.other-v4lue.sig",
    )
    .unwrap();
    let out = generate(&env, &input);
    assert_eq!(
        errors(&out),
        [format!(
            "error: azurekeyvault: login failed: 401 invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:argocd:argocd-repo-server': a token for client {CLIENT_ID} in tenant {TENANT} (Azure Workload Identity: the repo-server's service account needs the annotation azure.workload.identity/client-id set to AZURE_CLIENT_ID, its pod the label azure.workload.identity/use: \"true\", and the identity a federated credential for system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT with the cluster's OIDC issuer)"
        )]
    );
}

#[test]
fn a_managed_identity_endpoint_gives_the_token() {
    let (server, _) = app();
    let endpoint = format!("{}{IDENTITY_PATH}", server.url());
    let env = server.env_with(&[
        ("IDENTITY_ENDPOINT", &endpoint),
        ("IDENTITY_HEADER", IDENTITY_HEADER),
        ("AZURE_CLIENT_ID", CLIENT_ID),
    ]);
    assert_output(
        &generate(&env, &format!("{SECRET}  a: <path:app#user>\n")),
        &format!("{SECRET}  a: admin-v4lue\n"),
    );
    let tokens: Vec<_> = server
        .http()
        .requests()
        .into_iter()
        .filter(|r| r.path == IDENTITY_PATH)
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].header("x-identity-header"), Some(IDENTITY_HEADER));
    assert_eq!(
        tokens[0].param("api-version").as_deref(),
        Some("2019-08-01")
    );
    assert_eq!(
        tokens[0].param("resource").as_deref(),
        Some("https://vault.azure.net")
    );
    assert_eq!(tokens[0].param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(server.token_requests(), 1);
}

#[test]
fn a_sovereign_cloud_asks_for_its_own_audience() {
    let (server, _) = app();
    let mut env = server.env();
    env.push(("AVP_AZURE_CLOUD".into(), "AzureChinaCloud".into()));
    let out = generate(&env, &format!("{SECRET}  a: <path:app#user>\n"));
    let form = server.http().requests()[0].form();
    assert!(
        form.contains(&("scope".into(), "https://vault.azure.cn/.default".into())),
        "{form:?}"
    );
    // The test server is the public cloud's Entra ID.
    let error = &errors(&out)[0];
    assert!(error.contains("400 invalid_scope: AADSTS70011"), "{error}");

    env.pop();
    env.push(("AVP_AZURE_CLOUD".into(), "AzureGermanCloud".into()));
    let out = generate(&env, &format!("{SECRET}  a: <path:app#user>\n"));
    assert_eq!(
        errors(&out),
        [
            "error: AVP_AZURE_CLOUD must be one of AzurePublicCloud, AzureChinaCloud, AzureUSGovernment, got \"AzureGermanCloud\""
        ]
    );
}

#[test]
fn missing_and_disabled_secrets_are_missing_keys_that_remove_missing_drops() {
    let (server, _) = app();
    let manifest = "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: app\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  user: <user>\n  gone: <gone>\n  off: <disabled-one>\n";
    assert_output(
        &generate(&server.env(), manifest),
        "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: app\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  user: admin-v4lue\n",
    );
    let out = generate(
        &server.env(),
        &format!("{SECRET}  a: <path:app#gone>\n  b: <path:app#disabled-one>\n"),
    );
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:app#gone>: missing value: key \"gone\" not found in app",
            "error: <stdin>: doc 1 (Secret/s): stringData.b: <path:app#disabled-one>: missing value: key \"disabled-one\" not found in app",
        ]
    );
}

#[test]
fn a_path_annotation_reads_only_the_named_keys_of_a_large_vault() {
    let server = AzureServer::start();
    for i in 0..50 {
        server.set("big", &format!("key-{i}"), &format!("{VALUE_MARK}-{i}"));
    }
    let manifest = "kind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    avp.kubernetes.io/path: big\ndata:\n  a: <key-3>\n  b: <key-14>\n  c: <key-49>\n  d: <key-3>\n";
    assert_output(
        &generate(&server.env(), manifest),
        &manifest
            .replace("<key-3>", "v4lue-3")
            .replace("<key-14>", "v4lue-14")
            .replace("<key-49>", "v4lue-49"),
    );
    // Three GETs and no listing of the vault.
    let mut paths = reads(&server);
    paths.sort();
    assert_eq!(
        paths,
        [
            "/big/secrets/key-14",
            "/big/secrets/key-3",
            "/big/secrets/key-49"
        ]
    );
    assert_eq!(server.token_requests(), 1);
}

/// The performance contract's count: 100 unique secrets cost 100 GETs and one token.
#[test]
fn a_hundred_unique_secrets_take_a_hundred_gets_and_one_token() {
    let server = AzureServer::start();
    let mut input = String::from(SECRET);
    let mut want = String::from(SECRET);
    for i in 0..100 {
        server.set("many", &format!("s{i}"), &format!("{VALUE_MARK}{i}"));
        input.push_str(&format!(
            "  k{i}: <path:many#s{i}>\n  again{i}: <path:many#s{i}>\n"
        ));
        want.push_str(&format!("  k{i}: v4lue{i}\n  again{i}: v4lue{i}\n"));
    }
    assert_output(&generate(&server.env(), &input), &want);
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.reads("many"), 100);
    assert_eq!(server.http().requests().len(), 101);
    let mut paths = reads(&server);
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 100);
}

#[test]
fn a_denied_read_is_not_retried_and_names_the_role() {
    let (server, _) = app();
    server.deny("locked");
    server.set("locked", "k", "locked-v4lue");
    let out = generate(&server.env(), &format!("{SECRET}  a: <path:locked#k>\n"));
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:locked#k>: azurekeyvault: 403 Forbidden (ForbiddenByRbac): Caller is not authorized to perform action on resource: secret k in vault locked (give the identity secretsubst logs in as the Key Vault Secrets User role on the vault, or an access policy that allows get and list)"
        ]
    );
    assert_eq!(server.reads("locked"), 1);
}

#[test]
fn throttling_is_retried_after_the_time_key_vault_asks_for() {
    let (server, _) = app();
    let throttled = Reply::json(
        429,
        json!({"error": {"code": "Throttled", "message": "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"}}),
    )
    .with_header("retry-after", "1");
    server.http().fail_next("/app/secrets/user", 1, throttled);
    let started = Instant::now();
    let out = generate(
        &server.env(),
        &format!("{SECRET}  a: <path:app#user>\n  b: <path:app#password>\n"),
    );
    assert_output(&out, &format!("{SECRET}  a: admin-v4lue\n  b: new-v4lue\n"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Only the throttled key is asked for again.
    assert_eq!(
        (
            server.http().count("GET", "/app/secrets/user"),
            server.http().count("GET", "/app/secrets/password")
        ),
        (2, 1)
    );
    assert!(
        stderr(&out).contains("429 Throttled: Request was not processed because too many requests were received: secret user in vault app; retrying in 1s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn server_errors_are_retried_and_then_reported() {
    let (server, _) = app();
    let unavailable = Reply::json(
        503,
        json!({"error": {"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}}),
    );
    server
        .http()
        .fail_next("/app/secrets/user", 1, Reply::json(500, json!({"error": {"code": "InternalServerError", "message": "An unexpected error occurred."}})));
    server
        .http()
        .fail_next("/app/secrets/user", 1, unavailable.clone());
    let input = format!("{SECRET}  a: <path:app#user>\n");
    assert_output(
        &generate(&server.env(), &input),
        &format!("{SECRET}  a: admin-v4lue\n"),
    );
    assert_eq!(server.http().count("GET", "/app/secrets/user"), 3);

    let (server, _) = app();
    server.http().fail_next("/app/secrets/user", 3, unavailable);
    let out = generate(&server.env(), &input);
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:app#user>: azurekeyvault: 503 ServiceUnavailable: The service is temporarily unavailable: secret user in vault app (gave up after retrying)"
        ]
    );
    assert_eq!(server.http().count("GET", "/app/secrets/user"), 3);
}

#[test]
fn a_bad_request_or_a_refused_token_is_not_retried() {
    let (server, _) = app();
    server.http().fail_next(
        "/app/secrets/user",
        1,
        Reply::json(
            400,
            json!({"error": {"code": "BadParameter", "message": "The request URI contains an invalid version."}}),
        ),
    );
    let input = format!("{SECRET}  a: <path:app#user>\n");
    let out = generate(&server.env(), &input);
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:app#user>: azurekeyvault: 400 BadParameter: The request URI contains an invalid version: secret user in vault app"
        ]
    );
    assert_eq!(server.reads("app"), 1);

    let (server, _) = app();
    server.http().fail_next(
        "/app/secrets/user",
        1,
        Reply::json(
            401,
            json!({"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/00000000-0000-0000-0000-000000000000/."}}),
        ),
    );
    let out = generate(&server.env(), &input);
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:app#user>: azurekeyvault: 401 Unauthorized: AKV10032: Invalid issuer: secret user in vault app (Key Vault refused the token: check that AZURE_TENANT_ID is the vault's tenant and AVP_AZURE_CLOUD its cloud)"
        ]
    );
    assert_eq!(server.reads("app"), 1);
}

#[test]
fn vault_and_secret_names_are_checked_before_any_request() {
    let (server, _) = app();
    let out = generate(
        &server.env(),
        &format!("{SECRET}  a: <path:no_such/vault#k>\n  b: <path:app#db_password>\n"),
    );
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.a: <path:no_such/vault#k>: azurekeyvault: \"no_such/vault\" is not a Key Vault name: the path must name a vault, with 3 to 24 letters, digits and dashes",
            "error: <stdin>: doc 1 (Secret/s): stringData.b: <path:app#db_password>: azurekeyvault: key \"db_password\" is not a Key Vault secret name (1 to 127 letters, digits and dashes): vault app",
        ]
    );
    assert_eq!(reads(&server).len(), 0);
}

/// `doctor ARGS` with `env`, verbose; no credential on either stream.
fn doctor(env: &[(String, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Run::new(["doctor", VERBOSE]).envs(&env).output();
    assert_clean(&out);
    out
}

/// The lines of `doctor`'s checks, with the token's remaining seconds and the port named.
fn checks(out: &Output, server: &AzureServer) -> Vec<String> {
    let expiry = regex::Regex::new(r"expires in \d+s").unwrap();
    stdout(out)
        .lines()
        .filter(|l| {
            l.starts_with("  credentials")
                || l.starts_with("  token")
                || l.trim_start().starts_with("hint:")
        })
        .map(|l| {
            expiry
                .replace(l, "expires in Ns")
                .replace(&server.url(), "URL")
        })
        .collect()
}

#[test]
fn doctor_shows_the_credential_and_the_tokens_tenant_and_audience() {
    let (server, _) = app();
    let out = doctor(&server.env());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        checks(&out, &server),
        [
            format!(
                "  credentials  ok  client secret (AZURE_CLIENT_SECRET) of client {CLIENT_ID} in tenant {TENANT}"
            ),
            format!(
                "  token        ok  tenant {TENANT}, audience https://vault.azure.net, client {CLIENT_ID}, expires in Ns"
            ),
        ]
    );
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["AZURE_CLIENT_SECRET", "[redacted]", "env"]),
        "{text}"
    );
    // Only the token request: doctor reads no vault.
    assert_eq!(
        (server.token_requests(), server.http().requests().len()),
        (1, 1)
    );
}

#[test]
fn doctor_fails_a_refused_credential_with_a_hint() {
    let (server, _) = app();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJ.expired.sig").unwrap();
    let file = file.display().to_string();
    let out = doctor(&server.env_with(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", &file),
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        checks(&out, &server),
        [
            format!("  credentials  ok      workload identity: the token in {file} for client {CLIENT_ID} in tenant {TENANT}"),
            format!("  token        FAILED  401 invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:argocd:argocd-repo-server': a token for client {CLIENT_ID} in tenant {TENANT}"),
            "                       hint: Azure Workload Identity: the repo-server's service account needs the annotation azure.workload.identity/client-id set to AZURE_CLIENT_ID, its pod the label azure.workload.identity/use: \"true\", and the identity a federated credential for system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT with the cluster's OIDC issuer".to_owned(),
        ]
    );
}

#[test]
fn a_profile_reads_its_own_vault_url_and_the_environments_credential() {
    let (server, _) = app();
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "team/db:\n  pw: file-v4lue\n").unwrap();
    let config = dir.path().join("settings.yaml");
    std::fs::write(
        &config,
        format!(
            "AVP_TYPE: file\nAVP_VALUES_FILE: {}\nbackends:\n  kv:\n    AVP_TYPE: azurekeyvault\n    AVP_AZURE_VAULT_URL: {}\n",
            values.display(),
            server.vault_url()
        ),
    )
    .unwrap();
    // The credential comes from the environment, as the Workload Identity webhook sets it.
    let out = Run::new(["generate", VERBOSE, "-c"])
        .arg(&config)
        .arg("-")
        .stdin(format!(
            "{SECRET}  a: <path:kv:app#user>\n  b: <path:team/db#pw>\n"
        ))
        .envs(&[
            ("AZURE_AUTHORITY_HOST", &server.url()),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT_ID),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
        ])
        .output();
    assert_clean(&out);
    assert_output(
        &out,
        &format!("{SECRET}  a: admin-v4lue\n  b: file-v4lue\n"),
    );
    assert!(
        stderr(&out).contains("azurekeyvault (kv): unique secrets: 1, backend requests: 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.token_requests(), 1);
}
