//! Logging set-up shared by the binary and the tests.

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only for a terminal, and never under NO_COLOR (no-color.org): a
    // log file or a pipe would get the escape codes as text.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).try_init();
}
