//! Walks the documents twice: `collect` finds every placeholder and the secrets they need;
//! `apply` computes each field's new value from the fetched secrets, per AVP's kind rules, and
//! has the manifest module rewrite the text.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use regex::Regex;

use crate::error::excerpt;
use crate::manifest::rewrite::{self, Edit, NewValue};
use crate::manifest::scalar::{PlainType, yaml11_type};
use crate::manifest::tree::{Node, Scalar, Style, Tree};
use crate::manifest::{File, Output};
use crate::placeholder::{self, Mode, Placeholder, Target};
use crate::secret::{KvVersion, SecretData, SecretRef};
use crate::value::{self, Value};

const ANNOTATION_PATH: &str = "avp.kubernetes.io/path";
const ANNOTATION_IGNORE: &str = "avp.kubernetes.io/ignore";
const ANNOTATION_KV_VERSION: &str = "avp.kubernetes.io/kv-version";
const ANNOTATION_SECRET_VERSION: &str = "avp.kubernetes.io/secret-version";
const ANNOTATION_REMOVE_MISSING: &str = "avp.kubernetes.io/remove-missing";
const ANNOTATION_NAMESPACE: &str = "avp.kubernetes.io/namespace";

/// What a manifest's annotations add to every secret it reads.
struct Scope {
    kv_version: Option<KvVersion>,
    namespace: Option<String>,
}

impl Scope {
    fn secret(&self, path: &str, version: Option<&str>) -> SecretRef {
        SecretRef {
            path: path.to_owned(),
            version: version.map(str::to_owned),
            kv_version: self.kv_version,
            namespace: self.namespace.clone(),
        }
    }
}

/// Settings that shape collection.
pub struct Rules<'a> {
    pub path_validation: Option<&'a Regex>,
    /// `AVP_TYPE`, which names the kind of value that is missing in errors.
    pub backend: &'a str,
}

/// Everything found in the input: what to fetch, and where each value goes.
pub struct Plan<'f> {
    docs: Vec<DocPlan<'f>>,
    /// What each chunk of each file becomes when it holds no placeholder to replace.
    outputs: Vec<Vec<Output<'f>>>,
    pub refs: BTreeSet<SecretRef>,
    errors: Vec<Diag>,
    /// Documents that are Kubernetes manifests (have a kind).
    pub manifests: usize,
    /// Documents parsed, manifests or not.
    pub documents: usize,
    pub placeholders: usize,
}

/// An error and where it belongs in the input, so errors print in input order.
struct Diag {
    /// File, chunk, and byte offset of the scalar in the chunk.
    at: (usize, usize, usize),
    message: String,
}

struct DocPlan<'f> {
    file: usize,
    chunk: usize,
    /// Kept only for documents with placeholders, so memory stays near the input's size.
    tree: Tree,
    body: &'f str,
    label: String,
    /// How a missing key is named: AVP's "missing Vault value" only for Vault.
    missing: &'static str,
    typed: bool,
    remove_missing: bool,
    /// The annotation path's secret, for generic placeholders.
    generic: Generic,
    fields: Vec<Field>,
}

enum Generic {
    /// No `avp.kubernetes.io/path` annotation.
    Absent,
    Empty,
    /// The path is disallowed; its error is already reported.
    Disallowed,
    Secret(SecretRef),
}

struct Field {
    /// `span.start` of the scalar, which identifies it to the rewriter.
    at: usize,
    style: Style,
    /// An explicit tag other than `!!str` (`!!int`, `!custom`): kept, and the new text must fit it.
    tag: Option<String>,
    path: String,
    /// The text searched: the scalar's value, or its base64 decoding in a Secret.
    text: String,
    base64: bool,
    /// The key of the mapping entry holding this value, for remove-missing.
    entry_key: Option<usize>,
    placeholders: Vec<(Placeholder, Option<SecretRef>)>,
}

/// Parses every document and finds its placeholders.
pub fn collect<'f>(files: &[File<'f>], rules: &Rules<'_>) -> Plan<'f> {
    let mut plan = Plan {
        docs: Vec::new(),
        outputs: Vec::new(),
        refs: BTreeSet::new(),
        errors: Vec::new(),
        manifests: 0,
        documents: 0,
        placeholders: 0,
    };
    for (file_index, file) in files.iter().enumerate() {
        let mut outputs = Vec::with_capacity(file.split.chunks.len());
        let mut index = 0;
        for (chunk_index, chunk) in file.split.chunks.iter().enumerate() {
            let at = (file_index, chunk_index);
            let output = match file.parse(chunk, index + 1) {
                Ok(None) => Output::Keep,
                Ok(Some(tree)) => {
                    index += 1;
                    plan.documents += 1;
                    let label = format!("{}: doc {index}", file.name);
                    plan.document(rules, tree, label, chunk.body, at)
                }
                Err(message) => {
                    index += 1;
                    plan.error((file_index, chunk_index, 0), message);
                    Output::Keep
                }
            };
            outputs.push(output);
        }
        plan.outputs.push(outputs);
    }
    plan
}

impl<'f> Plan<'f> {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors found while collecting, in input order.
    pub fn into_errors(mut self) -> Vec<String> {
        self.errors.sort_by_key(|d| d.at);
        self.errors.into_iter().map(|d| d.message).collect()
    }

    fn error(&mut self, at: (usize, usize, usize), message: String) {
        self.errors.push(Diag { at, message });
    }

    /// Plans one document; returns its output unless it has fields to replace.
    fn document(
        &mut self,
        rules: &Rules<'_>,
        tree: Tree,
        label: String,
        body: &'f str,
        (file, chunk): (usize, usize),
    ) -> Output<'f> {
        let root = &tree.root;
        match root {
            Node::Map(_) => {}
            Node::Scalar(s)
                if s.style == Style::Plain && yaml11_type(&s.value) == PlainType::Null =>
            {
                return Output::Keep;
            }
            other => {
                let found = match other {
                    Node::Seq(_) => "a list",
                    _ => "a scalar",
                };
                self.error(
                    (file, chunk, 0),
                    format!("{label}: expected a mapping (a Kubernetes manifest), found {found}"),
                );
                return Output::Keep;
            }
        }
        let Some(kind) = tree
            .get(root, "kind")
            .and_then(string_value)
            .filter(|k| !k.is_empty())
        else {
            tracing::warn!(
                "{label} has no kind, so it is not a Kubernetes manifest; left out of the output"
            );
            return Output::Drop;
        };
        self.manifests += 1;
        let metadata = tree.get(root, "metadata");
        let name = |key| {
            metadata
                .and_then(|m| tree.get(m, key))
                .and_then(string_value)
        };
        let label = match name("name").or_else(|| name("generateName")) {
            Some(name) => format!("{label} ({}/{})", excerpt(kind), excerpt(name)),
            None => format!("{label} ({})", excerpt(kind)),
        };
        let annotations = annotations(&tree, metadata, &label);
        let get = |name: &str| {
            annotations
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if get(ANNOTATION_IGNORE).is_some_and(parse_bool) {
            return Output::Keep;
        }
        let remove_missing = get(ANNOTATION_REMOVE_MISSING).is_some_and(parse_bool);
        if remove_missing && kind != "Secret" && kind != "ConfigMap" {
            self.error((file, chunk, 0), format!(
                "{label}: avp.kubernetes.io/remove-missing annotation can only be used on Secret or ConfigMap resources"
            ));
            return Output::Keep;
        }
        let kv_version = match get(ANNOTATION_KV_VERSION) {
            None => None,
            Some("1") => Some(KvVersion::V1),
            Some("2") => Some(KvVersion::V2),
            Some(other) => {
                self.error((file, chunk, 0), format!(
                    "{label}: {}: Unsupported kvVersion specified: {other:?} (expected \"1\" or \"2\")",
                    annotation_field(ANNOTATION_KV_VERSION)
                ));
                return Output::Keep;
            }
        };
        let namespace = get(ANNOTATION_NAMESPACE).filter(|ns| !ns.is_empty());
        // It becomes an HTTP header: a line break there would split the request.
        if let Some(c) = namespace.and_then(|ns| ns.chars().find(|c| c.is_control())) {
            self.error(
                (file, chunk, 0),
                format!(
                    "{label}: {}: a namespace cannot hold the control character {:?}",
                    annotation_field(ANNOTATION_NAMESPACE),
                    c
                ),
            );
            return Output::Keep;
        }
        let scope = Scope {
            kv_version,
            namespace: namespace.map(str::to_owned),
        };
        let (mode, generic) = match get(ANNOTATION_PATH) {
            None => (Mode::Inline, Generic::Absent),
            Some("") => (Mode::Generic, Generic::Empty),
            Some(path) => match disallowed(rules, path) {
                Some(message) => {
                    self.error(
                        (file, chunk, 0),
                        format!("{label}: {}: {message}", annotation_field(ANNOTATION_PATH)),
                    );
                    (Mode::Generic, Generic::Disallowed)
                }
                None => (
                    Mode::Generic,
                    Generic::Secret(scope.secret(
                        path,
                        get(ANNOTATION_SECRET_VERSION).filter(|v| !v.is_empty()),
                    )),
                ),
            },
        };
        let mut walker = Walker {
            plan: self,
            rules,
            label: &label,
            mode,
            generic: &generic,
            scope: &scope,
            secret_kind: kind == "Secret",
            at: (file, chunk),
            fields: Vec::new(),
        };
        walker.node(root, &mut String::new(), None);
        let fields = walker.fields;
        if fields.is_empty() {
            return Output::Keep;
        }
        let typed = kind != "Secret" && kind != "ConfigMap";
        self.docs.push(DocPlan {
            file,
            chunk,
            tree,
            body,
            typed,
            remove_missing,
            generic,
            label,
            missing: if rules.backend == "vault" {
                "missing Vault value"
            } else {
                "missing value"
            },
            fields,
        });
        Output::Keep
    }
}

/// The annotations whose values are strings, merged keys included, each name once with the
/// value Kubernetes reads (the last of repeated keys); the others are reported and skipped one
/// by one.
fn annotations(tree: &Tree, metadata: Option<&Node>, label: &str) -> Vec<(String, String)> {
    let Some(map @ Node::Map(_)) = metadata.and_then(|m| tree.get(m, "annotations")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in tree.entries(map) {
        let Some(key) = tree.resolve(key).as_scalar().map(|k| k.value.clone()) else {
            continue;
        };
        match string_value(tree.resolve(value)) {
            Some(value) => out.push((key, value.to_owned())),
            None if key.starts_with("avp.kubernetes.io/") => {
                tracing::warn!(
                    "{label}: annotation {} is not a string, so it is ignored (quote its value)",
                    excerpt(&key)
                );
            }
            None => {}
        }
    }
    out
}

fn annotation_field(name: &str) -> String {
    format!("metadata.annotations['{name}']")
}

/// A scalar's value when YAML 1.1 (Kubernetes) reads it as a string.
fn string_value(node: &Node) -> Option<&str> {
    let scalar = node.as_scalar()?;
    is_string(scalar).then_some(scalar.value.as_str())
}

fn is_string(scalar: &Scalar) -> bool {
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

fn disallowed(rules: &Rules<'_>, path: &str) -> Option<String> {
    rules
        .path_validation
        .filter(|re| !re.is_match(path))
        .map(|_| {
            format!(
                "the path {} is disallowed by AVP_PATH_VALIDATION restriction",
                excerpt(path)
            )
        })
}

struct Walker<'p, 'f, 'r> {
    plan: &'p mut Plan<'f>,
    rules: &'r Rules<'r>,
    label: &'r str,
    mode: Mode,
    generic: &'r Generic,
    scope: &'r Scope,
    secret_kind: bool,
    /// File and chunk of the document.
    at: (usize, usize),
    fields: Vec<Field>,
}

impl<'f> Walker<'_, 'f, '_> {
    /// Visits values (never keys), lists nested in lists included; aliases are visited where
    /// their anchor is.
    fn node(&mut self, node: &Node, path: &mut String, entry_key: Option<usize>) {
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
        if (tag.is_none() && !is_string(scalar))
            || ((tag.is_some() || !self.secret_kind) && !scalar.value.contains('<'))
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
        let mut placeholders = Vec::with_capacity(found.len());
        for item in found {
            match item {
                Ok(p) => {
                    let secret = self.secret_for(&p, &text, path, scalar.span.start);
                    placeholders.push((p, secret));
                }
                Err(e) => {
                    let message = format!(
                        "{}: {}: {}: {}",
                        self.label,
                        excerpt(path),
                        excerpt(&text[e.range]),
                        e.message
                    );
                    self.plan
                        .error((self.at.0, self.at.1, scalar.span.start), message);
                }
            }
        }
        self.plan.placeholders += placeholders.len();
        self.fields.push(Field {
            at: scalar.span.start,
            style: scalar.style,
            tag: tag.map(str::to_owned),
            path: path.to_owned(),
            text,
            base64,
            entry_key,
            placeholders,
        });
    }

    /// The secret a placeholder needs, registered for fetching; `None` when it needs none
    /// (its error is already reported, or it will be reported as missing).
    fn secret_for(
        &mut self,
        p: &Placeholder,
        text: &str,
        path: &str,
        offset: usize,
    ) -> Option<SecretRef> {
        let secret = match &p.target {
            Target::Inline {
                path: secret_path,
                version,
                ..
            } => {
                if let Some(message) = disallowed(self.rules, secret_path) {
                    let message = format!(
                        "{}: {}: {}: {message}",
                        self.label,
                        excerpt(path),
                        excerpt(&text[p.range.clone()])
                    );
                    self.plan.error((self.at.0, self.at.1, offset), message);
                    return None;
                }
                self.scope.secret(secret_path, version.as_deref())
            }
            Target::Generic { .. } => match self.generic {
                Generic::Secret(secret) => secret.clone(),
                _ => return None,
            },
        };
        self.plan.refs.insert(secret.clone());
        Some(secret)
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

/// The fetched secrets, as `resolve` returns them.
pub type Fetched = HashMap<SecretRef, Result<Arc<SecretData>, String>>;

/// Why a placeholder has no value.
enum Failure {
    /// The key is absent (remove-missing may delete the field).
    Missing(String),
    Other(String),
    /// Its error was reported when the placeholder was collected.
    Reported,
}

/// Replaces every placeholder: what each chunk of each file becomes, or every error.
pub fn apply<'f>(
    mut plan: Plan<'f>,
    fetched: &Fetched,
) -> Result<Vec<Vec<Output<'f>>>, Vec<String>> {
    let mut errors = std::mem::take(&mut plan.errors);
    for doc in &plan.docs {
        if let Some(text) = rewrite_document(doc, fetched, &mut errors) {
            plan.outputs[doc.file][doc.chunk] = Output::Replace(text.into());
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| d.at);
        return Err(errors.into_iter().map(|d| d.message).collect());
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
    match rewrite::rewrite(doc.body, &doc.tree, &edits) {
        Ok(text) => Some(text),
        Err(e) => {
            errors.push(Diag {
                at: (doc.file, doc.chunk, 0),
                message: format!("{}: {e}", doc.label),
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
    let mut values = Vec::with_capacity(field.placeholders.len());
    let mut missing = false;
    let mut failed = false;
    let where_ = if field.base64 {
        " (in the base64-decoded value)"
    } else {
        ""
    };
    for (p, secret) in &field.placeholders {
        match value_of(doc, p, secret.as_ref(), fetched) {
            Ok(value) => values.push(value),
            Err(failure) => {
                let (message, is_missing) = match failure {
                    Failure::Missing(m) => (m, true),
                    Failure::Other(m) => (m, false),
                    Failure::Reported => {
                        failed = true;
                        continue;
                    }
                };
                let removable = is_missing && doc.remove_missing && field.entry_key.is_some();
                missing |= removable;
                if !removable {
                    failed = true;
                    errors.push(Diag {
                        at: (doc.file, doc.chunk, field.at),
                        message: format!(
                            "{}: {}: {}{where_}: {message}",
                            doc.label,
                            excerpt(&field.path),
                            excerpt(&field.text[p.range.clone()])
                        ),
                    });
                }
            }
        }
    }
    if missing {
        return field.entry_key.map(|key_at| Edit::Remove { key_at });
    }
    if failed || values.len() != field.placeholders.len() {
        return None;
    }
    // A block scalar's own line breaks are not part of what the placeholder fills (AVP injects
    // the typed value of `replicas: >-` then `<path:app#replicas>`).
    let content = match field.style {
        Style::Literal | Style::Folded => field.text.trim_end_matches('\n'),
        _ => field.text.as_str(),
    };
    let whole =
        field.placeholders.len() == 1 && field.placeholders[0].0.range == (0..content.len());
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
    for ((p, _), replacement) in field.placeholders.iter().zip(&replacements) {
        out.extend_from_slice(&source[pos..p.range.start]);
        out.extend_from_slice(replacement);
        pos = p.range.end;
    }
    out.extend_from_slice(&source[pos..]);
    if let Some(tag) = &field.tag
        && !fits_tag(tag, &out)
    {
        errors.push(Diag {
            at: (doc.file, doc.chunk, field.at),
            message: format!(
                "{}: {}: the value does not fit the scalar's tag {}",
                doc.label,
                excerpt(&field.path),
                excerpt(&short_tag(tag))
            ),
        });
        return None;
    }
    let (value, pieces) = if field.base64 {
        (BASE64.encode(out), Vec::new())
    } else {
        let pieces = field
            .placeholders
            .iter()
            .zip(replacements)
            .map(|((p, _), r)| {
                let text = String::from_utf8(r).expect("text values are UTF-8");
                (field.text[p.range.clone()].to_owned(), text)
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
fn value_of(
    doc: &DocPlan<'_>,
    p: &Placeholder,
    secret: Option<&SecretRef>,
    fetched: &Fetched,
) -> Result<Value, Failure> {
    let key = match &p.target {
        Target::Inline { key, .. } | Target::Generic { key } => key,
    };
    let Some(secret) = secret else {
        return Err(match (&p.target, &doc.generic) {
            (Target::Generic { .. }, Generic::Empty) => Failure::Missing(format!(
                "{}: {ANNOTATION_PATH} is empty, so there is no secret to read key {key:?} from",
                doc.missing
            )),
            _ => Failure::Reported,
        });
    };
    let data = match fetched.get(secret) {
        Some(Ok(data)) => data,
        Some(Err(e)) => {
            return Err(Failure::Other(match p.target {
                Target::Generic { .. } => format!("{e} (the secret named by {ANNOTATION_PATH})"),
                Target::Inline { .. } => e.clone(),
            }));
        }
        None => {
            return Err(Failure::Other(
                "internal error: secret was not fetched".to_owned(),
            ));
        }
    };
    let value = match data.get(key.as_str()) {
        Some(Value::Null) | None => {
            return Err(Failure::Missing(format!(
                "{}: key {:?} not found in {secret}",
                doc.missing,
                excerpt(key)
            )));
        }
        Some(value) => value.clone(),
    };
    p.modifiers
        .iter()
        .try_fold(value, |value, modifier| modifier.apply(value))
        .map_err(Failure::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{self, input::Source};

    /// Runs collect and apply over one file, with `secrets` as the fetched data.
    fn run(text: &str, secrets: serde_json::Value) -> Result<String, Vec<String>> {
        let source = Source {
            name: "m.yaml".into(),
            text: text.into(),
        };
        let files = vec![manifest::split(&source).unwrap()];
        let plan = collect(
            &files,
            &Rules {
                path_validation: None,
                backend: "test",
            },
        );
        let serde_json::Value::Object(paths) = secrets else {
            panic!()
        };
        let fetched: Fetched = plan
            .refs
            .iter()
            .map(|r| {
                let result = match paths.get(&r.path) {
                    Some(serde_json::Value::Object(keys)) => Ok(Arc::new(
                        keys.iter()
                            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                            .collect(),
                    )),
                    _ => Err(format!("test: no secret {}", r.path)),
                };
                (r.clone(), result)
            })
            .collect();
        let outputs = apply(plan, &fetched)?;
        let mut out = Vec::new();
        manifest::write(&mut out, &files, &outputs).unwrap();
        Ok(String::from_utf8(out).unwrap())
    }

    fn app() -> serde_json::Value {
        serde_json::json!({"app": {"user": "admin", "n": 3, "cfg": {"a": [1]}, "b64": "aGk="}})
    }

    #[test]
    fn typed_injection_only_for_a_whole_plain_scalar_outside_secret_and_configmap() {
        let out = run(
            "kind: Deployment\nx: <path:app#n>\ny: \"<path:app#n>\"\nz: n=<path:app#n>\n",
            app(),
        )
        .unwrap();
        assert_eq!(out, "kind: Deployment\nx: 3\ny: \"3\"\nz: n=3\n");
        let out = run(
            "kind: ConfigMap\ndata:\n  x: <path:app#n>\n  c: <path:app#cfg>\n",
            app(),
        )
        .unwrap();
        assert_eq!(
            out,
            "kind: ConfigMap\ndata:\n  x: \"3\"\n  c: \"{\\\"a\\\":[1]}\"\n"
        );
    }

    #[test]
    fn generic_placeholders_need_the_path_annotation() {
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: app\nstringData:\n  u: <user>\n";
        assert!(run(text, app()).unwrap().ends_with("  u: admin\n"));
        let out = run("kind: Secret\nstringData:\n  u: <user>\n", app()).unwrap();
        assert!(out.ends_with("  u: <user>\n"));
    }

    #[test]
    fn base64_secret_values_are_decoded_substituted_and_encoded() {
        // base64 of "<path:app#user>" and of "<b>hi</b>" (no placeholder: untouched)
        let text = "kind: Secret\ndata:\n  u: PHBhdGg6YXBwI3VzZXI+\n  h: PGI+aGk8L2I+\n";
        let out = run(text, app()).unwrap();
        assert_eq!(
            out,
            "kind: Secret\ndata:\n  u: YWRtaW4=\n  h: PGI+aGk8L2I+\n"
        );
    }

    #[test]
    fn ignored_manifests_are_copied_untouched_and_fetch_nothing() {
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/ignore: \"true\"\nx: <path:nowhere#k>\n";
        assert_eq!(run(text, app()).unwrap(), text);
    }

    #[test]
    fn remove_missing_drops_fields_whose_key_is_absent() {
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  a: <path:app#user>\n  b: <path:app#nope>\n";
        let out = run(text, app()).unwrap();
        assert!(out.ends_with("stringData:\n  a: admin\n"), "{out}");
    }

    #[test]
    fn non_string_annotations_are_skipped_one_by_one() {
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/ignore: true\n    avp.kubernetes.io/path: app\nx: <user>\n";
        assert!(run(text, app()).unwrap().ends_with("x: admin\n"));
    }

    #[test]
    fn documents_without_kind_are_dropped_and_their_placeholders_ignored() {
        let out = run(
            "name: chart\nv: <path:nowhere#k>\n---\nkind: A\nx: <path:app#user>\n",
            app(),
        )
        .unwrap();
        assert_eq!(out, "---\nkind: A\nx: admin\n");
    }

    #[test]
    fn errors_name_file_document_kind_field_and_placeholder() {
        let text = "kind: A\nmetadata:\n  name: web\nspec:\n  list:\n    - [x, <path:app#nope>]\n  'a.b': <path:gone#k>\n";
        let errors = run(text, app()).unwrap_err();
        assert_eq!(
            errors,
            [
                "m.yaml: doc 1 (A/web): spec.list[0][1]: <path:app#nope>: missing value: key \"nope\" not found in app",
                "m.yaml: doc 1 (A/web): spec['a.b']: <path:gone#k>: test: no secret gone",
            ]
        );
    }

    #[test]
    fn tagged_scalars_are_substituted_under_their_tag() {
        let out = run(
            "kind: A\nn: !!int <path:app#n>\nc: !custom <path:app#user>\ns: !!str <path:app#n>\n",
            app(),
        )
        .unwrap();
        assert_eq!(out, "kind: A\nn: !!int 3\nc: !custom admin\ns: !!str 3\n");
        let errors = run("kind: A\nn: !!int <path:app#user>\n", app()).unwrap_err();
        assert_eq!(
            errors,
            ["m.yaml: doc 1 (A): n: the value does not fit the scalar's tag !!int"]
        );
    }

    #[test]
    fn a_placeholder_filling_a_block_scalar_injects_the_typed_value() {
        let out = run(
            "kind: A\nr: >-\n  <path:app#n>\nc: |\n  <path:app#cfg>\nnext: 1\n",
            app(),
        )
        .unwrap();
        assert_eq!(out, "kind: A\nr: 3\nc: {\"a\":[1]}\nnext: 1\n");
    }

    #[test]
    fn the_last_of_repeated_annotations_wins() {
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: nowhere\n    avp.kubernetes.io/path: app\nx: <user>\n";
        assert!(run(text, app()).unwrap().ends_with("x: admin\n"));
        let text = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/ignore: \"false\"\n    avp.kubernetes.io/ignore: \"true\"\nx: <path:nowhere#k>\n";
        assert_eq!(run(text, app()).unwrap(), text);
    }

    #[test]
    fn merged_annotations_count() {
        let text = "common: &c\n  avp.kubernetes.io/path: app\nkind: Secret\nmetadata:\n  annotations:\n    <<: *c\nx: <user>\n";
        assert!(run(text, app()).unwrap().ends_with("x: admin\n"));
    }

    #[test]
    fn a_namespace_annotation_with_a_line_break_is_an_error() {
        let text = "kind: A\nmetadata:\n  annotations:\n    avp.kubernetes.io/namespace: \"a\\nX-Evil: 1\"\nx: <path:app#user>\n";
        assert_eq!(
            run(text, app()).unwrap_err(),
            [
                "m.yaml: doc 1 (A): metadata.annotations['avp.kubernetes.io/namespace']: a namespace cannot hold the control character '\\n'"
            ]
        );
    }
}
