//! What the engine asks a backend for, and what it gets back.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::excerpt;
use crate::value::Value;

/// One secret to fetch: the unit of deduplication, so each is fetched once per run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    /// The profile whose backend reads it (`default` for the flat settings).
    pub profile: String,
    pub path: String,
    pub version: Option<String>,
    /// The annotations this profile's backend declares as its options, by name
    /// (`kv-version` → `2`); the backend interprets them.
    pub options: BTreeMap<&'static str, String>,
}

impl SecretRef {
    /// A secret of the default profile without options.
    pub fn new(path: &str, version: Option<&str>) -> SecretRef {
        SecretRef {
            profile: crate::config::DEFAULT_PROFILE.to_owned(),
            path: path.to_owned(),
            version: version.map(str::to_owned),
            options: BTreeMap::new(),
        }
    }

    /// The value of option `name`, if the manifest set it.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }
}

/// Each secret to fetch, with the keys the manifests read from it.
pub type Wanted = BTreeMap<SecretRef, std::collections::BTreeSet<String>>;

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
