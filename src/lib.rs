//! secretsubst: replace `<path:…#key>` placeholders in Kubernetes manifests with secrets.
//!
//! Data flows one way: read → parse → collect references → resolve → substitute → write.

pub mod backend;
pub mod cli;
pub mod config;
pub mod logging;
pub mod manifest;
pub mod pipeline;
pub mod placeholder;
pub mod resolve;
pub mod secret;
pub mod settings_secret;
pub mod substitute;
pub mod value;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::bail;

use cli::{Cli, Command, Generate};
use config::{Config, Settings};
use manifest::input::Source;
use manifest::{File, Output};
use substitute::Rules;

/// Several errors, reported together, one per line.
#[derive(Debug)]
pub struct Errors(pub Vec<String>);

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for Errors {}

/// The error text for stderr: every error on its own line, each prefixed with `error: `.
pub fn render_error(err: &anyhow::Error) -> String {
    let lines = match err.downcast_ref::<Errors>() {
        Some(Errors(lines)) => lines.clone(),
        None => vec![format!("{err:#}")],
    };
    lines
        .iter()
        .map(|l| format!("error: {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("secretsubst {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Generate(args) => {
            let (config, inputs, name) = load(&args)?;
            let rendered = process(&inputs, &config, &name, args.allow_empty)?;
            let mut stdout = io::BufWriter::new(io::stdout().lock());
            match rendered.write_to(&mut stdout).and_then(|()| stdout.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    bail!("cannot write to stdout: {e}")
                }
                _ => Ok(()),
            }
        }
    }
}

/// The settings and the input texts of `generate`, and the name the input goes by.
fn load(args: &Generate) -> anyhow::Result<(Config, Vec<Source>, String)> {
    // The -c file beats the -s Secret; the environment beats both.
    let mut sources = Vec::new();
    if let Some(path) = &args.config_path {
        sources.push(config::read_config_file(path)?);
    }
    if let Some(spec) = &args.secret_name {
        sources.push(settings_secret::read(spec)?);
    }
    // vars() would panic on a variable that is not UTF-8; such variables cannot be settings.
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut config = Config::from_settings(Settings::merge(env, sources))?;
    config.token_cache = !args.disable_token_cache;
    let (inputs, name) = match args.path.as_deref() {
        _ if !args.command.is_empty() => {
            let source = pipeline::run(&args.command, config.deadline)?;
            let name = source.name.clone();
            (vec![source], name)
        }
        Some("-") | None => (
            manifest::input::read("-").map_err(Errors)?,
            "<stdin>".to_owned(),
        ),
        Some(path) => (
            manifest::input::read(path).map_err(Errors)?,
            path.to_owned(),
        ),
    };
    Ok((config, inputs, name))
}

/// The process exit code for `err`: the renderer's own in pipeline mode, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<pipeline::ChildFailed>()
        .map_or(1, |failed| failed.code)
}

/// The output of a successful run, written straight from the inputs: unchanged documents are
/// never copied in memory.
pub struct Rendered<'a> {
    files: Vec<File<'a>>,
    outputs: Vec<Vec<Output<'a>>>,
}

impl Rendered<'_> {
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        manifest::write(out, &self.files, &self.outputs)
    }

    /// The whole output as one string.
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to memory cannot fail");
        String::from_utf8(out).expect("the output is built from UTF-8 text")
    }
}

/// Substitutes the placeholders of `inputs`. `name` names the input in the empty-input error.
pub fn process<'a>(
    inputs: &'a [Source],
    config: &Config,
    name: &str,
    allow_empty: bool,
) -> anyhow::Result<Rendered<'a>> {
    let started = Instant::now();
    let files = inputs
        .iter()
        .map(manifest::split)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Errors(vec![e]))?;
    let rules = Rules {
        path_validation: config.path_validation.as_ref(),
    };
    let plan = substitute::collect(&files, &rules);
    let parsed = started.elapsed();
    if plan.manifests == 0 && !plan.has_errors() {
        if allow_empty {
            return Ok(Rendered {
                files: Vec::new(),
                outputs: Vec::new(),
            });
        }
        bail!(
            "no Kubernetes manifests in {name}: refusing to print empty output, which would make Argo CD prune the app (pass --allow-empty to allow it)"
        );
    }
    let fetch_started = Instant::now();
    let unique = plan.refs.len();
    let (fetched, requests) = if plan.refs.is_empty() {
        Default::default()
    } else {
        let selected = backend::select(config)?;
        let policy = resolve::Policy {
            max_concurrency: config.max_concurrency,
            max_retries: config.max_retries,
            backoff: Duration::from_millis(250),
        };
        let refs = plan.refs.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let resolving = resolve::resolve(&selected, refs, policy);
        let resolved = match config.deadline {
            None => runtime.block_on(resolving)?,
            Some(deadline) => runtime
                .block_on(tokio::time::timeout(deadline.remaining(), resolving))
                .map_err(|_| {
                    anyhow::anyhow!(deadline.exceeded(&format!("the {} backend", selected.name)))
                })??,
        };
        (resolved.secrets, resolved.requests)
    };
    let fetch = fetch_started.elapsed();
    let substitute_started = Instant::now();
    let (documents, placeholders) = (plan.documents, plan.placeholders);
    let outputs = substitute::apply(plan, &fetched);
    tracing::debug!(
        "documents: {documents}, placeholders: {placeholders}, unique secrets: {unique}, backend requests: {requests}, parse: {parsed:.1?}, fetch: {fetch:.1?}, substitute: {:.1?}",
        substitute_started.elapsed()
    );
    let outputs = outputs.map_err(Errors)?;
    Ok(Rendered { files, outputs })
}
