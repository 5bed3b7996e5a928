//! Walks the documents twice: `collect` finds every placeholder and the secrets they need;
//! `apply` computes each field's new value from the fetched secrets, per AVP's kind rules, and
//! has the manifest module rewrite the text.

mod annotations;
mod apply;
pub mod check;
mod walk;

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;

use crate::config::Profiles;
use crate::error::{Cause, Diagnostic, excerpt};
use crate::manifest::scalar::{PlainType, yaml11_type};
use crate::manifest::scan;
use crate::manifest::tree::{Node, Style, Tree};
use crate::manifest::{File, Output};
use crate::placeholder::{Mode, Placeholder};
use crate::secret::{SecretRef, Wanted};
use annotations::{Annotations, Scope, string_value};
pub use apply::{Fetched, Unfetched, apply};

/// Settings that shape collection.
pub struct Rules<'a> {
    pub path_validation: Option<&'a Regex>,
    pub profiles: &'a Profiles,
    /// `generate --mask`: every injected value becomes `(masked PROFILE:PATH#KEY)`.
    pub mask: bool,
}

/// Everything found in the input: what to fetch, and where each value goes.
pub struct Plan<'f> {
    docs: Vec<DocPlan<'f>>,
    /// What each chunk of each file becomes when it holds no placeholder to replace.
    outputs: Vec<Vec<Output<'f>>>,
    /// Each secret to fetch, with the keys the manifests read from it.
    pub refs: Wanted,
    errors: Vec<Diag>,
    /// Documents that are Kubernetes manifests (have a kind).
    pub manifests: usize,
    /// Documents parsed, manifests or not.
    pub documents: usize,
    pub placeholders: usize,
}

/// A diagnostic and where it belongs in the input, so errors print in input order.
struct Diag {
    /// File, chunk, and byte offset of the scalar in the chunk.
    at: (usize, usize, usize),
    diagnostic: Diagnostic,
}

/// A document's place in the input, which every diagnostic about it names.
#[derive(Clone)]
struct Place {
    /// Shared by the file's documents: every document with placeholders keeps its place.
    file: Arc<str>,
    document: usize,
    kind: Option<Box<str>>,
    name: Option<Box<str>>,
}

impl Place {
    fn diagnostic(
        &self,
        field: Option<&str>,
        placeholder: Option<&str>,
        cause: Cause,
    ) -> Diagnostic {
        Diagnostic {
            file: Some(self.file.to_string()),
            document: Some(self.document),
            kind: self.kind.as_deref().map(str::to_owned),
            name: self.name.as_deref().map(str::to_owned),
            field: field.map(str::to_owned),
            placeholder: placeholder.map(str::to_owned),
            in_base64: false,
            cause,
        }
    }

    /// `file: doc 2 (Secret/db)`, for notices.
    fn label(&self) -> String {
        self.diagnostic(None, None, Cause::Other(String::new()))
            .location()
    }
}

struct DocPlan<'f> {
    file: usize,
    chunk: usize,
    /// The document's text; its tree is built again to rewrite it, so that memory holds one
    /// tree at a time, not one per document with placeholders.
    body: &'f str,
    place: Place,
    typed: bool,
    remove_missing: bool,
    /// `generate --mask`.
    mask: bool,
    /// The annotation path's secret, for generic placeholders.
    generic: Generic,
    fields: Vec<Field>,
}

enum Generic {
    /// No `avp.kubernetes.io/path` annotation.
    Absent,
    /// An empty path; how a missing key is named in its profile.
    Empty(&'static str),
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
    slots: Vec<Slot>,
}

/// One placeholder of a field and the secret it reads.
struct Slot {
    placeholder: Placeholder,
    /// `None` when it needs none (its error is already reported, or it will be reported as
    /// missing).
    secret: Option<SecretRef>,
    /// How a missing key is named by its backend.
    missing: &'static str,
}

/// Parses every document and finds its placeholders.
pub fn collect<'f>(files: &[File<'f>], rules: &Rules<'_>) -> Plan<'f> {
    let mut plan = Plan {
        docs: Vec::new(),
        outputs: Vec::new(),
        refs: BTreeMap::new(),
        errors: Vec::new(),
        manifests: 0,
        documents: 0,
        placeholders: 0,
    };
    for (file_index, file) in files.iter().enumerate() {
        let name: Arc<str> = file.name.into();
        let mut outputs = Vec::with_capacity(file.split.chunks.len());
        let mut index = 0;
        for (chunk_index, chunk) in file.split.chunks.iter().enumerate() {
            let at = (file_index, chunk_index);
            // Counted as the full parse would count it, without building its tree.
            if !file.split.json && scan::untouched_manifest(chunk.body) {
                index += 1;
                plan.documents += 1;
                plan.manifests += 1;
                outputs.push(Output::Keep);
                continue;
            }
            let parsed = file.parse(chunk);
            if !matches!(parsed, Ok(None)) {
                index += 1;
            }
            let place = Place {
                file: Arc::clone(&name),
                document: index,
                kind: None,
                name: None,
            };
            let output = match parsed {
                Ok(None) => Output::Keep,
                Ok(Some(tree)) => {
                    plan.documents += 1;
                    plan.document(rules, tree, place, chunk.body, at)
                }
                Err(message) => {
                    plan.error(
                        (file_index, chunk_index, 0),
                        place.diagnostic(None, None, Cause::Invalid(message)),
                    );
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
    pub fn into_errors(mut self) -> Vec<Diagnostic> {
        self.errors.sort_by_key(|d| d.at);
        self.errors.into_iter().map(|d| d.diagnostic).collect()
    }

    fn error(&mut self, at: (usize, usize, usize), diagnostic: Diagnostic) {
        self.errors.push(Diag { at, diagnostic });
    }

    /// Plans one document; returns its output unless it has fields to replace.
    fn document(
        &mut self,
        rules: &Rules<'_>,
        tree: Tree,
        mut place: Place,
        body: &'f str,
        (file, chunk): (usize, usize),
    ) -> Output<'f> {
        let root = &tree.root;
        let at = (file, chunk, 0);
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
                let cause = Cause::Invalid(format!(
                    "expected a mapping (a Kubernetes manifest), found {found}"
                ));
                self.error(at, place.diagnostic(None, None, cause));
                return Output::Keep;
            }
        }
        let Some(kind) = tree
            .get(root, "kind")
            .and_then(string_value)
            .filter(|k| !k.is_empty())
        else {
            tracing::warn!(
                "{} has no kind, so it is not a Kubernetes manifest; left out of the output",
                place.label()
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
        place.kind = Some(kind.into());
        place.name = name("name")
            .or_else(|| name("generateName"))
            .map(Into::into);
        let annotations = Annotations::read(&tree, metadata, || place.label());
        if annotations.is_set(annotations::IGNORE) {
            return Output::Keep;
        }
        let remove_missing = annotations.is_set(annotations::REMOVE_MISSING);
        let invalid = |field: String, reason: String| {
            place.diagnostic(Some(&field), None, Cause::Invalid(reason))
        };
        if remove_missing && kind != "Secret" && kind != "ConfigMap" {
            let cause = Cause::Invalid(
                "avp.kubernetes.io/remove-missing annotation can only be used on Secret or ConfigMap resources".to_owned(),
            );
            self.error(at, place.diagnostic(None, None, cause));
            return Output::Keep;
        }
        let options = match annotations.options() {
            Ok(options) => options,
            Err((field, reason)) => {
                self.error(at, invalid(field, reason));
                return Output::Keep;
            }
        };
        let profile = match annotations.get(annotations::BACKEND) {
            None | Some("") => rules.profiles.default_profile(),
            Some(name) => match rules.profiles.get(name) {
                Some(profile) => profile,
                None => {
                    let reason = format!(
                        "unknown backend profile {:?} (configured: {})",
                        excerpt(name),
                        rules.profiles.names()
                    );
                    self.error(
                        at,
                        invalid(annotations::field(annotations::BACKEND), reason),
                    );
                    return Output::Keep;
                }
            },
        };
        let scope = Scope {
            profiles: rules.profiles,
            profile,
            options,
        };
        // The path annotation may name a profile too (`aws-prod:app/config`).
        let (path_profile, path) = match annotations.get(annotations::PATH) {
            Some(path) => match rules.profiles.prefix(path) {
                Some((named, rest)) => (named, Some(rest)),
                None => (profile, Some(path)),
            },
            None => (profile, None),
        };
        let (mode, generic) = match path {
            None => (Mode::Inline, Generic::Absent),
            Some("") => (
                Mode::Generic,
                Generic::Empty(annotations::missing(path_profile)),
            ),
            Some(path) => match disallowed(rules, path) {
                Some(reason) => {
                    self.error(at, invalid(annotations::field(annotations::PATH), reason));
                    (Mode::Generic, Generic::Disallowed)
                }
                None => {
                    let version = annotations
                        .get(annotations::SECRET_VERSION)
                        .filter(|v| !v.is_empty());
                    let secret = scope.secret(path_profile, path, version);
                    (Mode::Generic, Generic::Secret(secret))
                }
            },
        };
        let mut walker = walk::Walker {
            plan: self,
            rules,
            place: &place,
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
            body,
            typed,
            remove_missing,
            mask: rules.mask,
            generic,
            place,
            fields,
        });
        Output::Keep
    }
}

/// Why `path` may not be read: `AVP_PATH_VALIDATION` does not match it.
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{ErrorKind, Failure, Origin};
    use crate::config::Settings;
    use crate::manifest::{self, input::Source};
    use crate::value::Value;

    /// Runs collect and apply over one file, with `secrets` as the fetched data.
    /// The plan of `files` with the default settings.
    fn plan<'f>(files: &[File<'f>]) -> Plan<'f> {
        let profiles = Profiles::new(Settings::default(), Default::default()).unwrap();
        collect(
            files,
            &Rules {
                path_validation: None,
                profiles: &profiles,
                mask: false,
            },
        )
    }

    fn run(text: &str, secrets: serde_json::Value) -> Result<String, Vec<String>> {
        let source = Source {
            name: "m.yaml".into(),
            text: text.into(),
        };
        let files = vec![manifest::split(&source).unwrap()];
        let plan = plan(&files);
        let serde_json::Value::Object(paths) = secrets else {
            panic!()
        };
        let fetched: Fetched = plan
            .refs
            .keys()
            .map(|r| {
                let result = match paths.get(&r.path) {
                    Some(serde_json::Value::Object(keys)) => Ok(Arc::new(
                        keys.iter()
                            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                            .collect(),
                    )),
                    _ => Err(Unfetched::Failed(Failure {
                        kind: ErrorKind::NotFound,
                        origin: Origin {
                            backend: "test",
                            profile: "default".into(),
                            named: false,
                        },
                        path: Some(r.path.clone()),
                        message: format!("no secret {}", r.path),
                    })),
                };
                (r.clone(), result)
            })
            .collect();
        let outputs = apply(plan, &fetched)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let mut out = Vec::new();
        manifest::write(&mut out, &files, &outputs).unwrap();
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn documents_left_untouched_without_a_tree_are_counted_as_parsed_ones() {
        let untouched = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
        assert!(crate::manifest::scan::untouched_manifest(untouched));
        let source = Source {
            name: "m.yaml".into(),
            text: format!("{untouched}---\nname: chart\n---\n# empty\n---\n{untouched}"),
        };
        let files = vec![manifest::split(&source).unwrap()];
        let plan = plan(&files);
        assert_eq!((plan.documents, plan.manifests), (3, 2));
        assert!(!plan.has_errors());
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
    fn each_secret_is_wanted_once_with_every_key_the_manifests_name() {
        let profiles = Profiles::new(Settings::default(), Default::default()).unwrap();
        let source = Source {
            name: "m.yaml".into(),
            text: "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: app\nstringData:\n  a: <path:app#user>\n  b: <path:app#n | jsonPath {.x}>\n  c: <flag>\n  d: <path:other#user>\n".into(),
        };
        let files = vec![manifest::split(&source).unwrap()];
        let rules = Rules {
            path_validation: None,
            profiles: &profiles,
            mask: false,
        };
        let plan = collect(&files, &rules);
        let wanted: Vec<(String, Vec<String>)> = plan
            .refs
            .iter()
            .map(|(r, keys)| (r.path.clone(), keys.iter().cloned().collect()))
            .collect();
        assert_eq!(
            wanted,
            [
                (
                    "app".to_owned(),
                    vec!["flag".to_owned(), "n".to_owned(), "user".to_owned()]
                ),
                ("other".to_owned(), vec!["user".to_owned()]),
            ]
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

    // The `namespace` option is Vault's.
    #[cfg(feature = "vault")]
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
