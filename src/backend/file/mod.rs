//! `AVP_TYPE=file`: secrets from a local YAML values file (`AVP_VALUES_FILE`), for previews, CI
//! dry runs without access to secrets, and hermetic tests.
//!
//! Top-level keys are secret paths as written in placeholders, optionally with `#VERSION`
//! appended; each value maps keys to values of any YAML type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_trait::async_trait;

use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::manifest::tree::join_surrogate_escapes;
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;

/// The `file` backend type.
pub struct ValuesFile;

/// Its one setting.
#[derive(Debug)]
pub struct FileSettings {
    /// `AVP_VALUES_FILE`.
    path: String,
}

impl Service for ValuesFile {
    const TYPE: &'static str = "file";
    const SETTINGS: &'static [SettingKey] = &[SettingKey::plain("AVP_VALUES_FILE")];
    type Settings = FileSettings;

    fn parse(settings: &Settings) -> anyhow::Result<FileSettings> {
        match settings.get("AVP_VALUES_FILE") {
            Some(path) => Ok(FileSettings {
                path: path.to_owned(),
            }),
            None => bail!("AVP_VALUES_FILE must be set when AVP_TYPE is file"),
        }
    }

    fn build(settings: FileSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        let path = &settings.path;
        let text = crate::setting_file::read_to_string(path, crate::setting_file::MAX_VALUES)
            .with_context(|| format!("values file {path}: cannot read"))?;
        let secrets = parse(&text).with_context(|| format!("values file {path}"))?;
        Ok(Arc::new(FileBackend { secrets }))
    }
}

struct FileBackend {
    secrets: BTreeMap<String, SecretData>,
}

/// Parses without serde's typed errors, which would quote the offending (secret) value. A JSON
/// file is read as JSON, so its numbers keep every digit.
fn parse(text: &str) -> anyhow::Result<BTreeMap<String, SecretData>> {
    let doc = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(text)
            .map(Value::from)
            .map_err(|e| {
                anyhow::anyhow!("invalid JSON at line {} column {}", e.line(), e.column())
            })?
    } else {
        let (text, _) = join_surrogate_escapes(text);
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| match e.location() {
                Some(at) => {
                    anyhow::anyhow!("invalid YAML at line {} column {}", at.line(), at.column())
                }
                None => anyhow::anyhow!("invalid YAML"),
            })?;
        if !matches!(doc, serde_yaml::Value::Mapping(_)) {
            bail!("the top level must map secret paths to their keys");
        }
        convert(doc)?
    };
    let Value::Map(paths) = doc else {
        bail!("the top level must map secret paths to their keys");
    };
    let mut secrets = BTreeMap::new();
    for (path, keys) in paths {
        let Value::Map(keys) = keys else {
            bail!("{path}: must map keys to values");
        };
        secrets.insert(path, keys);
    }
    Ok(secrets)
}

fn key_text(key: &serde_yaml::Value) -> anyhow::Result<String> {
    match key {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        _ => bail!("unsupported key type"),
    }
}

fn convert(value: serde_yaml::Value) -> anyhow::Result<Value> {
    Ok(match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => Value::Number(number(&n)?),
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::List(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        serde_yaml::Value::Mapping(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| Ok((key_text(&k)?, convert(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        serde_yaml::Value::Tagged(tagged) => convert(tagged.value)?,
    })
}

fn number(n: &serde_yaml::Number) -> anyhow::Result<serde_json::Number> {
    if let Some(i) = n.as_i64() {
        Ok(i.into())
    } else if let Some(u) = n.as_u64() {
        Ok(u.into())
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .context("numbers must be finite")
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn uses_network(&self) -> bool {
        false
    }

    async fn diagnose(&self) -> Vec<Probe> {
        let found = match self.secrets.len() {
            1 => "the values file holds 1 secret".to_owned(),
            n => format!("the values file holds {n} secrets"),
        };
        vec![Probe::passed("read", found)]
    }

    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let key = match &secret.version {
            Some(version) => format!("{}#{version}", secret.path),
            None => secret.path.clone(),
        };
        self.secrets.get(&key).cloned().ok_or_else(|| {
            BackendError::new(
                ErrorKind::NotFound,
                format!("secret {secret} not found in the values file"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(path: &str, version: Option<&str>) -> SecretRef {
        SecretRef::new(path, version)
    }

    async fn get(
        text: &str,
        path: &str,
        version: Option<&str>,
    ) -> Result<SecretData, BackendError> {
        let backend = FileBackend {
            secrets: parse(text).unwrap(),
        };
        backend.get(&secret(path, version), &["k".to_owned()].into()).await
    }

    #[tokio::test]
    async fn unversioned_and_versioned_lookups_use_their_own_entries() {
        let text = "secret/data/app:\n  pw: new\nsecret/data/app#1:\n  pw: old\n";
        let latest = get(text, "secret/data/app", None).await.unwrap();
        assert!(latest["pw"] == Value::from("new"));
        let old = get(text, "secret/data/app", Some("1")).await.unwrap();
        assert!(old["pw"] == Value::from("old"));
    }

    #[tokio::test]
    async fn values_keep_their_types() {
        let data = get(
            "a:\n  n: 5432\n  b: true\n  f: 1.5\n  m: {x: [1, y]}\n",
            "a",
            None,
        )
        .await
        .unwrap();
        assert_eq!(data["n"].to_text(), "5432");
        assert!(data["b"] == Value::Bool(true));
        assert_eq!(data["f"].to_text(), "1.5");
        assert_eq!(data["m"].to_text(), r#"{"x":[1,"y"]}"#);
    }

    #[tokio::test]
    async fn unknown_path_is_not_found() {
        let err = get("a:\n  k: v\n", "b", Some("2")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(
            err.message,
            "secret b (version 2) not found in the values file"
        );
    }

    #[test]
    fn malformed_files_are_errors_that_do_not_quote_values() {
        let err = parse("a: s3cr3t\n").unwrap_err();
        assert_eq!(format!("{err:#}"), "a: must map keys to values");
        let err = parse("a:\n  k: [s3cr3t\n").unwrap_err();
        assert!(
            format!("{err:#}").starts_with("invalid YAML at line"),
            "{err:#}"
        );
        assert!(!format!("{err:#}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_json_values_file_keeps_big_numbers_exact() {
        let data = get(r#"{"a": {"n": 12345678901234567890123}}"#, "a", None)
            .await
            .unwrap();
        assert_eq!(data["n"].to_text(), "12345678901234567890123");
    }

    #[tokio::test]
    async fn a_json_values_file_may_hold_surrogate_pair_escapes() {
        let data = get(r#"{"a": {"k": "\ud83d\ude00 x"}}"#, "a", None)
            .await
            .unwrap();
        assert!(data["k"] == Value::from("😀 x"));
    }
}
