//! `doctor`'s checks of an AWS Secrets Manager profile: the region and endpoint in use, that the
//! SDK finds credentials, and that Secrets Manager accepts them.

use aws_sdk_secretsmanager::config::ProvideCredentials as _;

use super::AwsBackend;
use super::classify::{chain, classify, code_of};
use crate::backend::{ErrorKind, Probe};

/// Codes of a refused signature or key: the credentials themselves are wrong.
/// <https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html>
const BAD_CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "IncompleteSignature",
];

impl AwsBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let region = match self.region_of("").await {
            Ok(region) => region,
            Err(e) => return vec![Probe::failed("region", e.message, None)],
        };
        let endpoint = match self.settings.has_endpoint() {
            true => " (the endpoint of AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL)",
            false => "",
        };
        let mut probes = vec![Probe::passed("region", format!("{region}{endpoint}"))];
        let client = self.client(&region).await;
        let Some(provider) = self.settings.sdk_config(&region).await.credentials_provider() else {
            probes.push(Probe::failed("credentials", "none configured", Some(CREDENTIALS_HINT.to_owned())));
            return probes;
        };
        match provider.provide_credentials().await {
            Ok(credentials) => {
                let from = match self.settings.has_keys() {
                    true => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                    false => "the SDK's default chain",
                };
                let expiry = match credentials
                    .expiry()
                    .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                {
                    Some(left) => format!(", expiring in {}s", left.as_secs()),
                    None => String::new(),
                };
                probes.push(Probe::passed("credentials", format!("from {from}{expiry}")));
            }
            Err(e) => {
                probes.push(Probe::failed(
                    "credentials",
                    format!("none found: {}", chain(&e)),
                    Some(CREDENTIALS_HINT.to_owned()),
                ));
                return probes;
            }
        }
        // Any signed call proves the credentials; ListSecrets needs no secret's name, and a
        // role that may only read its own secrets is refused it with a signature check passed.
        let answer = client.list_secrets().max_results(1).send().await;
        probes.push(match answer {
            Ok(_) => Probe::passed("access", "Secrets Manager accepts the credentials"),
            Err(e) if code_of(&e).is_some_and(|(code, _)| BAD_CREDENTIALS.contains(&code.as_str())) => {
                let (code, message) = code_of(&e).unwrap_or_default();
                Probe::failed(
                    "access",
                    format!("Secrets Manager refuses the credentials: {code}: {message}"),
                    Some(CREDENTIALS_HINT.to_owned()),
                )
            }
            Err(e) => {
                let error = classify(&e, "ListSecrets");
                match error.kind {
                    ErrorKind::PermissionDenied => Probe::passed(
                        "access",
                        "Secrets Manager accepts the credentials (ListSecrets is denied, which reads do not need)",
                    ),
                    ErrorKind::Transient => Probe::failed(
                        "access",
                        error.message,
                        Some(format!(
                            "check the network path to Secrets Manager in {region} (and AWS_ENDPOINT_URL_SECRETS_MANAGER when set)"
                        )),
                    ),
                    _ => Probe::failed("access", error.message, None),
                }
            }
        });
        probes
    }
}

const CREDENTIALS_HINT: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the repo-server's service account an IAM role (IRSA: the eks.amazonaws.com/role-arn annotation)";
