//! Placeholder grammar: finds `<path:PATH#KEY#VERSION | modifier …>` and generic `<key>` in a
//! string, with AVP's regular expressions and trimming rules (avp-compat.md §5).

pub mod jsonpath;
pub mod modifier;

use std::ops::Range;
use std::sync::LazyLock;

// regex-lite: these patterns compile in microseconds where the full engine takes about 0.3 ms
// for the three, a tenth of a small run (W3); placeholders are short, so its slower matching
// costs nothing measurable.
use regex_lite::Regex;

pub use modifier::Modifier;

/// AVP's generic pattern: `<`, the shortest run of characters on one line, `>`.
static GENERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mU)<(.*)>").expect("valid regex"));

/// AVP's inline pattern; it may span lines.
static INLINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mU)<path:([^#]+)#([^#]+)(?:#([^#]+))?>").expect("valid regex"));

/// Splits a placeholder's text into path, key and version. Unanchored, as in AVP, so
/// `mypath:a#b` is path `a`, key `b`.
static INNER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?mU)path:(?P<path>[^#]+?)#(?P<key>[^#]+?)(?:#(?P<version>.+?))??")
        .expect("valid regex")
});

/// Which placeholders a manifest's strings may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only `<path:…#…>`: other `<…>` text (CRD descriptions, HTML) is left alone.
    Inline,
    /// The manifest has an `avp.kubernetes.io/path` annotation: `<key>` is a placeholder too.
    Generic,
}

/// Where a placeholder's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Inline {
        path: String,
        key: String,
        version: Option<String>,
    },
    /// A key of the secret named by the manifest's path annotation.
    Generic { key: String },
}

/// One placeholder found in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte range of the whole match in the searched string.
    pub range: Range<usize>,
    pub target: Target,
    pub modifiers: Vec<Modifier>,
}

/// A placeholder whose modifiers do not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrammarError {
    pub range: Range<usize>,
    pub message: String,
}

/// Whether `text` holds anything that looks like a placeholder in `mode` (a cheap pre-check).
pub fn might_contain(text: &str, mode: Mode) -> bool {
    match mode {
        Mode::Inline => text.contains("<path:"),
        Mode::Generic => text.contains('<'),
    }
}

/// Whether `text` has a `<…>` on one line: AVP's test for base64 Secret values.
pub fn has_generic_match(text: &str) -> bool {
    GENERIC.is_match(text)
}

/// Finds the placeholders of `text`, left to right.
pub fn find(text: &str, mode: Mode) -> Vec<Result<Placeholder, GrammarError>> {
    if !might_contain(text, mode) {
        return Vec::new();
    }
    let pattern = match mode {
        Mode::Inline => &*INLINE,
        Mode::Generic => &*GENERIC,
    };
    pattern
        .find_iter(text)
        .map(|m| parse(&text[m.range()], m.range()))
        .collect()
}

fn parse(matched: &str, range: Range<usize>) -> Result<Placeholder, GrammarError> {
    let inner = matched.trim_matches(['<', '>']);
    let mut stages = inner.split('|');
    let name = stages.next().unwrap_or_default().trim_matches(' ');
    let modifiers = stages
        .map(Modifier::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| GrammarError {
            range: range.clone(),
            message,
        })?;
    let target = match INNER.captures(name) {
        Some(caps) => {
            let group = |group: &str| caps.name(group).map(|m| &name[m.range()]);
            Target::Inline {
                path: group("path").unwrap_or_default().to_owned(),
                key: group("key").unwrap_or_default().trim().to_owned(),
                version: group("version").map(str::to_owned),
            }
        }
        None => Target::Generic {
            key: name.to_owned(),
        },
    };
    Ok(Placeholder {
        range,
        target,
        modifiers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, mode: Mode) -> Placeholder {
        let mut found = find(text, mode);
        assert_eq!(found.len(), 1, "{text}");
        found.pop().unwrap().unwrap()
    }

    fn inline(path: &str, key: &str, version: Option<&str>) -> Target {
        Target::Inline {
            path: path.into(),
            key: key.into(),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn inline_placeholder_with_version_and_modifiers() {
        let p = one(
            "x <path:secret/data/app#key#2 | base64encode> y",
            Mode::Inline,
        );
        assert_eq!(p.range, 2..45);
        assert_eq!(p.target, inline("secret/data/app", "key", Some("2")));
        assert_eq!(p.modifiers, vec![Modifier::Base64Encode]);
    }

    #[test]
    fn inline_mode_leaves_generic_text_alone() {
        assert!(find("<b>bold</b> <user>", Mode::Inline).is_empty());
    }

    #[test]
    fn generic_mode_finds_keys_and_inline_placeholders() {
        let found: Vec<_> = find("<user>:<path:a#b>", Mode::Generic)
            .into_iter()
            .map(|p| p.unwrap().target)
            .collect();
        assert_eq!(
            found,
            vec![
                Target::Generic { key: "user".into() },
                inline("a", "b", None)
            ]
        );
    }

    #[test]
    fn whitespace_rules_follow_avp() {
        assert_eq!(
            one("<  user  >", Mode::Generic).target,
            Target::Generic { key: "user".into() }
        );
        assert_eq!(
            one("<path:secret/data/app# user >", Mode::Inline).target,
            inline("secret/data/app", "user", None)
        );
        assert_eq!(
            one("<path: a/b # k >", Mode::Inline).target,
            inline(" a/b ", "k", None)
        );
    }

    #[test]
    fn edge_cases_of_avp_grammar() {
        let p = one("<<user>>", Mode::Generic);
        assert_eq!(
            (p.range, p.target),
            (0..7, Target::Generic { key: "user".into() })
        );
        assert_eq!(
            one("<a <b> c>", Mode::Generic).target,
            Target::Generic { key: "a <b".into() }
        );
        assert!(find("<a\nb>", Mode::Generic).is_empty());
        assert_eq!(
            one("<path:a#b\n>", Mode::Inline).target,
            inline("a", "b", None)
        );
        assert!(find("<path:a#b#c#d>", Mode::Inline).is_empty());
        assert_eq!(
            one("<path:a#b#c#d>", Mode::Generic).target,
            inline("a", "b", Some("c#d"))
        );
        assert!(find("text <path:s/p#key#> more", Mode::Inline).is_empty());
        assert_eq!(
            one("text <path:s/p#key#> more", Mode::Generic).target,
            inline("s/p", "key", None)
        );
        assert_eq!(
            one("<mypath:a#b>", Mode::Generic).target,
            inline("a", "b", None)
        );
        assert_eq!(
            one(
                "<path:arn:aws:secretsmanager:us-east-1:1:secret:x#k>",
                Mode::Inline
            )
            .target,
            inline("arn:aws:secretsmanager:us-east-1:1:secret:x", "k", None)
        );
    }

    #[test]
    fn bad_modifiers_are_grammar_errors() {
        let err = find("<path:a#b | nope>", Mode::Inline)
            .pop()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.message, "invalid modifier: nope");
        let err = find("<path:a#b |>", Mode::Inline)
            .pop()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.message,
            "invalid modifier: (an empty stage between `|` and the next `|` or `>`)"
        );
    }
}
