//! What the backends that speak HTTP share: one client per profile, answers read with a cap,
//! transport failures as one line, and statuses as neutral kinds (DESIGN: 400, 401, 403 and 404
//! are never retried; 429, 5xx and connection errors are). Each backend parses its provider's
//! own error bodies.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::{BackendError, ErrorKind};

/// No provider's answer to one read is larger.
const MAX_BODY: usize = 32 << 20;
/// A request that takes longer has stalled; the run deadline cuts it earlier when it is nearer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for one profile: rustls, the system's roots, a timeout.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(timeout)
        .build()?)
}

/// A refusal: the status and the provider's error body (never quoted by this module).
pub struct Refused {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<Duration>,
}

/// Sends `request` to `service`; the body of a 2xx answer, or the refusal. `what` names the
/// request in transport errors.
pub async fn send(
    request: reqwest::RequestBuilder,
    service: &str,
    what: &str,
) -> Result<Result<Vec<u8>, Refused>, BackendError> {
    let response = request.send().await.map_err(|e| {
        BackendError::new(
            ErrorKind::Transient,
            format!("cannot reach {service} for {what}: {}", reason(&e)),
        )
    })?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = read_body(response, what).await?;
    match status {
        200..=299 => Ok(Ok(body)),
        _ => Ok(Err(Refused {
            status,
            body,
            retry_after,
        })),
    }
}

impl Refused {
    /// The refusal as an error: `STATUS REASON: WHAT`, `reason` from the provider's body.
    pub fn into_error(self, reason: &str, what: &str) -> BackendError {
        let reason = match reason.trim() {
            "" => status_text(self.status),
            reason => reason,
        };
        BackendError {
            kind: ErrorKind::of_status(self.status),
            message: format!("{} {reason}: {what}", self.status),
            retry_after: self.retry_after,
        }
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "permission denied",
        404 => "not found",
        408 => "request timeout",
        429 => "too many requests",
        503 => "service unavailable",
        500..=599 => "server error",
        _ => "error",
    }
}

/// Parses a 2xx answer; a body of another shape is an error that does not quote it.
pub fn json<T: DeserializeOwned>(
    body: &[u8],
    service: &str,
    what: &str,
) -> Result<T, BackendError> {
    serde_json::from_slice(body).map_err(|_| {
        BackendError::new(
            ErrorKind::Unexpected,
            format!("unexpected response from {service} for {what}"),
        )
    })
}

/// A reqwest error as one line: its chain (connection refused, TLS failure, timeout), without
/// the URL it names.
pub fn reason(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if error.is_timeout() {
        parts.push("timed out".to_owned());
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

/// A `Retry-After` header in seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    super::retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// The body, up to [`MAX_BODY`]; a failure while it arrives (a timeout, a reset) is transient.
pub async fn read_body(
    mut response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, BackendError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds_that_retry_only_what_may_pass() {
        assert_eq!(ErrorKind::of_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of_status(403), ErrorKind::PermissionDenied);
        assert_eq!(ErrorKind::of_status(401), ErrorKind::PermissionDenied);
        assert_eq!(ErrorKind::of_status(400), ErrorKind::InvalidConfig);
        assert_eq!(ErrorKind::of_status(429), ErrorKind::Transient);
        assert_eq!(ErrorKind::of_status(503), ErrorKind::Transient);
        assert_eq!(ErrorKind::of_status(302), ErrorKind::Unexpected);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, reqwest::header::HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_refusal_names_status_reason_and_request() {
        let refused = Refused {
            status: 404,
            body: b"{\"error\":\"x\"}".to_vec(),
            retry_after: None,
        };
        let error = refused.into_error("Secret not found", "projects/p/secrets/db");
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(error.message, "404 Secret not found: projects/p/secrets/db");
        let refused = Refused {
            status: 429,
            body: Vec::new(),
            retry_after: Some(Duration::from_secs(2)),
        };
        let error = refused.into_error("", "x");
        assert_eq!(
            (error.kind, error.message.as_str(), error.retry_after),
            (
                ErrorKind::Transient,
                "429 too many requests: x",
                Some(Duration::from_secs(2))
            )
        );
    }
}
