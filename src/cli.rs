//! Command-line surface, compatible with argocd-vault-plugin's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "secretsubst",
    about = "Replace <path:...#key> placeholders in Kubernetes manifests with secrets",
    version
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the manifests of PATH (a file, a directory, or - for stdin) with placeholders replaced
    Generate(Generate),
    /// Resolve every placeholder of PATH and report each one (never a value): for CI dry runs
    Check(Check),
    /// Print the unique (profile, path, version) secrets the manifests of PATH use, without
    /// contacting a backend
    Refs(Refs),
    /// Show every profile's effective settings and where each came from (credentials redacted),
    /// and check that its backend answers and accepts its login
    Doctor(Doctor),
    /// Print the version
    Version,
}

/// Where the manifests and the settings come from; the same for every command.
#[derive(Debug, Args)]
pub struct Input {
    /// A manifest file, a directory of them, or - for stdin
    #[arg(required_unless_present = "command", conflicts_with = "command")]
    pub path: Option<String>,

    /// Pipeline mode: the renderer to run (after `--`, e.g. `-- helm template app .`); its
    /// stdout is the input, its stderr passes through, and its failure is secretsubst's
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    #[command(flatten)]
    pub sources: Sources,

    /// Verbose logs on stderr (accepted for AVP compatibility: they never contain secret values)
    #[arg(long)]
    pub verbose_sensitive_output: bool,

    /// Succeed when the input holds no manifest
    #[arg(long)]
    pub allow_empty: bool,
}

/// Where settings come from besides the environment.
#[derive(Debug, Args)]
pub struct Sources {
    /// Configuration file (YAML, JSON or dotenv) with AVP_* and backend settings
    #[arg(short = 'c', long = "config-path")]
    pub config_path: Option<PathBuf>,

    /// Kubernetes Secret holding the settings, as NAME or NAMESPACE:NAME
    #[arg(short = 's', long = "secret-name")]
    pub secret_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct Doctor {
    #[command(flatten)]
    pub sources: Sources,

    /// Check only this profile (repeatable; `default` names the flat settings)
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,

    /// `text`: a block per profile and a summary line; `json`: one object
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Verbose logs on stderr (they never contain secret values or credentials)
    #[arg(long)]
    pub verbose_sensitive_output: bool,
}

#[derive(Debug, Args)]
pub struct Generate {
    #[command(flatten)]
    pub input: Input,

    /// Neither read nor write the cached Vault token
    #[arg(long)]
    pub disable_token_cache: bool,

    /// The real render with every injected value replaced by `(masked PROFILE:PATH#KEY)`, for
    /// reviewing rendered diffs in CI logs
    #[arg(long)]
    pub mask: bool,
}

#[derive(Debug, Args)]
pub struct Check {
    #[command(flatten)]
    pub input: Input,

    /// Check grammar, modifiers, annotations and profile names only; contact no backend
    #[arg(long)]
    pub offline: bool,

    /// `text`: an aligned table and a summary line; `json`: an array of row objects
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Neither read nor write the cached Vault token
    #[arg(long)]
    pub disable_token_cache: bool,
}

#[derive(Debug, Args)]
pub struct Refs {
    #[command(flatten)]
    pub input: Input,

    /// `text`: one `PROFILE<TAB>PATH[<TAB>VERSION]` line each; `json`: an array of objects with
    /// `profile`, `path` and `version`
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl Cli {
    pub fn verbose(&self) -> bool {
        match &self.command {
            Command::Generate(g) => g.input.verbose_sensitive_output,
            Command::Refs(r) => r.input.verbose_sensitive_output,
            Command::Check(c) => c.input.verbose_sensitive_output,
            Command::Doctor(d) => d.verbose_sensitive_output,
            Command::Version => false,
        }
    }
}

/// Prints the help on stdout, as AVP does when run without arguments.
pub fn print_help() -> std::process::ExitCode {
    use clap::CommandFactory as _;
    match Cli::command().print_help() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
