//! Rewrites the scalars of one document in place, leaving every other byte as it was.
//!
//! Each edit is first spliced into the scalar's own text in its own style; the result is parsed
//! again and every edited scalar must read back as the intended value. Where it does not (a
//! chomping change, a quote, a line fold), that scalar is written again in a plainer style, up to a
//! double-quoted scalar, which can hold any string.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::scalar::{
    double_quoted, literal_block, needs_escapes, plain_safe, plain_syntax_safe,
    push_double_quoted_body,
};
use super::tree::{Map, Node, Scalar, Style, Tree};
use crate::value::{Value, format_number};

/// The new value of a scalar. No `Debug`: it holds secret text.
pub enum NewValue {
    /// A string, read back as a string whatever it holds.
    Text(String),
    /// A typed value (number, boolean, null, map, list) that replaces a whole plain scalar.
    Typed(Value),
}

/// One change to a document.
pub enum Edit {
    Replace {
        /// `span.start` of the scalar in the document text.
        at: usize,
        value: NewValue,
        /// Each placeholder's text and its replacement, left to right, when the new value is the
        /// old one with these placeholders replaced (none for re-encoded base64).
        pieces: Vec<(String, String)>,
    },
    /// Removes the mapping entry whose key scalar starts at `key_at`.
    Remove { key_at: usize },
}

/// How hard to try to keep a scalar's original form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Splice,
    Reemit,
    DoubleQuoted,
}

/// Applies `edits` to `text`, whose parse is `tree`. Fails only if even double-quoted scalars do
/// not read back (a bug, reported rather than written).
pub fn rewrite(text: &str, tree: &Tree, edits: &[Edit]) -> Result<String, String> {
    let scalars = index_scalars(&tree.root);
    let entries = index_entries(&tree.root);
    let mut levels = vec![Level::Splice; edits.len()];
    loop {
        let out = render(text, &scalars, &entries, edits, &levels)?;
        let failed = match Tree::parse(&out) {
            Ok(Some(new)) => {
                let check = Check {
                    edits,
                    removed: removed_keys(edits),
                };
                check.mismatches(&tree.root, &new.root)
            }
            _ => None,
        };
        let failed: Vec<usize> = match failed {
            Some(f) if f.is_empty() => return Ok(out),
            Some(f) => f,
            None => (0..edits.len()).collect(),
        };
        let mut progressed = false;
        for i in failed {
            if levels[i] < Level::DoubleQuoted {
                levels[i] = if levels[i] == Level::Splice {
                    Level::Reemit
                } else {
                    Level::DoubleQuoted
                };
                progressed = true;
            }
        }
        if !progressed {
            return Err(
                "internal error: a rewritten value did not read back exactly; please report this"
                    .to_owned(),
            );
        }
    }
}

fn index_scalars(root: &Node) -> HashMap<usize, &Scalar> {
    fn walk<'a>(node: &'a Node, out: &mut HashMap<usize, &'a Scalar>) {
        match node {
            Node::Scalar(s) => {
                out.insert(s.span.start, s);
            }
            Node::Seq(items) => items.iter().for_each(|n| walk(n, out)),
            Node::Map(map) => map.entries.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
            Node::Alias(_) => {}
        }
    }
    let mut out = HashMap::new();
    walk(root, &mut out);
    out
}

fn removed_keys(edits: &[Edit]) -> HashSet<usize> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Remove { key_at } => Some(*key_at),
            Edit::Replace { .. } => None,
        })
        .collect()
}

fn render(
    text: &str,
    scalars: &HashMap<usize, &Scalar>,
    entries: &HashMap<usize, (&Map, usize)>,
    edits: &[Edit],
    levels: &[Level],
) -> Result<String, String> {
    let mut ops: Vec<(Range<usize>, String)> = Vec::new();
    // Removals per map: a map that loses every entry becomes `{}`.
    let mut removed: HashMap<*const Map, (&Map, Vec<usize>)> = HashMap::new();
    for (edit, level) in edits.iter().zip(levels) {
        match edit {
            Edit::Replace { at, value, pieces } => {
                let scalar = scalars
                    .get(at)
                    .ok_or("internal error: edit of an unknown scalar")?;
                ops.extend(replace(text, scalar, value, pieces, *level));
            }
            Edit::Remove { key_at } => {
                let &(map, i) = entries
                    .get(key_at)
                    .ok_or("internal error: removal of an unknown key")?;
                removed
                    .entry(std::ptr::from_ref(map))
                    .or_insert((map, Vec::new()))
                    .1
                    .push(i);
            }
        }
    }
    for (map, indexes) in removed.into_values() {
        if indexes.len() == map.entries.len() {
            ops.push((map.span.clone(), "{}".to_owned()));
            continue;
        }
        for i in indexes {
            ops.push(removal(text, map, i).ok_or("internal error: removal of an unknown key")?);
        }
    }
    ops.sort_by_key(|(range, _)| (range.start, range.end));
    // Neighbouring removals may share the text between them.
    let mut merged: Vec<(Range<usize>, String)> = Vec::with_capacity(ops.len());
    for (range, replacement) in ops {
        match merged.last_mut() {
            Some((last, text))
                if text.is_empty() && replacement.is_empty() && range.start < last.end =>
            {
                last.end = last.end.max(range.end);
            }
            _ => merged.push((range, replacement)),
        }
    }
    let ops = merged;
    let mut out =
        String::with_capacity(text.len() + ops.iter().map(|(_, s)| s.len()).sum::<usize>());
    let mut pos = 0;
    for (range, replacement) in ops {
        if range.start < pos {
            return Err("internal error: overlapping edits".to_owned());
        }
        out.push_str(&text[pos..range.start]);
        if uses_crlf(text, &range) {
            push_with_crlf(&mut out, &replacement);
        } else {
            out.push_str(&replacement);
        }
        pos = range.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// Whether the text around `range` breaks lines with CRLF: the replaced text holds one, or the
/// line it ends on does.
fn uses_crlf(text: &str, range: &Range<usize>) -> bool {
    text[range.clone()].contains("\r\n")
        || text[range.end..]
            .find('\n')
            .is_some_and(|i| text[..range.end + i].ends_with('\r'))
}

/// Appends `s` with every bare line break written as CRLF, so a Windows file keeps one kind of
/// line ending.
fn push_with_crlf(out: &mut String, s: &str) {
    let mut previous = '\0';
    for c in s.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
}

/// The text operations that give `scalar` its new value at `level`.
fn replace(
    text: &str,
    scalar: &Scalar,
    value: &NewValue,
    pieces: &[(String, String)],
    level: Level,
) -> Vec<(Range<usize>, String)> {
    let own = own_text(text, scalar);
    let block = matches!(scalar.style, Style::Literal | Style::Folded)
        .then(|| BlockParts::of(&text[own.clone()]));
    let s = match value {
        // A block scalar gives way to the value on its line, keeping its line break and tail.
        NewValue::Typed(typed) => {
            let typed = typed_text(typed);
            return match block {
                Some(parts) => vec![(own, format!("{typed}{}{}", parts.newline(), parts.tail))],
                None => vec![(own, typed)],
            };
        }
        NewValue::Text(s) => s,
    };
    if level == Level::Splice
        && !pieces.is_empty()
        && let Some(ops) = splice(text, scalar, s, pieces)
    {
        return ops;
    }
    if level <= Level::Reemit {
        let plain_ok = match scalar.tag {
            Some(_) => plain_syntax_safe(s, scalar.flow),
            None => plain_safe(s, scalar.flow),
        };
        match scalar.style {
            Style::Plain if plain_ok => return vec![(own, s.clone())],
            Style::SingleQuoted if one_line_printable(s) => {
                return vec![(own, format!("'{}'", s.replace('\'', "''")))];
            }
            _ => {}
        }
        match &block {
            Some(parts) => {
                if let Some(lit) = literal_block(s, parts.indent.unwrap_or(2), parts.header_rest) {
                    // With keep chomping (`|+`) the trailing blank lines are part of the value.
                    let tail = if s.ends_with("\n\n") { "" } else { parts.tail };
                    return vec![(own, format!("{lit}{tail}"))];
                }
            }
            None if !scalar.flow && s.contains('\n') => {
                if let Some(op) = plain_to_literal(text, &own, s) {
                    return vec![op];
                }
            }
            None => {}
        }
    }
    match block {
        Some(parts) => vec![(
            own,
            format!("{}{}{}", double_quoted(s), parts.newline(), parts.tail),
        )],
        None => vec![(own, double_quoted(s))],
    }
}

/// The scalar's text without the anchor or tag written before it.
fn own_text(text: &str, scalar: &Scalar) -> Range<usize> {
    let span = &text[scalar.span.clone()];
    let mut offset = 0;
    loop {
        let rest = &span[offset..];
        let trimmed = rest.trim_start();
        if !(trimmed.starts_with('&') || trimmed.starts_with('!')) {
            offset += rest.len() - trimmed.len();
            break;
        }
        let token_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        offset += rest.len() - trimmed.len() + token_end;
    }
    scalar.span.start + offset..scalar.span.end
}

fn typed_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(n),
        other => other.to_json().to_string(),
    }
}

/// Replaces each placeholder's text inside the scalar's source, escaped for its style.
fn splice(
    text: &str,
    scalar: &Scalar,
    new: &str,
    pieces: &[(String, String)],
) -> Option<Vec<(Range<usize>, String)>> {
    let indent = match scalar.style {
        Style::Literal => BlockParts::of(&text[scalar.span.clone()]).indent,
        _ => None,
    };
    let mut ops = Vec::with_capacity(pieces.len());
    let mut cursor = scalar.span.start;
    for (found, replacement) in pieces {
        let start = cursor + text[cursor..scalar.span.end].find(found.as_str())?;
        let end = start + found.len();
        let plain_ok = match scalar.tag {
            Some(_) => plain_syntax_safe(new, scalar.flow),
            None => plain_safe(new, scalar.flow),
        };
        let escaped = match scalar.style {
            Style::Plain if plain_ok => replacement.clone(),
            Style::SingleQuoted if one_line_printable(replacement) => {
                replacement.replace('\'', "''")
            }
            Style::DoubleQuoted => {
                let mut body = String::with_capacity(replacement.len());
                push_double_quoted_body(&mut body, replacement);
                body
            }
            Style::Literal if replacement.chars().all(|c| c != '\r' && !needs_escapes(c)) => {
                let line_goes_on = !text[end..].starts_with('\n') && end < text.len();
                indent_lines(replacement, indent?, line_goes_on)
            }
            Style::Folded if one_line_printable(replacement) => replacement.clone(),
            _ => return None,
        };
        ops.push((start..end, escaped));
        cursor = end;
    }
    Some(ops)
}

/// Indents every line after the first for a literal block. Empty lines get no trailing spaces,
/// except a last one that the rest of the source line continues.
fn indent_lines(s: &str, indent: usize, line_goes_on: bool) -> String {
    let pad = " ".repeat(indent);
    let mut lines = s.split('\n');
    let mut out = lines.next().unwrap_or_default().to_owned();
    let mut lines = lines.peekable();
    while let Some(line) = lines.next() {
        out.push('\n');
        if !line.is_empty() || (lines.peek().is_none() && line_goes_on) {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    out
}

/// Whether a quoted scalar can hold `s` without escapes; tabs are escaped too, for readers
/// that fold them.
fn one_line_printable(s: &str) -> bool {
    s.chars()
        .all(|c| c != '\n' && c != '\r' && c != '\t' && !needs_escapes(c))
}

/// A multi-line string in place of a plain or quoted scalar that ends its line: written as a
/// literal block indented below the line, so certificates stay readable.
fn plain_to_literal(text: &str, own: &Range<usize>, s: &str) -> Option<(Range<usize>, String)> {
    let line_end = text[own.end..].find('\n').map(|i| own.end + i)?;
    if !text[own.end..line_end].trim().is_empty() {
        return None;
    }
    let line_start = text[..own.start].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..own.start];
    let mut rest = line.trim_start_matches(' ');
    while let Some(after) = rest.strip_prefix("- ") {
        rest = after.trim_start_matches(' ');
    }
    // Deeper than the key the value belongs to, or than the `-` of a sequence item.
    let column = line.len() - rest.len();
    let indent = if rest.is_empty() { column } else { column + 2 };
    let lit = literal_block(s, indent, "")?;
    Some((own.start..line_end + 1, lit))
}

/// A block scalar's source: `|+ # comment` header, content lines, trailing blank lines.
struct BlockParts<'a> {
    header_rest: &'a str,
    /// Indentation of the first non-blank content line.
    indent: Option<usize>,
    /// Blank lines after the last content line.
    tail: &'a str,
    body_ends_with_newline: bool,
}

impl<'a> BlockParts<'a> {
    /// The line break that ends the block's last content line, if it has one.
    fn newline(&self) -> &'static str {
        if self.body_ends_with_newline {
            "\n"
        } else {
            ""
        }
    }

    fn of(block: &'a str) -> BlockParts<'a> {
        let header_end = block.find('\n').map_or(block.len(), |i| i + 1);
        let header = block[..header_end].trim_end_matches(['\n', '\r']);
        let indicators = header
            .find(|c: char| !matches!(c, '|' | '>' | '+' | '-' | '0'..='9'))
            .unwrap_or(header.len());
        let mut indent = None;
        let mut content_end = header_end;
        let mut pos = header_end;
        while pos < block.len() {
            let end = block[pos..].find('\n').map_or(block.len(), |i| pos + i + 1);
            let line = &block[pos..end];
            if !line.trim().is_empty() {
                indent.get_or_insert(line.len() - line.trim_start_matches(' ').len());
                content_end = end;
            }
            pos = end;
        }
        BlockParts {
            header_rest: &header[indicators..],
            indent,
            tail: &block[content_end..],
            body_ends_with_newline: block[..content_end].ends_with('\n'),
        }
    }
}

/// The text to delete so that the entry with key at `key_at` leaves its mapping.
fn removal(text: &str, map: &Map, i: usize) -> Option<(Range<usize>, String)> {
    let key_start = node_start(&map.entries[i].0)?;
    let value_end = node_end(&map.entries[i].1).max(key_start);
    let line_start = |at: usize| text[..at].rfind('\n').map_or(0, |p| p + 1);
    let starts_line = |at: usize| text[line_start(at)..at].trim().is_empty();
    if let Some((next_key, _)) = map.entries.get(i + 1) {
        let next = node_start(next_key)?;
        // Whole lines in a block mapping, so that neighbouring removals join up cleanly.
        if !map.flow && starts_line(key_start) && starts_line(next) {
            return Some((line_start(key_start)..line_start(next), String::new()));
        }
        return Some((key_start..next, String::new()));
    }
    if i > 0 {
        let prev_end = node_end(&map.entries[i - 1].1);
        let line_start = text[..key_start].rfind('\n').map_or(0, |p| p + 1);
        if !map.flow && text[line_start..key_start].trim().is_empty() {
            let line_end = text[value_end..]
                .find('\n')
                .map_or(text.len(), |p| value_end + p + 1);
            let end = if text[..value_end].ends_with('\n') {
                value_end
            } else {
                line_end
            };
            return Some((line_start..end, String::new()));
        }
        return Some((prev_end..value_end, String::new()));
    }
    Some((map.span.clone(), "{}".to_owned()))
}

/// Every mapping entry by the start of its key, so removals cost one look-up each.
fn index_entries(root: &Node) -> HashMap<usize, (&Map, usize)> {
    fn walk<'a>(node: &'a Node, out: &mut HashMap<usize, (&'a Map, usize)>) {
        match node {
            Node::Map(map) => {
                for (i, (key, value)) in map.entries.iter().enumerate() {
                    if let Some(at) = node_start(key) {
                        out.insert(at, (map, i));
                    }
                    walk(value, out);
                }
            }
            Node::Seq(items) => items.iter().for_each(|n| walk(n, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(root, &mut out);
    out
}

fn node_start(node: &Node) -> Option<usize> {
    match node {
        Node::Scalar(s) => Some(s.span.start),
        Node::Map(m) => Some(m.span.start),
        Node::Seq(items) => items.first().and_then(node_start),
        Node::Alias(_) => None,
    }
}

fn node_end(node: &Node) -> usize {
    match node {
        Node::Scalar(s) => s.span.end,
        Node::Map(m) => m.span.end,
        Node::Seq(items) => items.last().map_or(0, node_end),
        Node::Alias(_) => 0,
    }
}

/// Compares a document before and after rewriting.
struct Check<'a> {
    edits: &'a [Edit],
    removed: HashSet<usize>,
}

impl Check<'_> {
    /// The edits that did not read back; `None` when the document's shape changed.
    fn mismatches(&self, old: &Node, new: &Node) -> Option<Vec<usize>> {
        let by_scalar: HashMap<usize, usize> = self
            .edits
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Edit::Replace { at, .. } => Some((*at, i)),
                Edit::Remove { .. } => None,
            })
            .collect();
        let mut failed = Vec::new();
        self.compare(old, new, &by_scalar, &mut failed)
            .then_some(failed)
    }

    fn compare(
        &self,
        old: &Node,
        new: &Node,
        by_scalar: &HashMap<usize, usize>,
        failed: &mut Vec<usize>,
    ) -> bool {
        if let Node::Scalar(o) = old
            && let Some(&i) = by_scalar.get(&o.span.start)
        {
            let Edit::Replace { value, .. } = &self.edits[i] else {
                unreachable!("by_scalar indexes replacements only");
            };
            if !reads_back(new, value) {
                failed.push(i);
            }
            return true;
        }
        match (old, new) {
            (Node::Scalar(o), Node::Scalar(n)) => o.value == n.value && o.style == n.style,
            (Node::Seq(a), Node::Seq(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| self.compare(x, y, by_scalar, failed))
            }
            (Node::Map(a), Node::Map(b)) => {
                let kept: Vec<_> = a
                    .entries
                    .iter()
                    .filter(|(k, _)| node_start(k).is_none_or(|s| !self.removed.contains(&s)))
                    .collect();
                kept.len() == b.entries.len()
                    && kept.iter().zip(&b.entries).all(|((ok, ov), (nk, nv))| {
                        self.compare(ok, nk, by_scalar, failed)
                            && self.compare(ov, nv, by_scalar, failed)
                    })
            }
            (Node::Alias(a), Node::Alias(b)) => a == b,
            _ => false,
        }
    }
}

/// Whether the rewritten node reads back as `value`.
fn reads_back(node: &Node, value: &NewValue) -> bool {
    match (node, value) {
        // Under an explicit tag, a plain scalar needs only to parse as this text.
        (Node::Scalar(n), NewValue::Text(s)) => {
            n.value == *s
                && (n.style != Style::Plain
                    || if n.tag.is_some() {
                        plain_syntax_safe(s, n.flow)
                    } else {
                        plain_safe(s, n.flow)
                    })
        }
        (node, NewValue::Typed(v)) => matches_value(node, v),
        _ => false,
    }
}

fn matches_value(node: &Node, value: &Value) -> bool {
    match (node, value) {
        (Node::Scalar(n), Value::String(s)) => n.value == *s && n.style != Style::Plain,
        (Node::Scalar(n), Value::Bytes(_)) => n.value == value.to_text() && n.style != Style::Plain,
        (Node::Scalar(n), scalar @ (Value::Null | Value::Bool(_) | Value::Number(_))) => {
            n.style == Style::Plain && n.value == typed_text(scalar)
        }
        (Node::Seq(items), Value::List(values)) => {
            items.len() == values.len()
                && items.iter().zip(values).all(|(n, v)| matches_value(n, v))
        }
        (Node::Map(map), Value::Map(values)) => {
            map.entries.len() == values.len()
                && map
                    .entries
                    .iter()
                    .zip(values)
                    .all(|((k, v), (key, value))| {
                        matches!(k, Node::Scalar(k) if k.value == *key) && matches_value(v, value)
                    })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites the scalar whose source text is `target` (its first occurrence) to `new`.
    fn rewrite_one(text: &str, target: &str, new: &str) -> String {
        let tree = Tree::parse(text).unwrap().unwrap();
        let scalars = index_scalars(&tree.root);
        let at = *scalars
            .keys()
            .filter(|at| {
                text[**at..].starts_with(target) || text[scalars[at].span.clone()].contains(target)
            })
            .min()
            .unwrap();
        let old = &scalars[&at].value;
        let pieces = match old.find(target) {
            Some(i) => vec![(
                target.to_owned(),
                new[i..new.len() - (old.len() - i - target.len())].to_owned(),
            )],
            None => Vec::new(),
        };
        let edit = Edit::Replace {
            at,
            value: NewValue::Text(new.to_owned()),
            pieces,
        };
        rewrite(text, &tree, &[edit]).unwrap()
    }

    #[test]
    fn literal_block_splice_keeps_other_lines() {
        let text = "data:\n  f: |\n    a: 1\n    c: |\n      <p>\n    z: 2\n";
        let out = rewrite_one(text, "<p>", "a: 1\nc: |\n  X\n  Y\n\nz: 2\n");
        assert_eq!(
            out,
            "data:\n  f: |\n    a: 1\n    c: |\n      X\n      Y\n\n    z: 2\n"
        );
    }

    fn key_at(text: &str, key: &str) -> usize {
        [' ', '{']
            .iter()
            .find_map(|before| text.find(&format!("{before}{key}:")))
            .unwrap()
            + 1
    }

    fn remove(text: &str, key: &str) -> String {
        let tree = Tree::parse(text).unwrap().unwrap();
        let edit = Edit::Remove {
            key_at: key_at(text, key),
        };
        rewrite(text, &tree, &[edit]).unwrap()
    }

    #[test]
    fn removing_an_entry_keeps_its_neighbours_and_their_comments() {
        let text = "data:
  a: 1 # one
  b: <x>
  c: 3
";
        assert_eq!(
            remove(text, "b"),
            "data:
  a: 1 # one
  c: 3
"
        );
        assert_eq!(
            remove(text, "c"),
            "data:
  a: 1 # one
  b: <x>
"
        );
        assert_eq!(
            remove(text, "a"),
            "data:
  b: <x>
  c: 3
"
        );
        assert_eq!(
            remove(
                "data:
  only: <x>
kind: A
",
                "only"
            ),
            "data:
  {}
kind: A
"
        );
        assert_eq!(
            remove(
                "data: {a: 1, b: <x>}
",
                "b"
            ),
            "data: {a: 1}
"
        );
        assert_eq!(
            remove(
                "data: {a: <x>, b: 2}
",
                "a"
            ),
            "data: {b: 2}
"
        );
    }

    #[test]
    fn typed_values_replace_the_whole_plain_scalar() {
        let text = "a: <n> # c
b: <m>
";
        let tree = Tree::parse(text).unwrap().unwrap();
        let typed = |at: usize, v: serde_json::Value| Edit::Replace {
            at,
            value: NewValue::Typed(v.into()),
            pieces: Vec::new(),
        };
        let edits = [
            typed(3, serde_json::json!(5)),
            typed(14, serde_json::json!({"k": ["v", true]})),
        ];
        assert_eq!(
            rewrite(text, &tree, &edits).unwrap(),
            "a: 5 # c
b: {\"k\":[\"v\",true]}\n"
        );
    }

    #[test]
    fn anchors_stay_and_aliases_follow() {
        let out = rewrite_one("a: &x '<p>'\nb: *x\n", "<p>", "it's");
        assert_eq!(out, "a: &x 'it''s'\nb: *x\n");
    }

    #[test]
    fn plain_scalars_that_would_change_type_are_quoted() {
        assert_eq!(rewrite_one("a: <p>\n", "<p>", "yes"), "a: \"yes\"\n");
        assert_eq!(rewrite_one("a: [<p>]\n", "<p>", "x, y"), "a: [\"x, y\"]\n");
    }

    #[test]
    fn multi_line_values_in_plain_scalars_become_literal_blocks() {
        assert_eq!(
            rewrite_one("a:\n  - <p>\nb: 1\n", "<p>", "l1\nl2\n"),
            "a:\n  - |\n    l1\n    l2\nb: 1\n"
        );
    }

    #[test]
    fn a_block_needing_keep_chomping_is_rewritten_whole() {
        let out = rewrite_one("crt: |\n  <p>\nnext: 1\n", "<p>", "A\nB\n\n");
        assert_eq!(out, "crt: |+\n  A\n  B\n\nnext: 1\n");
    }

    /// Every way a value can be written, in a file with Windows line endings.
    #[test]
    fn crlf_files_keep_crlf_line_endings() {
        let cases = [
            ("a: <p>\r\nb: 1\r\n", "x"),
            ("a: <p>\r\nb: 1\r\n", "l1\nl2\n"),
            ("a: '<p>'\r\nb: 1\r\n", "it's"),
            ("a: \"<p>\"\r\nb: 1\r\n", "q\"x"),
            ("a: |\r\n  <p>\r\nb: 1\r\n", "l1\nl2\n"),
            ("a: |\r\n  <p>\r\nb: 1\r\n", "A\nB\n\n"),
            ("a: |\r\n  x\r\n  <p>\r\n  y\r\nb: 1\r\n", "m1\nm2"),
            ("a: >\r\n  <p>\r\nb: 1\r\n", "folded"),
            ("a:\r\n  - <p>\r\nb: 1\r\n", "l1\nl2\n"),
            ("a: |-\r\n  <p>\r\nb: 1\r\n", " lead"),
        ];
        for (text, new) in cases {
            let out = rewrite_one(text, "<p>", &text_value(text, new));
            let bare = out
                .match_indices('\n')
                .any(|(i, _)| !out[..i].ends_with('\r'));
            assert!(!bare, "{text:?} with {new:?} gave {out:?}");
        }
    }

    /// The new value of the scalar holding `<p>` in `text` when `<p>` becomes `new`.
    fn text_value(text: &str, new: &str) -> String {
        let tree = Tree::parse(text).unwrap().unwrap();
        let scalars = index_scalars(&tree.root);
        let old = &scalars
            .values()
            .find(|s| s.value.contains("<p>"))
            .unwrap()
            .value;
        old.replacen("<p>", new, 1)
    }

    #[test]
    fn a_block_at_the_end_without_a_final_newline_gains_none() {
        let out = rewrite_one("a: |\n  <p>", "<p>", "  x");
        let tree = Tree::parse(&out).unwrap().unwrap();
        assert_eq!(
            index_scalars(&tree.root)
                .values()
                .find(|s| s.value.contains('x'))
                .unwrap()
                .value,
            "  x"
        );
        assert!(!out.ends_with('\n'), "{out:?}");
        assert_eq!(rewrite_one("a: |\n  <p>", "<p>", "x"), "a: |\n  x");
    }

    #[test]
    fn removing_many_neighbouring_entries_or_all_of_them() {
        let text = "data:\n  a: 1\n  b: <x>\n  c: <y>\nkind: A\n";
        let tree = Tree::parse(text).unwrap().unwrap();
        let edits = [
            Edit::Remove {
                key_at: key_at(text, "b"),
            },
            Edit::Remove {
                key_at: key_at(text, "c"),
            },
        ];
        assert_eq!(
            rewrite(text, &tree, &edits).unwrap(),
            "data:\n  a: 1\nkind: A\n"
        );
        let edits = [
            Edit::Remove {
                key_at: key_at(text, "a"),
            },
            Edit::Remove {
                key_at: key_at(text, "b"),
            },
            Edit::Remove {
                key_at: key_at(text, "c"),
            },
        ];
        assert_eq!(
            rewrite(text, &tree, &edits).unwrap(),
            "data:\n  {}\nkind: A\n"
        );
    }
}
