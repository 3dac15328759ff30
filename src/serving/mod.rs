//! `stancekit serve`'s library side: an HTTP service over one classifier that
//! merges concurrent requests into model calls ([`batcher`]), answers with the
//! rows `predict` writes ([`server`]), checks requests and shapes errors
//! ([`api`]) and counts what it does ([`metrics`]).

pub mod api;
pub mod batcher;
pub mod metrics;
pub mod server;
