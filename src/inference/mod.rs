//! Running a model over many inputs: length-sorted batches, results in input order.

pub mod embed;
pub mod predict;
pub mod segment;

pub use crate::input::{open_records, read_texts, InputFormat, ReadOptions, Record, Records, Span, TextItem};
// predict.rs names the readers by their old place.
use crate::input;
