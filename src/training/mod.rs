//! Fine-tuning the whole encoder and a classification head on (target
//! description, sentence) pairs ([`Trainer`]; `stancekit train` runs it from
//! `commands/train.rs`), writing a run folder that both stancekit and
//! transformers load.
//!
//! Run folder: the best model at the top (`config.json`, `model.safetensors`,
//! tokenizer files), `train_config.json`, `trainer_state.json`, `metrics.jsonl`,
//! and `checkpoint-last/` (weights, optimizer moments, state) for `--resume`.
//! Once trained, the model's logits are divided by a temperature fitted on the
//! dev data ([`temperature`]), so that its probabilities are calibrated.

pub mod config;
pub mod head_fit;
pub mod loss;
pub mod optim;
pub mod progress;
pub mod schedule;
pub mod state;
pub mod temperature;
pub mod trainer;

pub use config::{EvalStrategy, TrainConfig};
pub use state::EvalLog;
pub use trainer::{Example, Outcome, Trainer};

use crate::data::{Record, Schema};
use crate::model::Classifier;
use crate::{Error, Result};

/// Tokenises each record as (target description, sentence).
pub fn encode(classifier: &Classifier, schema: &Schema, records: &[Record]) -> Result<Vec<Example>> {
    let descriptions: Vec<&str> = records
        .iter()
        .map(|r| classifier.description(&r.target).or_else(|| schema.description(&r.target)).unwrap_or(&r.target))
        .collect();
    let pairs: Vec<(&str, &str)> = descriptions.iter().zip(records).map(|(d, r)| (*d, r.text.as_str())).collect();
    let encoded = classifier.encode_pairs(&pairs)?;
    records
        .iter()
        .zip(encoded)
        .map(|(r, encoded)| {
            let label = schema
                .label_index(&r.label)
                .ok_or_else(|| Error::Other(format!("label `{}` is not in the label set", r.label)))?;
            Ok(Example { encoded, label: label as u32 })
        })
        .collect()
}

/// `--class-weights`: `balanced`, or one weight per label.
pub fn class_weights(spec: Option<&str>, train: &[Example], labels: usize) -> Result<Option<Vec<f32>>> {
    let Some(spec) = spec else { return Ok(None) };
    if spec == "balanced" {
        let y: Vec<u32> = train.iter().map(|e| e.label).collect();
        return Ok(Some(loss::balanced_weights(&y, labels)));
    }
    let weights: Vec<f32> = spec
        .split(',')
        .map(|w| w.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Other(format!("--class-weights {spec}: {e}")))?;
    if weights.len() != labels
        || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
        || weights.iter().sum::<f32>() <= 0.0
    {
        return Err(Error::Other(format!(
            "--class-weights {spec}: expected `balanced` or {labels} non-negative numbers, one per label, not all 0"
        )));
    }
    // Every batch would weigh nothing and the run would learn nothing, quietly.
    if !train.is_empty() && train.iter().all(|e| weights[e.label as usize] == 0.0) {
        return Err(Error::Other(format!(
            "--class-weights {spec}: no training pair has a label of positive weight, so nothing would be learned"
        )));
    }
    Ok(Some(weights))
}
