//! A Kubernetes API test server that answers `GET /api/v1/namespaces/{ns}/secrets/{name}` and
//! `GET /version` as the API documents them, plus a kubeconfig pointing at it. Plain HTTP on
//! 127.0.0.1, on the shared scaffolding of `http.rs`.
//!
//! Secret read: <https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/#get-read-the-specified-secret>
//! Errors are `Status` objects: <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;

use super::http::{HttpServer, Reply, Request};

/// The bearer token the kubeconfig carries and the server requires.
pub const TOKEN: &str = "kube-test-token";

#[derive(Default)]
struct State {
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    forbidden: HashSet<String>,
}

pub struct KubeServer {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl KubeServer {
    pub fn start() -> KubeServer {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::start(move |req| {
            answer(req, &shared.lock().unwrap_or_else(|e| e.into_inner()))
        });
        KubeServer { server, state }
    }

    pub fn add_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data: Vec<(&str, &[u8])> = data.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.add_secret_bytes(namespace, name, &data);
    }

    /// A Secret whose values may be any bytes.
    pub fn add_secret_bytes(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect();
        self.lock()
            .secrets
            .insert((namespace.to_owned(), name.to_owned()), data);
    }

    /// Every read in `namespace` answers 403, as for a service account without access.
    pub fn forbid(&self, namespace: &str) {
        self.lock().forbidden.insert(namespace.to_owned());
    }

    /// From now on, requests are accepted and never answered (an API server that hangs).
    pub fn stall(&self) {
        self.server.stall();
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests().into_iter().map(|r| r.path).collect()
    }

    /// The underlying server: request log and fault injection.
    pub fn http(&self) -> &HttpServer {
        &self.server
    }

    /// Writes a kubeconfig for this server into `dir` (context namespace `namespace`) and
    /// returns its path.
    pub fn kubeconfig_in(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {namespace}\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: {TOKEN}\n",
            self.server.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig_in(dir, "default")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(req: &Request, st: &State) -> Reply {
    let authorized = req.bearer() == Some(TOKEN);
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let (status, body) = match parts.as_slice() {
        _ if !authorized => (
            401,
            status_object(401, "Unauthorized", "Unauthorized", None),
        ),
        // https://kubernetes.io/docs/reference/using-api/health-checks/ names it; its body is
        // version.Info (k8s.io/apimachinery/pkg/version).
        ["version"] => (
            200,
            json!({
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.2",
                "gitCommit": "5864a4677267e6adeae276ad85882a8714d69d9d",
                "gitTreeState": "clean",
                "buildDate": "2024-10-22T20:28:14Z",
                "goVersion": "go1.22.8",
                "compiler": "gc",
                "platform": "linux/amd64"
            }),
        ),
        ["api", "v1", "namespaces", ns, "secrets", name] if st.forbidden.contains(*ns) => (
            403,
            status_object(
                403,
                "Forbidden",
                &format!(
                    "secrets \"{name}\" is forbidden: User \"system:serviceaccount:argocd:argocd-repo-server\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
                ),
                Some(name),
            ),
        ),
        ["api", "v1", "namespaces", ns, "secrets", name] => {
            match st.secrets.get(&((*ns).to_owned(), (*name).to_owned())) {
                Some(data) => (200, secret_object(ns, name, data)),
                None => (
                    404,
                    status_object(
                        404,
                        "NotFound",
                        &format!("secrets \"{name}\" not found"),
                        Some(name),
                    ),
                ),
            }
        }
        _ => (
            404,
            status_object(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        ),
    };
    Reply::json(status, body)
}

fn secret_object(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> serde_json::Value {
    let encoded: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "0b1e3b4a-6a52-4c5e-9a0e-3f2f7a1c9d11",
            "resourceVersion": "4242",
            "creationTimestamp": "2026-11-01T10:00:00Z"
        },
        "data": encoded,
        "type": "Opaque"
    })
}

fn status_object(code: u16, reason: &str, message: &str, name: Option<&str>) -> serde_json::Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    });
    if let Some(name) = name {
        status["details"] = json!({"name": name, "kind": "secrets"});
    }
    status
}
