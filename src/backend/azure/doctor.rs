//! `doctor`'s checks of an Azure Key Vault profile: which credential DefaultAzureCredential's
//! order picks, and that Entra ID (or the managed identity endpoint) issues a Key Vault token
//! for it. No vault is read: `doctor` knows no vault name, so the token's claims show whose it
//! is and for what.

use super::AzureBackend;
use crate::backend::Probe;

impl AzureBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let mut probes = vec![Probe::passed(
            "credentials",
            self.settings.credential.describe(),
        )];
        probes.push(match self.token().await {
            Ok(token) => Probe::passed("token", self.token_found(token)),
            Err(e) => {
                let hint = self.token_hint(&e);
                Probe::failed("token", e.message, hint)
            }
        });
        probes
    }

    /// What the token's claims say: tenant, audience, client and time left.
    fn token_found(&self, token: &super::auth::AccessToken) -> String {
        let Some(claims) = token.claims() else {
            return format!(
                "issued for {} (not a JWT, so its claims cannot be shown)",
                self.settings.cloud.resource()
            );
        };
        let audience = match &claims.aud {
            serde_json::Value::String(aud) => aud.clone(),
            other => other.to_string(),
        };
        let mut found = format!("tenant {}, audience {audience}", claims.tid);
        if !claims.appid.is_empty() {
            found.push_str(&format!(", client {}", claims.appid));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(exp) = claims.exp {
            found.push_str(&match exp.checked_sub(now) {
                Some(left) => format!(", expires in {left}s"),
                None => ", expired".to_owned(),
            });
        }
        found
    }
}
