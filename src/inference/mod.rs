//! Running a model over many inputs: length-sorted batches, results in input order.

pub mod embed;
mod input;
pub mod predict;
pub mod segment;

pub use input::{open_records, read_texts, InputFormat, ReadOptions, Record, Records, Span, TextItem};
