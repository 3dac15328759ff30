//! stancekit: where does a sentence stand on a target?
//!
//! Data flows one way: files → [`data`] records → encoded batches → model →
//! predictions → metrics → report.

pub mod cli;
pub mod data;
pub mod error;
pub mod io;
pub mod logging;

pub use error::{Error, Problem, Problems, Result};
