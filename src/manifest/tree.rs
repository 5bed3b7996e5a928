//! A YAML document as a tree whose scalars remember their byte span in the source.
//!
//! Built from libyaml-safer events: it is a port of libyaml, the parser behind go-yaml, so it reads
//! the text exactly as Kubernetes does, and its marks are byte offsets.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use libyaml_safer::{EventData, Parser};

pub use libyaml_safer::ScalarStyle as Style;

use super::scalar::{PlainType, yaml11_type};
use crate::value::Value;

/// Deeper nesting is an error: recursion over it would overflow the stack, and no manifest
/// nests this deep.
pub const MAX_DEPTH: usize = 500;
/// Values built by expanding aliases may hold at most this many nodes and scalar bytes: a
/// billion-laughs document is an error, not an exhausted memory.
const MAX_EXPANSION: usize = 4_000_000;

/// A UTF-8 byte-order mark, legal at the start of a YAML stream.
const BOM: &str = "\u{feff}";

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
        // A byte-order mark is skipped, and spans count from the text's start. libyaml-safer
        // panics on a block scalar that ends the input without a line break; the break is added
        // for parsing only, spans are clamped to the text, and the block's value loses it again.
        // JSON's surrogate pair escapes, which libyaml rejects, are parsed as one YAML escape each.
        let bom = if text.starts_with(BOM) { BOM.len() } else { 0 };
        let (mut prepared, shrinks) = join_surrogate_escapes(&text[bom..]);
        let added_break = !prepared.ends_with('\n');
        if added_break {
            prepared.to_mut().push('\n');
        }
        let mut input = prepared.as_bytes();
        let mut parser = Parser::new();
        parser.set_input_string(&mut input);
        let mut builder = Builder {
            parser,
            anchors: HashMap::new(),
            defined: HashMap::new(),
            text,
            bom,
            added_break,
            shrinks,
        };
        let parsed = crate::error::catch_panic(|| builder.document())
            .unwrap_or_else(|| Err(parser_panic(text)));
        parsed.map_err(|e| match e.line {
            0 => unreadable(text),
            _ => e,
        })
    }

    /// Follows an alias to the node it names.
    pub fn resolve<'a>(&'a self, node: &'a Node) -> &'a Node {
        match node {
            Node::Alias(name) => self.anchors.get(name).unwrap_or(node),
            _ => node,
        }
    }

    /// The value of `key` in a mapping node, following aliases.
    /// Keys merged in with `<<: *anchor` count too, as Kubernetes' YAML 1.1 reader merges them:
    /// the map's own keys first (the last of repeated ones), then each merged map in order.
    pub fn get<'a>(&'a self, node: &'a Node, key: &str) -> Option<&'a Node> {
        if key == "<<" {
            return None;
        }
        self.merge_order(node).find_map(|map| {
            map.entries
                .iter()
                .rev()
                .find(|(k, _)| self.is_key(k, key))
                .map(|(_, v)| self.resolve(v))
        })
    }

    /// A map's entries with merged keys included, each key once with the value that wins, in
    /// the order of precedence (the map's own keys first).
    pub fn entries<'a>(&'a self, node: &'a Node) -> Vec<(&'a Node, &'a Node)> {
        let mut out = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for map in self.merge_order(node) {
            for (key, value) in map.entries.iter().rev() {
                if let Node::Scalar(k) = self.resolve(key)
                    && !self.is_key(key, "<<")
                    && seen.insert(&k.value)
                {
                    out.push((key, value));
                }
            }
        }
        out
    }

    /// The maps whose keys `node` has, in order of precedence: itself, then each map merged in
    /// (depth first, in the order written). Each map comes once, so repeated merges cost nothing,
    /// and the walk keeps its own stack, so a long chain of merges cannot overflow the call stack.
    fn merge_order<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a Map> {
        let mut pending = vec![node];
        let mut visited = HashSet::new();
        std::iter::from_fn(move || {
            while let Some(node) = pending.pop() {
                let Node::Map(map) = self.resolve(node) else {
                    continue;
                };
                if !visited.insert(std::ptr::from_ref(map)) {
                    continue;
                }
                let merged = map.entries.iter().rev().find(|(k, _)| self.is_key(k, "<<"));
                match merged.map(|(_, v)| self.resolve(v)) {
                    Some(Node::Seq(sources)) => pending.extend(sources.iter().rev()),
                    Some(source) => pending.push(source),
                    None => {}
                }
                return Some(map);
            }
            None
        })
    }

    /// Whether `key` is the scalar `name`; only a plain `<<` is a merge key.
    fn is_key(&self, key: &Node, name: &str) -> bool {
        matches!(self.resolve(key), Node::Scalar(s) if s.value == name && (name != "<<" || s.style == Style::Plain))
    }
}

impl Tree {
    /// The document as a typed value, read with YAML 1.1 rules as Kubernetes and AVP's
    /// `yamlParse` read it (`yes` is true, `0644` is 420), merge keys applied. Fails when the
    /// aliases expand past the limits.
    pub fn to_value(&self) -> Result<Value, String> {
        let mut budget = MAX_EXPANSION;
        self.value_of(&self.root, 0, &mut budget)
    }

    fn value_of(&self, node: &Node, depth: usize, budget: &mut usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("aliases nest deeper than {MAX_DEPTH} levels"));
        }
        let node = self.resolve(node);
        let cost = match node {
            Node::Scalar(s) => 1 + s.value.len(),
            _ => 1,
        };
        *budget = budget
            .checked_sub(cost)
            .ok_or("aliases expand to more than 4 million nodes and bytes")?;
        Ok(match node {
            Node::Scalar(scalar) => scalar_value(scalar),
            Node::Seq(items) => Value::List(
                items
                    .iter()
                    .map(|item| self.value_of(item, depth + 1, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(_) => {
                let mut map = std::collections::BTreeMap::new();
                for (key, value) in self.entries(node) {
                    let key = self.value_of(key, depth + 1, budget)?.to_text();
                    let value = self.value_of(value, depth + 1, budget)?;
                    map.entry(key).or_insert(value);
                }
                Value::Map(map)
            }
            Node::Alias(_) => Value::Null,
        })
    }
}

/// The error for text that made the parser panic, placed at the first tag followed by `,` (the
/// input known to do so), else at the start.
fn parser_panic(text: &str) -> SyntaxError {
    let at = text
        .match_indices('!')
        .map(|(i, _)| i)
        .find(|&i| {
            let tag = &text[i..];
            let end = tag
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
                .unwrap_or(tag.len());
            tag[end..].starts_with(',')
        })
        .unwrap_or(0);
    let (line, column) = position(text, at);
    SyntaxError {
        line,
        column,
        problem: "the YAML parser cannot read this text (a tag followed by `,`?)".to_owned(),
    }
}

/// The 1-based line and column (in characters) of byte offset `at`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The error for text that libyaml's reader refuses: the first character YAML does not allow.
fn unreadable(text: &str) -> SyntaxError {
    let (at, c) = text
        .char_indices()
        .find(|(_, c)| !yaml_printable(*c))
        .unwrap_or((text.len(), '\0'));
    let (line, column) = position(text, at);
    SyntaxError {
        line,
        column,
        problem: format!(
            "the character U+{:04X} is not allowed in YAML",
            u32::from(c)
        ),
    }
}

/// YAML's printable characters, as libyaml's reader checks them.
fn yaml_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
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
/// its character (`\U0001F600`, 10 bytes), recording where the text got shorter: libyaml (and
/// so serde_yaml) rejects the pairs that every JSON text may hold.
pub fn join_surrogate_escapes(text: &str) -> (Cow<'_, str>, Vec<usize>) {
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

struct Builder<'r, 'b, 't> {
    parser: Parser<&'b mut &'r [u8]>,
    /// Anchored nodes by key: the anchor's name, made unique when it is defined again.
    anchors: HashMap<String, Node>,
    /// Each anchor name's latest complete definition.
    defined: HashMap<String, String>,
    /// The text as given; marks may pass its end by the added line break.
    text: &'t str,
    /// Length of the byte-order mark skipped at the start.
    bom: usize,
    /// Whether a line break was added after the text for parsing.
    added_break: bool,
    /// Positions in the parsed text after each escape that is 2 bytes shorter than in the text.
    shrinks: Vec<usize>,
}

impl Builder<'_, '_, '_> {
    /// The text offset of a position in the parsed text.
    fn offset(&self, parsed: usize) -> usize {
        (self.bom + parsed + 2 * self.shrinks.partition_point(|&p| p <= parsed))
            .min(self.text.len())
    }

    /// Reader errors have no mark: line 0 tells `Tree::parse` to locate them.
    fn next(&mut self) -> Result<libyaml_safer::Event, SyntaxError> {
        self.parser.parse().map_err(|e| {
            let Some(mark) = e.problem_mark() else {
                return SyntaxError {
                    line: 0,
                    column: 0,
                    problem: e.problem().to_owned(),
                };
            };
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
                    let root = self.root()?;
                    self.defined.clear();
                    tree = Some(Tree {
                        root,
                        anchors: std::mem::take(&mut self.anchors),
                    });
                }
                _ => unreachable!("libyaml emits nodes only inside documents"),
            }
        }
    }

    fn error_at(mark: libyaml_safer::Mark, problem: String) -> SyntaxError {
        SyntaxError {
            line: mark.line as usize + 1,
            column: mark.column as usize + 1,
            problem,
        }
    }

    /// A block scalar's value without the line break added after the text, when it ends there.
    fn block_value(&self, mut value: String, span: &Range<usize>) -> String {
        if !self.added_break || span.end < self.text.len() || !value.ends_with('\n') {
            return value;
        }
        let block = &self.text[span.clone()];
        let header = block.lines().next().unwrap_or_default();
        let keep = header.contains('+');
        let last_line_has_content = block
            .rsplit('\n')
            .next()
            .is_some_and(|l| !l.trim_matches([' ', '\t']).is_empty());
        if keep || last_line_has_content {
            value.pop();
        }
        value
    }

    /// Reads one node (a document's root). Collections are built with an explicit stack, so
    /// nesting costs heap, not call stack.
    fn root(&mut self) -> Result<Node, SyntaxError> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let flow = open.last().is_some_and(|o| o.flow);
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
                } => {
                    let value = match style {
                        Style::Literal | Style::Folded => self.block_value(value, &(start..end)),
                        _ => value,
                    };
                    let scalar = Scalar {
                        value,
                        style,
                        tag,
                        span: start..end,
                        flow,
                    };
                    (Node::Scalar(scalar), anchor, start..end)
                }
                EventData::Alias { anchor } => {
                    // An anchor is known once its node is complete, so no node contains itself.
                    let Some(key) = self.defined.get(&anchor) else {
                        return Err(Self::error_at(
                            event.start_mark,
                            format!("unknown anchor '{anchor}' referenced"),
                        ));
                    };
                    (Node::Alias(key.clone()), None, start..end)
                }
                EventData::SequenceStart { anchor, style, .. } => {
                    self.push(
                        &mut open,
                        event.start_mark,
                        Open {
                            kind: OpenKind::Seq(Vec::new()),
                            anchor,
                            start,
                            flow: flow || style == libyaml_safer::SequenceStyle::Flow,
                            is_flow: style == libyaml_safer::SequenceStyle::Flow,
                        },
                    )?;
                    continue;
                }
                EventData::MappingStart { anchor, style, .. } => {
                    let is_flow = style == libyaml_safer::MappingStyle::Flow;
                    self.push(
                        &mut open,
                        event.start_mark,
                        Open {
                            kind: OpenKind::Map {
                                entries: Vec::new(),
                                key: None,
                                first: None,
                                last: start,
                            },
                            anchor,
                            start,
                            flow: flow || is_flow,
                            is_flow,
                        },
                    )?;
                    continue;
                }
                EventData::SequenceEnd | EventData::MappingEnd => {
                    let done = open
                        .pop()
                        .expect("libyaml ends only collections it started");
                    let (node, span) = match done.kind {
                        OpenKind::Seq(items) => (Node::Seq(items), done.start..end),
                        OpenKind::Map {
                            entries,
                            first,
                            last,
                            ..
                        } => {
                            let span = if done.is_flow {
                                done.start..end
                            } else {
                                let first = first.unwrap_or(done.start);
                                first..last.max(first)
                            };
                            let map = Map {
                                entries,
                                flow: done.flow,
                                span: span.clone(),
                            };
                            (Node::Map(map), span)
                        }
                    };
                    (node, done.anchor, span)
                }
                _ => unreachable!("libyaml emits only nodes inside a document"),
            };
            if let Some(anchor) = anchor {
                // A redefined anchor gets a key of its own: earlier aliases keep their node.
                let key = match self.defined.get(&anchor) {
                    None => anchor.clone(),
                    Some(_) => format!("{anchor}\u{0}{}", self.anchors.len()),
                };
                self.anchors.insert(key.clone(), node.clone());
                self.defined.insert(anchor, key);
            }
            let Some(parent) = open.last_mut() else {
                return Ok(node);
            };
            match &mut parent.kind {
                OpenKind::Seq(items) => items.push(node),
                OpenKind::Map {
                    entries,
                    key,
                    first,
                    last,
                } => match key.take() {
                    None => {
                        first.get_or_insert(span.start);
                        *key = Some(node);
                    }
                    Some(k) => {
                        *last = span.end;
                        entries.push((k, node));
                    }
                },
            }
        }
    }

    fn push(
        &self,
        open: &mut Vec<Open>,
        mark: libyaml_safer::Mark,
        collection: Open,
    ) -> Result<(), SyntaxError> {
        if open.len() >= MAX_DEPTH {
            return Err(Self::error_at(
                mark,
                format!("collections nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        open.push(collection);
        Ok(())
    }
}

/// A collection being read.
struct Open {
    kind: OpenKind,
    anchor: Option<String>,
    start: usize,
    /// Inside a flow collection, this one or an outer one.
    flow: bool,
    /// This collection is written in flow style.
    is_flow: bool,
}

enum OpenKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        /// A key read, whose value comes next.
        key: Option<Node>,
        first: Option<usize>,
        last: usize,
    },
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
            tree.to_value().unwrap().to_text(),
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

    fn parse_error(text: &str) -> String {
        Tree::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn any_nesting_depth_is_an_error_or_works() {
        for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
            for depth in [MAX_DEPTH, 20_000] {
                let text = format!("{}x{}\n", open.repeat(depth), close.repeat(depth));
                let result = Tree::parse(&text);
                if depth > MAX_DEPTH {
                    let err = result.unwrap_err().to_string();
                    assert!(
                        err.contains("collections nest deeper than 500 levels"),
                        "{err}"
                    );
                } else {
                    result.unwrap();
                }
            }
        }
        let deep = format!("kind: A\nx: {}1{}\n", "[".repeat(8500), "]".repeat(8500));
        assert!(parse_error(&deep).starts_with("line 2 column "));
    }

    #[test]
    fn a_parser_panic_is_an_ordinary_error() {
        // Found by fuzzing: libyaml-safer panics on a tag followed by `,` in a flow collection.
        for text in ["[!,]", "{a: !x,}", "kind: A\nx: [!, 1]\n"] {
            let err = parse_error(text);
            assert!(
                err.contains("the YAML parser cannot read this text"),
                "{err}"
            );
        }
    }

    #[test]
    fn self_references_are_errors() {
        assert_eq!(
            parse_error("a: &a [*a]\n"),
            "line 1 column 8: unknown anchor 'a' referenced"
        );
        assert_eq!(
            parse_error("&r\n<<: *r\nkind: A\n"),
            "line 2 column 5: unknown anchor 'r' referenced"
        );
    }

    #[test]
    fn a_redefined_anchor_keeps_earlier_aliases_on_the_old_node() {
        let tree = Tree::parse("a: &x 1\nb: &x [*x]\nc: *x\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            tree.to_value().unwrap().to_text(),
            r#"{"a":1,"b":[1],"c":[1]}"#
        );
    }

    #[test]
    fn billion_laughs_is_an_error() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let tree = Tree::parse(&text).unwrap().unwrap();
        assert_eq!(
            tree.to_value().unwrap_err(),
            "aliases expand to more than 4 million nodes and bytes"
        );
    }

    #[test]
    fn repeated_merges_are_searched_once() {
        let mut text = String::from("m0: &m0 {x: 1}\n");
        for i in 1..40 {
            let p = i - 1;
            text.push_str(&format!("m{i}: &m{i} {{<<: [*m{p}, *m{p}, *m{p}]}}\n"));
        }
        text.push_str("top:\n  <<: *m39\n");
        let tree = Tree::parse(&text).unwrap().unwrap();
        let top = tree.get(&tree.root, "top").unwrap();
        assert!(tree.get(top, "kind").is_none());
        assert_eq!(tree.get(top, "x").unwrap().as_scalar().unwrap().value, "1");
        assert_eq!(tree.entries(top).len(), 1);
    }

    #[test]
    fn a_long_chain_of_merges_does_not_overflow_the_stack() {
        let mut text = String::from("m0: &m0 {kind: A}\n");
        for i in 1..20_000 {
            text.push_str(&format!("m{i}: &m{i} {{<<: *m{}}}\n", i - 1));
        }
        let tree = Tree::parse(&text).unwrap().unwrap();
        let last = tree.get(&tree.root, "m19999").unwrap();
        assert_eq!(
            tree.get(last, "kind").unwrap().as_scalar().unwrap().value,
            "A"
        );
    }

    #[test]
    fn merged_keys_come_after_own_keys_and_earlier_sources_win() {
        let text = "a: &a {k: a, x: a}\nb: &b {k: b, y: b}\nm: {<<: [*a, *b], x: own, x: last}\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        let m = tree.get(&tree.root, "m").unwrap();
        let entries: Vec<_> = tree
            .entries(m)
            .into_iter()
            .map(|(k, v)| {
                let k = &k.as_scalar().unwrap().value;
                let v = &tree.resolve(v).as_scalar().unwrap().value;
                format!("{k}={v}")
            })
            .collect();
        assert_eq!(entries, ["x=last", "k=a", "y=b"]);
    }

    #[test]
    fn a_block_scalar_at_the_end_without_a_line_break_has_none() {
        let value = |text: &str| {
            let tree = Tree::parse(text).unwrap().unwrap();
            scalar(&tree, &["a"]).value.clone()
        };
        assert_eq!(value("a: |\n  x"), "x");
        assert_eq!(value("a: |+\n  x"), "x");
        assert_eq!(value("a: |-\n  x"), "x");
        assert_eq!(value("a: >\n  x\n  y"), "x y");
        assert_eq!(value("a: |\n  x\n"), "x\n");
        assert_eq!(value("a: |\n  x\n  "), "x\n");
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_spans_stay_on_the_text() {
        let text = "\u{feff}kind: A\nx: <p>\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        assert_eq!(&text[scalar(&tree, &["x"]).span.clone()], "<p>");
        assert_eq!(scalar(&tree, &["kind"]).value, "A");
    }

    #[test]
    fn a_forbidden_character_is_reported_where_it_is() {
        assert_eq!(
            parse_error("a: 1\nb: 2\nc: x\u{0}y\n"),
            "line 3 column 5: the character U+0000 is not allowed in YAML"
        );
    }
}
