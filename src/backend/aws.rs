//! `AVP_TYPE=awssecretsmanager`: AWS Secrets Manager through the AWS SDK.
//!
//! Unversioned secrets are fetched up to 20 at a time with `BatchGetSecretValue`, falling back to
//! `GetSecretValue` where the batch call is denied. The SDK's own retries are off: the resolver
//! retries throttling and server errors, so attempts are counted in one place.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::ProvideRegion as _;
use aws_config::retry::RetryConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use regex::Regex;
use tokio::sync::{Mutex, OnceCell};

use super::{Backend, BackendError, Batch, ErrorKind};
use crate::config::{Config, Settings};
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;

/// AVP's default region.
const DEFAULT_REGION: &str = "us-east-2";
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

pub fn build(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(Arc::new(AwsBackend {
        settings: config.settings.clone(),
        default_region: OnceCell::new(),
        clients: Mutex::new(HashMap::new()),
    }))
}

struct AwsBackend {
    settings: Settings,
    default_region: OnceCell<String>,
    /// One client per region (an ARN may name another region than the configured one).
    clients: Mutex<HashMap<String, Client>>,
}

impl AwsBackend {
    /// `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the profile, then AVP's `us-east-2`.
    async fn region(&self) -> &str {
        self.default_region
            .get_or_init(|| async {
                if let Some(region) = self
                    .settings
                    .get("AWS_REGION")
                    .or(self.settings.get("AWS_DEFAULT_REGION"))
                {
                    return region.trim().to_owned();
                }
                let profile = aws_config::profile::ProfileFileRegionProvider::new();
                match profile.region().await {
                    Some(region) => region.to_string(),
                    None => DEFAULT_REGION.to_owned(),
                }
            })
            .await
    }

    async fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .retry_config(RetryConfig::disabled());
        // A credential file's final line break is not part of the key.
        let get = |key| {
            self.settings
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        if let (Some(id), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            let session = get("AWS_SESSION_TOKEN").map(str::to_owned);
            loader = loader
                .credentials_provider(Credentials::new(id, secret, session, None, "settings"));
        }
        let endpoint = self
            .settings
            .get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or(self.settings.get("AWS_ENDPOINT_URL"));
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let client = Client::new(&loader.load().await);
        clients.insert(region.to_owned(), client.clone());
        client
    }

    /// The region a secret lives in: the ARN's, else the configured one. A region goes into
    /// host names and signed headers (the SDK panics on a line break there), so it must be a
    /// region name.
    async fn region_of(&self, path: &str) -> Result<String, BackendError> {
        let region = match ARN_REGION.captures(path) {
            Some(caps) => caps[1].to_owned(),
            None => self.region().await.to_owned(),
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
}

#[async_trait]
impl Backend for AwsBackend {
    async fn get(&self, secret: &SecretRef) -> Result<SecretData, BackendError> {
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
            .map_err(|e| classify(&e, &describe(secret)))?;
        Ok(secret_data(output.secret_string(), output.secret_binary()))
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    async fn get_batch(&self, secrets: &[SecretRef]) -> Batch {
        let mut requests = 0;
        let mut by_region: HashMap<String, Vec<&str>> = HashMap::new();
        // A secret whose region is invalid is left for `get`, which reports it.
        for secret in secrets.iter().filter(|s| s.version.is_none()) {
            if let Ok(region) = self.region_of(&secret.path).await {
                by_region.entry(region).or_default().push(&secret.path);
            }
        }
        let mut found = HashMap::new();
        let mut denied = false;
        for (region, ids) in &by_region {
            let client = self.client(region).await;
            match self.batch_get(&client, ids, &mut requests).await {
                Ok(results) => found.extend(results),
                Err(e) if e.kind == ErrorKind::PermissionDenied => denied = true,
                Err(e) => {
                    for id in ids {
                        found.insert((*id).to_owned(), Err(e.clone()));
                    }
                }
            }
        }
        if denied {
            tracing::debug!("aws: BatchGetSecretValue is denied; fetching one by one");
        }
        let mut results = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let result = match found.remove(&secret.path) {
                Some(result) if secret.version.is_none() => result,
                _ => {
                    requests += 1;
                    self.get(secret).await
                }
            };
            results.push(result);
        }
        Batch { results, requests }
    }
}

fn describe(secret: &SecretRef) -> String {
    match &secret.version {
        Some(version) => format!("{} (version {version})", secret.path),
        None => secret.path.clone(),
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

/// Maps an SDK failure to a neutral kind; the message names the secret and AWS's error code.
fn classify<E>(error: &SdkError<E>, what: &str) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or_default();
            let status = service.raw().status().as_u16();
            let mut e = error_for(code, message, what);
            if (status >= 500 || status == 429) && e.kind == ErrorKind::Unexpected {
                e.kind = ErrorKind::Transient;
            }
            e.retry_after = service
                .raw()
                .headers()
                .get("retry-after")
                .and_then(super::retry_after);
            e
        }
        // The answer broke off or could not be read: worth another try.
        SdkError::ResponseError(_) => BackendError::new(
            ErrorKind::Transient,
            format!(
                "the answer of Secrets Manager for {what} could not be read: {}",
                aws_smithy_chain(error)
            ),
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => BackendError::new(
            ErrorKind::Transient,
            format!(
                "cannot reach Secrets Manager for {what}: {}",
                aws_smithy_chain(error)
            ),
        ),
        SdkError::ConstructionFailure(_) => BackendError::new(
            ErrorKind::InvalidConfig,
            format!(
                "cannot build the request for {what}: {}",
                aws_smithy_chain(error)
            ),
        ),
        _ => BackendError::new(
            ErrorKind::Unexpected,
            format!("unexpected response for {what}"),
        ),
    }
}

fn error_for(code: &str, message: &str, what: &str) -> BackendError {
    let kind = match code {
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException" => ErrorKind::PermissionDenied,
        "ThrottlingException"
        | "TooManyRequestsException"
        | "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable" => ErrorKind::Transient,
        "InvalidRequestException"
            if message.contains("deleted") || message.contains("deletion") =>
        {
            ErrorKind::NotFound
        }
        "InvalidParameterException" | "InvalidRequestException" | "ValidationException" => {
            ErrorKind::InvalidConfig
        }
        _ => ErrorKind::Unexpected,
    };
    // Some endpoints repeat the code in the message and wrap it with runs of spaces.
    let message = message
        .rsplit_once(" operation: ")
        .map_or(message, |(_, rest)| rest)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_end_matches('.');
    BackendError::new(kind, format!("{code}: {what}: {message}"))
}

/// The error and its sources, one line (connection refused, timeouts): no request content.
fn aws_smithy_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

    #[test]
    fn error_codes_map_to_kinds() {
        assert_eq!(
            error_for("ResourceNotFoundException", "x.", "db").kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            error_for("AccessDeniedException", "x", "db").kind,
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            error_for("ThrottlingException", "x", "db").kind,
            ErrorKind::Transient
        );
        let deleted = error_for(
            "InvalidRequestException",
            "secret is marked for deletion.",
            "db",
        );
        assert_eq!(deleted.kind, ErrorKind::NotFound);
        assert_eq!(
            deleted.message,
            "InvalidRequestException: db: secret is marked for deletion"
        );
        let wrapped = error_for(
            "InvalidRequestException",
            "An error occurred (InvalidRequestException) when calling the GetSecretValue operation: You tried to   perform it on a deleted secret",
            "db",
        );
        assert_eq!(
            wrapped.message,
            "InvalidRequestException: db: You tried to perform it on a deleted secret"
        );
    }
}
