//! Computes each field's new value from the fetched secrets, per AVP's kind rules.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Diag, DocPlan, Field, Generic, Plan, Slot, annotations};
use crate::backend::Failure;
use crate::error::{Cause, Diagnostic, excerpt};
use crate::manifest::Output;
use crate::manifest::rewrite::{self, Edit, NewValue};
use crate::manifest::scalar::{PlainType, yaml11_type};
use crate::manifest::tree::{Style, Tree};
use crate::placeholder::Target;
use crate::secret::{SecretData, SecretRef};
use crate::value::Value;

/// The fetched secrets, as `resolve` returns them.
pub type Fetched = HashMap<SecretRef, Result<Arc<SecretData>, Unfetched>>;

/// Why a secret has no data.
#[derive(Clone, Debug)]
pub enum Unfetched {
    Failed(Failure),
    /// Its profile could not be set up or logged in; that error (given here) is reported once,
    /// on its own.
    ProfileFailed(String),
}

/// Why a placeholder has no value.
pub(super) enum NoValue {
    /// The key is absent (remove-missing may delete the field).
    Missing(String),
    Other(Cause),
    /// Its error is reported elsewhere.
    Reported,
}

/// Replaces every placeholder: what each chunk of each file becomes, or every error.
pub fn apply<'f>(
    mut plan: Plan<'f>,
    fetched: &Fetched,
) -> Result<Vec<Vec<Output<'f>>>, Vec<Diagnostic>> {
    let mut errors = std::mem::take(&mut plan.errors);
    for doc in std::mem::take(&mut plan.docs) {
        if let Some(text) = rewrite_document(&doc, fetched, &mut errors) {
            plan.outputs[doc.file][doc.chunk] = Output::Replace(text.into());
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| d.at);
        return Err(errors.into_iter().map(|d| d.diagnostic).collect());
    }
    Ok(plan.outputs)
}

/// The document's new text, or `None` when it has errors (pushed to `errors`) or no change.
fn rewrite_document(
    doc: &DocPlan<'_>,
    fetched: &Fetched,
    errors: &mut Vec<Diag>,
) -> Option<String> {
    let first_error = errors.len();
    let mut edits = Vec::new();
    for field in &doc.fields {
        if let Some(edit) = field_edit(doc, field, fetched, errors) {
            edits.push(edit);
        }
    }
    if errors.len() > first_error || edits.is_empty() {
        return None;
    }
    let rewritten = match Tree::parse(doc.body) {
        Ok(Some(tree)) => rewrite::rewrite(doc.body, &tree, &edits),
        _ => Err("internal error: a document no longer parses; please report this".to_owned()),
    };
    match rewritten {
        Ok(text) => Some(text),
        Err(e) => {
            errors.push(Diag {
                at: (doc.file, doc.chunk, 0),
                diagnostic: doc
                    .place
                    .diagnostic(None, None, Cause::Other(e.to_string())),
            });
            None
        }
    }
}

fn field_edit(
    doc: &DocPlan<'_>,
    field: &Field,
    fetched: &Fetched,
    errors: &mut Vec<Diag>,
) -> Option<Edit> {
    let mut values = Vec::with_capacity(field.slots.len());
    let mut missing = false;
    let mut failed = false;
    for slot in &field.slots {
        match value_of(doc, slot, fetched) {
            Ok(value) => values.push(value),
            Err(no_value) => {
                let (cause, is_missing) = match no_value {
                    NoValue::Missing(m) => (Cause::MissingKey(m), true),
                    NoValue::Other(cause) => (cause, false),
                    NoValue::Reported => {
                        failed = true;
                        continue;
                    }
                };
                let removable = is_missing && doc.remove_missing && field.entry_key.is_some();
                missing |= removable;
                if !removable {
                    failed = true;
                    let placeholder = &field.text[slot.placeholder.range.clone()];
                    let mut diagnostic =
                        doc.place
                            .diagnostic(Some(&field.path), Some(placeholder), cause);
                    diagnostic.in_base64 = field.base64;
                    errors.push(Diag {
                        at: (doc.file, doc.chunk, field.at),
                        diagnostic,
                    });
                }
            }
        }
    }
    if missing {
        return field.entry_key.map(|key_at| Edit::Remove { key_at });
    }
    if failed || values.len() != field.slots.len() {
        return None;
    }
    // A block scalar's own line breaks are not part of what the placeholder fills (AVP injects
    // the typed value of `replicas: >-` then `<path:app#replicas>`).
    let content = match field.style {
        Style::Literal | Style::Folded => field.text.trim_end_matches('\n'),
        _ => field.text.as_str(),
    };
    let whole = field.slots.len() == 1 && field.slots[0].placeholder.range == (0..content.len());
    if doc.typed
        && whole
        && !field.base64
        && matches!(field.style, Style::Plain | Style::Literal | Style::Folded)
        && field.tag.is_none()
        && matches!(
            values[0],
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::List(_) | Value::Map(_)
        )
    {
        let value = values.pop().expect("one value");
        return Some(Edit::Replace {
            at: field.at,
            value: NewValue::Typed(value),
            pieces: Vec::new(),
        });
    }
    // In a base64 Secret value, bytes (a binary secret) go in as they are.
    let replacements: Vec<Vec<u8>> = values
        .into_iter()
        .map(|value| match value {
            Value::Bytes(bytes) if field.base64 => bytes,
            other => other.to_text().into_bytes(),
        })
        .collect();
    let source = field.text.as_bytes();
    let mut out = Vec::with_capacity(source.len());
    let mut pos = 0;
    for (slot, replacement) in field.slots.iter().zip(&replacements) {
        out.extend_from_slice(&source[pos..slot.placeholder.range.start]);
        out.extend_from_slice(replacement);
        pos = slot.placeholder.range.end;
    }
    out.extend_from_slice(&source[pos..]);
    if let Some(tag) = &field.tag
        && !fits_tag(tag, &out)
    {
        errors.push(Diag {
            at: (doc.file, doc.chunk, field.at),
            diagnostic: doc.place.diagnostic(
                Some(&field.path),
                None,
                Cause::Invalid(format!(
                    "the value does not fit the scalar's tag {}",
                    excerpt(&short_tag(tag))
                )),
            ),
        });
        return None;
    }
    let (value, pieces) = if field.base64 {
        (BASE64.encode(out), Vec::new())
    } else {
        let pieces = field
            .slots
            .iter()
            .zip(replacements)
            .map(|(slot, r)| {
                let text = String::from_utf8(r).expect("text values are UTF-8");
                (field.text[slot.placeholder.range.clone()].to_owned(), text)
            })
            .collect();
        (
            String::from_utf8(out).expect("text values are UTF-8"),
            pieces,
        )
    };
    Some(Edit::Replace {
        at: field.at,
        value: NewValue::Text(value),
        pieces,
    })
}

/// Whether `text` is a value of the core type `tag` names; other tags take any text.
fn fits_tag(tag: &str, text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let wanted = match tag {
        "tag:yaml.org,2002:int" => &[PlainType::Int][..],
        "tag:yaml.org,2002:float" => &[PlainType::Float, PlainType::Int][..],
        "tag:yaml.org,2002:bool" => &[PlainType::Bool][..],
        "tag:yaml.org,2002:null" => &[PlainType::Null][..],
        _ => return true,
    };
    wanted.contains(&yaml11_type(text))
}

/// `!!int` for `tag:yaml.org,2002:int`; other tags as they are.
fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(name) => format!("!!{name}"),
        None => tag.to_owned(),
    }
}

/// The value of one placeholder: the secret's key, through its modifiers.
pub(super) fn value_of(
    doc: &DocPlan<'_>,
    slot: &Slot,
    fetched: &Fetched,
) -> Result<Value, NoValue> {
    let p = &slot.placeholder;
    let key = match &p.target {
        Target::Inline { key, .. } | Target::Generic { key } => key,
    };
    let Some(secret) = &slot.secret else {
        return Err(match (&p.target, &doc.generic) {
            (Target::Generic { .. }, Generic::Empty(missing)) => NoValue::Missing(format!(
                "{missing}: {} is empty, so there is no secret to read key {key:?} from",
                annotations::PATH
            )),
            _ => NoValue::Reported,
        });
    };
    let data = match fetched.get(secret) {
        Some(Ok(data)) => data,
        Some(Err(Unfetched::Failed(failure))) => {
            let note = match p.target {
                Target::Generic { .. } => Some("the secret named by avp.kubernetes.io/path"),
                Target::Inline { .. } => None,
            };
            return Err(NoValue::Other(Cause::Backend {
                failure: failure.clone(),
                note,
            }));
        }
        Some(Err(Unfetched::ProfileFailed(_))) => return Err(NoValue::Reported),
        None => {
            return Err(NoValue::Other(Cause::Other(
                "internal error: secret was not fetched".to_owned(),
            )));
        }
    };
    let value = match data.get(key.as_str()) {
        Some(Value::Null) | None => {
            return Err(NoValue::Missing(format!(
                "{}: key {:?} not found in {secret}",
                slot.missing,
                excerpt(key)
            )));
        }
        Some(value) => value.clone(),
    };
    let value = p
        .modifiers
        .iter()
        .try_fold(value, |value, modifier| modifier.apply(value))
        .map_err(|e| NoValue::Other(Cause::Invalid(e)))?;
    // The real render, its value hidden: a reviewer sees which secret lands where.
    Ok(match doc.mask {
        true => Value::String(format!(
            "(masked {}:{}#{})",
            secret.profile,
            excerpt(&secret.path),
            excerpt(key)
        )),
        false => value,
    })
}
