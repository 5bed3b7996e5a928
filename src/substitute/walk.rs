//! The walk over a manifest's values that finds placeholders and the secrets they read.

use super::annotations::{self, Scope, is_string};
use super::{Field, Generic, Place, Plan, Rules, Slot, disallowed};
use crate::error::Cause;
use crate::manifest::tree::{Node, Scalar};
use crate::placeholder::{self, Mode, Placeholder, Target};
use crate::value;

pub(super) struct Walker<'p, 'f, 'r> {
    pub plan: &'p mut Plan<'f>,
    pub rules: &'r Rules<'r>,
    pub place: &'r Place,
    pub mode: Mode,
    pub generic: &'r Generic,
    pub scope: &'r Scope<'r>,
    pub secret_kind: bool,
    /// File and chunk of the document.
    pub at: (usize, usize),
    pub fields: Vec<Field>,
}

impl<'f> Walker<'_, 'f, '_> {
    /// Visits values (never keys), lists nested in lists included; aliases are visited where
    /// their anchor is.
    pub fn node(&mut self, node: &Node, path: &mut String, entry_key: Option<usize>) {
        match node {
            Node::Scalar(scalar) => self.scalar(scalar, path, entry_key),
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.node(item, path, None);
                    path.truncate(len);
                }
            }
            Node::Map(map) => {
                for (key, value) in &map.entries {
                    let Node::Scalar(k) = key else { continue };
                    let len = path.len();
                    push_key(path, &k.value);
                    self.node(value, path, Some(k.span.start));
                    path.truncate(len);
                }
            }
            Node::Alias(_) => {}
        }
    }

    fn scalar(&mut self, scalar: &Scalar, path: &str, entry_key: Option<usize>) {
        // A tagged scalar is substituted under its tag (`!!int <path:…>`); untagged numbers and
        // booleans hold no placeholder.
        let tag = scalar
            .tag
            .as_deref()
            .filter(|t| *t != "tag:yaml.org,2002:str");
        if ((tag.is_some() || !self.secret_kind) && !scalar.value.contains('<'))
            || (tag.is_none() && !is_string(scalar))
        {
            return;
        }
        let decoded = if self.secret_kind && tag.is_none() {
            decode_base64(&scalar.value)
        } else {
            None
        };
        let (text, base64) = match decoded {
            Some(text) if placeholder::has_generic_match(&text) => (text, true),
            _ => (scalar.value.clone(), false),
        };
        let found = placeholder::find(&text, self.mode);
        if found.is_empty() {
            return;
        }
        let mut slots = Vec::with_capacity(found.len());
        for item in found {
            match item {
                Ok(placeholder) => {
                    let slot = self.slot(placeholder, &text, path, scalar.span.start);
                    slots.push(slot);
                }
                Err(e) => {
                    let diagnostic = self.place.diagnostic(
                        Some(path),
                        Some(&text[e.range]),
                        Cause::Invalid(e.message),
                    );
                    self.plan
                        .error((self.at.0, self.at.1, scalar.span.start), diagnostic);
                }
            }
        }
        self.plan.placeholders += slots.len();
        self.fields.push(Field {
            at: scalar.span.start,
            style: scalar.style,
            tag: tag.map(str::to_owned),
            path: path.to_owned(),
            text,
            base64,
            entry_key,
            slots,
        });
    }

    /// The placeholder with the secret it needs, registered for fetching. A `NAME:` prefix of
    /// a configured profile selects that profile; otherwise the manifest's does.
    fn slot(&mut self, placeholder: Placeholder, text: &str, path: &str, offset: usize) -> Slot {
        let scope = self.scope;
        let (secret, missing) = match &placeholder.target {
            Target::Inline {
                path: secret_path,
                version,
                ..
            } => {
                let (profile, secret_path) = match scope.profiles.prefix(secret_path) {
                    Some((profile, rest)) => (profile, rest),
                    None => (scope.profile, secret_path.as_str()),
                };
                let missing = annotations::missing(profile);
                if let Some(reason) = disallowed(self.rules, secret_path) {
                    let diagnostic = self.place.diagnostic(
                        Some(path),
                        Some(&text[placeholder.range.clone()]),
                        Cause::Invalid(reason),
                    );
                    self.plan.error((self.at.0, self.at.1, offset), diagnostic);
                    (None, missing)
                } else {
                    let secret = scope.secret(profile, secret_path, version.as_deref());
                    (Some(secret), missing)
                }
            }
            // Its secret's profile names how a missing key is called; an empty or disallowed
            // path's error is its own.
            Target::Generic { .. } => match self.generic {
                Generic::Secret(secret) => {
                    let profile = scope.profiles.get(&secret.profile).unwrap_or(scope.profile);
                    (Some(secret.clone()), annotations::missing(profile))
                }
                _ => (None, annotations::missing(scope.profile)),
            },
        };
        if let Some(secret) = &secret {
            let key = match &placeholder.target {
                Target::Inline { key, .. } | Target::Generic { key } => key,
            };
            self.plan
                .refs
                .entry(secret.clone())
                .or_default()
                .insert(key.clone());
        }
        Slot {
            placeholder,
            secret,
            missing,
        }
    }
}

/// Appends a key to a field path: `.name`, or `['a.b']` when it holds other characters.
fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if simple {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("['{}']", key.replace('\'', "\\'")));
    }
}

/// AVP's test for a base64 Secret value: standard padded base64 of UTF-8 text, line breaks
/// ignored.
fn decode_base64(text: &str) -> Option<String> {
    let bytes = value::decode_base64(text).ok().filter(|b| !b.is_empty())?;
    String::from_utf8(bytes).ok()
}
