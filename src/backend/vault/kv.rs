//! Vault's KV engines: the KV version of a path's mount (configured, annotated, or detected
//! once per mount), and reads by API path, as AVP reads.

use std::collections::HashMap;

use rustify_derive::Endpoint;
use serde::Deserialize;

use super::{KV_VERSION, NAMESPACE, VaultBackend};
use crate::backend::{BackendError, ErrorKind};
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;
use crate::wait;

/// API paths that hold no secrets: reading `auth/token/lookup-self` would print the plugin's
/// own token.
const REFUSED: &[&str] = &["sys", "auth", "identity"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KvVersion {
    V1,
    V2,
}

impl KvVersion {
    /// `1` or `2`, the values of the `kv-version` annotation and `AVP_KV_VERSION`.
    pub fn parse(value: &str) -> Option<KvVersion> {
        match value.trim() {
            "1" => Some(KvVersion::V1),
            "2" => Some(KvVersion::V2),
            _ => None,
        }
    }
}

/// A namespace and a path prefix whose KV mount is detected once.
pub type MountKey = (Option<String>, String);

#[derive(Clone)]
pub struct Mount {
    /// `secret/`, with its trailing slash.
    path: String,
    kv: KvVersion,
    /// Neither configured nor detected: the fallback after a denied lookup.
    guessed: bool,
    /// The path lies on another kind of secrets engine: why it cannot be read.
    not_kv: Option<String>,
}

/// `GET /v1/<path>[?version=N]`: a KV read by its API path, as AVP reads.
/// <https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version>
#[derive(Debug, PartialEq, Eq, Endpoint)]
#[endpoint(path = "{self.path}", response = "serde_json::Value")]
struct ReadPath {
    #[endpoint(skip)]
    path: String,
    #[endpoint(query)]
    version: Option<String>,
}

/// <https://developer.hashicorp.com/vault/api-docs/system/internal-ui-mounts>
#[derive(Debug, Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts/{self.path}", response = "MountInfo")]
struct ReadMount {
    #[endpoint(skip)]
    path: String,
}

impl ReadPath {
    /// How errors name this read.
    fn what(&self) -> String {
        match &self.version {
            Some(v) => format!("{} (version {v})", self.path),
            None => self.path.clone(),
        }
    }
}

#[derive(Deserialize)]
struct MountInfo {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    options: Option<HashMap<String, String>>,
}

impl VaultBackend {
    /// Reads one secret: its mount's KV version (configured, annotated or detected), then the
    /// KV read by API path.
    ///
    /// A path written `MOUNT/data/…` reads the same API path on either KV version, so while its
    /// mount is still being detected that read is sent at once, beside the detection: one round
    /// trip instead of two. No other path is read before detection, since a GET on another
    /// engine (`database/creds/…`) is not harmless.
    pub async fn read(&self, secret: &SecretRef) -> Result<SecretData, BackendError> {
        let path = secret.path.trim_start_matches('/');
        if path.is_empty() {
            return Err(BackendError::new(
                ErrorKind::InvalidConfig,
                "empty Vault path (write <path:MOUNT/data/SECRET#KEY>)",
            ));
        }
        self.check_path(path)?;
        let namespace = secret
            .option(NAMESPACE)
            .or(self.settings.namespace.as_deref());
        let known = match secret.option(KV_VERSION).and_then(KvVersion::parse) {
            Some(kv) => Some(assumed_mount(path, kv)),
            None => self.known_mount(namespace, path).await,
        };
        let (mount, early) = match known {
            Some(mount) => (mount, None),
            None if path.split('/').nth(1) == Some("data") => {
                let guess = ReadPath {
                    path: path.to_owned(),
                    version: secret.version.clone(),
                };
                let what = guess.what();
                let (mount, early) = futures::join!(
                    self.kv_of(namespace, path),
                    self.with_token(namespace, &what, &guess)
                );
                (mount?, Some((guess, early)))
            }
            None => (self.kv_of(namespace, path).await?, None),
        };
        if let Some(reason) = &mount.not_kv {
            return Err(BackendError::new(ErrorKind::InvalidConfig, reason.clone()));
        }
        let kv = mount.kv;
        let api = api_path(kv, &mount.path, path);
        self.check_path(&api)?;
        let endpoint = ReadPath {
            path: api,
            version: match kv {
                KvVersion::V2 => secret.version.clone(),
                KvVersion::V1 => None,
            },
        };
        let what = endpoint.what();
        let body = match early {
            Some((guess, early)) if guess == endpoint => early,
            _ => self.with_token(namespace, &what, &endpoint).await,
        };
        let body = body.map_err(|mut e| {
            if e.kind == ErrorKind::NotFound && mount.guessed {
                let (other, number) = match kv {
                    KvVersion::V1 => ("KV v2", 2),
                    KvVersion::V2 => ("KV v1", 1),
                };
                e.message.push_str(&format!(
                    " (if {} is a {other} mount, set AVP_KV_VERSION or the avp.kubernetes.io/kv-version annotation to {number})",
                    mount.path
                ));
            }
            e
        })?;
        // Numbers keep their digits (serde_json's arbitrary precision): a 23-digit Vault value
        // is printed as it was stored.
        let data = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|mut envelope| envelope.get_mut("data").map(serde_json::Value::take))
            .filter(|data| !data.is_null())
            .ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unexpected,
                    format!("unexpected response from Vault for {what}"),
                )
            })?;
        secret_data(kv, data, &what)
    }

    /// The KV version and mount of `path`: from settings, or detected once per mount. Reads of
    /// different mounts detect concurrently; reads of one mount share one detection.
    async fn kv_of(&self, namespace: Option<&str>, path: &str) -> Result<Mount, BackendError> {
        if let Some(kv) = self.settings.kv_version {
            return Ok(assumed_mount(path, kv));
        }
        let first = path.split('/').next().unwrap_or(path);
        let mount = self.detected(namespace, first, path).await?;
        if path.starts_with(&mount.path) {
            return Ok(mount);
        }
        // A mount deeper than its first segment (`team/kv/`) that this path is not under.
        self.detected(namespace, path, path).await
    }

    /// The mount of `path` when no request is needed to know it: configured, or detected
    /// earlier in this run.
    async fn known_mount(&self, namespace: Option<&str>, path: &str) -> Option<Mount> {
        if let Some(kv) = self.settings.kv_version {
            return Some(assumed_mount(path, kv));
        }
        let first = path.split('/').next().unwrap_or(path);
        let key = (namespace.map(str::to_owned), first.to_owned());
        let mounts = self.mounts.lock().await;
        mounts
            .get(&key)
            .and_then(|cell| cell.get())
            .filter(|mount| path.starts_with(&mount.path))
            .cloned()
    }

    async fn detected(
        &self,
        namespace: Option<&str>,
        key: &str,
        path: &str,
    ) -> Result<Mount, BackendError> {
        let cell = self
            .mounts
            .lock()
            .await
            .entry((namespace.map(str::to_owned), key.to_owned()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.detect(namespace, path))
            .await
            .cloned()
    }

    async fn detect(&self, namespace: Option<&str>, path: &str) -> Result<Mount, BackendError> {
        let what = format!("mount lookup for {path}");
        let first = path.split('/').next().unwrap_or(path);
        let _waiting = wait::on(format!("vault: KV version detection of {first}/"));
        let endpoint = ReadMount {
            path: path.to_owned(),
        };
        let detected = self
            .with_token(namespace, &what, &endpoint)
            .await
            .and_then(|body| {
                #[derive(Deserialize)]
                struct Answer {
                    data: MountInfo,
                }
                serde_json::from_slice::<Answer>(&body)
                    .map(|a| a.data)
                    .map_err(|_| {
                        BackendError::new(
                            ErrorKind::Unexpected,
                            format!("unexpected response from Vault for {what}"),
                        )
                    })
            });
        match detected {
            Ok(info) if info.kind == "kv" || info.kind == "generic" => {
                let v2 = info
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .is_some_and(|v| v == "2");
                let path = if info.path.ends_with('/') {
                    info.path
                } else {
                    format!("{}/", info.path)
                };
                Ok(Mount {
                    path,
                    kv: if v2 { KvVersion::V2 } else { KvVersion::V1 },
                    guessed: false,
                    not_kv: None,
                })
            }
            Ok(info) => Ok(Mount {
                not_kv: Some(format!(
                    "{} is a {} secrets engine, not KV",
                    info.path, info.kind
                )),
                ..assumed_mount(path, KvVersion::V2)
            }),
            Err(e) if e.kind == ErrorKind::Transient => Err(e),
            Err(e) => {
                tracing::debug!(
                    "vault: cannot detect the KV version of {path} ({e}); assuming KV v2"
                );
                Ok(Mount {
                    guessed: true,
                    ..assumed_mount(path, KvVersion::V2)
                })
            }
        }
    }

    /// Refuses paths that hold no secrets, as Vault will route them after normalisation.
    fn check_path(&self, path: &str) -> Result<(), BackendError> {
        let effective = self
            .transport
            .effective_path(path)
            .map_err(|e| BackendError::new(ErrorKind::InvalidConfig, e))?;
        for candidate in [path, effective.as_str()] {
            let first = candidate
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if REFUSED.contains(&first) {
                return Err(BackendError::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{}: secretsubst does not read {first}/ paths, which hold no secrets (only KV mounts)",
                        crate::error::excerpt(path)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A mount taken to be the path's first segment, with a configured KV version.
fn assumed_mount(path: &str, kv: KvVersion) -> Mount {
    Mount {
        path: format!("{}/", path.split('/').next().unwrap_or(path)),
        kv,
        guessed: false,
        not_kv: None,
    }
}

/// The API path that reads `path` on a mount of version `kv`: on KV v2, `secret/app` and
/// `secret/data/app` both read `secret/data/app`.
fn api_path(kv: KvVersion, mount: &str, path: &str) -> String {
    match (kv, path.strip_prefix(mount)) {
        (KvVersion::V2, Some(rest)) if !rest.starts_with("data/") => format!("{mount}data/{rest}"),
        _ => path.to_owned(),
    }
}

/// The keys of a KV read response's `data`, with AVP's hints for the wrong engine version.
fn secret_data(
    kv: KvVersion,
    data: serde_json::Value,
    what: &str,
) -> Result<SecretData, BackendError> {
    let map = match (kv, data) {
        (KvVersion::V1, serde_json::Value::Object(map)) => map,
        (KvVersion::V2, serde_json::Value::Object(mut envelope)) => match envelope.remove("data") {
            Some(serde_json::Value::Object(map)) => map,
            Some(serde_json::Value::Null) => {
                return Err(BackendError::new(
                    ErrorKind::NotFound,
                    format!("{what} has no data: is this version of the secret deleted?"),
                ));
            }
            _ => {
                return Err(BackendError::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "{what} is not a KV v2 secret: check that kv-v2 is the correct engine (set AVP_KV_VERSION or the avp.kubernetes.io/kv-version annotation to 1)"
                    ),
                ));
            }
        },
        _ => {
            return Err(BackendError::new(
                ErrorKind::Unexpected,
                format!("{what}: the response data is not a map"),
            ));
        }
    };
    Ok(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_paths_get_their_data_segment() {
        assert_eq!(
            api_path(KvVersion::V2, "secret/", "secret/app"),
            "secret/data/app"
        );
        assert_eq!(
            api_path(KvVersion::V2, "secret/", "secret/data/app"),
            "secret/data/app"
        );
        assert_eq!(
            api_path(KvVersion::V2, "team/kv/", "team/kv/a/b"),
            "team/kv/data/a/b"
        );
        assert_eq!(api_path(KvVersion::V1, "kv/", "kv/app"), "kv/app");
    }

    #[test]
    fn kv1_secrets_read_as_kv2_get_a_hint() {
        let err =
            secret_data(KvVersion::V2, serde_json::json!({"user": "x"}), "kv/app").unwrap_err();
        assert!(
            err.message.starts_with("kv/app is not a KV v2 secret"),
            "{}",
            err.message
        );
    }
}
