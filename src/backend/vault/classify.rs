//! Vault's answers as neutral error kinds: refusals by status and Vault's own error strings,
//! and transport failures as one line.
//!
//! Vault's error format: <https://developer.hashicorp.com/vault/api-docs#error-response>.

use crate::backend::{BackendError, ErrorKind};

/// A non-2xx answer as an error: Vault's own error strings (`{"errors": […]}`) and the status,
/// never the rest of the body. A refused token says so; a refused login is left as it is (its
/// credentials are at fault, which the caller names), a refused request made with a valid
/// token gets the policy hint from [`with_token`](super::VaultBackend::with_token).
pub fn refusal(code: u16, body: &[u8], what: &str) -> BackendError {
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
    let error = BackendError::new(kind_of(code), format!("{code} {reason}: {what}{hint}"));
    // Vault adds "invalid token" when the token itself is refused: no policy is at fault.
    match errors.iter().any(|e| e.contains(INVALID_TOKEN)) {
        true => BackendError {
            message: format!("{} (the token is invalid, expired or revoked)", error.message),
            ..error
        },
        false => error,
    }
}

/// The policy hint for a refusal of a request made with a token, unless the token itself was
/// refused.
pub fn with_policy_hint(error: BackendError) -> BackendError {
    match error.message.contains(INVALID_TOKEN) {
        true => error,
        false => error.with_policy_hint(),
    }
}

/// What Vault adds to a 403 when the token itself is unknown or expired.
const INVALID_TOKEN: &str = "invalid token";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_error_lists_become_one_line() {
        let e = refusal(
            403,
            br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            "secret/data/app",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(e.message, "403 permission denied: secret/data/app");
        let e = refusal(
            403,
            br#"{"errors":["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]}"#,
            "secret/data/app",
        );
        assert_eq!(
            e.message,
            "403 permission denied; invalid token: secret/data/app (the token is invalid, expired or revoked)"
        );
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
}
