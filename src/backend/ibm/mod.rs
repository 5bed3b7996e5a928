//! `AVP_TYPE=ibmsecretsmanager`: IBM Cloud Secrets Manager through its v2 REST API.
//!
//! Per run: one IAM token; one listing of the secret groups, only when a placeholder names a
//! group by its name; one listing (pages of 200) per (group, type), which maps names to ids;
//! then one read per wanted secret (or version). The group form reads only the secrets the
//! manifests name (AVP read every secret of the group), up to [`GROUP_READS`] at a time. Every
//! look-up is shared by concurrent reads; a transient failure is not kept, so the resolver's
//! retry repeats only the request that failed.

mod api;
mod doctor;
mod path;
mod settings;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt as _;
use tokio::sync::OnceCell;

use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::error::excerpt;
use crate::secret::{SecretData, SecretRef};
use api::{Answer, Api, PAGE_SIZE, Token};
use path::{IbmPath, Kind};
use settings::{Credential, IbmSettings};

/// Reads of one group-form path in flight at once (AVP's bound).
const GROUP_READS: usize = 20;
/// Pages of one listing: 100 000 secrets of one type in one group, far beyond an instance's.
const MAX_PAGES: usize = 500;

/// The `ibmsecretsmanager` backend type.
pub struct Ibm;

impl Service for Ibm {
    const TYPE: &'static str = "ibmsecretsmanager";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::defaults_to("AVP_IBM_INSTANCE_URL", "VAULT_ADDR"),
        SettingKey::plain("VAULT_ADDR"),
        SettingKey::credential("AVP_IBM_API_KEY"),
        SettingKey::plain("AVP_IBM_TRUSTED_PROFILE_ID"),
        SettingKey::plain("AVP_IBM_TRUSTED_PROFILE_NAME"),
        SettingKey::plain("AVP_IBM_CR_TOKEN_PATH"),
        SettingKey::defaults_to("IBMCLOUD_IAM_API_ENDPOINT", settings::DEFAULT_IAM),
    ];
    type Settings = IbmSettings;

    fn parse(settings: &Settings) -> anyhow::Result<IbmSettings> {
        IbmSettings::parse(settings)
    }

    fn build(settings: IbmSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(IbmBackend {
            api: Api {
                http: settings.http,
                instance: settings.instance,
                iam: settings.iam,
            },
            credential: settings.credential,
            token: OnceCell::new(),
            groups: OnceCell::new(),
            listings: Mutex::new(HashMap::new()),
            payloads: Mutex::new(HashMap::new()),
        }))
    }
}

/// A look-up made once per run: its value, or a failure that another try would not change.
type Once<T> = OnceCell<Result<T, BackendError>>;
/// One look-up per key, each shared by the reads that need it.
type Cells<K, T> = Mutex<HashMap<K, Arc<Once<T>>>>;
/// Names of a (group, type) to secret ids.
type Listing = HashMap<String, String>;

struct IbmBackend {
    api: Api,
    credential: Credential,
    token: Once<Token>,
    /// Group names to ids.
    groups: Once<HashMap<String, String>>,
    listings: Cells<(String, Kind), Arc<Listing>>,
    /// Secret data by (id, version): a secret read through both path forms is read once.
    payloads: Cells<(String, Option<String>), SecretData>,
}

/// Runs `init` unless `cell` holds its outcome; a transient failure is not kept.
async fn once<T>(
    cell: &Once<T>,
    init: impl Future<Output = Result<T, BackendError>>,
) -> Result<&T, BackendError> {
    let outcome = cell
        .get_or_try_init(|| async move {
            match init.await {
                Err(e) if e.kind == ErrorKind::Transient => Err(e),
                other => Ok(other),
            }
        })
        .await?;
    outcome.as_ref().map_err(Clone::clone)
}

/// The cell of `key` in `cells`, created empty on first use.
fn cell<K: Eq + Hash, T>(cells: &Cells<K, T>, key: K) -> Arc<Once<T>> {
    let mut cells = cells.lock().unwrap_or_else(|e| e.into_inner());
    cells.entry(key).or_default().clone()
}

impl IbmBackend {
    /// The run's one IAM token.
    async fn token(&self) -> Result<&Token, BackendError> {
        once(&self.token, async {
            let credential = self.credential.describe();
            tracing::debug!("ibmsecretsmanager: exchanging {credential} for an IAM token");
            self.api.token(&self.credential).await.map_err(|mut e| {
                if e.kind != ErrorKind::Transient {
                    e.message.push_str(&format!(" (check {credential})"));
                }
                e
            })
        })
        .await
    }

    /// The id of the path's group: as written for `default` and ids, else looked up by name.
    async fn group_id(&self, path: &IbmPath, secret: &SecretRef) -> Result<String, BackendError> {
        if path.group_is_id() {
            return Ok(path.group.clone());
        }
        let groups = once(&self.groups, async {
            let token = self.token().await?;
            tracing::debug!("ibmsecretsmanager: listing the secret groups");
            let groups = self.api.secret_groups(token).await?;
            Ok(groups.into_iter().map(|g| (g.name, g.id)).collect())
        })
        .await?;
        groups.get(&path.group).cloned().ok_or_else(|| {
            // AVP's wording, so users' searches still match.
            BackendError::new(
                ErrorKind::NotFound,
                format!("No such secret group {}: {secret}", excerpt(&path.group)),
            )
        })
    }

    /// The names and ids of the secrets of type `kind` in group `group`.
    async fn listing(&self, group: &str, kind: Kind) -> Result<Arc<Listing>, BackendError> {
        let cell = cell(&self.listings, (group.to_owned(), kind));
        let listing = once(&cell, async {
            let token = self.token().await?;
            let mut names = Listing::new();
            let mut offset = 0;
            for _ in 0..MAX_PAGES {
                tracing::debug!(
                    "ibmsecretsmanager: listing the {} secrets of secret group {group} from {offset}",
                    kind.name()
                );
                let page = self.api.secrets(token, group, kind, offset).await?;
                let count = page.secrets.len();
                for secret in page.secrets {
                    if secret.secret_type == kind.name() && secret.secret_group_id == group {
                        names.insert(secret.name, secret.id);
                    }
                }
                offset += count;
                if count < PAGE_SIZE || offset >= page.total_count {
                    return Ok(Arc::new(names));
                }
            }
            Err(BackendError::new(
                ErrorKind::Unexpected,
                format!(
                    "secret group {group} lists more than {} {} secrets",
                    MAX_PAGES * PAGE_SIZE,
                    kind.name()
                ),
            ))
        })
        .await?;
        Ok(listing.clone())
    }

    /// The data of secret `id` (named `name`), at `version` when one is pinned.
    async fn data(
        &self,
        kind: Kind,
        name: &str,
        id: &str,
        version: Option<&str>,
        what: &str,
    ) -> Result<SecretData, BackendError> {
        let cell = cell(&self.payloads, (id.to_owned(), version.map(str::to_owned)));
        let data = once(&cell, async {
            let token = self.token().await?;
            tracing::debug!("ibmsecretsmanager: reading {what}");
            match version {
                None => Ok(kind.data(self.api.secret(token, id, what).await?)),
                Some(version) => {
                    let answer = self.api.version(token, id, version, what).await?;
                    version_data(kind, answer, name, version, what)
                }
            }
        })
        .await?;
        Ok(data.clone())
    }

    /// Reads `secret`: in the group form the secrets named by `keys` (every secret of the group
    /// and type without `keys`), each under its name; in the single-secret form its fields.
    async fn read(
        &self,
        secret: &SecretRef,
        keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let path = IbmPath::parse(&secret.path)?;
        let group = self.group_id(&path, secret).await?;
        let listing = self.listing(&group, path.kind).await?;
        let version = secret.version.as_deref();
        let kind = path.kind;
        if let Some(name) = &path.name {
            let Some(id) = listing.get(name) else {
                return Err(BackendError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} secret {:?} not found in secret group {}: {secret}",
                        kind.name(),
                        excerpt(name),
                        excerpt(&path.group)
                    ),
                ));
            };
            return self.data(kind, name, id, version, &secret.to_string()).await;
        }
        // A name the group does not hold is a missing key, as in AVP.
        let wanted: Vec<(String, String)> = keys
            .iter()
            .filter_map(|name| listing.get_key_value(name))
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect();
        let mut results: Vec<(String, Result<SecretData, BackendError>)> =
            futures::stream::iter(wanted)
                .map(|(name, id)| async move {
                    let what = format!("{secret}: secret {}", excerpt(&name));
                    let data = self.data(kind, &name, &id, version, &what).await;
                    (name, data)
                })
                .buffer_unordered(GROUP_READS)
                .collect()
                .await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        results
            .into_iter()
            .map(|(name, data)| Ok((name, kind.group_value(data?))))
            .collect()
    }
}

/// A version's data. Secrets Manager keeps the data of the current and previous versions
/// only; an `iam_credentials` version keeps its API key only while it is valid.
/// <https://cloud.ibm.com/docs/secrets-manager?topic=secrets-manager-version-history>
fn version_data(
    kind: Kind,
    answer: Answer,
    name: &str,
    version: &str,
    what: &str,
) -> Result<SecretData, BackendError> {
    let available = answer
        .get("payload_available")
        .and_then(serde_json::Value::as_bool)
        != Some(false);
    let data = kind.data(answer);
    let missing = |reason: &str| {
        BackendError::new(
            ErrorKind::NotFound,
            format!(
                "version {} of secret {:?} {reason}: {what}",
                excerpt(version),
                excerpt(name)
            ),
        )
    };
    match kind {
        Kind::IamCredentials if !available || !data.contains_key("api_key") => Err(missing(
            "has no API key (an iam_credentials secret without reuse_api_key keeps no API key of an earlier version: read the current one)",
        )),
        _ if !available => Err(missing(
            "holds no secret data (Secrets Manager keeps it for the current and previous versions only)",
        )),
        _ => Ok(data),
    }
}

#[async_trait]
impl Backend for IbmBackend {
    async fn login(&self) -> Result<(), BackendError> {
        self.token().await.map(|_| ())
    }

    /// In the group form only the secrets the manifests name are read (AVP read them all).
    async fn get(
        &self,
        secret: &SecretRef,
        keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        self.read(secret, keys).await
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(value: serde_json::Value) -> Answer {
        match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn a_version_without_its_data_is_named_as_such() {
        let old = answer(json!({"id": "v1", "payload_available": false}));
        let err = version_data(Kind::Kv, old, "db", "v1", "ibmcloud/kv/secrets/groups/default/db (version v1)")
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(
            err.message,
            "version v1 of secret \"db\" holds no secret data (Secrets Manager keeps it for the current and previous versions only): ibmcloud/kv/secrets/groups/default/db (version v1)"
        );
        let key = answer(json!({"payload_available": true, "api_key": "k"}));
        let data = version_data(Kind::IamCredentials, key, "ci", "previous", "x").unwrap();
        assert!(data.contains_key("api_key"));
        let gone = answer(json!({"payload_available": true}));
        let err = version_data(Kind::IamCredentials, gone, "ci", "previous", "x").unwrap_err();
        assert!(err.message.contains("has no API key"), "{}", err.message);
    }
}
