//! `AVP_TYPE=awssecretsmanager`: AWS Secrets Manager through the AWS SDK.
//!
//! Unversioned secrets are fetched up to 20 at a time with `BatchGetSecretValue` (one batch per
//! region), falling back to concurrent `GetSecretValue` calls where the batch call is denied;
//! versioned secrets, which the batch call cannot pin, are read one call each, concurrently. The
//! SDK's own retries are off: the resolver retries throttling and server errors, so attempts are
//! counted in one place.

mod classify;
mod doctor;
mod settings;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::Blob;
use regex::Regex;
use tokio::sync::{Mutex, OnceCell};

use super::{Backend, BackendError, Batch, Context, ErrorKind, Probe, Service, Wanted};
use crate::config::{SettingKey, Settings};
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;
use classify::{classify, error_for};
use settings::AwsSettings;

/// `BatchGetSecretValue` takes at most 20 secret ids.
const BATCH_LIMIT: usize = 20;

static ARN_REGION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):").expect("valid regex")
});

/// Version ids are UUIDs; anything else names a staging label.
static VERSION_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
        .expect("valid regex")
});

/// The `awssecretsmanager` backend type.
pub struct Aws;

impl Service for Aws {
    const TYPE: &'static str = "awssecretsmanager";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::defaults_to(
            "AWS_REGION",
            "AWS_DEFAULT_REGION, else the AWS profile file's, else us-east-2",
        ),
        SettingKey::plain("AWS_DEFAULT_REGION"),
        SettingKey::credential("AWS_ACCESS_KEY_ID"),
        SettingKey::credential("AWS_SECRET_ACCESS_KEY"),
        SettingKey::credential("AWS_SESSION_TOKEN"),
        SettingKey::plain("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        SettingKey::plain("AWS_ENDPOINT_URL"),
    ];
    type Settings = AwsSettings;

    fn parse(settings: &Settings) -> anyhow::Result<AwsSettings> {
        Ok(AwsSettings::parse(settings))
    }

    fn build(settings: AwsSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(AwsBackend {
            settings,
            default_region: OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
        }))
    }
}

struct AwsBackend {
    settings: AwsSettings,
    default_region: OnceCell<String>,
    /// One client per region (an ARN may name another region than the configured one).
    clients: Mutex<HashMap<String, Client>>,
}

impl AwsBackend {
    async fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let client = self.settings.client(region).await;
        clients.insert(region.to_owned(), client.clone());
        client
    }

    /// The region a secret lives in: the ARN's, else the configured one. A region goes into
    /// host names and signed headers (the SDK panics on a line break there), so it must be a
    /// region name.
    async fn region_of(&self, path: &str) -> Result<String, BackendError> {
        let region = match ARN_REGION.captures(path) {
            Some(caps) => caps[1].to_owned(),
            None => self
                .default_region
                .get_or_init(|| self.settings.region())
                .await
                .clone(),
        };
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "AWS_REGION {:?} is not a region name (such as eu-west-1)",
                    crate::error::excerpt(&region)
                ),
            ));
        }
        Ok(region)
    }

    /// One `BatchGetSecretValue` round (pages followed) for unversioned secrets of one region.
    /// `Err` when the batch call itself failed (denied, throttled); the requests made so far
    /// are counted in `requests`.
    async fn batch_get(
        &self,
        client: &Client,
        ids: &[&str],
        requests: &mut usize,
    ) -> Result<HashMap<String, Result<SecretData, BackendError>>, BackendError> {
        let mut found = HashMap::new();
        let mut next_token = None;
        loop {
            *requests += 1;
            let output = client
                .batch_get_secret_value()
                .set_secret_id_list(Some(ids.iter().map(|id| (*id).to_owned()).collect()))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(&e, "BatchGetSecretValue"))?;
            for entry in output.secret_values() {
                let data = secret_data(entry.secret_string(), entry.secret_binary());
                for name in [entry.name(), entry.arn()].into_iter().flatten() {
                    found.insert(name.to_owned(), Ok(data.clone()));
                }
            }
            for error in output.errors() {
                let id = error.secret_id().unwrap_or_default();
                let code = error.error_code().unwrap_or("Error");
                let message = error.message().unwrap_or_default();
                found.insert(id.to_owned(), Err(error_for(code, message, id)));
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// Reads `secrets` one call each, concurrently.
    async fn get_each(&self, secrets: &[Wanted<'_>]) -> Vec<Result<SecretData, BackendError>> {
        futures::future::join_all(secrets.iter().map(|(s, keys)| self.get(s, keys))).await
    }
}

#[async_trait]
impl Backend for AwsBackend {
    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let client = self.client(&self.region_of(&secret.path).await?).await;
        let mut request = client.get_secret_value().secret_id(&secret.path);
        request = match secret.version.as_deref() {
            Some(id) if VERSION_ID.is_match(id) => request.version_id(id),
            Some(stage) => request.version_stage(stage),
            None => request,
        };
        let output = request
            .send()
            .await
            .map_err(|e| classify(&e, &secret.to_string()))?;
        Ok(secret_data(output.secret_string(), output.secret_binary()))
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }

    /// Unversioned secrets of one region in chunks of 20; every other secret alone (a secret
    /// whose region is invalid too: `get` reports it).
    async fn batches(&self, secrets: &[SecretRef]) -> Vec<Vec<usize>> {
        let mut by_region: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut groups = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            match self.region_of(&secret.path).await {
                Ok(region) if secret.version.is_none() => {
                    by_region.entry(region).or_default().push(i)
                }
                _ => groups.push(vec![i]),
            }
        }
        for indexes in by_region.into_values() {
            groups.extend(indexes.chunks(BATCH_LIMIT).map(<[usize]>::to_vec));
        }
        groups
    }

    /// One batch of unversioned secrets of one region.
    async fn get_batch(&self, secrets: &[Wanted<'_>]) -> Batch {
        let mut requests = 0;
        let region = match self.region_of(&secrets[0].0.path).await {
            Ok(region) => region,
            Err(e) => {
                return Batch {
                    results: secrets.iter().map(|_| Err(e.clone())).collect(),
                    requests,
                };
            }
        };
        let client = self.client(&region).await;
        let ids: Vec<&str> = secrets.iter().map(|(s, _)| s.path.as_str()).collect();
        let mut found = match self.batch_get(&client, &ids, &mut requests).await {
            Ok(found) => found,
            Err(e) if e.kind == ErrorKind::PermissionDenied => {
                tracing::debug!("aws: BatchGetSecretValue is denied; fetching one by one");
                let results = self.get_each(secrets).await;
                return Batch {
                    requests: requests + results.len(),
                    results,
                };
            }
            Err(e) => {
                return Batch {
                    results: secrets.iter().map(|_| Err(e.clone())).collect(),
                    requests,
                };
            }
        };
        // An id the answer does not mention is read on its own.
        let absent: Vec<Wanted<'_>> = secrets
            .iter()
            .copied()
            .filter(|(s, _)| !found.contains_key(&s.path))
            .collect();
        requests += absent.len();
        for ((secret, _), result) in absent.iter().zip(self.get_each(&absent).await) {
            found.insert(secret.path.clone(), result);
        }
        let results = secrets
            .iter()
            .map(|(s, _)| found.get(&s.path).cloned().expect("every id has a result"))
            .collect();
        Batch { results, requests }
    }
}

/// A JSON-object SecretString gives its keys (typed); any other SecretString is the key
/// `SecretString`, and a SecretBinary the key `SecretBinary`.
fn secret_data(string: Option<&str>, binary: Option<&Blob>) -> SecretData {
    match (string, binary) {
        (Some(text), _) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => {
                map.into_iter().map(|(k, v)| (k, Value::from(v))).collect()
            }
            _ => SecretData::from([("SecretString".to_owned(), Value::String(text.to_owned()))]),
        },
        (None, Some(blob)) => SecretData::from([(
            "SecretBinary".to_owned(),
            Value::Bytes(blob.as_ref().to_vec()),
        )]),
        (None, None) => SecretData::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_give_typed_keys_and_other_strings_one_key() {
        let data = secret_data(Some(r#"{"user":"u","port":5432}"#), None);
        assert_eq!(data["port"].to_text(), "5432");
        let data = secret_data(Some("plain"), None);
        assert!(data["SecretString"] == Value::from("plain"));
        let data = secret_data(Some("[1,2]"), None);
        assert!(data["SecretString"] == Value::from("[1,2]"));
        let data = secret_data(None, Some(&Blob::new(vec![0xff, 0])));
        assert!(data["SecretBinary"] == Value::Bytes(vec![0xff, 0]));
    }

    #[test]
    fn arns_carry_their_region() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf";
        assert_eq!(&ARN_REGION.captures(arn).unwrap()[1], "eu-west-1");
        assert!(ARN_REGION.captures("db/creds").is_none());
    }

    #[test]
    fn version_ids_are_uuids_and_everything_else_is_a_stage() {
        assert!(VERSION_ID.is_match("a1b2c3d4-5678-90ab-cdef-1234567890ab"));
        assert!(!VERSION_ID.is_match("AWSPREVIOUS"));
        assert!(!VERSION_ID.is_match("release-2026"));
    }
}
