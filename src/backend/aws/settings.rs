//! The settings of an `awssecretsmanager` profile, and the SDK client they configure.

use std::fmt;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_config::meta::region::ProvideRegion as _;
use aws_config::retry::RetryConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};

use crate::config::Settings;

/// AVP's default region.
const DEFAULT_REGION: &str = "us-east-2";

/// What a profile says about AWS; keys from the settings, else the SDK's default chain.
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    keys: Option<(String, String, Option<String>)>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`.
    endpoint: Option<String>,
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("keys", &self.keys.as_ref().map(|_| "[redacted]"))
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl AwsSettings {
    pub fn parse(settings: &Settings) -> AwsSettings {
        // A credential file's final line break is not part of the key.
        let get = |key| {
            settings.trimmed(key)
                .map(str::to_owned)
        };
        AwsSettings {
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            keys: get("AWS_ACCESS_KEY_ID")
                .zip(get("AWS_SECRET_ACCESS_KEY"))
                .map(|(id, secret)| (id, secret, get("AWS_SESSION_TOKEN"))),
            endpoint: settings
                .get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
                .or(settings.get("AWS_ENDPOINT_URL"))
                .map(str::to_owned),
        }
    }

    pub fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    pub fn has_endpoint(&self) -> bool {
        self.endpoint.is_some()
    }

    /// The configured region, then the profile file's, then AVP's `us-east-2`: resolved here so
    /// that the SDK never asks the instance metadata service.
    pub async fn region(&self) -> String {
        if let Some(region) = &self.region {
            return region.clone();
        }
        let profile = aws_config::profile::ProfileFileRegionProvider::new();
        match profile.region().await {
            Some(region) => region.to_string(),
            None => DEFAULT_REGION.to_owned(),
        }
    }

    /// A client for `region`. The SDK's own retries are off: the resolver retries.
    pub async fn client(&self, region: &str) -> Client {
        Client::new(&self.sdk_config(region).await)
    }

    /// The SDK's configuration for `region`: credentials, endpoint, no retries.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .retry_config(RetryConfig::disabled());
        if let Some((id, secret, session)) = &self.keys {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret,
                session.clone(),
                None,
                "settings",
            ));
        }
        if let Some(url) = &self.endpoint {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }
}
