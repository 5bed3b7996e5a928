//! The settings of a `gcpsecretmanager` profile: the REST endpoint, and the Application Default
//! Credentials its settings (or, as for every Google client, the process environment) name.

use std::fmt;
use std::path::PathBuf;

use anyhow::bail;

use super::auth::Credentials;
use crate::backend::BackendError;
use crate::config::Settings;

pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// A profile's Secret Manager settings. No credential reaches `Debug`.
pub struct GcpSettings {
    /// `AVP_GCP_ENDPOINT`, without a final `/`.
    pub endpoint: String,
    /// What ADC found; a file that cannot be used fails the login (and `doctor`'s first step)
    /// rather than the set-up, so that `doctor` can say where to look.
    pub credentials: Result<Credentials, BackendError>,
}

impl fmt::Debug for GcpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpSettings")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl GcpSettings {
    pub fn parse(settings: &Settings) -> anyhow::Result<GcpSettings> {
        let endpoint = settings
            .get("AVP_GCP_ENDPOINT")
            .map(str::trim)
            .unwrap_or(DEFAULT_ENDPOINT);
        let url = match url::Url::parse(endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
            _ => bail!("AVP_GCP_ENDPOINT {endpoint:?} is not an http(s) URL"),
        };
        if !url.username().is_empty() || url.password().is_some() {
            bail!("AVP_GCP_ENDPOINT must not hold user-info: Secret Manager takes a bearer token");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("AVP_GCP_ENDPOINT {endpoint:?} must not have a query or fragment");
        }
        // Google's own variables, read as every Google client reads them.
        let get = |key: &str| {
            settings
                .get(key)
                .map(str::to_owned)
                .or_else(|| std::env::var(key).ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        Ok(GcpSettings {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            credentials: Credentials::find(&get, home.as_deref()),
        })
    }

    /// The location of a regional endpoint (`secretmanager.LOCATION.rep.googleapis.com`).
    pub fn location(&self) -> Option<&str> {
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, rest)| rest);
        let location = host.strip_prefix("secretmanager.")?.split_once(".rep.")?.0;
        (!location.is_empty() && !location.contains(['.', '/', ':'])).then_some(location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> anyhow::Result<GcpSettings> {
        let env = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("GCE_METADATA_HOST".to_owned(), "127.0.0.1:1".to_owned())]);
        GcpSettings::parse(&Settings::merge(env, &[]))
    }

    #[test]
    fn the_endpoint_defaults_to_global_and_must_be_a_plain_url() {
        assert_eq!(parse(&[]).unwrap().endpoint, DEFAULT_ENDPOINT);
        let regional = parse(&[(
            "AVP_GCP_ENDPOINT",
            "https://secretmanager.europe-west1.rep.googleapis.com/",
        )])
        .unwrap();
        assert_eq!(
            regional.endpoint,
            "https://secretmanager.europe-west1.rep.googleapis.com"
        );
        assert_eq!(regional.location(), Some("europe-west1"));
        assert_eq!(parse(&[]).unwrap().location(), None);
        let err = parse(&[("AVP_GCP_ENDPOINT", "secretmanager")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AVP_GCP_ENDPOINT \"secretmanager\" is not an http(s) URL"
        );
        let err = parse(&[("AVP_GCP_ENDPOINT", "https://u:pw-s3cr3t@host")]).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
