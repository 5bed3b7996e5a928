//! `AVP_TYPE=1passwordconnect`: items of 1Password vaults through a Connect server's REST API.
//!
//! A path is `vaults/VAULT/items/ITEM`, each of vault and item an id or a title. A title is
//! looked up once per run, concurrent reads sharing the look-up, and only ids reach URL paths; a
//! title that matches several vaults or items is an error, never a pick. An item is one GET, its
//! keys are its fields' labels. Versions are ignored, as in AVP.

mod connect;
mod doctor;
mod settings;

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::rest::{self, Refused};
use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::error::excerpt;
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;
use connect::{Connect, Item, Refusal, is_id, is_transient, refusal};
use settings::OnePasswordSettings;

/// The `1passwordconnect` backend type.
pub struct OnePassword;

impl Service for OnePassword {
    const TYPE: &'static str = "1passwordconnect";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::plain("OP_CONNECT_HOST"),
        SettingKey::credential("OP_CONNECT_TOKEN"),
    ];
    type Settings = OnePasswordSettings;

    fn parse(settings: &Settings) -> anyhow::Result<OnePasswordSettings> {
        OnePasswordSettings::parse(settings)
    }

    fn build(settings: OnePasswordSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(OnePasswordBackend {
            connect: Connect {
                http: rest::client(rest::TIMEOUT)?,
                host: settings.host,
                authorization: settings.authorization,
            },
            vaults: Mutex::default(),
            items: Mutex::default(),
        }))
    }
}

/// What a title look-up found: the ids of the matches, or Connect's refusal. Kept for the run;
/// a transient failure is not kept, so that the retry looks up again.
type Found = Result<Vec<String>, Refusal>;
type Lookups<K> = Mutex<HashMap<K, Arc<OnceCell<Found>>>>;

struct OnePasswordBackend {
    connect: Connect,
    /// Vault title → the vaults of that name.
    vaults: Lookups<String>,
    /// (vault id, item title) → the items of that title.
    items: Lookups<(String, String)>,
}

impl OnePasswordBackend {
    /// The id of `vault` (an id, or a title looked up once per run).
    async fn vault_id(&self, vault: &str, path: &str) -> Result<String, BackendError> {
        if is_id(vault) {
            return Ok(vault.to_owned());
        }
        let query = async {
            let vaults = self.connect.vaults(Some(vault), path).await?;
            Ok(vaults.map(|vaults| vaults.into_iter().map(|v| v.id).collect()))
        };
        let ids = look_up(&self.vaults, vault.to_owned(), query, path).await?;
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(BackendError::new(
                ErrorKind::NotFound,
                format!(
                    "no vault named {:?} is readable with the Connect token: {path}",
                    excerpt(vault)
                ),
            )),
            many => Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{} vaults are named {:?}; name the vault by its id: {path}",
                    many.len(),
                    excerpt(vault)
                ),
            )),
        }
    }

    /// The id of `item` in the vault `vault_id` (`vault` as the path names it).
    async fn item_id(
        &self,
        vault_id: &str,
        vault: &str,
        item: &str,
        path: &str,
    ) -> Result<String, BackendError> {
        if is_id(item) {
            return Ok(item.to_owned());
        }
        let query = async {
            let items = self.connect.items_titled(vault_id, item, path).await?;
            Ok(items.map(|items| items.into_iter().map(|i| i.id).collect()))
        };
        let key = (vault_id.to_owned(), item.to_owned());
        let ids = look_up(&self.items, key, query, path).await?;
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(BackendError::new(
                ErrorKind::NotFound,
                format!(
                    "no item titled {:?} in vault {:?}: {path}",
                    excerpt(item),
                    excerpt(vault)
                ),
            )),
            many => Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{} items are titled {:?} in vault {:?}; name the item by its id: {path}",
                    many.len(),
                    excerpt(item),
                    excerpt(vault)
                ),
            )),
        }
    }
}

/// The answer to `query` for `key`, asked at most once per run however many reads wait for it;
/// a refusal is kept too (reported against each read's own path), a transient failure is not.
async fn look_up<K, F>(
    cells: &Lookups<K>,
    key: K,
    query: F,
    path: &str,
) -> Result<Vec<String>, BackendError>
where
    K: Eq + Hash,
    F: Future<Output = Result<Result<Vec<String>, Refused>, BackendError>>,
{
    let cell = cells
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    let found = cell
        .get_or_try_init(|| async {
            match query.await? {
                Ok(ids) => Ok(Ok(ids)),
                Err(refused) if is_transient(&refused) => Err(refusal(refused, path)),
                Err(refused) => Ok(Err(Refusal::of(&refused))),
            }
        })
        .await?;
    found.clone().map_err(|refused| refused.error(path))
}

/// `vaults/VAULT/items/ITEM…` as (vault, item): the item is everything after `items/`, since
/// titles may hold slashes (AVP).
fn parse_path(path: &str) -> Result<(&str, &str), BackendError> {
    let mut parts = path.splitn(4, '/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("vaults"), Some(vault), Some("items"), Some(item))
            if !vault.is_empty() && !item.is_empty() =>
        {
            Ok((vault, item))
        }
        _ => Err(BackendError::new(
            ErrorKind::InvalidConfig,
            format!(
                "a 1Password path has the form vaults/VAULT/items/ITEM: {}",
                excerpt(path)
            ),
        )),
    }
}

/// The item's fields by label. A field without a value is absent; of several fields with one
/// label the later wins, as in AVP.
fn fields(item: Item, path: &str) -> SecretData {
    let mut data = SecretData::new();
    for field in item.fields {
        let Some(value) = field.value else { continue };
        if data.insert(field.label.clone(), Value::String(value)).is_some() {
            tracing::debug!(
                "{}: {path}: more than one field is labelled {:?}; the later one wins",
                OnePassword::TYPE,
                excerpt(&field.label)
            );
        }
    }
    data
}

#[async_trait]
impl Backend for OnePasswordBackend {
    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let path = excerpt(&secret.path);
        let (vault, item) = parse_path(&secret.path)?;
        if secret.version.is_some() {
            tracing::debug!(
                "{}: {path}: the version is ignored: Connect serves an item's current fields",
                OnePassword::TYPE
            );
        }
        let vault_id = self.vault_id(vault, &path).await?;
        let item_id = self.item_id(&vault_id, vault, item, &path).await?;
        let item = self.connect.item(&vault_id, &item_id, &path).await?;
        Ok(fields(item, &path))
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect::Field;

    #[test]
    fn paths_name_a_vault_and_an_item_whose_title_may_hold_slashes() {
        assert_eq!(
            parse_path("vaults/Prod/items/db").unwrap(),
            ("Prod", "db")
        );
        assert_eq!(
            parse_path("vaults/Prod/items/team/db/main").unwrap(),
            ("Prod", "team/db/main")
        );
        for bad in [
            "app",
            "vaults/Prod",
            "vaults/Prod/items",
            "vaults/Prod/items/",
            "vaults//items/db",
            "vault/Prod/items/db",
            "vaults/Prod/item/db",
        ] {
            let error = parse_path(bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidConfig);
            assert_eq!(
                error.message,
                format!("a 1Password path has the form vaults/VAULT/items/ITEM: {bad}")
            );
        }
    }

    #[test]
    fn labels_give_values_the_later_duplicate_wins_and_empty_fields_are_absent() {
        let field = |label: &str, value: Option<&str>| Field {
            label: label.to_owned(),
            value: value.map(str::to_owned),
        };
        let data = fields(
            Item {
                fields: vec![
                    field("user", Some("first")),
                    field("password", Some("pw")),
                    field("user", Some("second")),
                    field("notes", None),
                    field("user", None),
                ],
            },
            "vaults/v/items/i",
        );
        assert_eq!(data.keys().collect::<Vec<_>>(), ["password", "user"]);
        assert!(data["user"] == Value::from("second"));
    }
}
