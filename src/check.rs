//! `secretsubst check`: every placeholder resolved as `generate` would (or, `--offline`, only
//! checked without a backend), reported one row each on stdout whatever the outcome; never a
//! value.

use std::io::{self, Write};

use crate::cli::Format;
use crate::config::Config;
use crate::error::{Diagnostic, sanitize};
use crate::manifest::input::Source;
use crate::substitute::check::{Row, Status};

/// The rows of `inputs`: input problems, and each placeholder with its status.
pub fn rows(
    inputs: &[Source],
    config: &Config,
    name: &str,
    allow_empty: bool,
    offline: bool,
) -> anyhow::Result<Vec<Row>> {
    let (_files, plan, errors) = crate::collect(inputs, config, name, allow_empty)?;
    let mut rows: Vec<Row> = errors.into_iter().map(Row::from_diagnostic).collect();
    let Some(plan) = plan else {
        return Ok(rows);
    };
    let fetched = match offline {
        true => None,
        false => {
            let resolved = crate::resolve::resolve(config, &plan.refs)?;
            Some(resolved.secrets)
        }
    };
    rows.extend(crate::substitute::check::rows(plan, fetched.as_ref()));
    Ok(rows)
}

/// The exit status once the report is printed: an error (exit 1) when some rows are not `ok`.
pub fn verdict(rows: &[Row]) -> anyhow::Result<()> {
    match rows.iter().filter(|r| r.status != Status::Ok).count() {
        0 => Ok(()),
        failed => anyhow::bail!("check: {failed} of {} rows failed", rows.len()),
    }
}

/// Where a row is: `file: doc 2 (Secret/db): stringData.password`.
fn location(row: &Row) -> String {
    Diagnostic {
        file: row.file.clone(),
        document: row.document,
        kind: row.kind.clone(),
        name: row.name.clone(),
        field: row.field.clone(),
        placeholder: None,
        in_base64: false,
        cause: crate::error::Cause::Other(String::new()),
    }
    .location()
}

pub fn write(out: &mut dyn Write, rows: &[Row], format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Text => {
            let cells: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        sanitize(&location(r)),
                        sanitize(r.placeholder.as_deref().unwrap_or("-")),
                        sanitize(r.backend.as_deref().unwrap_or("-")),
                        r.status.name().to_owned(),
                        sanitize(&r.reason),
                    ]
                })
                .collect();
            let header = ["LOCATION", "PLACEHOLDER", "PROFILE", "STATUS", "REASON"];
            let lines: Vec<Vec<String>> = std::iter::once(header.map(str::to_owned))
                .chain(cells)
                .map(Vec::from)
                .collect();
            crate::table::write(out, "", &lines)?;
            let placeholders = rows.iter().filter(|r| r.placeholder.is_some()).count();
            let ok = rows.iter().filter(|r| r.status == Status::Ok).count();
            let others = rows.len() - placeholders;
            let noun = if placeholders == 1 {
                "placeholder"
            } else {
                "placeholders"
            };
            write!(
                out,
                "{placeholders} {noun}: {ok} ok, {} failed",
                placeholders - ok
            )?;
            match others {
                0 => writeln!(out),
                1 => writeln!(out, "; 1 other problem"),
                n => writeln!(out, "; {n} other problems"),
            }
        }
    }
}
