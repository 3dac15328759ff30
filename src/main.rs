use std::process::ExitCode;

fn main() -> ExitCode {
    stancekit::runtime::init();
    stancekit::logging::init();
    match stancekit::cli::run_from_env() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", stancekit::cli::error_message(&err));
            ExitCode::FAILURE
        }
    }
}
