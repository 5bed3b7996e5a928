//! `AVP_TYPE=vault`: HashiCorp Vault through vaultrs, with AVP's settings and auth methods.
//!
//! Requests go through one shared HTTP client (one connection pool, TLS from `VAULT_*`). The KV
//! version comes from the annotation, `AVP_KV_VERSION`, or else is detected once per mount.

mod auth;
mod classify;
mod doctor;
mod kv;
mod settings;
mod token_cache;
mod transport;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell};

use super::{Backend, BackendError, BackendOption, Context, Probe, Service};
use crate::config::{DEFAULT_PROFILE, SettingKey, Settings};
use crate::secret::{SecretData, SecretRef};
use auth::Token;
use kv::{KvVersion, Mount, MountKey};
use settings::VaultSettings;
use token_cache::TokenCache;
use transport::Transport;

/// The `kv-version` annotation: the KV version of the manifest's secrets.
const KV_VERSION: &str = "kv-version";
/// The `namespace` annotation: the Vault namespace of the manifest's secrets.
const NAMESPACE: &str = "namespace";

/// The `vault` backend type.
pub struct Vault;

impl Service for Vault {
    const TYPE: &'static str = "vault";
    const OPTIONS: &'static [BackendOption] = &[
        BackendOption {
            name: KV_VERSION,
            check: |value| match KvVersion::parse(value) {
                // AVP's wording, so users' searches still match.
                None => Err(format!(
                    "Unsupported kvVersion specified: {value:?} (expected \"1\" or \"2\")"
                )),
                Some(_) => Ok(()),
            },
        },
        BackendOption {
            name: NAMESPACE,
            // It becomes an HTTP header: a line break there would split the request.
            check: |value| match value.chars().find(|c| c.is_control()) {
                Some(c) => Err(format!(
                    "a namespace cannot hold the control character {c:?}"
                )),
                None => Ok(()),
            },
        },
    ];
    /// AVP's wording.
    const MISSING: &'static str = "missing Vault value";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::defaults_to("VAULT_ADDR", "https://127.0.0.1:8200"),
        SettingKey::plain("VAULT_NAMESPACE"),
        SettingKey::plain("AVP_AUTH_TYPE"),
        SettingKey::credential("VAULT_TOKEN"),
        SettingKey::credential("AVP_ROLE_ID"),
        SettingKey::credential("AVP_SECRET_ID"),
        SettingKey::plain("AVP_USERNAME"),
        SettingKey::credential("AVP_PASSWORD"),
        SettingKey::credential("AVP_GITHUB_TOKEN"),
        SettingKey::plain("AVP_MOUNT_PATH"),
        SettingKey::plain("AVP_K8S_ROLE"),
        SettingKey::plain("AVP_K8S_MOUNT_PATH"),
        SettingKey::plain("AVP_K8S_TOKEN_PATH"),
        SettingKey::plain("AVP_CERT_ROLE"),
        SettingKey::defaults_to("AVP_KV_VERSION", "detected per mount"),
        SettingKey::plain("VAULT_CACERT"),
        SettingKey::plain("VAULT_CAPATH"),
        SettingKey::plain("VAULT_CLIENT_CERT"),
        SettingKey::plain("VAULT_CLIENT_KEY"),
        SettingKey::plain("VAULT_TLS_SERVER_NAME"),
        SettingKey::defaults_to("VAULT_SKIP_VERIFY", "false"),
        SettingKey::defaults_to("VAULT_CLIENT_TIMEOUT", "60s"),
    ];
    type Settings = VaultSettings;

    fn parse(settings: &Settings) -> anyhow::Result<VaultSettings> {
        VaultSettings::parse(settings)
    }

    fn build(settings: VaultSettings, context: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        let cache = match context.cache_credentials && !settings.identity.is_empty() {
            false => None,
            true => {
                let mut parts: Vec<&str> = settings.identity.iter().map(String::as_str).collect();
                // A named profile's tokens are its own, even with the same login as another.
                if context.profile != DEFAULT_PROFILE {
                    parts.push(context.profile);
                }
                TokenCache::for_identity(&parts)
            }
        };
        Ok(Arc::new(VaultBackend {
            transport: Transport {
                http: settings.http.clone(),
                base: settings.base.clone(),
            },
            settings,
            cache,
            token: Mutex::new(None),
            mounts: Mutex::new(HashMap::new()),
        }))
    }
}

struct VaultBackend {
    transport: Transport,
    settings: VaultSettings,
    cache: Option<TokenCache>,
    token: Mutex<Option<Token>>,
    /// KV detection per (namespace, first path segment), shared by concurrent reads; a transient
    /// failure leaves the cell empty for the next reader to try again.
    mounts: Mutex<HashMap<MountKey, Arc<OnceCell<Mount>>>>,
}

#[async_trait]
impl Backend for VaultBackend {
    async fn login(&self) -> Result<(), BackendError> {
        self.log_in().await
    }

    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        self.read(secret).await
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }
}
