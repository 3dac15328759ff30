//! stancekit: where does a sentence stand on a target?
//!
//! Data flows one way: files (read by [`input`]) → [`data`] records → [`tokenization`] batches →
//! [`model`] → predictions → metrics → report.
//!
//! The docs describe the internals too: read them with `cargo doc --document-private-items`,
//! where their links to private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod active;
pub mod cli;
pub mod commands;
pub mod data;
pub mod device;
pub mod error;
pub mod evaluation;
pub mod http;
pub mod inference;
pub mod input;
pub mod io;
pub mod kernels;
pub mod labeling;
pub mod logging;
pub mod model;
pub mod reporting;
pub mod resolve;
pub mod runtime;
pub mod serving;
pub mod testing;
pub mod text;
pub mod tokenization;
pub mod training;

pub use error::{Error, Problem, Problems, Result};
