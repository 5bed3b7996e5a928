//! AWS SDK failures as neutral error kinds.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::backend::{BackendError, ErrorKind};

/// Maps an SDK failure to a neutral kind; the message names the secret and AWS's error code.
pub fn classify<E>(error: &SdkError<E>, what: &str) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            // An answer without a JSON error (a proxy's) has no code: its status still says
            // what happened.
            let (code, message) = match code_of(error) {
                Some((code, message)) => (code, message),
                None => (format!("HTTP {status}"), String::new()),
            };
            let mut e = error_for(&code, &message, what);
            if e.kind == ErrorKind::Unexpected {
                e.kind = match status {
                    401 | 403 => ErrorKind::PermissionDenied,
                    404 => ErrorKind::NotFound,
                    429 | 500..=599 => ErrorKind::Transient,
                    _ => ErrorKind::Unexpected,
                };
                e = e.with_policy_hint();
            }
            e.retry_after = service
                .raw()
                .headers()
                .get("retry-after")
                .and_then(crate::backend::retry_after);
            e
        }
        // The answer broke off or could not be read: worth another try.
        SdkError::ResponseError(_) => BackendError::new(
            ErrorKind::Transient,
            format!(
                "the answer of Secrets Manager for {what} could not be read: {}",
                chain(error)
            ),
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => BackendError::new(
            ErrorKind::Transient,
            format!(
                "cannot reach Secrets Manager for {what}: {}",
                chain(error)
            ),
        ),
        SdkError::ConstructionFailure(_) => BackendError::new(
            ErrorKind::InvalidConfig,
            format!(
                "cannot build the request for {what}: {}",
                chain(error)
            ),
        ),
        _ => BackendError::new(
            ErrorKind::Unexpected,
            format!("unexpected response for {what}"),
        ),
    }
}

/// The error code and message of a refusal: from the SDK's parse of the JSON error, else from
/// an XML `ErrorResponse` (the shape moto and the AWS query protocol use).
pub fn code_of<E>(error: &SdkError<E>) -> Option<(String, String)>
where
    E: ProvideErrorMetadata,
{
    let SdkError::ServiceError(service) = error else {
        return None;
    };
    if let Some(code) = service.err().code() {
        let message = service.err().message().unwrap_or_default();
        return Some((code.to_owned(), message.to_owned()));
    }
    let body = service.raw().body().bytes()?;
    let text = std::str::from_utf8(&body[..body.len().min(MAX_ERROR_BODY)]).ok()?;
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    Some((element("Code")?, element("Message").unwrap_or_default()))
}

/// Error bodies are short; a longer one is not read for a code.
const MAX_ERROR_BODY: usize = 8192;

pub fn error_for(code: &str, message: &str, what: &str) -> BackendError {
    let kind = match code {
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException" => ErrorKind::PermissionDenied,
        "ThrottlingException"
        | "TooManyRequestsException"
        | "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable" => ErrorKind::Transient,
        "InvalidRequestException"
            if message.contains("deleted") || message.contains("deletion") =>
        {
            ErrorKind::NotFound
        }
        "InvalidParameterException" | "InvalidRequestException" | "ValidationException" => {
            ErrorKind::InvalidConfig
        }
        _ => ErrorKind::Unexpected,
    };
    // Some endpoints repeat the code in the message and wrap it with runs of spaces.
    let message = message
        .rsplit_once(" operation: ")
        .map_or(message, |(_, rest)| rest)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_end_matches('.');
    let error = match message.is_empty() {
        true => BackendError::new(kind, format!("{code}: {what}")),
        false => BackendError::new(kind, format!("{code}: {what}: {message}")),
    };
    error.with_policy_hint()
}

/// The error and its sources, one line (connection refused, timeouts): no request content.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_kinds() {
        assert_eq!(
            error_for("ResourceNotFoundException", "x.", "db").kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            error_for("AccessDeniedException", "x", "db").kind,
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            error_for("ThrottlingException", "x", "db").kind,
            ErrorKind::Transient
        );
        let deleted = error_for(
            "InvalidRequestException",
            "secret is marked for deletion.",
            "db",
        );
        assert_eq!(deleted.kind, ErrorKind::NotFound);
        assert_eq!(
            deleted.message,
            "InvalidRequestException: db: secret is marked for deletion"
        );
        let wrapped = error_for(
            "InvalidRequestException",
            "An error occurred (InvalidRequestException) when calling the GetSecretValue operation: You tried to   perform it on a deleted secret",
            "db",
        );
        assert_eq!(
            wrapped.message,
            "InvalidRequestException: db: You tried to perform it on a deleted secret"
        );
    }
}
