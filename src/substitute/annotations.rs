//! The `avp.kubernetes.io/*` annotations of a manifest: what they ask of the engine, and which
//! backend profile and backend options its secrets are read with.

use std::collections::BTreeMap;

use crate::backend;
use crate::config::{Profile, Profiles};
use crate::error::excerpt;
use crate::manifest::scalar::{PlainType, yaml11_type};
use crate::manifest::tree::{Node, Scalar, Style, Tree};
use crate::secret::SecretRef;

pub const PREFIX: &str = "avp.kubernetes.io/";
pub const PATH: &str = "avp.kubernetes.io/path";
pub const IGNORE: &str = "avp.kubernetes.io/ignore";
pub const SECRET_VERSION: &str = "avp.kubernetes.io/secret-version";
pub const REMOVE_MISSING: &str = "avp.kubernetes.io/remove-missing";
pub const BACKEND: &str = "avp.kubernetes.io/backend";

/// The string-valued annotations of one manifest.
pub struct Annotations(Vec<(String, String)>);

impl Annotations {
    /// The annotations whose values are strings, merged keys included, each name once with the
    /// value Kubernetes reads (the last of repeated keys); the others are reported and skipped
    /// one by one.
    /// `label` names the manifest in a notice; it is made only when one is printed.
    pub fn read(tree: &Tree, metadata: Option<&Node>, label: impl Fn() -> String) -> Annotations {
        let Some(map @ Node::Map(_)) = metadata.and_then(|m| tree.get(m, "annotations")) else {
            return Annotations(Vec::new());
        };
        let mut out = Vec::new();
        for (key, value) in tree.entries(map) {
            let Some(key) = tree.resolve(key).as_scalar().map(|k| k.value.clone()) else {
                continue;
            };
            match string_value(tree.resolve(value)) {
                Some(value) => out.push((key, value.to_owned())),
                None if key.starts_with(PREFIX) => {
                    tracing::warn!(
                        "{}: annotation {} is not a string, so it is ignored (quote its value)",
                        label(),
                        excerpt(&key)
                    );
                }
                None => {}
            }
        }
        Annotations(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a boolean annotation is true.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some_and(parse_bool)
    }

    /// Every backend option the manifest sets (empty values count as unset), checked by the
    /// backend that declares it: `(field, reason)` for the first invalid one.
    pub fn options(&self) -> Result<BTreeMap<&'static str, String>, (String, String)> {
        let mut options = BTreeMap::new();
        for option in backend::all_options().iter().copied() {
            let name = format!("{PREFIX}{}", option.name);
            let Some(value) = self.get(&name).filter(|v| !v.is_empty()) else {
                continue;
            };
            (option.check)(value).map_err(|reason| (field(&name), reason))?;
            options.insert(option.name, value.to_owned());
        }
        Ok(options)
    }
}

/// What a manifest's annotations add to every secret it reads.
pub struct Scope<'c> {
    pub profiles: &'c Profiles,
    /// The profile of placeholders without a prefix: the backend annotation's, else the default.
    pub profile: &'c Profile,
    /// Every backend option the manifest sets; each secret keeps its backend's own.
    pub options: BTreeMap<&'static str, String>,
}

impl Scope<'_> {
    /// The secret at `path` read through `profile`, with the options its backend declares.
    /// The path is in its backend's canonical spelling, so that two spellings of one secret
    /// are read once.
    pub fn secret(&self, profile: &Profile, path: &str, version: Option<&str>) -> SecretRef {
        let kind = backend::find(&profile.backend_type);
        let declared = kind.map_or(&[][..], |t| t.options);
        SecretRef {
            profile: profile.name.clone(),
            path: kind.map_or_else(|| path.to_owned(), |t| (t.canonical)(path)),
            version: version.map(str::to_owned),
            options: self
                .options
                .iter()
                .filter(|(name, _)| declared.iter().any(|o| o.name == **name))
                .map(|(name, value)| (*name, value.clone()))
                .collect(),
        }
    }
}

/// How a key absent from a secret of `profile` is named: AVP's "missing Vault value" for Vault.
pub fn missing(profile: &Profile) -> &'static str {
    backend::find(&profile.backend_type).map_or("missing value", |t| t.missing)
}

/// The field path of annotation `name`.
pub fn field(name: &str) -> String {
    format!("metadata.annotations['{name}']")
}

/// A scalar's value when YAML 1.1 (Kubernetes) reads it as a string.
pub fn string_value(node: &Node) -> Option<&str> {
    let scalar = node.as_scalar()?;
    is_string(scalar).then_some(scalar.value.as_str())
}

pub fn is_string(scalar: &Scalar) -> bool {
    match scalar.tag.as_deref() {
        Some("tag:yaml.org,2002:str") => true,
        Some(_) => false,
        None => scalar.style != Style::Plain || yaml11_type(&scalar.value) == PlainType::String,
    }
}

/// Go's `strconv.ParseBool` true values; anything else is false.
fn parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}
