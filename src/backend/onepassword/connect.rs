//! The Connect server's REST API: the requests secretsubst sends, their answers, and its error
//! bodies (`{"status": 401, "message": "Invalid token signature"}`) as neutral errors. Only ids
//! go in URL paths, each as one percent-encoded segment; a title travels in the `filter` query
//! parameter.
//!
//! API reference: <https://developer.1password.com/docs/connect/connect-api-reference/>.

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::backend::rest::{self, Refused};
use crate::backend::{BackendError, ErrorKind};
use crate::error::excerpt;

/// How the server is named in transport errors.
pub const SERVICE: &str = "1Password Connect";

pub struct Connect {
    pub http: reqwest::Client,
    pub host: Url,
    pub authorization: HeaderValue,
}

/// A vault as `GET /v1/vaults` lists it.
#[derive(Deserialize)]
pub struct Vault {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// An item as `GET /v1/vaults/{vaultId}/items` lists it (without its fields).
#[derive(Deserialize)]
pub struct ItemSummary {
    pub id: String,
}

/// The part of a full item secretsubst reads.
#[derive(Deserialize)]
pub struct Item {
    #[serde(default)]
    pub fields: Vec<Field>,
}

#[derive(Deserialize)]
pub struct Field {
    #[serde(default)]
    pub label: String,
    /// Absent when the field holds nothing.
    pub value: Option<String>,
}

/// `GET /health`'s answer.
#[derive(Deserialize)]
pub struct Health {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
pub struct Dependency {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub status: String,
}

/// A refusal as a look-up keeps it for the run: enough to report it for every secret that
/// shares the look-up.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    pub fn of(refused: &Refused) -> Refusal {
        Refusal {
            status: refused.status,
            reason: message(&refused.body),
        }
    }

    /// The refusal as the error of the read of `what`.
    pub fn error(&self, what: &str) -> BackendError {
        let refused = Refused {
            status: self.status,
            body: Vec::new(),
            retry_after: None,
        };
        let mut error = refused.into_error(&self.reason, what);
        error.message.push_str(read_hint(self.status));
        error
    }
}

/// A refusal as an error: the status and Connect's `message`, never the rest of the body, with
/// `Retry-After` kept for the resolver.
pub fn refusal(refused: Refused, what: &str) -> BackendError {
    let reason = message(&refused.body);
    refused.into_error(&reason, what)
}

/// The `message` of Connect's error body, or nothing when the body has another shape (a
/// proxy's page).
fn message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorResponse {
        #[serde(default)]
        message: String,
    }
    serde_json::from_slice::<ErrorResponse>(body)
        .map(|e| excerpt(e.message.trim().trim_end_matches('.')))
        .unwrap_or_default()
}

/// A refused read, with what to look at when Connect refuses the token or the vault.
fn refused_read(refused: Refused, what: &str) -> BackendError {
    let hint = read_hint(refused.status);
    let mut error = refusal(refused, what);
    error.message.push_str(hint);
    error
}

fn read_hint(status: u16) -> &'static str {
    match status {
        401 => " (check OP_CONNECT_TOKEN: a token this Connect server issued, not revoked)",
        403 => " (check which vaults the Connect token may read)",
        _ => "",
    }
}

/// A SCIM `eq` filter on `attribute`, the value quoted with `"` and `\` escaped.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    format!("{attribute} eq \"{quoted}\"")
}

impl Connect {
    /// `OP_CONNECT_HOST` with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.host.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A GET of `url`, with the token when `authenticated`; the body, or the refusal.
    async fn send(
        &self,
        url: Url,
        authenticated: bool,
        what: &str,
    ) -> Result<Result<Vec<u8>, Refused>, BackendError> {
        let mut request = self.http.get(url);
        if authenticated {
            request = request.header(AUTHORIZATION, self.authorization.clone());
        }
        rest::send(request, SERVICE, what).await
    }

    /// An authenticated GET whose answer is JSON of type `T`.
    async fn json<T: DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
    ) -> Result<Result<T, Refused>, BackendError> {
        match self.send(url, true, what).await? {
            Ok(body) => Ok(Ok(rest::json(&body, SERVICE, what)?)),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// <https://developer.1password.com/docs/connect/connect-api-reference/#list-vaults>:
    /// `GET /v1/vaults`, only those named `name` when given.
    pub async fn vaults(
        &self,
        name: Option<&str>,
        what: &str,
    ) -> Result<Result<Vec<Vault>, Refused>, BackendError> {
        let mut url = self.url(&["v1", "vaults"]);
        if let Some(name) = name {
            url.query_pairs_mut()
                .append_pair("filter", &eq_filter("name", name));
        }
        self.json(url, what).await
    }

    /// <https://developer.1password.com/docs/connect/connect-api-reference/#list-items>:
    /// `GET /v1/vaults/{vaultId}/items?filter=title eq "TITLE"`.
    pub async fn items_titled(
        &self,
        vault_id: &str,
        title: &str,
        what: &str,
    ) -> Result<Result<Vec<ItemSummary>, Refused>, BackendError> {
        let mut url = self.url(&["v1", "vaults", vault_id, "items"]);
        url.query_pairs_mut()
            .append_pair("filter", &eq_filter("title", title));
        self.json(url, what).await
    }

    /// <https://developer.1password.com/docs/connect/connect-api-reference/#get-item-details>:
    /// `GET /v1/vaults/{vaultId}/items/{itemId}`, the item with its fields.
    pub async fn item(
        &self,
        vault_id: &str,
        item_id: &str,
        what: &str,
    ) -> Result<Item, BackendError> {
        let url = self.url(&["v1", "vaults", vault_id, "items", item_id]);
        self.json(url, what)
            .await?
            .map_err(|refused| refused_read(refused, what))
    }

    /// `GET /heartbeat`, unauthenticated; Connect answers `.`. Documented in the API's OpenAPI
    /// file that <https://developer.1password.com/docs/connect/connect-api-reference/> links:
    /// <https://github.com/1Password/connect/blob/main/docs/openapi/spec.yaml> (`GetHeartbeat`).
    pub async fn heartbeat(&self) -> Result<bool, BackendError> {
        let what = "the heartbeat";
        match self.send(self.url(&["heartbeat"]), false, what).await? {
            Ok(body) => Ok(body.trim_ascii() == b"."),
            Err(refused) => Err(refusal(refused, what)),
        }
    }

    /// `GET /health`, unauthenticated: the server's name, version and dependencies.
    /// <https://github.com/1Password/connect/blob/main/docs/openapi/spec.yaml> (`GetServerHealth`).
    pub async fn health(&self) -> Result<Health, BackendError> {
        let what = "the health check";
        match self.send(self.url(&["health"]), false, what).await? {
            Ok(body) => rest::json(&body, SERVICE, what),
            Err(refused) => Err(refusal(refused, what)),
        }
    }
}

/// Whether `name` has the form of a Connect id (26 lower-case letters and digits), as the
/// Connect SDKs decide between an id and a title.
pub fn is_id(name: &str) -> bool {
    name.len() == 26
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether a refusal is worth another try: the look-ups keep every other answer for the run.
pub fn is_transient(refused: &Refused) -> bool {
    ErrorKind::of_status(refused.status) == ErrorKind::Transient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_the_title_and_escape_quotes_and_backslashes() {
        assert_eq!(eq_filter("name", "Prod"), "name eq \"Prod\"");
        assert_eq!(
            eq_filter("title", r#"a "b" \c"#),
            r#"title eq "a \"b\" \\c""#
        );
    }

    #[test]
    fn ids_are_26_lower_case_letters_and_digits() {
        assert!(is_id("ionaiwtdvgclrixbt6ztpqcxnq"));
        assert!(!is_id("Ionaiwtdvgclrixbt6ztpqcxnq"));
        assert!(!is_id("ionaiwtdvgclrixbt6ztpqcxn"));
        assert!(!is_id("Prod"));
    }

    #[test]
    fn paths_are_percent_encoded_segments_under_the_hosts_path() {
        let connect = Connect {
            http: reqwest::Client::new(),
            host: Url::parse("http://connect:8080/prefix/").unwrap(),
            authorization: HeaderValue::from_static("Bearer t"),
        };
        assert_eq!(
            connect.url(&["v1", "vaults", "a/../b?c#d", "items"]).as_str(),
            "http://connect:8080/prefix/v1/vaults/a%2F..%2Fb%3Fc%23d/items"
        );
    }

    #[test]
    fn refusals_give_connects_message_and_a_hint_never_the_body() {
        let refused = |status: u16, body: &str| Refused {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        };
        let error = refused_read(
            refused(401, r#"{"status":401,"message":"Invalid token signature"}"#),
            "vaults/Prod/items/db",
        );
        assert_eq!(error.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            error.message,
            "401 Invalid token signature: vaults/Prod/items/db (check OP_CONNECT_TOKEN: a token this Connect server issued, not revoked)"
        );
        let error = refusal(refused(503, "<html>s3cr3t page</html>"), "x");
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Transient, "503 service unavailable: x")
        );
        let cached = Refusal::of(&refused(403, r#"{"status":403,"message":"vault v is not in scope"}"#));
        assert_eq!(
            cached.error("y").message,
            "403 vault v is not in scope: y (check which vaults the Connect token may read)"
        );
    }
}
