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
    /// The rate at the evaluation; absent for the frozen recipe, which fits its
    /// classifiers by L-BFGS with no learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
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
    /// What the run trains and selects on ([`data_fingerprint`] of each), so
    /// that `--resume` on other data is refused; absent in checkpoints from
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data: Option<String>,
    /// The working directory the run started in: its settings' relative paths
    /// are read from there on `--resume`, whichever folder that is run from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_in: Option<std::path::PathBuf>,
}

/// The training pairs' count and an FNV-1a hash of their tokens and labels,
/// in order: stable across builds and machines, unlike std's hasher.
pub fn data_fingerprint(train: &[super::Example]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |word: u32| {
        for byte in word.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for example in train {
        example.encoded.ids.iter().for_each(|&id| eat(id));
        eat(u32::MAX);
        eat(example.label);
    }
    format!("{} pairs, {hash:016x}", train.len())
}

impl TrainerState {
    pub fn load(path: &Path) -> Result<Self> {
        crate::io::read_json(path)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_json(path, self)
    }

    /// `metrics.jsonl`, rewritten whole from the history so it always matches the checkpoint.
    pub fn save_metrics(&self, path: &Path) -> Result<()> {
        crate::io::write_jsonl(path, &self.log_history)
    }
}

/// The dev evaluations a training run logged in its `metrics.jsonl`; `None`
/// when the file is missing or empty.
pub fn read_eval_logs(path: &Path) -> Result<Option<Vec<EvalLog>>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    let logs = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Other(format!("{}:{}: {e}", path.display(), i + 1))))
        .collect::<Result<Vec<EvalLog>>>()?;
    Ok((!logs.is_empty()).then_some(logs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_logs_are_read_from_metrics_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        assert_eq!(read_eval_logs(&path).unwrap(), None);
        let log = |epoch: f64, f: f64| EvalLog {
            epoch,
            step: (epoch * 10.0) as usize,
            learning_rate: Some(1e-4),
            train_loss: 0.9,
            eval_loss: 0.8,
            eval_accuracy: f,
            eval_macro_f1: f,
            eval_f_avg: f,
        };
        let logs = vec![log(1.0, 0.5), log(2.0, 0.6)];
        crate::io::write_jsonl(&path, &logs).unwrap();
        assert_eq!(read_eval_logs(&path).unwrap().unwrap(), logs);
        std::fs::write(&path, "{}\n").unwrap();
        assert!(read_eval_logs(&path).unwrap_err().to_string().contains("metrics.jsonl:1:"));
    }
}
