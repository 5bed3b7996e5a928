//! The HTTP layer under vaultrs: vaultrs describes each request (its endpoint types), this
//! sends it, so that what vaultrs's own client drops reaches the engine: the status and
//! `Retry-After` of a refusal, a timeout while the body arrives, and header values that cannot
//! be sent (vaultrs panics on them). Bodies are capped, and errors never quote a body.
//!
//! Vault's request and error formats: <https://developer.hashicorp.com/vault/api-docs>.

use reqwest::header::{HeaderMap, HeaderValue};
use rustify::endpoint::Endpoint;
use url::Url;

use super::classify::refusal;
use crate::backend::rest::{read_body, reason, retry_after};
use crate::backend::{BackendError, ErrorKind};

pub struct Transport {
    pub http: reqwest::Client,
    /// `VAULT_ADDR` without user-info (which goes in a header, never in a message).
    pub base: Url,
}

impl Transport {
    /// Sends `endpoint` with the token and namespace (when non-empty); the body of a 2xx answer.
    /// `what` names the request in errors.
    pub async fn send<E: Endpoint>(
        &self,
        endpoint: &E,
        token: &str,
        namespace: Option<&str>,
        what: &str,
    ) -> Result<Vec<u8>, BackendError> {
        let invalid = |m: String| BackendError::new(ErrorKind::InvalidConfig, m);
        let mut url = self.url(&endpoint.path()).map_err(invalid)?;
        if let Some(query) = endpoint.query().ok().flatten().filter(|q| !q.is_empty()) {
            url.set_query(Some(&query));
        }
        let mut request = self.http.request(endpoint.method().into(), url);
        let mut headers = HeaderMap::new();
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        if !token.is_empty() {
            headers.insert("X-Vault-Token", header("the Vault token", token)?);
        }
        if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
            headers.insert(
                "X-Vault-Namespace",
                header("the Vault namespace", namespace)?,
            );
        }
        request = request.headers(headers);
        if let Some(body) = endpoint
            .body()
            .map_err(|_| invalid(format!("cannot encode the request for {what}")))?
        {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| {
            BackendError::new(
                ErrorKind::Transient,
                format!("cannot reach Vault for {what}: {}", reason(&e)),
            )
        })?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = read_body(response, what).await?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let mut error = refusal(status, &body, what);
        error.retry_after = retry_after;
        Err(error)
    }

    /// `BASE/v1/PATH`, with the path as Vault sees it once the URL is normalised.
    fn url(&self, path: &str) -> Result<Url, String> {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}/v1/{}", path.trim_start_matches('/')));
        if url.path().starts_with(&format!("{base_path}/v1/")) {
            Ok(url)
        } else {
            Err(format!("the path {path:?} leaves Vault's /v1/ API"))
        }
    }

    /// The API path (after `/v1/`) that `path` reaches once `.`/`..` segments, percent-escapes
    /// and backslashes are resolved, as the URL parser and Vault resolve them.
    pub fn effective_path(&self, path: &str) -> Result<String, String> {
        let url = self.url(path)?;
        let base_path = self.base.path().trim_end_matches('/');
        let rest = &url.path()[base_path.len() + "/v1/".len()..];
        Ok(percent_encoding::percent_decode_str(rest)
            .decode_utf8_lossy()
            .into_owned())
    }
}

/// A header value, or an error naming the setting (never its value) when it holds a character
/// HTTP forbids (a line break from a token file, say).
fn header(name: &str, value: &str) -> Result<HeaderValue, BackendError> {
    let bad = value.chars().find(|c| c.is_control() || !c.is_ascii());
    match (bad, HeaderValue::from_str(value)) {
        (None, Ok(header)) => Ok(header),
        (bad, _) => Err(BackendError::new(
            ErrorKind::InvalidConfig,
            // A control character names the problem; any other could be a character of the secret.
            match bad {
                Some(c) if c.is_control() => format!(
                    "{name} holds the character {c:?}, which cannot be sent in an HTTP header"
                ),
                Some(_) => format!(
                    "{name} holds a non-ASCII character, which cannot be sent in an HTTP header"
                ),
                None => format!("{name} cannot be sent in an HTTP header"),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(base: &str) -> Transport {
        Transport {
            http: reqwest::Client::new(),
            base: Url::parse(base).unwrap(),
        }
    }

    #[test]
    fn paths_are_normalised_before_they_are_checked() {
        let t = transport("http://127.0.0.1:8200");
        assert_eq!(
            t.effective_path("secret/data/app").unwrap(),
            "secret/data/app"
        );
        assert_eq!(
            t.effective_path("secret/../auth/token/lookup-self")
                .unwrap(),
            "auth/token/lookup-self"
        );
        assert_eq!(
            t.effective_path("secret/%2e%2e/sys/raw").unwrap(),
            "sys/raw"
        );
        assert!(t.effective_path("../../sys/health").is_err());
        let t = transport("http://127.0.0.1:8200/vault/");
        assert_eq!(
            t.url("a/b").unwrap().as_str(),
            "http://127.0.0.1:8200/vault/v1/a/b"
        );
    }

    #[test]
    fn header_values_with_control_characters_are_errors_that_hide_the_value() {
        let err = header("the Vault token", "hvs.secret\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        assert_eq!(
            err.message,
            "the Vault token holds the character '\\n', which cannot be sent in an HTTP header"
        );
    }
}
