//! `stancekit train`: fine-tunes the whole encoder and a classification head on
//! (target description, sentence) pairs, and writes a run folder that both
//! stancekit and transformers load.
//!
//! Run folder: the best model at the top (`config.json`, `model.safetensors`,
//! tokenizer files), `train_config.json`, `trainer_state.json`, `metrics.jsonl`,
//! and `checkpoint-last/` (weights, optimizer moments, state) for `--resume`.

pub mod config;
pub mod head_fit;
pub mod loss;
pub mod optim;
pub mod progress;
pub mod schedule;
pub mod state;
pub mod trainer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use config::{EvalStrategy, TrainConfig};
pub use state::EvalLog;
pub use trainer::{Example, Outcome, Trainer};

use crate::data::{Record, Schema};
use crate::model::{Classifier, HeadKind, StanceSpec};
use crate::{Error, Result};

/// The command line of `stancekit train`: the settings plus how to start.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub settings: TrainConfig,
    /// A TOML file of settings (keys as the flags, with underscores); flags given on the command line win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the interrupted run in this folder from its last checkpoint, with its saved settings.
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub outcome: Outcome,
    pub run_dir: PathBuf,
    pub best: Option<EvalLog>,
    pub seconds: f64,
    /// What the user must know about the model (printed after training).
    pub warnings: Vec<String>,
}

/// Trains as `config` says; `resume` continues the run in `config.out`.
/// `stop(step)` is asked after every optimizer step (Ctrl-C, tests).
pub fn train(config: TrainConfig, resume: bool, stop: &dyn Fn(usize) -> bool) -> Result<TrainSummary> {
    let started = Instant::now();
    config.validate()?;
    prepare_run_dir(&config.out, resume, config.overwrite)?;
    let schema = Schema::load(&config.targets)?;
    let (train_records, dev_records) = load_data(&config, &schema)?;
    let device = crate::device::select(&config.device)?;
    let base = crate::resolve::resolve(&config.model)?;
    let spec = StanceSpec {
        labels: schema.labels.clone(),
        targets: targets_of(&schema, train_records.iter().chain(&dev_records))?,
        pooling: config.pooling,
        max_length: config.max_length,
        // The frozen recipe: a classifier per target over the sentence embedding (see head_fit).
        head: if config.freeze_encoder { HeadKind::PerTarget } else { HeadKind::Joint },
    };
    let run = trainer::RunDir(config.out.clone());
    let classifier = if resume {
        Classifier::load(&crate::resolve::resolve(&path_str(&run.checkpoint())?)?, &device)?
    } else {
        Classifier::from_base(&base, spec, &device, config.seed)?
    };
    let train = encode(&classifier, &schema, &train_records)?;
    let dev = encode(&classifier, &schema, &dev_records)?;
    let weights = class_weights(config.class_weights.as_deref(), &train, schema.labels.len())?;
    if !resume {
        state::write_json(&run.file("train_config.json"), &config)?;
    }
    let progress = progress::Progress::new(config.quiet);
    let mut trainer = Trainer::new(config, classifier, base.path(), train, dev, weights)?;
    if resume {
        trainer.restore()?;
    }
    let steps_before = trainer.state.global_step;
    let outcome = trainer.run(stop, &progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let state = &trainer.state;
    let rate = trainer.examples_since(steps_before) as f64 / seconds.max(1e-9);
    progress.summary(&state.log_history, state.best_step, seconds, rate);
    let best = state.log_history.iter().find(|l| Some(l.step) == state.best_step).cloned();
    let warnings = trainer
        .best_single_answer
        .iter()
        .map(|label| crate::evaluation::single_answer_warning("the selected model", label, "dev"))
        .collect();
    Ok(TrainSummary { outcome, run_dir: run.0, best, seconds, warnings })
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| Error::Other(format!("{}: not valid UTF-8", p.display())))
}

fn prepare_run_dir(out: &Path, resume: bool, overwrite: bool) -> Result<()> {
    if resume {
        let state = trainer::RunDir(out.to_path_buf()).checkpoint().join("trainer_state.json");
        let state = state::TrainerState::load(&state)
            .map_err(|e| Error::Other(format!("cannot resume {}: {e}", out.display())))?;
        if state.finished {
            return Err(Error::Other(format!("{}: this run has already finished", out.display())));
        }
        return Ok(());
    }
    let occupied = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        if !overwrite {
            return Err(Error::Other(format!(
                "run folder {} exists; pass --overwrite to replace it or --resume {} to continue it",
                out.display(),
                out.display()
            )));
        }
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

pub(crate) fn load_data(config: &TrainConfig, schema: &Schema) -> Result<(Vec<Record>, Vec<Record>)> {
    let train = crate::data::load_records(&config.train, None, schema)?;
    match config.dev_split.filter(|_| config.eval_strategy != EvalStrategy::No) {
        Some(share) => {
            let parts = crate::data::split_grouped(&train, share, 0.0, config.seed)?;
            Ok((crate::data::pick(&train, &parts.train), crate::data::pick(&train, &parts.dev)))
        }
        None if config.dev_files().is_empty() => Ok((train, Vec::new())),
        None => Ok((train, crate::data::load_records(config.dev_files(), None, schema)?)),
    }
}

/// The targets the data uses, with the descriptions the model reads.
fn targets_of<'a>(schema: &Schema, records: impl Iterator<Item = &'a Record>) -> Result<BTreeMap<String, String>> {
    let mut targets = BTreeMap::new();
    for r in records {
        if !targets.contains_key(&r.target) {
            let description = schema
                .description(&r.target)
                .ok_or_else(|| Error::Other(format!("target `{}` has no description in the targets file", r.target)))?;
            targets.insert(r.target.clone(), description.to_string());
        }
    }
    Ok(targets)
}

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
fn class_weights(spec: Option<&str>, train: &[Example], labels: usize) -> Result<Option<Vec<f32>>> {
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
    if weights.len() != labels || weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(Error::Other(format!(
            "--class-weights {spec}: expected `balanced` or {labels} non-negative numbers, one per label"
        )));
    }
    Ok(Some(weights))
}

#[cfg(test)]
mod tests;
