//! Self-tests of the Vault test server (`tests/support/vault.rs`): every response must satisfy
//! the vaultrs client that `secretsubst` uses, and carry Vault's envelope field for field.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::vault::{Policy, VaultServer};
use vaultrs::client::{Identity, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

const ROOT: &str = "root-token";

/// Vault's response envelope (`logical.HTTPResponse`), in Vault's field order.
const ENVELOPE: [&str; 9] = [
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
    "mount_type",
];

fn client_with(
    vault: &VaultServer,
    token: &str,
    namespace: Option<&str>,
    identity: Option<Identity>,
) -> VaultClient {
    let ca_certs = vault
        .tls()
        .map(|t| vec![t.ca_cert.to_string_lossy().into_owned()])
        .unwrap_or_default();
    let settings = VaultClientSettingsBuilder::default()
        .address(vault.addr())
        .token(token)
        .ca_certs(ca_certs)
        .verify(true)
        .identity(identity)
        .namespace(namespace.map(str::to_string))
        .build()
        .expect("vaultrs settings");
    VaultClient::new(settings).expect("vaultrs client")
}

fn client(vault: &VaultServer, token: &str) -> VaultClient {
    client_with(vault, token, None, None)
}

struct Raw {
    status: u16,
    retry_after: Option<String>,
    content_type: Option<String>,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the body is a full envelope, fields in Vault's order, and returns it.
    fn envelope(&self) -> Value {
        let value = self.json();
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted_expected = ENVELOPE.to_vec();
        sorted_expected.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(
            sorted_keys, sorted_expected,
            "envelope fields of {}",
            self.text
        );
        let positions: Vec<usize> = ENVELOPE
            .iter()
            .map(|k| self.text.find(&format!("\"{k}\":")).expect("field present"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "envelope fields out of Vault's order: {}",
            self.text
        );
        let request_id = value["request_id"].as_str().expect("request_id string");
        assert_eq!(request_id.len(), 36, "uuid-like request_id");
        assert_eq!(request_id.matches('-').count(), 4);
        assert_eq!(value["lease_id"], "");
        assert_eq!(value["wrap_info"], Value::Null);
        value
    }

    fn errors(&self) -> Vec<String> {
        serde_json::from_value(self.json()["errors"].clone()).expect("errors array")
    }
}

/// A request through the same HTTP client (and TLS settings) vaultrs uses.
async fn raw(
    vault: &VaultServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    namespace: Option<&str>,
    body: Option<Value>,
) -> Raw {
    let c = client(vault, "");
    let url = format!("{}/v1/{}", vault.addr(), path.trim_start_matches('/'));
    let mut req = match method {
        "GET" => c.http.http.get(&url),
        "POST" => c.http.http.post(&url),
        "PUT" => c.http.http.put(&url),
        "DELETE" => c.http.http.delete(&url),
        other => panic!("unsupported method {other}"),
    };
    if let Some(token) = token {
        req = req.header("X-Vault-Token", token);
    }
    if let Some(ns) = namespace {
        req = req.header("X-Vault-Namespace", ns);
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.expect("request");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status().as_u16();
    let retry_after = header("retry-after");
    let content_type = header("content-type");
    let text = resp.text().await.expect("body");
    Raw {
        status,
        retry_after,
        content_type,
        text,
    }
}

fn api_error(result: Result<impl std::fmt::Debug, ClientError>) -> (u16, Vec<String>) {
    match result {
        Err(ClientError::APIError { code, errors }) => (code, errors),
        other => panic!("expected a Vault API error, got {other:?}"),
    }
}

fn kv_server() -> VaultServer {
    VaultServer::builder()
        .kv2("secret")
        .kv1("kv")
        .put("secret/app", json!({"user": "alice", "password": "v1"}))
        .put("secret/app", json!({"user": "alice", "password": "v2"}))
        .put("kv/legacy", json!({"api_key": "k-123"}))
        .token(ROOT, Policy::Root)
        .token(
            "reader",
            Policy::Read(vec!["secret/data/app".into(), "kv/".into()]),
        )
        .start()
}

// ---------------------------------------------------------------------------------------------
// KV v2
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kv2_read_returns_the_latest_version_with_metadata() {
    let vault = kv_server();
    let data: HashMap<String, String> = vaultrs::kv2::read(&client(&vault, ROOT), "secret", "app")
        .await
        .expect("kv2 read");
    assert_eq!(data["password"], "v2");

    let resp = raw(&vault, "GET", "secret/data/app", Some(ROOT), None, None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type.as_deref(), Some("application/json"));
    assert!(
        resp.text.ends_with("}\n"),
        "json.Encoder's trailing newline"
    );
    let env = resp.envelope();
    assert_eq!(env["mount_type"], "kv");
    assert_eq!(env["lease_duration"], 0);
    assert_eq!(env["renewable"], false);
    assert_eq!(env["auth"], Value::Null);
    assert_eq!(env["warnings"], Value::Null);
    assert_eq!(
        env["data"]["data"],
        json!({"user": "alice", "password": "v2"})
    );
    let meta = &env["data"]["metadata"];
    let mut keys: Vec<&String> = meta.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_time",
            "custom_metadata",
            "deletion_time",
            "destroyed",
            "version"
        ]
    );
    assert_eq!(meta["version"], 2);
    assert_eq!(meta["deletion_time"], "");
    assert_eq!(meta["destroyed"], false);
    assert_eq!(meta["custom_metadata"], Value::Null);
    let created = meta["created_time"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
}

#[tokio::test]
async fn kv2_read_version_returns_that_version() {
    let vault = kv_server();
    let c = client(&vault, ROOT);
    let v1: HashMap<String, String> = vaultrs::kv2::read_version(&c, "secret", "app", 1)
        .await
        .expect("version 1");
    assert_eq!(v1["password"], "v1");
    let v2: HashMap<String, String> = vaultrs::kv2::read_version(&c, "secret", "app", 2)
        .await
        .expect("version 2");
    assert_eq!(v2["password"], "v2");

    let resp = raw(
        &vault,
        "GET",
        "secret/data/app?version=1",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(resp.envelope()["data"]["metadata"]["version"], 1);
    assert_eq!(vault.count("GET", "secret/data/app"), 3);
    assert_eq!(
        vault.requests()[1].query.as_deref(),
        Some("version=2"),
        "vaultrs asks for ?version=N"
    );
}

#[tokio::test]
async fn kv2_missing_secret_or_version_is_404_with_empty_errors() {
    let vault = kv_server();
    let c = client(&vault, ROOT);
    let missing = vaultrs::kv2::read::<Value>(&c, "secret", "nope").await;
    assert_eq!(api_error(missing), (404, vec![]));
    let no_version = vaultrs::kv2::read_version::<Value>(&c, "secret", "app", 9).await;
    assert_eq!(api_error(no_version), (404, vec![]));

    let resp = raw(&vault, "GET", "secret/data/nope", Some(ROOT), None, None).await;
    assert_eq!(
        (resp.status, resp.text.as_str()),
        (404, "{\"errors\":[]}\n")
    );
}

#[tokio::test]
async fn kv2_soft_deleted_version_is_404_with_the_metadata_envelope() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"password": "old"}))
        .put("secret/app", json!({"password": "new"}))
        .delete_version("secret/app", 2)
        .token(ROOT, Policy::Root)
        .start();
    let resp = raw(&vault, "GET", "secret/data/app", Some(ROOT), None, None).await;
    assert_eq!(resp.status, 404);
    assert!(!resp.text.ends_with('\n'), "raw body written by the plugin");
    let env = resp.envelope();
    assert_eq!(env["mount_type"], "");
    assert_eq!(env["data"]["data"], Value::Null);
    let meta = &env["data"]["metadata"];
    assert_eq!(meta["version"], 2);
    assert_eq!(meta["destroyed"], false);
    assert!(meta["deletion_time"].as_str().unwrap().ends_with('Z'));

    // vaultrs sees a server error without an `errors` list.
    let read = vaultrs::kv2::read::<Value>(&client(&vault, ROOT), "secret", "app").await;
    match read {
        Err(ClientError::RestClientError { .. }) => {}
        other => panic!("expected a REST client error, got {other:?}"),
    }
    // The older version is still readable.
    let old: HashMap<String, String> =
        vaultrs::kv2::read_version(&client(&vault, ROOT), "secret", "app", 1)
            .await
            .expect("version 1");
    assert_eq!(old["password"], "old");
}

#[tokio::test]
async fn kv2_destroyed_version_is_404_with_destroyed_metadata() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"password": "gone"}))
        .destroy_version("secret/app", 1)
        .token(ROOT, Policy::Root)
        .start();
    let resp = raw(
        &vault,
        "GET",
        "secret/data/app?version=1",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(resp.status, 404);
    let env = resp.envelope();
    assert_eq!(env["data"]["data"], Value::Null);
    assert_eq!(env["data"]["metadata"]["destroyed"], true);
    assert_eq!(env["data"]["metadata"]["deletion_time"], "");
    assert!(!resp.text.contains("gone"));
}

#[tokio::test]
async fn kv2_path_without_data_segment_is_404_with_a_warning() {
    let vault = kv_server();
    let resp = raw(&vault, "GET", "secret/app", Some(ROOT), None, None).await;
    assert_eq!(resp.status, 404);
    let env = resp.envelope();
    assert_eq!(env["data"], Value::Null);
    assert_eq!(
        env["warnings"],
        json!([
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."
        ])
    );
}

#[tokio::test]
async fn kv2_unknown_query_parameters_are_reported_as_warnings() {
    let vault = kv_server();
    let resp = raw(
        &vault,
        "GET",
        "secret/data/app?token=x",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(
        resp.envelope()["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [token]"])
    );
}

// ---------------------------------------------------------------------------------------------
// KV v1
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kv1_read_returns_the_map_with_a_768h_lease() {
    let vault = kv_server();
    let c = client(&vault, ROOT);
    let data: HashMap<String, String> = vaultrs::kv1::get(&c, "kv", "legacy").await.expect("kv1");
    assert_eq!(data["api_key"], "k-123");
    let raw_resp = vaultrs::kv1::get_raw(&c, "kv", "legacy")
        .await
        .expect("kv1 raw");
    assert_eq!(raw_resp.lease_duration, 2_764_800);

    let resp = raw(&vault, "GET", "kv/legacy", Some(ROOT), None, None).await;
    let env = resp.envelope();
    assert_eq!(env["data"], json!({"api_key": "k-123"}));
    assert_eq!(env["lease_duration"], 2_764_800);
    assert_eq!(env["mount_type"], "kv");
}

#[tokio::test]
async fn kv1_ttl_key_sets_the_lease_duration() {
    let vault = VaultServer::builder()
        .kv1("kv")
        .put("kv/short", json!({"v": "x", "ttl": "1h"}))
        .token(ROOT, Policy::Root)
        .start();
    let resp = raw(&vault, "GET", "kv/short", Some(ROOT), None, None).await;
    assert_eq!(resp.envelope()["lease_duration"], 3600);
}

#[tokio::test]
async fn kv1_missing_secret_is_404() {
    let vault = kv_server();
    let missing = vaultrs::kv1::get::<Value>(&client(&vault, ROOT), "kv", "nope").await;
    assert_eq!(api_error(missing), (404, vec![]));
}

#[tokio::test]
async fn runtime_put_adds_kv2_versions_and_overwrites_kv1() {
    let vault = kv_server();
    vault.put("secret/app", json!({"password": "v3"}));
    vault.put("kv/legacy", json!({"api_key": "k-456"}));
    let c = client(&vault, ROOT);
    let v3: HashMap<String, String> = vaultrs::kv2::read(&c, "secret", "app").await.unwrap();
    assert_eq!(v3["password"], "v3");
    let v1: HashMap<String, String> = vaultrs::kv1::get(&c, "kv", "legacy").await.unwrap();
    assert_eq!(v1["api_key"], "k-456");
}

// ---------------------------------------------------------------------------------------------
// sys/internal/ui/mounts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ui_mounts_reports_the_mount_holding_a_path() {
    let vault = kv_server();
    let resp = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/secret/app",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(resp.status, 200);
    let env = resp.envelope();
    assert_eq!(env["mount_type"], "system");
    let data = &env["data"];
    assert_eq!(data["type"], "kv");
    assert_eq!(data["options"], json!({"version": "2"}));
    assert_eq!(data["path"], "secret/");
    for field in [
        "accessor",
        "config",
        "description",
        "external_entropy_access",
        "local",
        "plugin_version",
        "running_plugin_version",
        "running_sha256",
        "seal_wrap",
        "uuid",
    ] {
        assert!(data.get(field).is_some(), "missing {field}");
    }
    assert!(data["accessor"].as_str().unwrap().starts_with("kv_"));

    let kv1 = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/kv/legacy",
        Some("reader"),
        None,
        None,
    )
    .await;
    assert_eq!(kv1.envelope()["data"]["options"], json!({"version": "1"}));
}

#[tokio::test]
async fn ui_mounts_reports_auth_mounts_by_their_entry_path() {
    let vault = VaultServer::builder()
        .token(ROOT, Policy::Root)
        .approle("approle", "r", "s", Policy::Root)
        .start();
    let resp = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/auth/approle/login",
        Some(ROOT),
        None,
        None,
    )
    .await;
    let data = resp.envelope()["data"].clone();
    assert_eq!(data["type"], "approle");
    assert_eq!(data["path"], "approle/");
    assert_eq!(data["config"]["token_type"], "default-service");
}

#[tokio::test]
async fn ui_mounts_for_a_path_in_no_mount_is_the_preflight_403() {
    let vault = kv_server();
    let resp = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/nope/x",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.errors(),
        [
            "preflight capability check returned 403, please ensure client's policies grant access to path \"nope/x/\""
        ]
    );
}

#[tokio::test]
async fn ui_mounts_answers_403_when_denied() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .token(ROOT, Policy::Root)
        .deny_ui_mounts()
        .start();
    let resp = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/secret",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(resp.status, 403);
    assert!(resp.errors()[0].starts_with("preflight capability check returned 403"));
}

#[tokio::test]
async fn ui_mounts_checks_the_token() {
    let vault = kv_server();
    let none = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/secret",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(none.status, 403);
    assert_eq!(
        none.errors(),
        ["1 error occurred:\n\t* permission denied\n\n"]
    );
    let bogus = raw(
        &vault,
        "GET",
        "sys/internal/ui/mounts/secret",
        Some("bogus"),
        None,
        None,
    )
    .await;
    assert_eq!(
        bogus.errors(),
        ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]
    );
}

// ---------------------------------------------------------------------------------------------
// Tokens and policies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lookup_self_describes_a_root_token() {
    let vault = kv_server();
    let info = vaultrs::token::lookup_self(&client(&vault, ROOT))
        .await
        .expect("lookup-self");
    assert_eq!(info.policies, ["root"]);
    assert_eq!(info.path, "auth/token/root");
    assert_eq!(info.ttl, 0);
    assert_eq!(info.id, ROOT);

    let resp = raw(
        &vault,
        "GET",
        "auth/token/lookup-self",
        Some(ROOT),
        None,
        None,
    )
    .await;
    let env = resp.envelope();
    assert_eq!(env["mount_type"], "token");
    let data = &env["data"];
    assert_eq!(data["expire_time"], Value::Null);
    assert!(
        data.get("issue_time").is_none(),
        "a root token has no lease"
    );
    for field in [
        "accessor",
        "creation_time",
        "creation_ttl",
        "display_name",
        "entity_id",
        "explicit_max_ttl",
        "id",
        "meta",
        "num_uses",
        "orphan",
        "path",
        "policies",
        "ttl",
        "type",
    ] {
        assert!(data.get(field).is_some(), "missing {field}");
    }
}

#[tokio::test]
async fn lookup_self_describes_a_read_token_with_its_ttl() {
    let vault = kv_server();
    let info = vaultrs::token::lookup_self(&client(&vault, "reader"))
        .await
        .expect("lookup-self is allowed by the default policy");
    assert_eq!(info.policies, ["default", "read"]);
    assert_eq!(info.creation_ttl, 2_764_800);
    assert!(info.ttl > 2_764_000);
    assert!(info.expire_time.is_some() && info.issue_time.is_some());
    assert_eq!(info.renewable, Some(true));
}

#[tokio::test]
async fn unknown_token_is_403_permission_denied_and_invalid_token() {
    let vault = kv_server();
    let result = vaultrs::token::lookup_self(&client(&vault, "bogus")).await;
    assert_eq!(
        api_error(result),
        (
            403,
            vec!["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n".to_string()]
        )
    );
}

#[tokio::test]
async fn missing_token_is_403_permission_denied() {
    let vault = kv_server();
    let resp = raw(&vault, "GET", "secret/data/app", None, None, None).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.text, "{\"errors\":[\"permission denied\"]}\n");
}

#[tokio::test]
async fn read_policy_allows_its_prefixes_and_denies_the_rest() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"k": "v"}))
        .put("secret/other", json!({"k": "v"}))
        .token("reader", Policy::Read(vec!["secret/data/app".into()]))
        .start();
    let c = client(&vault, "reader");
    let ok: HashMap<String, String> = vaultrs::kv2::read(&c, "secret", "app").await.unwrap();
    assert_eq!(ok["k"], "v");
    let denied = vaultrs::kv2::read::<Value>(&c, "secret", "other").await;
    assert_eq!(
        api_error(denied),
        (
            403,
            vec!["1 error occurred:\n\t* permission denied\n\n".to_string()]
        )
    );
    // Policy is checked before routing: a missing secret under a denied path is still 403.
    let missing = vaultrs::kv2::read::<Value>(&c, "secret", "nope").await;
    assert_eq!(api_error(missing).0, 403);
}

#[tokio::test]
async fn revoke_tokens_invalidates_issued_tokens_but_not_static_ones() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"k": "v"}))
        .token(ROOT, Policy::Root)
        .approle(
            "approle",
            "role-1",
            "secret-1",
            Policy::Read(vec!["secret/".into()]),
        )
        .start();
    let auth = vaultrs::auth::approle::login(&client(&vault, ""), "approle", "role-1", "secret-1")
        .await
        .unwrap();
    vault.revoke_tokens();
    let revoked =
        vaultrs::kv2::read::<Value>(&client(&vault, &auth.client_token), "secret", "app").await;
    assert_eq!(api_error(revoked).0, 403);
    let still: HashMap<String, String> = vaultrs::kv2::read(&client(&vault, ROOT), "secret", "app")
        .await
        .unwrap();
    assert_eq!(still["k"], "v");
}

// ---------------------------------------------------------------------------------------------
// Logins
// ---------------------------------------------------------------------------------------------

/// A login response: `data: null`, the `auth` block, and (as observed on real Vault logins)
/// an empty `mount_type`.
fn assert_login_envelope(resp: &Raw) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text);
    let env = resp.envelope();
    assert_eq!(env["data"], Value::Null);
    assert_eq!(env["mount_type"], "");
    let auth = &env["auth"];
    let keys: Vec<&str> = auth
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accessor",
            "client_token",
            "entity_id",
            "lease_duration",
            "metadata",
            "mfa_requirement",
            "num_uses",
            "orphan",
            "policies",
            "renewable",
            "token_policies",
            "token_type"
        ]
    );
    let token = auth["client_token"].as_str().unwrap();
    assert!(token.starts_with("hvs.") && token.len() == 28, "{token}");
    assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(auth["lease_duration"], 2_764_800);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["mfa_requirement"], Value::Null);
    env
}

#[tokio::test]
async fn approle_login_issues_a_working_token() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"k": "v"}))
        .approle(
            "approle",
            "role-1",
            "secret-1",
            Policy::Read(vec!["secret/data/".into()]),
        )
        .start();
    let auth = vaultrs::auth::approle::login(&client(&vault, ""), "approle", "role-1", "secret-1")
        .await
        .expect("approle login");
    assert_eq!(auth.policies, ["default", "read"]);
    assert_eq!(auth.token_type, "service");
    assert!(auth.orphan);
    assert_eq!(auth.metadata.unwrap()["role_name"], "secretsubst");

    let c = client(&vault, &auth.client_token);
    let data: HashMap<String, String> = vaultrs::kv2::read(&c, "secret", "app").await.unwrap();
    assert_eq!(data["k"], "v");
    let info = vaultrs::token::lookup_self(&c).await.unwrap();
    assert_eq!(info.path, "auth/approle/login");
    assert_eq!(info.display_name, "approle");
    assert_eq!(info.entity_id, auth.entity_id);

    let again = raw(
        &vault,
        "PUT",
        "auth/approle/login",
        None,
        None,
        Some(json!({"role_id": "role-1", "secret_id": "secret-1"})),
    )
    .await;
    let env = assert_login_envelope(&again);
    assert_ne!(
        env["auth"]["client_token"],
        auth.client_token.as_str(),
        "fresh token"
    );
}

#[tokio::test]
async fn approle_login_with_bad_credentials_is_400() {
    let vault = VaultServer::builder()
        .approle("approle", "role-1", "secret-1", Policy::Root)
        .start();
    let c = client(&vault, "");
    let bad = vaultrs::auth::approle::login(&c, "approle", "role-1", "wrong").await;
    assert_eq!(
        api_error(bad),
        (400, vec!["invalid role or secret ID".into()])
    );
    let unknown = vaultrs::auth::approle::login(&c, "approle", "nobody", "x").await;
    assert_eq!(
        api_error(unknown),
        (400, vec!["invalid role or secret ID".into()])
    );
    let missing = raw(
        &vault,
        "POST",
        "auth/approle/login",
        None,
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(missing.errors(), ["missing role_id"]);
}

#[tokio::test]
async fn approle_root_policy_maps_to_an_admin_policy() {
    let vault = VaultServer::builder()
        .kv1("kv")
        .put("kv/x", json!({"a": "b"}))
        .approle("approle", "r", "s", Policy::Root)
        .start();
    let auth = vaultrs::auth::approle::login(&client(&vault, ""), "approle", "r", "s")
        .await
        .unwrap();
    assert_eq!(auth.policies, ["admin", "default"]);
    let data: HashMap<String, String> =
        vaultrs::kv1::get(&client(&vault, &auth.client_token), "kv", "x")
            .await
            .unwrap();
    assert_eq!(data["a"], "b");
}

#[tokio::test]
async fn userpass_login_checks_the_password() {
    let vault = VaultServer::builder()
        .userpass(
            "userpass",
            "alice",
            "s3cret",
            Policy::Read(vec!["kv/".into()]),
        )
        .start();
    let c = client(&vault, "");
    let auth = vaultrs::auth::userpass::login(&c, "userpass", "alice", "s3cret")
        .await
        .expect("userpass login");
    assert_eq!(auth.metadata.unwrap()["username"], "alice");
    let info = vaultrs::token::lookup_self(&client(&vault, &auth.client_token))
        .await
        .unwrap();
    assert_eq!(info.display_name, "userpass-alice");
    assert_eq!(info.path, "auth/userpass/login/alice");

    let bad = vaultrs::auth::userpass::login(&c, "userpass", "alice", "nope").await;
    assert_eq!(
        api_error(bad),
        (400, vec!["invalid username or password".into()])
    );
    assert_eq!(vault.count("POST", "auth/userpass/login/alice"), 2);
}

#[tokio::test]
async fn userpass_locks_out_after_five_failures_like_vault() {
    let vault = VaultServer::builder()
        .userpass("userpass", "alice", "s3cret", Policy::Root)
        .start();
    let c = client(&vault, "");
    for _ in 0..5 {
        let bad = vaultrs::auth::userpass::login(&c, "userpass", "alice", "nope").await;
        assert_eq!(api_error(bad).0, 400);
    }
    let locked = vaultrs::auth::userpass::login(&c, "userpass", "alice", "s3cret").await;
    assert_eq!(api_error(locked), (403, vec!["permission denied".into()]));
}

fn service_account_jwt(namespace: &str, name: &str, uid: &str) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "RS256", "kid": "k"})),
        b64(&json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": format!("{name}-token"),
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        }))
    )
}

#[tokio::test]
async fn kubernetes_login_reports_the_service_account() {
    let jwt = service_account_jwt(
        "argocd",
        "repo-server",
        "1b2c3d4e-0000-1111-2222-333344445555",
    );
    let vault = VaultServer::builder()
        .kubernetes(
            "kubernetes",
            "argocd",
            &jwt,
            Policy::Read(vec!["secret/".into()]),
        )
        .start();
    let c = client(&vault, "");
    let auth = vaultrs::auth::kubernetes::login(&c, "kubernetes", "argocd", &jwt)
        .await
        .expect("kubernetes login");
    let meta = auth.metadata.unwrap();
    assert_eq!(meta["role"], "argocd");
    assert_eq!(meta["service_account_name"], "repo-server");
    assert_eq!(meta["service_account_namespace"], "argocd");
    assert_eq!(
        meta["service_account_uid"],
        "1b2c3d4e-0000-1111-2222-333344445555"
    );
    assert_eq!(meta["service_account_secret_name"], "repo-server-token");

    let wrong_jwt = vaultrs::auth::kubernetes::login(&c, "kubernetes", "argocd", "x.y.z").await;
    assert_eq!(
        api_error(wrong_jwt),
        (403, vec!["permission denied".into()])
    );
    let wrong_role = vaultrs::auth::kubernetes::login(&c, "kubernetes", "other", &jwt).await;
    assert_eq!(
        api_error(wrong_role),
        (400, vec!["invalid role name \"other\"".into()])
    );
}

#[tokio::test]
async fn github_login_issues_a_token_for_the_personal_access_token() {
    let vault = VaultServer::builder()
        .github("github", "ghp_good", Policy::Read(vec!["secret/".into()]))
        .start();
    let ok = raw(
        &vault,
        "POST",
        "auth/github/login",
        None,
        None,
        Some(json!({"token": "ghp_good"})),
    )
    .await;
    let env = assert_login_envelope(&ok);
    assert_eq!(
        env["auth"]["metadata"],
        json!({"org": "secretsubst", "username": "octocat"})
    );

    let bad = raw(
        &vault,
        "POST",
        "auth/github/login",
        None,
        None,
        Some(json!({"token": "ghp_bad"})),
    )
    .await;
    assert_eq!(bad.status, 500);
    assert_eq!(
        bad.errors(),
        ["GET https://api.github.com/user: 401 Bad credentials []"]
    );
}

#[tokio::test]
async fn every_login_method_answers_the_full_envelope() {
    let jwt = service_account_jwt("ns", "sa", "00000000-0000-0000-0000-000000000001");
    let vault = VaultServer::builder()
        .approle("approle", "r", "s", Policy::Root)
        .userpass("userpass", "u", "p", Policy::Root)
        .kubernetes("k8s", "role", &jwt, Policy::Root)
        .github("gh", "t", Policy::Root)
        .start();
    let cases = [
        (
            "auth/approle/login",
            json!({"role_id": "r", "secret_id": "s"}),
        ),
        ("auth/userpass/login/u", json!({"password": "p"})),
        ("auth/k8s/login", json!({"role": "role", "jwt": jwt})),
        ("auth/gh/login", json!({"token": "t"})),
    ];
    for (path, body) in cases {
        let resp = raw(&vault, "POST", path, None, None, Some(body)).await;
        assert_login_envelope(&resp);
    }
}

#[tokio::test]
async fn login_to_an_unknown_mount_without_a_token_is_403() {
    let vault = VaultServer::builder().start();
    let result = vaultrs::auth::approle::login(&client(&vault, ""), "nope", "r", "s").await;
    assert_eq!(api_error(result), (403, vec!["permission denied".into()]));
}

#[tokio::test]
async fn login_endpoints_accept_put_but_not_get() {
    let vault = VaultServer::builder()
        .approle("approle", "r", "s", Policy::Root)
        .start();
    let get = raw(&vault, "GET", "auth/approle/login", None, None, None).await;
    assert_eq!(get.status, 405);
    let put = raw(
        &vault,
        "PUT",
        "auth/approle/login",
        None,
        None,
        Some(json!({"role_id": "r", "secret_id": "s"})),
    )
    .await;
    assert_eq!(put.status, 200);
}

// ---------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn namespaces_isolate_mounts_tokens_and_auth_methods() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/app", json!({"where": "root"}))
        .token(ROOT, Policy::Root)
        .namespace("team-a")
        .kv2("secret")
        .put("secret/app", json!({"where": "team-a"}))
        .token("team-token", Policy::Read(vec!["secret/".into()]))
        .approle(
            "approle",
            "team-role",
            "team-secret",
            Policy::Read(vec!["secret/".into()]),
        )
        .root_namespace()
        .start();

    let in_ns = client_with(&vault, "team-token", Some("team-a"), None);
    let data: HashMap<String, String> = vaultrs::kv2::read(&in_ns, "secret", "app").await.unwrap();
    assert_eq!(data["where"], "team-a");

    // The namespace's token does not exist in the root namespace.
    let outside = vaultrs::kv2::read::<Value>(&client(&vault, "team-token"), "secret", "app").await;
    assert_eq!(
        api_error(outside),
        (
            403,
            vec!["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n".into()]
        )
    );
    // Nor its auth method.
    let root_login =
        vaultrs::auth::approle::login(&client(&vault, ""), "approle", "team-role", "team-secret")
            .await;
    assert_eq!(api_error(root_login).0, 403);
    let ns_login = vaultrs::auth::approle::login(
        &client_with(&vault, "", Some("team-a"), None),
        "approle",
        "team-role",
        "team-secret",
    )
    .await
    .expect("login inside the namespace");
    let info = vaultrs::token::lookup_self(&client_with(
        &vault,
        &ns_login.client_token,
        Some("team-a"),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(info.path, "auth/approle/login");

    // The root namespace's secret is its own.
    let root_data: HashMap<String, String> =
        vaultrs::kv2::read(&client(&vault, ROOT), "secret", "app")
            .await
            .unwrap();
    assert_eq!(root_data["where"], "root");
    // A root-namespace root token also reaches into child namespaces, as in Vault.
    let from_root: HashMap<String, String> = vaultrs::kv2::read(
        &client_with(&vault, ROOT, Some("team-a"), None),
        "secret",
        "app",
    )
    .await
    .unwrap();
    assert_eq!(from_root["where"], "team-a");
    // The namespace can also be given as a path prefix.
    let prefixed = raw(
        &vault,
        "GET",
        "team-a/secret/data/app",
        Some(ROOT),
        None,
        None,
    )
    .await;
    assert_eq!(prefixed.envelope()["data"]["data"]["where"], "team-a");

    let requests = vault.requests();
    assert_eq!(requests[0].namespace.as_deref(), Some("team-a"));
    assert_eq!(requests[1].namespace, None);
}

// ---------------------------------------------------------------------------------------------
// TLS and certificate auth
// ---------------------------------------------------------------------------------------------

fn identity(vault: &VaultServer) -> Identity {
    let files = vault.tls().expect("TLS server");
    let mut pem = std::fs::read(&files.client_cert).unwrap();
    pem.extend(std::fs::read(&files.client_key).unwrap());
    Identity::from_pem(&pem).expect("client identity")
}

#[tokio::test]
async fn tls_server_is_trusted_with_the_ca_file() {
    let vault = VaultServer::builder()
        .tls()
        .kv2("secret")
        .put("secret/app", json!({"k": "v"}))
        .token(ROOT, Policy::Root)
        .start();
    assert!(vault.addr().starts_with("https://127.0.0.1:"));
    let files = vault.tls().unwrap();
    assert!(files.ca_cert.exists() && files.client_cert.exists() && files.client_key.exists());
    let data: HashMap<String, String> = vaultrs::kv2::read(&client(&vault, ROOT), "secret", "app")
        .await
        .expect("read over TLS");
    assert_eq!(data["k"], "v");

    // Without the CA the server certificate is not trusted.
    let settings = VaultClientSettingsBuilder::default()
        .address(vault.addr())
        .token(ROOT)
        .ca_certs(vec![])
        .verify(true)
        .identity(None)
        .build()
        .unwrap();
    let untrusted = VaultClient::new(settings).unwrap();
    assert!(
        vaultrs::kv2::read::<Value>(&untrusted, "secret", "app")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn cert_login_requires_the_ca_signed_client_certificate() {
    let vault = VaultServer::builder()
        .tls()
        .kv1("kv")
        .put("kv/x", json!({"a": "b"}))
        .cert("cert", Policy::Read(vec!["kv/".into()]))
        .start();
    let with_cert = client_with(&vault, "", None, Some(identity(&vault)));
    let auth = vaultrs::auth::cert::login(&with_cert, "cert", "secretsubst")
        .await
        .expect("cert login");
    let meta = auth.metadata.unwrap();
    assert_eq!(meta["common_name"], "secretsubst-client");
    assert_eq!(meta["cert_name"], "secretsubst");
    assert!(meta["serial_number"].parse::<u64>().is_ok());
    let data: HashMap<String, String> =
        vaultrs::kv1::get(&client(&vault, &auth.client_token), "kv", "x")
            .await
            .unwrap();
    assert_eq!(data["a"], "b");

    let without_cert = vaultrs::auth::cert::login(&client(&vault, ""), "cert", "secretsubst").await;
    assert_eq!(
        api_error(without_cert),
        (
            400,
            vec!["invalid certificate or no client certificate supplied".into()]
        )
    );
}

#[tokio::test]
async fn cert_login_warns_about_the_cert_name_field_vaultrs_sends() {
    let vault = VaultServer::builder()
        .tls()
        .cert("cert", Policy::Root)
        .start();
    let c = client_with(&vault, "", None, Some(identity(&vault)));
    let url = format!("{}/v1/auth/cert/login", vault.addr());
    let text = c
        .http
        .http
        .post(&url)
        .body(json!({"cert_name": "x"}).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = Raw {
        status: 200,
        retry_after: None,
        content_type: None,
        text,
    };
    let env = assert_login_envelope(&resp);
    assert_eq!(
        env["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [cert_name]"])
    );
}

// ---------------------------------------------------------------------------------------------
// Faults, latency, request log, lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fail_next_injects_statuses_with_retry_after() {
    let vault = kv_server();
    vault.fail_next(2, 429, Some(7));
    let first = raw(&vault, "GET", "secret/data/app", Some(ROOT), None, None).await;
    assert_eq!(first.status, 429);
    assert_eq!(first.retry_after.as_deref(), Some("7"));
    assert_eq!(
        first.errors(),
        ["request path \"secret/data/app\": rate limit quota exceeded"]
    );
    let second = raw(&vault, "GET", "kv/legacy", Some(ROOT), None, None).await;
    assert_eq!(second.status, 429);
    let third = raw(&vault, "GET", "secret/data/app", Some(ROOT), None, None).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.retry_after, None);

    vault.fail_next(1, 503, None);
    let sealed = vaultrs::kv2::read::<Value>(&client(&vault, ROOT), "secret", "app").await;
    assert_eq!(api_error(sealed), (503, vec!["Vault is sealed".into()]));
    vault.fail_next(1, 500, None);
    let internal = raw(&vault, "GET", "secret/data/app", Some(ROOT), None, None).await;
    assert_eq!(internal.status, 500);
    assert_eq!(
        internal.errors(),
        ["1 error occurred:\n\t* internal error\n\n"]
    );
    assert_eq!(
        vault.count("GET", "/v1/secret/data/app"),
        4,
        "failed requests are logged too"
    );
}

#[tokio::test]
async fn latency_delays_every_response() {
    let vault = VaultServer::builder()
        .kv1("kv")
        .put("kv/x", json!({"a": "b"}))
        .token(ROOT, Policy::Root)
        .latency(Duration::from_millis(150))
        .start();
    let started = Instant::now();
    let _ = raw(&vault, "GET", "kv/x", Some(ROOT), None, None).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    vault.set_latency(Duration::ZERO);
    let started = Instant::now();
    let _ = raw(&vault, "GET", "kv/x", Some(ROOT), None, None).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn request_log_records_every_request_in_order() {
    let vault = kv_server();
    let _ = raw(
        &vault,
        "GET",
        "secret/data/app?version=1",
        Some(ROOT),
        Some("team-x"),
        None,
    )
    .await;
    let _ = raw(
        &vault,
        "POST",
        "auth/approle/login",
        None,
        None,
        Some(json!({})),
    )
    .await;
    let requests = vault.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/v1/secret/data/app");
    assert_eq!(requests[0].query.as_deref(), Some("version=1"));
    assert_eq!(requests[0].namespace.as_deref(), Some("team-x"));
    assert_eq!(requests[0].token.as_deref(), Some(ROOT));
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].token, None);
    assert_eq!(vault.count("get", "secret/"), 1);
    assert_eq!(vault.count("POST", "/v1/auth/"), 1);
    assert_eq!(vault.count("GET", "kv/"), 0);
    vault.clear_requests();
    assert!(vault.requests().is_empty());
}

#[tokio::test]
async fn server_stops_when_dropped() {
    let vault = kv_server();
    let port = vault.port();
    drop(vault);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
