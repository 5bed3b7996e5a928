//! How YAML reads a plain scalar, and how to write a string so that it reads back unchanged.
//!
//! Kubernetes reads manifests with YAML 1.1 rules (go-yaml v2), other tools with YAML 1.2, so a
//! string is written plain only when it is a string under both.

use std::sync::LazyLock;

// regex-lite, for start-up time: see the placeholder patterns.
use regex_lite::Regex;

/// The type a plain scalar resolves to under YAML 1.1, as go-yaml v2 resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainType {
    Null,
    Bool,
    Int,
    Float,
    String,
}

static YAML11_INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("valid regex")
});

static YAML11_FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("valid regex")
});

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*Z|[-+][0-9][0-9]?(?::[0-9][0-9])?)?)?$")
        .expect("valid regex")
});

static YAML12_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
        .expect("valid regex")
});

/// Whether `s` starts as every number and timestamp of the patterns above does: with a sign, a
/// digit or a dot. Most scalars do not, and for them the patterns are never compiled, which a
/// short run would otherwise pay for at start-up (W3).
fn starts_like_number(s: &str) -> bool {
    s.as_bytes()
        .first()
        .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9'))
}

/// Resolves a plain scalar under YAML 1.1 (the Kubernetes reading).
pub fn yaml11_type(s: &str) -> PlainType {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => PlainType::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "true" | "True"
        | "TRUE" | "false" | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            PlainType::Bool
        }
        _ if !starts_like_number(s) => PlainType::String,
        _ if YAML11_INT.is_match(s) => PlainType::Int,
        _ if YAML11_FLOAT.is_match(s) => PlainType::Float,
        _ => PlainType::String,
    }
}

/// Whether `s`, written as a plain scalar, would read back as this string under YAML 1.1 and
/// 1.2 alike (no number, boolean, null, timestamp or merge key in either).
fn reads_as_string(s: &str) -> bool {
    yaml11_type(s) == PlainType::String
        && !(starts_like_number(s) && (YAML12_NUMBER.is_match(s) || TIMESTAMP.is_match(s)))
        && s.parse::<f64>().is_err()
        && !matches!(s, "<<" | "=")
}

/// Characters that YAML forbids or that YAML 1.1 reads as line breaks: text holding any of them
/// can only be written double-quoted, with escapes.
pub fn needs_escapes(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => true,
        c => c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}'),
    }
}

/// Whether `s` can be written as a plain scalar (block context, or flow when `flow`), by
/// libyaml's emitter rules (`yaml_emitter_analyze_scalar`), which every YAML 1.1 reader accepts:
/// no tab (PyYAML and ruamel reject it), and in flow context none of `,?[]{}:` anywhere.
pub fn plain_safe(s: &str, flow: bool) -> bool {
    plain_syntax_safe(s, flow) && reads_as_string(s)
}

/// Whether `s` parses as a plain scalar holding exactly this text, whatever type it resolves to
/// (what a tagged scalar such as `!!int 3` needs).
pub fn plain_syntax_safe(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let last = s.chars().next_back().unwrap_or(first);
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_whitespace()
        || last.is_whitespace()
        || last == ':'
        || s.starts_with("...")
        || s.contains(": ")
        || s.contains(" #")
        || s.contains(":\t")
        || s.contains("\t#")
        || s.chars()
            .any(|c| c == '\n' || c == '\r' || c == '\t' || needs_escapes(c))
    {
        return false;
    }
    !(flow && s.contains([',', '?', '[', ']', '{', '}', ':']))
}

/// Writes `s` as a double-quoted scalar, with escapes that YAML 1.1, YAML 1.2 and JSON all read,
/// so the result also fits in a JSON file.
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_double_quoted_body(&mut out, s);
    out.push('"');
    out
}

/// The escaped text of a double-quoted scalar, without the quotes.
pub fn push_double_quoted_body(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if needs_escapes(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
}

/// Writes `s` as a literal block scalar whose lines are indented by `indent` spaces, or `None`
/// when a literal block cannot hold it. `header_rest` follows the indicator on its line (spaces
/// and a comment, kept from the original). The result ends with the last line's line break.
pub fn literal_block(s: &str, indent: usize, header_rest: &str) -> Option<String> {
    if s.is_empty()
        || s.chars().any(|c| c == '\r' || needs_escapes(c))
        || s.starts_with([' ', '\t'])
        || s.trim_end_matches('\n').is_empty()
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let breaks = s.len() - body.len();
    let chomp = match breaks {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}{header_rest}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..breaks {
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_resolves_go_yaml_v2_types() {
        for s in ["yes", "No", "on", "OFF", "y", "true"] {
            assert_eq!(yaml11_type(s), PlainType::Bool, "{s}");
        }
        for s in ["0644", "0x1F", "0b101", "1_000", "190:20:30", "-7"] {
            assert_eq!(yaml11_type(s), PlainType::Int, "{s}");
        }
        for s in ["1.5", ".5", "1.0e+3", ".inf", ".NaN"] {
            assert_eq!(yaml11_type(s), PlainType::Float, "{s}");
        }
        assert_eq!(yaml11_type("~"), PlainType::Null);
        assert_eq!(yaml11_type("<path:a#b>"), PlainType::String);
        assert_eq!(yaml11_type("admin"), PlainType::String);
    }

    proptest::proptest! {
        #[test]
        fn only_a_scalar_that_starts_like_a_number_can_match_a_number_pattern(
            s in "[-+.0-9a-fA-FxobOTtZz:_ eE]{0,12}|[a-zA-Z~][-+.0-9a-zA-Z:_ ]{0,12}"
        ) {
            let matched = [&YAML11_INT, &YAML11_FLOAT, &TIMESTAMP, &YAML12_NUMBER]
                .iter()
                .any(|pattern| pattern.is_match(&s));
            proptest::prop_assert!(!matched || starts_like_number(&s), "{:?}", s);
        }
    }

    #[test]
    fn plain_is_refused_for_anything_that_reads_back_differently() {
        for s in [
            "",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "yes",
            "0644",
            "1e3",
            "2001-12-14",
            "- x",
            "---",
            "...",
            "*x",
            "&a",
            "!t",
            "'q",
            "\"q",
            "a\nb",
            "x:",
            "null",
            "<<",
            "=",
            "0o17",
            "a\u{85}b",
            "%x",
            "@x",
            "`x",
            "|x",
            ">x",
            "#x",
            "[x",
            "{x",
            "?x",
            "1.2.3",
        ] {
            assert!(!plain_safe(s, false), "{s:?} must not be plain");
        }
        for s in [
            "admin",
            "s3cr3t-p@ss",
            "héllo ✓",
            "a:b",
            "a#b",
            "say \"hi\"",
            "<value>",
            "v1.2.3",
        ] {
            assert!(plain_safe(s, false), "{s:?} can be plain");
        }
        assert!(!plain_safe("a,b", true));
        assert!(plain_safe("a,b", false));
        assert!(!plain_safe("a\tb", false));
        assert!(!plain_safe("x?y=1", true));
        assert!(plain_safe("x?y=1", false));
        assert!(!plain_safe("a:b", true));
    }

    #[test]
    fn double_quoting_escapes_json_compatibly() {
        assert_eq!(double_quoted("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(
            double_quoted("\u{1}\u{7f}\u{2028}é"),
            "\"\\u0001\\u007f\\u2028é\""
        );
    }

    #[test]
    fn literal_blocks_choose_chomping_from_trailing_newlines() {
        assert_eq!(literal_block("a\nb", 2, "").unwrap(), "|-\n  a\n  b\n");
        assert_eq!(
            literal_block("a\n\nb\n", 4, "").unwrap(),
            "|\n    a\n\n    b\n"
        );
        assert_eq!(
            literal_block("a\n\n", 2, " # c").unwrap(),
            "|+ # c\n  a\n\n"
        );
        assert_eq!(literal_block(" lead", 2, ""), None);
        assert_eq!(literal_block("a\r\nb", 2, ""), None);
    }
}
