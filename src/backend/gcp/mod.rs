//! `AVP_TYPE=gcpsecretmanager`: Google Cloud Secret Manager through its REST API, with
//! Application Default Credentials.
//!
//! One access token per run (fetched by `login`, shared by every read), then one `:access`
//! call per unique secret version. The key equal to the secret id is the whole payload (AVP);
//! a payload holding a JSON object gives its keys too, typed.

mod auth;
mod classify;
mod doctor;
mod settings;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::rest::{self, Refused};
use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;
use auth::AccessToken;
use settings::GcpSettings;

/// How Secret Manager is named in transport errors.
const SERVICE: &str = "Secret Manager";
/// What a read without a pinned version accesses.
const LATEST: &str = "latest";

/// Path segments keep only unreserved characters; `/`, `?`, `#`, `:` and `%` are escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The `gcpsecretmanager` backend type.
pub struct Gcp;

impl Service for Gcp {
    const TYPE: &'static str = "gcpsecretmanager";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::defaults_to("AVP_GCP_ENDPOINT", settings::DEFAULT_ENDPOINT),
        SettingKey::defaults_to(
            "GOOGLE_APPLICATION_CREDENTIALS",
            "~/.config/gcloud/application_default_credentials.json, else the metadata server",
        ),
        SettingKey::defaults_to("GCE_METADATA_HOST", auth::DEFAULT_METADATA_HOST),
    ];
    type Settings = GcpSettings;

    fn parse(settings: &Settings) -> anyhow::Result<GcpSettings> {
        GcpSettings::parse(settings)
    }

    fn build(settings: GcpSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(GcpBackend {
            http: rest::client(rest::TIMEOUT)?,
            settings,
            token: OnceCell::new(),
        }))
    }
}

struct GcpBackend {
    settings: GcpSettings,
    http: reqwest::Client,
    /// The run's one access token; a failed fetch leaves it empty for the resolver's retry.
    token: OnceCell<AccessToken>,
}

impl GcpBackend {
    async fn token(&self) -> Result<&AccessToken, BackendError> {
        let credentials = self.settings.credentials.as_ref().map_err(Clone::clone)?;
        self.token
            .get_or_try_init(|| credentials.fetch(&self.http))
            .await
    }

    /// `GET {endpoint}/v1/{path}` with the token: the body of a 2xx answer, or the refusal.
    async fn call(&self, path: &str, what: &str) -> Result<Result<Vec<u8>, Refused>, BackendError> {
        let token = self.token().await?;
        let url = format!("{}/v1/{path}", self.settings.endpoint);
        let request = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, token.header());
        rest::send(request, SERVICE, what).await
    }
}

#[async_trait]
impl Backend for GcpBackend {
    async fn login(&self) -> Result<(), BackendError> {
        self.token().await.map(|_| ())
    }

    /// `GET {endpoint}/v1/{name}/versions/{version}:access`:
    /// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions/access>,
    /// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.locations.secrets.versions/access>
    /// for a regional name.
    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let name = SecretName::parse(&secret.path)?;
        let version = secret.version.as_deref().unwrap_or(LATEST);
        if !is_segment(version) {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!("{secret}: not a version (a number, latest or an alias)"),
            ));
        }
        let what = secret.to_string();
        let path = format!(
            "{}/versions/{}:access",
            name.encoded(),
            utf8_percent_encode(version, SEGMENT)
        );
        let body = self
            .call(&path, &what)
            .await?
            .map_err(|refused| classify::read_refusal(refused, &what))?;
        let payload = payload(&body, &what)?;
        Ok(secret_data(&name.secret, payload))
    }

    async fn diagnose(&self) -> Vec<Probe> {
        self.doctor().await
    }
}

/// A secret's resource name, global or regional.
#[derive(Debug, PartialEq, Eq)]
struct SecretName {
    project: String,
    location: Option<String>,
    secret: String,
}

impl SecretName {
    /// `projects/P/secrets/S` or `projects/P/locations/L/secrets/S`; anything else gets AVP's
    /// error. AVP's own test (`projects/(.+)/secrets/(.+)`, unanchored) lets through paths
    /// such as `x/projects/p/secrets/s/versions/2`, which Secret Manager then refuses: they are
    /// refused here, before any request.
    fn parse(path: &str) -> Result<SecretName, BackendError> {
        let segments: Vec<&str> = path.split('/').collect();
        let name = match segments.as_slice() {
            ["projects", project, "secrets", secret] => Some((project, None, secret)),
            ["projects", project, "locations", location, "secrets", secret] => {
                Some((project, Some(location), secret))
            }
            _ => None,
        };
        match name {
            Some((project, location, secret))
                if [project, secret].iter().all(|s| is_segment(s))
                    && location.is_none_or(|l| is_segment(l)) =>
            {
                Ok(SecretName {
                    project: (*project).to_owned(),
                    location: location.map(|l| (*l).to_owned()),
                    secret: (*secret).to_owned(),
                })
            }
            // AVP's wording, so users' searches still match.
            _ => Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "Path is not in the correct format (projects/$PROJECT_ID/secrets/$SECRET_ID) for GCP Secrets Manager: {path}"
                ),
            )),
        }
    }

    /// The name with each segment percent-encoded, for a URL path.
    fn encoded(&self) -> String {
        let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
        match &self.location {
            None => format!("projects/{}/secrets/{}", enc(&self.project), enc(&self.secret)),
            Some(location) => format!(
                "projects/{}/locations/{}/secrets/{}",
                enc(&self.project),
                enc(location),
                enc(&self.secret)
            ),
        }
    }
}

/// A segment URL resolution would not drop or merge: not empty, not `.` or `..`.
fn is_segment(s: &str) -> bool {
    !matches!(s, "" | "." | "..")
}

/// The answer of `:access`.
#[derive(Deserialize)]
struct Access {
    payload: Payload,
}

/// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/SecretPayload>: `data` is
/// base64; `dataCrc32c` an int64, which JSON carries as a decimal string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    data: String,
    #[serde(default)]
    data_crc32c: Option<serde_json::Value>,
}

/// The decoded payload of an `:access` answer, checked against its CRC32C when it has one.
fn payload(body: &[u8], what: &str) -> Result<Vec<u8>, BackendError> {
    let access: Access = rest::json(body, SERVICE, what)?;
    let unexpected = |why: &str| {
        BackendError::new(
            ErrorKind::Unexpected,
            format!("the payload of {what} {why}"),
        )
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(&access.payload.data)
        .map_err(|_| unexpected("is not base64"))?;
    let expected = match &access.payload.data_crc32c {
        None | Some(serde_json::Value::Null) => return Ok(data),
        Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    match expected {
        Some(crc) if crc == u64::from(crc32c::crc32c(&data)) => Ok(data),
        Some(_) => Err(unexpected(
            "does not match its CRC32C checksum (corrupted on the way)",
        )),
        None => Err(unexpected("has a dataCrc32c that is not a number")),
    }
}

/// The key equal to the secret id is the payload text (bytes that are not UTF-8 stay bytes);
/// a JSON-object payload adds its keys, typed, unless one is the secret id.
fn secret_data(secret_id: &str, payload: Vec<u8>) -> SecretData {
    let mut data = match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(serde_json::Value::Object(map)) => {
            map.into_iter().map(|(k, v)| (k, Value::from(v))).collect()
        }
        _ => SecretData::new(),
    };
    let whole = match String::from_utf8(payload) {
        Ok(text) => Value::String(text),
        Err(e) => Value::Bytes(e.into_bytes()),
    };
    data.insert(secret_id.to_owned(), whole);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Result<SecretName, String> {
        SecretName::parse(path).map_err(|e| e.message)
    }

    #[test]
    fn global_and_regional_names_parse_and_others_get_avps_error() {
        assert_eq!(
            parse("projects/p/secrets/db").unwrap(),
            SecretName {
                project: "p".into(),
                location: None,
                secret: "db".into()
            }
        );
        assert_eq!(
            parse("projects/p/locations/europe-west1/secrets/db").unwrap(),
            SecretName {
                project: "p".into(),
                location: Some("europe-west1".into()),
                secret: "db".into()
            }
        );
        for bad in [
            "db",
            "projects/p/secrets/",
            "projects/p/secrets/db/versions/2",
            "x/projects/p/secrets/db",
            "projects/../secrets/db",
            "projects/p/locations/./secrets/db",
        ] {
            assert_eq!(
                parse(bad).unwrap_err(),
                format!("Path is not in the correct format (projects/$PROJECT_ID/secrets/$SECRET_ID) for GCP Secrets Manager: {bad}")
            );
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        let name = SecretName {
            project: "p".into(),
            location: Some("a?b".into()),
            secret: "x:y#z%".into(),
        };
        assert_eq!(
            name.encoded(),
            "projects/p/locations/a%3Fb/secrets/x%3Ay%23z%25"
        );
    }

    #[test]
    fn the_secret_id_is_the_payload_and_json_objects_add_typed_keys() {
        let data = secret_data("db", br#"{"user":"u","port":5432,"db":"x"}"#.to_vec());
        assert!(data["db"] == Value::from(r#"{"user":"u","port":5432,"db":"x"}"#));
        assert_eq!(data["port"].to_text(), "5432");
        assert!(data["user"] == Value::from("u"));
        let data = secret_data("db", b"[1,2]".to_vec());
        assert_eq!(data.len(), 1);
        let data = secret_data("bin", vec![0xff, 0]);
        assert!(data["bin"] == Value::Bytes(vec![0xff, 0]));
    }

    #[test]
    fn payloads_are_checked_against_their_crc32c() {
        let ok = format!(
            r#"{{"name":"n","payload":{{"data":"aGVsbG8=","dataCrc32c":"{}"}}}}"#,
            crc32c::crc32c(b"hello")
        );
        assert_eq!(payload(ok.as_bytes(), "projects/p/secrets/s").unwrap(), b"hello");
        let unchecked = r#"{"name":"n","payload":{"data":"aGVsbG8="}}"#;
        assert_eq!(payload(unchecked.as_bytes(), "s").unwrap(), b"hello");
        let bad = r#"{"name":"n","payload":{"data":"aGVsbG8=","dataCrc32c":"1"}}"#;
        let e = payload(bad.as_bytes(), "projects/p/secrets/s").unwrap_err();
        assert_eq!(
            e.message,
            "the payload of projects/p/secrets/s does not match its CRC32C checksum (corrupted on the way)"
        );
        assert_eq!(e.kind, ErrorKind::Unexpected);
    }
}
