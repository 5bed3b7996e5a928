//! What the test server knows: namespaces, KV mounts and their secrets, auth methods with the
//! credentials they accept, and tokens. Everything lives behind one mutex in [`State`].
//!
//! Nothing here implements `Debug`: secret values and credentials must never end up in a
//! panic message or a log line.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{Policy, Request};

/// Vault's system default lease TTL (768h): the `lease_duration` of KV v1 reads and the TTL of
/// tokens issued by auth methods.
pub const DEFAULT_LEASE_TTL: u64 = 2_764_800;

/// KV v2 keeps this many versions per key when `max_versions` is not configured.
pub const KV2_MAX_VERSIONS: usize = 10;

/// Name of the ACL policy behind [`Policy::Read`].
pub const READ_POLICY: &str = "read";

/// Name of the "everything" ACL policy behind [`Policy::Root`] on tokens issued by auth
/// methods (Vault refuses to let an auth method mint a real root token).
pub const ADMIN_POLICY: &str = "admin";

pub struct State {
    /// Keyed by namespace path: `""` for root, `"ns1/"`, `"ns1/child/"`.
    pub namespaces: BTreeMap<String, Namespace>,
    pub requests: Vec<Request>,
    pub fail: Option<Fail>,
    pub latency: Duration,
    /// Requests being answered now, and the most there ever were at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
    pub deny_ui_mounts: bool,
    /// Failed logins per (auth mount accessor, alias name), for Vault's user lockout.
    pub failed_logins: HashMap<(String, String), (u32, SystemTime)>,
    pub cluster_id: String,
    pub cluster_name: String,
}

pub struct Fail {
    pub remaining: usize,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// Only requests whose path (`/v1/...`) starts with this fail.
    pub path_prefix: Option<String>,
}

pub struct Namespace {
    pub id: String,
    /// Secret mounts keyed by path with a trailing slash (`"secret/"`).
    pub mounts: BTreeMap<String, Mount>,
    /// Auth mounts keyed by path without the `auth/` prefix, with a trailing slash.
    pub auths: BTreeMap<String, AuthMount>,
    pub tokens: HashMap<String, Token>,
    /// Entity ids per (auth mount accessor, alias name).
    pub entities: HashMap<(String, String), String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

pub struct Mount {
    pub path: String,
    pub version: KvVersion,
    pub accessor: String,
    pub uuid: String,
    pub v1: BTreeMap<String, Map<String, Value>>,
    pub v2: BTreeMap<String, V2Secret>,
}

pub struct V2Secret {
    pub versions: BTreeMap<u64, V2Version>,
    pub current: u64,
    pub created: SystemTime,
    pub updated: SystemTime,
}

pub struct V2Version {
    /// `None` once destroyed.
    pub data: Option<Map<String, Value>>,
    pub created: SystemTime,
    pub deletion_time: Option<SystemTime>,
    pub destroyed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    AppRole,
    UserPass,
    Kubernetes,
    GitHub,
    Cert,
}

impl AuthKind {
    pub fn type_name(self) -> &'static str {
        match self {
            AuthKind::AppRole => "approle",
            AuthKind::UserPass => "userpass",
            AuthKind::Kubernetes => "kubernetes",
            AuthKind::GitHub => "github",
            AuthKind::Cert => "cert",
        }
    }
}

pub struct AuthMount {
    pub path: String,
    pub kind: AuthKind,
    pub accessor: String,
    pub uuid: String,
    pub creds: Vec<Cred>,
}

pub enum Cred {
    AppRole {
        role_name: String,
        role_id: String,
        secret_id: String,
        policy: Policy,
    },
    UserPass {
        username: String,
        password: String,
        policy: Policy,
    },
    Kubernetes {
        role: String,
        jwt: String,
        policy: Policy,
    },
    GitHub {
        token: String,
        policy: Policy,
    },
    Cert {
        policy: Policy,
    },
}

pub struct Token {
    pub id: String,
    pub accessor: String,
    pub policy: Policy,
    pub display_name: String,
    pub path: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub created: SystemTime,
    /// 0 for a root token (never expires).
    pub ttl: u64,
    pub orphan: bool,
    pub entity_id: String,
    /// Issued by an auth method (as opposed to configured with `Builder::token`).
    pub issued: bool,
    /// A real root token (`policies: ["root"]`).
    pub root: bool,
}

impl Token {
    /// The token's policy names, sorted as Vault sorts them.
    pub fn policy_names(&self) -> Vec<String> {
        match (&self.policy, self.root) {
            (Policy::Root, true) => vec!["root".to_string()],
            (Policy::Root, false) => vec![ADMIN_POLICY.to_string(), "default".to_string()],
            (Policy::Read(_), _) => vec!["default".to_string(), READ_POLICY.to_string()],
        }
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        self.ttl != 0 && now >= self.created + Duration::from_secs(self.ttl)
    }
}

// ---------------------------------------------------------------------------------------------
// Random identifiers
// ---------------------------------------------------------------------------------------------

/// A random UUID-shaped identifier, as Vault generates for request ids, mount uuids, entities.
pub fn uuid() -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u16(..),
        fastrand::u64(..) & 0xffff_ffff_ffff
    )
}

pub fn alphanumeric(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

pub fn hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// `"ns1"`, `"/ns1/"` → `"ns1/"`; `""` → `""` (root).
pub fn normalize_namespace(ns: &str) -> String {
    let trimmed = ns.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// `"secret"`, `"/secret/"` → `"secret/"`.
pub fn normalize_mount(mount: &str) -> String {
    let trimmed = mount.trim_matches('/');
    assert!(!trimmed.is_empty(), "a mount path must not be empty");
    format!("{trimmed}/")
}

/// The namespace path and its ancestors, innermost first: `"a/b/"` → `["a/b/", "a/", ""]`.
pub fn namespace_lineage(ns: &str) -> Vec<String> {
    let mut out = vec![ns.to_string()];
    let mut cur = ns.trim_end_matches('/');
    while let Some(idx) = cur.rfind('/') {
        cur = &cur[..idx];
        out.push(format!("{cur}/"));
    }
    if !ns.is_empty() {
        out.push(String::new());
    }
    out
}

impl Namespace {
    pub fn new() -> Namespace {
        Namespace {
            id: alphanumeric(5),
            mounts: BTreeMap::new(),
            auths: BTreeMap::new(),
            tokens: HashMap::new(),
            entities: HashMap::new(),
        }
    }

    /// The secret mount that holds `path` (relative to this namespace) and the rest of the path
    /// inside the mount. `"kv"` matches the mount `"kv/"` with an empty rest, like Vault's router.
    pub fn mount_for(&self, path: &str) -> Option<(String, String)> {
        let with_slash = format!("{path}/");
        self.mounts
            .keys()
            .filter(|m| path.starts_with(m.as_str()) || with_slash == **m)
            .max_by_key(|m| m.len())
            .map(|m| (m.clone(), path.get(m.len()..).unwrap_or("").to_string()))
    }

    /// The auth mount for an API path `auth/<mount>/<rest>`, and `<rest>`.
    pub fn auth_for(&self, path: &str) -> Option<(String, String)> {
        let inner = path.strip_prefix("auth/")?;
        let with_slash = format!("{inner}/");
        self.auths
            .keys()
            .filter(|m| inner.starts_with(m.as_str()) || with_slash == **m)
            .max_by_key(|m| m.len())
            .map(|m| (m.clone(), inner.get(m.len()..).unwrap_or("").to_string()))
    }
}

impl State {
    pub fn new() -> State {
        let mut namespaces = BTreeMap::new();
        let mut root = Namespace::new();
        root.id = "root".to_string();
        namespaces.insert(String::new(), root);
        State {
            namespaces,
            requests: Vec::new(),
            fail: None,
            latency: Duration::ZERO,
            in_flight: 0,
            max_in_flight: 0,
            deny_ui_mounts: false,
            failed_logins: HashMap::new(),
            cluster_id: uuid(),
            cluster_name: format!("vault-cluster-{}", hex(8)),
        }
    }

    /// Creates the namespace (and its ancestors) if needed.
    pub fn ensure_namespace(&mut self, ns: &str) {
        for path in namespace_lineage(ns) {
            self.namespaces.entry(path).or_insert_with(Namespace::new);
        }
    }

    pub fn ns(&self, ns: &str) -> &Namespace {
        &self.namespaces[ns]
    }

    pub fn ns_mut(&mut self, ns: &str) -> &mut Namespace {
        self.namespaces
            .get_mut(ns)
            .expect("namespace exists (created by the builder)")
    }

    /// Splits a fully qualified path (`"ns1/secret/data/app"`) into the innermost existing
    /// namespace and the path relative to it, the way Vault combines `X-Vault-Namespace` with
    /// the request path.
    pub fn split_namespace(&self, full: &str) -> (String, String) {
        let ns = self
            .namespaces
            .keys()
            .filter(|ns| full.starts_with(ns.as_str()))
            .max_by_key(|ns| ns.len())
            .cloned()
            .unwrap_or_default();
        let rest = full[ns.len()..].to_string();
        (ns, rest)
    }

    /// The token with this id usable in namespace `ns`: defined there or in an ancestor.
    /// Returns the token's namespace too.
    pub fn find_token(&self, ns: &str, id: &str) -> Option<(String, &Token)> {
        let now = SystemTime::now();
        namespace_lineage(ns).into_iter().find_map(|candidate| {
            let token = self.namespaces.get(&candidate)?.tokens.get(id)?;
            (!token.expired(now)).then_some((candidate, token))
        })
    }

    // -- configuration (builder and runtime) --------------------------------------------------

    pub fn add_mount(&mut self, ns: &str, mount: &str, version: KvVersion) {
        let path = normalize_mount(mount);
        let namespace = self.ns_mut(ns);
        assert!(
            !namespace.mounts.contains_key(&path),
            "mount {path:?} is already enabled in namespace {ns:?}"
        );
        namespace.mounts.insert(
            path.clone(),
            Mount {
                path,
                version,
                accessor: format!("kv_{}", hex(8)),
                uuid: uuid(),
                v1: BTreeMap::new(),
                v2: BTreeMap::new(),
            },
        );
    }

    fn mount_mut(&mut self, ns: &str, path: &str) -> (&mut Mount, String) {
        let path = path.trim_start_matches('/');
        let namespace = self.ns_mut(ns);
        let Some((mount, rest)) = namespace.mount_for(path) else {
            panic!("no KV mount holds {path:?} in namespace {ns:?}: add it with kv1()/kv2() first")
        };
        let rest = rest.trim_end_matches('/').to_string();
        assert!(!rest.is_empty(), "{path:?} names a mount, not a secret");
        (namespace.mounts.get_mut(&mount).expect("mount found"), rest)
    }

    /// Writes a secret: a new version on KV v2, an overwrite on KV v1.
    pub fn put(&mut self, ns: &str, path: &str, data: Value) {
        let Value::Object(data) = data else {
            panic!("put({path:?}, ..) expects a JSON object")
        };
        let (mount, key) = self.mount_mut(ns, path);
        match mount.version {
            KvVersion::V1 => {
                mount.v1.insert(key, data);
            }
            KvVersion::V2 => {
                kv2_write(mount, &key, data);
            }
        }
    }

    pub fn delete_version(&mut self, ns: &str, path: &str, version: u64) {
        let now = SystemTime::now();
        self.v2_version(ns, path, version).deletion_time = Some(now);
    }

    pub fn destroy_version(&mut self, ns: &str, path: &str, version: u64) {
        let v = self.v2_version(ns, path, version);
        v.destroyed = true;
        v.data = None;
    }

    fn v2_version(&mut self, ns: &str, path: &str, version: u64) -> &mut V2Version {
        let (mount, key) = self.mount_mut(ns, path);
        assert!(
            mount.version == KvVersion::V2,
            "{path:?} is not on a KV v2 mount"
        );
        mount
            .v2
            .get_mut(&key)
            .and_then(|s| s.versions.get_mut(&version))
            .unwrap_or_else(|| panic!("{path:?} has no version {version}"))
    }

    pub fn add_auth(&mut self, ns: &str, mount: &str, kind: AuthKind, cred: Cred) {
        let path = normalize_mount(mount);
        let namespace = self.ns_mut(ns);
        let entry = namespace
            .auths
            .entry(path.clone())
            .or_insert_with(|| AuthMount {
                path: path.clone(),
                kind,
                accessor: format!("auth_{}_{}", kind.type_name(), hex(8)),
                uuid: uuid(),
                creds: Vec::new(),
            });
        assert!(
            entry.kind == kind,
            "auth mount {path:?} is already a {} mount",
            entry.kind.type_name()
        );
        entry.creds.push(cred);
    }

    pub fn add_static_token(&mut self, ns: &str, id: &str, policy: Policy) {
        let root = matches!(policy, Policy::Root);
        let token = Token {
            id: id.to_string(),
            accessor: alphanumeric(24),
            policy,
            display_name: if root { "root" } else { "token" }.to_string(),
            path: if root {
                "auth/token/root"
            } else {
                "auth/token/create"
            }
            .to_string(),
            meta: None,
            created: SystemTime::now(),
            ttl: if root { 0 } else { DEFAULT_LEASE_TTL },
            orphan: root,
            entity_id: String::new(),
            issued: false,
            root,
        };
        self.ns_mut(ns).tokens.insert(id.to_string(), token);
    }

    /// Resolves an absolute path (`"ns1/secret/app"` or `"secret/app"`) to a namespace and the
    /// path inside it, for the runtime `VaultServer::put`.
    pub fn resolve_absolute(&self, path: &str) -> (String, String) {
        let path = path.trim_start_matches('/');
        // Prefer the innermost namespace whose mounts hold the path.
        let mut candidates: Vec<&String> = self
            .namespaces
            .keys()
            .filter(|ns| path.starts_with(ns.as_str()))
            .collect();
        candidates.sort_by_key(|ns| std::cmp::Reverse(ns.len()));
        for ns in candidates {
            let rest = &path[ns.len()..];
            if self.namespaces[ns].mount_for(rest).is_some() {
                return (ns.clone(), rest.to_string());
            }
        }
        (String::new(), path.to_string())
    }
}

/// Adds a version to a KV v2 key, trimming the oldest beyond `max_versions`. Returns the new
/// version number.
pub fn kv2_write(mount: &mut Mount, key: &str, data: Map<String, Value>) -> u64 {
    let now = SystemTime::now();
    let secret = mount.v2.entry(key.to_string()).or_insert_with(|| V2Secret {
        versions: BTreeMap::new(),
        current: 0,
        created: now,
        updated: now,
    });
    secret.current += 1;
    secret.updated = now;
    secret.versions.insert(
        secret.current,
        V2Version {
            data: Some(data),
            created: now,
            deletion_time: None,
            destroyed: false,
        },
    );
    while secret.versions.len() > KV2_MAX_VERSIONS {
        let oldest = *secret.versions.keys().next().expect("non-empty");
        secret.versions.remove(&oldest);
    }
    secret.current
}
