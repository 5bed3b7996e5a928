//! The HTTP layer under vaultrs: vaultrs describes each request (its endpoint types), this
//! sends it, so that what vaultrs's own client drops reaches the engine: the status and
//! `Retry-After` of a refusal, a timeout while the body arrives, and header values that cannot
//! be sent (vaultrs panics on them). Bodies are capped, and errors never quote a body.
//!
//! Vault's request and error formats: <https://developer.hashicorp.com/vault/api-docs>.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use rustify::endpoint::Endpoint;
use url::Url;

use super::super::{BackendError, ErrorKind};

/// Vault's own limit on a request body (`max_request_size`); no answer of a KV read is larger.
const MAX_BODY: usize = 32 << 20;

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

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    super::super::retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// The body, up to [`MAX_BODY`]; a failure while it arrives (a timeout, a reset) is transient.
async fn read_body(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, BackendError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(BackendError::new(
                        ErrorKind::Unexpected,
                        format!("the answer to {what} is larger than {} MiB", MAX_BODY >> 20),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(BackendError::new(
                    ErrorKind::Transient,
                    format!("the answer to {what} broke off: {}", reason(&e)),
                ));
            }
        }
    }
}

/// A non-2xx answer as an error: Vault's own error strings (`{"errors": […]}`) and the status,
/// never the rest of the body.
fn refusal(code: u16, body: &[u8], what: &str) -> BackendError {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let errors = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let reason = errors
        .iter()
        .flat_map(|e| e.lines())
        .map(|l| l.trim().trim_start_matches("* ").trim())
        .filter(|l| {
            !l.is_empty() && !l.ends_with("error occurred:") && !l.ends_with("errors occurred:")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reason = if reason.is_empty() {
        status_text(code).to_owned()
    } else {
        reason
    };
    let hint = match code {
        404 => deleted_hint(body),
        _ => String::new(),
    };
    BackendError::new(kind_of(code), format!("{code} {reason}: {what}{hint}"))
}

fn kind_of(code: u16) -> ErrorKind {
    match code {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        408 | 429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::InvalidConfig,
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        400 => "bad request",
        401 | 403 => "permission denied",
        404 => "not found",
        408 => "request timeout",
        429 => "too many requests",
        503 => "service unavailable (sealed or in standby?)",
        500..=599 => "server error",
        _ => "error",
    }
}

/// Vault answers a read of a deleted or destroyed KV v2 version with 404 and the version's
/// metadata; say so rather than "not found".
fn deleted_hint(body: &[u8]) -> String {
    let metadata = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|body| body.pointer("/data/metadata").cloned());
    let Some(metadata) = metadata else {
        return String::new();
    };
    if metadata
        .get("destroyed")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        return " (this version was destroyed: pin another version)".to_owned();
    }
    match metadata
        .get("deletion_time")
        .and_then(serde_json::Value::as_str)
    {
        Some(time) if !time.is_empty() => {
            format!(" (this version was deleted at {time}: undelete it or pin another version)")
        }
        _ => String::new(),
    }
}

/// A reqwest error as one line: its chain (connection refused, TLS failure, timeout), without
/// the URL it names.
fn reason(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if error.is_timeout() {
        parts.push("timed out (VAULT_CLIENT_TIMEOUT)".to_owned());
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
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

    #[test]
    fn vault_error_lists_become_one_line() {
        let e = refusal(
            403,
            br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            "secret/data/app",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(e.message, "403 permission denied: secret/data/app");
        let e = refusal(502, b"<html>proxy</html>", "x");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Transient, "502 server error: x")
        );
    }

    #[test]
    fn deleted_versions_are_named_as_such() {
        let body = br#"{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","destroyed":false}}}"#;
        assert_eq!(
            deleted_hint(body),
            " (this version was deleted at 2026-01-01T00:00:00Z: undelete it or pin another version)"
        );
        let body = br#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true}}}"#;
        assert_eq!(
            deleted_hint(body),
            " (this version was destroyed: pin another version)"
        );
        assert_eq!(deleted_hint(br#"{"errors":[]}"#), "");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
