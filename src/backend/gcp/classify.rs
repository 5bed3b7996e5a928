//! Google's refusals as neutral error kinds, with the reason their bodies give: a
//! `google.rpc.Status` from Google APIs (<https://cloud.google.com/apis/design/errors>), an
//! OAuth 2.0 error from token endpoints
//! (<https://developers.google.com/identity/protocols/oauth2/service-account#error-codes>), a
//! line of text from the metadata server.

use serde::Deserialize;

use crate::backend::rest::Refused;
use crate::backend::{BackendError, ErrorKind};

/// A line of a plain-text refusal longer than this is cut.
const MAX_TEXT_REASON: usize = 200;

/// `{"error": {"code": 404, "message": "…", "status": "NOT_FOUND"}}`.
#[derive(Deserialize)]
struct StatusBody {
    error: Status,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// `{"error": "invalid_grant", "error_description": "…"}`.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// A refusal as an error: `STATUS_CODE STATUS: message: what`. Its body is never quoted beyond
/// the reason Google gives.
pub fn refusal(refused: Refused, what: &str) -> BackendError {
    let (status, reason) = reason(&refused.body);
    let precondition = status == "FAILED_PRECONDITION";
    let mut error = refused.into_error(&reason, what);
    // A disabled or destroyed version (400 FAILED_PRECONDITION) is a version that cannot be
    // read, as a deleted one would be.
    if precondition {
        error.kind = ErrorKind::NotFound;
        let hint = match reason.contains("DESTROYED") {
            true => " (a destroyed version cannot be read: pin another version)",
            false => " (enable the version or pin another one)",
        };
        error.message.push_str(hint);
    }
    error
}

/// The refusal of a secret's read, with where to look when it is denied (403: the token
/// itself was accepted).
pub fn read_refusal(refused: Refused, what: &str) -> BackendError {
    let denied = refused.status == 403;
    let mut error = refusal(refused, what);
    if denied {
        error.message.push_str(ACCESS_HINT);
    }
    error
}

/// What a denied read needs.
pub const ACCESS_HINT: &str = " (grant the identity secretsubst runs as roles/secretmanager.secretAccessor on the secret or its project)";

/// The status name (`NOT_FOUND`, or `""`) and the reason a refusal's body gives.
fn reason(body: &[u8]) -> (String, String) {
    if let Ok(StatusBody { error }) = serde_json::from_slice::<StatusBody>(body) {
        let message = error.message.trim().trim_end_matches('.').to_owned();
        let reason = match (error.status.is_empty(), message.is_empty()) {
            (true, _) => message,
            (false, true) => error.status.clone(),
            (false, false) => format!("{}: {message}", error.status),
        };
        return (error.status, reason);
    }
    if let Ok(oauth) = serde_json::from_slice::<OAuthError>(body) {
        let description = oauth.error_description.trim().trim_end_matches('.');
        let reason = match description.is_empty() {
            true => oauth.error,
            false => format!("{}: {description}", oauth.error),
        };
        return (String::new(), reason);
    }
    let line = std::str::from_utf8(body)
        .ok()
        .filter(|text| !text.trim_start().starts_with(['<', '{', '[']))
        .and_then(|text| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or_default();
    let line: String = line.chars().take(MAX_TEXT_REASON).collect();
    (String::new(), line.trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, body: &str) -> Refused {
        Refused {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn status_bodies_give_status_and_message() {
        let e = refusal(
            refused(
                404,
                r#"{"error": {"code": 404, "message": "Secret [projects/123/secrets/x] not found or has no versions.", "status": "NOT_FOUND"}}"#,
            ),
            "projects/p/secrets/x",
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "404 NOT_FOUND: Secret [projects/123/secrets/x] not found or has no versions: projects/p/secrets/x"
        );
        let e = read_refusal(
            refused(
                403,
                r#"{"error": {"code": 403, "message": "Permission denied.", "status": "PERMISSION_DENIED"}}"#,
            ),
            "s",
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e.message,
            format!("403 PERMISSION_DENIED: Permission denied: s{ACCESS_HINT}")
        );
    }

    #[test]
    fn disabled_and_destroyed_versions_are_named() {
        let body = |state: &str| {
            format!(
                r#"{{"error": {{"code": 400, "message": "Secret Version [projects/1/secrets/x/versions/1] is in {state} state.", "status": "FAILED_PRECONDITION"}}}}"#
            )
        };
        let e = refusal(refused(400, &body("DISABLED")), "projects/p/secrets/x (version 1)");
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "400 FAILED_PRECONDITION: Secret Version [projects/1/secrets/x/versions/1] is in DISABLED state: projects/p/secrets/x (version 1) (enable the version or pin another one)"
        );
        let e = refusal(refused(400, &body("DESTROYED")), "v");
        assert!(e.message.ends_with("(a destroyed version cannot be read: pin another version)"));
    }

    #[test]
    fn oauth_errors_and_text_give_their_reason() {
        let e = refusal(
            refused(
                400,
                r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#,
            ),
            "the access token",
        );
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert_eq!(
            e.message,
            "400 invalid_grant: Invalid JWT Signature: the access token"
        );
        let e = refusal(refused(404, "Not Found\n"), "t");
        assert_eq!(e.message, "404 Not Found: t");
        let e = refusal(refused(502, "<html><body>secret</body></html>"), "t");
        assert_eq!(e.message, "502 server error: t");
        assert_eq!(e.kind, ErrorKind::Transient);
    }
}
