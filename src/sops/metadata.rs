//! The `sops` metadata of a file (getsops/sops `stores/stores.go` `metadata`, and
//! `stores/metadata.go` `ExtractMetadata` for where it is kept), and the data key it wraps.

use std::io::Read as _;

use regex::Regex;

use super::{Error, Identities, Item, METADATA_KEY, Rules, ScalarKind};

/// Key types a file may wrap its data key for; only age is decrypted here.
const OTHER_KEY_TYPES: &[(&str, &str)] = &[
    ("pgp", "PGP"),
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_kv", "Azure Key Vault"),
    ("hc_vault", "HashiCorp Vault transit"),
    ("hckms", "HuaweiCloud KMS"),
];

pub struct Metadata {
    /// Each age stanza: the recipient (a public key) and the armored, encrypted data key.
    age: Vec<(String, String)>,
    /// Key types present besides age.
    others: Vec<&'static str>,
    /// `lastmodified` as sops formats it for the MAC's additional data (RFC 3339, seconds).
    pub lastmodified: String,
    pub mac: String,
    fields: Vec<(String, Item)>,
}

/// Takes the `sops` key out of every document; the first document's is the metadata.
pub fn take(branches: &mut [Item]) -> Result<Metadata, Error> {
    let mut found = None;
    for (i, branch) in branches.iter_mut().enumerate() {
        let Item::Map(entries) = branch else { continue };
        let mut index = 0;
        while index < entries.len() {
            if entries[index].0 == METADATA_KEY {
                let (_, value) = entries.remove(index);
                if i == 0 {
                    if found.is_some() {
                        return Err(Error::Metadata("the sops key appears twice".into()));
                    }
                    found = Some(value);
                }
            } else {
                index += 1;
            }
        }
    }
    match found {
        Some(Item::Map(fields)) => Metadata::new(fields),
        Some(_) => Err(Error::Metadata("the sops key is not a map".into())),
        None => Err(Error::NotSops),
    }
}

/// dotenv keeps the metadata flat: `sops_mac=…`, `sops_age__list_0__map_enc=…` (with `\n`
/// for line breaks), in the one branch (getsops/sops `stores/flatten.go`).
pub fn take_flat(branches: &mut [Item]) -> Result<Metadata, Error> {
    let Some(Item::Map(entries)) = branches.first_mut() else {
        return Err(Error::NotSops);
    };
    let mut fields: Vec<(String, Item)> = Vec::new();
    let mut age: Vec<(usize, String, String)> = Vec::new();
    let mut kept = Vec::new();
    for (key, value) in std::mem::take(entries) {
        let Some(name) = key.strip_prefix("sops_") else {
            kept.push((key, value));
            continue;
        };
        let text = match &value {
            Item::Scalar(s) => s.text.replace("\\n", "\n"),
            _ => String::new(),
        };
        if let Some(rest) = name.strip_prefix("age__list_") {
            let Some((index, field)) = rest.split_once("__map_") else {
                return Err(Error::Metadata(format!("unexpected key {key}")));
            };
            let index: usize = index
                .parse()
                .map_err(|_| Error::Metadata(format!("unexpected key {key}")))?;
            if let Some(entry) = age.iter_mut().find(|(i, _, _)| *i == index) {
                match field {
                    "recipient" => entry.1 = text,
                    "enc" => entry.2 = text,
                    _ => {}
                }
            } else {
                let (recipient, enc) = match field {
                    "recipient" => (text, String::new()),
                    "enc" => (String::new(), text),
                    _ => (String::new(), String::new()),
                };
                age.push((index, recipient, enc));
            }
        } else {
            let top = name.split("__").next().unwrap_or(name).to_owned();
            if !fields.iter().any(|(k, _)| *k == top) {
                fields.push((top, scalar(text)));
            }
        }
    }
    *entries = kept;
    if fields.is_empty() && age.is_empty() {
        return Err(Error::NotSops);
    }
    age.sort_by_key(|(i, _, _)| *i);
    let stanzas = age
        .into_iter()
        .map(|(_, recipient, enc)| {
            Item::Map(vec![
                ("recipient".into(), scalar(recipient)),
                ("enc".into(), scalar(enc)),
            ])
        })
        .collect();
    fields.push(("age".into(), Item::List(stanzas)));
    Metadata::new(fields)
}

fn scalar(text: String) -> Item {
    Item::Scalar(super::Scalar {
        text,
        kind: ScalarKind::Str,
        at: 0,
    })
}

impl Metadata {
    fn new(fields: Vec<(String, Item)>) -> Result<Metadata, Error> {
        let text = |name: &str| match fields.iter().find(|(k, _)| k == name) {
            Some((_, Item::Scalar(s))) => Some(s.text.clone()),
            _ => None,
        };
        let mac = text("mac").ok_or_else(|| Error::Metadata("no mac".into()))?;
        let lastmodified = text("lastmodified")
            .map(|t| rfc3339_seconds(&t))
            .ok_or_else(|| Error::Metadata("no lastmodified".into()))?;
        // A single key group holds the stanzas as the top level would; several are Shamir
        // shares.
        let groups: Vec<&[(String, Item)]> = match fields.iter().find(|(k, _)| k == "key_groups") {
            Some((_, Item::List(groups))) => groups
                .iter()
                .filter_map(|g| match g {
                    Item::Map(entries) => Some(entries.as_slice()),
                    _ => None,
                })
                .collect(),
            _ => vec![fields.as_slice()],
        };
        if groups.len() > 1 {
            return Err(Error::Unsupported(vec!["Shamir key groups"]));
        }
        let group = groups.first().copied().unwrap_or(&[]);
        let mut age = Vec::new();
        let mut others = Vec::new();
        for (key, value) in group {
            if key == "age" {
                let Item::List(stanzas) = value else { continue };
                for stanza in stanzas {
                    let Item::Map(entries) = stanza else { continue };
                    let get = |name: &str| {
                        entries.iter().find_map(|(k, v)| match v {
                            Item::Scalar(s) if k == name => Some(s.text.clone()),
                            _ => None,
                        })
                    };
                    if let (Some(recipient), Some(enc)) = (get("recipient"), get("enc")) {
                        age.push((recipient, enc));
                    }
                }
            } else if let Some((_, name)) = OTHER_KEY_TYPES.iter().find(|(k, _)| k == key)
                && !matches!(value, Item::Null)
                && !matches!(value, Item::List(items) if items.is_empty())
            {
                others.push(*name);
            }
        }
        Ok(Metadata {
            age,
            others,
            lastmodified,
            mac,
            fields,
        })
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.fields.iter().find_map(|(k, v)| match v {
            Item::Scalar(s) if k == name && !s.text.is_empty() => Some(s.text.as_str()),
            _ => None,
        })
    }

    /// Which values the file encrypts.
    pub fn rules(&self) -> Result<Rules, Error> {
        for unsupported in ["encrypted_comment_regex", "unencrypted_comment_regex"] {
            if self.text(unsupported).is_some() {
                return Err(Error::Metadata(format!(
                    "{unsupported} is not supported by secretsubst"
                )));
            }
        }
        let regex = |name: &str| {
            self.text(name)
                .map(|r| {
                    Regex::new(r).map_err(|_| Error::Metadata(format!("{name} is not a regex")))
                })
                .transpose()
        };
        Ok(Rules {
            unencrypted_suffix: self.text("unencrypted_suffix").map(str::to_owned),
            encrypted_suffix: self.text("encrypted_suffix").map(str::to_owned),
            unencrypted_regex: regex("unencrypted_regex")?,
            encrypted_regex: regex("encrypted_regex")?,
            mac_only_encrypted: self
                .text("mac_only_encrypted")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The 32-byte data key, from the first age stanza one of `identities` opens.
    pub fn data_key(&self, identities: &Identities) -> Result<[u8; 32], Error> {
        if self.age.is_empty() {
            return Err(match self.others.is_empty() {
                true => Error::Metadata("no key holds the data key".into()),
                false => Error::Unsupported(self.others.clone()),
            });
        }
        for (_, enc) in &self.age {
            let reader = age::armor::ArmoredReader::new(enc.as_bytes());
            let Ok(decryptor) = age::Decryptor::new(reader) else {
                continue;
            };
            let Ok(mut plain) = decryptor.decrypt(identities.iter()) else {
                continue;
            };
            let mut key = Vec::new();
            if plain.read_to_end(&mut key).is_ok()
                && let Ok(key) = <[u8; 32]>::try_from(key)
            {
                return Ok(key);
            }
        }
        Err(Error::NoIdentity {
            recipients: self.age.iter().map(|(r, _)| r.clone()).collect(),
            sources: identities.sources().to_owned(),
        })
    }
}

/// Go's `time.Parse(time.RFC3339, …).Format(time.RFC3339)`: fractional seconds dropped, a zero
/// offset written `Z`.
fn rfc3339_seconds(text: &str) -> String {
    let text = text.trim();
    let Some(t) = text.find('T') else {
        return text.to_owned();
    };
    let (date, time) = text.split_at(t);
    let zone_at = time
        .rfind(['Z', 'z', '+', '-'])
        .filter(|&i| i > 0)
        .unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let clock = clock.split('.').next().unwrap_or(clock);
    let zone = match zone {
        "z" | "Z" | "+00:00" | "-00:00" => "Z",
        other => other,
    };
    format!("{date}{clock}{zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lastmodified_is_formatted_as_go_formats_rfc3339() {
        assert_eq!(
            rfc3339_seconds("2026-12-02T01:02:03.456789Z"),
            "2026-12-02T01:02:03Z"
        );
        assert_eq!(
            rfc3339_seconds("2026-12-02T01:02:03+00:00"),
            "2026-12-02T01:02:03Z"
        );
        assert_eq!(
            rfc3339_seconds("2026-12-02T01:02:03.5-05:00"),
            "2026-12-02T01:02:03-05:00"
        );
    }
}
