//! `secretsubst refs`: the unique (profile, path, version) secrets an app's manifests use, found
//! without contacting a backend: what a rotation watcher needs to know.

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::cli::Format;
use crate::config::Config;
use crate::error::Errors;
use crate::manifest::input::Source;

/// One secret an app reads. Sorted by profile, then path, then version (unpinned first).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    pub profile: String,
    pub path: String,
    pub version: Option<String>,
}

/// The secrets of `inputs`; any error in the input fails the command, so that a watcher never
/// takes a partial list for the whole.
pub fn collect(
    inputs: &[Source],
    config: &Config,
    name: &str,
    allow_empty: bool,
) -> anyhow::Result<Vec<Ref>> {
    let (_files, plan, mut errors) = crate::collect(inputs, config, name, allow_empty)?;
    let Some(plan) = plan else {
        return Ok(Vec::new());
    };
    let refs: BTreeSet<Ref> = plan
        .refs
        .keys()
        .map(|r| Ref {
            profile: r.profile.clone(),
            path: r.path.clone(),
            version: r.version.clone(),
        })
        .collect();
    if !errors.is_empty() || plan.has_errors() {
        errors.extend(plan.into_errors());
        return Err(Errors(errors).into());
    }
    Ok(refs.into_iter().collect())
}

pub fn write(out: &mut dyn Write, refs: &[Ref], format: Format) -> io::Result<()> {
    match format {
        Format::Text => {
            for r in refs {
                match &r.version {
                    Some(version) => writeln!(out, "{}\t{}\t{version}", r.profile, r.path)?,
                    None => writeln!(out, "{}\t{}", r.profile, r.path)?,
                }
            }
            Ok(())
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = refs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "profile": r.profile,
                        "path": r.path,
                        "version": r.version,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)
        }
    }
}
