//! Scoring predictions against gold labels.

pub mod metrics;

pub use metrics::{Confusion, LabelScores, Scores};
