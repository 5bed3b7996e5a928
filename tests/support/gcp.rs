//! A Google Cloud test server on 127.0.0.1: Secret Manager's REST API, Google's OAuth 2.0 token
//! endpoint, STS, IAM credentials and the metadata server, on one port, each answering as its
//! documentation shows, errors included. It verifies every JWT assertion's RS256 signature
//! with the test service account's public key (testdata/gcp/) and its claims.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use serde_json::{Value, json};

use super::http::{HttpServer, Reply, Request};

pub const PROJECT: &str = "test-project";
pub const SA_EMAIL: &str = "secretsubst@test-project.iam.gserviceaccount.com";
pub const KEY_ID: &str = "test-key-1";
/// The service account an external account impersonates.
pub const IMPERSONATED: &str = "reader@test-project.iam.gserviceaccount.com";
pub const AUDIENCE: &str = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/argocd/providers/gke";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const SUBJECT_TOKEN: &str = "subject-token-s3cr3t";
pub const CLIENT_ID: &str = "764086051850-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "client-secret-s3cr3t";
pub const REFRESH_TOKEN: &str = "refresh-token-s3cr3t";
/// The header a URL-sourced subject token needs.
pub const SUBJECT_HEADER: (&str, &str) = ("x-subject-key", "subject-header-s3cr3t");
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The test service account's private key, and one the server does not know.
pub const KEY: &str = include_str!("../../testdata/gcp/service-account.key");
pub const OTHER_KEY: &str = include_str!("../../testdata/gcp/other.key");
const PUBLIC_KEY: &str = include_str!("../../testdata/gcp/service-account.pub");

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Enabled,
    Disabled,
    Destroyed,
}

struct Version {
    data: Vec<u8>,
    state: State,
    /// Answered instead of the payload's CRC32C (a payload corrupted on the way).
    crc: Option<u32>,
}

#[derive(Default)]
struct Store {
    /// Secret names (`projects/P/secrets/S`, `projects/P/locations/L/secrets/S`) to their
    /// versions, the first being version 1.
    secrets: BTreeMap<String, Vec<Version>>,
    denied: HashSet<String>,
    /// Every access token issued; each is accepted by Secret Manager.
    tokens: HashSet<String>,
    /// STS tokens, which may impersonate.
    federated: HashSet<String>,
    issued: usize,
    /// `http://127.0.0.1:PORT/token`: the audience of assertions.
    token_uri: String,
    list_denied: bool,
}

pub struct GcpServer {
    server: HttpServer,
    store: Arc<Mutex<Store>>,
}

impl GcpServer {
    pub fn start() -> GcpServer {
        let store = Arc::new(Mutex::new(Store::default()));
        let shared = store.clone();
        let server = HttpServer::start(move |req| {
            answer(req, &mut shared.lock().unwrap_or_else(|e| e.into_inner()))
        });
        let gcp = GcpServer { server, store };
        gcp.lock().token_uri = format!("{}/token", gcp.url());
        gcp
    }

    /// Adds a version to secret `name` (created on first use).
    pub fn add(&self, name: &str, payload: &[u8]) -> &GcpServer {
        self.lock()
            .secrets
            .entry(name.to_owned())
            .or_default()
            .push(Version {
                data: payload.to_vec(),
                state: State::Enabled,
                crc: None,
            });
        self
    }

    /// Every access to `name` answers 403.
    pub fn deny(&self, name: &str) {
        self.lock().denied.insert(name.to_owned());
    }

    /// Listing secrets answers 403, as for a role with only secretAccessor.
    pub fn deny_list(&self) {
        self.lock().list_denied = true;
    }

    pub fn disable(&self, name: &str, version: usize) {
        self.set_state(name, version, State::Disabled);
    }

    pub fn destroy(&self, name: &str, version: usize) {
        self.set_state(name, version, State::Destroyed);
    }

    /// The latest version of `name` is answered with a wrong CRC32C.
    pub fn corrupt(&self, name: &str) {
        let mut store = self.lock();
        let version = store.secrets.get_mut(name).and_then(|v| v.last_mut());
        version.expect("a secret to corrupt").crc = Some(1);
    }

    fn set_state(&self, name: &str, version: usize, state: State) {
        let mut store = self.lock();
        let versions = store.secrets.get_mut(name).expect("a known secret");
        versions[version - 1].state = state;
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port())
    }

    /// The underlying server: request log and fault injection.
    pub fn http(&self) -> &HttpServer {
        &self.server
    }

    /// `:access` calls so far.
    pub fn accesses(&self) -> usize {
        self.requests_where(|r| r.method == "GET" && r.path.ends_with(":access"))
    }

    /// OAuth 2.0 token requests (service account, authorized user).
    pub fn token_requests(&self) -> usize {
        self.server.count("POST", "/token")
    }

    pub fn sts_requests(&self) -> usize {
        self.server.count("POST", "/v1/token")
    }

    pub fn impersonations(&self) -> usize {
        self.requests_where(|r| r.path.ends_with(":generateAccessToken"))
    }

    pub fn metadata_token_requests(&self) -> usize {
        self.server.count(
            "GET",
            "/computeMetadata/v1/instance/service-accounts/default/token",
        )
    }

    /// Every request that reached the server.
    pub fn total(&self) -> usize {
        self.server.requests().len()
    }

    fn requests_where(&self, pred: impl Fn(&Request) -> bool) -> usize {
        self.server.requests().iter().filter(|r| pred(r)).count()
    }

    /// A service account key file for this server, signed with `key`.
    pub fn service_account_file_with(&self, dir: &Path, key: &str) -> PathBuf {
        write_json(
            dir,
            "service-account.json",
            json!({
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": KEY_ID,
                "private_key": key,
                "client_email": SA_EMAIL,
                "client_id": "111111111111111111111",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": format!("{}/token", self.url()),
            }),
        )
    }

    pub fn service_account_file(&self, dir: &Path) -> PathBuf {
        self.service_account_file_with(dir, KEY)
    }

    /// An external account file for this server's STS, reading its subject token from
    /// `source` (a `credential_source` object), impersonating [`IMPERSONATED`] or not.
    pub fn external_account_file(&self, dir: &Path, source: Value, impersonate: bool) -> PathBuf {
        let mut file = json!({
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": JWT_TOKEN_TYPE,
            "token_url": format!("{}/v1/token", self.url()),
            "credential_source": source,
        });
        if impersonate {
            file["service_account_impersonation_url"] = json!(format!(
                "{}/v1/projects/-/serviceAccounts/{IMPERSONATED}:generateAccessToken",
                self.url()
            ));
        }
        write_json(dir, "external-account.json", file)
    }

    /// gcloud's `authorized_user` file for this server's token endpoint.
    pub fn authorized_user_file(&self, path: &Path) -> PathBuf {
        let file = json!({
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_uri": format!("{}/token", self.url()),
            "quota_project_id": PROJECT,
        });
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file.to_string()).unwrap();
        path.to_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_json(dir: &Path, name: &str, value: Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    path
}

fn answer(req: &Request, store: &mut Store) -> Reply {
    let path = req.path.as_str();
    match (req.method.as_str(), path) {
        ("POST", "/token") => oauth_token(req, store),
        ("POST", "/v1/token") => sts_token(req, store),
        ("POST", p) if p.ends_with(":generateAccessToken") => generate_access_token(req, store),
        ("GET", "/subject") => subject(req),
        ("GET", p) if p.starts_with("/computeMetadata/v1/") => metadata(req, store),
        ("GET", p) if p.starts_with("/v1/projects/") => secret_manager(req, store),
        _ => rpc_error(
            404,
            "NOT_FOUND",
            "The requested URL was not found on this server.",
        ),
    }
}

/// `{"error": {"code", "message", "status"}}`: <https://cloud.google.com/apis/design/errors>.
pub fn rpc_error(code: u16, status: &str, message: &str) -> Reply {
    Reply::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// An OAuth 2.0 error (RFC 6749 §5.2), as Google's token endpoint and STS answer them.
fn oauth_error(code: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        code,
        json!({"error": error, "error_description": description}),
    )
}

fn text(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.into(),
    }
}

fn issue(store: &mut Store, kind: &str) -> String {
    store.issued += 1;
    let token = format!("ya29.{kind}-s3cr3t-{}", store.issued);
    store.tokens.insert(token.clone());
    token
}

fn token_answer(token: &str) -> Reply {
    Reply::json(
        200,
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

/// <https://developers.google.com/identity/protocols/oauth2/service-account#httprest> and the
/// refresh_token grant.
fn oauth_token(req: &Request, store: &mut Store) -> Reply {
    let form: BTreeMap<String, String> = req.form().into_iter().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    match field("grant_type") {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if let Err(reply) = verify_assertion(field("assertion"), &store.token_uri) {
                return reply;
            }
            let token = issue(store, "sa");
            token_answer(&token)
        }
        "refresh_token" => {
            if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
                return oauth_error(401, "invalid_client", "The OAuth client was not found.");
            }
            if field("refresh_token") != REFRESH_TOKEN {
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
            }
            let token = issue(store, "user");
            token_answer(&token)
        }
        other => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

/// Checks an assertion's signature and claims as Google does; the refusal on failure.
fn verify_assertion(jwt: &str, token_uri: &str) -> Result<(), Reply> {
    let bad_signature = || oauth_error(400, "invalid_grant", "Invalid JWT Signature.");
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(oauth_error(400, "invalid_grant", "Invalid JWT."));
    };
    let decode = |s: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(header), decode(claims)) else {
        return Err(oauth_error(400, "invalid_grant", "Invalid JWT."));
    };
    if header["alg"] != "RS256" || header["typ"] != "JWT" || header["kid"] != KEY_ID {
        return Err(bad_signature());
    }
    let key = rsa::RsaPublicKey::from_public_key_pem(PUBLIC_KEY).expect("the test public key");
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key);
    let signed = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| rsa::pkcs1v15::Signature::try_from(s.as_slice()).ok());
    let input = format!("{}.{}", parts[0], parts[1]);
    match signed {
        Some(s) if verifier.verify(input.as_bytes(), &s).is_ok() => {}
        _ => return Err(bad_signature()),
    }
    if claims["iss"] != SA_EMAIL {
        return Err(oauth_error(
            400,
            "invalid_grant",
            "Invalid grant: account not found",
        ));
    }
    if claims["aud"] != token_uri {
        return Err(oauth_error(
            400,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        ));
    }
    if claims["scope"] != SCOPE {
        return Err(oauth_error(
            400,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp == iat + 3600 && iat.abs_diff(now) < 300 => Ok(()),
        _ => Err(oauth_error(
            400,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        )),
    }
}

/// <https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>
fn sts_token(req: &Request, store: &mut Store) -> Reply {
    let form: BTreeMap<String, String> = req.form().into_iter().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type.");
    }
    if field("audience") != AUDIENCE {
        return oauth_error(
            400,
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
        );
    }
    if field("scope") != SCOPE
        || field("requested_token_type") != ACCESS_TOKEN_TYPE
        || field("subject_token_type") != JWT_TOKEN_TYPE
    {
        return oauth_error(
            400,
            "invalid_request",
            "Invalid value for \"scope\", \"requested_token_type\" or \"subject_token_type\".",
        );
    }
    if field("subject_token") != SUBJECT_TOKEN {
        return oauth_error(400, "invalid_grant", "Unable to parse the ID Token.");
    }
    let token = issue(store, "sts");
    store.federated.insert(token.clone());
    Reply::json(
        200,
        json!({"access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer", "expires_in": 3600}),
    )
}

/// <https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>
fn generate_access_token(req: &Request, store: &mut Store) -> Reply {
    if !req.bearer().is_some_and(|t| store.federated.contains(t)) {
        return unauthenticated();
    }
    let account = req
        .path
        .rsplit_once("/serviceAccounts/")
        .map(|(_, rest)| rest.trim_end_matches(":generateAccessToken"))
        .unwrap_or_default();
    if account != IMPERSONATED {
        return rpc_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        );
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
    if body["scope"] != json!([SCOPE]) {
        return rpc_error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        );
    }
    let token = issue(store, "impersonated");
    Reply::json(
        200,
        json!({"accessToken": token, "expireTime": "2030-01-01T00:00:00Z"}),
    )
}

/// A URL-sourced subject token (an identity provider's token endpoint), as JSON.
fn subject(req: &Request) -> Reply {
    match req.header(SUBJECT_HEADER.0) == Some(SUBJECT_HEADER.1) {
        true => Reply::json(200, json!({"id_token": SUBJECT_TOKEN})),
        false => text(401, "Unauthorized"),
    }
}

/// <https://cloud.google.com/compute/docs/access/authenticate-workloads#applications>
fn metadata(req: &Request, store: &mut Store) -> Reply {
    if req.header("metadata-flavor") != Some("Google") {
        return text(403, "Missing required header: Metadata-Flavor");
    }
    match req.path.as_str() {
        "/computeMetadata/v1/instance/service-accounts/default/token" => {
            let token = issue(store, "metadata");
            token_answer(&token)
        }
        "/computeMetadata/v1/project/project-id" => text(200, PROJECT),
        _ => text(404, "Not Found"),
    }
}

fn unauthenticated() -> Reply {
    rpc_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    )
}

/// Secret Manager: access
/// (<https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/access>,
/// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.locations.secrets.versions/access>)
/// and list.
fn secret_manager(req: &Request, store: &Store) -> Reply {
    if !req.bearer().is_some_and(|t| store.tokens.contains(t)) {
        return unauthenticated();
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let raw = req.path.trim_start_matches("/v1/");
    if let Some(parent) = raw.strip_suffix("/secrets") {
        return list(
            store,
            &parent.split('/').map(decode).collect::<Vec<_>>().join("/"),
        );
    }
    let Some(version_path) = raw.strip_suffix(":access") else {
        return rpc_error(404, "NOT_FOUND", "Method not found.");
    };
    let segments: Vec<String> = version_path.split('/').map(decode).collect();
    let (name, version) = match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["projects", p, "secrets", s, "versions", v] => {
            (format!("projects/{p}/secrets/{s}"), v.to_string())
        }
        ["projects", p, "locations", l, "secrets", s, "versions", v] => (
            format!("projects/{p}/locations/{l}/secrets/{s}"),
            v.to_string(),
        ),
        _ => {
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid resource field value in the request.",
            );
        }
    };
    if store.denied.contains(&name) {
        return rpc_error(
            403,
            "PERMISSION_DENIED",
            &format!(
                "Permission 'secretmanager.versions.access' denied for resource '{name}/versions/{version}' (or it may not exist)."
            ),
        );
    }
    let Some(versions) = store.secrets.get(&name).filter(|v| !v.is_empty()) else {
        return rpc_error(
            404,
            "NOT_FOUND",
            &format!("Secret [{name}] not found or has no versions."),
        );
    };
    let number = match version.as_str() {
        "latest" => versions.len(),
        n => match n.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return rpc_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid version id: {version}"),
                );
            }
        },
    };
    let Some(found) = versions.get(number - 1) else {
        return rpc_error(
            404,
            "NOT_FOUND",
            &format!("Secret Version [{name}/versions/{number}] not found."),
        );
    };
    let state = match found.state {
        State::Enabled => None,
        State::Disabled => Some("DISABLED"),
        State::Destroyed => Some("DESTROYED"),
    };
    if let Some(state) = state {
        return rpc_error(
            400,
            "FAILED_PRECONDITION",
            &format!("Secret Version [{name}/versions/{number}] is in {state} state."),
        );
    }
    let crc = found.crc.unwrap_or_else(|| crc32c::crc32c(&found.data));
    Reply::json(
        200,
        json!({
            "name": format!("{name}/versions/{number}"),
            "payload": {"data": STANDARD.encode(&found.data), "dataCrc32c": crc.to_string()},
        }),
    )
}

/// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/list>, first
/// page of one.
fn list(store: &Store, parent: &str) -> Reply {
    if store.list_denied {
        return rpc_error(
            403,
            "PERMISSION_DENIED",
            &format!(
                "Permission 'secretmanager.secrets.list' denied for resource '{parent}' (or it may not exist)."
            ),
        );
    }
    let prefix = format!("{parent}/secrets/");
    let secrets: Vec<Value> = store
        .secrets
        .keys()
        .filter(|name| name.starts_with(&prefix))
        .take(1)
        .map(|name| json!({"name": name, "replication": {"automatic": {}}}))
        .collect();
    Reply::json(200, json!({"secrets": secrets}))
}
