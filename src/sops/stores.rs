//! How SOPS files hold their tree (getsops/sops `stores/`): YAML documents (yaml.v3, YAML 1.2
//! core types), a JSON object (numbers as integers when they fit 64 bits, else floats), dotenv
//! lines (strings). YAML and JSON go through the manifest parser, which keeps each scalar's
//! position for in-place decryption.

use crate::manifest::split;
use crate::manifest::tree::{Node, Style, Tree};

use super::{Item, Scalar, ScalarKind};

/// The documents of a YAML file, or the object of a JSON file, as sops items.
pub fn parse_yaml(text: &str) -> Result<Vec<Item>, String> {
    let split = split::split(text).map_err(|e| e.to_string())?;
    let mut branches = Vec::new();
    for chunk in &split.chunks {
        let tree = Tree::parse(chunk.body).map_err(|e| {
            format!(
                "invalid YAML at line {} column {}: {}",
                chunk.line + e.line - 1,
                e.column,
                e.problem
            )
        })?;
        if let Some(tree) = tree {
            branches.push(document_at(&tree, chunk.offset)?);
        }
    }
    Ok(branches)
}

/// The items of one parsed document, positions counted from `offset` (the document's place in
/// its file).
pub fn document_at(tree: &Tree, offset: usize) -> Result<Item, String> {
    item(tree, &tree.root, offset)
}

fn item(tree: &Tree, node: &Node, offset: usize) -> Result<Item, String> {
    Ok(match tree.resolve(node) {
        Node::Map(map) => {
            let mut entries = Vec::with_capacity(map.entries.len());
            for (key, value) in &map.entries {
                let Some(key) = tree.resolve(key).as_scalar() else {
                    return Err("a map key is not a scalar".to_owned());
                };
                entries.push((key.value.clone(), item(tree, value, offset)?));
            }
            Item::Map(entries)
        }
        Node::Seq(items) => Item::List(
            items
                .iter()
                .map(|i| item(tree, i, offset))
                .collect::<Result<_, _>>()?,
        ),
        Node::Scalar(s) => {
            let kind = match (s.tag.as_deref(), s.style) {
                (Some("tag:yaml.org,2002:str"), _) => Some(ScalarKind::Str),
                (Some("tag:yaml.org,2002:int"), _) => Some(ScalarKind::Int),
                (Some("tag:yaml.org,2002:float"), _) => Some(ScalarKind::Float),
                (Some("tag:yaml.org,2002:bool"), _) => Some(ScalarKind::Bool),
                (Some("tag:yaml.org,2002:null"), _) => None,
                (_, Style::Plain) => core_type(&s.value),
                _ => Some(ScalarKind::Str),
            };
            match kind {
                None => Item::Null,
                Some(kind) => Item::Scalar(Scalar {
                    text: s.value.clone(),
                    kind,
                    at: offset + s.span.start,
                }),
            }
        }
        Node::Alias(_) => Item::Null,
    })
}

/// The YAML 1.2 core type of a plain scalar; `None` for null.
fn core_type(text: &str) -> Option<ScalarKind> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => None,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => Some(ScalarKind::Bool),
        _ if parse_int(text).is_some() || is_int_syntax(text) => Some(ScalarKind::Int),
        _ if is_float_syntax(text) => Some(ScalarKind::Float),
        _ => Some(ScalarKind::Str),
    }
}

fn is_int_syntax(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float_syntax(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = (!int.is_empty() || !frac.is_empty())
        && digits(int)
        && digits(frac)
        && int.len() + frac.len() > 0;
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// An integer as sops's stores read one (decimal, `0o`, `0x`), when it fits 64 bits.
pub fn parse_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o") {
        (8, d)
    } else {
        (10, body)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A float as sops's stores read one, `.inf` and `.nan` included.
pub fn parse_float(text: &str) -> f64 {
    match text.strip_prefix(['-', '+']).unwrap_or(text) {
        ".inf" | ".Inf" | ".INF" if text.starts_with('-') => f64::NEG_INFINITY,
        ".inf" | ".Inf" | ".INF" => f64::INFINITY,
        ".nan" | ".NaN" | ".NAN" => f64::NAN,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

/// dotenv lines as sops reads them: `KEY=VALUE` (value strings, `\n` unescaped), `#` comments
/// and blank lines skipped.
pub fn parse_dotenv(text: &str) -> Result<Vec<Item>, String> {
    let mut entries = Vec::new();
    let mut at = 0;
    for (number, line) in text.split('\n').enumerate() {
        let start = at;
        at += line.len() + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE", number + 1));
        };
        entries.push((
            key.to_owned(),
            Item::Scalar(Scalar {
                text: value.replace("\\n", "\n"),
                kind: ScalarKind::Str,
                at: start + key.len() + 1,
            }),
        ));
    }
    Ok(vec![Item::Map(entries)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_get_yaml_core_types() {
        assert_eq!(core_type("yes"), Some(ScalarKind::Str));
        assert_eq!(core_type("True"), Some(ScalarKind::Bool));
        assert_eq!(core_type("-12"), Some(ScalarKind::Int));
        assert_eq!(core_type("0x1F"), Some(ScalarKind::Int));
        assert_eq!(core_type("1.5e3"), Some(ScalarKind::Float));
        assert_eq!(core_type(".5"), Some(ScalarKind::Float));
        assert_eq!(core_type("-.inf"), Some(ScalarKind::Float));
        assert_eq!(core_type("1.2.3"), Some(ScalarKind::Str));
        assert_eq!(core_type("~"), None);
        assert_eq!(parse_int("12345678901234567890123"), None);
        assert_eq!(parse_int("0o17"), Some(15));
    }
}
