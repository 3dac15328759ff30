//! Scoring predictions against gold labels: metrics with bootstrap intervals,
//! calibration, and the baselines every report shows.

pub mod align;
pub mod baselines;
pub mod bootstrap;
pub mod calibration;
pub mod cv;
pub mod gold;
pub mod logistic;
pub mod metrics;
pub mod predictions;
pub mod results;
pub mod tfidf;

pub use metrics::{single_answer, single_answer_warning, Confusion, LabelScores, Scores};

#[cfg(test)]
mod sklearn_tests;
