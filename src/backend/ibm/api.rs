//! The requests secretsubst makes to IBM Cloud: IAM's token exchange, and the Secrets Manager v2
//! reads (secret groups, the secrets of a group and type, a secret, a version of a secret). Each
//! answer's error body becomes the reason of the error; no body is ever quoted otherwise.
//!
//! Secrets Manager v2: <https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2>.

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::path::Kind;
use super::settings::{CR_TOKEN_PATHS, Credential, Profile};
use crate::backend::rest::{self, Refused};
use crate::backend::{BackendError, ErrorKind};
use crate::setting_file;

const SERVICE: &str = "IBM Secrets Manager";
const IAM: &str = "IBM Cloud IAM";
/// The page size of secret listings (the API's default; at most 1000).
pub const PAGE_SIZE: usize = 200;

/// An IAM access token, ready for the `Authorization` header.
pub struct Token {
    header: HeaderValue,
    /// Seconds until it expires, as IAM says.
    pub expires_in: Option<u64>,
}

/// A secret group as listed.
#[derive(Deserialize)]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// The metadata of a listed secret.
#[derive(Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub secret_type: String,
    pub secret_group_id: String,
}

/// One page of a secret listing.
#[derive(Deserialize)]
pub struct Page {
    pub secrets: Vec<Listed>,
    pub total_count: usize,
}

/// What the answers to a secret or a version hold besides the type's fields.
pub type Answer = serde_json::Map<String, serde_json::Value>;

pub struct Api {
    pub http: reqwest::Client,
    pub instance: Url,
    pub iam: Url,
}

impl Api {
    /// Exchanges the credential for an access token.
    // https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-apikey
    // https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-crtoken
    pub async fn token(&self, credential: &Credential) -> Result<Token, BackendError> {
        const WHAT: &str = "the IAM token exchange";
        let form = token_form(credential)?;
        let request = self
            .http
            .post(join(&self.iam, &["identity", "token"]))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form);
        let body = match rest::send(request, IAM, WHAT).await? {
            Ok(body) => body,
            Err(refused) => {
                let mut reason = reason(&refused.body);
                // IAM's messages name the key's problem, not the key; make sure of it.
                if let Credential::ApiKey(key) = credential {
                    reason = reason.replace(key.as_str(), "[redacted]");
                }
                return Err(refused.into_error(&reason, WHAT));
            }
        };
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let answer: Answer = rest::json(&body, IAM, WHAT)?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| {
                BackendError::new(
                    ErrorKind::Unexpected,
                    "IBM Cloud IAM answered with an access token that cannot be sent in an HTTP header",
                )
            })?;
        header.set_sensitive(true);
        Ok(Token {
            header,
            expires_in: answer.expires_in,
        })
    }

    /// Every secret group of the instance.
    // https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#list-secret-groups
    pub async fn secret_groups(&self, token: &Token) -> Result<Vec<Group>, BackendError> {
        #[derive(Deserialize)]
        struct Groups {
            secret_groups: Vec<Group>,
        }
        let url = join(&self.instance, &["api", "v2", "secret_groups"]);
        let what = "the secret group listing";
        let groups: Groups = self.get(url, token, what).await?;
        Ok(groups.secret_groups)
    }

    /// One page of the secrets of type `kind` in group `group` (an id).
    // https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#list-secrets
    pub async fn secrets(
        &self,
        token: &Token,
        group: &str,
        kind: Kind,
        offset: usize,
    ) -> Result<Page, BackendError> {
        let mut url = join(&self.instance, &["api", "v2", "secrets"]);
        url.query_pairs_mut()
            .append_pair("groups", group)
            .append_pair("secret_types", kind.name())
            .append_pair("limit", &PAGE_SIZE.to_string())
            .append_pair("offset", &offset.to_string());
        let what = format!(
            "the listing of {} secrets in secret group {group}",
            kind.name()
        );
        self.get(url, token, &what).await
    }

    /// A secret with its data.
    // https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#get-secret
    pub async fn secret(&self, token: &Token, id: &str, what: &str) -> Result<Answer, BackendError> {
        let url = join(&self.instance, &["api", "v2", "secrets", segment(id, what)?]);
        self.get(url, token, what).await
    }

    /// A version of a secret (its id, or `current` / `previous`) with its data.
    // https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#get-secret-version
    pub async fn version(
        &self,
        token: &Token,
        id: &str,
        version: &str,
        what: &str,
    ) -> Result<Answer, BackendError> {
        let url = join(
            &self.instance,
            &[
                "api",
                "v2",
                "secrets",
                segment(id, what)?,
                "versions",
                segment(version, what)?,
            ],
        );
        self.get(url, token, what).await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        token: &Token,
        what: &str,
    ) -> Result<T, BackendError> {
        let request = self
            .http
            .get(url)
            .header(AUTHORIZATION, token.header.clone())
            .header(ACCEPT, "application/json");
        match rest::send(request, SERVICE, what).await? {
            Ok(body) => rest::json(&body, SERVICE, what),
            Err(refused) => Err(refusal(refused, what)),
        }
    }
}

/// The form IAM exchanges for a token.
fn token_form(credential: &Credential) -> Result<String, BackendError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match credential {
        // https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-apikey
        Credential::ApiKey(key) => {
            form.append_pair("grant_type", "urn:ibm:params:oauth:grant-type:apikey")
                .append_pair("apikey", key);
        }
        // https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-crtoken
        Credential::TrustedProfile {
            profile,
            token_path,
        } => {
            form.append_pair("grant_type", "urn:ibm:params:oauth:grant-type:cr-token")
                .append_pair("cr_token", &cr_token(token_path.as_deref())?);
            match profile {
                Profile::Id(id) => form.append_pair("profile_id", id),
                Profile::Name(name) => form.append_pair("profile_name", name),
            };
        }
    }
    Ok(form.finish())
}

/// A refused read: the v2 error model's message, and where to look when access is refused.
fn refusal(refused: Refused, what: &str) -> BackendError {
    let status = refused.status;
    let reason = reason(&refused.body);
    let mut error = refused.into_error(&reason, what);
    match status {
        401 => error
            .message
            .push_str(" (the IAM token was refused: check IBMCLOUD_IAM_API_ENDPOINT is the IAM of this instance's account)"),
        403 => error.message.push_str(
            " (check the access policy of the service ID or trusted profile: reading secrets needs the SecretsReader role)",
        ),
        _ => {}
    }
    error
}

/// The reason an error body gives: the v2 error model's messages
/// (`{"errors": [{"code", "message"}], "status_code", "trace"}`), IAM's
/// `{"errorCode", "errorMessage"}`, else empty (the status speaks). As the IBM SDKs read them.
pub fn reason(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
        #[serde(rename = "errorCode")]
        error_code: Option<String>,
        #[serde(rename = "errorMessage")]
        error_message: Option<String>,
        message: Option<String>,
    }
    let Ok(body) = serde_json::from_slice::<Body>(body) else {
        return String::new();
    };
    let clean = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").trim_end_matches('.').to_owned();
    let messages: Vec<String> = body
        .errors
        .iter()
        .map(|e| clean(&e.message))
        .filter(|m| !m.is_empty())
        .collect();
    if !messages.is_empty() {
        return messages.join("; ");
    }
    match (body.error_code, body.error_message.or(body.message)) {
        (Some(code), Some(message)) => format!("{code}: {}", clean(&message)),
        (Some(code), None) => code,
        (None, Some(message)) => clean(&message),
        (None, None) => String::new(),
    }
}

/// An id or version as one path segment: the URL library drops `.` and `..` segments, which
/// would read another resource.
fn segment<'a>(value: &'a str, what: &str) -> Result<&'a str, BackendError> {
    match value {
        "" | "." | ".." => Err(BackendError::new(
            ErrorKind::InvalidConfig,
            format!("{value:?} is not a secret or version id: {what}"),
        )),
        value => Ok(value),
    }
}

/// `base` with `segments` appended, each percent-encoded as one segment.
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .expect("an http(s) URL has path segments")
        .pop_if_empty()
        .extend(segments);
    url
}

/// The pod's compute resource token, from `path` or the first of the SDKs' locations.
fn cr_token(path: Option<&str>) -> Result<String, BackendError> {
    let paths: Vec<&str> = match path {
        Some(path) => vec![path],
        None => CR_TOKEN_PATHS.to_vec(),
    };
    for path in &paths {
        if let Ok(token) = setting_file::read_to_string(path, setting_file::MAX_SMALL) {
            return Ok(token.trim().to_owned());
        }
    }
    Err(BackendError::new(
        ErrorKind::InvalidConfig,
        format!(
            "cannot read a compute resource token for the trusted profile from {} (AVP_IBM_CR_TOKEN_PATH)",
            paths.join(" or ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_services_give_their_reason() {
        let v2 = br#"{"errors": [{"code": "not_found", "message": "Secret not found"}], "status_code": 404, "trace": "t"}"#;
        assert_eq!(reason(v2), "Secret not found");
        let iam = br#"{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.", "context": {"requestId": "r"}}"#;
        assert_eq!(reason(iam), "BXNIM0415E: Provided API key could not be found");
        assert_eq!(reason(b"<html>bad gateway</html>"), "");
    }

    #[test]
    fn segments_are_encoded_and_a_base_path_kept() {
        let base = Url::parse("https://sm.example/prefix/").unwrap();
        let url = join(&base, &["api", "v2", "secrets", "a/../b c"]);
        assert_eq!(url.as_str(), "https://sm.example/prefix/api/v2/secrets/a%2F..%2Fb%20c");
    }

    #[test]
    fn a_refused_read_says_where_to_look() {
        let refused = Refused {
            status: 403,
            body: br#"{"errors": [{"code": "forbidden", "message": "Forbidden"}], "status_code": 403}"#.to_vec(),
            retry_after: None,
        };
        let error = refusal(refused, "ibmcloud/kv/secrets/groups/default/db");
        assert_eq!(error.kind, ErrorKind::PermissionDenied);
        assert!(
            error.message.starts_with("403 Forbidden: ibmcloud/kv/secrets/groups/default/db (check the access policy"),
            "{}",
            error.message
        );
    }
}
