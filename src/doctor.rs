//! `secretsubst doctor`: what the plugin would do with the settings it really has. For the run
//! and for each profile, the settings in effect and the source of each (credentials redacted,
//! unknown names flagged), then each profile's backend checked as far as its login: the first
//! thing to run when the plugin misbehaves in a sidecar.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::SettingsRead;
use crate::backend::{self, Probe};
use crate::cli::Format;
use crate::config::{
    Config, DEFAULT_PROFILE, PROFILE_SETTINGS, RUN_SETTINGS, SettingKey, Settings, Source,
};
use crate::error::sanitize;

const REDACTED: &str = "[redacted]";
/// A setting's source when it is unset.
const DEFAULT_SOURCE: &str = "default";

#[derive(Debug, Serialize)]
pub struct Report {
    /// The settings of the run itself, and its own checks (the settings are valid, the `-s`
    /// Secret was read, SOPS manifests can be opened).
    pub run: Section,
    pub profiles: Vec<Section>,
}

#[derive(Debug, Serialize)]
pub struct Section {
    /// The profile's name; `run` for the run's own section.
    pub name: String,
    /// Its `AVP_TYPE`; `None` for the run, or when unset.
    pub backend: Option<String>,
    /// Where a named profile is defined (`config file avp.yaml: backends.team`).
    pub origin: Option<String>,
    pub settings: Vec<Shown>,
    pub checks: Vec<Check>,
    pub status: Status,
}

/// A setting as `doctor` shows it: the value unless it is a credential or unknown.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub name: String,
    pub value: String,
    pub source: String,
    /// Why the setting has no effect here (`not a secretsubst setting`).
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub step: &'static str,
    pub status: Status,
    /// What the step found, or why it failed.
    pub detail: String,
    pub hint: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    /// A default profile without `AVP_TYPE` beside named ones: only prefixed placeholders and
    /// annotated manifests resolve, which is a valid set-up.
    Unused,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Unused => "unused",
        }
    }
}

impl Report {
    /// The exit status once the report is printed: an error (exit 1) when a profile or the
    /// run's own checks failed.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let failed = self
            .profiles
            .iter()
            .filter(|s| s.status == Status::Failed)
            .count();
        let total = self.profiles.len();
        match (failed, self.run.status == Status::Failed) {
            (0, false) => Ok(()),
            (0, true) => anyhow::bail!("doctor: the run's own checks failed"),
            (failed, false) => anyhow::bail!("doctor: {failed} of {total} profiles failed"),
            (failed, true) => anyhow::bail!(
                "doctor: {failed} of {total} profiles failed, and the run's own checks"
            ),
        }
    }
}

impl From<Probe> for Check {
    fn from(probe: Probe) -> Check {
        match probe.outcome {
            Ok(detail) => Check {
                step: probe.step,
                status: Status::Ok,
                detail,
                hint: None,
            },
            Err(trouble) => Check {
                step: probe.step,
                status: Status::Failed,
                detail: trouble.message,
                hint: trouble.hint,
            },
        }
    }
}

/// The report for the settings `read`, checking the profiles of `only` (every profile when
/// empty). The backends are checked concurrently within the run deadline.
pub fn report(read: SettingsRead, only: &[String]) -> anyhow::Result<Report> {
    let SettingsRead {
        settings,
        named,
        deadline,
        secret_error,
    } = read;
    let mut run_checks = Vec::new();
    if let Some(e) = &secret_error {
        run_checks.push(Probe::failed(
            "secret",
            format!("{e:#}"),
            Some("the repo-server's service account needs get on that Secret (a Role and RoleBinding in its namespace)".to_owned()),
        ));
    }
    let mut sections: Vec<(String, Option<String>, Settings)> =
        vec![(DEFAULT_PROFILE.to_owned(), None, settings.clone())];
    for (name, layer) in &named {
        let origin = layer.origin.clone();
        let profile = Settings::merge(Vec::new(), std::slice::from_ref(layer));
        sections.push((name.clone(), Some(origin), profile));
    }
    for wanted in only {
        if !sections.iter().any(|(name, _, _)| name == wanted) {
            let names: Vec<&str> = sections.iter().map(|(n, _, _)| n.as_str()).collect();
            anyhow::bail!(
                "doctor: no profile {wanted:?} (configured: {})",
                names.join(", ")
            );
        }
    }
    let config = match Config::new(settings.clone(), named) {
        Ok(mut config) => {
            // The truth about the login, not a cached token; and no token left behind.
            config.cache_credentials = false;
            config.deadline = deadline;
            Some(config)
        }
        Err(e) => {
            run_checks.push(Probe::failed("settings", e.to_string(), None));
            None
        }
    };
    if let Some(config) = &config
        && config.sops_manifests
    {
        run_checks.push(sops_manifests(&settings));
    }
    let sops_manifests = config.as_ref().is_some_and(|c| c.sops_manifests);
    let selected: Vec<&(String, Option<String>, Settings)> = sections
        .iter()
        .filter(|(name, _, _)| only.is_empty() || only.contains(name))
        .collect();
    let probes = match &config {
        Some(config) => check_profiles(config, &selected)?,
        None => selected.iter().map(|_| None).collect(),
    };
    let profiles_configured = sections.len() > 1;
    let profiles = selected
        .iter()
        .zip(probes)
        .map(|((name, origin, profile), probes)| {
            let backend = profile.get("AVP_TYPE").map(|t| t.trim().to_owned());
            let default = name == DEFAULT_PROFILE;
            let mut shown = show(profile, &read_by(backend.as_deref(), default, sops_manifests), default);
            shown.sort_by(|a, b| a.name.cmp(&b.name));
            let (checks, status) = match probes {
                _ if default && backend.is_none() && profiles_configured => (
                    vec![Check {
                        step: "backend",
                        status: Status::Unused,
                        detail: "AVP_TYPE is not set: only placeholders with a profile prefix or in annotated manifests resolve".to_owned(),
                        hint: None,
                    }],
                    Status::Unused,
                ),
                None => (Vec::new(), Status::Failed),
                Some(probes) => {
                    let checks: Vec<Check> = probes.into_iter().map(Check::from).collect();
                    let status = match checks.iter().all(|c| c.status == Status::Ok) {
                        true => Status::Ok,
                        false => Status::Failed,
                    };
                    (checks, status)
                }
            };
            Section {
                name: name.clone(),
                backend,
                origin: origin.clone(),
                settings: shown,
                checks,
                status,
            }
        })
        .collect();
    let run_checks: Vec<Check> = run_checks.into_iter().map(Check::from).collect();
    let run = Section {
        name: "run".to_owned(),
        backend: None,
        origin: None,
        settings: show_run(&settings),
        status: match run_checks.iter().all(|c| c.status == Status::Ok) {
            true => Status::Ok,
            false => Status::Failed,
        },
        checks: run_checks,
    };
    Ok(Report { run, profiles })
}

/// The checks of each selected profile: its backend built, then diagnosed; all profiles at
/// once, each cut off at the run deadline.
fn check_profiles(
    config: &Config,
    selected: &[&(String, Option<String>, Settings)],
) -> anyhow::Result<Vec<Option<Vec<Probe>>>> {
    let built: Vec<Result<_, Probe>> = selected
        .iter()
        .map(|(name, _, _)| {
            crate::resolve::backend(config, name)
                .map_err(|e| Probe::failed("settings", format!("{e:#}"), None))
        })
        .collect();
    let deadline = config.deadline;
    // Just inside the deadline, so that each profile reports its own time-out.
    let remaining = deadline
        .remaining()
        .saturating_sub(std::time::Duration::from_millis(100));
    let network = built.iter().flatten().any(|backend| backend.uses_network());
    let checked = deadline.block_on(
        "the backends' checks",
        network,
        futures::future::join_all(built.into_iter().map(|built| async move {
            match built {
                Err(probe) => vec![probe],
                Ok(backend) => match tokio::time::timeout(remaining, backend.diagnose()).await {
                    Ok(probes) => probes,
                    Err(_) => vec![Probe::failed(
                        "answer",
                        deadline.exceeded("the backend's answer"),
                        Some("a server that accepts connections but never answers: check the address, and any proxy in between".to_owned()),
                    )],
                },
            }
        })),
    )?;
    Ok(checked.into_iter().map(Some).collect())
}

/// Whether the identities for `AVP_SOPS_MANIFESTS=decrypt` can be found.
#[cfg(feature = "sops")]
fn sops_manifests(settings: &Settings) -> Probe {
    let found = crate::sops::Identities::from_settings(settings)
        .map_err(|e| format!("{e:#}"))
        .and_then(|identities| identities.summary());
    match found {
        Ok(found) => Probe::passed("sops manifests", found),
        Err(missing) => Probe::failed(
            "sops manifests",
            missing,
            Some(crate::sops::NO_IDENTITY_HINT.to_owned()),
        ),
    }
}

#[cfg(not(feature = "sops"))]
fn sops_manifests(_: &Settings) -> Probe {
    Probe::failed(
        "sops manifests",
        "AVP_SOPS_MANIFESTS: this build of secretsubst was made without SOPS",
        None,
    )
}

/// The settings a profile reads: every profile's own, its backend's, and for the default
/// profile with SOPS manifests, the identities' settings.
fn read_by(backend: Option<&str>, default: bool, sops_manifests: bool) -> Vec<SettingKey> {
    let mut keys: Vec<SettingKey> = PROFILE_SETTINGS.to_vec();
    if let Some(kind) = backend.and_then(backend::find) {
        keys.extend(kind.settings);
    }
    if default && sops_manifests {
        keys.extend(backend::find("sops").map_or(&[][..], |t| t.settings));
    }
    keys
}

/// Every setting a known name may hold anywhere, for the notes on the ones a profile ignores.
fn all_keys() -> BTreeMap<&'static str, SettingKey> {
    RUN_SETTINGS
        .iter()
        .chain(PROFILE_SETTINGS)
        .chain(backend::types().iter().flat_map(|t| t.settings))
        .map(|k| (k.name, *k))
        .collect()
}

/// The run's own settings, set or defaulted.
fn show_run(settings: &Settings) -> Vec<Shown> {
    let mut shown: Vec<Shown> = RUN_SETTINGS
        .iter()
        .filter_map(
            |key| match settings.entries().find(|(k, _, _)| *k == key.name) {
                Some((name, value, source)) => {
                    Some(shown_value(name, value, source, key.credential, None))
                }
                None => defaulted(key),
            },
        )
        .collect();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    shown
}

/// A profile's settings: what it reads (set or defaulted), and what it was given but ignores.
/// The process environment holds much else, so of its variables only the ones a profile reads
/// and misspelt `AVP_` names are shown.
fn show(settings: &Settings, reads: &[SettingKey], default: bool) -> Vec<Shown> {
    let known = all_keys();
    let mut shown = Vec::new();
    for (name, value, source) in settings.entries() {
        if default && RUN_SETTINGS.iter().any(|k| k.name == name) {
            continue;
        }
        if let Some(key) = reads.iter().find(|k| k.name == name) {
            shown.push(shown_value(name, value, source, key.credential, None));
            continue;
        }
        if *source == Source::Env && !name.starts_with("AVP_") {
            continue;
        }
        let (credential, note) = match known.get(name) {
            Some(key) if RUN_SETTINGS.contains(key) => (
                key.credential,
                "read only from the flat settings, not from a profile",
            ),
            Some(key) => (key.credential, "not read by this profile's backend"),
            // It may be a credential under another name.
            None => (true, "not a secretsubst setting"),
        };
        shown.push(shown_value(name, value, source, credential, Some(note)));
    }
    for key in reads {
        if settings.get(key.name).is_none()
            && let Some(defaulted) = defaulted(key)
        {
            shown.push(defaulted);
        }
    }
    shown
}

fn shown_value(
    name: &str,
    value: &str,
    source: &Source,
    credential: bool,
    note: Option<&str>,
) -> Shown {
    Shown {
        name: name.to_owned(),
        value: match credential {
            true => REDACTED.to_owned(),
            false => sanitize(value),
        },
        source: source.to_string(),
        note: note.map(str::to_owned),
    }
}

fn defaulted(key: &SettingKey) -> Option<Shown> {
    Some(Shown {
        name: key.name.to_owned(),
        value: key.default?.to_owned(),
        source: DEFAULT_SOURCE.to_owned(),
        note: None,
    })
}

pub fn write(out: &mut dyn Write, report: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::Text => {
            writeln!(out, "run")?;
            write_section(out, &report.run)?;
            for section in &report.profiles {
                writeln!(out)?;
                let backend = section.backend.as_deref().unwrap_or("no AVP_TYPE");
                match &section.origin {
                    Some(origin) => writeln!(
                        out,
                        "profile {} ({}, from {})",
                        section.name,
                        sanitize(backend),
                        sanitize(origin)
                    )?,
                    None => writeln!(out, "profile {} ({})", section.name, sanitize(backend))?,
                }
                write_section(out, section)?;
            }
            let count = |status| {
                report
                    .profiles
                    .iter()
                    .filter(|s| s.status == status)
                    .count()
            };
            writeln!(out)?;
            let total = report.profiles.len();
            write!(
                out,
                "{total} {}: {} ok, {} failed",
                if total == 1 { "profile" } else { "profiles" },
                count(Status::Ok),
                count(Status::Failed)
            )?;
            match count(Status::Unused) {
                0 => {}
                n => write!(out, ", {n} unused")?,
            }
            match report.run.status {
                Status::Failed => writeln!(out, "; the run's own checks failed"),
                _ => writeln!(out),
            }
        }
    }
}

fn write_section(out: &mut dyn Write, section: &Section) -> io::Result<()> {
    let settings: Vec<Vec<String>> = section
        .settings
        .iter()
        .map(|s| {
            let mut row = vec![s.name.clone(), s.value.clone(), sanitize(&s.source)];
            if let Some(note) = &s.note {
                row.push(format!("({note})"));
            }
            row
        })
        .collect();
    crate::table::write(out, "  ", &settings)?;
    let mut checks = Vec::new();
    for check in &section.checks {
        checks.push(vec![
            check.step.to_owned(),
            check.status.name().to_owned(),
            sanitize(&check.detail),
        ]);
        if let Some(hint) = &check.hint {
            checks.push(vec![String::new(), String::new(), format!("hint: {hint}")]);
        }
    }
    crate::table::write(out, "  ", &checks)
}

// The tests read Vault's settings.
#[cfg(all(test, feature = "vault"))]
mod tests {
    use super::*;
    use crate::config::Layer;

    fn env(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn credentials_and_unknown_settings_are_redacted_and_unknown_env_is_left_out() {
        let settings = Settings::merge(
            env(&[
                ("AVP_TYPE", "vault"),
                ("VAULT_TOKEN", "hvs.supersecret"),
                ("VAULT_ADDR", "https://user:pw@vault:8200"),
                ("PATH", "/usr/bin"),
                ("AVP_AUTH_TPYE", "token"),
            ]),
            &[Layer::flat(
                "config file a.yaml",
                [("MY_PASSWORD".to_owned(), "hunter2".to_owned())].into(),
            )],
        );
        let shown = show(&settings, &read_by(Some("vault"), true, false), true);
        let find = |name: &str| shown.iter().find(|s| s.name == name);
        assert_eq!(find("VAULT_TOKEN").unwrap().value, REDACTED);
        assert_eq!(
            find("VAULT_ADDR").unwrap().value,
            "https://[redacted]@vault:8200"
        );
        let typo = find("AVP_AUTH_TPYE").unwrap();
        assert_eq!(typo.value, REDACTED);
        assert_eq!(typo.note.as_deref(), Some("not a secretsubst setting"));
        let unknown = find("MY_PASSWORD").unwrap();
        assert_eq!(
            (unknown.value.as_str(), unknown.source.as_str()),
            (REDACTED, "config file a.yaml")
        );
        assert!(find("PATH").is_none());
        let timeout = find("VAULT_CLIENT_TIMEOUT").unwrap();
        assert_eq!(
            (timeout.value.as_str(), timeout.source.as_str()),
            ("60s", "default")
        );
        let text = format!("{shown:?}");
        assert!(
            !text.contains("supersecret") && !text.contains("hunter2") && !text.contains("pw@"),
            "{text}"
        );
    }

    #[test]
    fn settings_of_another_backend_or_of_the_run_are_flagged_in_a_profile() {
        let settings = Settings::merge(
            Vec::new(),
            &[Layer::flat(
                "config file a.yaml: backends.team",
                [
                    ("AVP_TYPE".to_owned(), "file".to_owned()),
                    ("VAULT_ADDR".to_owned(), "https://vault".to_owned()),
                    ("ARGOCD_EXEC_TIMEOUT".to_owned(), "30s".to_owned()),
                ]
                .into(),
            )],
        );
        let shown = show(&settings, &read_by(Some("file"), false, false), false);
        let note = |name: &str| shown.iter().find(|s| s.name == name).unwrap().note.clone();
        assert_eq!(
            note("VAULT_ADDR").as_deref(),
            Some("not read by this profile's backend")
        );
        assert_eq!(
            note("ARGOCD_EXEC_TIMEOUT").as_deref(),
            Some("read only from the flat settings, not from a profile")
        );
        assert_eq!(note("AVP_TYPE"), None);
    }
}
