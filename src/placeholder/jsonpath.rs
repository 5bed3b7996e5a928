//! The Kubernetes JSONPath template dialect (client-go `util/jsonpath`, what `kubectl -o jsonpath`
//! and argocd-vault-plugin's `jsonPath` modifier use), not RFC 9535.
//!
//! A template is literal text plus `{…}` actions. It is parsed into a tree of nodes first, so a
//! malformed template fails before any data is read, then evaluated against the data. Missing keys
//! are errors, as with client-go's `AllowMissingKeys(false)`, which argocd-vault-plugin sets.
//!
//! Error messages name template parts (keys, indices, operators) and data types, never data values:
//! the data is secret.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::mem;
use std::str::Chars;

use crate::value::{MAX_VALUE_BYTES, Value};

/// `{range}` actions may nest this deep: each level is a level of recursion.
const MAX_RANGES: usize = 64;
/// Values selected and range items visited in one rendering: nested ranges multiply, so a short
/// template over a small document could otherwise run for hours.
const MAX_WORK: usize = 10_000_000;

/// Renders a Kubernetes JSONPath template against `data`.
pub fn render(template: &str, data: &Value) -> Result<String, JsonPathError> {
    let nodes = parse_template(template)?;
    let mut out = String::new();
    let mut work = MAX_WORK;
    write_nodes(&nodes, data, &mut out, &mut work)?;
    Ok(out)
}

/// Counts `amount` of work against the budget.
fn spend(work: &mut usize, amount: usize) -> Result<(), JsonPathError> {
    *work = work.checked_sub(amount).ok_or(JsonPathError::TooMuchWork)?;
    Ok(())
}

/// Why a template could not be parsed or evaluated. The messages are client-go's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonPathError {
    #[error("unclosed action")]
    UnclosedAction,
    #[error("unrecognized character in action: {}", go_rune(.0))]
    UnrecognizedCharacter(char),
    #[error("unrecognized identifier {0}")]
    UnrecognizedIdentifier(String),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("unquote string {0} error invalid syntax")]
    InvalidQuote(String),
    #[error("cannot parse number {0}")]
    InvalidNumber(String),
    #[error("unterminated array")]
    UnterminatedArray,
    #[error("invalid array index {0}")]
    InvalidIndex(String),
    #[error("array index {0} is not a number")]
    IndexNotANumber(String),
    #[error("unterminated filter")]
    UnterminatedFilter,
    #[error("unclosed array expect ]")]
    UnclosedFilter,
    #[error("unrecognized filter operator {0}")]
    UnrecognizedOperator(String),
    #[error("invalid multiple recursive descent")]
    MultipleRecursiveDescent,
    #[error("not in range, nothing to end")]
    NothingToEnd,
    #[error("range without a matching {{end}}")]
    MissingEnd,
    #[error("{0} is not found")]
    NotFound(String),
    #[error("{0} is not array or slice")]
    NotAList(&'static str),
    #[error("array index out of bounds: index {index}, length {length}")]
    IndexOutOfBounds { index: i64, length: usize },
    #[error("starting index {start} is greater than ending index {end}")]
    StartAfterEnd { start: i64, end: i64 },
    #[error("step must be > 0")]
    NonPositiveStep,
    #[error("{0} is not array or slice and cannot be filtered")]
    NotFilterable(&'static str),
    #[error("can only compare one element at a time")]
    MultipleOperands,
    #[error("incompatible types for comparison")]
    IncompatibleTypes,
    #[error("invalid type for comparison")]
    InvalidComparisonType,
    #[error("{{range}} actions nest deeper than {MAX_RANGES} levels")]
    TooDeep,
    #[error("the template selects more than 10 million values")]
    TooMuchWork,
    #[error("the result is larger than {} MiB", MAX_VALUE_BYTES >> 20)]
    TooLarge,
}

/// Go's `%#U`: `U+0021 '!'`, without the quoted character when it is not printable.
fn go_rune(c: &char) -> String {
    let code = format!("U+{:04X}", u32::from(*c));
    if c.is_control() {
        code
    } else {
        format!("{code} '{c}'")
    }
}

/// A piece of a parsed template.
enum Node {
    Text(String),
    /// An action printing what its steps select; several results are joined with spaces.
    Print(Vec<Step>),
    /// `{range path}body{end}`: the body is rendered once per selected value.
    Range {
        path: Vec<Step>,
        body: Vec<Node>,
    },
}

/// One operation of an action, applied to every value selected so far, as client-go evaluates
/// an action's nodes left to right. `@` and `$` are not steps: client-go skips them, so both
/// mean the current value (the root, or the item inside a range or filter).
enum Step {
    /// A quoted string, number or `true`/`false`; it replaces the selection.
    Literal(Value),
    Field(String),
    /// `.*`: every value of a map or list.
    Wildcard,
    /// `..`: every map and list with at least one child, depth first, starting with the input.
    Descend,
    Subscript(Subscript),
    /// `[a,b]`: each branch applied to the same input, results concatenated.
    Union(Vec<Vec<Step>>),
    Filter(Box<Filter>),
}

enum Subscript {
    Index(i64),
    /// `[start:end:step]`; `[*]` is the full slice, so like client-go it applies to lists only.
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
}

/// `[?(left op right)]`, or `[?(left)]` (keep items where `left` selects something).
struct Filter {
    left: Vec<Step>,
    comparison: Option<(Operator, Vec<Step>)>,
}

#[derive(Clone, Copy)]
enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

enum Action {
    Print(Vec<Step>),
    Range(Vec<Step>),
    End,
}

fn parse_template(template: &str) -> Result<Vec<Node>, JsonPathError> {
    let mut parser = Parser::new(template);
    let mut nodes = Vec::new();
    // For each open range: its path and the nodes that precede it.
    let mut open: Vec<(Vec<Step>, Vec<Node>)> = Vec::new();
    loop {
        let rest = parser.rest();
        let Some(brace) = rest.find('{') else {
            if !rest.is_empty() {
                nodes.push(Node::Text(rest.to_owned()));
            }
            break;
        };
        if brace > 0 {
            nodes.push(Node::Text(rest[..brace].to_owned()));
        }
        parser.pos += brace + 1;
        match parser.action()? {
            Action::Print(steps) => nodes.push(Node::Print(steps)),
            Action::Range(_) if open.len() >= MAX_RANGES => return Err(JsonPathError::TooDeep),
            Action::Range(path) => open.push((path, mem::take(&mut nodes))),
            Action::End => {
                let (path, outer) = open.pop().ok_or(JsonPathError::NothingToEnd)?;
                let body = mem::replace(&mut nodes, outer);
                nodes.push(Node::Range { path, body });
            }
        }
    }
    // client-go lets a range run to the end of the template; a missing `{end}` is more likely a
    // mistake than intended, so it is reported.
    if open.is_empty() {
        Ok(nodes)
    } else {
        Err(JsonPathError::MissingEnd)
    }
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Self {
        Parser { src, pos: 0 }
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    /// Parses the inside of `{…}`, just after the `{`, up to and including the `}`.
    fn action(&mut self) -> Result<Action, JsonPathError> {
        self.pos = self.src.len() - self.rest().trim_start_matches(' ').len();
        let rest = self.rest();
        if let Some(tail) = rest
            .strip_prefix("end")
            .and_then(|after| after.trim_start_matches(' ').strip_prefix('}'))
        {
            self.pos = self.src.len() - tail.len();
            return Ok(Action::End);
        }
        if let Some(after) = rest.strip_prefix("range")
            && after.chars().next().is_none_or(is_terminator)
        {
            self.pos += "range".len();
            return Ok(Action::Range(self.steps(true)?));
        }
        Ok(Action::Print(self.steps(true)?))
    }

    /// Parses steps up to a closing `}` (an action) or the end of the input (a sub-expression).
    fn steps(&mut self, in_braces: bool) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return if in_braces {
                    Err(JsonPathError::UnclosedAction)
                } else {
                    Ok(steps)
                };
            };
            if let Some(after) = rest.strip_prefix("[?(") {
                self.pos = self.src.len() - after.len();
                steps.push(self.filter()?);
                continue;
            }
            if let Some(after) = rest.strip_prefix("..") {
                if matches!(steps.last(), Some(Step::Descend)) {
                    return Err(JsonPathError::MultipleRecursiveDescent);
                }
                self.pos = self.src.len() - after.len();
                steps.push(Step::Descend);
                if after.chars().next().is_some_and(is_alphanumeric) {
                    steps.push(self.field());
                }
                continue;
            }
            self.pos += c.len_utf8();
            match c {
                '}' if in_braces => return Ok(steps),
                '\r' | '\n' => return Err(JsonPathError::UnclosedAction),
                ' ' | '@' | '$' => {}
                '.' => steps.push(self.field()),
                '[' => steps.extend(self.subscript()?),
                '"' | '\'' => steps.push(Step::Literal(Value::String(self.quoted(c)?))),
                '+' | '-' | '0'..='9' => {
                    self.pos -= 1;
                    steps.push(self.number()?);
                }
                c if is_alphanumeric(c) => {
                    self.pos -= c.len_utf8();
                    steps.push(self.identifier()?);
                }
                c => return Err(JsonPathError::UnrecognizedCharacter(c)),
            }
        }
    }

    /// A field name after `.`, up to a terminator; `\` makes the next character part of the
    /// name, as in `kubernetes\.io/hostname`.
    fn field(&mut self) -> Step {
        let rest = self.rest();
        let mut name = String::new();
        let mut end = rest.len();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                name.extend(chars.next().map(|(_, escaped)| escaped));
            } else if is_terminator(c) {
                end = i;
                break;
            } else {
                name.push(c);
            }
        }
        self.pos += end;
        if &rest[..end] == "*" {
            Step::Wildcard
        } else {
            Step::Field(name)
        }
    }

    /// `true` and `false` are the only identifiers besides `range` and `end`.
    fn identifier(&mut self) -> Result<Step, JsonPathError> {
        let rest = self.rest();
        let word = &rest[..rest.find(is_terminator).unwrap_or(rest.len())];
        self.pos += word.len();
        match word {
            "true" => Ok(Step::Literal(Value::Bool(true))),
            "false" => Ok(Step::Literal(Value::Bool(false))),
            _ => Err(JsonPathError::UnrecognizedIdentifier(word.to_owned())),
        }
    }

    fn number(&mut self) -> Result<Step, JsonPathError> {
        let rest = self.rest();
        let sign = usize::from(rest.starts_with(['+', '-']));
        let len = rest[sign..]
            .find(|c: char| c != '.' && !c.is_ascii_digit())
            .map_or(rest.len(), |i| sign + i);
        let text = &rest[..len];
        self.pos += len;
        let number = match text.parse::<i64>() {
            Ok(int) => serde_json::Number::from(int),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .ok_or_else(|| JsonPathError::InvalidNumber(text.to_owned()))?,
        };
        Ok(Step::Literal(Value::Number(number)))
    }

    /// A quoted string, just after its opening quote, with Go's escapes.
    fn quoted(&mut self, quote: char) -> Result<String, JsonPathError> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None | Some((_, '\n')) => return Err(JsonPathError::UnterminatedQuote),
                Some((_, '\\')) => {
                    chars.next();
                }
                Some((i, c)) if c == quote => break i,
                Some(_) => {}
            }
        };
        self.pos += end + quote.len_utf8();
        let raw = &rest[..end];
        unquote(raw, quote)
            .ok_or_else(|| JsonPathError::InvalidQuote(format!("{quote}{raw}{quote}")))
    }

    /// The steps of `[…]`, just after the `[`.
    fn subscript(&mut self) -> Result<Vec<Step>, JsonPathError> {
        let rest = self.rest();
        let end = find_unquoted(rest, |c| c == ']' || c == '\n')
            .filter(|&i| rest[i..].starts_with(']'))
            .ok_or(JsonPathError::UnterminatedArray)?;
        self.pos += end + 1;
        let text = &rest[..end];
        if text == "*" {
            return Ok(vec![Step::Subscript(Subscript::Slice {
                start: None,
                end: None,
                step: None,
            })]);
        }
        let members = split_unquoted(text, ',');
        if members.len() > 1 {
            let branches = members
                .iter()
                .map(|member| Parser::new(&format!("[{}]", member.trim_matches(' '))).steps(false))
                .collect::<Result<_, _>>()?;
            return Ok(vec![Step::Union(branches)]);
        }
        // `['a.b']` is the path `.a.b`, as in client-go; `['a\.b']` is the key `a.b`.
        if let Some(key) = quoted_key(text) {
            return Parser::new(&format!(".{key}")).steps(false);
        }
        parse_index(text).map(|subscript| vec![Step::Subscript(subscript)])
    }

    /// The filter of `[?(…)]`, just after the `(`.
    fn filter(&mut self) -> Result<Step, JsonPathError> {
        let rest = self.rest();
        let close = find_unquoted(rest, |c| c == ')' || c == '\n')
            .filter(|&i| rest[i..].starts_with(')'))
            .ok_or(JsonPathError::UnterminatedFilter)?;
        if !rest[close + 1..].starts_with(']') {
            return Err(JsonPathError::UnclosedFilter);
        }
        self.pos += close + 2;
        let text = &rest[..close];
        let is_operator = |c: char| matches!(c, '!' | '<' | '>' | '=');
        if let Some(start) = find_unquoted(text, is_operator).filter(|&i| i > 0) {
            let operator_len = text[start..]
                .find(|c| !is_operator(c))
                .unwrap_or(text.len() - start);
            let (operator, right) = text[start..].split_at(operator_len);
            if !right.is_empty() {
                let operator = Operator::parse(operator)
                    .ok_or_else(|| JsonPathError::UnrecognizedOperator(operator.to_owned()))?;
                return Ok(Step::Filter(Box::new(Filter {
                    left: Parser::new(&text[..start]).steps(false)?,
                    comparison: Some((operator, Parser::new(right).steps(false)?)),
                })));
            }
        }
        Ok(Step::Filter(Box::new(Filter {
            left: Parser::new(text).steps(false)?,
            comparison: None,
        })))
    }
}

/// Characters that end a field name or identifier, as in client-go.
fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The byte offset of the first character matching `stop` outside quotes; a backslash escapes
/// the next character, inside quotes or out.
fn find_unquoted(text: &str, stop: impl Fn(char) -> bool) -> Option<usize> {
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            _ if c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if stop(c) => return Some(i),
            None => {}
        }
    }
    None
}

fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(i) = find_unquoted(rest, |c| c == separator) {
        parts.push(&rest[..i]);
        rest = &rest[i + separator.len_utf8()..];
    }
    parts.push(rest);
    parts
}

/// The key of `['key']`, or `["key"]`, which client-go does not accept.
fn quoted_key(text: &str) -> Option<&str> {
    let quote = text.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let key = text.strip_prefix(quote)?.strip_suffix(quote)?;
    (!key.contains(quote)).then_some(key)
}

/// `n`, `start:end` or `start:end:step`, each bound optional except a lone index.
fn parse_index(text: &str) -> Result<Subscript, JsonPathError> {
    let parts: Vec<&str> = text.split(':').collect();
    let is_integer = |part: &&str| {
        part.strip_prefix('-')
            .unwrap_or(part)
            .bytes()
            .all(|b| b.is_ascii_digit())
    };
    if parts.len() > 3 || !parts.iter().all(is_integer) {
        return Err(JsonPathError::InvalidIndex(text.to_owned()));
    }
    let bound = |part: Option<&&str>| match part {
        None | Some(&"") => Ok(None),
        Some(part) => part
            .parse()
            .map(Some)
            .map_err(|_| JsonPathError::IndexNotANumber((*part).to_owned())),
    };
    match parts[..] {
        [index] => bound(Some(&index))?
            .map(Subscript::Index)
            .ok_or_else(|| JsonPathError::InvalidIndex(text.to_owned())),
        _ => Ok(Subscript::Slice {
            start: bound(parts.first())?,
            end: bound(parts.get(1))?,
            step: bound(parts.get(2))?,
        }),
    }
}

/// Resolves the escapes of a quoted string as Go's `strconv.Unquote` does; `None` if one is invalid.
fn unquote(raw: &str, quote: char) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'a' => '\u{07}',
            'b' => '\u{08}',
            'f' => '\u{0c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{0b}',
            '\\' => '\\',
            c if c == quote => c,
            'x' => char::from_u32(digits(&mut chars, 16, 2)?)?,
            'u' => char::from_u32(digits(&mut chars, 16, 4)?)?,
            'U' => char::from_u32(digits(&mut chars, 16, 8)?)?,
            first @ '0'..='7' => {
                let code = first.to_digit(8)? * 64 + digits(&mut chars, 8, 2)?;
                char::from_u32(code).filter(|_| code <= 0xff)?
            }
            _ => return None,
        });
    }
    Some(out)
}

fn digits(chars: &mut Chars<'_>, radix: u32, count: usize) -> Option<u32> {
    (0..count).try_fold(0, |acc, _| {
        Some(acc * radix + chars.next()?.to_digit(radix)?)
    })
}

impl Operator {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "==" => Operator::Eq,
            "!=" => Operator::Ne,
            "<" => Operator::Lt,
            "<=" => Operator::Le,
            ">" => Operator::Gt,
            ">=" => Operator::Ge,
            _ => return None,
        })
    }

    /// Compares as Go's text/template does, except that all numbers compare as f64: strings with
    /// strings, numbers with numbers, booleans only for (in)equality.
    fn compare(self, left: &Value, right: &Value) -> Result<bool, JsonPathError> {
        let ordering = match (operand(left)?, operand(right)?) {
            (Operand::Bool(l), Operand::Bool(r)) if matches!(self, Operator::Eq | Operator::Ne) => {
                Some(l.cmp(&r))
            }
            (Operand::Bool(_), Operand::Bool(_)) => {
                return Err(JsonPathError::InvalidComparisonType);
            }
            (Operand::Number(l), Operand::Number(r)) => l.partial_cmp(&r),
            (Operand::Text(l), Operand::Text(r)) => Some(l.cmp(&r)),
            _ => return Err(JsonPathError::IncompatibleTypes),
        };
        Ok(match self {
            Operator::Eq => ordering == Some(Ordering::Equal),
            Operator::Ne => ordering != Some(Ordering::Equal),
            Operator::Lt => ordering == Some(Ordering::Less),
            Operator::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Operator::Gt => ordering == Some(Ordering::Greater),
            Operator::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        })
    }
}

enum Operand<'a> {
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
}

fn operand(value: &Value) -> Result<Operand<'_>, JsonPathError> {
    match value {
        Value::Bool(b) => Ok(Operand::Bool(*b)),
        Value::Number(n) => Ok(Operand::Number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => Ok(Operand::Text(Cow::Borrowed(s))),
        // Bytes compare as the base64 text they print as.
        Value::Bytes(_) => Ok(Operand::Text(Cow::Owned(value.to_text()))),
        Value::Null | Value::List(_) | Value::Map(_) => Err(JsonPathError::InvalidComparisonType),
    }
}

fn write_nodes(
    nodes: &[Node],
    current: &Value,
    out: &mut String,
    work: &mut usize,
) -> Result<(), JsonPathError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Print(steps) => {
                for (i, value) in eval(steps, vec![current], work)?.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let text = value.to_text();
                    if out.len() + text.len() > MAX_VALUE_BYTES {
                        return Err(JsonPathError::TooLarge);
                    }
                    out.push_str(&text);
                }
            }
            Node::Range { path, body } => {
                for item in eval(path, vec![current], work)? {
                    spend(work, 1)?;
                    write_nodes(body, item, out, work)?;
                }
            }
        }
        if out.len() > MAX_VALUE_BYTES {
            return Err(JsonPathError::TooLarge);
        }
    }
    Ok(())
}

fn eval<'a>(
    steps: &'a [Step],
    input: Vec<&'a Value>,
    work: &mut usize,
) -> Result<Vec<&'a Value>, JsonPathError> {
    let mut values = input;
    for step in steps {
        values = step.apply(values, work)?;
        spend(work, values.len())?;
    }
    Ok(values)
}

impl Step {
    fn apply<'a>(
        &'a self,
        input: Vec<&'a Value>,
        work: &mut usize,
    ) -> Result<Vec<&'a Value>, JsonPathError> {
        match self {
            Step::Literal(value) => Ok(vec![value]),
            Step::Field(name) => {
                // Nothing in, nothing out: `.items[*].name` on an empty list is not an error.
                if input.is_empty() {
                    return Ok(input);
                }
                let found: Vec<&Value> = input
                    .into_iter()
                    .filter_map(|value| match value {
                        Value::Map(map) => map.get(name),
                        _ => None,
                    })
                    .collect();
                if found.is_empty() {
                    Err(JsonPathError::NotFound(name.clone()))
                } else {
                    Ok(found)
                }
            }
            Step::Wildcard => Ok(input.into_iter().flat_map(children).collect()),
            Step::Descend => {
                let mut out = Vec::new();
                for value in input {
                    descend(value, &mut out);
                }
                Ok(out)
            }
            Step::Subscript(subscript) => {
                let mut out = Vec::new();
                for value in input {
                    match value {
                        Value::Null => {}
                        Value::List(items) => out.extend(subscript.select(items)?),
                        other => return Err(JsonPathError::NotAList(other.type_name())),
                    }
                }
                Ok(out)
            }
            Step::Union(branches) => {
                let mut out = Vec::new();
                for branch in branches {
                    out.extend(eval(branch, input.clone(), work)?);
                }
                Ok(out)
            }
            Step::Filter(filter) => {
                let mut out = Vec::new();
                for value in input {
                    let Value::List(items) = value else {
                        return Err(JsonPathError::NotFilterable(value.type_name()));
                    };
                    for item in items {
                        if filter.keeps(item, work)? {
                            out.push(item);
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The values of a map (in key order) or the items of a list.
fn children(value: &Value) -> Vec<&Value> {
    match value {
        Value::List(items) => items.iter().collect(),
        Value::Map(map) => map.values().collect(),
        _ => Vec::new(),
    }
}

fn descend<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    let children = children(value);
    if !children.is_empty() {
        out.push(value);
        for child in children {
            descend(child, out);
        }
    }
}

impl Subscript {
    /// Selects as client-go does: negative bounds count from the end, out-of-range bounds are
    /// errors rather than clamped, and an empty range is empty whatever its bounds.
    fn select<'a>(&self, items: &'a [Value]) -> Result<Vec<&'a Value>, JsonPathError> {
        let length = items.len();
        let len = i64::try_from(length).unwrap_or(i64::MAX);
        let from_end = |i: i64| if i < 0 { i + len } else { i };
        let out_of_bounds = |index| JsonPathError::IndexOutOfBounds { index, length };
        match *self {
            Subscript::Index(index) => {
                let index = from_end(index);
                let item = usize::try_from(index).ok().and_then(|i| items.get(i));
                item.map(|item| vec![item])
                    .ok_or_else(|| out_of_bounds(index))
            }
            Subscript::Slice { start, end, step } => {
                let start = from_end(start.unwrap_or(0));
                let end = end.map_or(len, from_end);
                if start == end {
                    return Ok(Vec::new());
                }
                if !(0..len).contains(&start) {
                    return Err(out_of_bounds(start));
                }
                if !(0..=len).contains(&end) {
                    return Err(out_of_bounds(end.saturating_sub(1)));
                }
                if start > end {
                    return Err(JsonPathError::StartAfterEnd { start, end });
                }
                let step = match step {
                    None => 1,
                    Some(step) => usize::try_from(step)
                        .ok()
                        .filter(|&step| step > 0)
                        .ok_or(JsonPathError::NonPositiveStep)?,
                };
                // Both bounds were checked to lie within 0..=len above.
                let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0);
                Ok(items[range].iter().step_by(step).collect())
            }
        }
    }
}

impl Filter {
    /// Whether `item` passes. As in client-go, an existence test treats a failing path as absent,
    /// while a comparison reports it (a missing key is an error) and skips items where either side
    /// selects nothing.
    fn keeps(&self, item: &Value, work: &mut usize) -> Result<bool, JsonPathError> {
        let left = eval(&self.left, vec![item], work);
        let Some((operator, right)) = &self.comparison else {
            return match left {
                Err(JsonPathError::TooMuchWork) => Err(JsonPathError::TooMuchWork),
                other => Ok(other.is_ok_and(|values| !values.is_empty())),
            };
        };
        let Some(left) = single(left?)? else {
            return Ok(false);
        };
        let Some(right) = single(eval(right, vec![item], work)?)? else {
            return Ok(false);
        };
        operator.compare(left, right)
    }
}

fn single(values: Vec<&Value>) -> Result<Option<&Value>, JsonPathError> {
    match values[..] {
        [] => Ok(None),
        [value] => Ok(Some(value)),
        _ => Err(JsonPathError::MultipleOperands),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The input of the Kubernetes "JSONPath Support" page.
    fn doc_input() -> Value {
        json!({
            "kind": "List",
            "items": [
                {
                    "kind": "None",
                    "metadata": {
                        "name": "127.0.0.1",
                        "labels": {"kubernetes.io/hostname": "127.0.0.1"}
                    },
                    "status": {
                        "capacity": {"cpu": "4"},
                        "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]
                    }
                },
                {
                    "kind": "None",
                    "metadata": {"name": "127.0.0.2"},
                    "status": {
                        "capacity": {"cpu": "8"},
                        "addresses": [
                            {"type": "LegacyHostIP", "address": "127.0.0.2"},
                            {"type": "another", "address": "127.0.0.3"}
                        ]
                    }
                }
            ],
            "users": [
                {"name": "myself", "user": {}},
                {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
            ]
        })
        .into()
    }

    fn render_json(template: &str, data: serde_json::Value) -> Result<String, JsonPathError> {
        render(template, &data.into())
    }

    fn ok(template: &str, data: serde_json::Value) -> String {
        render_json(template, data).unwrap()
    }

    fn err(template: &str, data: serde_json::Value) -> String {
        render_json(template, data).unwrap_err().to_string()
    }

    fn numbers() -> serde_json::Value {
        json!({"n": [0, 1, 2, 3]})
    }

    #[test]
    fn doc_plain_text_around_an_action() {
        assert_eq!(
            render("kind is {.kind}", &doc_input()).unwrap(),
            "kind is List"
        );
    }

    #[test]
    fn doc_child_operator_with_dot_and_brackets() {
        assert_eq!(render("{.kind}", &doc_input()).unwrap(), "List");
        assert_eq!(render("{['kind']}", &doc_input()).unwrap(), "List");
    }

    #[test]
    fn doc_recursive_descent() {
        assert_eq!(
            render("{..name}", &doc_input()).unwrap(),
            "127.0.0.1 127.0.0.2 myself e2e"
        );
    }

    #[test]
    fn doc_wildcard_over_items() {
        assert_eq!(
            render("{.items[*].metadata.name}", &doc_input()).unwrap(),
            "127.0.0.1 127.0.0.2"
        );
    }

    #[test]
    fn doc_subscript() {
        assert_eq!(render("{.users[0].name}", &doc_input()).unwrap(), "myself");
    }

    #[test]
    fn doc_union_of_quoted_paths() {
        assert_eq!(
            render(
                "{.items[*]['metadata.name', 'status.capacity']}",
                &doc_input()
            )
            .unwrap(),
            r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#
        );
    }

    #[test]
    fn doc_filter() {
        assert_eq!(
            render(r#"{.users[?(@.name=="e2e")].user.password}"#, &doc_input()).unwrap(),
            "secret"
        );
    }

    #[test]
    fn doc_range() {
        assert_eq!(
            render(
                "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
                &doc_input()
            )
            .unwrap(),
            r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#
        );
    }

    #[test]
    fn doc_quoted_literal_in_range() {
        assert_eq!(
            render(
                r"{range .items[*]}{.metadata.name}{'\t'}{end}",
                &doc_input()
            )
            .unwrap(),
            "127.0.0.1\t127.0.0.2\t"
        );
    }

    #[test]
    fn doc_escaped_dot_in_field_name() {
        assert_eq!(
            render(
                r"{.items[0].metadata.labels.kubernetes\.io/hostname}",
                &doc_input()
            )
            .unwrap(),
            "127.0.0.1"
        );
    }

    #[test]
    fn doc_last_item_slice() {
        assert_eq!(
            render("{.items[-1:].metadata.name}", &doc_input()).unwrap(),
            "127.0.0.2"
        );
        assert_eq!(
            render("{.items[-1:].status}", &doc_input()).unwrap(),
            r#"{"addresses":[{"address":"127.0.0.2","type":"LegacyHostIP"},{"address":"127.0.0.3","type":"another"}],"capacity":{"cpu":"8"}}"#
        );
    }

    #[test]
    fn doc_range_with_double_quoted_newline() {
        assert_eq!(
            render(
                r#"{range .items[*]}{.metadata.name}{"\t"}{.kind}{"\n"}{end}"#,
                &doc_input()
            )
            .unwrap(),
            "127.0.0.1\tNone\n127.0.0.2\tNone\n"
        );
    }

    #[test]
    fn avp_number_prints_like_go() {
        assert_eq!(
            ok(
                "{.deployment.replicas}",
                json!({"deployment": {"replicas": 2}})
            ),
            "2"
        );
    }

    #[test]
    fn scalars_print_as_text() {
        let data = json!({"f": 2.5, "big": 1e21, "t": true, "z": null, "s": "x y"});
        assert_eq!(
            ok("{.f} {.big} {.t} {.z} {.s}", data),
            "2.5 1e+21 true null x y"
        );
    }

    #[test]
    fn bytes_print_as_base64() {
        let data = Value::Map([("b".to_owned(), Value::Bytes(vec![0xff, 0x00]))].into());
        assert_eq!(render("{.b}", &data).unwrap(), "/wA=");
    }

    #[test]
    fn map_and_list_results_print_as_compact_sorted_json() {
        let data = json!({"m": {"b": [1, "two"], "a": {"y": null, "x": false}}});
        assert_eq!(
            ok("{.m}", data),
            r#"{"a":{"x":false,"y":null},"b":[1,"two"]}"#
        );
    }

    #[test]
    fn results_of_one_action_join_with_spaces_and_actions_concatenate() {
        assert_eq!(ok("{.n[*]}|{.n[0]}{.n[1]}", numbers()), "0 1 2 3|01");
    }

    #[test]
    fn text_without_actions_is_copied() {
        assert_eq!(ok("no actions } here", json!({})), "no actions } here");
    }

    #[test]
    fn current_and_root_print_the_whole_input() {
        let data = json!({"b": 1, "a": [true]});
        assert_eq!(ok("{@}", data.clone()), r#"{"a":[true],"b":1}"#);
        assert_eq!(ok("{$}", data.clone()), r#"{"a":[true],"b":1}"#);
        assert_eq!(ok("{}", data), r#"{"a":[true],"b":1}"#);
    }

    #[test]
    fn dollar_and_at_prefixes_are_optional() {
        let data = json!({"a": {"b": "x"}});
        assert_eq!(ok("{$.a.b}{@.a.b}{ .a .b }", data), "xxx");
    }

    #[test]
    fn dollar_inside_range_is_the_item_as_in_client_go() {
        assert_eq!(
            ok(
                "{range .items[*]}{$.name}{end}",
                json!({"items": [{"name": "a"}, {"name": "b"}]})
            ),
            "ab"
        );
    }

    #[test]
    fn bracket_keys_with_either_quote() {
        let data = json!({"a": {"b": "x"}, "k.dot": "dotted"});
        assert_eq!(ok(r#"{['a']["b"]}"#, data.clone()), "x");
        assert_eq!(ok(r"{['k\.dot']}", data), "dotted");
    }

    #[test]
    fn field_names_may_hold_dashes_and_slashes() {
        let data = json!({"labels": {"k8s-app": "web", "web/html": 15}});
        assert_eq!(ok("{.labels.k8s-app} {.labels.web/html}", data), "web 15");
    }

    #[test]
    fn indexes_count_from_either_end() {
        assert_eq!(ok("{.n[1]} {.n[-1]} {.n[-4]}", numbers()), "1 3 0");
    }

    #[test]
    fn index_out_of_range_is_an_error() {
        assert_eq!(
            err("{.n[4]}", numbers()),
            "array index out of bounds: index 4, length 4"
        );
        assert_eq!(
            err("{.n[-5]}", numbers()),
            "array index out of bounds: index -1, length 4"
        );
        assert_eq!(
            err("{.e[0]}", json!({"e": []})),
            "array index out of bounds: index 0, length 0"
        );
    }

    #[test]
    fn slices_follow_client_go() {
        let cases = [
            ("{.n[0:2]}", "0 1"),
            ("{.n[:2]}", "0 1"),
            ("{.n[1:]}", "1 2 3"),
            ("{.n[-2:]}", "2 3"),
            ("{.n[0:-1]}", "0 1 2"),
            ("{.n[::2]}", "0 2"),
            ("{.n[1:4:2]}", "1 3"),
            ("{.n[0:4:]}", "0 1 2 3"),
            ("{.n[:]}", "0 1 2 3"),
            ("{.n[0:0]}", ""),
            ("{.n[5:5]}", ""),
            ("{.n[-5:-5]}", ""),
        ];
        for (template, expected) in cases {
            assert_eq!(ok(template, numbers()), expected, "{template}");
        }
    }

    #[test]
    fn bad_slices_are_errors() {
        assert_eq!(
            err("{.n[1:10]}", numbers()),
            "array index out of bounds: index 9, length 4"
        );
        assert_eq!(
            err("{.n[3:1]}", numbers()),
            "starting index 3 is greater than ending index 1"
        );
        assert_eq!(
            err("{.n[-1:-2]}", numbers()),
            "starting index 3 is greater than ending index 2"
        );
        assert_eq!(err("{.n[0:4:0]}", numbers()), "step must be > 0");
        assert_eq!(err("{.n[0:4:-1]}", numbers()), "step must be > 0");
    }

    #[test]
    fn wildcards() {
        let data = json!({"m": {"b": 2, "a": 1}, "l": ["x", "y"]});
        assert_eq!(ok("{.m.*} {.l.*} {.l[*]}", data.clone()), "1 2 x y x y");
        assert_eq!(ok("{.*}", json!({"b": 1, "a": [2]})), "[2] 1");
        assert_eq!(err("{.m[*]}", data), "map is not array or slice");
    }

    #[test]
    fn recursive_descent_visits_containers_depth_first() {
        assert_eq!(ok("{..}", json!([1, 2, 3])), "[1,2,3]");
        let data = json!({"price": 1, "book": [{"price": 2}, {"x": {"price": 3}}]});
        assert_eq!(ok("{..price}", data.clone()), "1 2 3");
        assert_eq!(ok("{...price}", data), "1 2 3");
    }

    #[test]
    fn recursive_descent_then_index() {
        let data = json!({"book": [{"t": "a"}, {"t": "b"}]});
        assert_eq!(ok("{..book[1].t}", data), "b");
    }

    #[test]
    fn unions_of_indexes_and_keys() {
        assert_eq!(ok("{.n[0,2,-1]}", numbers()), "0 2 3");
        assert_eq!(ok("{['b','a']}", json!({"a": 1, "b": 2})), "2 1");
        assert_eq!(ok("{.n[0:2, 3]}", numbers()), "0 1 3");
    }

    #[test]
    fn filters_compare_strings() {
        let data = json!({"u": [{"n": "a"}, {"n": "b"}, {"n": "c"}]});
        assert_eq!(ok(r#"{.u[?(@.n=="b")].n}"#, data.clone()), "b");
        assert_eq!(ok(r#"{.u[?(@.n!="b")].n}"#, data.clone()), "a c");
        assert_eq!(ok("{.u[?(@.n<'b')].n}", data.clone()), "a");
        assert_eq!(ok(r#"{.u[?(@.n >= "b")].n}"#, data), "b c");
    }

    #[test]
    fn filters_compare_numbers_whatever_their_form() {
        let data = json!({"p": [{"x": 1}, {"x": 2.0}, {"x": 3.5}, {"x": -2}]});
        assert_eq!(ok("{.p[?(@.x==2)].x}", data.clone()), "2");
        assert_eq!(ok("{.p[?(@.x>1.5)].x}", data.clone()), "2 3.5");
        assert_eq!(ok("{.p[?(@.x<=1)].x}", data.clone()), "1 -2");
        assert_eq!(ok("{.p[?(@.x<-1)].x}", data.clone()), "-2");
        assert_eq!(ok("{.p[?(@.x>=3.5)].x}", data), "3.5");
        assert_eq!(ok("{[?(@<2)]}", json!([2, 6, 1, 7])), "1");
    }

    #[test]
    fn filters_compare_booleans_and_two_paths() {
        let data = json!({"b": [{"new": true, "a": 1, "c": 1}, {"new": false, "a": 1, "c": 2}]});
        assert_eq!(ok("{.b[?(@.new==true)].c}", data.clone()), "1");
        assert_eq!(ok("{.b[?(@.a==@.c)].c}", data), "1");
    }

    #[test]
    fn existence_filter_keeps_items_having_the_path() {
        let data =
            json!([{"id": "i1"}, {"id": "i2", "z": 1}, {"id": "i3", "z": null}, {"id": "i4"}]);
        assert_eq!(ok("{[?(@.z)].id}", data), "i2 i3");
    }

    #[test]
    fn filter_with_recursive_left_side() {
        let data =
            json!({"items": [{"n": "a", "s": {"ready": true}}, {"n": "b", "s": {"ready": false}}]});
        assert_eq!(ok("{.items[?(@..ready==true)].n}", data), "a");
    }

    #[test]
    fn filter_with_quoted_parenthesis_and_operator() {
        let data = json!({"u": [{"n": "a)=b"}, {"n": "c"}]});
        assert_eq!(ok(r#"{.u[?(@.n=="a)=b")].n}"#, data), "a)=b");
    }

    #[test]
    fn filter_errors() {
        let data = json!({"u": [{"n": "a"}, {"m": "b"}], "m": {"k": "v"}, "s": "hunter2"});
        assert_eq!(err(r#"{.u[?(@.n=="a")]}"#, data.clone()), "n is not found");
        assert_eq!(
            err(r#"{.m[?(@.k=="v")]}"#, data.clone()),
            "map is not array or slice and cannot be filtered"
        );
        assert_eq!(
            err("{.s[?(@)]}", data.clone()),
            "string is not array or slice and cannot be filtered"
        );
        assert_eq!(
            err("{.u[?(@.n==1)]}", json!({"u": [{"n": "a"}]})),
            "incompatible types for comparison"
        );
        assert_eq!(
            err("{.u[?(@.n<true)]}", json!({"u": [{"n": false}]})),
            "invalid type for comparison"
        );
        assert_eq!(
            err("{.u[?(@.n==1)]}", json!({"u": [{"n": {}}]})),
            "invalid type for comparison"
        );
        assert_eq!(
            err("{.u[?(@.n[*]==1)]}", json!({"u": [{"n": [1, 2]}]})),
            "can only compare one element at a time"
        );
    }

    #[test]
    fn nested_ranges() {
        let data = json!({"items": [
            {"metadata": {"name": "pod1"}, "spec": {"containers": [{"name": "foo"}, {"name": "bar"}]}},
            {"metadata": {"name": "pod2"}, "spec": {"containers": [{"name": "baz"}]}}
        ]});
        let template = r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#;
        assert_eq!(ok(template, data), "pod1:foo,bar,+pod2:baz,+");
    }

    #[test]
    fn range_over_nothing_renders_nothing() {
        assert_eq!(
            ok("a{range .items[*]}{.missing}{end}b", json!({"items": []})),
            "ab"
        );
    }

    #[test]
    fn text_after_a_range_uses_the_outer_value() {
        assert_eq!(
            ok(
                "{range .items[*]}{.n}, {end}{.kind}",
                json!({"kind": "List", "items": [{"n": 1}, {"n": 2}]})
            ),
            "1, 2, List"
        );
    }

    #[test]
    fn literal_actions_with_escapes() {
        assert_eq!(ok(r"{'literal\n'}", json!({})), "literal\n");
        assert_eq!(ok(r#"{"\t\"x\"\\"}"#, json!({})), "\t\"x\"\\");
        assert_eq!(ok(r"{'it\'s'}{'\x41\u00e9\101'}", json!({})), "it'sAéA");
        assert_eq!(ok(r#"{"{"}{'}'}"#, json!({})), "{}");
        assert_eq!(ok("{5}{-1.5}{true}", json!({})), "5-1.5true");
    }

    #[test]
    fn missing_key_is_an_error() {
        assert_eq!(
            err("{.a.missing}", json!({"a": {"b": 1}})),
            "missing is not found"
        );
        assert_eq!(err("{.a.b}", json!({"a": null})), "b is not found");
        assert_eq!(err("{.l.b}", json!({"l": [{"b": 1}]})), "b is not found");
        assert_eq!(
            render_json("{.a.missing}", json!({"a": {}})),
            Err(JsonPathError::NotFound("missing".to_owned()))
        );
    }

    #[test]
    fn fields_after_an_empty_selection_are_not_errors() {
        assert_eq!(ok("{.items[*].metadata.name}", json!({"items": []})), "");
    }

    #[test]
    fn subscripts_skip_null_and_reject_other_scalars() {
        assert_eq!(ok("{.a[0]}", json!({"a": null})), "");
        assert_eq!(
            err("{.a[0]}", json!({"a": "hunter2"})),
            "string is not array or slice"
        );
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("{.a", "unclosed action"),
            ("{.a\n}", "unclosed action"),
            ("{!}", "unrecognized character in action: U+0021 '!'"),
            ("{\t}", "unrecognized character in action: U+0009"),
            ("{hello}", "unrecognized identifier hello"),
            ("{a.b}", "unrecognized identifier a"),
            ("{'abc}", "unterminated quoted string"),
            (r"{'\q'}", r"unquote string '\q' error invalid syntax"),
            ("{.a[0}", "unterminated array"),
            ("{.a[x]}", "invalid array index x"),
            ("{.a[1:2:3:4]}", "invalid array index 1:2:3:4"),
            ("{.a[-]}", "array index - is not a number"),
            ("{.a[?(@.b}", "unterminated filter"),
            ("{.a[?(@.b)}", "unclosed array expect ]"),
            ("{.a[?(@.b<>1)]}", "unrecognized filter operator <>"),
            ("{.a[?(@.b=1)]}", "unrecognized filter operator ="),
            ("{....a}", "invalid multiple recursive descent"),
            ("{1.2.3}", "cannot parse number 1.2.3"),
            ("{end}", "not in range, nothing to end"),
            ("{range .a[*]}{@}", "range without a matching {end}"),
            ("{range .a[*]}{@}{end}{end}", "not in range, nothing to end"),
        ];
        for (template, expected) in cases {
            assert_eq!(err(template, json!({"a": [1]})), expected, "{template}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_templates_never_panic(template in r#"[{}\[\]().,:?@$*'"\\=!<>ab0-9 \-\n]{0,24}"#) {
            let data: Value = json!({"a": [1, {"b": "x"}], "b": {"a": null}}).into();
            let _ = render(&template, &data);
        }
    }

    #[test]
    fn errors_never_show_data_values() {
        let data = json!({"s": "hunter2", "l": ["hunter2"], "m": {"k": "hunter2"}});
        for template in [
            "{.s[0]}",
            "{.s.x}",
            "{.s[?(@)]}",
            "{.l[5]}",
            "{.l[?(@==1)]}",
            "{.m[0]}",
            "{.m.*.x}",
        ] {
            let message = err(template, data.clone());
            assert!(!message.contains("hunter2"), "{template}: {message}");
        }
    }

    #[test]
    fn nested_ranges_are_bounded_in_work_and_output() {
        // {"a": [{"a": [ … {"a": [1]} … ]}]}, twelve levels deep.
        let mut data = serde_json::json!([1]);
        for _ in 0..12 {
            data = serde_json::json!([{"a": data}]);
        }
        let data: Value = serde_json::json!({"a": data}).into();
        let tenfold = "{range .a[0,0,0,0,0,0,0,0,0,0]}";
        let nested = |depth: usize, body: &str| {
            format!("{}{body}{}", tenfold.repeat(depth), "{end}".repeat(depth))
        };
        assert_eq!(
            render(
                &nested(
                    6,
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                ),
                &data
            )
            .unwrap_err(),
            JsonPathError::TooLarge
        );
        assert_eq!(
            render(&nested(12, ""), &data).unwrap_err(),
            JsonPathError::TooMuchWork
        );
        assert_eq!(
            render(&"{range .a[*]}".repeat(65), &data).unwrap_err(),
            JsonPathError::TooDeep
        );
        assert_eq!(render(&nested(2, "x"), &data).unwrap(), "x".repeat(100));
    }
}
