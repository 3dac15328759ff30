//! What a checkpoint records beyond the weights, so that a resumed run ends
//! exactly where an uninterrupted one would (transformers' `trainer_state.json`).

use std::path::Path;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One evaluation on the dev set: a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalLog {
    /// Fractional epoch at the evaluation.
    pub epoch: f64,
    pub step: usize,
    pub learning_rate: f64,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    pub eval_loss: f64,
    pub eval_accuracy: f64,
    pub eval_macro_f1: f64,
    pub eval_f_avg: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub global_step: usize,
    pub total_steps: usize,
    /// The epoch in progress (0-based) and how many of its micro-batches are done.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub best_metric: Option<f64>,
    pub best_step: Option<usize>,
    pub evals_without_improvement: usize,
    pub log_history: Vec<EvalLog>,
    /// Training loss summed since the last evaluation, and over how many micro-batches.
    pub loss_sum: f64,
    pub loss_count: usize,
    pub dropout_rng: ChaCha8Rng,
    pub finished: bool,
}

impl TrainerState {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    /// `metrics.jsonl`, rewritten whole from the history so it always matches the checkpoint.
    pub fn save_metrics(&self, path: &Path) -> Result<()> {
        crate::io::write_jsonl(path, &self.log_history)
    }
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(e.to_string()))?;
    crate::io::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()).map_err(|e| Error::io(path, e)))
}
