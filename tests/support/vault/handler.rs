//! Request routing and the endpoint handlers, answering like Vault: the same status codes, the
//! same JSON envelope (field order included), the same error strings.
//!
//! The order of checks follows Vault's core: namespace resolution, login paths (which need no
//! token), token validation, the ACL check, then routing to the mount. Error strings come from
//! Vault's sources: `permission denied` for a request without a token; Vault's multierror
//! formatting (`1 error occurred:\n\t* permission denied\n\n`) when a valid token's policy
//! denies the path, and `permission denied` + `invalid token` for an unknown, revoked or
//! expired token (<https://developer.hashicorp.com/vault/docs/concepts/tokens>).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, UnixTime};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::Policy;
use super::json;
use super::state::{
    AuthKind, Cred, DEFAULT_LEASE_TTL, KvVersion, Mount, State, Token, alphanumeric, kv2_write,
    uuid,
};
use super::tls::ClientCertInfo;

const PERMISSION_DENIED: &str = "permission denied";
const POLICY_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";
const INVALID_TOKEN: &str = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
const UNSUPPORTED_PATH: &str = "1 error occurred:\n\t* unsupported path\n\n";
const UNSUPPORTED_OPERATION: &str = "1 error occurred:\n\t* unsupported operation\n\n";

/// Vault version the server claims to be (sys/health, plugin versions).
const VAULT_VERSION: &str = "1.17.6";
const KV_PLUGIN_VERSION: &str = "v0.19.0+builtin";

/// Vault's default user lockout (userpass and approle): 5 failures within 15 minutes lock the
/// alias out for 15 minutes.
const LOCKOUT_THRESHOLD: u32 = 5;
const LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);

/// One HTTP request as the handlers see it.
pub struct Incoming<'a> {
    pub method: &'a str,
    /// Percent-decoded path after `/v1/`; `None` when the path is not under `/v1/`.
    pub rel: Option<String>,
    pub query: Vec<(String, String)>,
    pub namespace: Option<&'a str>,
    pub token: Option<&'a str>,
    pub body: &'a [u8],
    pub peer_certs: Option<&'a [CertificateDer<'static>]>,
}

/// Client-certificate material for the `cert` auth method (TLS servers only).
pub struct CertAuth<'a> {
    pub verifier: &'a dyn rustls::server::danger::ClientCertVerifier,
    pub info: &'a ClientCertInfo,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Reply {
    /// Vault's error body: `{"errors":[...]}` plus the newline of Go's `json.Encoder`
    /// (<https://developer.hashicorp.com/vault/api-docs#error-response>; status codes:
    /// <https://developer.hashicorp.com/vault/api-docs#http-status-codes>).
    pub fn errors(status: u16, errors: &[&str]) -> Reply {
        let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        Reply {
            status,
            body: format!("{{\"errors\":{}}}\n", json::strings(Some(&errors))),
            retry_after: None,
        }
    }

    /// A JSON body written by Vault's `respondOk` (`json.Encoder`, so newline-terminated).
    fn ok(body: String) -> Reply {
        Reply {
            status: 200,
            body: body + "\n",
            retry_after: None,
        }
    }

    /// A raw body written verbatim (`logical.RespondWithStatusCode`: `json.Marshal`, no newline).
    fn raw(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
        }
    }

    fn no_content() -> Reply {
        Reply {
            status: 204,
            body: String::new(),
            retry_after: None,
        }
    }
}

/// The body for a `fail_next` injection: what Vault says with that status. 429 is a rate
/// limit quota rejection (<https://developer.hashicorp.com/vault/docs/concepts/resource-quotas>),
/// 503 a sealed Vault (<https://developer.hashicorp.com/vault/api-docs#http-status-codes>).
pub fn injected_failure(status: u16, rel: &str) -> Reply {
    let message = match status {
        // A rate limit quota rejection (http/util.go: `request path %q: %w`).
        429 => format!("request path {rel:?}: rate limit quota exceeded"),
        500 => "1 error occurred:\n\t* internal error\n\n".to_string(),
        503 => "Vault is sealed".to_string(),
        412 => "required index state not present".to_string(),
        502 => "upstream rate limited".to_string(),
        _ => hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_lowercase(),
    };
    Reply::errors(status, &[&message])
}

/// The response envelope (`logical.HTTPResponse` in sdk/logical/translate_response.go), fields
/// in Vault's order; see the sample responses of
/// <https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version>.
struct Envelope<'a> {
    lease_duration: u64,
    data: Option<String>,
    warnings: Option<Vec<String>>,
    auth: Option<String>,
    mount_type: &'a str,
}

impl Envelope<'_> {
    fn render(&self) -> String {
        format!(
            "{{\"request_id\":{},\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":{},\"data\":{},\"wrap_info\":null,\"warnings\":{},\"auth\":{},\"mount_type\":{}}}",
            json::string(&uuid()),
            self.lease_duration,
            self.data.as_deref().unwrap_or("null"),
            json::strings(self.warnings.as_deref()),
            self.auth.as_deref().unwrap_or("null"),
            json::string(self.mount_type),
        )
    }
}

fn data_envelope(data: &Value, mount_type: &str) -> Reply {
    Reply::ok(
        Envelope {
            lease_duration: 0,
            data: Some(json::encode(data)),
            warnings: None,
            auth: None,
            mount_type,
        }
        .render(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    List,
    Write,
    Delete,
    Other,
}

fn operation(method: &str, query: &[(String, String)]) -> Op {
    let list_param = query
        .iter()
        .any(|(k, v)| k == "list" && matches!(v.as_str(), "true" | "1" | "t" | "True" | "TRUE"));
    match method {
        "GET" | "HEAD" if list_param => Op::List,
        "GET" | "HEAD" => Op::Read,
        "LIST" => Op::List,
        "POST" | "PUT" | "PATCH" => Op::Write,
        "DELETE" => Op::Delete,
        _ => Op::Other,
    }
}

fn query_param<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Routes one request. Called with the state locked.
///
/// The namespace is `X-Vault-Namespace` joined with the request path, split at the innermost
/// existing namespace, so it can be given by header, by path prefix, or partly by both
/// (<https://developer.hashicorp.com/vault/docs/enterprise/namespaces>). A token is valid in
/// its own namespace and in its descendants.
pub fn route(st: &mut State, cert: Option<&CertAuth<'_>>, inc: &Incoming<'_>) -> Reply {
    let Some(rel) = inc.rel.as_deref() else {
        return Reply::errors(404, &[]);
    };
    let full = super::state::normalize_namespace(inc.namespace.unwrap_or("")) + rel;
    let (ns, rel) = st.split_namespace(&full);
    let op = operation(inc.method, &inc.query);

    if rel == "sys/health" && matches!(op, Op::Read) {
        return health(st);
    }
    if let Some(rest) = rel.strip_prefix("sys/internal/ui/mounts")
        && (rest.is_empty() || rest.starts_with('/'))
        && op == Op::Read
    {
        return ui_mounts(st, &ns, rest.trim_start_matches('/'), inc.token);
    }
    if let Some((mount, user)) = login_target(st, &ns, &rel) {
        return login(st, &ns, &mount, user, inc, cert);
    }

    // Everything else needs a valid token whose policy allows the operation.
    let Some(token_id) = inc.token else {
        return Reply::errors(403, &[PERMISSION_DENIED]);
    };
    let Some((token_ns, token)) = st.find_token(&ns, token_id) else {
        return Reply::errors(403, &[INVALID_TOKEN]);
    };
    // The -self token paths always run in the token's own namespace.
    let acl_path = if rel == "auth/token/lookup-self" {
        rel.clone()
    } else {
        format!("{}{}", &ns[token_ns.len()..], rel)
    };
    if !acl_allows(&token.policy, op, &acl_path) {
        return Reply::errors(403, &[POLICY_DENIED]);
    }

    if rel == "auth/token/lookup-self" {
        return match op {
            Op::Read => lookup_self(st, &token_ns, token_id),
            _ => Reply::errors(405, &[UNSUPPORTED_OPERATION]),
        };
    }
    if rel.starts_with("auth/token/") || rel.starts_with("sys/") {
        return Reply::errors(404, &[UNSUPPORTED_PATH]);
    }
    let namespace = st.ns_mut(&ns);
    if rel.starts_with("auth/") {
        if namespace.auth_for(&rel).is_some() {
            return Reply::errors(404, &[UNSUPPORTED_PATH]);
        }
        return no_handler(&rel);
    }
    let Some((mount_path, sub)) = namespace.mount_for(&rel) else {
        return no_handler(&rel);
    };
    let mount = namespace
        .mounts
        .get_mut(&mount_path)
        .expect("mount_for returned an existing mount");
    match mount.version {
        KvVersion::V1 => kv1(mount, &sub, op, inc),
        KvVersion::V2 => kv2(mount, &sub, op, inc),
    }
}

fn no_handler(rel: &str) -> Reply {
    let message = format!(
        "no handler for route {}. route entry not found.",
        json::string(rel)
    );
    Reply::errors(404, &[&message])
}

/// Whether the policy grants `op` on `path` (relative to the token's namespace). The default
/// policy every non-root token carries grants reading `auth/token/lookup-self`.
fn acl_allows(policy: &Policy, op: Op, path: &str) -> bool {
    match policy {
        Policy::Root => true,
        Policy::Read(prefixes) => {
            op == Op::Read
                && (path == "auth/token/lookup-self"
                    || prefixes.iter().any(|p| path.starts_with(p.as_str())))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET /v1/sys/health — https://developer.hashicorp.com/vault/api-docs/system/health
// ---------------------------------------------------------------------------------------------

fn health(st: &State) -> Reply {
    let now = SystemTime::now();
    let body = format!(
        "{{\"initialized\":true,\"sealed\":false,\"standby\":false,\"performance_standby\":false,\"replication_performance_mode\":\"disabled\",\"replication_dr_mode\":\"disabled\",\"server_time_utc\":{},\"version\":{},\"enterprise\":false,\"cluster_name\":{},\"cluster_id\":{},\"echo_duration_ms\":0,\"clock_skew_ms\":0,\"replication_primary_canary_age_ms\":0}}",
        json::unix(now),
        json::string(VAULT_VERSION),
        json::string(&st.cluster_name),
        json::string(&st.cluster_id),
    );
    Reply::ok(body)
}

// ---------------------------------------------------------------------------------------------
// GET /v1/sys/internal/ui/mounts[/:path]
// https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts
//
// Unauthenticated at the router; the handler (vault/logical_system.go,
// pathInternalUIMountRead) checks the token itself: an unknown mount or a token without access
// to the mount answers 403 "preflight capability check returned 403, ..." (so the endpoint
// cannot be used to enumerate mounts); a missing or invalid token answers the token error,
// wrapped by the request handler's multierror.
// ---------------------------------------------------------------------------------------------

fn preflight_denied(path: &str) -> Reply {
    let message = format!(
        "preflight capability check returned 403, please ensure client's policies grant access to path {}",
        json::string(path)
    );
    Reply::errors(403, &[&message])
}

fn ui_mounts(st: &State, ns: &str, path: &str, token: Option<&str>) -> Reply {
    let found = token.and_then(|t| st.find_token(ns, t));
    if path.is_empty() {
        return ui_mount_listing(st, ns, found);
    }
    let mut path = path.to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    if st.deny_ui_mounts {
        return preflight_denied(&path);
    }
    let namespace = st.ns(ns);
    // (ACL path of the mount, its entry path, its info). An auth mount's entry path has no
    // `auth/` prefix (`MountEntry.Path` of the credential table).
    let info = if path.starts_with("auth/") {
        namespace
            .auth_for(path.trim_end_matches('/'))
            .map(|(m, _)| {
                let info = auth_mount_info(&namespace.auths[&m]);
                (format!("auth/{m}"), m, info)
            })
    } else {
        namespace
            .mount_for(path.trim_end_matches('/'))
            .map(|(m, _)| (m.clone(), m.clone(), kv_mount_info(&namespace.mounts[&m])))
    };
    let Some((mount_path, entry_path, mut info)) = info else {
        return preflight_denied(&path);
    };
    let Some((token_ns, tok)) = found else {
        return match token {
            None => Reply::errors(403, &[POLICY_DENIED]),
            Some(_) => Reply::errors(403, &[INVALID_TOKEN]),
        };
    };
    let full_mount = format!("{}{}", &ns[token_ns.len()..], mount_path);
    if !has_mount_access(&tok.policy, &full_mount) {
        return preflight_denied(&path);
    }
    info.insert("path".into(), Value::String(entry_path));
    data_envelope(&Value::Object(info), "system")
}

fn ui_mount_listing(st: &State, ns: &str, token: Option<(String, &Token)>) -> Reply {
    let namespace = st.ns(ns);
    let mut secret = Map::new();
    let mut auth = Map::new();
    if let Some((token_ns, tok)) = token {
        let prefix = &ns[token_ns.len()..];
        for (path, mount) in &namespace.mounts {
            if has_mount_access(&tok.policy, &format!("{prefix}{path}")) {
                secret.insert(path.clone(), Value::Object(kv_mount_info(mount)));
            }
        }
        for (path, mount) in &namespace.auths {
            if has_mount_access(&tok.policy, &format!("{prefix}auth/{path}")) {
                auth.insert(path.clone(), Value::Object(auth_mount_info(mount)));
            }
        }
    }
    data_envelope(
        &json!({"auth": Value::Object(auth), "secret": Value::Object(secret)}),
        "system",
    )
}

/// `hasMountAccess`: the token has some capability somewhere under the mount.
fn has_mount_access(policy: &Policy, mount_path: &str) -> bool {
    match policy {
        Policy::Root => true,
        Policy::Read(prefixes) => prefixes
            .iter()
            .any(|p| p.starts_with(mount_path) || mount_path.starts_with(p.as_str())),
    }
}

fn kv_mount_info(mount: &Mount) -> Map<String, Value> {
    let version = match mount.version {
        KvVersion::V1 => "1",
        KvVersion::V2 => "2",
    };
    let Value::Object(map) = json!({
        "accessor": mount.accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "deprecation_status": "supported",
        "description": "",
        "external_entropy_access": false,
        "local": false,
        "options": {"version": version},
        "plugin_version": "",
        "running_plugin_version": KV_PLUGIN_VERSION,
        "running_sha256": "",
        "seal_wrap": false,
        "type": "kv",
        "uuid": mount.uuid,
    }) else {
        unreachable!()
    };
    map
}

fn auth_mount_info(mount: &super::state::AuthMount) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "accessor": mount.accessor,
        "config": {
            "default_lease_ttl": 0,
            "force_no_cache": false,
            "max_lease_ttl": 0,
            "token_type": "default-service",
        },
        "deprecation_status": "supported",
        "description": "",
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{VAULT_VERSION}+builtin.vault"),
        "running_sha256": "",
        "seal_wrap": false,
        "type": mount.kind.type_name(),
        "uuid": mount.uuid,
    }) else {
        unreachable!()
    };
    map
}

// ---------------------------------------------------------------------------------------------
// GET /v1/auth/token/lookup-self
// https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self
//
// Field set as vault/token_store.go handleLookup builds it: a root token has no TTL, so no
// `issue_time`/`renewable` and `expire_time: null`; `namespace_path` only for tokens of a
// child namespace.
// ---------------------------------------------------------------------------------------------

fn lookup_self(st: &State, token_ns: &str, token_id: &str) -> Reply {
    let token = &st.ns(token_ns).tokens[token_id];
    let now = SystemTime::now();
    let mut data = Map::new();
    data.insert("accessor".into(), json!(token.accessor));
    data.insert("creation_time".into(), json!(json::unix(token.created)));
    data.insert("creation_ttl".into(), json!(token.ttl));
    data.insert("display_name".into(), json!(token.display_name));
    data.insert("entity_id".into(), json!(token.entity_id));
    data.insert("expire_time".into(), Value::Null);
    data.insert("explicit_max_ttl".into(), json!(0));
    data.insert("id".into(), json!(token.id));
    data.insert(
        "meta".into(),
        token.meta.as_ref().map_or(Value::Null, |m| json!(m)),
    );
    data.insert("num_uses".into(), json!(0));
    data.insert("orphan".into(), json!(token.orphan));
    data.insert("path".into(), json!(token.path));
    data.insert("policies".into(), json!(token.policy_names()));
    data.insert("ttl".into(), json!(0));
    data.insert("type".into(), json!("service"));
    if !token_ns.is_empty() {
        data.insert("namespace_path".into(), json!(token_ns));
    }
    if token.ttl != 0 {
        let expire = token.created + Duration::from_secs(token.ttl);
        let remaining = expire.duration_since(now).unwrap_or(Duration::ZERO);
        data.insert(
            "issue_time".into(),
            json!(json::rfc3339_nano(token.created)),
        );
        data.insert("expire_time".into(), json!(json::rfc3339_nano(expire)));
        data.insert("ttl".into(), json!(remaining.as_secs()));
        data.insert("renewable".into(), json!(true));
    }
    data_envelope(&Value::Object(data), "token")
}

// ---------------------------------------------------------------------------------------------
// Logins
// ---------------------------------------------------------------------------------------------

/// If `rel` is the login path of an auth mount in `ns`: the mount and, for userpass, the user.
fn login_target(st: &State, ns: &str, rel: &str) -> Option<(String, Option<String>)> {
    let namespace = st.ns(ns);
    let (mount, rest) = namespace.auth_for(rel)?;
    match namespace.auths[&mount].kind {
        AuthKind::UserPass => {
            let user = rest.strip_prefix("login/")?;
            Some((mount, Some(user.to_string())))
        }
        _ => (rest == "login").then_some((mount, None)),
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::errors(
            400,
            &[
                "failed to parse JSON input: json: cannot unmarshal into Go value of type map[string]interface {}",
            ],
        )),
        Err(_) => Err(Reply::errors(
            400,
            &["failed to parse JSON input: invalid character in JSON body"],
        )),
    }
}

fn field<'m>(body: &'m Map<String, Value>, key: &str) -> &'m str {
    body.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The framework's warning for request fields the path does not declare.
fn unknown_fields_warning(body: &Map<String, Value>, known: &[&str]) -> Option<Vec<String>> {
    let mut unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    unknown.sort_unstable();
    Some(vec![format!(
        "Endpoint ignored these unrecognized parameters: [{}]",
        unknown.join(" ")
    )])
}

/// A successful authentication, before the token is minted.
struct Authenticated {
    policy: Policy,
    display_name: String,
    metadata: BTreeMap<String, String>,
    alias: String,
}

fn locked_out(st: &State, accessor: &str, alias: &str) -> bool {
    st.failed_logins
        .get(&(accessor.to_string(), alias.to_string()))
        .is_some_and(|(count, last)| {
            *count >= LOCKOUT_THRESHOLD
                && SystemTime::now()
                    .duration_since(*last)
                    .unwrap_or(Duration::ZERO)
                    < LOCKOUT_DURATION
        })
}

fn record_failed_login(st: &mut State, accessor: &str, alias: &str) {
    let now = SystemTime::now();
    let entry = st
        .failed_logins
        .entry((accessor.to_string(), alias.to_string()))
        .or_insert((0, now));
    if now.duration_since(entry.1).unwrap_or(Duration::ZERO) > LOCKOUT_DURATION {
        entry.0 = 0;
    }
    entry.0 += 1;
    entry.1 = now;
}

fn login(
    st: &mut State,
    ns: &str,
    mount: &str,
    user: Option<String>,
    inc: &Incoming<'_>,
    cert: Option<&CertAuth<'_>>,
) -> Reply {
    // Login handlers only implement the update operation; routing errors of a login request
    // are returned unwrapped.
    if !matches!(inc.method, "POST" | "PUT") {
        return Reply::errors(405, &["unsupported operation"]);
    }
    let body = match body_object(inc.body) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let auth_mount = &st.ns(ns).auths[mount];
    let kind = auth_mount.kind;
    let accessor = auth_mount.accessor.clone();

    let result = match kind {
        AuthKind::AppRole => approle_login(st, ns, mount, &accessor, &body),
        AuthKind::UserPass => {
            userpass_login(st, ns, mount, &accessor, &user.unwrap_or_default(), &body)
        }
        AuthKind::Kubernetes => kubernetes_login(st, ns, mount, &body),
        AuthKind::GitHub => github_login(st, ns, mount, &body),
        AuthKind::Cert => cert_login(st, ns, mount, inc.peer_certs, cert),
    };
    let authenticated = match result {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    st.failed_logins
        .remove(&(accessor.clone(), authenticated.alias.clone()));

    let known: &[&str] = match kind {
        AuthKind::AppRole => &["role_id", "secret_id"],
        AuthKind::UserPass => &["username", "password"],
        AuthKind::Kubernetes => &["role", "jwt"],
        AuthKind::GitHub => &["token"],
        AuthKind::Cert => &["name"],
    };
    let warnings = unknown_fields_warning(&body, known);
    let login_path = match kind {
        AuthKind::UserPass => format!("auth/{mount}login/{}", authenticated.alias),
        _ => format!("auth/{mount}login"),
    };
    issue_token(
        st,
        ns,
        &accessor,
        mount,
        authenticated,
        login_path,
        warnings,
    )
}

fn issue_token(
    st: &mut State,
    ns: &str,
    accessor: &str,
    mount: &str,
    a: Authenticated,
    path: String,
    warnings: Option<Vec<String>>,
) -> Reply {
    let namespace = st.ns_mut(ns);
    let entity_id = namespace
        .entities
        .entry((accessor.to_string(), a.alias.clone()))
        .or_insert_with(uuid)
        .clone();
    // LoginCreateToken: the mount path (slashes as dashes) prefixes the display name.
    let source = mount.replace('/', "-");
    let display_name = format!("{source}{}", a.display_name)
        .trim_end_matches('-')
        .to_string();
    let token = Token {
        id: format!("hvs.{}", alphanumeric(24)),
        accessor: alphanumeric(24),
        policy: a.policy,
        display_name,
        path,
        meta: Some(a.metadata.clone()),
        created: SystemTime::now(),
        ttl: DEFAULT_LEASE_TTL,
        orphan: true,
        entity_id: entity_id.clone(),
        issued: true,
        root: false,
    };
    let policies = token.policy_names();
    let auth = format!(
        "{{\"client_token\":{},\"accessor\":{},\"policies\":{},\"token_policies\":{},\"metadata\":{},\"lease_duration\":{},\"renewable\":true,\"entity_id\":{},\"token_type\":\"service\",\"orphan\":true,\"mfa_requirement\":null,\"num_uses\":0}}",
        json::string(&token.id),
        json::string(&token.accessor),
        json::strings(Some(&policies)),
        json::strings(Some(&policies)),
        json::encode(&json!(a.metadata)),
        DEFAULT_LEASE_TTL,
        json::string(&entity_id),
    );
    namespace.tokens.insert(token.id.clone(), token);
    Reply::ok(
        Envelope {
            lease_duration: 0,
            data: None,
            warnings,
            auth: Some(auth),
            // Observed on real logins (AppRole, Kubernetes): `"mount_type":""`; core sets the
            // mount type on responses of authenticated requests only.
            mount_type: "",
        }
        .render(),
    )
}

// POST /v1/auth/:mount/login — https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
// Errors as builtin/credential/approle/path_login.go: "missing role_id", "missing secret_id",
// "invalid role or secret ID" (400).
fn approle_login(
    st: &mut State,
    ns: &str,
    mount: &str,
    accessor: &str,
    body: &Map<String, Value>,
) -> Result<Authenticated, Reply> {
    let role_id = field(body, "role_id").trim().to_string();
    if role_id.is_empty() {
        return Err(Reply::errors(400, &["missing role_id"]));
    }
    if locked_out(st, accessor, &role_id) {
        return Err(Reply::errors(403, &[PERMISSION_DENIED]));
    }
    let secret_id = field(body, "secret_id").trim().to_string();
    let creds = &st.ns(ns).auths[mount].creds;
    let mut role_known = false;
    let mut found = None;
    for cred in creds {
        if let Cred::AppRole {
            role_name,
            role_id: rid,
            secret_id: sid,
            policy,
        } = cred
            && *rid == role_id
        {
            role_known = true;
            if *sid == secret_id {
                found = Some((role_name.clone(), policy.clone()));
            }
        }
    }
    if !role_known {
        return Err(Reply::errors(400, &["invalid role or secret ID"]));
    }
    if secret_id.is_empty() {
        return Err(Reply::errors(400, &["missing secret_id"]));
    }
    let Some((role_name, policy)) = found else {
        record_failed_login(st, accessor, &role_id);
        return Err(Reply::errors(400, &["invalid role or secret ID"]));
    };
    Ok(Authenticated {
        policy,
        display_name: String::new(),
        metadata: BTreeMap::from([("role_name".to_string(), role_name)]),
        alias: role_id,
    })
}

// POST /v1/auth/:mount/login/:username — https://developer.hashicorp.com/vault/api-docs/auth/userpass#login
// Errors as builtin/credential/userpass/path_login.go: "invalid username or password" (400),
// "missing password" (a plain error, so 500).
fn userpass_login(
    st: &mut State,
    ns: &str,
    mount: &str,
    accessor: &str,
    user: &str,
    body: &Map<String, Value>,
) -> Result<Authenticated, Reply> {
    let username = user.to_lowercase();
    if locked_out(st, accessor, &username) {
        return Err(Reply::errors(403, &[PERMISSION_DENIED]));
    }
    let password = field(body, "password");
    if password.is_empty() {
        return Err(Reply::errors(500, &["missing password"]));
    }
    let creds = &st.ns(ns).auths[mount].creds;
    let mut user_known = false;
    let mut found = None;
    for cred in creds {
        if let Cred::UserPass {
            username: u,
            password: p,
            policy,
        } = cred
            && u.to_lowercase() == username
        {
            user_known = true;
            if p == password {
                found = Some(policy.clone());
            }
        }
    }
    let Some(policy) = found else {
        if user_known {
            record_failed_login(st, accessor, &username);
        }
        return Err(Reply::errors(400, &["invalid username or password"]));
    };
    Ok(Authenticated {
        policy,
        display_name: username.clone(),
        metadata: BTreeMap::from([("username".to_string(), username.clone())]),
        alias: username,
    })
}

// POST /v1/auth/:mount/login — https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login
// Errors as vault-plugin-auth-kubernetes path_login.go: "missing role", "missing jwt",
// `invalid role name "x"` (400); a JWT the TokenReview rejects: 403 "permission denied".
fn kubernetes_login(
    st: &State,
    ns: &str,
    mount: &str,
    body: &Map<String, Value>,
) -> Result<Authenticated, Reply> {
    let role = field(body, "role");
    if role.is_empty() {
        return Err(Reply::errors(400, &["missing role"]));
    }
    let jwt = field(body, "jwt");
    if jwt.is_empty() {
        return Err(Reply::errors(400, &["missing jwt"]));
    }
    let creds = &st.ns(ns).auths[mount].creds;
    let mut role_known = false;
    let mut found = None;
    for cred in creds {
        if let Cred::Kubernetes {
            role: r,
            jwt: j,
            policy,
        } = cred
            && r == role
        {
            role_known = true;
            if j == jwt {
                found = Some(policy.clone());
            }
        }
    }
    if !role_known {
        let message = format!("invalid role name {}", json::string(role));
        return Err(Reply::errors(400, &[&message]));
    }
    let Some(policy) = found else {
        return Err(Reply::errors(403, &[PERMISSION_DENIED]));
    };
    let sa = ServiceAccount::from_jwt(jwt);
    Ok(Authenticated {
        policy,
        display_name: format!("{}-{}", sa.namespace, sa.name),
        metadata: BTreeMap::from([
            ("role".to_string(), role.to_string()),
            ("service_account_name".to_string(), sa.name.clone()),
            (
                "service_account_namespace".to_string(),
                sa.namespace.clone(),
            ),
            ("service_account_secret_name".to_string(), sa.secret_name),
            ("service_account_uid".to_string(), sa.uid.clone()),
        ]),
        alias: sa.uid,
    })
}

/// The service account claims of a Kubernetes JWT (legacy or projected token). An opaque test
/// token gets `default/default` and a uid derived from its hash.
struct ServiceAccount {
    name: String,
    namespace: String,
    uid: String,
    secret_name: String,
}

impl ServiceAccount {
    fn from_jwt(jwt: &str) -> ServiceAccount {
        let claims = jwt
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .unwrap_or(Value::Null);
        let s = |v: &Value| v.as_str().map(str::to_string);
        let projected = &claims["kubernetes.io"];
        let name = s(&projected["serviceaccount"]["name"])
            .or_else(|| s(&claims["kubernetes.io/serviceaccount/service-account.name"]));
        let namespace = s(&projected["namespace"])
            .or_else(|| s(&claims["kubernetes.io/serviceaccount/namespace"]));
        let uid = s(&projected["serviceaccount"]["uid"])
            .or_else(|| s(&claims["kubernetes.io/serviceaccount/service-account.uid"]));
        let secret_name =
            s(&claims["kubernetes.io/serviceaccount/secret.name"]).unwrap_or_default();
        let uid = uid.unwrap_or_else(|| {
            let h = Sha256::digest(jwt.as_bytes());
            format!(
                "{}-{}-{}-{}-{}",
                hex_bytes(&h[0..4]),
                hex_bytes(&h[4..6]),
                hex_bytes(&h[6..8]),
                hex_bytes(&h[8..10]),
                hex_bytes(&h[10..16])
            )
        });
        ServiceAccount {
            name: name.unwrap_or_else(|| "default".to_string()),
            namespace: namespace.unwrap_or_else(|| "default".to_string()),
            uid,
            secret_name,
        }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// POST /v1/auth/:mount/login — https://developer.hashicorp.com/vault/api-docs/auth/github#login
// A token GitHub rejects makes the plugin return GitHub's client error unwrapped (500).
const GITHUB_USER: &str = "octocat";
const GITHUB_ORG: &str = "secretsubst";

fn github_login(
    st: &State,
    ns: &str,
    mount: &str,
    body: &Map<String, Value>,
) -> Result<Authenticated, Reply> {
    let token = field(body, "token");
    let policy = st.ns(ns).auths[mount].creds.iter().find_map(|c| match c {
        Cred::GitHub { token: t, policy } if !token.is_empty() && t == token => {
            Some(policy.clone())
        }
        _ => None,
    });
    let Some(policy) = policy else {
        return Err(Reply::errors(
            500,
            &["GET https://api.github.com/user: 401 Bad credentials []"],
        ));
    };
    Ok(Authenticated {
        policy,
        display_name: GITHUB_USER.to_string(),
        metadata: BTreeMap::from([
            ("org".to_string(), GITHUB_ORG.to_string()),
            ("username".to_string(), GITHUB_USER.to_string()),
        ]),
        alias: GITHUB_USER.to_string(),
    })
}

// POST /v1/auth/:mount/login — https://developer.hashicorp.com/vault/api-docs/auth/cert#login-with-tls-certificate-method
// Without a client certificate chaining to the trusted CA: 400 "invalid certificate or no
// client certificate supplied" (builtin/credential/cert/path_login.go).
const CERT_ROLE: &str = "secretsubst";

fn cert_login(
    st: &State,
    ns: &str,
    mount: &str,
    peer_certs: Option<&[CertificateDer<'static>]>,
    cert: Option<&CertAuth<'_>>,
) -> Result<Authenticated, Reply> {
    let invalid = || {
        Reply::errors(
            400,
            &["invalid certificate or no client certificate supplied"],
        )
    };
    let (Some(chain), Some(cert)) = (peer_certs, cert) else {
        return Err(invalid());
    };
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(invalid());
    };
    if cert
        .verifier
        .verify_client_cert(end_entity, intermediates, UnixTime::now())
        .is_err()
    {
        return Err(invalid());
    }
    let policy = st.ns(ns).auths[mount]
        .creds
        .iter()
        .find_map(|c| match c {
            Cred::Cert { policy } => Some(policy.clone()),
            _ => None,
        })
        .ok_or_else(invalid)?;
    let info = cert.info;
    Ok(Authenticated {
        policy,
        display_name: CERT_ROLE.to_string(),
        metadata: BTreeMap::from([
            (
                "authority_key_id".to_string(),
                info.authority_key_id.clone(),
            ),
            ("cert_name".to_string(), CERT_ROLE.to_string()),
            ("common_name".to_string(), info.common_name.clone()),
            ("serial_number".to_string(), info.serial_number.clone()),
            ("subject_key_id".to_string(), info.subject_key_id.clone()),
        ]),
        alias: info.common_name.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// KV version 1 — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#read-secret
//
// vault-plugin-secrets-kv passthrough.go: a read returns the stored map as `data` with
// `lease_duration` = the mount's default lease TTL (768h) unless the secret has a `ttl` (or
// `lease`) key; a missing key answers 404 `{"errors":[]}`.
// ---------------------------------------------------------------------------------------------

fn kv1(mount: &mut Mount, sub: &str, op: Op, inc: &Incoming<'_>) -> Reply {
    match op {
        Op::Read => match mount.v1.get(sub) {
            Some(data) => {
                let ttl = data
                    .get("ttl")
                    .or_else(|| data.get("lease"))
                    .and_then(parse_duration_seconds)
                    .unwrap_or(DEFAULT_LEASE_TTL);
                Reply::ok(
                    Envelope {
                        lease_duration: ttl,
                        data: Some(json::encode(&Value::Object(data.clone()))),
                        warnings: None,
                        auth: None,
                        mount_type: "kv",
                    }
                    .render(),
                )
            }
            None => Reply::errors(404, &[]),
        },
        Op::List => {
            let prefix = if sub.is_empty() || sub.ends_with('/') {
                sub.to_string()
            } else {
                format!("{sub}/")
            };
            list_reply(list_children(mount.v1.keys(), &prefix), "kv")
        }
        Op::Write => {
            if sub.ends_with('/') {
                return Reply::errors(400, &["cannot write to a path ending in '/'"]);
            }
            match body_object(inc.body) {
                Ok(map) if map.is_empty() => Reply::errors(400, &["missing data fields"]),
                Ok(map) => {
                    mount.v1.insert(sub.to_string(), map);
                    Reply::no_content()
                }
                Err(reply) => reply,
            }
        }
        Op::Delete => {
            mount.v1.remove(sub);
            Reply::no_content()
        }
        Op::Other => Reply::errors(405, &[UNSUPPORTED_OPERATION]),
    }
}

/// `parseutil.ParseDurationSecond`: an integer number of seconds or a Go duration string.
fn parse_duration_seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            if let Ok(secs) = s.parse::<u64>() {
                return Some(secs);
            }
            let mut total = 0f64;
            let mut num = String::new();
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_ascii_digit() || c == '.' {
                    num.push(c);
                    continue;
                }
                let mut unit = c.to_string();
                if c == 'm' && chars.peek() == Some(&'s') {
                    unit.push(chars.next()?);
                }
                let value: f64 = num.parse().ok()?;
                num.clear();
                total += value
                    * match unit.as_str() {
                        "h" => 3600.0,
                        "m" => 60.0,
                        "s" => 1.0,
                        "ms" => 0.001,
                        "d" => 86400.0,
                        _ => return None,
                    };
            }
            num.is_empty().then_some(total as u64)
        }
        _ => None,
    }
}

/// Immediate children of `prefix` among `keys`: leaf names, and folder names with a `/`.
fn list_children<'k>(keys: impl Iterator<Item = &'k String>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let child = match rest.find('/') {
            Some(i) => rest[..=i].to_string(),
            None => rest.to_string(),
        };
        if !child.is_empty() && !out.contains(&child) {
            out.push(child);
        }
    }
    out.sort();
    out
}

fn list_reply(keys: Vec<String>, mount_type: &str) -> Reply {
    if keys.is_empty() {
        return Reply::errors(404, &[]);
    }
    data_envelope(&json!({ "keys": keys }), mount_type)
}

// ---------------------------------------------------------------------------------------------
// KV version 2 — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version
//
// vault-plugin-secrets-kv path_data.go: a read returns `{data, metadata}`; a missing key or
// version answers 404 `{"errors":[]}`; a soft-deleted or destroyed version answers 404 with the
// full envelope (`data.data: null` plus the version metadata) via `RespondWithStatusCode`, whose
// body is `json.Marshal`-ed by the plugin (no trailing newline, `mount_type` empty). Paths
// outside data/, metadata/... hit backend.go pathInvalid: 404 with a warning.
// ---------------------------------------------------------------------------------------------

fn kv2(mount: &mut Mount, sub: &str, op: Op, inc: &Incoming<'_>) -> Reply {
    if let Some(key) = sub.strip_prefix("data/")
        && !key.is_empty()
        && !key.ends_with('/')
    {
        return match op {
            Op::Read => kv2_read(mount, key, &inc.query),
            Op::Write => kv2_put(mount, key, inc.body),
            Op::Delete => {
                if let Some(secret) = mount.v2.get_mut(key)
                    && let Some(v) = secret.versions.get_mut(&secret.current)
                {
                    v.deletion_time = Some(SystemTime::now());
                }
                Reply::no_content()
            }
            _ => Reply::errors(405, &[UNSUPPORTED_OPERATION]),
        };
    }
    if let Some(key) = sub.strip_prefix("metadata/") {
        match op {
            Op::List => {
                let prefix = if key.is_empty() || key.ends_with('/') {
                    key.to_string()
                } else {
                    format!("{key}/")
                };
                return list_reply(list_children(mount.v2.keys(), &prefix), "kv");
            }
            Op::Read if !key.is_empty() && !key.ends_with('/') => {
                return kv2_metadata(mount, key);
            }
            _ => {}
        }
    }
    kv2_invalid_path(sub, op)
}

fn kv2_invalid_path(sub: &str, op: Op) -> Reply {
    let warning = if matches!(sub, "metadata" | "data" | "delete" | "undelete" | "destroy") {
        "Non-listing operations on the root of a K/V v2 mount are not supported.".to_string()
    } else {
        let sub_command = match op {
            Op::Write => "put",
            Op::Read => "get",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Other => "patch",
        };
        format!(
            "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv {sub_command}' for this operation."
        )
    };
    Reply::raw(
        404,
        Envelope {
            lease_duration: 0,
            data: None,
            warnings: Some(vec![warning]),
            auth: None,
            mount_type: "",
        }
        .render(),
    )
}

fn version_metadata(v: &super::state::V2Version, version: u64) -> Value {
    json!({
        "created_time": json::rfc3339_nano(v.created),
        "custom_metadata": null,
        "deletion_time": v.deletion_time.map(json::rfc3339_nano).unwrap_or_default(),
        "destroyed": v.destroyed,
        "version": version,
    })
}

fn kv2_read(mount: &Mount, key: &str, query: &[(String, String)]) -> Reply {
    let requested = match query_param(query, "version") {
        None | Some("") => 0,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                let message = format!(
                    "error converting input {raw} for field \"version\": cannot parse '' as int: strconv.ParseInt: parsing {}: invalid syntax",
                    json::string(raw)
                );
                return Reply::errors(400, &[&message]);
            }
        },
    };
    let Some(secret) = mount.v2.get(key) else {
        return Reply::errors(404, &[]);
    };
    let version = if requested > 0 {
        requested as u64
    } else {
        secret.current
    };
    let Some(v) = secret.versions.get(&version) else {
        return Reply::errors(404, &[]);
    };
    let metadata = version_metadata(v, version);
    let deleted = v.deletion_time.is_some_and(|t| t <= SystemTime::now());
    if deleted || v.destroyed {
        let data = json!({"data": null, "metadata": metadata});
        return Reply::raw(
            404,
            Envelope {
                lease_duration: 0,
                data: Some(json::encode(&data)),
                warnings: None,
                auth: None,
                mount_type: "",
            }
            .render(),
        );
    }
    let data = json!({
        "data": Value::Object(v.data.clone().unwrap_or_default()),
        "metadata": metadata,
    });
    let unknown: Vec<&str> = query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !matches!(*k, "version" | "list"))
        .collect();
    let warnings = (!unknown.is_empty()).then(|| {
        let mut unknown = unknown;
        unknown.sort_unstable();
        unknown.dedup();
        vec![format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            unknown.join(" ")
        )]
    });
    Reply::ok(
        Envelope {
            lease_duration: 0,
            data: Some(json::encode(&data)),
            warnings,
            auth: None,
            mount_type: "kv",
        }
        .render(),
    )
}

// POST /v1/:mount/data/:path — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret
fn kv2_put(mount: &mut Mount, key: &str, body: &[u8]) -> Reply {
    let body = match body_object(body) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let Some(Value::Object(data)) = body.get("data") else {
        return Reply::errors(400, &["no data provided"]);
    };
    if let Some(cas) = body.get("options").and_then(|o| o.get("cas")) {
        let current = mount.v2.get(key).map_or(0, |s| s.current);
        let cas = cas
            .as_u64()
            .or_else(|| cas.as_str().and_then(|s| s.parse().ok()));
        if cas != Some(current) {
            return Reply::errors(
                400,
                &["check-and-set parameter did not match the current version"],
            );
        }
    }
    let version = kv2_write(mount, key, data.clone());
    let secret = &mount.v2[key];
    data_envelope(&version_metadata(&secret.versions[&version], version), "kv")
}

// GET /v1/:mount/metadata/:path — https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-metadata
fn kv2_metadata(mount: &Mount, key: &str) -> Reply {
    let Some(secret) = mount.v2.get(key) else {
        return Reply::errors(404, &[]);
    };
    let versions: Map<String, Value> = secret
        .versions
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                json!({
                    "created_time": json::rfc3339_nano(v.created),
                    "deletion_time": v.deletion_time.map(json::rfc3339_nano).unwrap_or_default(),
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    let data = json!({
        "cas_required": false,
        "created_time": json::rfc3339_nano(secret.created),
        "current_version": secret.current,
        "custom_metadata": null,
        "delete_version_after": "0s",
        "max_versions": 0,
        "oldest_version": secret.versions.keys().next().copied().unwrap_or(0),
        "updated_time": json::rfc3339_nano(secret.updated),
        "versions": Value::Object(versions),
    });
    data_envelope(&data, "kv")
}
