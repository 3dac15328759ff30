//! What the two HTTP commands, `serve` and `label`, share: binding their
//! address with an error a user can act on, the async runtime, and the stop
//! signal (SIGTERM or Ctrl-C).

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Error, Result};

/// How long a request's body may take to arrive, and how large it may be.
#[derive(Debug, Clone, Copy)]
pub struct BodyBounds {
    pub time: Duration,
    pub max_bytes: usize,
    /// The flags that set them, named in the errors (`" (--max-body-bytes)"`), or "".
    pub flags: [&'static str; 2],
}

/// When a request arrived (its headers read): `bound_body` puts it in the
/// request's extensions, so that a handler's own deadline counts the time the
/// body took from the same budget.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub std::time::Instant);

/// Middleware for both servers: a body declared over the bound is answered
/// 413 before any of it is read, and one that does not arrive within the time
/// (a client that sends slowly, or stops) 408, so a stalled client holds its
/// connection, and a stop waiting for it, no longer than that. The body is
/// read here, whole, and handed on. Errors are JSON, as the servers' own:
/// `{"error": "...", "field": "body", "status": N}`.
pub async fn bound_body(State(bounds): State<BodyBounds>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(Arrived(std::time::Instant::now()));
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = || {
        let message = format!("body: over {} bytes{}", bounds.max_bytes, bounds.flags[1]);
        body_error(StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    if declared.is_some_and(|n| n > bounds.max_bytes as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(bounds.time, axum::body::to_bytes(body, bounds.max_bytes)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) if over_limit(&e) => too_large(),
        Ok(Err(e)) => body_error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        Err(_) => {
            let message = format!("body: not received within {} ms{}", bounds.time.as_millis(), bounds.flags[0]);
            body_error(StatusCode::REQUEST_TIMEOUT, message)
        }
    }
}

/// Whether reading a body stopped at its length limit (not at a client gone, say).
fn over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn body_error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": message, "field": "body", "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

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
/// address is printed is not missed), counting them. Call inside the runtime.
pub fn stop_signals() -> Result<StopSignals> {
    let listen = |e: std::io::Error| Error::Other(format!("listening for signals: {e}"));
    let (count, counted) = tokio::sync::watch::channel(0u32);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) =
            (signal(SignalKind::terminate()).map_err(listen)?, signal(SignalKind::interrupt()).map_err(listen)?);
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    signal = term.recv() => signal,
                    signal = int.recv() => signal,
                };
                // None: the stream ended with the runtime; no signal will come.
                if received.is_none() {
                    break;
                }
                count.send_modify(|n| *n += 1);
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = listen;
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                count.send_modify(|n| *n += 1);
            }
        });
    }
    Ok(StopSignals(counted))
}

/// The stop signals received: the first asks for a graceful stop, a second
/// (an impatient Ctrl-C) for an immediate one, as uvicorn and gunicorn do.
#[derive(Clone)]
pub struct StopSignals(tokio::sync::watch::Receiver<u32>);

impl StopSignals {
    /// Resolves once `n` signals have arrived.
    pub fn nth(&self, n: u32) -> impl Future<Output = ()> + use<> {
        let mut counted = self.0.clone();
        async move {
            if counted.wait_for(|&count| count >= n).await.is_err() {
                // The listener is gone only with the runtime: no signal will come.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// How a stop ended ([`serve_router`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished its request and closed.
    Drained,
    /// `drain` passed with connections still open; they were dropped.
    TimedOut,
    /// The `now` future resolved first (a second signal); they were dropped.
    Forced,
}

/// What bounds the connections themselves: how many may be open at once
/// (beyond that, new ones wait in the listen queue until one closes), how
/// long a client may take to send a request's headers, and how long a stop
/// waits for the requests in flight.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionBounds {
    pub max_open: usize,
    pub header_time: Duration,
    pub drain: Duration,
}

/// Serves `router` on `listener` until `stop` resolves; then accepts no more,
/// lets each connection finish the request it is in, and returns when all are
/// closed, or once `bounds.drain` has passed or `now` resolved (the
/// connections left are then dropped). HTTP/1.1, one task per connection (hyper).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    bounds: ConnectionBounds,
    stop: impl Future<Output = ()>,
    now: impl Future<Output = ()>,
) -> Stopped {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(bounds.max_open.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Finished connections' tasks are kept until collected: collect them.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = async {
                let permit = open.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
        };
        let (Ok(permit), Ok((stream, _))) = accepted else {
            // Out of file descriptors, say: wait a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let connection = connection(stream, router.clone(), bounds.header_time, stopped.clone());
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        done = tokio::time::timeout(bounds.drain, drained) => if done.is_ok() { Stopped::Drained } else { Stopped::TimedOut },
        () = now => Stopped::Forced,
    }
}

/// One connection, asked to close after its request in flight once `stopped` turns true.
async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    header_time: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_time);
    let stream = WriteBound { stream, limit: header_time, stalled: None };
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopped.wait_for(|&stop| stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// A stream whose writes may stall no longer than `limit`: a client that does
/// not read its answer (its receive window full) then loses the connection,
/// as one that does not send its request does. hyper has no write timeout.
struct WriteBound<S> {
    stream: S,
    limit: Duration,
    /// Armed while a write waits; a write that goes through disarms it.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteBound<S> {
    fn bound<T>(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let message = format!("the client read none of its answer for {} ms", limit.as_millis());
                Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteBound<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteBound<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.bound(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.bound(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.bound(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Writes into a peer that reads nothing fail once stalled for the limit;
    /// writes that go through never do.
    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_limit() {
        // The peer is kept open, reading nothing.
        let (ours, _peer) = tokio::io::duplex(64);
        let mut bound = WriteBound { stream: ours, limit: Duration::from_millis(200), stalled: None };
        bound.write_all(&[1u8; 64]).await.unwrap();
        let started = std::time::Instant::now();
        let err = bound.write_all(&[2u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        // Read by its peer, a stream writes on past the limit.
        let (ours, mut reader) = tokio::io::duplex(64);
        let mut bound = WriteBound { stream: ours, limit: Duration::from_millis(50), stalled: None };
        let read = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut all).await.map(|_| all.len())
        });
        for _ in 0..20 {
            bound.write_all(&[3u8; 64]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(bound);
        assert_eq!(read.await.unwrap().unwrap(), 20 * 64);
    }
}
