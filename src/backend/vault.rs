//! `AVP_TYPE=vault`: HashiCorp Vault through vaultrs, with AVP's settings and auth methods.
//!
//! Requests go through one shared HTTP client (one connection pool, TLS from `VAULT_*`). The KV
//! version comes from the annotation, `AVP_KV_VERSION`, or else is detected once per mount.

mod token_cache;
mod transport;

use std::collections::HashMap;
use std::fmt;
use std::net::ToSocketAddrs as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use base64::Engine as _;
use rustify_derive::Endpoint;
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};
use url::Url;
use vaultrs::api::AuthInfo;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::cert::requests::LoginRequest as CertLogin;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::userpass::requests::LoginRequest as UserPassLogin;
use vaultrs::api::token::requests::LookupTokenSelfRequest;

use super::{Backend, BackendError, ErrorKind};
use crate::config::{Config, Settings};
use crate::secret::{KvVersion, SecretData, SecretRef};
use crate::setting_file;
use crate::value::Value;
use crate::wait;
use token_cache::TokenCache;
use transport::Transport;

/// API paths that hold no secrets: reading `auth/token/lookup-self` would print the plugin's
/// own token.
const REFUSED: &[&str] = &["sys", "auth", "identity"];

/// AVP's default address.
const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";
const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

pub fn build(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    let settings = &config.settings;
    let address = settings.get("VAULT_ADDR").unwrap_or(DEFAULT_ADDR).trim();
    // The error never quotes an address that may carry a password.
    let address = Url::parse(address).map_err(|e| match address.contains('@') {
        true => anyhow::anyhow!("VAULT_ADDR is not a URL ({e})"),
        false => anyhow::anyhow!("VAULT_ADDR {address:?} is not a URL ({e})"),
    })?;
    let namespace = header_setting(settings, "VAULT_NAMESPACE")?;
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
            &auth.credential(settings),
        ]),
    };
    Ok(Arc::new(VaultBackend {
        transport: Transport { http, base },
        namespace,
        auth,
        kv_version,
        cache,
        token: Mutex::new(None),
        mounts: Mutex::new(HashMap::new()),
    }))
}

/// A setting that goes into an HTTP header: surrounding whitespace (a token file's final line
/// break) is dropped, as the Vault CLI drops it; a control character left inside is an error.
fn header_setting(settings: &Settings, key: &str) -> anyhow::Result<Option<String>> {
    let Some(value) = settings.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        bail!("{key} holds the character {c:?}, which cannot be sent in an HTTP header");
    }
    Ok(Some(value.to_owned()))
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
            let mut pem = setting_file::read(cert, setting_file::MAX_SMALL)
                .with_context(|| format!("VAULT_CLIENT_CERT {cert}: cannot read"))?;
            pem.push(b'\n');
            pem.extend(
                setting_file::read(key, setting_file::MAX_SMALL)
                    .with_context(|| format!("VAULT_CLIENT_KEY {key}: cannot read"))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .context("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY do not hold a PEM certificate and private key")?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => bail!("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together"),
    }
    // User-info in VAULT_ADDR goes in a header, so that no URL in a message carries it.
    let mut base = address.clone();
    if !address.username().is_empty() || address.password().is_some() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(address.username());
        let password = decode(address.password().unwrap_or(""));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {basic}"))
            .context("VAULT_ADDR holds user-info that cannot be sent in an HTTP header")?;
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
        let _ = base.set_username("");
        let _ = base.set_password(None);
    }
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
    let pem = setting_file::read(file, setting_file::MAX_SMALL)
        .with_context(|| format!("CA certificate {file}: cannot read"))?;
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
                header_setting(settings, "VAULT_TOKEN")?
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

    /// A one-way fingerprint of the credential, for the token cache key: a cached token is
    /// reused only by a run that could have logged in itself.
    fn credential(&self, settings: &Settings) -> String {
        let secret = match self {
            Auth::Token(_) => String::new(),
            Auth::AppRole { secret_id, .. } => secret_id.clone(),
            Auth::UserPass { password, .. } => password.clone(),
            Auth::GitHub { token, .. } => token.clone(),
            // The service account token itself: another account's token is another identity.
            Auth::Kubernetes { token_path, .. } => {
                setting_file::read_to_string(token_path, setting_file::MAX_SMALL)
                    .map(|jwt| jwt.trim().to_owned())
                    .unwrap_or_default()
            }
            Auth::Cert { .. } => ["VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"]
                .iter()
                .filter_map(|key| settings.get(key))
                .filter_map(|file| setting_file::read_to_string(file, setting_file::MAX_SMALL).ok())
                .collect(),
        };
        token_cache::fingerprint(&secret)
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
    transport: Transport,
    /// `VAULT_NAMESPACE`: where secretsubst logs in, and the default for reads.
    namespace: Option<String>,
    auth: Auth,
    kv_version: Option<KvVersion>,
    cache: Option<TokenCache>,
    token: Mutex<Option<Token>>,
    /// KV detection per (namespace, first path segment), shared by concurrent reads; a transient
    /// failure leaves the cell empty for the next reader to try again.
    mounts: Mutex<HashMap<MountKey, Arc<OnceCell<Mount>>>>,
}

/// A namespace and a path prefix whose KV mount is detected once.
type MountKey = (Option<String>, String);

/// The token in use. `generation` counts logins, so that concurrent 403s log in again once.
#[derive(Clone)]
struct Token {
    value: String,
    generation: u64,
    from_cache: bool,
}

#[derive(Clone)]
struct Mount {
    /// `secret/`, with its trailing slash.
    path: String,
    kv: KvVersion,
    /// Neither configured nor detected: the fallback after a denied lookup.
    guessed: bool,
    /// The path lies on another kind of secrets engine: why it cannot be read.
    not_kv: Option<String>,
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

/// A login's answer: the `auth` block of Vault's response envelope.
#[derive(Deserialize)]
struct LoginAnswer {
    auth: Option<AuthInfo>,
}

impl fmt::Debug for GitHubLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubLogin")
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl VaultBackend {
    /// Logs in with the configured method (never from the cache).
    async fn fresh_login(&self) -> Result<String, BackendError> {
        let what = format!("login at {}", self.auth.mount());
        let _waiting = wait::on(format!("vault: {what}"));
        let namespace = self.namespace.as_deref();
        let t = &self.transport;
        let body = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let endpoint = LoginWithApproleRequest {
                    mount: mount.clone(),
                    role_id: role_id.clone(),
                    secret_id: secret_id.clone(),
                };
                t.send(&endpoint, "", namespace, &what).await
            }
            Auth::UserPass {
                mount,
                username,
                password,
            } => {
                let endpoint = UserPassLogin {
                    mount: mount.clone(),
                    username: username.clone(),
                    password: password.clone(),
                };
                t.send(&endpoint, "", namespace, &what).await
            }
            Auth::Kubernetes {
                mount,
                role,
                token_path,
            } => {
                let jwt = setting_file::read_to_string(token_path, setting_file::MAX_SMALL)
                    .map_err(|e| {
                        BackendError::new(
                            ErrorKind::InvalidConfig,
                            format!(
                                "cannot read the Kubernetes service account token {token_path}: {e}"
                            ),
                        )
                    })?;
                let endpoint = LoginWithKubernetesRequest {
                    mount: mount.clone(),
                    role: role.clone(),
                    jwt: jwt.trim().to_owned(),
                };
                t.send(&endpoint, "", namespace, &what).await
            }
            Auth::GitHub { mount, token } => {
                let endpoint = GitHubLogin {
                    mount: mount.clone(),
                    token: token.clone(),
                };
                t.send(&endpoint, "", namespace, &what).await
            }
            Auth::Cert { mount, name } => {
                let endpoint = CertLogin {
                    mount: mount.clone(),
                    cert_name: name.clone(),
                };
                t.send(&endpoint, "", namespace, &what).await
            }
        }?;
        let token = serde_json::from_slice::<LoginAnswer>(&body)
            .ok()
            .and_then(|answer| answer.auth)
            .map(|auth| auth.client_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unexpected,
                    format!("unexpected response from Vault for {what}: no token in it"),
                )
            })?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.store(&token)
        {
            tracing::warn!("vault: cannot cache the token: {e:#}");
        }
        Ok(token)
    }

    /// A cached token that Vault still accepts.
    async fn cached_token(&self) -> Option<String> {
        let token = self.cache.as_ref()?.load()?;
        let _waiting = wait::on("vault: lookup of the cached token");
        let lookup = self
            .transport
            .send(
                &LookupTokenSelfRequest {},
                &token,
                self.namespace.as_deref(),
                "token lookup",
            )
            .await;
        match lookup {
            Ok(_) => Some(token),
            Err(e) => {
                tracing::debug!("vault: cached token not usable ({e}); logging in");
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

    /// Sends `endpoint` with the current token; a 403 on a cached token logs in again once.
    /// `what` names the request in errors.
    async fn with_token<E: rustify::endpoint::Endpoint>(
        &self,
        namespace: Option<&str>,
        what: &str,
        endpoint: &E,
    ) -> Result<Vec<u8>, BackendError> {
        let token = self.current_token().await?;
        match self
            .transport
            .send(endpoint, &token.value, namespace, what)
            .await
        {
            Err(e) if e.kind == ErrorKind::PermissionDenied && token.from_cache => {
                let fresh = self.relogin(&token).await?;
                self.transport
                    .send(endpoint, &fresh.value, namespace, what)
                    .await
            }
            other => other,
        }
    }

    /// The KV version and mount of `path`: from settings, or detected once per mount. Reads of
    /// different mounts detect concurrently; reads of one mount share one detection.
    async fn kv_of(&self, namespace: Option<&str>, path: &str) -> Result<Mount, BackendError> {
        if let Some(kv) = self.kv_version {
            return Ok(assumed_mount(path, kv));
        }
        let first = path.split('/').next().unwrap_or(path);
        let mount = self.detected(namespace, first, path).await?;
        if path.starts_with(&mount.path) {
            return Ok(mount);
        }
        // A mount deeper than its first segment (`team/kv/`) that this path is not under.
        self.detected(namespace, path, path).await
    }

    async fn detected(
        &self,
        namespace: Option<&str>,
        key: &str,
        path: &str,
    ) -> Result<Mount, BackendError> {
        let cell = self
            .mounts
            .lock()
            .await
            .entry((namespace.map(str::to_owned), key.to_owned()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.detect(namespace, path))
            .await
            .cloned()
    }

    async fn detect(&self, namespace: Option<&str>, path: &str) -> Result<Mount, BackendError> {
        let what = format!("mount lookup for {path}");
        let first = path.split('/').next().unwrap_or(path);
        let _waiting = wait::on(format!("vault: KV version detection of {first}/"));
        let endpoint = ReadMount {
            path: path.to_owned(),
        };
        let detected = self
            .with_token(namespace, &what, &endpoint)
            .await
            .and_then(|body| {
                #[derive(Deserialize)]
                struct Answer {
                    data: MountInfo,
                }
                serde_json::from_slice::<Answer>(&body)
                    .map(|a| a.data)
                    .map_err(|_| {
                        BackendError::new(
                            ErrorKind::Unexpected,
                            format!("unexpected response from Vault for {what}"),
                        )
                    })
            });
        match detected {
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
                Ok(Mount {
                    path,
                    kv: if v2 { KvVersion::V2 } else { KvVersion::V1 },
                    guessed: false,
                    not_kv: None,
                })
            }
            Ok(info) => Ok(Mount {
                not_kv: Some(format!(
                    "{} is a {} secrets engine, not KV",
                    info.path, info.kind
                )),
                ..assumed_mount(path, KvVersion::V2)
            }),
            Err(e) if e.kind == ErrorKind::Transient => Err(e),
            Err(e) => {
                tracing::debug!(
                    "vault: cannot detect the KV version of {path} ({e}); assuming KV v2"
                );
                Ok(Mount {
                    guessed: true,
                    ..assumed_mount(path, KvVersion::V2)
                })
            }
        }
    }

    /// Refuses paths that hold no secrets, as Vault will route them after normalisation.
    fn check_path(&self, path: &str) -> Result<(), BackendError> {
        let effective = self
            .transport
            .effective_path(path)
            .map_err(|e| BackendError::new(ErrorKind::InvalidConfig, e))?;
        for candidate in [path, effective.as_str()] {
            let first = candidate
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if REFUSED.contains(&first) {
                return Err(BackendError::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{}: secretsubst does not read {first}/ paths, which hold no secrets (only KV mounts)",
                        crate::error::excerpt(path)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A mount taken to be the path's first segment, with a configured KV version.
fn assumed_mount(path: &str, kv: KvVersion) -> Mount {
    Mount {
        path: format!("{}/", path.split('/').next().unwrap_or(path)),
        kv,
        guessed: false,
        not_kv: None,
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
        self.check_path(path)?;
        let namespace = secret.namespace.as_deref().or(self.namespace.as_deref());
        let mount = match secret.kv_version {
            Some(kv) => assumed_mount(path, kv),
            None => self.kv_of(namespace, path).await?,
        };
        if let Some(reason) = &mount.not_kv {
            return Err(BackendError::new(ErrorKind::InvalidConfig, reason.clone()));
        }
        let kv = mount.kv;
        let api = api_path(kv, &mount.path, path);
        self.check_path(&api)?;
        let version = match kv {
            KvVersion::V2 => secret.version.clone(),
            KvVersion::V1 => None,
        };
        let what = match &version {
            Some(v) => format!("{api} (version {v})"),
            None => api.clone(),
        };
        let endpoint = ReadPath {
            path: api.clone(),
            version: version.clone(),
        };
        let body = self
            .with_token(namespace, &what, &endpoint)
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
        // Numbers keep their digits (serde_json's arbitrary precision): a 23-digit Vault value
        // is printed as it was stored.
        let data = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|mut envelope| envelope.get_mut("data").map(serde_json::Value::take))
            .filter(|data| !data.is_null())
            .ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unexpected,
                    format!("unexpected response from Vault for {what}"),
                )
            })?;
        secret_data(kv, data, &what)
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
