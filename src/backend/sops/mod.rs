//! `AVP_TYPE=sops`: secrets in SOPS files committed beside the manifests,
//! `<path:secrets/db.enc.yaml#password>`. A key is a top-level key of the decrypted file; nested
//! values are typed, for `jsonPath`. Paths are relative to the working directory (the app's
//! directory in Argo CD) and may not leave it unless `AVP_SOPS_ALLOW_OUTSIDE=true`. Each file is
//! decrypted once per run (the resolver reads each path once), files on blocking threads, so
//! several decrypt at once.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::secret::{SecretData, SecretRef};
use crate::setting_file;
use crate::sops::{self, Identities, Item, Plain, PlainKind, ScalarKind};
use crate::value::Value;

/// The `sops` backend type.
pub struct Sops;

#[derive(Debug)]
pub struct SopsSettings {
    identities: Identities,
    /// `AVP_SOPS_ALLOW_OUTSIDE`: paths may leave the working directory.
    allow_outside: bool,
}

impl Service for Sops {
    const TYPE: &'static str = "sops";
    const SETTINGS: &'static [SettingKey] = &[
        SettingKey::credential("SOPS_AGE_KEY"),
        SettingKey::defaults_to(
            "SOPS_AGE_KEY_FILE",
            "$XDG_CONFIG_HOME/sops/age/keys.txt, else ~/.config/sops/age/keys.txt",
        ),
        SettingKey::plain("SOPS_AGE_SSH_PRIVATE_KEY_FILE"),
        SettingKey::defaults_to("AVP_SOPS_ALLOW_OUTSIDE", "false"),
    ];
    type Settings = SopsSettings;

    fn parse(settings: &Settings) -> anyhow::Result<SopsSettings> {
        Ok(SopsSettings {
            identities: Identities::from_settings(settings)?,
            allow_outside: settings
                .get("AVP_SOPS_ALLOW_OUTSIDE")
                .is_some_and(|v| matches!(v.trim(), "1" | "t" | "T" | "TRUE" | "true" | "True")),
        })
    }

    fn build(settings: SopsSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        let root = std::env::current_dir()?;
        Ok(Arc::new(SopsBackend {
            settings: Arc::new(settings),
            root,
        }))
    }
}

struct SopsBackend {
    settings: Arc<SopsSettings>,
    /// The working directory, which paths are relative to.
    root: PathBuf,
}

#[async_trait]
impl Backend for SopsBackend {
    fn uses_network(&self) -> bool {
        false
    }

    async fn diagnose(&self) -> Vec<Probe> {
        vec![match self.settings.identities.summary() {
            Ok(found) => Probe::passed("identities", found),
            Err(missing) => Probe::failed("identities", missing, Some(sops::NO_IDENTITY_HINT.to_owned())),
        }]
    }

    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        if let Some(version) = &secret.version {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{}: a SOPS file has no versions (got {})",
                    crate::error::excerpt(&secret.path),
                    crate::error::excerpt(version)
                ),
            ));
        }
        let file = self.confined(&secret.path)?;
        let settings = self.settings.clone();
        let path = secret.path.clone();
        tokio::task::spawn_blocking(move || read(&file, &path, &settings.identities))
            .await
            .map_err(|_| BackendError::new(ErrorKind::Unexpected, "the decryption stopped"))?
    }
}

impl SopsBackend {
    /// The file `path` names, inside the working directory unless outside paths are allowed.
    fn confined(&self, path: &str) -> Result<PathBuf, BackendError> {
        let shown = crate::error::excerpt(path);
        let refuse = |why: &str| {
            BackendError::new(
                ErrorKind::InvalidConfig,
                format!("{shown}: {why} (set AVP_SOPS_ALLOW_OUTSIDE=true to allow it)"),
            )
        };
        let relative = Path::new(path);
        if path.is_empty() {
            return Err(BackendError::new(ErrorKind::InvalidConfig, "empty SOPS file path"));
        }
        let file = self.root.join(relative);
        if self.settings.allow_outside {
            return Ok(file);
        }
        if relative.is_absolute() {
            return Err(refuse("an absolute path leaves the working directory"));
        }
        if relative.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(refuse("a path with .. may leave the working directory"));
        }
        // A symbolic link out counts as leaving too; a missing file is reported when read.
        if let (Ok(real), Ok(root)) = (file.canonicalize(), self.root.canonicalize())
            && !real.starts_with(&root)
        {
            return Err(refuse("the path leads out of the working directory"));
        }
        Ok(file)
    }
}

/// Reads and decrypts one file: its top-level keys, typed.
fn read(file: &Path, path: &str, identities: &Identities) -> Result<SecretData, BackendError> {
    let shown = crate::error::excerpt(path);
    let text = setting_file::read_to_string(file, setting_file::MAX_VALUES).map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::InvalidConfig,
        };
        BackendError::new(kind, format!("{shown}: cannot read: {e}"))
    })?;
    let fail = |kind: ErrorKind, why: String| BackendError::new(kind, format!("{shown}: {why}"));
    let (branches, flat) = match store_of(path) {
        Store::Json | Store::Yaml => (sops::stores::parse_yaml(&text), false),
        Store::Dotenv => (sops::stores::parse_dotenv(&text), true),
    };
    let branches = branches.map_err(|e| fail(ErrorKind::InvalidConfig, e))?;
    let sops_file = sops::File::new(branches, flat).map_err(|e| fail(kind_of(&e), e.to_string()))?;
    let decrypted = sops_file
        .decrypt(identities)
        .map_err(|e| fail(kind_of(&e), e.to_string()))?;
    let Some(Item::Map(entries)) = sops_file.branches.first() else {
        return Err(fail(
            ErrorKind::InvalidConfig,
            "the file does not map keys to values".to_owned(),
        ));
    };
    let plain = Plains {
        values: decrypted.values.into_iter().collect(),
        comments: decrypted.comments.into_iter().map(|(at, _)| at).collect(),
    };
    Ok(entries
        .iter()
        .map(|(key, item)| (key.clone(), value(item, &plain)))
        .collect())
}

/// The decrypted scalars by position, and the list items that were comments.
struct Plains {
    values: std::collections::HashMap<usize, Plain>,
    comments: std::collections::HashSet<usize>,
}

enum Store {
    Yaml,
    Json,
    Dotenv,
}

/// The store by extension, as sops picks it; YAML otherwise.
fn store_of(path: &str) -> Store {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Store::Json
    } else if lower.ends_with(".env") || lower.ends_with(".dotenv") {
        Store::Dotenv
    } else {
        Store::Yaml
    }
}

fn kind_of(e: &sops::Error) -> ErrorKind {
    match e {
        sops::Error::NoIdentity { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::InvalidConfig,
    }
}

/// An item with its decrypted values, typed as sops typed them; comments left out.
fn value(item: &Item, plain: &Plains) -> Value {
    match item {
        Item::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), value(v, plain)))
                .collect(),
        ),
        Item::List(items) => Value::List(
            items
                .iter()
                .filter(|i| !matches!(i, Item::Scalar(s) if plain.comments.contains(&s.at)))
                .map(|i| value(i, plain))
                .collect(),
        ),
        Item::Null => Value::Null,
        Item::Scalar(scalar) => match plain.values.get(&scalar.at) {
            Some(p) => typed(p),
            None => clear(scalar),
        },
    }
}

fn typed(plain: &Plain) -> Value {
    let text = String::from_utf8_lossy(&plain.text).into_owned();
    match plain.kind {
        PlainKind::Int | PlainKind::Float => number(&text).unwrap_or(Value::String(text)),
        PlainKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Value::Bool(true),
            "false" | "0" | "f" => Value::Bool(false),
            _ => Value::String(text),
        },
        PlainKind::Bytes => match String::from_utf8(plain.text.clone()) {
            Ok(text) => Value::String(text),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
        PlainKind::Str | PlainKind::Time | PlainKind::Comment => Value::String(text),
    }
}

fn clear(scalar: &sops::Scalar) -> Value {
    match scalar.kind {
        ScalarKind::Str => Value::String(scalar.text.clone()),
        ScalarKind::Bool => Value::Bool(scalar.text.eq_ignore_ascii_case("true")),
        ScalarKind::Int | ScalarKind::Float => {
            number(&scalar.text).unwrap_or_else(|| Value::String(scalar.text.clone()))
        }
    }
}

/// A number with every digit kept (serde_json's arbitrary precision).
fn number(text: &str) -> Option<Value> {
    let text = text.trim().strip_prefix('+').unwrap_or(text.trim());
    match sops::stores::parse_int(text) {
        Some(n) => Some(Value::Number(n.into())),
        None => serde_json::from_str::<serde_json::Number>(text)
            .ok()
            .map(Value::Number),
    }
}
