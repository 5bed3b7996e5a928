//! How errors reach stderr: one line each, `error: ` first, with control characters escaped,
//! URL credentials redacted and long text cut, so no manifest or backend can forge a line or
//! flood the log; plus the exit codes.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use regex::Regex;

use crate::backend::Failure;
use crate::manifest::pipeline;

/// Longer lines are cut: a 100,000-character path must not make a 200 KB log line.
const MAX_LINE: usize = 2000;
/// Placeholders, paths and values quoted in a message keep this many characters.
const MAX_EXCERPT: usize = 200;

/// A problem found in a run, with where it is: the one error type the engine reports, and what
/// `check --format json` prints. Every field but `cause` is optional, from most to least general.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Option<String>,
    /// 1-based index of the document in its file.
    pub document: Option<usize>,
    pub kind: Option<String>,
    pub name: Option<String>,
    /// The field path (`stringData.password`, `metadata.annotations['…']`).
    pub field: Option<String>,
    pub placeholder: Option<String>,
    /// The placeholder sits in the base64-decoded value of a Secret field.
    pub in_base64: bool,
    pub cause: Cause,
}

/// Why: what a status column can be computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The input is wrong: syntax, grammar, modifiers, annotations, kind rules.
    Invalid(String),
    /// The secret exists but has no such key.
    MissingKey(String),
    /// The backend failed for this secret; `note` says how the placeholder named it.
    Backend {
        failure: Failure,
        note: Option<&'static str>,
    },
    /// Anything else: settings, set-up, a limit.
    Other(String),
}

impl Diagnostic {
    /// A diagnostic with no location.
    pub fn new(cause: Cause) -> Diagnostic {
        Diagnostic {
            file: None,
            document: None,
            kind: None,
            name: None,
            field: None,
            placeholder: None,
            in_base64: false,
            cause,
        }
    }

    /// A diagnostic about a whole file.
    pub fn in_file(file: &str, cause: Cause) -> Diagnostic {
        Diagnostic {
            file: Some(file.to_owned()),
            ..Diagnostic::new(cause)
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Invalid(text) | Cause::MissingKey(text) | Cause::Other(text) => {
                f.write_str(text)
            }
            Cause::Backend { failure, note } => {
                write!(f, "{failure}")?;
                match note {
                    Some(note) => write!(f, " ({note})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Diagnostic {
    /// Where the problem is: `file: doc 2 (Secret/db): stringData.password: <path:…#pw>`, each
    /// part when known; empty when nothing is.
    pub fn location(&self) -> String {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(file.clone());
        }
        if let Some(document) = self.document {
            parts.push(match (&self.kind, &self.name) {
                (Some(kind), Some(name)) => {
                    format!("doc {document} ({}/{})", excerpt(kind), excerpt(name))
                }
                (Some(kind), None) => format!("doc {document} ({})", excerpt(kind)),
                _ => format!("doc {document}"),
            });
        }
        if let Some(field) = &self.field {
            parts.push(excerpt(field));
        }
        if let Some(placeholder) = &self.placeholder {
            let note = if self.in_base64 {
                " (in the base64-decoded value)"
            } else {
                ""
            };
            parts.push(format!("{}{note}", excerpt(placeholder)));
        }
        parts.join(": ")
    }
}

/// The location, then the cause: `file: doc 2 (Secret/db): stringData.password: <path:…#pw>:
/// vault: 403 permission denied: secret/data/db`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.location();
        if !location.is_empty() {
            write!(f, "{location}: ")?;
        }
        write!(f, "{}", self.cause)
    }
}

/// Several errors, reported together, one per line.
#[derive(Debug)]
pub struct Errors(pub Vec<Diagnostic>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl Errors {
    /// Errors that are one line of text each, with no location of their own.
    pub fn from_lines(lines: Vec<String>) -> Errors {
        Errors(
            lines
                .into_iter()
                .map(|line| Diagnostic::new(Cause::Other(line)))
                .collect(),
        )
    }
}

/// The error text for stderr: every error on its own line, each prefixed with `error: `.
pub fn render(err: &anyhow::Error) -> String {
    let lines = match err.downcast_ref::<Errors>() {
        Some(Errors(diagnostics)) => diagnostics.iter().map(ToString::to_string).collect(),
        None => vec![format!("{err:#}")],
    };
    lines
        .iter()
        .map(|l| format!("error: {}", sanitize(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The process exit code for `err`: the renderer's own in pipeline mode, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<pipeline::ChildFailed>()
        .map_or(1, |failed| failed.code)
}

thread_local! {
    /// Set while [`catch_panic`] runs: its panics are expected and become errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// A panic message could quote a value, so only the place is printed.
pub fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    if QUIET.with(Cell::get) {
        return;
    }
    match info.location() {
        Some(at) => eprintln!("error: internal error at {}:{}", at.file(), at.line()),
        None => eprintln!("error: internal error"),
    }
}

/// Runs `f`, turning a panic inside it into `None` without printing it: for a third-party parser
/// that panics on some malformed input (libyaml-safer does on a tag followed by `,` in a flow
/// collection), so that such input is an ordinary error.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.ok()
}

static URL_CREDENTIALS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@").expect("valid regex"));

/// One printable line: user-info in URLs redacted, control and bidirectional-override
/// characters escaped, and the line cut at [`MAX_LINE`] characters.
pub fn sanitize(line: &str) -> String {
    // Most lines hold no URL, and then the pattern need not even be compiled (W3 start-up).
    let line = if line.contains("://") {
        URL_CREDENTIALS.replace_all(line, "$1[redacted]@")
    } else {
        std::borrow::Cow::Borrowed(line)
    };
    let mut out = String::with_capacity(line.len().min(MAX_LINE + 64));
    for (count, c) in line.chars().enumerate() {
        if count == MAX_LINE {
            let rest = line.chars().count() - count;
            let _ = write!(out, "… ({rest} more characters)");
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || is_invisible_format(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Characters that reorder or hide text on a terminal.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `text`, or its start and end with an ellipsis between when it is long: for quoting a
/// placeholder, path or field in a message.
pub fn excerpt(text: &str) -> String {
    let count = text.chars().count();
    if count <= MAX_EXCERPT {
        return text.to_owned();
    }
    let head: String = text.chars().take(MAX_EXCERPT / 2).collect();
    let tail: String = text.chars().skip(count - MAX_EXCERPT / 4).collect();
    format!(
        "{head}…({} characters)…{tail}",
        count - MAX_EXCERPT / 2 - MAX_EXCERPT / 4
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_line() {
        assert_eq!(
            sanitize("key \"a\nerror: forged\" \u{1b}[31m\t\u{202e}x"),
            "key \"a\\nerror: forged\" \\u{1b}[31m\\t\\u{202e}x"
        );
    }

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            sanitize("cannot reach http://user:pw@vault:8200/v1/x and HTTPS://tok@h/"),
            "cannot reach http://[redacted]@vault:8200/v1/x and HTTPS://[redacted]@h/"
        );
        assert_eq!(
            sanitize("mail a@b, see https://h/p?u=a@b"),
            "mail a@b, see https://h/p?u=a@b"
        );
    }

    #[test]
    fn long_lines_and_excerpts_are_cut() {
        let long = "x".repeat(100_000);
        let line = sanitize(&long);
        assert!(line.len() < MAX_LINE + 100, "{}", line.len());
        assert!(line.ends_with("… (98000 more characters)"), "{line}");
        let e = excerpt(&format!("<path:{long}#k>"));
        assert!(e.starts_with("<path:xxx") && e.ends_with("xxx#k>"), "{e}");
        assert!(e.chars().count() < 300, "{e}");
        assert_eq!(excerpt("<path:a#b>"), "<path:a#b>");
    }

    #[test]
    fn a_diagnostic_names_each_known_part_then_the_cause() {
        use crate::backend::{ErrorKind, Origin};
        let failure = Failure {
            kind: ErrorKind::PermissionDenied,
            origin: Origin {
                backend: "vault",
                profile: "prod".into(),
                named: true,
            },
            path: Some("secret/data/db".into()),
            message: "403 permission denied: secret/data/db".into(),
        };
        let full = Diagnostic {
            file: Some("app.yaml".into()),
            document: Some(2),
            kind: Some("Secret".into()),
            name: Some("db".into()),
            field: Some("data.password".into()),
            placeholder: Some("<path:prod:secret/data/db#pw>".into()),
            in_base64: true,
            cause: Cause::Backend {
                failure,
                note: Some("the secret named by avp.kubernetes.io/path"),
            },
        };
        assert_eq!(
            full.to_string(),
            "app.yaml: doc 2 (Secret/db): data.password: <path:prod:secret/data/db#pw> (in the base64-decoded value): vault (prod): 403 permission denied: secret/data/db (the secret named by avp.kubernetes.io/path)"
        );
        let doc = Diagnostic {
            document: Some(1),
            kind: Some("A".into()),
            ..Diagnostic::in_file("-", Cause::Invalid("bad".into()))
        };
        assert_eq!(doc.to_string(), "-: doc 1 (A): bad");
        assert_eq!(doc.location(), "-: doc 1 (A)");
        assert_eq!(Diagnostic::new(Cause::Other("x".into())).to_string(), "x");
    }
}
