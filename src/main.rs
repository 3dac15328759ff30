use std::process::ExitCode;

fn main() -> ExitCode {
    stancekit::logging::init();
    match stancekit::cli::run_from_env() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
