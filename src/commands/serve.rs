//! `stancekit serve`: load the model, start the batcher, answer HTTP on
//! `--addr` until SIGTERM or Ctrl-C, then stop accepting, finish what is in
//! flight, and return.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::Stopped;
use crate::serving::batcher::BatchOptions;
use crate::serving::server::{router, Limits, Service, Settings};
use crate::{Error, Result};

/// Configuration of `stancekit serve`.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Trained model folder (as `stancekit train` writes it) or Hugging Face hub id.
    #[arg(long)]
    pub model: String,
    /// Address to listen on (localhost only by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// (target, sentence) pairs merged from concurrent requests into one model
    /// call at most, sorted by length there as `predict` sorts a window.
    #[arg(long, default_value_t = 512, value_parser = super::count)]
    pub max_batch_size: usize,
    /// How long a request waits for others to join its model call.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Pairs per forward pass inside a model call.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// Requests waiting for the model at most; more are answered 429.
    #[arg(long, default_value_t = 256, value_parser = super::count)]
    pub queue_size: usize,
    /// Texts (or records) per request at most; more are answered 413.
    #[arg(long, default_value_t = 64, value_parser = super::count)]
    pub max_texts: usize,
    /// Bytes per request body at most; more are answered 413.
    #[arg(long, default_value_t = 1 << 20, value_parser = super::at_least_one::<usize>)]
    pub max_body_bytes: usize,
    /// A request not answered this long after it arrived is answered 504 (its
    /// body not received by then, 408; its headers, the connection is closed).
    #[arg(long, default_value_t = 30_000, value_parser = super::at_least_one::<u64>)]
    pub timeout_ms: u64,
    /// Connections open at once at most; more wait in the listen queue until one closes.
    #[arg(long, default_value_t = 1024, value_parser = super::count)]
    pub max_connections: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    #[serde(flatten)]
    pub precision: super::PrecisionArgs,
}

impl ServeConfig {
    fn settings(&self) -> Settings {
        Settings {
            batching: BatchOptions {
                max_pairs: self.max_batch_size,
                max_wait: Duration::from_millis(self.max_wait_ms),
                queue: self.queue_size,
            },
            batch_size: self.batch_size,
            limits: Limits {
                max_texts: self.max_texts,
                max_body_bytes: self.max_body_bytes,
                timeout: Duration::from_millis(self.timeout_ms),
                max_connections: self.max_connections,
            },
        }
    }
}

/// Runs `stancekit serve` until a stop signal, then drains and returns.
pub fn run(config: &ServeConfig) -> Result<()> {
    super::tokenize_serially();
    let (dir, classifier) = super::load_classifier(&config.model, &config.device, &config.precision)?;
    let (service, model_thread) = Service::start(classifier, &dir, config.settings())?;
    let listener = crate::http::bind(&config.addr, "serve")?;
    let runtime = crate::http::runtime(None)?;
    let drain = Duration::from_millis(config.timeout_ms);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Other(format!("--addr {}: {e}", config.addr)))?;
        let addr = listener.local_addr().map_err(|e| Error::Other(format!("--addr {}: {e}", config.addr)))?;
        let signals = crate::http::stop_signals()?;
        let precision = service.info["precision"].as_str().unwrap_or_default().to_string();
        eprintln!("stancekit serve: listening on http://{addr} (model {}, {precision})", config.model);
        // A connection that never finishes its request (a client gone quiet
        // mid-body) does not hold the stop for longer than a request may take.
        let bounds = crate::http::ConnectionBounds { max_open: config.max_connections, header_time: drain, drain };
        let stop = signals.nth(1);
        let stopping = async move {
            stop.await;
            eprintln!("stancekit serve: stopping; finishing the requests in flight (a second signal stops at once)");
        };
        match crate::http::serve_router(listener, router(service), bounds, stopping, signals.nth(2)).await {
            Stopped::Drained => {}
            Stopped::TimedOut => eprintln!(
                "stancekit serve: connections still open {} ms after the stop; closing them",
                drain.as_millis()
            ),
            Stopped::Forced => eprintln!("stancekit serve: a second stop signal; closing the connections now"),
        }
        Ok::<(), Error>(())
    })?;
    // Ends the connections' tasks (none are left after a clean drain), and with
    // them the last senders of the queue: the model thread then ends. A model
    // call still running (a request that timed out, or one cut off by a second
    // signal) has no one left to answer: neither is waited for past a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    runtime.shutdown_timeout(Duration::from_millis(500));
    while !model_thread.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !model_thread.is_finished() {
        eprintln!("stancekit serve: stopped, leaving a model call no client waits for");
        return Ok(());
    }
    model_thread.join().map_err(|_| Error::Other("the model thread panicked".into()))?;
    eprintln!("stancekit serve: stopped");
    Ok(())
}
