//! `doctor`'s checks of an IBM Secrets Manager profile: IAM exchanges the credential for a
//! token, and the instance accepts it (one listing of the secret groups). Each failure comes
//! with a hint naming the settings to look at.

use super::IbmBackend;
use super::settings::Credential;
use crate::backend::{BackendError, ErrorKind, Probe};

impl IbmBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let iam = self.api.iam.as_str().trim_end_matches('/');
        let token = match self.token().await {
            Ok(token) => token,
            Err(e) => {
                let hint = token_hint(&self.credential, &e, iam);
                return vec![Probe::failed("token", e.message, Some(hint))];
            }
        };
        let expiry = match token.expires_in {
            Some(seconds) => format!(", valid for {seconds}s"),
            None => String::new(),
        };
        let mut probes = vec![Probe::passed(
            "token",
            format!("{iam} exchanged {} for a token{expiry}", self.credential.describe()),
        )];
        let instance = self.api.instance.as_str().trim_end_matches('/');
        probes.push(match self.api.secret_groups(token).await {
            Ok(groups) => {
                let listed = match groups.len() {
                    1 => "1 secret group".to_owned(),
                    n => format!("{n} secret groups"),
                };
                Probe::passed("access", format!("{instance} lists {listed}"))
            }
            Err(e) => {
                let hint = access_hint(&e);
                Probe::failed("access", e.message, Some(hint))
            }
        });
        probes
    }
}

/// What to look at when IAM gives no token.
fn token_hint(credential: &Credential, error: &BackendError, iam: &str) -> String {
    match (error.kind, credential) {
        (ErrorKind::Transient, _) => format!(
            "IAM at {iam} cannot be reached: check IBMCLOUD_IAM_API_ENDPOINT, and that the repo-server may reach it (NetworkPolicy, HTTPS_PROXY)"
        ),
        (_, Credential::ApiKey(_)) => format!(
            "AVP_IBM_API_KEY must be a valid API key of a service ID of the account, for IAM at {iam} (IBMCLOUD_IAM_API_ENDPOINT)"
        ),
        (_, Credential::TrustedProfile { .. }) => "the trusted profile (AVP_IBM_TRUSTED_PROFILE_ID or AVP_IBM_TRUSTED_PROFILE_NAME) must trust this cluster's compute resources (the repo-server's namespace and service account), and AVP_IBM_CR_TOKEN_PATH must hold the projected service account token".to_owned(),
    }
}

/// What to look at when the instance refuses or cannot be reached.
fn access_hint(error: &BackendError) -> String {
    match error.kind {
        ErrorKind::PermissionDenied => "give the service ID (or trusted profile) an access policy on this Secrets Manager instance with the SecretsReader service role".to_owned(),
        _ => "check AVP_IBM_INSTANCE_URL: the instance's endpoint, https://INSTANCE_ID.REGION.secrets-manager.appdomain.cloud, in the instance's own region".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_kind_of_failure() {
        let refused = BackendError::new(ErrorKind::InvalidConfig, "400 BXNIM0415E");
        let key = Credential::ApiKey("k".into());
        assert!(token_hint(&key, &refused, "https://iam.cloud.ibm.com").starts_with("AVP_IBM_API_KEY"));
        let down = BackendError::new(ErrorKind::Transient, "cannot reach");
        assert!(token_hint(&key, &down, "x").starts_with("IAM at x cannot be reached"));
        let denied = BackendError::new(ErrorKind::PermissionDenied, "403");
        assert!(access_hint(&denied).contains("SecretsReader"));
        assert!(access_hint(&down).starts_with("check AVP_IBM_INSTANCE_URL"));
    }
}
