//! `doctor`'s checks of a Vault profile: the server answers, the login works and what its token
//! may do, and which KV mounts the token sees. Each failure comes with a hint naming the
//! settings to look at.

use std::collections::BTreeMap;

use rustify_derive::Endpoint;
use serde::Deserialize;
use vaultrs::api::token::requests::LookupTokenSelfRequest;

use super::VaultBackend;
use super::auth::Auth;
use super::kv::KvVersion;
use crate::backend::{BackendError, ErrorKind, Probe};

/// <https://developer.hashicorp.com/vault/api-docs/system/health>: unauthenticated; a standby
/// answers 200 too, since it forwards reads.
#[derive(Debug, Endpoint)]
#[endpoint(path = "sys/health")]
struct Health {
    #[endpoint(query)]
    standbyok: bool,
    #[endpoint(query)]
    perfstandbyok: bool,
}

#[derive(Deserialize)]
struct HealthAnswer {
    #[serde(default)]
    version: String,
    #[serde(default)]
    sealed: bool,
    #[serde(default)]
    standby: bool,
}

/// <https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts>: the mounts the
/// token can use.
#[derive(Debug, Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts")]
struct ListMounts {}

#[derive(Deserialize)]
struct Mounts {
    data: MountsData,
}

#[derive(Deserialize)]
struct MountsData {
    #[serde(default)]
    secret: BTreeMap<String, MountEntry>,
}

#[derive(Deserialize)]
struct MountEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

/// The fields of `auth/token/lookup-self` worth showing; never `id` (the token itself).
/// <https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self>
#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    ttl: u64,
}

impl VaultBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let mut probes = vec![self.connect().await];
        if probes[0].outcome.is_ok() {
            probes.push(self.check_login().await);
        }
        if probes.iter().all(|p| p.outcome.is_ok()) {
            probes.push(self.kv_mounts().await);
        }
        probes
    }

    async fn connect(&self) -> Probe {
        let endpoint = Health {
            standbyok: true,
            perfstandbyok: true,
        };
        let base = self.transport.base.as_str().trim_end_matches('/').to_owned();
        match self
            .transport
            .send(&endpoint, "", None, "the health check")
            .await
        {
            Ok(body) => match serde_json::from_slice::<HealthAnswer>(&body) {
                Ok(health) => Probe::passed(
                    "connect",
                    format!(
                        "{base} answers: Vault {}, {}, {}",
                        health.version,
                        if health.sealed { "sealed" } else { "unsealed" },
                        if health.standby { "standby" } else { "active" },
                    ),
                ),
                Err(_) => Probe::failed(
                    "connect",
                    format!("{base} answers, but not as Vault does to sys/health"),
                    Some("is VAULT_ADDR the address of Vault itself (not a UI or a proxy's page)?".to_owned()),
                ),
            },
            Err(e) => Probe::failed("connect", e.message.clone(), connect_hint(&e)),
        }
    }

    async fn check_login(&self) -> Probe {
        let auth = &self.settings.auth;
        let method = match auth {
            Auth::Token(_) => "token (VAULT_TOKEN)".to_owned(),
            Auth::Kubernetes { token_path, .. } => format!(
                "{} at {} with the service account token {token_path}",
                auth.method(),
                auth.mount()
            ),
            other => format!("{} at {}", other.method(), other.mount()),
        };
        if let Err(e) = self.log_in().await {
            return Probe::failed("login", e.message.clone(), login_hint(auth, &e));
        }
        match self
            .read_json::<Lookup, _>("the token lookup", &LookupTokenSelfRequest {})
            .await
        {
            Ok(Lookup { data }) => {
                let ttl = match data.ttl {
                    0 => "no expiry".to_owned(),
                    secs => format!("expires in {}", duration(secs)),
                };
                Probe::passed(
                    "login",
                    format!(
                        "{method}: policies {}; {ttl}",
                        data.policies.join(", ")
                    ),
                )
            }
            Err(e) => Probe::failed("login", e.message.clone(), login_hint(auth, &e)),
        }
    }

    /// `endpoint`'s answer, sent with the token in the login's namespace.
    async fn read_json<T: serde::de::DeserializeOwned, E: rustify::endpoint::Endpoint>(
        &self,
        what: &str,
        endpoint: &E,
    ) -> Result<T, BackendError> {
        let body = self
            .with_token(self.settings.namespace.as_deref(), what, endpoint)
            .await?;
        serde_json::from_slice(&body).map_err(|_| {
            BackendError::new(
                ErrorKind::Unexpected,
                format!("unexpected response from Vault for {what}"),
            )
        })
    }

    async fn kv_mounts(&self) -> Probe {
        let mounts = match self
            .read_json::<Mounts, _>("the mount listing", &ListMounts {})
            .await
        {
            Ok(mounts) => mounts.data.secret,
            Err(e) => return Probe::failed("kv", e.message, None),
        };
        let kv: Vec<(String, KvVersion)> = mounts
            .into_iter()
            .filter(|(_, m)| m.kind == "kv" || m.kind == "generic")
            .map(|(path, m)| {
                let v2 = m
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .is_some_and(|v| v == "2");
                (path, if v2 { KvVersion::V2 } else { KvVersion::V1 })
            })
            .collect();
        if kv.is_empty() {
            return Probe::failed(
                "kv",
                "the token can use no KV secrets engine",
                Some(
                    "grant its policy read access to paths under a KV mount, or check VAULT_NAMESPACE"
                        .to_owned(),
                ),
            );
        }
        let listed = kv
            .iter()
            .map(|(path, v)| format!("{path} (kv {})", version_name(*v)))
            .collect::<Vec<_>>()
            .join(", ");
        match self.settings.kv_version {
            Some(forced) if kv.iter().all(|(_, v)| *v != forced) => Probe::failed(
                "kv",
                format!(
                    "AVP_KV_VERSION is {} but the token's KV mounts are {listed}",
                    version_name(forced)
                ),
                Some("unset AVP_KV_VERSION to detect each mount's version".to_owned()),
            ),
            _ => Probe::passed("kv", listed),
        }
    }
}

fn version_name(kv: KvVersion) -> &'static str {
    match kv {
        KvVersion::V1 => "v1",
        KvVersion::V2 => "v2",
    }
}

/// `3h0m0s` style, as Vault prints TTLs.
fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{h}h{m}m{s}s")
}

/// What to look at when Vault cannot be reached, from the transport's error.
fn connect_hint(error: &BackendError) -> Option<String> {
    let text = error.message.to_lowercase();
    let hint = if text.contains("certificate") || text.contains("unknownissuer") {
        "VAULT_CACERT (or VAULT_CAPATH) must hold the CA that signed Vault's certificate, and VAULT_ADDR's host (or VAULT_TLS_SERVER_NAME) must be a name in it"
    } else if text.contains("corrupt message") || text.contains("invalidcontenttype") {
        "the server answered without TLS: VAULT_ADDR says https:// where it speaks plain HTTP"
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        "the host of VAULT_ADDR does not resolve: check the name, and the sidecar's DNS"
    } else if text.contains("connection refused") {
        "nothing listens at VAULT_ADDR: check its host and port"
    } else if text.contains("timed out") {
        "no answer in time: a firewall or NetworkPolicy may drop the repo-server's traffic to Vault (VAULT_CLIENT_TIMEOUT sets the wait)"
    } else if text.starts_with("503") {
        "Vault is sealed or has no active node: unseal it"
    } else if text.starts_with("501") {
        "Vault is not initialized"
    } else if error.kind == ErrorKind::Transient {
        "check VAULT_ADDR, and that the repo-server can reach it (NetworkPolicy, HTTPS_PROXY)"
    } else {
        return None;
    };
    Some(hint.to_owned())
}

/// What to look at when the login or the token is refused.
fn login_hint(auth: &Auth, error: &BackendError) -> Option<String> {
    if !matches!(
        error.kind,
        ErrorKind::PermissionDenied | ErrorKind::InvalidConfig | ErrorKind::NotFound
    ) {
        return None;
    }
    let credentials = match auth {
        Auth::Token(_) => {
            return Some(
                "VAULT_TOKEN is not valid here: expired, revoked, or from another Vault or namespace (VAULT_NAMESPACE)"
                    .to_owned(),
            );
        }
        Auth::AppRole { .. } => "AVP_ROLE_ID and AVP_SECRET_ID (a secret_id may have expired)",
        Auth::UserPass { .. } => "AVP_USERNAME and AVP_PASSWORD",
        Auth::Kubernetes { .. } => {
            "AVP_K8S_ROLE, and that the role binds the repo-server's service account and namespace"
        }
        Auth::GitHub { .. } => {
            "AVP_GITHUB_TOKEN, and that its user is in the organization the mount trusts"
        }
        Auth::Cert { .. } => "VAULT_CLIENT_CERT, VAULT_CLIENT_KEY and AVP_CERT_ROLE",
    };
    Some(format!(
        "check {credentials}; and that the auth method is mounted at {} (AVP_MOUNT_PATH, VAULT_NAMESPACE)",
        auth.mount()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_like_vaults() {
        assert_eq!(duration(3600), "1h0m0s");
        assert_eq!(duration(2_764_799), "767h59m59s");
    }

    #[test]
    fn transport_failures_get_the_hint_of_their_cause() {
        let hint = |message: &str| {
            connect_hint(&BackendError::new(ErrorKind::Transient, message)).unwrap()
        };
        assert!(hint("cannot reach Vault for the health check: client error (Connect): tcp connect error: Connection refused (os error 111)").starts_with("nothing listens"));
        assert!(hint("cannot reach Vault for the health check: invalid peer certificate: UnknownIssuer").starts_with("VAULT_CACERT"));
        assert!(hint("cannot reach Vault for the health check: received corrupt message of type InvalidContentType").starts_with("the server answered without TLS"));
        assert!(hint("cannot reach Vault: dns error: failed to lookup address information").contains("does not resolve"));
        assert!(hint("503 service unavailable (sealed or in standby?): the health check").starts_with("Vault is sealed"));
    }
}
