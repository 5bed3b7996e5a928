//! Manifests as text: finding and reading inputs, splitting them into documents, parsing each
//! with byte spans, and writing the output with only the edited scalars changed.

pub mod input;
pub mod rewrite;
pub mod scalar;
pub mod split;
pub mod tree;

use std::borrow::Cow;

use input::Source;
use split::{Chunk, Split};
use tree::Tree;

/// One input file split into documents.
pub struct File<'a> {
    pub name: &'a str,
    pub split: Split<'a>,
    /// One entry per chunk: `None` for a chunk holding no document (comments, blank lines).
    pub docs: Vec<Option<Document>>,
}

/// A parsed document.
pub struct Document {
    /// 1-based position among the file's documents.
    pub index: usize,
    pub tree: Tree,
}

/// What the output holds for one chunk.
pub enum Output<'a> {
    Keep,
    Replace(Cow<'a, str>),
    /// Left out: the document is not a Kubernetes manifest.
    Drop,
}

/// Splits and parses `source`; every document's syntax error is reported.
pub fn parse(source: &Source) -> Result<File<'_>, Vec<String>> {
    let name = source.name.as_str();
    let split = split::split(&source.text).map_err(|e| vec![format!("{name}: {e}")])?;
    let mut docs = Vec::with_capacity(split.chunks.len());
    let mut errors = Vec::new();
    let mut index = 0;
    for chunk in &split.chunks {
        match Tree::parse(chunk.body) {
            Ok(Some(tree)) => {
                index += 1;
                docs.push(Some(Document { index, tree }));
            }
            Ok(None) => docs.push(None),
            Err(e) => {
                index += 1;
                errors.push(format!(
                    "{name}: doc {index}: invalid {} at line {} column {}: {}",
                    if split.json { "JSON" } else { "YAML" },
                    chunk.line + e.line - 1,
                    e.column,
                    e.problem
                ));
                docs.push(None);
            }
        }
    }
    if errors.is_empty() {
        Ok(File { name, split, docs })
    } else {
        Err(errors)
    }
}

/// Appends the file's output: each kept chunk with what precedes it, edited where asked.
pub fn write(out: &mut String, file: &File<'_>, outputs: &[Output<'_>]) {
    for (chunk, output) in file.split.chunks.iter().zip(outputs) {
        let Chunk { lead, body, .. } = chunk;
        match output {
            Output::Keep => {
                out.push_str(lead);
                out.push_str(body);
            }
            Output::Replace(text) => {
                out.push_str(lead);
                out.push_str(text);
            }
            Output::Drop => {}
        }
    }
    out.push_str(file.split.trailer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            name: "app.yaml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn syntax_errors_name_file_document_and_file_line() {
        let src = source("kind: A\n---\nkind: B\nx: [\n");
        let errors = parse(&src).err().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("app.yaml: doc 2: invalid YAML at line 5 column 1: "),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn dropped_chunks_leave_no_trace_and_kept_ones_are_byte_identical() {
        let src = source("# head\nkind: A # c\n---\nname: chart\n---\nkind: B\n");
        let file = parse(&src).unwrap();
        let mut out = String::new();
        write(
            &mut out,
            &file,
            &[
                Output::Keep,
                Output::Drop,
                Output::Replace("kind: C\n".into()),
            ],
        );
        assert_eq!(out, "# head\nkind: A # c\n---\nkind: C\n");
    }
}
