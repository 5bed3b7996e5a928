//! Logging in to Vault (`AVP_AUTH_TYPE`) and the token's lifecycle: the cache, lookup of a
//! cached token, and one new login when Vault refuses a cached one.

use anyhow::{Context as _, bail};
use rustify_derive::Endpoint;
use serde::Deserialize;
use std::fmt;
use vaultrs::api::AuthInfo;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::cert::requests::LoginRequest as CertLogin;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::userpass::requests::LoginRequest as UserPassLogin;
use vaultrs::api::token::requests::LookupTokenSelfRequest;

use super::VaultBackend;
use super::settings::header_setting;
use super::token_cache;
use crate::backend::{BackendError, ErrorKind};
use crate::config::Settings;
use crate::setting_file;
use crate::wait;

const AUTH_TYPES: &str = "approle, cert, github, k8s, token, userpass";
const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How secretsubst logs in (`AVP_AUTH_TYPE`). No `Debug`: it holds credentials.
pub enum Auth {
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
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Auth> {
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
            // AVP's wording, so users' searches still match, with what it leaves out.
            "" => bail!(
                "Must provide a supported Authentication Type, received nothing: AVP_AUTH_TYPE is not set (valid types: {AUTH_TYPES})"
            ),
            other => bail!(
                "Must provide a supported Authentication Type, received {other} (valid types: {AUTH_TYPES})"
            ),
        })
    }

    /// The `AVP_AUTH_TYPE` value.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Token(_) => "token",
            Auth::AppRole { .. } => "approle",
            Auth::UserPass { .. } => "userpass",
            Auth::Kubernetes { .. } => "k8s",
            Auth::GitHub { .. } => "github",
            Auth::Cert { .. } => "cert",
        }
    }

    /// The auth mount, for the token cache key.
    pub fn mount(&self) -> String {
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
    pub fn credential(&self, settings: &Settings) -> String {
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
    pub fn principal(&self) -> String {
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

/// The token in use. `generation` counts logins, so that concurrent 403s log in again once.
#[derive(Clone)]
pub struct Token {
    value: String,
    generation: u64,
    from_cache: bool,
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
    /// The token for this run: a cached one Vault still accepts, else a fresh login.
    pub async fn log_in(&self) -> Result<(), BackendError> {
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

    /// Logs in with the configured method (never from the cache).
    async fn fresh_login(&self) -> Result<String, BackendError> {
        let what = format!("login at {}", self.settings.auth.mount());
        let _waiting = wait::on(format!("vault: {what}"));
        let namespace = self.settings.namespace.as_deref();
        let t = &self.transport;
        let body = match &self.settings.auth {
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
                self.settings.namespace.as_deref(),
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
    /// `what` names the request in errors; a refusal says where to look.
    pub async fn with_token<E: rustify::endpoint::Endpoint>(
        &self,
        namespace: Option<&str>,
        what: &str,
        endpoint: &E,
    ) -> Result<Vec<u8>, BackendError> {
        self.send_with_token(namespace, what, endpoint)
            .await
            .map_err(super::classify::with_policy_hint)
    }

    async fn send_with_token<E: rustify::endpoint::Endpoint>(
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
}
