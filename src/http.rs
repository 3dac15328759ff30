//! What the two HTTP commands, `serve` and `label`, share: binding their
//! address with an error a user can act on, the async runtime, and the stop
//! signal (SIGTERM or Ctrl-C).

use std::future::Future;
use std::net::TcpListener;

use crate::{Error, Result};

/// Binds `addr` for `command`, ready for tokio; a port in use is an error that says so.
pub fn bind(addr: &str, command: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::Other(format!(
            "--addr {addr}: the port is in use (another `stancekit {command}`, or another program); \
             pick another port, or port 0 for any free one"
        )),
        _ => Error::Other(format!("--addr {addr}: {e}")),
    })?;
    listener.set_nonblocking(true).map_err(|e| Error::Other(format!("--addr {addr}: {e}")))?;
    Ok(listener)
}

/// A multi-threaded tokio runtime (`threads` workers, or one per core).
pub fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder.enable_all().build().map_err(|e| Error::Other(format!("starting the HTTP runtime: {e}")))
}

/// Listens for SIGTERM and Ctrl-C from now on (so that one sent as soon as the
/// address is printed is not missed); the future resolves on either. Call
/// inside the runtime.
pub fn stop_signal() -> Result<impl Future<Output = ()>> {
    let listen = |e: std::io::Error| Error::Other(format!("listening for signals: {e}"));
    #[cfg(unix)]
    let stopped = {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) =
            (signal(SignalKind::terminate()).map_err(listen)?, signal(SignalKind::interrupt()).map_err(listen)?);
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    };
    #[cfg(not(unix))]
    let stopped = {
        let _ = listen;
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    Ok(stopped)
}
