use std::process::ExitCode;

use clap::Parser as _;
use secretsubst::cli::Cli;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(secretsubst::error::panic_hook));
    if std::env::args_os().len() <= 1 {
        // AVP prints its help on stdout and succeeds when run without arguments.
        return secretsubst::cli::print_help();
    }
    let cli = Cli::parse();
    secretsubst::logging::init(cli.verbose());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| secretsubst::run(cli)));
    secretsubst::signals::hold_if_interrupted();
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("{}", secretsubst::error::render(&err));
            ExitCode::from(secretsubst::error::exit_code(&err))
        }
        // The panic hook has printed its line.
        Err(_) => ExitCode::FAILURE,
    }
}
