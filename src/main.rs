use std::process::ExitCode;

fn main() -> ExitCode {
    stancekit::malloc::tune_for_tensors();
    stancekit::logging::init();
    match stancekit::cli::run_from_env() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
