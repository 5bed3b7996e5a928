//! `AVP_TYPE=kubernetessecret`: keys of Kubernetes Secrets, `<path:NAMESPACE:NAME#key>` or
//! `<path:NAME#key>` (namespace `argocd`, as AVP), read with the pod's service account (or a
//! kubeconfig outside a cluster), one GET per Secret.
//!
//! Namespaces are allow-listed (`AVP_K8S_SECRET_NAMESPACES`); when the list is empty only the
//! plugin's own namespace may be read, because the repo-server's account can often read far
//! more than any one app should. A refused namespace is an error and no request is sent.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{Backend, BackendError, Context, ErrorKind, Probe, Service};
use crate::config::{SettingKey, Settings};
use crate::kubernetes::ReadError;
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;

/// The `kubernetessecret` backend type.
pub struct KubernetesSecret;

/// The namespaces it may read.
#[derive(Debug)]
pub struct KubernetesSettings {
    /// `AVP_K8S_SECRET_NAMESPACES`; empty: the plugin's own namespace only.
    allowed: BTreeSet<String>,
}

impl Service for KubernetesSecret {
    const TYPE: &'static str = "kubernetessecret";
    const SETTINGS: &'static [SettingKey] = &[SettingKey::defaults_to(
        "AVP_K8S_SECRET_NAMESPACES",
        "the plugin's own namespace",
    )];
    type Settings = KubernetesSettings;

    /// `NAMESPACE:NAME`, the namespace AVP's default when the path has none.
    fn canonical(path: &str) -> String {
        let (namespace, name) = crate::settings_secret::parse(path);
        format!("{namespace}:{name}")
    }

    fn parse(settings: &Settings) -> anyhow::Result<KubernetesSettings> {
        let allowed = settings
            .get("AVP_K8S_SECRET_NAMESPACES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(KubernetesSettings { allowed })
    }

    fn build(settings: KubernetesSettings, _: &Context<'_>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(KubernetesBackend {
            settings,
            client: OnceCell::new(),
        }))
    }
}

struct KubernetesBackend {
    settings: KubernetesSettings,
    /// Made on the first read, shared by all.
    client: OnceCell<kube::Client>,
}

impl KubernetesBackend {
    async fn client(&self) -> Result<&kube::Client, BackendError> {
        self.client
            .get_or_try_init(|| async {
                crate::kubernetes::client(false).await.map_err(|e| {
                    // AVP's wording, so users' searches still match, with the cause.
                    BackendError::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "Failed to perform login for kubernetes secret backend: could not connect to local Kubernetes cluster: {e}"
                        ),
                    )
                })
            })
            .await
    }

    /// The namespaces a read may name, and how the list reads in messages.
    fn allowed<'a>(&'a self, client: &'a kube::Client) -> (Vec<&'a str>, String) {
        match self.settings.allowed.is_empty() {
            true => {
                let own = client.default_namespace();
                (vec![own], format!("only the plugin's own namespace {own}: list others in AVP_K8S_SECRET_NAMESPACES"))
            }
            false => {
                let list: Vec<&str> = self.settings.allowed.iter().map(String::as_str).collect();
                let text = format!("AVP_K8S_SECRET_NAMESPACES allows {}", list.join(", "));
                (list, text)
            }
        }
    }
}

#[async_trait]
impl Backend for KubernetesBackend {
    async fn login(&self) -> Result<(), BackendError> {
        self.client().await.map(|_| ())
    }

    /// The decoded `data` of the Secret; a version is ignored, as in AVP.
    async fn get(
        &self,
        secret: &SecretRef,
        _keys: &BTreeSet<String>,
    ) -> Result<SecretData, BackendError> {
        let (namespace, name) = crate::settings_secret::parse(&secret.path);
        let client = self.client().await?;
        let (allowed, rule) = self.allowed(client);
        if !allowed.contains(&namespace) {
            return Err(BackendError::new(
                ErrorKind::PermissionDenied,
                format!("namespace {namespace} may not be read ({rule})"),
            ));
        }
        let data = crate::kubernetes::read_secret(client, namespace, name)
            .await
            .map_err(|e| {
                let kind = match &e {
                    ReadError::Api { code, .. } => ErrorKind::of_status(*code),
                    ReadError::NotASecret => ErrorKind::Unexpected,
                    ReadError::Transport(_) => ErrorKind::Transient,
                };
                BackendError::new(kind, format!("Secret {namespace}/{name}: {e}"))
            })?;
        Ok(data
            .into_iter()
            .map(|(key, bytes)| {
                let value = match String::from_utf8(bytes) {
                    Ok(text) => Value::String(text),
                    Err(e) => Value::Bytes(e.into_bytes()),
                };
                (key, value)
            })
            .collect())
    }

    async fn diagnose(&self) -> Vec<Probe> {
        let client = match self.client().await {
            Ok(client) => client,
            Err(e) => {
                return vec![Probe::failed(
                    "connect",
                    e.message,
                    Some("in a cluster, the pod needs its service account token mounted; outside one, KUBECONFIG or ~/.kube/config".to_owned()),
                )];
            }
        };
        let version = match client.apiserver_version().await {
            Ok(info) => Probe::passed(
                "connect",
                format!("the API server answers: Kubernetes {}", info.git_version),
            ),
            Err(e) => {
                return vec![Probe::failed(
                    "connect",
                    format!("the API server does not answer: {e}"),
                    Some("check the cluster address of the kubeconfig, or the pod's network".to_owned()),
                )];
            }
        };
        let (_, rule) = self.allowed(client);
        vec![version, Probe::passed("namespaces", rule)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_is_comma_separated_and_trimmed() {
        let settings = Settings::merge(
            [(
                "AVP_K8S_SECRET_NAMESPACES".to_owned(),
                " team-a, team-b ,,".to_owned(),
            )],
            &[],
        );
        let parsed = KubernetesSecret::parse(&settings).unwrap();
        assert_eq!(
            parsed.allowed.iter().collect::<Vec<_>>(),
            ["team-a", "team-b"]
        );
        assert!(KubernetesSecret::parse(&Settings::default())
            .unwrap()
            .allowed
            .is_empty());
    }
}
