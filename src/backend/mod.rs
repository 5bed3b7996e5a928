//! Secret backends: the `Backend` trait, neutral error kinds, and the registry of backend types.
//! Only backends do I/O towards secret stores; each lives in its own folder.
//!
//! Adding a backend is one folder (its `Service` implementation, typed settings and client) and
//! one row in [`REGISTRY`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{SettingKey, Settings};
use crate::secret::{SecretData, SecretRef};

#[async_trait]
pub trait Backend: Send + Sync {
    /// Authenticates once before any fetch (a Vault login); most backends need nothing.
    async fn login(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Fetches one secret for `keys`, the keys the manifests read from it (never empty). Most
    /// backends read the whole secret; those whose keys are secrets of their own (an Azure
    /// vault's, an IBM group's) read only these.
    async fn get(
        &self,
        secret: &SecretRef,
        keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError>;

    /// How to read `secrets`: groups of indexes into it, each read by one [`Backend::get_batch`]
    /// call (groups of one by [`Backend::get`]). Backends without a batch API read each alone.
    async fn batches(&self, secrets: &[SecretRef]) -> Vec<Vec<usize>> {
        (0..secrets.len()).map(|i| vec![i]).collect()
    }

    /// Fetches several secrets, each with its keys, with as few requests as the backend's API
    /// allows.
    async fn get_batch(&self, secrets: &[Wanted<'_>]) -> Batch {
        let results =
            futures::future::join_all(secrets.iter().map(|(s, keys)| self.get(s, keys))).await;
        Batch {
            requests: results.len(),
            results,
        }
    }

    /// Whether it talks to a server; those that read only local files say not, so that a run
    /// using only them starts no network machinery.
    fn uses_network(&self) -> bool {
        true
    }

    /// `doctor`'s checks, in order, up to the first that fails: what a person needs to see to
    /// tell a wrong address from a refused login. The default is the login.
    async fn diagnose(&self) -> Vec<Probe> {
        vec![Probe::of(
            "login",
            self.login().await.map(|()| "ok".to_owned()),
        )]
    }
}

/// One step of `doctor`'s check of a backend: what it found, or why it failed and what to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub step: &'static str,
    pub outcome: Result<String, Trouble>,
}

/// A failed step: the backend's error (never a value or credential) and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trouble {
    pub message: String,
    pub hint: Option<String>,
}

impl Probe {
    pub fn passed(step: &'static str, found: impl Into<String>) -> Probe {
        Probe {
            step,
            outcome: Ok(found.into()),
        }
    }

    pub fn failed(step: &'static str, message: impl Into<String>, hint: Option<String>) -> Probe {
        Probe {
            step,
            outcome: Err(Trouble {
                message: message.into(),
                hint,
            }),
        }
    }

    /// A step's result, the error's message as the failure.
    pub fn of(step: &'static str, result: Result<String, BackendError>) -> Probe {
        match result {
            Ok(found) => Probe::passed(step, found),
            Err(e) => Probe::failed(step, e.message, None),
        }
    }
}

/// One secret to read, and the keys the manifests read from it.
pub type Wanted<'a> = (&'a SecretRef, &'a BTreeSet<String>);

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

impl ErrorKind {
    /// The kind of an HTTP status (DESIGN: 400, 401, 403 and 404 are never retried; 429 and
    /// 5xx are).
    pub fn of_status(status: u16) -> ErrorKind {
        match status {
            404 | 410 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::PermissionDenied,
            400 | 405 | 409 | 412 | 422 => ErrorKind::InvalidConfig,
            408 | 429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Unexpected,
        }
    }
}

/// A backend failure as the backend reports it. The message names what failed, never a secret
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
    /// How long the server asked to wait before a retry (`Retry-After`).
    pub retry_after: Option<Duration>,
}

/// A `Retry-After` header in seconds (what Vault, AWS and their proxies send); an HTTP date is
/// not honoured. The resolver caps the wait.
pub fn retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
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

impl BackendError {
    /// For backends whose identity has a policy (Vault, AWS): a refusal says where to look.
    pub fn with_policy_hint(mut self) -> Self {
        if self.kind == ErrorKind::PermissionDenied {
            self.message
                .push_str(" (check the policy of the identity secretsubst logs in as)");
        }
        self
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {}

/// Which backend an error came from: its type and, when profiles are configured, its profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The `AVP_TYPE` (`vault`), or `""` when the profile has none.
    pub backend: &'static str,
    pub profile: String,
    /// Whether the profile is named in messages (only when profiles are configured).
    pub named: bool,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = if self.backend.is_empty() {
            "backend"
        } else {
            self.backend
        };
        match self.named {
            true => write!(f, "{backend} ({})", self.profile),
            false => f.write_str(backend),
        }
    }
}

/// A failure as the engine reports it: the backend's error with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub origin: Origin,
    /// The secret read (`secret/data/app (version 2)`); `None` for a login or the set-up.
    pub path: Option<String>,
    /// What failed, with a hint where one helps.
    pub message: String,
}

impl Failure {
    pub fn new(origin: &Origin, path: Option<String>, source: &BackendError) -> Failure {
        Failure {
            kind: source.kind,
            origin: origin.clone(),
            path,
            message: source.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for Failure {}

/// An annotation a backend reads per manifest (`avp.kubernetes.io/kv-version`): it becomes part
/// of the [`SecretRef`]s of that backend, so secrets read with other options are fetched apart.
pub struct BackendOption {
    /// The annotation's name after `avp.kubernetes.io/`.
    pub name: &'static str,
    /// Why a value cannot be used; checked for every manifest that carries the annotation.
    pub check: fn(&str) -> Result<(), String>,
}

/// What building a backend may depend on besides its settings.
pub struct Context<'a> {
    /// The profile's name, so that its cached credentials are its own.
    pub profile: &'a str,
    /// Whether credentials may be cached between runs (off with `--disable-token-cache`).
    pub cache_credentials: bool,
}

/// One backend type, as its folder implements it (opendal's builder discipline).
pub trait Service {
    /// The `AVP_TYPE` value.
    const TYPE: &'static str;
    /// The annotations it reads.
    const OPTIONS: &'static [BackendOption] = &[];
    /// How a key absent from a secret is named in errors.
    const MISSING: &'static str = "missing value";
    /// The settings it reads, for `doctor`.
    const SETTINGS: &'static [SettingKey];

    /// One spelling for each secret (`argocd:db` for `db`), so that it is read once.
    fn canonical(path: &str) -> String {
        path.to_owned()
    }
    /// Its typed settings; `Debug` must redact credentials.
    type Settings: fmt::Debug;

    /// Reads the profile's keys; the only place a backend looks at settings.
    fn parse(settings: &Settings) -> anyhow::Result<Self::Settings>;

    fn build(settings: Self::Settings, context: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>>;
}

/// A registry row: a backend type with its options and constructor.
pub struct Type {
    pub name: &'static str,
    pub options: &'static [BackendOption],
    pub missing: &'static str,
    pub settings: &'static [SettingKey],
    pub canonical: fn(&str) -> String,
    build: fn(&Settings, &Context<'_>) -> anyhow::Result<Arc<dyn Backend>>,
}

impl Type {
    pub fn build(
        &self,
        settings: &Settings,
        context: &Context<'_>,
    ) -> anyhow::Result<Arc<dyn Backend>> {
        (self.build)(settings, context)
    }
}

const fn row<S: Service>() -> Type {
    Type {
        name: S::TYPE,
        options: S::OPTIONS,
        missing: S::MISSING,
        settings: S::SETTINGS,
        canonical: S::canonical,
        build: |settings, context| S::build(S::parse(settings)?, context),
    }
}

/// Declares each backend's folder and its registry row, so that adding a backend is one line.
macro_rules! registry {
    ($($(#[$cfg:meta])* $module:ident::$service:ident),* $(,)?) => {
        $($(#[$cfg])* mod $module;)*

        /// Every implemented backend type.
        const REGISTRY: &[Type] = &[$($(#[$cfg])* row::<$module::$service>(),)*];
    };
}

#[cfg(feature = "http")]
pub mod rest;

registry! {
    #[cfg(feature = "aws")]
    aws::Aws,
    #[cfg(feature = "azure")]
    azure::Azure,
    file::ValuesFile,
    #[cfg(feature = "gcp")]
    gcp::Gcp,
    #[cfg(feature = "ibm")]
    ibm::Ibm,
    #[cfg(feature = "kubernetes")]
    kubernetes::KubernetesSecret,
    #[cfg(feature = "onepassword")]
    onepassword::OnePassword,
    #[cfg(feature = "sops")]
    sops::Sops,
    #[cfg(feature = "vault")]
    vault::Vault,
}

/// Types this build was made without (cargo features).
const COMPILED_OUT: &[&str] = &[
    "1passwordconnect",
    "awssecretsmanager",
    "azurekeyvault",
    "gcpsecretmanager",
    "ibmsecretsmanager",
    "kubernetessecret",
    "sops",
    "vault",
];

/// AVP's backend names that secretsubst does not implement yet.
const PLANNED: &[&str] = &[
    "yandexcloudlockbox",
    "keepersecretsmanager",
    "delineasecretserver",
];

/// The registry row of `AVP_TYPE` value `name`, if implemented.
pub fn find(name: &str) -> Option<&'static Type> {
    REGISTRY.iter().find(|t| t.name == name)
}

/// Every implemented backend type, in registry order.
pub fn types() -> &'static [Type] {
    REGISTRY
}

/// Every option some backend declares, each name once (the first declaration's check), in
/// registry order; built once, since every manifest's annotations are checked against it.
pub fn all_options() -> &'static [&'static BackendOption] {
    static OPTIONS: std::sync::LazyLock<Vec<&'static BackendOption>> =
        std::sync::LazyLock::new(|| {
            let mut options: Vec<&'static BackendOption> = Vec::new();
            for option in REGISTRY.iter().flat_map(|t| t.options) {
                if !options.iter().any(|o| o.name == option.name) {
                    options.push(option);
                }
            }
            options
        });
    &OPTIONS
}

/// Why `AVP_TYPE` value `wanted` names no implemented backend.
pub fn unknown(wanted: &str) -> anyhow::Error {
    if wanted.is_empty() {
        // AVP's wording, so users' searches still match, with what it leaves out.
        return anyhow::anyhow!(
            "Must provide a supported Vault Type, received nothing: AVP_TYPE is not set (valid types: {})",
            supported()
        );
    }
    if COMPILED_OUT.contains(&wanted) {
        return anyhow::anyhow!(
            "AVP_TYPE {wanted}: this build of secretsubst was made without that backend"
        );
    }
    if PLANNED.contains(&wanted) {
        return anyhow::anyhow!(
            "AVP_TYPE {wanted} is not supported by this version of secretsubst"
        );
    }
    anyhow::anyhow!(
        "Must provide a supported Vault Type, received {wanted} (valid types: {})",
        supported()
    )
}

/// The implemented types in byte order (`1passwordconnect` first), for messages.
fn supported() -> String {
    let mut names: Vec<&str> = REGISTRY.iter().map(|t| t.name).collect();
    names.sort_unstable();
    names.join(", ")
}
