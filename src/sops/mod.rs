//! The SOPS v3 file format, decrypted natively: the data key unwrapped from the file's age
//! stanzas, each value decrypted with its path as additional data, and the MAC recomputed and
//! compared, always. Follows getsops/sops: `sops.go` (the tree walk, which values are encrypted,
//! the MAC), `aes/cipher.go` (values), `age/keysource.go` (identities), `stores/` (how YAML,
//! JSON and dotenv files hold the tree and its metadata) and `cmd/sops/common/common.go` (the MAC
//! check).
//!
//! Used by the `sops` backend (files named by placeholders) and by the decryption of encrypted
//! manifests in the input.

mod cipher;
pub mod identities;
mod metadata;
pub mod stores;

use std::fmt;

use regex::Regex;
use sha2::{Digest as _, Sha512};

pub use cipher::{Plain, PlainKind};
pub use identities::{Identities, NO_IDENTITY_HINT};
use metadata::Metadata;

/// The key a YAML or JSON file keeps its metadata under (`sops_` prefixes in dotenv).
pub const METADATA_KEY: &str = "sops";

/// One value of a SOPS tree as its store reads it.
#[derive(Clone, Debug)]
pub enum Item {
    Map(Vec<(String, Item)>),
    List(Vec<Item>),
    Scalar(Scalar),
    Null,
}

/// A scalar, typed as sops's store types it (YAML core schema, JSON numbers, dotenv strings).
#[derive(Clone, Debug)]
pub struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
    /// Where the scalar starts in its document, so that a caller can edit it in place.
    pub at: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    Str,
    Int,
    Float,
    Bool,
}

/// A file's tree: its documents (one branch each) and its metadata, parsed.
pub struct File {
    pub branches: Vec<Item>,
    metadata: Metadata,
}

/// Why a file cannot be decrypted. No variant holds a plaintext value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No `sops` metadata: an ordinary file.
    NotSops,
    /// The metadata is malformed.
    Metadata(String),
    /// Only key types we do not decrypt (PGP, KMS…) hold the data key.
    Unsupported(Vec<&'static str>),
    /// None of our identities opens an age stanza; the file's recipients (public keys).
    NoIdentity {
        recipients: Vec<String>,
        sources: String,
    },
    /// A value does not decrypt; where it is.
    Value { path: String, reason: String },
    /// The file was changed after encryption.
    MacMismatch,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotSops => f.write_str("not a SOPS file (no sops metadata)"),
            Error::Metadata(reason) => write!(f, "invalid sops metadata: {reason}"),
            Error::Unsupported(kinds) => write!(
                f,
                "the data key is encrypted only for {} keys, which secretsubst does not decrypt (only age)",
                kinds.join(", ")
            ),
            Error::NoIdentity {
                recipients,
                sources,
            } => write!(
                f,
                "no age identity matches the file's recipients {} (identities from {sources})",
                recipients.join(", ")
            ),
            Error::Value { path, reason } => write!(f, "value at {path}: {reason}"),
            Error::MacMismatch => f.write_str(
                "MAC mismatch: the file was changed after it was encrypted (or the MAC was)",
            ),
        }
    }
}

impl File {
    /// Splits the metadata off `branches` (the first document's `sops` key, or dotenv's flat
    /// `sops_*` keys); [`Error::NotSops`] when there is none.
    pub fn new(mut branches: Vec<Item>, flat: bool) -> Result<File, Error> {
        let metadata = match flat {
            false => metadata::take(&mut branches)?,
            true => metadata::take_flat(&mut branches)?,
        };
        Ok(File { branches, metadata })
    }

    /// Decrypts every value, in place of its ciphertext, after unwrapping the data key and
    /// verifying the MAC over the plaintext: a partial or tampered file yields nothing.
    pub fn decrypt(&self, identities: &Identities) -> Result<Decrypted, Error> {
        let key = self.metadata.data_key(identities)?;
        let rules = self.metadata.rules()?;
        let mut walk = Walk {
            key: &key,
            rules: &rules,
            hash: Sha512::new(),
            decrypted: Decrypted::default(),
        };
        if rules.mac_only_encrypted {
            walk.hash.update(MAC_ONLY_ENCRYPTED_INITIALIZATION);
        }
        for branch in &self.branches {
            walk.item(branch, &mut Vec::new())?;
        }
        let computed = hex_upper(&walk.hash.finalize());
        let stored = cipher::decrypt(&self.metadata.mac, &key, &self.metadata.lastmodified)
            .map_err(|_| Error::MacMismatch)?;
        if stored.text != computed.as_bytes() {
            return Err(Error::MacMismatch);
        }
        walk.decrypted.key = key;
        Ok(walk.decrypted)
    }
}

/// A decrypted file: its values by position (`Scalar::at`), and the list items that were
/// comments (sops writes an encrypted comment inside a list as an item of the list).
#[derive(Default)]
pub struct Decrypted {
    pub values: Vec<(usize, Plain)>,
    pub comments: Vec<(usize, String)>,
    key: [u8; 32],
}

impl Decrypted {
    /// The text of an encrypted comment line (`#ENC[…,type:comment]`) of the file, if it was
    /// encrypted under one of `paths` (the paths of the file's maps and lists, `a:b:`; sops
    /// encrypts a comment with the path of the map or list it sits in).
    pub fn comment<'p>(
        &self,
        encrypted: &str,
        paths: impl IntoIterator<Item = &'p str>,
    ) -> Option<String> {
        paths.into_iter().find_map(|aad| {
            let plain = cipher::decrypt(encrypted, &self.key, aad).ok()?;
            (plain.kind == PlainKind::Comment)
                .then(|| String::from_utf8_lossy(&plain.text).into_owned())
        })
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("values", &self.values.len())
            .field("comments", &self.comments.len())
            .finish_non_exhaustive()
    }
}

/// The additional data of every map and list of `items` (`:` for the top level, `a:b:` below),
/// each once: where an encrypted comment line may belong.
pub fn container_paths(items: &[Item]) -> Vec<String> {
    fn walk(item: &Item, path: &mut Vec<String>, out: &mut Vec<String>) {
        let here = format!("{}:", path.join(":"));
        match item {
            Item::Map(entries) => {
                if !out.contains(&here) {
                    out.push(here);
                }
                for (key, value) in entries {
                    path.push(key.clone());
                    walk(value, path, out);
                    path.pop();
                }
            }
            Item::List(items) => {
                if !out.contains(&here) {
                    out.push(here);
                }
                for item in items {
                    walk(item, path, out);
                }
            }
            Item::Scalar(_) | Item::Null => {}
        }
    }
    let mut out = Vec::new();
    for item in items {
        walk(item, &mut Vec::new(), &mut out);
    }
    out
}

/// sops `MACOnlyEncryptedInitialization`: sha256("sops"), hashed first when only encrypted
/// values are covered, so that the two kinds of MAC differ.
const MAC_ONLY_ENCRYPTED_INITIALIZATION: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Which values a file encrypts (sops `Tree.shouldBeEncrypted`).
pub struct Rules {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    /// Whether the value at `path` (its keys, outermost first) is encrypted. Each rule looks at
    /// every key of the path; later rules override earlier ones, as in sops.
    fn encrypted(&self, path: &[&str]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.unencrypted_suffix
            && path.iter().any(|k| k.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &self.encrypted_suffix {
            encrypted = path.iter().any(|k| k.ends_with(suffix.as_str()));
        }
        if let Some(re) = &self.unencrypted_regex
            && path.iter().any(|k| re.is_match(k))
        {
            encrypted = false;
        }
        if let Some(re) = &self.encrypted_regex {
            encrypted = path.iter().any(|k| re.is_match(k));
        }
        encrypted
    }
}

struct Walk<'k> {
    key: &'k [u8; 32],
    rules: &'k Rules,
    hash: Sha512,
    decrypted: Decrypted,
}

impl Walk<'_> {
    /// Visits values in document order; list items share their list's path (sops `walkSlice`).
    fn item<'a>(&mut self, item: &'a Item, path: &mut Vec<&'a str>) -> Result<(), Error> {
        match item {
            Item::Map(entries) => {
                for (key, value) in entries {
                    path.push(key);
                    self.item(value, path)?;
                    path.pop();
                }
            }
            Item::List(items) => {
                for item in items {
                    self.item(item, path)?;
                }
            }
            // sops walks no null value: it is neither decrypted nor in the MAC.
            Item::Null => {}
            Item::Scalar(scalar) => self.scalar(scalar, path)?,
        }
        Ok(())
    }

    fn scalar(&mut self, scalar: &Scalar, path: &[&str]) -> Result<(), Error> {
        let encrypted = self.rules.encrypted(path);
        let bytes = if encrypted {
            if scalar.kind != ScalarKind::Str {
                return Err(Error::Value {
                    path: path_text(path),
                    reason: "expected an encrypted value, found a plain one".to_owned(),
                });
            }
            let additional_data = format!("{}:", path.join(":"));
            let plain =
                cipher::decrypt(&scalar.text, self.key, &additional_data).map_err(|reason| {
                    Error::Value {
                        path: path_text(path),
                        reason,
                    }
                })?;
            // A comment is in no MAC (sops 3.11 `Tree.Decrypt` tests the decrypted value).
            if plain.kind == PlainKind::Comment {
                let text = String::from_utf8_lossy(&plain.text).into_owned();
                self.decrypted.comments.push((scalar.at, text));
                return Ok(());
            }
            let bytes = mac_bytes_of_plain(&plain);
            if !scalar.text.is_empty() {
                self.decrypted.values.push((scalar.at, plain));
            }
            bytes
        } else {
            mac_bytes_of_clear(scalar)
        };
        if !self.rules.mac_only_encrypted || encrypted {
            self.hash.update(bytes);
        }
        Ok(())
    }
}

fn path_text(path: &[&str]) -> String {
    crate::error::excerpt(&path.join("."))
}

/// What sops hashes for a decrypted value (`ToBytes` of the typed value).
fn mac_bytes_of_plain(plain: &Plain) -> Vec<u8> {
    let text = String::from_utf8_lossy(&plain.text);
    match plain.kind {
        PlainKind::Int => text
            .trim()
            .parse::<i64>()
            .map_or_else(|_| plain.text.clone(), |n| n.to_string().into_bytes()),
        PlainKind::Float => text
            .trim()
            .parse::<f64>()
            .map_or_else(|_| plain.text.clone(), |f| go_float(f).into_bytes()),
        PlainKind::Bool => match go_bool(text.trim()) {
            Some(true) => b"True".to_vec(),
            Some(false) => b"False".to_vec(),
            None => plain.text.clone(),
        },
        PlainKind::Str | PlainKind::Bytes | PlainKind::Time | PlainKind::Comment => {
            plain.text.clone()
        }
    }
}

/// What sops hashes for a value left in the clear, typed by its store.
fn mac_bytes_of_clear(scalar: &Scalar) -> Vec<u8> {
    match scalar.kind {
        ScalarKind::Str => scalar.text.clone().into_bytes(),
        ScalarKind::Bool => match go_bool(&scalar.text.to_ascii_lowercase()) {
            Some(false) => b"False".to_vec(),
            _ => b"True".to_vec(),
        },
        // Integers outside i64 are floats to sops's stores.
        ScalarKind::Int => match stores::parse_int(&scalar.text) {
            Some(n) => n.to_string().into_bytes(),
            None => go_float(scalar.text.parse::<f64>().unwrap_or(f64::NAN)).into_bytes(),
        },
        ScalarKind::Float => go_float(stores::parse_float(&scalar.text)).into_bytes(),
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that read back, never in
/// exponent form; Rust's `Display` for `f64` is the same but for the infinities.
fn go_float(f: f64) -> String {
    match f {
        f64::INFINITY => "+Inf".to_owned(),
        f64::NEG_INFINITY => "-Inf".to_owned(),
        f => f.to_string(),
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(
        unencrypted_suffix: Option<&str>,
        encrypted_suffix: Option<&str>,
        unencrypted_regex: Option<&str>,
        encrypted_regex: Option<&str>,
    ) -> Rules {
        Rules {
            unencrypted_suffix: unencrypted_suffix.map(str::to_owned),
            encrypted_suffix: encrypted_suffix.map(str::to_owned),
            unencrypted_regex: unencrypted_regex.map(|r| Regex::new(r).unwrap()),
            encrypted_regex: encrypted_regex.map(|r| Regex::new(r).unwrap()),
            mac_only_encrypted: false,
        }
    }

    #[test]
    fn each_rule_looks_at_every_key_of_the_path() {
        let all = rules(None, None, None, None);
        assert!(all.encrypted(&["a", "b"]));
        let suffix = rules(Some("_unencrypted"), None, None, None);
        assert!(!suffix.encrypted(&["x_unencrypted", "b"]));
        assert!(suffix.encrypted(&["x", "b"]));
        let enc_suffix = rules(None, Some("_secret"), None, None);
        assert!(enc_suffix.encrypted(&["db_secret", "pw"]));
        assert!(!enc_suffix.encrypted(&["db", "pw"]));
        let ksops = rules(None, None, None, Some("^(data|stringData)$"));
        assert!(ksops.encrypted(&["stringData", "password"]));
        assert!(!ksops.encrypted(&["metadata", "name"]));
        let unenc = rules(None, None, Some("^public"), None);
        assert!(!unenc.encrypted(&["public_key"]));
    }

    #[test]
    fn mac_bytes_follow_gos_formatting() {
        let plain = |text: &str, kind| Plain {
            text: text.as_bytes().to_vec(),
            kind,
        };
        assert_eq!(mac_bytes_of_plain(&plain("true", PlainKind::Bool)), b"True");
        assert_eq!(mac_bytes_of_plain(&plain("1.50", PlainKind::Float)), b"1.5");
        assert_eq!(mac_bytes_of_plain(&plain("1e3", PlainKind::Float)), b"1000");
        assert_eq!(mac_bytes_of_plain(&plain("042", PlainKind::Int)), b"42");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(hex_upper(&[0xab, 0x01]), "AB01");
    }
}
