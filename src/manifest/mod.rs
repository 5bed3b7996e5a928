//! Manifests as text: finding and reading inputs, splitting them into documents, parsing each
//! with byte spans, and writing the output with only the edited scalars changed.

pub mod input;
pub mod pipeline;
pub mod rewrite;
pub mod scalar;
pub mod scan;
#[cfg(feature = "sops")]
pub mod sops;
pub mod split;
pub mod tree;

use std::borrow::Cow;
use std::io::{self, Write};

use input::Source;
use split::{Chunk, Split};
use tree::Tree;

use crate::error::{Cause, Diagnostic};

/// One input file split into documents.
pub struct File<'a> {
    pub name: &'a str,
    pub split: Split<'a>,
}

/// What the output holds for one chunk.
pub enum Output<'a> {
    Keep,
    Replace(Cow<'a, str>),
    /// Left out: the document is not a Kubernetes manifest.
    Drop,
}

/// Splits `source` into documents.
pub fn split(source: &Source) -> Result<File<'_>, Box<Diagnostic>> {
    let name = source.name.as_str();
    let split = split::split(&source.text)
        .map_err(|e| Box::new(Diagnostic::in_file(name, Cause::Invalid(e.to_string()))))?;
    Ok(File { name, split })
}

impl File<'_> {
    /// Parses one chunk; the error says what is wrong where in the file.
    pub fn parse(&self, chunk: &Chunk<'_>) -> Result<Option<Tree>, String> {
        Tree::parse(chunk.body).map_err(|e| {
            format!(
                "invalid {} at line {} column {}: {}",
                if self.split.json { "JSON" } else { "YAML" },
                chunk.line + e.line - 1,
                e.column,
                e.problem
            )
        })
    }

    fn is_empty(&self, outputs: &[Output<'_>]) -> bool {
        self.split.trailer.is_empty()
            && self
                .split
                .chunks
                .iter()
                .zip(outputs)
                .all(|(chunk, output)| match output {
                    Output::Keep => chunk.lead.is_empty() && chunk.body.is_empty(),
                    Output::Replace(text) => chunk.lead.is_empty() && text.is_empty(),
                    Output::Drop => true,
                })
    }
}

/// Writes every file's output, each kept chunk with what precedes it, edited where asked; files
/// are joined by `---` lines (after a line break if a file lacks a final one).
pub fn write(
    out: &mut impl Write,
    files: &[File<'_>],
    outputs: &[Vec<Output<'_>>],
) -> io::Result<()> {
    let mut last: Option<u8> = None;
    for (file, outputs) in files.iter().zip(outputs) {
        if file.is_empty(outputs) {
            continue;
        }
        if let Some(byte) = last {
            out.write_all(if byte == b'\n' { b"---\n" } else { b"\n---\n" })?;
        }
        let mut put = |text: &str| -> io::Result<()> {
            if let Some(&byte) = text.as_bytes().last() {
                last = Some(byte);
            }
            out.write_all(text.as_bytes())
        };
        for (Chunk { lead, body, .. }, output) in file.split.chunks.iter().zip(outputs) {
            match output {
                Output::Keep => {
                    put(lead)?;
                    put(body)?;
                }
                Output::Replace(text) => {
                    put(lead)?;
                    put(text)?;
                }
                Output::Drop => {}
            }
        }
        put(file.split.trailer)?;
    }
    Ok(())
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

    fn render(files: &[File<'_>], outputs: &[Vec<Output<'_>>]) -> String {
        let mut out = Vec::new();
        write(&mut out, files, outputs).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn syntax_errors_name_file_document_and_file_line() {
        let src = source("kind: A\n---\nkind: B\nx: [\n");
        let file = split(&src).unwrap();
        let err = file.parse(&file.split.chunks[1]).unwrap_err();
        assert!(
            err.starts_with("invalid YAML at line 5 column 1: "),
            "{err}"
        );
    }

    #[test]
    fn dropped_chunks_leave_no_trace_and_kept_ones_are_byte_identical() {
        let src = source("# head\nkind: A # c\n---\nname: chart\n---\nkind: B\n");
        let file = split(&src).unwrap();
        let outputs = vec![
            Output::Keep,
            Output::Drop,
            Output::Replace("kind: C\n".into()),
        ];
        assert_eq!(
            render(&[file], &[outputs]),
            "# head\nkind: A # c\n---\nkind: C\n"
        );
    }

    #[test]
    fn files_are_joined_by_separators_and_empty_files_skipped() {
        let (a, b, c) = (
            source("kind: A"),
            source("name: chart\n"),
            source("kind: C\n"),
        );
        let files = [split(&a).unwrap(), split(&b).unwrap(), split(&c).unwrap()];
        let outputs = vec![vec![Output::Keep], vec![Output::Drop], vec![Output::Keep]];
        assert_eq!(render(&files, &outputs), "kind: A\n---\nkind: C\n");
    }
}
