//! One Entra ID access token per run for Key Vault, from the credential of the profile, and
//! what `doctor` shows of it (its claims, never the token).

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use url::Url;
use url::form_urlencoded::Serializer;

use super::AzureBackend;
use super::classify::{aadsts_code, token_refusal};
use super::settings::Credential;
use crate::backend::rest;
use crate::backend::{BackendError, ErrorKind};
use crate::setting_file;

/// The managed identity endpoint of Azure VMs and AKS nodes.
/// <https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// A link-local address answers at once where it exists; elsewhere the run should not wait
/// the full request timeout for it.
const IMDS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An access token; `Debug` never shows it.
pub struct AccessToken(String);

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl AccessToken {
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The claims of the token's JWT payload, read without verifying it (Key Vault verifies
    /// it): what `doctor` shows.
    pub fn claims(&self) -> Option<Claims> {
        let payload = self.0.split('.').nth(1)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The claims of an Entra ID access token that say whose it is and for what.
#[derive(Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub tid: String,
    #[serde(default)]
    pub aud: serde_json::Value,
    /// The client of a v1 token (`appid`) or a v2 token (`azp`).
    #[serde(default, alias = "azp")]
    pub appid: String,
    pub exp: Option<u64>,
}

/// What every token endpoint answers (Entra ID, App Service, IMDS); the rest is not needed.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl AzureBackend {
    /// The run's token, requested on first need; concurrent callers share one request, and a
    /// failed request leaves the next caller to try again.
    pub async fn token(&self) -> Result<&AccessToken, BackendError> {
        self.token
            .get_or_try_init(|| async {
                let token = self.request_token().await?;
                tracing::debug!(
                    "azurekeyvault: token from the {}",
                    self.settings.credential.describe()
                );
                Ok(token)
            })
            .await
    }

    async fn request_token(&self) -> Result<AccessToken, BackendError> {
        let resource = self.settings.cloud.resource();
        let (request, service, what, credentials) = match &self.settings.credential {
            Credential::ClientSecret {
                tenant,
                client_id,
                secret,
            } => {
                let form = [("client_secret", secret.as_str())];
                let (request, what) = self.entra(tenant, client_id, &form)?;
                (request, "Microsoft Entra ID", what, vec![secret.clone()])
            }
            Credential::WorkloadIdentity {
                tenant,
                client_id,
                token_file,
            } => {
                let assertion = setting_file::read_to_string(token_file, setting_file::MAX_SMALL)
                    .map_err(|e| {
                        BackendError::new(
                            ErrorKind::InvalidConfig,
                            format!("cannot read AZURE_FEDERATED_TOKEN_FILE {token_file}: {e}"),
                        )
                    })?;
                let assertion = assertion.trim().to_owned();
                let form = [
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ];
                let (request, what) = self.entra(tenant, client_id, &form)?;
                (request, "Microsoft Entra ID", what, vec![assertion])
            }
            // <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference>
            Credential::AppService {
                endpoint,
                header,
                client_id,
            } => {
                let url = with_query(
                    endpoint,
                    &[
                        ("api-version", Some("2019-08-01")),
                        ("resource", Some(&resource)),
                        ("client_id", client_id.as_deref()),
                    ],
                );
                let mut value = reqwest::header::HeaderValue::from_str(header).map_err(|_| {
                    BackendError::new(
                        ErrorKind::InvalidConfig,
                        "IDENTITY_HEADER cannot be sent in an HTTP header",
                    )
                })?;
                value.set_sensitive(true);
                (
                    self.http.get(url).header("X-IDENTITY-HEADER", value),
                    "the managed identity endpoint",
                    format!("a token from IDENTITY_ENDPOINT {}", endpoint.as_str()),
                    vec![header.clone()],
                )
            }
            // <https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http>
            Credential::Imds { client_id } => {
                let base = Url::parse(IMDS).expect("a valid URL");
                let url = with_query(
                    &base,
                    &[
                        ("api-version", Some("2018-02-01")),
                        ("resource", Some(&resource)),
                        ("client_id", client_id.as_deref()),
                    ],
                );
                (
                    self.http
                        .get(url)
                        .header("Metadata", "true")
                        .timeout(IMDS_TIMEOUT),
                    "the instance metadata service (169.254.169.254)",
                    "a managed identity token".to_owned(),
                    Vec::new(),
                )
            }
        };
        let credentials: Vec<&str> = credentials.iter().map(String::as_str).collect();
        match rest::send(request, service, &what).await? {
            Ok(body) => {
                let answer: TokenAnswer = rest::json(&body, service, &what)?;
                // It goes into every request's header.
                if answer.access_token.is_empty()
                    || !answer.access_token.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(BackendError::new(
                        ErrorKind::Unexpected,
                        format!("unexpected response from {service} for {what}"),
                    ));
                }
                Ok(AccessToken(answer.access_token))
            }
            Err(refused) => Err(token_refusal(refused, &what, &credentials)),
        }
    }

    /// A client credentials request to `{authority}/{tenant}/oauth2/v2.0/token` with
    /// `credential` (a secret or a federated assertion), and what it is called in errors.
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#get-a-token>
    fn entra(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &[(&str, &str)],
    ) -> Result<(reqwest::RequestBuilder, String), BackendError> {
        let mut url = self.settings.authority.clone();
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| {
                BackendError::new(
                    ErrorKind::InvalidConfig,
                    "AZURE_AUTHORITY_HOST cannot hold a path",
                )
            })?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        let scope = format!("{}/.default", self.settings.cloud.resource());
        let mut form = Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("scope", &scope);
        for (name, value) in credential {
            form.append_pair(name, value);
        }
        let request = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.finish());
        let what = format!(
            "a token for client {} in tenant {}",
            crate::error::excerpt(client_id),
            crate::error::excerpt(tenant)
        );
        Ok((request, what))
    }

    /// What to check when the token request failed, from its error and the credential.
    pub fn token_hint(&self, error: &BackendError) -> Option<String> {
        if error.kind == ErrorKind::Transient {
            return Some(match &self.settings.credential {
                Credential::Imds { .. } => "no credential is configured and the instance metadata service does not answer: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or use Azure Workload Identity (AZURE_FEDERATED_TOKEN_FILE)".to_owned(),
                Credential::AppService { .. } => "check IDENTITY_ENDPOINT, and that the identity endpoint is reachable from the repo-server".to_owned(),
                _ => "check AZURE_AUTHORITY_HOST (or AVP_AZURE_CLOUD), and that the repo-server can reach it (NetworkPolicy, HTTPS_PROXY)".to_owned(),
            });
        }
        let code = aadsts_code(&error.message);
        let hint = match (&self.settings.credential, code) {
            (_, Some("AADSTS90002" | "AADSTS900023")) => {
                "AZURE_TENANT_ID names no tenant of this cloud: check it and AVP_AZURE_CLOUD"
            }
            (_, Some("AADSTS700016")) => {
                "AZURE_CLIENT_ID names no application in the tenant AZURE_TENANT_ID: check both"
            }
            (Credential::ClientSecret { .. }, Some("AADSTS7000215" | "AADSTS7000222")) => {
                "AZURE_CLIENT_SECRET must be the value of a current client secret of the application (not its ID; it may have expired)"
            }
            (Credential::WorkloadIdentity { .. }, Some("AADSTS700024")) => {
                "the token in AZURE_FEDERATED_TOKEN_FILE has expired: the kubelet refreshes it; check that the file is the projected service account token"
            }
            (Credential::WorkloadIdentity { .. }, _) => {
                "Azure Workload Identity: the repo-server's service account needs the annotation azure.workload.identity/client-id set to AZURE_CLIENT_ID, its pod the label azure.workload.identity/use: \"true\", and the identity a federated credential for system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT with the cluster's OIDC issuer"
            }
            (Credential::ClientSecret { .. }, _) => {
                "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            }
            (Credential::AppService { .. }, _) => {
                "check IDENTITY_HEADER, and for a user-assigned identity AZURE_CLIENT_ID"
            }
            (Credential::Imds { .. }, _) => {
                "assign a managed identity to the VM or node pool; for a user-assigned identity set AZURE_CLIENT_ID"
            }
        };
        Some(hint.to_owned())
    }
}

/// `base` with the query parameters that have a value.
fn with_query(base: &Url, params: &[(&str, Option<&str>)]) -> Url {
    let mut url = base.clone();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> AccessToken {
        let encode = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        AccessToken(format!(
            "{}.{}.sig",
            encode(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            encode(&claims)
        ))
    }

    #[test]
    fn claims_are_read_from_v1_and_v2_tokens() {
        let v1 = jwt(serde_json::json!({"aud": "https://vault.azure.net", "tid": "t", "appid": "a", "exp": 5}));
        let claims = v1.claims().unwrap();
        assert_eq!((claims.tid.as_str(), claims.appid.as_str(), claims.exp), ("t", "a", Some(5)));
        assert_eq!(claims.aud, "https://vault.azure.net");
        let v2 = jwt(serde_json::json!({"aud": "cfa8b339-82a2-471a-a3c9-0fc0be7a4093", "tid": "t", "azp": "b"}));
        assert_eq!(v2.claims().unwrap().appid, "b");
        assert!(AccessToken("opaque".into()).claims().is_none());
        assert_eq!(format!("{v1:?}"), "AccessToken([redacted])");
    }

    #[test]
    fn queries_leave_out_unset_parameters() {
        let base = Url::parse(IMDS).unwrap();
        let url = with_query(&base, &[("api-version", Some("2018-02-01")), ("resource", Some("https://vault.azure.net")), ("client_id", None)]);
        assert_eq!(
            url.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
        );
    }
}
