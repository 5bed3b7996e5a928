//! An Azure test server on 127.0.0.1 with the three services `azurekeyvault` talks to: the
//! Microsoft Entra ID token endpoint, the App Service managed identity endpoint, and Key
//! Vault's secret API for any number of vaults. Each handler cites the page it follows.
//!
//! Vaults live at `http://127.0.0.1:PORT/{name}`, the template `AVP_AZURE_VAULT_URL` takes: the
//! path stands in for the host name `{name}.vault.azure.net`. A vault the server does not hold
//! answers 404 without a Key Vault error body, as a path-routing proxy in front of Key Vault
//! does for a name it has no route for (the public cloud's answer, a host that does not
//! resolve, cannot be served on loopback). Secret ids and `nextLink`s use the request's
//! `Host`, as Key Vault's use the vault's host.
//!
//! Deliberate simplifications: one tenant, one application (client secret or federated
//! assertion), tokens are unsigned JWTs that Key Vault accepts while the server issued them,
//! and a vault is either fully readable or denied.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde_json::json;

use super::http::{HttpServer, Reply, Request};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "fad7d5b3-69d6-4b48-9259-8d12124e1cf1";
pub const CLIENT_SECRET: &str = "client-s3cr3t";
/// The service account token Azure Workload Identity projects (an opaque JWT here).
pub const FEDERATED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.federated-s3cr3t.sig";
pub const IDENTITY_HEADER: &str = "identity-header-s3cr3t";
/// Where the App Service identity endpoint is.
pub const IDENTITY_PATH: &str = "/msi/token";
/// Key Vault's audience in the public cloud.
pub const RESOURCE: &str = "https://vault.azure.net";
/// How every access token the server issues starts: `{"alg":"RS256","typ":"JWT"}`.
pub const TOKEN_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
/// Every credential above, and the tokens: none may reach secretsubst's output.
pub const CREDENTIALS: &[&str] = &[
    CLIENT_SECRET,
    FEDERATED_TOKEN,
    IDENTITY_HEADER,
    TOKEN_HEADER,
];

/// Key Vault's page size when `maxresults` is not given, and its largest.
const PAGE: usize = 25;

struct Version {
    id: String,
    value: String,
    enabled: bool,
}

#[derive(Default)]
struct State {
    /// Vault name → secret name → versions, the latest last.
    vaults: BTreeMap<String, BTreeMap<String, Vec<Version>>>,
    /// Vaults whose secrets the application has no role on.
    denied: HashSet<String>,
    /// Access tokens issued, which Key Vault accepts.
    issued: HashSet<String>,
}

pub struct AzureServer {
    server: HttpServer,
    state: Arc<Mutex<State>>,
    versions: AtomicUsize,
}

impl AzureServer {
    pub fn start() -> AzureServer {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::start(move |req| {
            answer(req, &mut shared.lock().unwrap_or_else(|e| e.into_inner()))
        });
        AzureServer {
            server,
            state,
            versions: AtomicUsize::new(0),
        }
    }

    /// An empty vault.
    pub fn vault(&self, vault: &str) {
        self.lock().vaults.entry(vault.to_owned()).or_default();
    }

    /// Sets secret `name` of `vault` (a new version when it exists); returns the version id.
    pub fn set(&self, vault: &str, name: &str, value: &str) -> String {
        let n = self.versions.fetch_add(1, Ordering::SeqCst);
        let id = format!(
            "{:032x}",
            0x4387_e9f3_d6e1_4c45_9867_6790_0000_0000_u128 + n as u128
        );
        self.lock()
            .vaults
            .entry(vault.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default()
            .push(Version {
                id: id.clone(),
                value: value.to_owned(),
                enabled: true,
            });
        id
    }

    /// Disables the latest version of a secret.
    pub fn disable(&self, vault: &str, name: &str) {
        if let Some(version) = self
            .lock()
            .vaults
            .get_mut(vault)
            .and_then(|v| v.get_mut(name))
            .and_then(|versions| versions.last_mut())
        {
            version.enabled = false;
        }
    }

    /// Every read in `vault` is refused, as for an identity without a role on it.
    pub fn deny(&self, vault: &str) {
        self.vault(vault);
        self.lock().denied.insert(vault.to_owned());
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `AVP_AZURE_VAULT_URL` for this server.
    pub fn vault_url(&self) -> String {
        format!("{}/{{name}}", self.server.url())
    }

    /// The settings of a run that reads this server's vaults with the client secret.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT_ID),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
        ])
    }

    /// The settings of a run with the credential `credential`.
    pub fn env_with(&self, credential: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("AVP_TYPE".to_owned(), "azurekeyvault".to_owned()),
            ("AVP_AZURE_VAULT_URL".to_owned(), self.vault_url()),
            ("AZURE_AUTHORITY_HOST".to_owned(), self.url()),
        ];
        env.extend(
            credential
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    }

    /// Token requests to Entra ID and the identity endpoint.
    pub fn token_requests(&self) -> usize {
        self.server
            .count("POST", &format!("/{TENANT}/oauth2/v2.0/token"))
            + self.server.count("GET", IDENTITY_PATH)
    }

    /// Requests to Key Vault's secret API of `vault`.
    pub fn reads(&self, vault: &str) -> usize {
        self.server.count("GET", &format!("/{vault}/secrets"))
    }

    /// The underlying server: request log and fault injection.
    pub fn http(&self) -> &HttpServer {
        &self.server
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(req: &Request, st: &mut State) -> Reply {
    let segments: Vec<String> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(req, tenant, st),
        ("GET", ["msi", "token"]) => identity_endpoint(req, st),
        ("GET", [vault, "secrets", rest @ ..]) => key_vault(req, vault, rest, st),
        _ => not_routed(),
    }
}

/// Entra ID's client credentials grant, with a secret or a federated assertion.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
fn token(req: &Request, tenant: &str, st: &mut State) -> Reply {
    let form = req.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if tenant != TENANT {
        return entra_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if field("grant_type") != Some("client_credentials") {
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("scope") != Some(&format!("{RESOURCE}/.default")) {
        return entra_error(
            400,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let client_id = field("client_id").unwrap_or_default();
    if client_id != CLIENT_ID {
        return entra_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{TENANT}'. This can happen if the application has not been installed by the administrator of the tenant."
            ),
        );
    }
    match (field("client_secret"), field("client_assertion")) {
        (Some(CLIENT_SECRET), None) => {}
        (Some(_), None) => {
            return entra_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT_ID}'."
                ),
            );
        }
        (None, Some(assertion))
            if field("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") =>
        {
            if assertion != FEDERATED_TOKEN {
                return entra_error(
                    401,
                    "invalid_client",
                    700213,
                    "No matching federated identity record found for presented assertion subject 'system:serviceaccount:argocd:argocd-repo-server'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                );
            }
        }
        _ => {
            return entra_error(
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
    }
    let token = issue(st);
    Reply::json(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

/// The App Service (and Azure Arc) managed identity endpoint.
/// <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference>
fn identity_endpoint(req: &Request, st: &mut State) -> Reply {
    if req.header("x-identity-header") != Some(IDENTITY_HEADER) {
        return Reply::json(
            401,
            json!({"error": "unauthorized", "error_description": "The X-IDENTITY-HEADER header is missing or not valid."}),
        );
    }
    if req.param("api-version").as_deref() != Some("2019-08-01")
        || req.param("resource").as_deref() != Some(RESOURCE)
    {
        return Reply::json(
            400,
            json!({"error": "invalid_request", "error_description": "The api-version or resource parameter is missing or not valid."}),
        );
    }
    let token = issue(st);
    Reply::json(
        200,
        json!({
            "access_token": token,
            "expires_on": (now() + 86399).to_string(),
            "resource": RESOURCE,
            "token_type": "Bearer",
            "client_id": req.param("client_id").unwrap_or_else(|| CLIENT_ID.to_owned()),
        }),
    )
}

/// Key Vault's Get Secret and Get Secrets, behind its bearer token check and RBAC.
fn key_vault(req: &Request, vault: &str, rest: &[&str], st: &mut State) -> Reply {
    let Some(secrets) = st.vaults.get(vault) else {
        return not_routed();
    };
    // <https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes#http-401-unauthenticated-request>
    let challenge = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"{RESOURCE}\""
    );
    match req.bearer() {
        None => {
            return key_vault_error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                None,
            )
            .with_header("www-authenticate", &challenge);
        }
        Some(token) if !st.issued.contains(token) => {
            return key_vault_error(
                401,
                "Unauthorized",
                "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/.",
                None,
            )
            .with_header("www-authenticate", &challenge);
        }
        Some(_) => {}
    }
    if req.param("api-version").is_none() {
        return key_vault_error(
            400,
            "BadParameter",
            "The request URI must contain an 'api-version' query parameter.",
            None,
        );
    }
    // <https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes#http-403-insufficient-permissions>
    if st.denied.contains(vault) {
        let action = match rest {
            [] => "secrets/readMetadata/action",
            _ => "secrets/getSecret/action",
        };
        return key_vault_error(
            403,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={CLIENT_ID};oid=3975aeed-7d08-453b-b6f4-445f32698091;iss=https://sts.windows.net/{TENANT}/\r\nAction: 'Microsoft.KeyVault/vaults/{action}'\r\nResource: '/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourcegroups/apps/providers/microsoft.keyvault/vaults/{vault}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {vault};location=westeurope\r\n"
            ),
            Some("ForbiddenByRbac"),
        );
    }
    let base = format!(
        "http://{}/{vault}",
        req.header("host").unwrap_or("127.0.0.1")
    );
    match rest {
        [] => list(req, &base, secrets),
        [name] => get(&base, secrets, name, None),
        [name, version] => get(&base, secrets, name, Some(version)),
        _ => not_routed(),
    }
}

/// Get Secrets: ids and attributes, `maxresults` (at most 25) a page, `nextLink` to the rest.
/// <https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secrets/get-secrets>
fn list(req: &Request, base: &str, secrets: &BTreeMap<String, Vec<Version>>) -> Reply {
    let size = req
        .param("maxresults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(PAGE)
        .clamp(1, PAGE);
    let skip = req
        .param("$skiptoken")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<serde_json::Value> = secrets
        .iter()
        .skip(skip)
        .take(size)
        .map(|(name, versions)| {
            let latest = versions.last().expect("a secret has a version");
            json!({
                "id": format!("{base}/secrets/{name}"),
                "attributes": attributes(latest.enabled),
                "tags": {},
            })
        })
        .collect();
    let next = (skip + size < secrets.len()).then(|| {
        format!(
            "{base}/secrets?api-version=7.4&$skiptoken={}&maxresults={size}",
            skip + size
        )
    });
    Reply::json(200, json!({"value": page, "nextLink": next}))
}

/// Get Secret: the latest version or the one named; a disabled one is refused.
/// <https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret/get-secret>
fn get(
    base: &str,
    secrets: &BTreeMap<String, Vec<Version>>,
    name: &str,
    version: Option<&str>,
) -> Reply {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return key_vault_error(
            400,
            "BadParameter",
            &format!("The request URI contains an invalid name: {name}"),
            None,
        );
    }
    let found = secrets.get(name).and_then(|versions| match version {
        Some(id) => versions.iter().find(|v| v.id == id),
        None => versions.last(),
    });
    let Some(found) = found else {
        let id = match version {
            Some(v) => format!("{name}/{v}"),
            None => name.to_owned(),
        };
        return key_vault_error(
            404,
            "SecretNotFound",
            &format!(
                "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
            None,
        );
    };
    if !found.enabled {
        return key_vault_error(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    Reply::json(
        200,
        json!({
            "value": found.value,
            "id": format!("{base}/secrets/{name}/{}", found.id),
            "attributes": attributes(true),
            "tags": {},
        }),
    )
}

fn attributes(enabled: bool) -> serde_json::Value {
    json!({
        "enabled": enabled,
        "created": 1493938410,
        "updated": 1493938410,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    })
}

/// Key Vault's error body.
/// <https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes>
fn key_vault_error(status: u16, code: &str, message: &str, inner: Option<&str>) -> Reply {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    Reply::json(status, json!({ "error": error }))
}

/// Entra ID's error body.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response-1>
fn entra_error(status: u16, error: &str, code: u32, description: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 0e8e0e0a-1b7f-4c1e-9a2f-4c5e6b7a8d00\r\nCorrelation ID: 5c1d3a6e-4a0e-4f3b-8f7e-2d9c0b1a2e33\r\nTimestamp: 2026-12-02 10:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-12-02 10:00:00Z",
            "trace_id": "0e8e0e0a-1b7f-4c1e-9a2f-4c5e6b7a8d00",
            "correlation_id": "5c1d3a6e-4a0e-4f3b-8f7e-2d9c0b1a2e33",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// What a path-routing proxy answers for a route it does not have.
fn not_routed() -> Reply {
    Reply {
        status: 404,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "404 page not found\n".into(),
    }
}

/// A new access token: an unsigned JWT with the claims Entra ID puts in a Key Vault token.
fn issue(st: &mut State) -> String {
    let encode = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{TOKEN_HEADER}.{}.c2lnbmF0dXJl",
        encode(json!({
            "aud": RESOURCE,
            "iss": format!("https://sts.windows.net/{TENANT}/"),
            "iat": now(),
            "exp": now() + 3599,
            "appid": CLIENT_ID,
            "tid": TENANT,
            "oid": "3975aeed-7d08-453b-b6f4-445f32698091",
            "uti": format!("token-{}", st.issued.len()),
        }))
    );
    st.issued.insert(token.clone());
    token
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
