//! What the engine asks a backend for, and what it gets back.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::excerpt;
use crate::value::Value;

/// One secret to fetch: the unit of deduplication, so each is fetched once per run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    pub path: String,
    pub version: Option<String>,
    /// From the `avp.kubernetes.io/kv-version` annotation; `None` lets the backend decide.
    pub kv_version: Option<KvVersion>,
    /// From the `avp.kubernetes.io/namespace` annotation (Vault namespaces).
    pub namespace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KvVersion {
    V1,
    V2,
}

/// The keys of one secret. A key whose value is null counts as missing, as in AVP.
pub type SecretData = BTreeMap<String, Value>;

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&excerpt(&self.path))?;
        if let Some(version) = &self.version {
            write!(f, " (version {})", excerpt(version))?;
        }
        Ok(())
    }
}
