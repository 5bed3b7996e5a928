//! Secrets read through the Kubernetes API, with the pod's service account in a cluster or a
//! kubeconfig outside one: for the `-s` settings Secret and the `kubernetessecret` backend.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// A client for the cluster the plugin runs in (or the kubeconfig's current context). With
/// `retry`, kube retries 429 and 503 answers itself; the backend leaves that to the resolver,
/// which counts and bounds every attempt.
pub async fn client(retry: bool) -> Result<kube::Client, String> {
    let no_config = |e: &dyn fmt::Display| {
        format!("no Kubernetes API configuration (in-cluster or kubeconfig): {e}")
    };
    let mut config = kube::Config::infer().await.map_err(|e| no_config(&e))?;
    config.default_retry = retry;
    kube::Client::try_from(config).map_err(|e| no_config(&e))
}

/// Why a Secret could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The API refused: its `Status` code and message (which never hold the Secret's data).
    Api { code: u16, message: String },
    /// The answer was not a Secret; its text is not quoted, since it could hold the data.
    NotASecret,
    /// The API could not be reached or the answer broke off.
    Transport(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Api { code, message } => write!(f, "{code} {message}"),
            ReadError::NotASecret => f.write_str("the API's answer is not a Secret"),
            ReadError::Transport(e) => f.write_str(e),
        }
    }
}

/// The `data` of Secret `namespace/name`, decoded: one GET.
/// <https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/#get-read-the-specified-secret>
pub async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, ReadError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) => ReadError::Api {
                code: status.code,
                message: status.message,
            },
            kube::Error::SerdeError(_) => ReadError::NotASecret,
            other => ReadError::Transport(other.to_string()),
        })?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect())
}
