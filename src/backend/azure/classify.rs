//! Key Vault's and Entra ID's refusals as neutral errors: the provider's error code and the
//! first line of its message, the status from `rest`, and a hint where one helps. A secret
//! that does not exist, or is disabled, is not an error but an absent key.
//!
//! Key Vault's errors: <https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes>.
//! Entra ID's: <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response-1>.

use serde::Deserialize;

use crate::backend::rest::Refused;
use crate::backend::{BackendError, ErrorKind};

/// What a 403 asks the user to check.
const ROLE_HINT: &str = "(give the identity secretsubst logs in as the Key Vault Secrets User role on the vault, or an access policy that allows get and list)";
/// What a 401 asks the user to check.
const TOKEN_HINT: &str = "(Key Vault refused the token: check that AZURE_TENANT_ID is the vault's tenant and AVP_AZURE_CLOUD its cloud)";
/// What an answer without Key Vault's error body asks the user to check.
const NO_VAULT_HINT: &str = "(no Key Vault answered: check the vault name and AVP_AZURE_VAULT_URL)";

/// `{"error": {"code", "message", "innererror": {"code"}}}`.
#[derive(Deserialize)]
struct KeyVaultError {
    error: KeyVaultErrorBody,
}

#[derive(Deserialize)]
struct KeyVaultErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    innererror: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(default)]
    code: String,
}

/// Whether a refused read says the vault holds no such secret (or version), or holds it
/// disabled: AVP's missing key, not an error.
pub fn absent(refused: &Refused) -> bool {
    let Ok(KeyVaultError { error }) = serde_json::from_slice::<KeyVaultError>(&refused.body) else {
        return false;
    };
    let inner = error.innererror.as_ref().map(|i| i.code.as_str());
    matches!(
        (refused.status, error.code.as_str(), inner),
        (404, "SecretNotFound", _) | (403, _, Some("SecretDisabled"))
    )
}

/// A refused Key Vault request as an error: `STATUS CODE (INNER): MESSAGE: WHAT (HINT)`.
pub fn refusal(refused: Refused, what: &str) -> BackendError {
    let parsed = serde_json::from_slice::<KeyVaultError>(&refused.body).ok();
    let status = refused.status;
    let reason = match &parsed {
        Some(KeyVaultError { error }) => {
            let code = match error.innererror.as_ref().map(|i| i.code.as_str()) {
                Some(inner) if !inner.is_empty() && inner != error.code => {
                    format!("{} ({inner})", error.code)
                }
                _ => error.code.clone(),
            };
            join(&code, first_sentence(&error.message))
        }
        None => String::new(),
    };
    let mut error = refused.into_error(&reason, what);
    let hint = match (status, parsed.is_some()) {
        (401, _) => Some(TOKEN_HINT),
        (403, _) => Some(ROLE_HINT),
        (_, false) if error.kind != ErrorKind::Transient => Some(NO_VAULT_HINT),
        _ => None,
    };
    if let Some(hint) = hint {
        error.message.push(' ');
        error.message.push_str(hint);
    }
    error
}

/// `{"error": "invalid_client", "error_description": "AADSTS7000215: …"}` (Entra ID, IMDS),
/// or `{"message": …}` (some managed identity endpoints).
#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    message: String,
}

/// A refused token request as an error: the OAuth error and the first sentence of its
/// description (`invalid_client: AADSTS7000215: Invalid client secret provided`). A
/// description that holds one of `credentials` is cut to its AADSTS code.
pub fn token_refusal(refused: Refused, what: &str, credentials: &[&str]) -> BackendError {
    let reason = match serde_json::from_slice::<TokenError>(&refused.body) {
        Ok(e) => {
            let description = match e.error_description.is_empty() {
                true => e.message,
                false => e.error_description,
            };
            let sentence = first_sentence(&description);
            let sentence = match credentials
                .iter()
                .any(|c| !c.is_empty() && sentence.contains(c))
            {
                true => aadsts_code(sentence).unwrap_or_default(),
                false => sentence,
            };
            join(&e.error, sentence)
        }
        Err(_) => String::new(),
    };
    refused.into_error(&reason, what)
}

/// The `AADSTS…` code an Entra ID message starts with.
pub fn aadsts_code(text: &str) -> Option<&str> {
    let start = text.find("AADSTS")?;
    let rest = &text[start..];
    let end = rest[6..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(rest.len(), |i| i + 6);
    (end > 6).then(|| &rest[..end])
}

fn join(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (_, true) => code.to_owned(),
        (true, false) => message.to_owned(),
        (false, false) => format!("{code}: {message}"),
    }
}

/// The first line, and of it the first sentence, without its final period: the rest of Key
/// Vault's and Entra ID's messages is trace IDs, role assignment details and links.
fn first_sentence(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default().trim();
    let sentence = line.find(". ").map_or(line, |end| &line[..end]);
    sentence.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, body: serde_json::Value) -> Refused {
        Refused {
            status,
            body: body.to_string().into_bytes(),
            retry_after: None,
        }
    }

    #[test]
    fn missing_and_disabled_secrets_are_absent_keys() {
        let not_found = refused(
            404,
            serde_json::json!({"error": {"code": "SecretNotFound", "message": "A secret with (name/id) k was not found in this key vault. If you recently deleted it…"}}),
        );
        assert!(absent(&not_found));
        let disabled = refused(
            403,
            serde_json::json!({"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.", "innererror": {"code": "SecretDisabled"}}}),
        );
        assert!(absent(&disabled));
    }

    #[test]
    fn refusals_name_code_first_sentence_and_what_to_check() {
        let rbac = refused(
            403,
            serde_json::json!({"error": {"code": "Forbidden", "message": "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=1;oid=2\r\n", "innererror": {"code": "ForbiddenByRbac"}}}),
        );
        assert!(!absent(&rbac));
        let e = refusal(rbac, "secret k in vault app");
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e.message,
            format!("403 Forbidden (ForbiddenByRbac): Caller is not authorized to perform action on resource: secret k in vault app {ROLE_HINT}")
        );
        let bad = refused(
            400,
            serde_json::json!({"error": {"code": "BadParameter", "message": "Invalid version."}}),
        );
        let e = refusal(bad, "x");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidConfig, "400 BadParameter: Invalid version: x")
        );
        let proxy = Refused {
            status: 404,
            body: b"<html>no route</html>".to_vec(),
            retry_after: None,
        };
        let e = refusal(proxy, "secret k in vault nothing");
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            format!("404 not found: secret k in vault nothing {NO_VAULT_HINT}")
        );
    }

    #[test]
    fn token_refusals_name_the_aadsts_code_never_a_credential() {
        let body = serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 0\r\n",
            "error_codes": [7000215]
        });
        let e = token_refusal(refused(401, body), "a token", &["s3cr3t"]);
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e.message,
            "401 invalid_client: AADSTS7000215: Invalid client secret provided: a token"
        );
        let echo = serde_json::json!({"error": "invalid_request", "error_description": "AADSTS90014: The value s3cr3t is wrong."});
        let e = token_refusal(refused(400, echo), "a token", &["s3cr3t"]);
        assert_eq!(e.message, "400 invalid_request: AADSTS90014: a token");
        assert_eq!(aadsts_code("AADSTS700016: Application"), Some("AADSTS700016"));
        assert_eq!(aadsts_code("no code"), None);
    }
}
