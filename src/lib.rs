//! secretsubst: replace `<path:…#key>` placeholders in Kubernetes manifests with secrets.
//!
//! Data flows one way: read → parse → collect references → resolve → substitute → write.

pub mod backend;
pub mod check;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod doctor;
pub mod error;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod logging;
pub mod manifest;
pub mod placeholder;
pub mod refs;
pub mod resolve;
pub mod secret;
pub mod setting_file;
pub mod settings_secret;
pub mod signals;
#[cfg(feature = "sops")]
pub mod sops;
pub mod substitute;
pub mod table;
pub mod value;
pub mod wait;

use std::io::{self, Write};
use std::time::Instant;

use anyhow::{anyhow, bail};

use cli::{Cli, Command, Input};
use config::{Config, Layer, Settings};
use deadline::Deadline;
use error::{Cause, Diagnostic, Errors};
use manifest::input::Source;
use manifest::{File, Output};
use substitute::Rules;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("secretsubst {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Generate(args) => {
            ensure_stdout_is_open()?;
            signals::install()?;
            let (mut config, inputs, name) = load(&args.input, !args.disable_token_cache)?;
            config.mask = args.mask;
            let rendered = process(&inputs, &config, &name, args.input.allow_empty)?;
            print(|out| rendered.write_to(out))
        }
        Command::Check(args) => {
            ensure_stdout_is_open()?;
            signals::install()?;
            let (config, inputs, name) = load(&args.input, !args.disable_token_cache)?;
            let rows = check::rows(
                &inputs,
                &config,
                &name,
                args.input.allow_empty,
                args.offline,
            )?;
            print(|out| check::write(out, &rows, args.format))?;
            check::verdict(&rows)
        }
        Command::Doctor(args) => {
            ensure_stdout_is_open()?;
            signals::install()?;
            let read = read_settings(&args.sources)?;
            let report = doctor::report(read, &args.profiles)?;
            print(|out| doctor::write(out, &report, args.format))?;
            report.verdict()
        }
        Command::Refs(args) => {
            ensure_stdout_is_open()?;
            signals::install()?;
            let (config, inputs, name) = load(&args.input, false)?;
            let refs = refs::collect(&inputs, &config, &name, args.input.allow_empty)?;
            print(|out| refs::write(out, &refs, args.format))
        }
    }
}

/// Writes the run's output to stdout, once nothing can fail any more.
fn print(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    signals::hold_if_interrupted();
    let _waiting = wait::on("the reader of stdout");
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    write(&mut stdout)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            // A consumer must be able to tell that it did not get the whole output.
            io::ErrorKind::BrokenPipe => {
                anyhow!("cannot write to stdout: the reader closed it before the output ended")
            }
            _ => anyhow!("cannot write to stdout: {e}"),
        })
}

/// A closed stdout must fail the run, not "succeed" with no output. Rust's start-up reopens a
/// closed descriptor 0-2 on `/dev/null` for reading and writing, which no shell redirection
/// does (`>/dev/null` opens it write-only), so that is what a closed stdout looks like here.
fn ensure_stdout_is_open() -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL) };
    let reopened = flags != -1
        && flags & libc::O_ACCMODE == libc::O_RDWR
        && std::fs::metadata("/dev/stdout")
            .ok()
            .zip(std::fs::metadata("/dev/null").ok())
            .is_some_and(|(out, null)| out.rdev() == null.rdev() && out.ino() == null.ino());
    if flags == -1 || reopened {
        bail!("stdout is closed, so the manifests cannot be printed");
    }
    Ok(())
}

/// What the settings sources hold, before they are validated.
pub struct SettingsRead {
    pub settings: Settings,
    pub named: config::Named,
    /// The run deadline, started before the `-s` Secret was read so that it bounds that read.
    pub deadline: Deadline,
    /// Why the `-s` Secret could not be read: `doctor` reports it, every other command fails.
    pub secret_error: Option<anyhow::Error>,
}

/// The environment, the `-c` file and the `-s` Secret, merged: the -c file beats the -s Secret;
/// the environment beats both.
fn read_settings(sources: &cli::Sources) -> anyhow::Result<SettingsRead> {
    // vars() would panic on a variable that is not UTF-8; such variables cannot be settings.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut layers: Vec<Layer> = Vec::new();
    if let Some(path) = &sources.config_path {
        layers.push(config::read_config_file(path)?);
    }
    let deadline = config::deadline(&Settings::merge(env.clone(), &layers))?;
    let mut secret_error = None;
    if let Some(spec) = &sources.secret_name {
        match settings_secret::read(spec, &deadline) {
            Ok(layer) => layers.push(layer),
            Err(e) => secret_error = Some(e),
        }
    }
    Ok(SettingsRead {
        settings: Settings::merge(env, &layers),
        named: config::profiles::merge(&layers),
        deadline,
        secret_error,
    })
}

/// The settings and the input texts of a command, and the name the input goes by.
fn load(args: &Input, cache_credentials: bool) -> anyhow::Result<(Config, Vec<Source>, String)> {
    let read = read_settings(&args.sources)?;
    if let Some(e) = read.secret_error {
        return Err(e);
    }
    let mut config = Config::new(read.settings, read.named)?;
    config.deadline = read.deadline;
    config.cache_credentials = cache_credentials;
    let (inputs, name) = match args.path.as_deref() {
        _ if !args.command.is_empty() => {
            let source = manifest::pipeline::run(&args.command, &config.deadline)?;
            let name = source.name.clone();
            (vec![source], name)
        }
        Some("-") | None => (
            manifest::input::read("-", &config.deadline).map_err(Errors::from_lines)?,
            "<stdin>".to_owned(),
        ),
        Some(path) => (
            manifest::input::read(path, &config.deadline).map_err(Errors::from_lines)?,
            path.to_owned(),
        ),
    };
    let inputs = decrypt_manifests(&config, inputs)?;
    Ok((config, inputs, name))
}

/// With `AVP_SOPS_MANIFESTS=decrypt`, the input's SOPS documents decrypted in place, with the
/// identities of the flat settings (and sops's own sources).
#[cfg(feature = "sops")]
fn decrypt_manifests(config: &Config, inputs: Vec<Source>) -> anyhow::Result<Vec<Source>> {
    if !config.sops_manifests {
        return Ok(inputs);
    }
    let settings = &config.profiles.default_profile().settings;
    let identities = || sops::Identities::from_settings(settings);
    let _waiting = wait::on("the decryption of the SOPS manifests");
    manifest::sops::decrypt(inputs, &identities).map_err(|e| Errors(e).into())
}

#[cfg(not(feature = "sops"))]
fn decrypt_manifests(config: &Config, inputs: Vec<Source>) -> anyhow::Result<Vec<Source>> {
    if config.sops_manifests {
        bail!("AVP_SOPS_MANIFESTS: this build of secretsubst was made without SOPS");
    }
    Ok(inputs)
}

/// The output of a successful run, written straight from the inputs: unchanged documents are
/// never copied in memory.
pub struct Rendered<'a> {
    files: Vec<File<'a>>,
    outputs: Vec<Vec<Output<'a>>>,
}

impl Rendered<'_> {
    pub fn write_to(&self, mut out: &mut dyn Write) -> io::Result<()> {
        manifest::write(&mut out, &self.files, &self.outputs)
    }

    /// The whole output as one string.
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to memory cannot fail");
        String::from_utf8(out).expect("the output is built from UTF-8 text")
    }
}

/// What parsing and collecting found: the files, the plan (`None` for allowed empty input) and
/// the errors so far. Empty input is an error unless `allow_empty`.
pub fn collect<'a>(
    inputs: &'a [Source],
    config: &Config,
    name: &str,
    allow_empty: bool,
) -> anyhow::Result<(Vec<File<'a>>, Option<substitute::Plan<'a>>, Vec<Diagnostic>)> {
    let mut errors = Vec::new();
    let files: Vec<File<'a>> = inputs
        .iter()
        .filter_map(|source| manifest::split(source).map_err(|e| errors.push(*e)).ok())
        .collect();
    let rules = Rules {
        path_validation: config.path_validation.as_ref(),
        profiles: &config.profiles,
        mask: config.mask,
    };
    let plan = substitute::collect(&files, &rules);
    if errors.is_empty() && plan.manifests == 0 && !plan.has_errors() {
        if allow_empty {
            return Ok((files, None, errors));
        }
        bail!(
            "no Kubernetes manifests in {name}: refusing to print empty output, which would make Argo CD prune the app (pass --allow-empty to allow it)"
        );
    }
    Ok((files, Some(plan), errors))
}

/// Substitutes the placeholders of `inputs`: parse → collect → resolve → substitute. `name`
/// names the input in the empty-input error. Every error is reported: a file that does not
/// parse hides none of the others' errors.
pub fn process<'a>(
    inputs: &'a [Source],
    config: &Config,
    name: &str,
    allow_empty: bool,
) -> anyhow::Result<Rendered<'a>> {
    let started = Instant::now();
    let (files, plan, mut errors) = collect(inputs, config, name, allow_empty)?;
    let Some(plan) = plan else {
        return Ok(Rendered {
            files: Vec::new(),
            outputs: Vec::new(),
        });
    };
    let parsed = started.elapsed();
    let fetch_started = Instant::now();
    let resolved = match resolve::resolve(config, &plan.refs) {
        Ok(resolved) => resolved,
        Err(e) => {
            errors.extend(plan.into_errors());
            errors.push(Diagnostic::new(Cause::Other(format!("{e:#}"))));
            return Err(Errors(errors).into());
        }
    };
    let fetch = fetch_started.elapsed();
    let substitute_started = Instant::now();
    let (documents, placeholders, unique) = (plan.documents, plan.placeholders, plan.refs.len());
    let outputs = {
        let _waiting = wait::on("the substitution of the placeholders");
        substitute::apply(plan, &resolved.secrets)
    };
    if config.profiles.configured() {
        for (origin, secrets, requests) in &resolved.profiles {
            tracing::debug!("{origin}: unique secrets: {secrets}, backend requests: {requests}");
        }
    }
    tracing::debug!(
        "documents: {documents}, placeholders: {placeholders}, unique secrets: {unique}, backend requests: {}, parse: {parsed:.1?}, fetch: {fetch:.1?}, substitute: {:.1?}",
        resolved.requests,
        substitute_started.elapsed()
    );
    match outputs {
        Ok(outputs) if errors.is_empty() && resolved.errors.is_empty() => {
            Ok(Rendered { files, outputs })
        }
        Ok(_) => {
            errors.extend(resolved.errors);
            Err(Errors(errors).into())
        }
        Err(more) => {
            errors.extend(more);
            errors.extend(resolved.errors);
            Err(Errors(errors).into())
        }
    }
}
