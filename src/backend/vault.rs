//! `AVP_TYPE=vault`: HashiCorp Vault through vaultrs, with AVP's settings and auth methods.
//!
//! Requests go through one shared HTTP client (one connection pool, TLS from `VAULT_*`). The KV
//! version comes from the annotation, `AVP_KV_VERSION`, or else is detected once per mount.

mod token_cache;

use std::collections::HashMap;
use std::fmt;
use std::net::ToSocketAddrs as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use rustify_derive::Endpoint;
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

use super::{Backend, BackendError, ErrorKind};
use crate::config::{Config, Settings};
use crate::secret::{KvVersion, SecretData, SecretRef};
use crate::value::Value;
use token_cache::TokenCache;

/// AVP's default address.
const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";
const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

pub fn build(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    let settings = &config.settings;
    let address = settings.get("VAULT_ADDR").unwrap_or(DEFAULT_ADDR);
    let address =
        Url::parse(address).with_context(|| format!("VAULT_ADDR {address:?} is not a URL"))?;
    let namespace = settings.get("VAULT_NAMESPACE").map(str::to_owned);
    let auth = Auth::from_settings(settings)?;
    let kv_version = match settings.get("AVP_KV_VERSION").map(str::trim) {
        None => None,
        Some("1") => Some(KvVersion::V1),
        Some("2") => Some(KvVersion::V2),
        Some(other) => bail!("AVP_KV_VERSION must be 1 or 2, got {other:?}"),
    };
    let (http, base) = http_client(settings, &address)?;
    let cache = match (&auth, config.token_cache) {
        (Auth::Token(_), _) | (_, false) => None,
        (auth, true) => TokenCache::for_identity(&[
            address.as_str(),
            namespace.as_deref().unwrap_or(""),
            &auth.mount(),
            &auth.principal(),
        ]),
    };
    Ok(Arc::new(VaultBackend {
        http,
        base,
        namespace,
        auth,
        kv_version,
        cache,
        token: Mutex::new(None),
        mounts: Mutex::new(Vec::new()),
    }))
}

/// The HTTP client for every request, and the base URL to send them to.
fn http_client(settings: &Settings, address: &Url) -> anyhow::Result<(reqwest::Client, Url)> {
    let mut builder = reqwest::Client::builder().tls_backend_rustls().timeout(
        settings
            .duration("VAULT_CLIENT_TIMEOUT")?
            .unwrap_or(Duration::from_secs(60)),
    );
    if settings.get("VAULT_SKIP_VERIFY").is_some_and(truthy) {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    if let Some(file) = settings.get("VAULT_CACERT") {
        builder = builder.tls_certs_merge(read_certificates(file)?);
    }
    if let Some(dir) = settings.get("VAULT_CAPATH") {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("VAULT_CAPATH {dir}: cannot read"))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("VAULT_CAPATH {dir}: cannot read"))?
                .path();
            if path.is_file() {
                builder = builder.tls_certs_merge(read_certificates(&path.display().to_string())?);
            }
        }
    }
    match (
        settings.get("VAULT_CLIENT_CERT"),
        settings.get("VAULT_CLIENT_KEY"),
    ) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("VAULT_CLIENT_CERT {cert}: cannot read"))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .with_context(|| format!("VAULT_CLIENT_KEY {key}: cannot read"))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .context("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY do not hold a PEM certificate and private key")?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => bail!("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together"),
    }
    let mut base = address.clone();
    if let Some(name) = settings.get("VAULT_TLS_SERVER_NAME") {
        // Connect to the address, but verify the certificate (and send SNI) for `name`.
        let host = address.host_str().context("VAULT_ADDR has no host")?;
        let port = address.port_or_known_default().unwrap_or(8200);
        let target = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        builder = builder.resolve(name, target);
        base.set_host(Some(name))
            .context("VAULT_TLS_SERVER_NAME is not a host name")?;
    }
    let http = builder
        .build()
        .context("cannot set up the HTTP client for Vault")?;
    Ok((http, base))
}

fn read_certificates(file: &str) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(file).with_context(|| format!("CA certificate {file}: cannot read"))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("CA certificate {file}: not PEM"))
}

/// Go's `strconv.ParseBool` true values, which Vault's client uses for `VAULT_SKIP_VERIFY`.
fn truthy(value: &str) -> bool {
    matches!(value.trim(), "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// How secretsubst logs in (`AVP_AUTH_TYPE`). No `Debug`: it holds credentials.
enum Auth {
    Token(String),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: String,
    },
    UserPass {
        mount: String,
        username: String,
        password: String,
    },
    Kubernetes {
        mount: String,
        role: String,
        token_path: String,
    },
    GitHub {
        mount: String,
        token: String,
    },
    Cert {
        mount: String,
        name: String,
    },
}

impl Auth {
    fn from_settings(settings: &Settings) -> anyhow::Result<Auth> {
        let get = |key| settings.get(key).map(str::to_owned);
        let mount = |default: &str| {
            let path = settings.get("AVP_MOUNT_PATH").unwrap_or(default);
            path.strip_prefix("auth/")
                .unwrap_or(path)
                .trim_matches('/')
                .to_owned()
        };
        let kind = settings
            .get("AVP_AUTH_TYPE")
            .map(str::trim)
            .unwrap_or_default();
        Ok(match kind {
            "token" => Auth::Token(
                get("VAULT_TOKEN")
                    .context("VAULT_TOKEN for token authentication cannot be empty")?,
            ),
            "approle" => match (get("AVP_ROLE_ID"), get("AVP_SECRET_ID")) {
                (Some(role_id), Some(secret_id)) => Auth::AppRole {
                    mount: mount("auth/approle"),
                    role_id,
                    secret_id,
                },
                _ => bail!(
                    "AVP_ROLE_ID and AVP_SECRET_ID for approle authentication cannot be empty"
                ),
            },
            "userpass" => match (get("AVP_USERNAME"), get("AVP_PASSWORD")) {
                (Some(username), Some(password)) => Auth::UserPass {
                    mount: mount("auth/userpass"),
                    username,
                    password,
                },
                _ => bail!(
                    "AVP_USERNAME and AVP_PASSWORD for userpass authentication cannot be empty"
                ),
            },
            "k8s" => Auth::Kubernetes {
                role: get("AVP_K8S_ROLE")
                    .context("AVP_K8S_ROLE cannot be empty when using Kubernetes Auth")?,
                mount: match settings.get("AVP_K8S_MOUNT_PATH") {
                    Some(path) => path
                        .strip_prefix("auth/")
                        .unwrap_or(path)
                        .trim_matches('/')
                        .to_owned(),
                    None => mount("auth/kubernetes"),
                },
                token_path: get("AVP_K8S_TOKEN_PATH")
                    .unwrap_or_else(|| DEFAULT_K8S_TOKEN_PATH.to_owned()),
            },
            "github" => Auth::GitHub {
                mount: mount("auth/github"),
                token: get("AVP_GITHUB_TOKEN")
                    .context("AVP_GITHUB_TOKEN for github authentication cannot be empty")?,
            },
            "cert" => {
                if settings.get("VAULT_CLIENT_CERT").is_none() {
                    bail!(
                        "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY for cert authentication cannot be empty"
                    );
                }
                Auth::Cert {
                    mount: mount("auth/cert"),
                    name: get("AVP_CERT_ROLE").unwrap_or_default(),
                }
            }
            other => bail!("Must provide a supported Authentication Type, received {other}"),
        })
    }

    /// The auth mount, for the token cache key.
    fn mount(&self) -> String {
        match self {
            Auth::Token(_) => String::new(),
            Auth::AppRole { mount, .. }
            | Auth::UserPass { mount, .. }
            | Auth::Kubernetes { mount, .. }
            | Auth::GitHub { mount, .. }
            | Auth::Cert { mount, .. } => format!("auth/{mount}"),
        }
    }

    /// Who logs in, for the token cache key: never a secret itself.
    fn principal(&self) -> String {
        match self {
            Auth::Token(_) => String::new(),
            Auth::AppRole { role_id, .. } => format!("approle:{role_id}"),
            Auth::UserPass { username, .. } => format!("userpass:{username}"),
            Auth::Kubernetes { role, .. } => format!("k8s:{role}"),
            Auth::GitHub { token, .. } => format!("github:{}", token_cache::fingerprint(token)),
            Auth::Cert { name, .. } => format!("cert:{name}"),
        }
    }
}

struct VaultBackend {
    http: reqwest::Client,
    base: Url,
    /// `VAULT_NAMESPACE`: where secretsubst logs in, and the default for reads.
    namespace: Option<String>,
    auth: Auth,
    kv_version: Option<KvVersion>,
    cache: Option<TokenCache>,
    token: Mutex<Option<Token>>,
    /// KV mounts detected so far.
    mounts: Mutex<Vec<Mount>>,
}

/// The token in use. `generation` counts logins, so that concurrent 403s log in again once.
#[derive(Clone)]
struct Token {
    value: String,
    generation: u64,
    from_cache: bool,
}

#[derive(Clone)]
struct Mount {
    namespace: Option<String>,
    /// `secret/`, with its trailing slash.
    path: String,
    kv: KvVersion,
    /// Neither configured nor detected: the fallback after a denied lookup.
    guessed: bool,
}

/// `GET /v1/<path>[?version=N]`: a KV read by its API path, as AVP reads.
/// <https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version>
#[derive(Debug, Endpoint)]
#[endpoint(path = "{self.path}", response = "serde_json::Value")]
struct ReadPath {
    #[endpoint(skip)]
    path: String,
    #[endpoint(query)]
    version: Option<String>,
}

/// <https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts>
#[derive(Debug, Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts/{self.path}", response = "MountInfo")]
struct ReadMount {
    #[endpoint(skip)]
    path: String,
}

#[derive(Deserialize)]
struct MountInfo {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    options: Option<HashMap<String, String>>,
}

/// <https://developer.hashicorp.com/vault/api-docs/auth/github#login>
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", method = "POST")]
struct GitHubLogin {
    #[endpoint(skip)]
    mount: String,
    token: String,
}

impl fmt::Debug for GitHubLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubLogin")
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl VaultBackend {
    fn client(&self, token: &str, namespace: Option<&str>) -> VaultClient {
        let settings = VaultClientSettings {
            address: self.base.clone(),
            ca_certs: Vec::new(),
            identity: None,
            timeout: None,
            token: token.to_owned(),
            verify: true,
            version: 1,
            wrapping: false,
            namespace: namespace.map(str::to_owned),
            proxy: None,
        };
        VaultClient {
            http: rustify::clients::reqwest::Client::new(
                self.base.as_str().trim_end_matches('/'),
                self.http.clone(),
            ),
            middle: EndpointMiddleware {
                token: token.to_owned(),
                version: "v1".to_owned(),
                wrap: None,
                namespace: namespace.map(str::to_owned),
            },
            settings,
        }
    }

    /// Logs in with the configured method (never from the cache).
    async fn fresh_login(&self) -> Result<String, BackendError> {
        let client = self.client("", self.namespace.as_deref());
        let info = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => vaultrs::auth::approle::login(&client, mount, role_id, secret_id).await,
            Auth::UserPass {
                mount,
                username,
                password,
            } => vaultrs::auth::userpass::login(&client, mount, username, password).await,
            Auth::Kubernetes {
                mount,
                role,
                token_path,
            } => {
                let jwt = std::fs::read_to_string(token_path).map_err(|e| {
                    BackendError::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "cannot read the Kubernetes service account token {token_path}: {e}"
                        ),
                    )
                })?;
                vaultrs::auth::kubernetes::login(&client, mount, role, jwt.trim()).await
            }
            Auth::GitHub { mount, token } => {
                let endpoint = GitHubLogin {
                    mount: mount.clone(),
                    token: token.clone(),
                };
                vaultrs::api::auth(&client, endpoint).await
            }
            Auth::Cert { mount, name } => vaultrs::auth::cert::login(&client, mount, name).await,
        };
        let info = info.map_err(|e| classify(e, &format!("login at {}", self.auth.mount())))?;
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.store(&info.client_token) {
                tracing::warn!("vault: cannot cache the token: {e:#}");
            }
        }
        Ok(info.client_token)
    }

    /// A cached token that Vault still accepts.
    async fn cached_token(&self) -> Option<String> {
        let token = self.cache.as_ref()?.load()?;
        let client = self.client(&token, self.namespace.as_deref());
        match vaultrs::token::lookup_self(&client).await {
            Ok(_) => Some(token),
            Err(e) => {
                tracing::debug!(
                    "vault: cached token not usable ({}); logging in",
                    classify(e, "token lookup")
                );
                None
            }
        }
    }

    async fn current_token(&self) -> Result<Token, BackendError> {
        self.token
            .lock()
            .await
            .clone()
            .ok_or_else(|| BackendError::new(ErrorKind::Unexpected, "read before login"))
    }

    /// Logs in again after `stale` was refused, unless another request already did.
    async fn relogin(&self, stale: &Token) -> Result<Token, BackendError> {
        let mut current = self.token.lock().await;
        if let Some(token) = current
            .as_ref()
            .filter(|t| t.generation != stale.generation)
        {
            return Ok(token.clone());
        }
        tracing::debug!("vault: the cached token was refused; logging in again");
        let token = Token {
            value: self.fresh_login().await?,
            generation: stale.generation + 1,
            from_cache: false,
        };
        *current = Some(token.clone());
        Ok(token)
    }

    /// Runs `request` with the current token; a 403 on a cached token logs in again once.
    /// `what` names the request in errors.
    async fn with_token<T, F, Fut>(
        &self,
        namespace: Option<&str>,
        what: &str,
        request: F,
    ) -> Result<T, BackendError>
    where
        F: Fn(VaultClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let token = self.current_token().await?;
        let result = match request(self.client(&token.value, namespace)).await {
            Err(ClientError::APIError { code: 403, .. }) if token.from_cache => {
                let fresh = self.relogin(&token).await?;
                request(self.client(&fresh.value, namespace)).await
            }
            other => other,
        };
        result.map_err(|e| classify(e, what))
    }

    /// The KV version and mount of `path`: from settings, or detected once per mount.
    async fn kv_of(&self, namespace: Option<&str>, path: &str) -> Result<Mount, BackendError> {
        if let Some(kv) = self.kv_version {
            return Ok(assumed_mount(namespace, path, kv));
        }
        let mut mounts = self.mounts.lock().await;
        if let Some(m) = mounts
            .iter()
            .find(|m| m.namespace.as_deref() == namespace && path.starts_with(&m.path))
        {
            return Ok(m.clone());
        }
        let what = format!("mount lookup for {path}");
        let detected = self
            .with_token(namespace, &what, |client| {
                let endpoint = ReadMount {
                    path: path.to_owned(),
                };
                async move { vaultrs::api::exec_with_result(&client, endpoint).await }
            })
            .await;
        let mount = match detected {
            Ok(info) if info.kind == "kv" || info.kind == "generic" => {
                let v2 = info
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .is_some_and(|v| v == "2");
                let path = if info.path.ends_with('/') {
                    info.path
                } else {
                    format!("{}/", info.path)
                };
                Mount {
                    namespace: namespace.map(str::to_owned),
                    path,
                    kv: if v2 { KvVersion::V2 } else { KvVersion::V1 },
                    guessed: false,
                }
            }
            Ok(info) => {
                return Err(BackendError::new(
                    ErrorKind::InvalidConfig,
                    format!("{} is a {} secrets engine, not KV", info.path, info.kind),
                ));
            }
            Err(e) => {
                if e.kind == ErrorKind::Transient {
                    return Err(e);
                }
                tracing::debug!(
                    "vault: cannot detect the KV version of {path} ({e}); assuming KV v2"
                );
                Mount {
                    guessed: true,
                    ..assumed_mount(namespace, path, KvVersion::V2)
                }
            }
        };
        mounts.push(mount.clone());
        Ok(mount)
    }
}

/// A mount taken to be the path's first segment, with a configured KV version.
fn assumed_mount(namespace: Option<&str>, path: &str, kv: KvVersion) -> Mount {
    Mount {
        namespace: namespace.map(str::to_owned),
        path: format!("{}/", path.split('/').next().unwrap_or(path)),
        kv,
        guessed: false,
    }
}

/// The API path that reads `path` on a mount of version `kv`: on KV v2, `secret/app` and
/// `secret/data/app` both read `secret/data/app`.
fn api_path(kv: KvVersion, mount: &str, path: &str) -> String {
    match (kv, path.strip_prefix(mount)) {
        (KvVersion::V2, Some(rest)) if !rest.starts_with("data/") => format!("{mount}data/{rest}"),
        _ => path.to_owned(),
    }
}

#[async_trait]
impl Backend for VaultBackend {
    async fn login(&self) -> Result<(), BackendError> {
        let token = match self.cached_token().await {
            Some(value) => Token {
                value,
                generation: 0,
                from_cache: true,
            },
            None => Token {
                value: self.fresh_login().await?,
                generation: 0,
                from_cache: false,
            },
        };
        *self.token.lock().await = Some(token);
        Ok(())
    }

    async fn get(&self, secret: &SecretRef) -> Result<SecretData, BackendError> {
        let path = secret.path.trim_start_matches('/');
        if path.is_empty() {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                "empty Vault path (write <path:MOUNT/data/SECRET#KEY>)",
            ));
        }
        let namespace = secret.namespace.as_deref().or(self.namespace.as_deref());
        let mount = match secret.kv_version {
            Some(kv) => assumed_mount(namespace, path, kv),
            None => self.kv_of(namespace, path).await?,
        };
        let kv = mount.kv;
        let api = api_path(kv, &mount.path, path);
        let version = match kv {
            KvVersion::V2 => secret.version.clone(),
            KvVersion::V1 => None,
        };
        let what = match &version {
            Some(v) => format!("{api} (version {v})"),
            None => api.clone(),
        };
        let response = self
            .with_token(namespace, &what, |client| {
                let endpoint = ReadPath {
                    path: api.clone(),
                    version: version.clone(),
                };
                async move { vaultrs::api::exec_with_result(&client, endpoint).await }
            })
            .await
            .map_err(|mut e| {
                if e.kind == ErrorKind::NotFound && mount.guessed {
                    let (other, number) = match kv {
                        KvVersion::V1 => ("KV v2", 2),
                        KvVersion::V2 => ("KV v1", 1),
                    };
                    e.message.push_str(&format!(
                        " (if {} is a {other} mount, set AVP_KV_VERSION or the avp.kubernetes.io/kv-version annotation to {number})",
                        mount.path
                    ));
                }
                e
            })?;
        secret_data(kv, response, &what)
    }
}

/// The keys of a KV read response's `data`, with AVP's hints for the wrong engine version.
fn secret_data(
    kv: KvVersion,
    data: serde_json::Value,
    what: &str,
) -> Result<SecretData, BackendError> {
    let map = match (kv, data) {
        (KvVersion::V1, serde_json::Value::Object(map)) => map,
        (KvVersion::V2, serde_json::Value::Object(mut envelope)) => match envelope.remove("data") {
            Some(serde_json::Value::Object(map)) => map,
            Some(serde_json::Value::Null) => {
                return Err(BackendError::new(
                    ErrorKind::NotFound,
                    format!("{what} has no data: is this version of the secret deleted?"),
                ));
            }
            _ => {
                return Err(BackendError::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{what} is not a KV v2 secret: check that kv-v2 is the correct engine (set AVP_KV_VERSION or the avp.kubernetes.io/kv-version annotation to 1)"
                    ),
                ));
            }
        },
        _ => {
            return Err(BackendError::new(
                ErrorKind::Unexpected,
                format!("{what}: the response data is not a map"),
            ));
        }
    };
    Ok(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

/// Turns a vaultrs error into a neutral kind with a message that holds no secret: Vault's own
/// error strings and status codes, never response bodies.
fn classify(error: ClientError, what: &str) -> BackendError {
    use rustify::errors::ClientError as Http;
    let (kind, message) = match error {
        ClientError::APIError { code, errors } => {
            let reason = errors
                .iter()
                .flat_map(|e| e.lines())
                .map(|l| l.trim().trim_start_matches("* ").trim())
                .filter(|l| {
                    !l.is_empty()
                        && !l.ends_with("error occurred:")
                        && !l.ends_with("errors occurred:")
                })
                .collect::<Vec<_>>()
                .join("; ");
            let reason = if reason.is_empty() {
                status_text(code).to_owned()
            } else {
                reason
            };
            (kind_of(code), format!("{code} {reason}: {what}"))
        }
        ClientError::RestClientError {
            source: Http::ServerResponseError { code, content },
        } => (
            kind_of(code),
            format!(
                "{code} {}: {what}{}",
                status_text(code),
                deleted_hint(content.as_deref())
            ),
        ),
        ClientError::RestClientError {
            source: Http::RequestError { source, .. },
        } => (
            ErrorKind::Transient,
            format!("cannot reach Vault for {what}: {}", request_error(&source)),
        ),
        ClientError::RestClientError {
            source: Http::ResponseParseError { .. } | Http::ResponseConversionError { .. },
        }
        | ClientError::ResponseEmptyError
        | ClientError::ResponseDataEmptyError
        | ClientError::JsonParseError { .. } => (
            ErrorKind::Unexpected,
            format!("unexpected response from Vault for {what}"),
        ),
        other => (ErrorKind::Unexpected, format!("{what}: {other}")),
    };
    BackendError::new(kind, message)
}

fn kind_of(code: u16) -> ErrorKind {
    match code {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::InvalidConfig,
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "bad request",
        401 | 403 => "permission denied",
        404 => "not found",
        429 => "too many requests",
        503 => "service unavailable (sealed or in standby?)",
        500..=599 => "server error",
        _ => "error",
    }
}

/// Vault answers a read of a deleted or destroyed KV v2 version with 404 and the version's
/// metadata; say so rather than "not found".
fn deleted_hint(content: Option<&str>) -> String {
    let metadata = content
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|body| body.pointer("/data/metadata").cloned());
    let Some(metadata) = metadata else {
        return String::new();
    };
    if metadata
        .get("destroyed")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        return " (this version was destroyed: pin another version)".to_owned();
    }
    match metadata
        .get("deletion_time")
        .and_then(serde_json::Value::as_str)
    {
        Some(time) if !time.is_empty() => {
            format!(" (this version was deleted at {time}: undelete it or pin another version)")
        }
        _ => String::new(),
    }
}

/// The reqwest error chain (connection refused, TLS failure, timeout), one line.
fn request_error(error: &anyhow::Error) -> String {
    format!("{error:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_paths_get_their_data_segment() {
        assert_eq!(
            api_path(KvVersion::V2, "secret/", "secret/app"),
            "secret/data/app"
        );
        assert_eq!(
            api_path(KvVersion::V2, "secret/", "secret/data/app"),
            "secret/data/app"
        );
        assert_eq!(
            api_path(KvVersion::V2, "team/kv/", "team/kv/a/b"),
            "team/kv/data/a/b"
        );
        assert_eq!(api_path(KvVersion::V1, "kv/", "kv/app"), "kv/app");
    }

    #[test]
    fn vault_error_lists_become_one_line() {
        let e = classify(
            ClientError::APIError {
                code: 403,
                errors: vec!["1 error occurred:\n\t* permission denied\n\n".into()],
            },
            "secret/data/app",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(e.message, "403 permission denied: secret/data/app");
    }

    #[test]
    fn deleted_versions_are_named_as_such() {
        let body = r#"{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","destroyed":false}}}"#;
        assert_eq!(
            deleted_hint(Some(body)),
            " (this version was deleted at 2026-01-01T00:00:00Z: undelete it or pin another version)"
        );
        let body = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true}}}"#;
        assert_eq!(
            deleted_hint(Some(body)),
            " (this version was destroyed: pin another version)"
        );
        assert_eq!(deleted_hint(Some(r#"{"errors":[]}"#)), "");
    }

    #[test]
    fn kv1_secrets_read_as_kv2_get_a_hint() {
        let err =
            secret_data(KvVersion::V2, serde_json::json!({"user": "x"}), "kv/app").unwrap_err();
        assert!(
            err.message.starts_with("kv/app is not a KV v2 secret"),
            "{}",
            err.message
        );
    }
}
