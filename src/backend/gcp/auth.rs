//! Application Default Credentials, found as Google's client libraries find them
//! (<https://google.aip.dev/auth/4110>): the file `GOOGLE_APPLICATION_CREDENTIALS` names, else
//! gcloud's `~/.config/gcloud/application_default_credentials.json`, else the metadata server
//! (GKE Workload Identity, GCE). Each gives one access token for the `cloud-platform` scope.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde::Deserialize;
use serde_json::json;

use super::classify;
use crate::backend::rest;
use crate::backend::{BackendError, ErrorKind};
use crate::setting_file;

/// The one scope secretsubst asks for: Secret Manager accepts no narrower one.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// Where gcloud's `auth application-default login` writes, under `$HOME`.
pub const GCLOUD_FILE: &str = ".config/gcloud/application_default_credentials.json";
/// Google's OAuth 2.0 token endpoint, for files that name none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A service account's assertion may live at most an hour.
const ASSERTION_LIFETIME: u64 = 3600;

/// An access token, ready for the `Authorization` header; never printed.
pub struct AccessToken(HeaderValue);

impl AccessToken {
    fn new(token: &str, what: &str) -> Result<AccessToken, BackendError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .ok()
            .filter(|_| !token.trim().is_empty())
            .ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unexpected,
                    format!("{what}: the answer holds no usable access token"),
                )
            })?;
        value.set_sensitive(true);
        Ok(AccessToken(value))
    }

    pub fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// Where the access token comes from. It holds keys and refresh tokens: `Debug` names its
/// kind only.
pub enum Credentials {
    ServiceAccount(Box<ServiceAccount>),
    External(ExternalAccount),
    User(AuthorizedUser),
    Metadata { host: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({})", self.kind())
    }
}

/// A `service_account` key file: a JWT signed with its key, exchanged at `token_uri`.
pub struct ServiceAccount {
    pub email: String,
    key: RsaPrivateKey,
    key_id: Option<String>,
    token_uri: String,
    pub project: Option<String>,
    /// The file, as messages name it.
    pub origin: String,
}

/// An `external_account` file (workload identity federation, <https://google.aip.dev/auth/4117>):
/// a subject token exchanged at STS, then, optionally, for a service account's token.
pub struct ExternalAccount {
    pub audience: String,
    subject_token_type: String,
    token_url: String,
    pub subject: Subject,
    impersonation_url: Option<String>,
    pub project: Option<String>,
    pub origin: String,
}

/// Where an external account's subject token is read, and the JSON field holding it (`None`:
/// the whole text).
pub enum Subject {
    File {
        path: String,
        field: Option<String>,
    },
    Url {
        url: String,
        headers: Vec<(String, String)>,
        field: Option<String>,
    },
}

/// An `authorized_user` file (`gcloud auth application-default login`): a refresh token.
pub struct AuthorizedUser {
    pub client_id: String,
    client_secret: String,
    refresh_token: String,
    token_uri: String,
    pub project: Option<String>,
    pub origin: String,
}

impl Credentials {
    /// The credentials ADC finds: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file under
    /// `home`, the metadata server. `get` reads a setting. A file that cannot be used is an
    /// error, never a silent fall-through to the next source.
    pub fn find(
        get: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Credentials, BackendError> {
        if let Some(path) = get("GOOGLE_APPLICATION_CREDENTIALS") {
            let text = setting_file::read_to_string(&path, setting_file::MAX_SMALL)
                .map_err(|e| {
                    invalid(format!(
                        "GOOGLE_APPLICATION_CREDENTIALS {path}: cannot read: {e}"
                    ))
                })?;
            return Credentials::parse(&text, &format!("GOOGLE_APPLICATION_CREDENTIALS {path}"));
        }
        if let Some(home) = home {
            let file = home.join(GCLOUD_FILE);
            match setting_file::read_to_string(&file, setting_file::MAX_SMALL) {
                Ok(text) => return Credentials::parse(&text, &file.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(invalid(format!("{}: cannot read: {e}", file.display())));
                }
            }
        }
        let host = get("GCE_METADATA_HOST").unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned());
        let valid = !host.contains(['/', '?', '#', '@', '\\'])
            && !host.chars().any(char::is_whitespace)
            && url::Url::parse(&format!("http://{host}/"))
                .is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()));
        if !valid {
            return Err(invalid(format!(
                "GCE_METADATA_HOST {:?} is not a host name (with an optional :port)",
                crate::error::excerpt(&host)
            )));
        }
        Ok(Credentials::Metadata { host })
    }

    /// A credentials file's JSON. Errors name fields, never their values.
    fn parse(text: &str, origin: &str) -> Result<Credentials, BackendError> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            invalid(format!(
                "{origin}: not JSON (line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Some(object) = json.as_object() else {
            return Err(invalid(format!("{origin}: not a JSON object")));
        };
        let field = |name: &str| {
            object
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let kind = field("type").unwrap_or_default();
        let required = |name: &str| {
            field(name).ok_or_else(|| {
                invalid(format!(
                    "{origin}: credentials of type {kind} need a string \"{name}\""
                ))
            })
        };
        let origin = origin.to_owned();
        match kind.as_str() {
            "service_account" => {
                let pem = required("private_key")?;
                let key = RsaPrivateKey::from_pkcs8_pem(&pem)
                    .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
                    .map_err(|_| {
                        invalid(format!(
                            "{origin}: private_key is not an RSA private key in PEM"
                        ))
                    })?;
                Ok(Credentials::ServiceAccount(Box::new(ServiceAccount {
                    email: required("client_email")?,
                    key,
                    key_id: field("private_key_id"),
                    token_uri: field("token_uri").unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned()),
                    project: field("project_id"),
                    origin,
                })))
            }
            "external_account" => {
                let source = object
                    .get("credential_source")
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| {
                        invalid(format!(
                            "{origin}: credentials of type external_account need a \"credential_source\" object"
                        ))
                    })?;
                Ok(Credentials::External(ExternalAccount {
                    audience: required("audience")?,
                    subject_token_type: required("subject_token_type")?,
                    token_url: required("token_url")?,
                    subject: Subject::parse(source, &origin)?,
                    impersonation_url: field("service_account_impersonation_url"),
                    project: field("quota_project_id"),
                    origin,
                }))
            }
            "authorized_user" => Ok(Credentials::User(AuthorizedUser {
                client_id: required("client_id")?,
                client_secret: required("client_secret")?,
                refresh_token: required("refresh_token")?,
                token_uri: field("token_uri").unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned()),
                project: field("quota_project_id"),
                origin,
            })),
            "" => Err(invalid(format!("{origin}: no \"type\""))),
            other => Err(invalid(format!(
                "{origin}: credentials of type {:?} are not supported (service_account, external_account and authorized_user are)",
                crate::error::excerpt(other)
            ))),
        }
    }

    /// The project the credentials name, for `doctor`'s listing.
    pub fn project(&self) -> Option<&str> {
        match self {
            Credentials::ServiceAccount(sa) => sa.project.as_deref(),
            Credentials::External(ext) => ext.project.as_deref(),
            Credentials::User(user) => user.project.as_deref(),
            Credentials::Metadata { .. } => None,
        }
    }

    /// What kind of credentials these are.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::ServiceAccount(_) => "service_account",
            Credentials::External(_) => "external_account",
            Credentials::User(_) => "authorized_user",
            Credentials::Metadata { .. } => "metadata server",
        }
    }

    /// Fetches an access token: one exchange (two with impersonation, three with a subject
    /// token from a URL).
    pub async fn fetch(&self, http: &reqwest::Client) -> Result<AccessToken, BackendError> {
        match self {
            Credentials::ServiceAccount(sa) => sa.fetch(http).await,
            Credentials::External(ext) => ext.fetch(http).await,
            Credentials::User(user) => user.fetch(http).await,
            Credentials::Metadata { host } => metadata_token(http, host).await,
        }
    }
}

/// An OAuth 2.0 token answer (token endpoint, STS, metadata server).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl ServiceAccount {
    /// <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>: an
    /// RS256 JWT for the scope, POSTed to `token_uri` as a jwt-bearer grant.
    async fn fetch(&self, http: &reqwest::Client) -> Result<AccessToken, BackendError> {
        let what = format!("the access token of service account {}", self.email);
        let assertion = self.assertion(now())?;
        let body = post_form(
            http,
            &self.token_uri,
            &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            "Google's token endpoint",
            &what,
        )
        .await?;
        let answer: TokenAnswer = rest::json(&body, "Google's token endpoint", &what)?;
        tracing::debug!("gcp: got {what} from {}", self.origin);
        AccessToken::new(&answer.access_token, &what)
    }

    /// `header.claims.signature`, base64url without padding.
    fn assertion(&self, iat: u64) -> Result<String, BackendError> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(self.key.clone());
        let signature = signer.try_sign(input.as_bytes()).map_err(|_| {
            invalid(format!(
                "{}: cannot sign with its private_key",
                self.origin
            ))
        })?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_vec())))
    }
}

impl Subject {
    fn parse(
        source: &serde_json::Map<String, serde_json::Value>,
        origin: &str,
    ) -> Result<Subject, BackendError> {
        let text = |name: &str| source.get(name).and_then(serde_json::Value::as_str);
        let format = source.get("format").and_then(serde_json::Value::as_object);
        let field = match format
            .and_then(|f| f.get("type"))
            .and_then(serde_json::Value::as_str)
        {
            None | Some("text") => None,
            Some("json") => Some(
                format
                    .and_then(|f| f.get("subject_token_field_name"))
                    .and_then(serde_json::Value::as_str)
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| {
                        invalid(format!(
                            "{origin}: credential_source.format of type json needs a subject_token_field_name"
                        ))
                    })?
                    .to_owned(),
            ),
            Some(other) => {
                return Err(invalid(format!(
                    "{origin}: credential_source.format.type {:?} is neither text nor json",
                    crate::error::excerpt(other)
                )));
            }
        };
        if let Some(path) = text("file") {
            return Ok(Subject::File {
                path: path.to_owned(),
                field,
            });
        }
        if let Some(url) = text("url") {
            let headers = source
                .get("headers")
                .and_then(serde_json::Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            return Ok(Subject::Url {
                url: url.to_owned(),
                headers,
                field,
            });
        }
        Err(invalid(format!(
            "{origin}: credential_source must name a file or a url (AWS and executable sources are not supported)"
        )))
    }

    /// The subject token, read afresh (a projected token rotates).
    async fn read(&self, http: &reqwest::Client) -> Result<String, BackendError> {
        let (text, field, what) = match self {
            Subject::File { path, field } => {
                let what = format!("credential_source.file {path}");
                let text = setting_file::read_to_string(path, setting_file::MAX_SMALL)
                    .map_err(|e| invalid(format!("{what}: cannot read: {e}")))?;
                (text, field, what)
            }
            Subject::Url {
                url,
                headers,
                field,
            } => {
                let what = "the subject token of credential_source.url".to_owned();
                let mut request = http.get(url);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let body = rest::send(request, "the subject token's server", &what)
                    .await?
                    .map_err(|refused| classify::refusal(refused, &what))?;
                let text = String::from_utf8(body)
                    .map_err(|_| invalid(format!("{what}: not UTF-8 text")))?;
                (text, field, what)
            }
        };
        let token = match field {
            None => text.trim().to_owned(),
            Some(name) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|json| json.get(name)?.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    invalid(format!("{what}: not a JSON object with a string \"{name}\""))
                })?,
        };
        match token.is_empty() {
            true => Err(invalid(format!("{what}: the subject token is empty"))),
            false => Ok(token),
        }
    }

    /// Where the subject token comes from, for `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Subject::File { path, .. } => format!("file {path}"),
            Subject::Url { .. } => "credential_source.url".to_owned(),
        }
    }
}

impl ExternalAccount {
    /// STS token exchange (<https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>),
    /// then, with `service_account_impersonation_url`, generateAccessToken
    /// (<https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>).
    async fn fetch(&self, http: &reqwest::Client) -> Result<AccessToken, BackendError> {
        let subject = self.subject.read(http).await?;
        let what = format!("the token exchange for {}", self.audience);
        let body = post_form(
            http,
            &self.token_url,
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("audience", &self.audience),
                ("scope", SCOPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("subject_token_type", &self.subject_token_type),
                ("subject_token", &subject),
            ],
            "Google STS",
            &what,
        )
        .await?;
        let answer: TokenAnswer = rest::json(&body, "Google STS", &what)?;
        let federated = AccessToken::new(&answer.access_token, &what)?;
        tracing::debug!("gcp: got {what} from {}", self.origin);
        let Some(url) = &self.impersonation_url else {
            return Ok(federated);
        };
        let what = format!(
            "the access token of service account {} (impersonated)",
            impersonated(url)
        );
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Generated {
            access_token: String,
        }
        let request = http
            .post(url)
            .header(AUTHORIZATION, federated.header())
            .header(CONTENT_TYPE, "application/json")
            .body(json!({"scope": [SCOPE]}).to_string());
        let body = rest::send(request, "IAM credentials", &what)
            .await?
            .map_err(|refused| classify::refusal(refused, &what))?;
        let answer: Generated = rest::json(&body, "IAM credentials", &what)?;
        tracing::debug!("gcp: got {what}");
        AccessToken::new(&answer.access_token, &what)
    }

    /// The service account an impersonation URL names, for messages.
    pub fn impersonates(&self) -> Option<&str> {
        self.impersonation_url.as_deref().map(impersonated)
    }
}

/// `…/serviceAccounts/EMAIL:generateAccessToken` → `EMAIL`.
fn impersonated(url: &str) -> &str {
    url.rsplit_once("/serviceAccounts/")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches(":generateAccessToken")
}

impl AuthorizedUser {
    /// <https://developers.google.com/identity/protocols/oauth2/web-server#offline>: a
    /// refresh_token grant at the token endpoint.
    async fn fetch(&self, http: &reqwest::Client) -> Result<AccessToken, BackendError> {
        let what = format!(
            "the access token of the gcloud user credentials (client_id {})",
            self.client_id
        );
        let body = post_form(
            http,
            &self.token_uri,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("refresh_token", &self.refresh_token),
            ],
            "Google's token endpoint",
            &what,
        )
        .await?;
        let answer: TokenAnswer = rest::json(&body, "Google's token endpoint", &what)?;
        tracing::debug!("gcp: got {what} from {}", self.origin);
        AccessToken::new(&answer.access_token, &what)
    }
}

/// <https://cloud.google.com/compute/docs/access/authenticate-workloads#applications>: the
/// default service account's token, which GKE Workload Identity maps to the pod's.
async fn metadata_token(http: &reqwest::Client, host: &str) -> Result<AccessToken, BackendError> {
    let what = format!("the access token from the metadata server {host}");
    let body = metadata(
        http,
        host,
        "instance/service-accounts/default/token",
        &what,
    )
    .await?;
    let answer: TokenAnswer = rest::json(&body, "the metadata server", &what)?;
    tracing::debug!("gcp: got {what}");
    AccessToken::new(&answer.access_token, &what)
}

/// `GET http://{host}/computeMetadata/v1/{path}` with `Metadata-Flavor: Google`
/// (<https://cloud.google.com/compute/docs/metadata/querying-metadata>).
pub async fn metadata(
    http: &reqwest::Client,
    host: &str,
    path: &str,
    what: &str,
) -> Result<Vec<u8>, BackendError> {
    let request = http
        .get(format!("http://{host}/computeMetadata/v1/{path}"))
        .header("Metadata-Flavor", "Google");
    rest::send(request, "the metadata server", what)
        .await?
        .map_err(|refused| classify::refusal(refused, what))
}

/// POSTs an `application/x-www-form-urlencoded` form; the body of a 2xx answer.
async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    service: &str,
    what: &str,
) -> Result<Vec<u8>, BackendError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = http
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    rest::send(request, service, what)
        .await?
        .map_err(|refused| classify::refusal(refused, what))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid(message: String) -> BackendError {
    BackendError::new(ErrorKind::InvalidConfig, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../testdata/gcp/service-account.key");

    fn parse(json: serde_json::Value) -> Result<Credentials, String> {
        Credentials::parse(&json.to_string(), "creds.json").map_err(|e| e.message)
    }

    #[test]
    fn files_of_each_type_parse_and_errors_name_fields_not_values() {
        let sa = parse(json!({"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com", "private_key": KEY, "project_id": "p"})).unwrap();
        assert_eq!((sa.kind(), sa.project()), ("service_account", Some("p")));
        let err = parse(json!({"type": "service_account", "client_email": "x", "private_key": "not-a-k3y"}))
            .unwrap_err();
        assert_eq!(err, "creds.json: private_key is not an RSA private key in PEM");
        let err = parse(json!({"type": "authorized_user", "client_id": "c", "refresh_token": "r3fresh"}))
            .unwrap_err();
        assert_eq!(
            err,
            "creds.json: credentials of type authorized_user need a string \"client_secret\""
        );
        let err = parse(json!({"type": "impersonated_service_account"})).unwrap_err();
        assert_eq!(
            err,
            "creds.json: credentials of type \"impersonated_service_account\" are not supported (service_account, external_account and authorized_user are)"
        );
        let err = Credentials::parse("{\"private_key\": \"s3cr3t", "creds.json")
            .map_err(|e| e.message)
            .unwrap_err();
        assert!(err.starts_with("creds.json: not JSON (line 1"), "{err}");
        let ext = parse(json!({"type": "external_account", "audience": "//iam/aud", "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.googleapis.com/v1/token", "credential_source": {"executable": {"command": "x"}}}))
            .unwrap_err();
        assert_eq!(
            ext,
            "creds.json: credential_source must name a file or a url (AWS and executable sources are not supported)"
        );
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_with_the_claims_google_wants() {
        let Ok(Credentials::ServiceAccount(sa)) = parse(json!({"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com", "private_key": KEY, "private_key_id": "k1", "token_uri": "https://oauth2.googleapis.com/token"})) else {
            panic!("a service account");
        };
        let jwt = sa.assertion(1_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
        };
        assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        assert_eq!(
            decode(parts[1]),
            json!({"iss": "sa@p.iam.gserviceaccount.com", "scope": SCOPE, "aud": "https://oauth2.googleapis.com/token", "iat": 1000, "exp": 4600})
        );
        use rsa::signature::Verifier as _;
        let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(sa.key.to_public_key());
        let signature =
            rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice())
                .unwrap();
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn without_a_file_the_metadata_server_is_used_and_its_host_checked() {
        let none = |_: &str| None;
        let Ok(Credentials::Metadata { host }) = Credentials::find(&none, None) else {
            panic!("the metadata server");
        };
        assert_eq!(host, DEFAULT_METADATA_HOST);
        let bad = |key: &str| (key == "GCE_METADATA_HOST").then(|| "evil/path".to_owned());
        assert_eq!(
            Credentials::find(&bad, None).err().unwrap().message,
            "GCE_METADATA_HOST \"evil/path\" is not a host name (with an optional :port)"
        );
    }

    #[test]
    fn impersonation_urls_name_their_service_account() {
        assert_eq!(
            impersonated("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"),
            "sa@p.iam.gserviceaccount.com"
        );
    }
}
