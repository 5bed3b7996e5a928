use std::process::ExitCode;

use clap::Parser as _;
use secretsubst::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    secretsubst::logging::init(cli.verbose());
    match secretsubst::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", secretsubst::render_error(&err));
            ExitCode::from(secretsubst::exit_code(&err))
        }
    }
}
