//! Encrypted manifests in the input (what KSOPS users commit), decrypted in place with
//! `AVP_SOPS_MANIFESTS=decrypt`: each document with top-level `sops` metadata has its encrypted
//! scalars replaced by their plaintext and its `sops` entry removed; every other byte stays.
//! Placeholders in the decrypted values are then substituted as in any document.

use crate::error::{Cause, Diagnostic};
use crate::manifest::input::Source;
use crate::manifest::rewrite::{self, Edit, NewValue};
use crate::manifest::split;
use crate::manifest::tree::{Node, Tree};
use crate::sops::{self, Identities, PlainKind};
use crate::value::Value;

/// Decrypts the SOPS documents of `sources` in place. `identities` is called once, for the
/// first encrypted document. Files are decrypted on threads of their own.
pub fn decrypt(
    sources: Vec<Source>,
    identities: &(dyn Fn() -> anyhow::Result<Identities> + Sync),
) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let loaded = std::sync::OnceLock::new();
    let load = || {
        loaded
            .get_or_init(|| identities().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(Clone::clone)
    };
    let results: Vec<Result<Source, Vec<Diagnostic>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .into_iter()
            .map(|source| scope.spawn(|| decrypt_source(source, &load)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a decryption thread panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(source) => out.push(source),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

type Load<'a> = dyn Fn() -> Result<&'a Identities, String> + Sync + 'a;

/// A document of the input with SOPS metadata.
struct Encrypted<'s> {
    chunk: &'s split::Chunk<'s>,
    /// 1-based, as errors count documents.
    document: usize,
    tree: Tree,
    sops_key: usize,
    /// The metadata's MAC, which identifies the SOPS file the document came from: sops writes
    /// the same metadata into every document of a file, and one MAC over all of them.
    mac: String,
}

fn decrypt_source(source: Source, load: &Load<'_>) -> Result<Source, Vec<Diagnostic>> {
    // A file that does not split is reported by the usual steps, which see it next.
    let Ok(parts) = split::split(&source.text) else {
        return Ok(source);
    };
    let mut groups: Vec<Vec<Encrypted<'_>>> = Vec::new();
    let mut document = 0;
    for chunk in &parts.chunks {
        let tree = match Tree::parse(chunk.body) {
            Ok(Some(tree)) => tree,
            Ok(None) => continue,
            Err(_) => {
                document += 1;
                continue;
            }
        };
        document += 1;
        let Some((sops_key, mac)) = metadata(&tree) else {
            continue;
        };
        let doc = Encrypted {
            chunk,
            document,
            tree,
            sops_key,
            mac,
        };
        match groups.iter_mut().find(|g| g[0].mac == doc.mac) {
            Some(group) => group.push(doc),
            None => groups.push(vec![doc]),
        }
    }
    if groups.is_empty() {
        return Ok(source);
    }
    let mut bodies: Vec<(usize, String)> = Vec::new();
    let mut errors = Vec::new();
    for group in &groups {
        match decrypt_file(group, load) {
            Ok(decrypted) => bodies.extend(decrypted),
            Err(e) => errors.push(Diagnostic {
                document: Some(group[0].document),
                ..Diagnostic::in_file(&source.name, Cause::Other(format!("sops: {e}")))
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    bodies.sort_by_key(|(offset, _)| *offset);
    let mut text = String::with_capacity(source.text.len());
    let mut copied = 0;
    for (offset, body) in bodies {
        let old = parts
            .chunks
            .iter()
            .find(|c| c.offset == offset)
            .map_or(0, |c| c.body.len());
        text.push_str(&source.text[copied..offset]);
        text.push_str(&body);
        copied = offset + old;
    }
    text.push_str(&source.text[copied..]);
    Ok(Source {
        name: source.name,
        text,
    })
}

/// The span start of the top-level `sops` key whose value is a map, and its MAC.
fn metadata(tree: &Tree) -> Option<(usize, String)> {
    let Node::Map(map) = &tree.root else {
        return None;
    };
    map.entries.iter().find_map(|(key, value)| {
        let key = key.as_scalar()?;
        let value = tree.resolve(value);
        if key.value != sops::METADATA_KEY || !matches!(value, Node::Map(_)) {
            return None;
        }
        let mac = tree
            .get(value, "mac")
            .and_then(Node::as_scalar)
            .map(|s| s.value.clone())
            .unwrap_or_default();
        Some((key.span.start, mac))
    })
}

/// Decrypts the documents of one SOPS file together (one data key, one MAC over all of them):
/// each document's new text, by its offset in the input.
fn decrypt_file(docs: &[Encrypted<'_>], load: &Load<'_>) -> Result<Vec<(usize, String)>, String> {
    let items = docs
        .iter()
        .map(|d| sops::stores::document_at(&d.tree, d.chunk.offset))
        .collect::<Result<Vec<_>, _>>()?;
    let paths = sops::container_paths(&items);
    let file = sops::File::new(items, false).map_err(|e| e.to_string())?;
    let identities = load()?;
    let decrypted = file.decrypt(identities).map_err(|e| e.to_string())?;
    docs.iter()
        .map(|doc| {
            let start = doc.chunk.offset;
            let end = start + doc.chunk.body.len();
            let local = |at: usize| (start..end).contains(&at).then(|| at - start);
            let values: Vec<(usize, &sops::Plain)> = decrypted
                .values
                .iter()
                .filter_map(|(at, plain)| Some((local(*at)?, plain)))
                .collect();
            let comments: Vec<(usize, &str)> = decrypted
                .comments
                .iter()
                .filter_map(|(at, text)| Some((local(*at)?, text.as_str())))
                .collect();
            let body = decrypt_document(doc, &values, &comments, &decrypted, &paths)?;
            Ok((start, body))
        })
        .collect()
}

fn decrypt_document(
    doc: &Encrypted<'_>,
    values: &[(usize, &sops::Plain)],
    comments: &[(usize, &str)],
    decrypted: &sops::Decrypted,
    paths: &[String],
) -> Result<String, String> {
    let tree = &doc.tree;
    let mut edits: Vec<Edit> = values
        .iter()
        .map(|&(at, plain)| {
            let text = String::from_utf8_lossy(&plain.text).into_owned();
            let typed = match plain.kind {
                PlainKind::Int | PlainKind::Float => {
                    serde_json::from_str::<serde_json::Number>(text.trim())
                        .ok()
                        .map(Value::Number)
                }
                PlainKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => None,
            };
            match typed {
                Some(value) => Edit::Replace {
                    at,
                    value: NewValue::Typed(value),
                    pieces: Vec::new(),
                },
                None => Edit::Replace {
                    at,
                    value: NewValue::Text(text.clone()),
                    pieces: vec![(scalar_text(tree, at).unwrap_or_default(), text)],
                },
            }
        })
        .collect();
    edits.push(Edit::Remove {
        key_at: doc.sops_key,
    });
    let mut text = rewrite::rewrite(doc.chunk.body, tree, &edits)?;
    // sops writes an encrypted comment inside a list as an item: `- ENC[…,type:comment]`.
    for &(at, comment) in comments {
        let encrypted = scalar_text(tree, at).unwrap_or_default();
        text = uncomment_item(&text, &encrypted, comment).ok_or_else(|| {
            "an encrypted comment sits in a flow list, which cannot hold a comment".to_owned()
        })?;
    }
    Ok(decrypt_comment_lines(&text, decrypted, paths))
}

/// `- ENC[…]` (the item holding an encrypted comment) becomes `#` and the comment.
fn uncomment_item(text: &str, encrypted: &str, comment: &str) -> Option<String> {
    let at = text.find(encrypted)?;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    let dash = before.trim_end();
    if !dash.ends_with('-') || !dash[..dash.len() - 1].trim().is_empty() {
        return None;
    }
    let dash_at = line_start + dash.len() - 1;
    Some(format!(
        "{}#{comment}{}",
        &text[..dash_at],
        &text[at + encrypted.len()..]
    ))
}

/// Comment lines `#ENC[…,type:comment]` decrypted (with the path of the map or list they sit
/// in); one that opens under no path is left as it is, as sops leaves it.
fn decrypt_comment_lines(text: &str, decrypted: &sops::Decrypted, paths: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let Some(encrypted) = trimmed
            .strip_prefix('#')
            .filter(|rest| rest.starts_with("ENC[AES256_GCM,"))
        else {
            out.push_str(line);
            continue;
        };
        let end = encrypted.find(']').map_or(encrypted.len(), |i| i + 1);
        match decrypted.comment(&encrypted[..end], paths.iter().map(String::as_str)) {
            Some(comment) => {
                out.push_str(indent);
                out.push('#');
                out.push_str(&comment);
                out.push_str(&encrypted[end..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The value of the scalar starting at `at`.
fn scalar_text(tree: &Tree, at: usize) -> Option<String> {
    let mut stack = vec![&tree.root];
    while let Some(node) = stack.pop() {
        match node {
            Node::Scalar(s) if s.span.start == at => return Some(s.value.clone()),
            Node::Scalar(_) | Node::Alias(_) => {}
            Node::Seq(items) => stack.extend(items),
            Node::Map(map) => {
                for (k, v) in &map.entries {
                    stack.push(k);
                    stack.push(v);
                }
            }
        }
    }
    None
}
