use std::process::ExitCode;

fn main() -> ExitCode {
    stancekit::runtime::init();
    stancekit::logging::init();
    let result = stancekit::cli::run_from_env();
    if let Err(err) = &result {
        eprintln!("error: {}", stancekit::cli::error_message(err));
    }
    // A run a signal asked to stop (its checkpoint saved, or its work done
    // past the last step that could stop) ends as the signal would.
    if let Some(signal) = stancekit::commands::stopped_by() {
        stancekit::commands::end_as_signal(signal);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
