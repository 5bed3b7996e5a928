//! Splits one input text into documents, the way AVP (apimachinery's YAMLOrJSONDecoder) does:
//! concatenated JSON objects when the text starts with `{`, else YAML documents separated by
//! lines that start with `---`.

use serde::de::IgnoredAny;

/// One document's text and what precedes it in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The `---` line before the document, or the whitespace before a JSON object.
    pub lead: &'a str,
    pub body: &'a str,
    /// Byte offset of `body` in the input.
    pub offset: usize,
    /// 1-based line of `body`'s first line in the input.
    pub line: usize,
}

/// An input split into chunks; `trailer` is the text after the last chunk (JSON only).
#[derive(Debug)]
pub struct Split<'a> {
    pub chunks: Vec<Chunk<'a>>,
    pub trailer: &'a str,
    pub json: bool,
}

/// Where and why an input could not be split.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SplitError {
    pub line: usize,
    pub message: String,
}

pub fn split(text: &str) -> Result<Split<'_>, SplitError> {
    if text.starts_with('{') {
        split_json(text)
    } else {
        split_yaml(text)
    }
}

fn split_yaml(text: &str) -> Result<Split<'_>, SplitError> {
    let mut chunks = Vec::new();
    let mut lead = "";
    let mut body_start = 0;
    let mut body_line = 1;
    let mut line_no = 1;
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(SplitError {
                    line: line_no,
                    message: format!("invalid Yaml document separator: {rest}"),
                });
            }
            if pos > 0 || !lead.is_empty() {
                chunks.push(Chunk {
                    lead,
                    body: &text[body_start..pos],
                    offset: body_start,
                    line: body_line,
                });
            }
            lead = line;
            body_start = end;
            body_line = line_no + 1;
        }
        pos = end;
        line_no += 1;
    }
    chunks.push(Chunk {
        lead,
        body: &text[body_start..],
        offset: body_start,
        line: body_line,
    });
    Ok(Split {
        chunks,
        trailer: "",
        json: false,
    })
}

fn split_json(text: &str) -> Result<Split<'_>, SplitError> {
    let mut chunks = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
    let mut prev = 0;
    while let Some(item) = stream.next() {
        item.map_err(|e| SplitError {
            line: e.line(),
            message: format!("invalid JSON: {e}"),
        })?;
        let end = stream.byte_offset();
        let start = prev + (text[prev..end].len() - text[prev..end].trim_start().len());
        chunks.push(Chunk {
            lead: &text[prev..start],
            body: &text[start..end],
            offset: start,
            line: 1 + text[..start].matches('\n').count(),
        });
        prev = end;
    }
    Ok(Split {
        chunks,
        trailer: &text[prev..],
        json: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(text: &str) -> Vec<(&str, &str)> {
        split(text)
            .unwrap()
            .chunks
            .iter()
            .map(|c| (c.lead, c.body))
            .collect()
    }

    #[test]
    fn yaml_splits_on_lines_starting_with_three_dashes() {
        assert_eq!(
            bodies("a: 1\n---\nb: 2\n--- # two\nc: 3\n"),
            vec![
                ("", "a: 1\n"),
                ("---\n", "b: 2\n"),
                ("--- # two\n", "c: 3\n")
            ]
        );
    }

    #[test]
    fn leading_separator_makes_no_empty_first_chunk() {
        assert_eq!(bodies("---\na: 1\n"), vec![("---\n", "a: 1\n")]);
    }

    #[test]
    fn chunks_know_their_first_line() {
        let split = split("a: 1\n---\n\nb: 2\n").unwrap();
        assert_eq!(split.chunks[1].line, 3);
        assert_eq!(split.chunks[1].offset, 9);
    }

    #[test]
    fn text_after_a_separator_must_be_a_comment() {
        assert_eq!(
            split("a: 1\n---foo\n").unwrap_err().to_string(),
            "line 2: invalid Yaml document separator: foo"
        );
        assert_eq!(
            split("----\n").unwrap_err().to_string(),
            "line 1: invalid Yaml document separator: -"
        );
    }

    #[test]
    fn json_splits_concatenated_objects_and_keeps_whitespace() {
        let split = split("{\"a\": 1}\n  {\"b\": 2}\n").unwrap();
        assert!(split.json);
        let parts: Vec<_> = split.chunks.iter().map(|c| (c.lead, c.body)).collect();
        assert_eq!(parts, vec![("", "{\"a\": 1}"), ("\n  ", "{\"b\": 2}")]);
        assert_eq!(split.trailer, "\n");
        assert_eq!(split.chunks[1].line, 2);
    }

    #[test]
    fn json_syntax_errors_name_the_line() {
        assert_eq!(
            split("{\"a\": 1,\n}").unwrap_err().to_string(),
            "line 2: invalid JSON: key must be a string at line 2 column 1"
        );
    }
}
