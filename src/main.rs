use std::process::ExitCode;

fn main() -> ExitCode {
    stancekit::runtime::init();
    stancekit::logging::init();
    match stancekit::cli::run_from_env() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", stancekit::cli::error_message(&err));
            // A run stopped by a signal (its checkpoint saved) ends as the signal would.
            if let Some(signal) = stancekit::commands::stopped_by() {
                stancekit::commands::end_as_signal(signal);
            }
            ExitCode::FAILURE
        }
    }
}
