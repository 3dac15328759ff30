use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    stancekit::logging::init();
    match stancekit::cli::run(stancekit::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
