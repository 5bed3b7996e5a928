//! An in-process HashiCorp Vault test server that answers like real Vault, field for field, for
//! what `secretsubst` uses: KV v1 and v2 reads, `sys/internal/ui/mounts`, token lookup-self, and
//! the AppRole, userpass, Kubernetes, GitHub and TLS certificate logins, with namespaces,
//! policies, TLS, request logging and fault injection.
//!
//! The API is synchronous: the server runs on its own thread with its own tokio runtime (tests
//! run the `secretsubst` binary as a subprocess against it) and stops when dropped. It binds
//! only to 127.0.0.1 on an ephemeral port.
//!
//! ```ignore
//! let vault = VaultServer::builder()
//!     .kv2("secret")
//!     .put("secret/app", json!({"password": "hunter2"}))
//!     .token("root-token", Policy::Root)
//!     .start();
//! ```
//!
//! Behaviour follows Vault's API documentation and, where the documentation is silent, Vault's
//! sources; each handler in `vault/handler.rs` cites its page. Deliberate simplifications:
//! policies are prefix lists ([`Policy`]), auth methods accept exactly the configured
//! credentials, and only the endpoints above (plus KV writes, KV v2 metadata and `sys/health`)
//! exist.

mod handler;
mod json;
mod state;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming as IncomingBody;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use tokio::sync::oneshot;

use self::state::{AuthKind, Cred, KvVersion, State};

/// A running test server. Dropping it stops the server.
pub struct VaultServer {
    addr: SocketAddr,
    tls: Option<TlsFiles>,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// PEM files of the TLS setup, in a temporary directory owned by the server.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed the server and client certificates (`VAULT_CACERT`).
    pub ca_cert: PathBuf,
    /// A client certificate accepted by `cert` auth mounts (`VAULT_CLIENT_CERT`).
    pub client_cert: PathBuf,
    /// Its PKCS#8 private key (`VAULT_CLIENT_KEY`).
    pub client_key: PathBuf,
}

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Everything. A static token with this policy is a root token (`policies: ["root"]`);
    /// tokens issued by auth methods get an allow-everything policy named `admin` instead,
    /// since Vault refuses to let auth methods create root tokens.
    Root,
    /// `GET` on API paths (relative to `/v1/` and to the token's namespace) starting with one of
    /// these prefixes, e.g. `"secret/data/app"` or `"kv/"`; plus, like Vault's `default`
    /// policy, `auth/token/lookup-self`. Policy names: `["default", "read"]`.
    Read(Vec<String>),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string, e.g. `/v1/secret/data/app`.
    pub path: String,
    pub query: Option<String>,
    /// The `X-Vault-Namespace` header.
    pub namespace: Option<String>,
    /// The `X-Vault-Token` header (or an `Authorization: Bearer` token).
    pub token: Option<String>,
}

impl VaultServer {
    pub fn builder() -> Builder {
        Builder {
            state: State::new(),
            namespace: String::new(),
            tls: false,
        }
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` with TLS.
    pub fn addr(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// How many requests had this method (case-insensitive) and a path starting with
    /// `path_prefix`. The prefix may include `/v1/` or not (`"secret/data"` and
    /// `"/v1/secret/data"` are the same).
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        let prefix = path_prefix.trim_start_matches('/');
        let prefix = prefix.strip_prefix("v1/").unwrap_or(prefix);
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method))
            .filter(|r| {
                r.path
                    .strip_prefix("/v1/")
                    .is_some_and(|p| p.starts_with(prefix))
            })
            .count()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The most requests this server was answering at one time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// The next `n` requests (any path) fail with `status` and Vault's error body for it
    /// (429: rate limit quota exceeded, 500: internal error, 503: Vault is sealed, ...), with a
    /// `Retry-After: <seconds>` header when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().fail = (n > 0).then_some(state::Fail {
            remaining: n,
            status,
            retry_after,
            path_prefix: None,
        });
    }

    /// Like [`Self::fail_next`], for the next `n` requests whose path starts with `path_prefix`
    /// (`/v1/secret/data/`); other requests pass.
    pub fn fail_next_on(&self, path_prefix: &str, n: usize, status: u16) {
        self.lock().fail = (n > 0).then_some(state::Fail {
            remaining: n,
            status,
            retry_after: None,
            path_prefix: Some(path_prefix.to_owned()),
        });
    }

    /// Delay added before every response.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Invalidates every token issued by an auth method (static tokens stay valid).
    pub fn revoke_tokens(&self) {
        for ns in self.lock().namespaces.values_mut() {
            ns.tokens.retain(|_, t| !t.issued);
        }
    }

    /// Adds a secret at runtime, like [`Builder::put`]. The path is absolute: a secret in a
    /// namespace is written as `"ns1/secret/app"`.
    pub fn put(&self, path: &str, data: serde_json::Value) {
        let mut st = self.lock();
        let (ns, rest) = st.resolve_absolute(path);
        st.put(&ns, &rest, data);
    }
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Configures a [`VaultServer`]. Mounts, secrets, tokens and auth methods added after
/// [`Builder::namespace`] belong to that namespace until [`Builder::root_namespace`].
pub struct Builder {
    state: State,
    namespace: String,
    tls: bool,
}

impl Builder {
    /// Serve HTTPS with a generated CA, a server certificate for 127.0.0.1, localhost and
    /// vault.test, and a CA-signed client certificate (see [`TlsFiles`]). Client certificates
    /// are requested but not required.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Enables a KV version 1 engine at `mount` (e.g. `"kv"`).
    pub fn kv1(mut self, mount: &str) -> Self {
        self.state.add_mount(&self.namespace, mount, KvVersion::V1);
        self
    }

    /// Enables a KV version 2 engine at `mount` (e.g. `"secret"`).
    pub fn kv2(mut self, mount: &str) -> Self {
        self.state.add_mount(&self.namespace, mount, KvVersion::V2);
        self
    }

    /// Switches to namespace `ns` (e.g. `"team-a"` or `"team-a/child"`), creating it.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = state::normalize_namespace(ns);
        self.state.ensure_namespace(&self.namespace);
        self
    }

    pub fn root_namespace(mut self) -> Self {
        self.namespace = String::new();
        self
    }

    /// Writes a secret at `"<mount>/<path>"` (e.g. `"secret/app"`): a new version on KV v2
    /// (1, 2, ...), an overwrite on KV v1. `data` must be a JSON object.
    pub fn put(mut self, path: &str, data: serde_json::Value) -> Self {
        self.state.put(&self.namespace, path, data);
        self
    }

    /// Soft-deletes a KV v2 version.
    pub fn delete_version(mut self, path: &str, version: u64) -> Self {
        self.state.delete_version(&self.namespace, path, version);
        self
    }

    /// Destroys a KV v2 version (its data is gone for good).
    pub fn destroy_version(mut self, path: &str, version: u64) -> Self {
        self.state.destroy_version(&self.namespace, path, version);
        self
    }

    /// A static token (as created by `vault token create`; a root token for [`Policy::Root`]).
    pub fn token(mut self, token: &str, policy: Policy) -> Self {
        self.state.add_static_token(&self.namespace, token, policy);
        self
    }

    /// An AppRole auth mount accepting `role_id` + `secret_id`.
    pub fn approle(mut self, mount: &str, role_id: &str, secret_id: &str, policy: Policy) -> Self {
        let roles = self.count_creds(mount);
        let role_name = if roles == 0 {
            "secretsubst".to_string()
        } else {
            format!("secretsubst-{}", roles + 1)
        };
        self.state.add_auth(
            &self.namespace,
            mount,
            AuthKind::AppRole,
            Cred::AppRole {
                role_name,
                role_id: role_id.to_string(),
                secret_id: secret_id.to_string(),
                policy,
            },
        );
        self
    }

    /// A userpass auth mount accepting `username` + `password`.
    pub fn userpass(mut self, mount: &str, username: &str, password: &str, policy: Policy) -> Self {
        self.state.add_auth(
            &self.namespace,
            mount,
            AuthKind::UserPass,
            Cred::UserPass {
                username: username.to_string(),
                password: password.to_string(),
                policy,
            },
        );
        self
    }

    /// A Kubernetes auth mount whose `role` accepts exactly `jwt` (a service account JWT; its
    /// claims, when it is one, fill the login metadata).
    pub fn kubernetes(mut self, mount: &str, role: &str, jwt: &str, policy: Policy) -> Self {
        self.state.add_auth(
            &self.namespace,
            mount,
            AuthKind::Kubernetes,
            Cred::Kubernetes {
                role: role.to_string(),
                jwt: jwt.to_string(),
                policy,
            },
        );
        self
    }

    /// A GitHub auth mount accepting the personal access token `github_token` (as user
    /// `octocat` of organisation `secretsubst`).
    pub fn github(mut self, mount: &str, github_token: &str, policy: Policy) -> Self {
        self.state.add_auth(
            &self.namespace,
            mount,
            AuthKind::GitHub,
            Cred::GitHub {
                token: github_token.to_string(),
                policy,
            },
        );
        self
    }

    /// A TLS certificate auth mount: login succeeds only when the TLS client presented the
    /// CA-signed client certificate of [`TlsFiles`] (so it needs [`Builder::tls`]).
    pub fn cert(mut self, mount: &str, policy: Policy) -> Self {
        self.state.add_auth(
            &self.namespace,
            mount,
            AuthKind::Cert,
            Cred::Cert { policy },
        );
        self
    }

    /// `sys/internal/ui/mounts/<path>` answers 403 (the preflight capability check error), as
    /// for a token whose policies do not cover the mount.
    pub fn deny_ui_mounts(mut self) -> Self {
        self.state.deny_ui_mounts = true;
        self
    }

    /// Delay added before every response.
    pub fn latency(mut self, d: Duration) -> Self {
        self.state.latency = d;
        self
    }

    fn count_creds(&self, mount: &str) -> usize {
        let path = state::normalize_mount(mount);
        self.state
            .ns(&self.namespace)
            .auths
            .get(&path)
            .map_or(0, |m| m.creds.len())
    }

    /// Starts the server on 127.0.0.1 with an ephemeral port.
    pub fn start(self) -> VaultServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0 for the Vault test server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");

        let (dir, tls) = if self.tls {
            let dir = tempfile::tempdir().expect("temporary directory for TLS files");
            let setup = tls::setup(dir.path());
            (Some(dir), Some(setup))
        } else {
            (None, None)
        };
        let files = tls.as_ref().map(|t| t.files.clone());

        let state = Arc::new(Mutex::new(self.state));
        let shared = Arc::new(Shared {
            state: state.clone(),
            tls: tls.map(|t| TlsShared {
                acceptor: tokio_rustls::TlsAcceptor::from(t.server_config),
                verifier: t.client_verifier,
                info: t.client_info,
            }),
        });
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("vault-test-server-{}", addr.port()))
            .spawn(move || serve(listener, shared, rx))
            .expect("spawn the Vault test server thread");

        VaultServer {
            addr,
            tls: files,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
            _dir: dir,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

struct TlsShared {
    acceptor: tokio_rustls::TlsAcceptor,
    verifier: Arc<dyn ClientCertVerifier>,
    info: tls::ClientCertInfo,
}

struct Shared {
    state: Arc<Mutex<State>>,
    tls: Option<TlsShared>,
}

fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime for the Vault test server");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(connection(stream, shared.clone()));
                }
            }
        }
    });
    runtime.shutdown_background();
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    match &shared.tls {
        None => serve_http(stream, shared.clone(), None).await,
        Some(tls) => {
            let Ok(stream) = tls.acceptor.accept(stream).await else {
                return;
            };
            let certs: Option<Arc<Vec<CertificateDer<'static>>>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| Arc::new(c.to_vec()));
            serve_http(stream, shared.clone(), certs).await;
        }
    }
}

async fn serve_http<S>(
    stream: S,
    shared: Arc<Shared>,
    certs: Option<Arc<Vec<CertificateDer<'static>>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let certs = certs.clone();
        async move { Ok::<_, Infallible>(respond(shared, certs, req).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn header(req: &hyper::Request<IncomingBody>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|v| !v.is_empty())
}

/// Percent-decodes a URL path (Go's `URL.Path` is decoded).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

async fn respond(
    shared: Arc<Shared>,
    certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    req: hyper::Request<IncomingBody>,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let namespace = header(&req, "x-vault-namespace");
    let token = header(&req, "x-vault-token").or_else(|| {
        header(&req, "authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()))
            .filter(|t| !t.is_empty())
    });
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    let rel = percent_decode(&path)
        .strip_prefix("/v1/")
        .map(str::to_string);
    let (latency, injected) = {
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests.push(Request {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            namespace: namespace.clone(),
            token: token.clone(),
        });
        let injected = match st.fail.as_mut() {
            Some(fail)
                if fail.remaining > 0
                    && fail
                        .path_prefix
                        .as_deref()
                        .is_none_or(|p| path.starts_with(p)) =>
            {
                fail.remaining -= 1;
                let mut reply =
                    handler::injected_failure(fail.status, rel.as_deref().unwrap_or(""));
                reply.retry_after = fail.retry_after;
                if fail.remaining == 0 {
                    st.fail = None;
                }
                Some(reply)
            }
            _ => None,
        };
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        (st.latency, injected)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .in_flight -= 1;

    let reply = match injected {
        Some(reply) => reply,
        None => {
            let query_pairs = parse_query(query.as_deref());
            let incoming = handler::Incoming {
                method: &method,
                rel,
                query: query_pairs,
                namespace: namespace.as_deref(),
                token: token.as_deref(),
                body: &body,
                peer_certs: certs.as_deref().map(Vec::as_slice),
            };
            let cert_auth = shared.tls.as_ref().map(|t| handler::CertAuth {
                verifier: t.verifier.as_ref(),
                info: &t.info,
            });
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            handler::route(&mut st, cert_auth.as_ref(), &incoming)
        }
    };

    let mut builder = hyper::Response::builder()
        .status(reply.status)
        .header("cache-control", "no-store");
    if reply.status != 204 {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(seconds) = reply.retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .expect("valid response")
}
