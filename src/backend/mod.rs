//! Secret backends: the `Backend` trait, neutral error kinds, and the registry that picks one
//! from `AVP_TYPE`. Only backends do I/O towards secret stores.

#[cfg(feature = "aws")]
mod aws;
mod file;
#[cfg(feature = "vault")]
mod vault;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::secret::{SecretData, SecretRef};

#[async_trait]
pub trait Backend: Send + Sync {
    /// Authenticates once before any fetch (a Vault login); most backends need nothing.
    async fn login(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Fetches every key of one secret.
    async fn get(&self, secret: &SecretRef) -> Result<SecretData, BackendError>;

    /// How many secrets one `get_batch` call may fetch; 1 for backends without a batch API.
    fn batch_limit(&self) -> usize {
        1
    }

    /// Fetches several secrets with as few requests as the backend's API allows.
    async fn get_batch(&self, secrets: &[SecretRef]) -> Batch {
        let results = futures::future::join_all(secrets.iter().map(|s| self.get(s))).await;
        Batch {
            requests: results.len(),
            results,
        }
    }
}

/// The results of `get_batch`, in the order asked, and the requests it took.
pub struct Batch {
    pub results: Vec<Result<SecretData, BackendError>>,
    pub requests: usize,
}

/// What went wrong, in terms the engine acts on: only `Transient` is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    PermissionDenied,
    InvalidConfig,
    Transient,
    Unexpected,
}

/// A backend failure. The message names what failed, never a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
    /// How long the server asked to wait before a retry (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

/// A `Retry-After` header in seconds (what Vault, AWS and their proxies send); an HTTP date is
/// not honoured. The resolver caps the wait.
pub fn retry_after(value: &str) -> Option<std::time::Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    std::time::Duration::try_from_secs_f64(seconds).ok()
}

impl BackendError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {}

/// A configured backend and the name its errors are prefixed with.
pub struct Selected {
    pub name: &'static str,
    pub backend: Arc<dyn Backend>,
}

type Constructor = fn(&Config) -> anyhow::Result<Arc<dyn Backend>>;

/// Every implemented backend, by its `AVP_TYPE` name.
const REGISTRY: &[(&str, Constructor)] = &[
    #[cfg(feature = "aws")]
    ("awssecretsmanager", aws::build),
    ("file", file::build),
    #[cfg(feature = "vault")]
    ("vault", vault::build),
];

/// AVP's backend names that secretsubst does not implement yet.
const PLANNED: &[&str] = &[
    "gcpsecretmanager",
    "azurekeyvault",
    "sops",
    "1passwordconnect",
    "kubernetessecret",
    "ibmsecretsmanager",
    "yandexcloudlockbox",
    "keepersecretsmanager",
    "delineasecretserver",
];

/// Builds the backend named by `AVP_TYPE`.
pub fn select(config: &Config) -> anyhow::Result<Selected> {
    let wanted = config.backend_type.as_str();
    if wanted.is_empty() {
        // AVP's wording, so users' searches still match, with what it leaves out.
        anyhow::bail!(
            "Must provide a supported Vault Type, received nothing: AVP_TYPE is not set (valid types: {})",
            supported()
        );
    }
    if let Some((name, build)) = REGISTRY.iter().find(|(name, _)| *name == wanted) {
        return Ok(Selected {
            name,
            backend: build(config)?,
        });
    }
    if ["awssecretsmanager", "vault"].contains(&wanted) {
        anyhow::bail!("AVP_TYPE {wanted}: this build of secretsubst was made without that backend");
    }
    if PLANNED.contains(&wanted) {
        anyhow::bail!("AVP_TYPE {wanted} is not supported by this version of secretsubst");
    }
    anyhow::bail!(
        "Must provide a supported Vault Type, received {wanted} (valid types: {})",
        supported()
    )
}

fn supported() -> String {
    REGISTRY
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}
