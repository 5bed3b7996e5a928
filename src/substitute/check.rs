//! `secretsubst check`: one row per placeholder occurrence, with what resolving it gave, and
//! one per problem found in the input; never a value.

use super::Plan;
use super::apply::{NoValue, value_of};
use crate::backend::ErrorKind;
use crate::error::{Cause, Diagnostic};
use crate::placeholder::Target;
use crate::substitute::{Fetched, Unfetched};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    MissingKey,
    NotFound,
    Denied,
    Invalid,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::MissingKey => "missing-key",
            Status::NotFound => "not-found",
            Status::Denied => "denied",
            Status::Invalid => "invalid",
            Status::Error => "error",
        }
    }

    fn of(cause: &Cause) -> Status {
        match cause {
            Cause::Invalid(_) => Status::Invalid,
            Cause::MissingKey(_) => Status::MissingKey,
            Cause::Other(_) => Status::Error,
            Cause::Backend { failure, .. } => match failure.kind {
                ErrorKind::NotFound => Status::NotFound,
                ErrorKind::PermissionDenied => Status::Denied,
                ErrorKind::InvalidConfig => Status::Invalid,
                ErrorKind::Transient | ErrorKind::Unexpected => Status::Error,
            },
        }
    }
}

/// One row of the report: where, which placeholder and secret, and what came of it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub file: Option<String>,
    pub document: Option<usize>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub field: Option<String>,
    pub placeholder: Option<String>,
    /// The profile that reads it (`default` for the flat settings).
    pub backend: Option<String>,
    pub path: Option<String>,
    pub key: Option<String>,
    pub version: Option<String>,
    pub status: Status,
    pub reason: String,
}

impl Row {
    /// A row for a problem that is not one placeholder's outcome (a file that does not parse, an
    /// annotation), its status from the cause.
    pub fn from_diagnostic(d: Diagnostic) -> Row {
        Row {
            status: Status::of(&d.cause),
            reason: d.cause.to_string(),
            file: d.file,
            document: d.document,
            kind: d.kind,
            name: d.name,
            field: d.field,
            placeholder: d.placeholder,
            backend: None,
            path: None,
            key: None,
            version: None,
        }
    }
}

/// The rows of `plan`, in input order. Without `fetched` (offline), a placeholder whose grammar,
/// modifiers, annotations and profile are valid is `ok`.
pub fn rows(plan: Plan<'_>, fetched: Option<&Fetched>) -> Vec<Row> {
    let mut rows: Vec<((usize, usize, usize), Row)> = Vec::new();
    for doc in &plan.docs {
        for field in &doc.fields {
            for slot in &field.slots {
                let p = &slot.placeholder;
                let key = match &p.target {
                    Target::Inline { key, .. } | Target::Generic { key } => key,
                };
                let text = &field.text[p.range.clone()];
                let mut diagnostic = doc.place.diagnostic(
                    Some(&field.path),
                    Some(text),
                    Cause::Other(String::new()),
                );
                diagnostic.in_base64 = field.base64;
                let outcome = match (&slot.secret, fetched) {
                    // An empty path annotation is a missing key; other secret-less
                    // placeholders have their collect-time error as a row of its own.
                    (None, _) => match value_of(doc, slot, &Fetched::default()) {
                        Err(NoValue::Missing(m)) => Some((Status::MissingKey, m)),
                        _ => None,
                    },
                    (Some(secret), Some(fetched)) => match fetched.get(secret) {
                        Some(Err(Unfetched::ProfileFailed(reason))) => {
                            Some((Status::Error, reason.clone()))
                        }
                        _ => Some(match value_of(doc, slot, fetched) {
                            Ok(_) => (Status::Ok, String::new()),
                            Err(NoValue::Missing(m)) => (Status::MissingKey, m),
                            Err(NoValue::Other(cause)) => (Status::of(&cause), cause.to_string()),
                            Err(NoValue::Reported) => (Status::Error, "not resolved".to_owned()),
                        }),
                    },
                    (Some(_), None) => Some((Status::Ok, String::new())),
                };
                let Some((status, reason)) = outcome else {
                    continue;
                };
                let mut row = Row::from_diagnostic(diagnostic);
                row.status = status;
                row.reason = reason;
                if let Some(secret) = &slot.secret {
                    row.backend = Some(secret.profile.clone());
                    row.path = Some(secret.path.clone());
                    row.version = secret.version.clone();
                }
                row.key = Some(key.clone());
                rows.push(((doc.file, doc.chunk, field.at), row));
            }
        }
    }
    for diag in plan.errors {
        rows.push((diag.at, Row::from_diagnostic(diag.diagnostic)));
    }
    rows.sort_by_key(|(at, _)| *at);
    rows.into_iter().map(|(_, row)| row).collect()
}
