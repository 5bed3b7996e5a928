//! A YAML document as a tree whose scalars remember their byte span in the source.
//!
//! Built from libyaml-safer events: it is a port of libyaml, the parser behind go-yaml, so it reads
//! the text exactly as Kubernetes does, and its marks are byte offsets.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use libyaml_safer::{EventData, Parser};

pub use libyaml_safer::ScalarStyle as Style;

use super::scalar::{PlainType, yaml11_type};
use crate::value::Value;

#[derive(Clone, Debug)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Map),
    Alias(String),
}

#[derive(Clone, Debug)]
pub struct Map {
    pub entries: Vec<(Node, Node)>,
    pub flow: bool,
    /// From the first key to the end of the last value (`{` to `}` for a flow mapping).
    pub span: Range<usize>,
}

/// A scalar, with `value` as the YAML parser reads it.
#[derive(Clone, Debug)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    pub tag: Option<String>,
    /// The scalar's text, including any anchor or tag written before it.
    pub span: Range<usize>,
    /// Inside a flow collection, where `,[]{}` end a plain scalar.
    pub flow: bool,
}

/// One parsed document: its root and the anchored nodes that aliases refer to.
#[derive(Clone, Debug)]
pub struct Tree {
    pub root: Node,
    anchors: HashMap<String, Node>,
}

/// A syntax error, positioned within the parsed text (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.problem
        )
    }
}

impl std::error::Error for SyntaxError {}

impl Tree {
    /// Parses text holding at most one document. `Ok(None)` for an empty or comment-only text.
    pub fn parse(text: &str) -> Result<Option<Tree>, SyntaxError> {
        // libyaml-safer panics on a block scalar that ends the input without a line break; the
        // break is added for parsing only, and spans are clamped to the text. JSON's surrogate
        // pair escapes, which libyaml rejects, are parsed as one YAML escape each.
        let (mut prepared, shrinks) = join_surrogate_escapes(text);
        if !prepared.ends_with('\n') {
            prepared.to_mut().push('\n');
        }
        let mut input = prepared.as_bytes();
        let mut parser = Parser::new();
        parser.set_input_string(&mut input);
        let mut builder = Builder {
            parser,
            anchors: HashMap::new(),
            len: text.len(),
            shrinks,
        };
        builder.document()
    }

    /// Follows an alias to the node it names.
    pub fn resolve<'a>(&'a self, node: &'a Node) -> &'a Node {
        match node {
            Node::Alias(name) => self.anchors.get(name).unwrap_or(node),
            _ => node,
        }
    }

    /// The value of `key` in a mapping node, following aliases.
    /// Keys merged in with `<<: *anchor` count too, as Kubernetes' YAML 1.1 reader merges them.
    pub fn get<'a>(&'a self, node: &'a Node, key: &str) -> Option<&'a Node> {
        let Node::Map(map) = self.resolve(node) else {
            return None;
        };
        let named = |name: &str| {
            map.entries
                .iter()
                .rev()
                .find(move |(k, _)| {
                    // Only a plain `<<` is a merge key; a quoted one is an ordinary key.
                    matches!(self.resolve(k), Node::Scalar(s) if s.value == name && (name != "<<" || s.style == Style::Plain))
                })
                .map(|(_, v)| self.resolve(v))
        };
        named(key).or_else(|| match named("<<")? {
            Node::Seq(sources) => sources.iter().find_map(|source| self.get(source, key)),
            source => self.get(source, key),
        })
    }
}

impl Tree {
    /// The document as a typed value, read with YAML 1.1 rules as Kubernetes and AVP's
    /// `yamlParse` read it (`yes` is true, `0644` is 420).
    pub fn to_value(&self) -> Value {
        self.value_of(&self.root)
    }

    fn value_of(&self, node: &Node) -> Value {
        match self.resolve(node) {
            Node::Scalar(scalar) => scalar_value(scalar),
            Node::Seq(items) => Value::List(items.iter().map(|item| self.value_of(item)).collect()),
            Node::Map(map) => Value::Map(
                map.entries
                    .iter()
                    .map(|(key, value)| (self.value_of(key).to_text(), self.value_of(value)))
                    .collect(),
            ),
            Node::Alias(_) => Value::Null,
        }
    }
}

/// A scalar's YAML 1.1 value; numbers JSON cannot hold (`.inf`, sexagesimal) stay strings.
fn scalar_value(scalar: &Scalar) -> Value {
    let text = scalar.value.as_str();
    let plain = scalar.style == Style::Plain && scalar.tag.is_none();
    if !plain {
        return Value::String(text.to_owned());
    }
    match yaml11_type(text) {
        PlainType::Null => Value::Null,
        PlainType::Bool => Value::Bool(matches!(
            text,
            "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        )),
        PlainType::Int => parse_int(text).map_or_else(
            || Value::String(text.to_owned()),
            |n| Value::Number(n.into()),
        ),
        PlainType::Float => text
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        PlainType::String => Value::String(text.to_owned()),
    }
}

/// YAML 1.1 integers: decimal, `0x` hex, `0b` binary, and leading-zero octal.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = digits.replace('_', "");
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(binary) = digits.strip_prefix("0b") {
        i64::from_str_radix(binary, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Replaces each JSON surrogate pair escape (`\ud83d\ude00`, 12 bytes) with the YAML escape of
/// its character (`\U0001F600`, 10 bytes), recording where the text got shorter.
fn join_surrogate_escapes(text: &str) -> (Cow<'_, str>, Vec<usize>) {
    if !text.contains("\\uD") && !text.contains("\\ud") {
        return (Cow::Borrowed(text), Vec::new());
    }
    let bytes = text.as_bytes();
    let hex = |at: usize| {
        text.get(at..at + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let mut out = String::with_capacity(text.len());
    let mut shrinks = Vec::new();
    let (mut i, mut copied) = (0, 0);
    while i + 1 < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let pair = (bytes[i + 1] == b'u'
            && bytes.get(i + 6) == Some(&b'\\')
            && bytes.get(i + 7) == Some(&b'u'))
        .then(|| (hex(i + 2), hex(i + 8)));
        match pair {
            Some((Some(high @ 0xD800..=0xDBFF), Some(low @ 0xDC00..=0xDFFF))) => {
                let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                out.push_str(&text[copied..i]);
                out.push_str(&format!("\\U{c:08X}"));
                shrinks.push(out.len());
                i += 12;
                copied = i;
            }
            _ => i += 2,
        }
    }
    out.push_str(&text[copied..]);
    (Cow::Owned(out), shrinks)
}

impl Node {
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

struct Builder<'r, 'b> {
    parser: Parser<&'b mut &'r [u8]>,
    anchors: HashMap<String, Node>,
    /// Length of the text, which marks may pass by the added line break.
    len: usize,
    /// Positions in the parsed text after each escape that is 2 bytes shorter than in the text.
    shrinks: Vec<usize>,
}

/// What the builder reads next: a node, or the end of the enclosing collection.
enum Item {
    Node(Node, Range<usize>),
    End(usize),
}

impl Builder<'_, '_> {
    /// The text offset of a position in the parsed text.
    fn offset(&self, parsed: usize) -> usize {
        (parsed + 2 * self.shrinks.partition_point(|&p| p <= parsed)).min(self.len)
    }

    fn next(&mut self) -> Result<libyaml_safer::Event, SyntaxError> {
        self.parser.parse().map_err(|e| {
            let mark = e.problem_mark().unwrap_or_default();
            SyntaxError {
                line: mark.line as usize + 1,
                column: mark.column as usize + 1,
                problem: match e.context() {
                    Some(context) if !context.is_empty() => format!("{} {}", e.problem(), context),
                    _ => e.problem().to_owned(),
                },
            }
        })
    }

    fn document(&mut self) -> Result<Option<Tree>, SyntaxError> {
        let mut tree = None;
        loop {
            let event = self.next()?;
            match event.data {
                EventData::StreamStart { .. } | EventData::DocumentEnd { .. } => {}
                EventData::StreamEnd => return Ok(tree),
                EventData::DocumentStart { .. } if tree.is_some() => {
                    let mark = event.start_mark;
                    return Err(SyntaxError {
                        line: mark.line as usize + 1,
                        column: mark.column as usize + 1,
                        problem: "a second document starts without a `---` line".to_owned(),
                    });
                }
                EventData::DocumentStart { .. } => {
                    let Item::Node(root, _) = self.item(false)? else {
                        unreachable!("a document always holds a node");
                    };
                    tree = Some(Tree {
                        root,
                        anchors: std::mem::take(&mut self.anchors),
                    });
                }
                _ => unreachable!("libyaml emits nodes only inside documents"),
            }
        }
    }

    fn item(&mut self, flow: bool) -> Result<Item, SyntaxError> {
        let event = self.next()?;
        let start = self.offset(event.start_mark.index as usize);
        let end = self.offset(event.end_mark.index as usize);
        let (node, anchor, span) = match event.data {
            EventData::Scalar {
                anchor,
                tag,
                value,
                style,
                ..
            } => (
                Node::Scalar(Scalar {
                    value,
                    style,
                    tag,
                    span: start..end,
                    flow,
                }),
                anchor,
                start..end,
            ),
            EventData::Alias { anchor } => (Node::Alias(anchor), None, start..end),
            EventData::SequenceStart { anchor, style, .. } => {
                let inner_flow = flow || style == libyaml_safer::SequenceStyle::Flow;
                let mut items = Vec::new();
                let end = loop {
                    match self.item(inner_flow)? {
                        Item::Node(node, _) => items.push(node),
                        Item::End(end) => break end,
                    }
                };
                (Node::Seq(items), anchor, start..end)
            }
            EventData::MappingStart { anchor, style, .. } => {
                let is_flow = style == libyaml_safer::MappingStyle::Flow;
                let inner_flow = flow || is_flow;
                let mut entries = Vec::new();
                let mut first = None;
                let mut last = start;
                let end = loop {
                    let key = match self.item(inner_flow)? {
                        Item::Node(node, span) => {
                            first.get_or_insert(span.start);
                            node
                        }
                        Item::End(end) => break end,
                    };
                    let Item::Node(value, span) = self.item(inner_flow)? else {
                        unreachable!("libyaml emits a value for every key");
                    };
                    last = span.end;
                    entries.push((key, value));
                };
                let span = if is_flow {
                    start..end
                } else {
                    let first = first.unwrap_or(start);
                    first..last.max(first)
                };
                let map = Map {
                    entries,
                    flow: inner_flow,
                    span: span.clone(),
                };
                (Node::Map(map), anchor, span)
            }
            EventData::SequenceEnd | EventData::MappingEnd => return Ok(Item::End(end)),
            _ => unreachable!("libyaml emits only nodes between collection start and end"),
        };
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(Item::Node(node, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar<'a>(tree: &'a Tree, path: &[&str]) -> &'a Scalar {
        let mut node = &tree.root;
        for key in path {
            node = tree.get(node, key).unwrap();
        }
        node.as_scalar().unwrap()
    }

    #[test]
    fn scalar_spans_are_byte_offsets_including_quotes() {
        let text = "a: é <path:x#y>\nb: 'q'\nc: \"d\"\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        let a = scalar(&tree, &["a"]);
        assert_eq!(&text[a.span.clone()], "é <path:x#y>");
        assert_eq!(&text[scalar(&tree, &["b"]).span.clone()], "'q'");
        assert_eq!(&text[scalar(&tree, &["c"]).span.clone()], "\"d\"");
    }

    #[test]
    fn block_scalar_span_starts_at_the_indicator() {
        let text = "d: |\n  one\n  two\n\ne: 1\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        let d = scalar(&tree, &["d"]);
        assert_eq!(d.value, "one\ntwo\n");
        assert_eq!(&text[d.span.clone()], "|\n  one\n  two\n\n");
    }

    #[test]
    fn empty_and_comment_only_texts_hold_no_document() {
        assert!(Tree::parse("").unwrap().is_none());
        assert!(Tree::parse("# just a comment\n\n").unwrap().is_none());
    }

    #[test]
    fn aliases_resolve_for_lookups() {
        let tree = Tree::parse("m: &m {kind: Secret}\nn: *m\n")
            .unwrap()
            .unwrap();
        let n = tree.get(&tree.root, "n").unwrap();
        assert_eq!(
            tree.get(n, "kind").unwrap().as_scalar().unwrap().value,
            "Secret"
        );
    }

    #[test]
    fn flow_scalars_know_they_are_in_flow_context() {
        let tree = Tree::parse("a: [x]\nb: y\n").unwrap().unwrap();
        let Node::Seq(items) = tree.get(&tree.root, "a").unwrap() else {
            panic!()
        };
        assert!(items[0].as_scalar().unwrap().flow);
        assert!(!scalar(&tree, &["b"]).flow);
    }

    #[test]
    fn a_block_scalar_may_end_the_input_without_a_line_break() {
        let text = "a: |\n  x";
        let tree = Tree::parse(text).unwrap().unwrap();
        assert_eq!(&text[scalar(&tree, &["a"]).span.clone()], "|\n  x");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = Tree::parse("a: b\n  c: d: e\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2 column 4: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn documents_become_values_with_yaml_1_1_types() {
        let tree =
            Tree::parse("a: yes\nb: 0644\nc: '0644'\nd: [1.5, ~, 0x1F]\ne: &x s\nf: *x\non: 1\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            tree.to_value().to_text(),
            r#"{"a":true,"b":420,"c":"0644","d":[1.5,null,31],"e":"s","f":"s","true":1}"#
        );
    }

    #[test]
    fn json_surrogate_pair_escapes_are_read_and_spans_stay_on_the_text() {
        let text = "{\"a\": \"\\ud83d\\ude00 x\", \"b\": \"<p>\", \"c\": \"\\\\ud83d\"}";
        let tree = Tree::parse(text).unwrap().unwrap();
        assert_eq!(scalar(&tree, &["a"]).value, "😀 x");
        assert_eq!(&text[scalar(&tree, &["b"]).span.clone()], "\"<p>\"");
        assert_eq!(scalar(&tree, &["c"]).value, "\\ud83d");
    }

    #[test]
    fn merge_keys_supply_missing_keys() {
        let text = "base: &b {kind: Secret, name: x}\nm:\n  <<: *b\n  name: y\nl:\n  <<: [*b]\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        let m = tree.get(&tree.root, "m").unwrap();
        assert_eq!(
            tree.get(m, "kind").unwrap().as_scalar().unwrap().value,
            "Secret"
        );
        assert_eq!(tree.get(m, "name").unwrap().as_scalar().unwrap().value, "y");
        let l = tree.get(&tree.root, "l").unwrap();
        assert_eq!(tree.get(l, "name").unwrap().as_scalar().unwrap().value, "x");
    }
}
