//! A Kubernetes API test server that answers `GET /api/v1/namespaces/{ns}/secrets/{name}` as
//! the API documents it, plus a kubeconfig pointing at it. Plain HTTP on 127.0.0.1.
//!
//! Secret read: <https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/#get-read-the-specified-secret>
//! Errors are `Status` objects: <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;
use tokio::sync::oneshot;

/// The bearer token the kubeconfig carries and the server requires.
pub const TOKEN: &str = "kube-test-token";

#[derive(Default)]
struct State {
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    forbidden: HashSet<String>,
    requests: Vec<String>,
    /// Accept requests and never answer them.
    stalled: bool,
}

pub struct KubeServer {
    port: u16,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeServer {
    pub fn start() -> KubeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = oneshot::channel();
        let shared = state.clone();
        let thread = std::thread::spawn(move || serve(listener, shared, rx));
        KubeServer {
            port,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn add_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect();
        self.lock()
            .secrets
            .insert((namespace.to_owned(), name.to_owned()), data);
    }

    /// Every read in `namespace` answers 403, as for a service account without access.
    pub fn forbid(&self, namespace: &str) {
        self.lock().forbidden.insert(namespace.to_owned());
    }

    /// Paths requested so far.
    /// From now on, requests are accepted and never answered (an API server that hangs).
    pub fn stall(&self) {
        self.lock().stalled = true;
    }

    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://127.0.0.1:{}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: {TOKEN}\n",
            self.port
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| answer(req, state.clone()));
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                    });
                }
            }
        }
    });
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if state.lock().unwrap_or_else(|e| e.into_inner()).stalled {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests.push(path.clone());
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, body) = match parts.as_slice() {
        _ if !authorized => (
            401,
            status_object(401, "Unauthorized", "Unauthorized", None),
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
    drop(st);
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response");
    Ok(response)
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
