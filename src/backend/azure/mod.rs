//! `AVP_TYPE=azurekeyvault`: Azure Key Vault through its REST API, read as AVP reads it: the
//! path is a vault's name, each key one of its secrets, `#version` a secret version.
//!
//! The keys the manifests read are fetched one GET each, concurrently, within
//! `AVP_MAX_CONCURRENCY` requests in flight for the whole profile, with one Entra ID token
//! per run. A secret the vault does not hold, or holds disabled, is an absent key rather than
//! an error, so `avp.kubernetes.io/remove-missing` works. Each key's outcome is kept for the
//! run, so that when the resolver retries a vault after a throttled read, only the keys that
//! failed are asked for again.

mod auth;
mod classify;
mod doctor;
mod settings;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use super::{Backend, BackendError, Context, ErrorKind, Probe, Service, rest};
use crate::config::{SettingKey, Settings};
use crate::error::excerpt;
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;
use auth::AccessToken;
use settings::AzureSettings;

/// The Key Vault REST API version of every request.
const API_VERSION: &str = "7.4";
/// How `rest` names Key Vault in transport errors.
const SERVICE: &str = "Key Vault";

/// The `azurekeyvault` backend type.
pub struct Azure;

impl Service for Azure {
    const TYPE: &'static str = "azurekeyvault";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::defaults_to("AVP_AZURE_CLOUD", "AzurePublicCloud"),
        SettingKey::defaults_to(
            "AVP_AZURE_VAULT_URL",
            "https://{name}.vault.azure.net (the cloud's)",
        ),
        SettingKey::defaults_to(
            "AZURE_AUTHORITY_HOST",
            "https://login.microsoftonline.com (the cloud's)",
        ),
        SettingKey::plain("AZURE_TENANT_ID"),
        SettingKey::plain("AZURE_CLIENT_ID"),
        SettingKey::credential("AZURE_CLIENT_SECRET"),
        SettingKey::plain("AZURE_FEDERATED_TOKEN_FILE"),
        SettingKey::plain("IDENTITY_ENDPOINT"),
        SettingKey::credential("IDENTITY_HEADER"),
    ];
    type Settings = AzureSettings;

    fn parse(settings: &Settings) -> anyhow::Result<AzureSettings> {
        AzureSettings::parse(settings, &|key| {
            std::env::var(key).ok().filter(|v| !v.is_empty())
        })
    }

    fn build(settings: AzureSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(AzureBackend {
            http: rest::client(rest::TIMEOUT)?,
            permits: Semaphore::new(settings.max_concurrency),
            settings,
            token: OnceCell::new(),
            reads: Mutex::new(HashMap::new()),
        }))
    }
}

/// One secret of one vault, at a version or the latest.
type Read = (String, Option<String>, String);

struct AzureBackend {
    settings: AzureSettings,
    http: reqwest::Client,
    token: OnceCell<AccessToken>,
    /// Bounds the requests in flight across every vault of the profile.
    permits: Semaphore,
    /// Each secret read so far: its value, or `None` when absent.
    reads: Mutex<HashMap<Read, Option<Value>>>,
}

/// A secret as Get Secret answers it; tags and content type are not used.
#[derive(Deserialize)]
struct SecretBundle {
    value: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Default, Deserialize)]
struct Attributes {
    enabled: Option<bool>,
}

impl AzureBackend {
    /// The base URL of vault `name`, which must be a vault name (it becomes a host name).
    fn vault(&self, name: &str) -> Result<Url, BackendError> {
        let valid = (3..=24).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{:?} is not a Key Vault name: the path must name a vault, with 3 to 24 letters, digits and dashes",
                    excerpt(name)
                ),
            ));
        }
        let url = self.settings.vault_url.replace("{name}", name);
        Url::parse(&url).map_err(|e| {
            BackendError::new(
                ErrorKind::InvalidConfig,
                format!("AVP_AZURE_VAULT_URL gives no URL for vault {name} ({e})"),
            )
        })
    }

    /// `{vault}/secrets[/…segments]?api-version=7.4`, each segment percent-encoded.
    fn endpoint(vault: &Url, segments: &[&str]) -> Url {
        let mut url = vault.clone();
        url.set_query(None);
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .push("secrets")
            .extend(segments);
        url.query_pairs_mut().append_pair("api-version", API_VERSION);
        url
    }

    /// One GET of secret `name` of `secret`'s vault, at its version: the value, or `None` when
    /// the vault holds no such secret or holds it disabled.
    /// <https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret/get-secret>
    async fn read(
        &self,
        vault: &Url,
        secret: &SecretRef,
        name: &str,
        token: &AccessToken,
    ) -> Result<Option<Value>, BackendError> {
        let read = (secret.path.clone(), secret.version.clone(), name.to_owned());
        if let Some(done) = self.lock().get(&read) {
            return Ok(done.clone());
        }
        let mut segments = vec![name];
        segments.extend(secret.version.as_deref());
        let url = Self::endpoint(vault, &segments);
        let what = describe(secret, name);
        let answer = {
            let _permit = self.permits.acquire().await.ok();
            rest::send(self.http.get(url).bearer_auth(token.secret()), SERVICE, &what)
                .await
                .map_err(unreachable_hint)?
        };
        let value = match answer {
            Ok(body) => {
                let bundle: SecretBundle = rest::json(&body, SERVICE, &what)?;
                match bundle.attributes.enabled {
                    Some(false) => None,
                    _ => bundle.value.map(Value::String),
                }
            }
            Err(refused) if classify::absent(&refused) => None,
            Err(refused) => return Err(classify::refusal(refused, &what)),
        };
        self.lock().insert(read, value.clone());
        Ok(value)
    }

    /// Reads `names` of `secret`'s vault concurrently: the keys found, or the first error
    /// that a retry cannot mend, else the first transient one.
    async fn read_all<'n>(
        &self,
        secret: &SecretRef,
        names: impl IntoIterator<Item = &'n String>,
    ) -> Result<SecretData, BackendError> {
        let vault = self.vault(&secret.path)?;
        let token = self.token().await?;
        let names: Vec<&String> = names.into_iter().collect();
        let results = futures::future::join_all(
            names
                .iter()
                .map(|name| self.read(&vault, secret, name, token)),
        )
        .await;
        let mut data = SecretData::new();
        let mut transient = None;
        for (name, result) in names.into_iter().zip(results) {
            match result {
                Ok(Some(value)) => {
                    data.insert(name.clone(), value);
                }
                Ok(None) => {}
                Err(e) if e.kind == ErrorKind::Transient => {
                    transient.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match transient {
            Some(e) => Err(e),
            None => Ok(data),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Read, Option<Value>>> {
        self.reads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Backend for AzureBackend {
    /// The token, so that a refused credential fails once, as a login, with a hint.
    async fn login(&self) -> Result<(), BackendError> {
        match self.token().await {
            Ok(_) => Ok(()),
            Err(mut e) => {
                if let Some(hint) = self.token_hint(&e) {
                    e.message = format!("{} ({hint})", e.message);
                }
                Err(e)
            }
        }
    }

    /// One GET per key the manifests read (AVP's reading of a path annotation listed the
    /// whole vault; the manifests name every key they use, so no listing is needed).
    async fn get(
        &self,
        secret: &SecretRef,
        keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        if let Some(key) = keys.iter().find(|k| !is_secret_name(k)) {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "key {:?} is not a Key Vault secret name (1 to 127 letters, digits and dashes): vault {}",
                    excerpt(key),
                    excerpt(&secret.path)
                ),
            ));
        }
        self.read_all(secret, keys).await
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }
}

/// Key Vault's rule for secret names; anything else is refused before a request.
fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// How a read is named in errors: `secret db-password (version 3f…) in vault app`.
fn describe(secret: &SecretRef, name: &str) -> String {
    let version = match &secret.version {
        Some(version) => format!(" (version {})", excerpt(version)),
        None => String::new(),
    };
    format!(
        "secret {}{version} in vault {}",
        excerpt(name),
        excerpt(&secret.path)
    )
}

/// A vault whose host does not resolve usually does not exist.
fn unreachable_hint(mut error: BackendError) -> BackendError {
    if error.message.contains("dns error") {
        error
            .message
            .push_str(" (no vault of that name resolves: check the name, AVP_AZURE_CLOUD and AVP_AZURE_VAULT_URL)");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_key_vaults_rules() {
        assert!(is_secret_name("db-password-2"));
        assert!(!is_secret_name("db_password"));
        assert!(!is_secret_name(""));
        assert!(!is_secret_name(&"x".repeat(128)));
    }

    #[test]
    fn endpoints_encode_their_segments() {
        let vault = Url::parse("http://127.0.0.1:1/app/").unwrap();
        assert_eq!(
            AzureBackend::endpoint(&vault, &["db", "a/b?c"]).as_str(),
            "http://127.0.0.1:1/app/secrets/db/a%2Fb%3Fc?api-version=7.4"
        );
        let vault = Url::parse("https://app.vault.azure.net").unwrap();
        assert_eq!(
            AzureBackend::endpoint(&vault, &[]).as_str(),
            "https://app.vault.azure.net/secrets?api-version=7.4"
        );
    }
}
