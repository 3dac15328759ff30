//! `stancekit cv`: k-fold cross-validation for data too small to spare a test
//! set. The training data is dealt into K folds by sentence (all records of a
//! sentence in one fold, label mix kept even: [`crate::data::kfold_grouped`]);
//! for each fold a model is trained on the other folds exactly as
//! `stancekit train` trains, then evaluated on the fold as `stancekit eval`
//! does, beside the baselines trained on the same records.
//!
//! Layout of the cross-validation folder (`--out`): `cv_config.json`,
//! `cv.json` (the summary), `cv.md`, and per fold `fold-K/` with `train.jsonl`,
//! `test.jsonl`, the run folder `model/` and the evaluation report `eval/`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::command::{self, EvalConfig};
use super::results::{Metrics, SystemKind};
use crate::data::{self, Schema};
use crate::training::{self, Outcome, TrainConfig};
use crate::{Error, Result};

/// Names the layout of `cv.json`.
pub const SCHEMA: &str = "stancekit.cv/1";

/// K-fold cross-validation grouped by sentence: train on K−1 folds as `stancekit train` does, evaluate on
/// the held-out fold beside the baselines, and report mean ± standard deviation and per-fold numbers.
/// `--train` is the data to split (`--dev` or `--dev-split` still selects each fold's model) and `--out`
/// the cross-validation folder (fold-1/ … fold-K/, cv.json, cv.md); the folds are dealt with `--seed`.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct CvConfig {
    /// Number of folds.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Bootstrap resamples for each fold's evaluation intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub training: TrainConfig,
}

/// One system's scores on one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    pub name: String,
    pub kind: SystemKind,
    pub f_avg: f64,
    pub macro_f1: f64,
    pub f_avg_mean_over_targets: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// 1-based.
    pub fold: usize,
    pub train_records: usize,
    pub test_records: usize,
    pub test_sentences: usize,
    pub systems: Vec<FoldScores>,
}

/// Mean and sample standard deviation (n − 1 in the denominator) over folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self { mean, std: var.sqrt() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSummary {
    pub name: String,
    pub kind: SystemKind,
    pub f_avg: MeanStd,
    pub macro_f1: MeanStd,
    pub f_avg_mean_over_targets: MeanStd,
    pub accuracy: MeanStd,
}

/// Everything `cv.json` holds. Scores are pooled over the fold's targets unless named otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResults {
    pub schema: String,
    pub folds: usize,
    pub seed: u64,
    pub data: Vec<String>,
    pub records: usize,
    pub sentences: usize,
    pub summary: Vec<SystemSummary>,
    pub per_fold: Vec<FoldResult>,
}

/// Runs the cross-validation; `stop` is asked after every optimizer step (Ctrl-C).
pub fn run(config: &CvConfig, stop: &dyn Fn(usize) -> bool) -> Result<CvResults> {
    let base = &config.training;
    base.validate()?;
    let schema = Schema::load(&base.targets)?;
    let records = data::load_records(&base.train, None, &schema)?;
    let folds = data::kfold_grouped(&records, config.folds, base.seed)?;
    prepare(&base.out, base.overwrite)?;
    training::state::write_json(&base.out.join("cv_config.json"), config)?;
    let mut per_fold = Vec::new();
    for (i, fold) in folds.iter().enumerate() {
        let dir = base.out.join(format!("fold-{}", i + 1));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (train, test) = (data::pick(&records, &fold.train), data::pick(&records, &fold.test));
        crate::io::write_jsonl(&dir.join("train.jsonl"), &train)?;
        crate::io::write_jsonl(&dir.join("test.jsonl"), &test)?;
        let metrics = run_fold(config, &dir, stop).map_err(|e| Error::Other(format!("fold {}: {e}", i + 1)))?;
        per_fold.push(FoldResult {
            fold: i + 1,
            train_records: train.len(),
            test_records: test.len(),
            test_sentences: metrics.data.sentences,
            systems: fold_scores(&metrics),
        });
    }
    let results = CvResults {
        schema: SCHEMA.to_string(),
        folds: config.folds,
        seed: base.seed,
        data: base.train.clone(),
        records: records.len(),
        sentences: count_sentences(&records),
        summary: summarise(&per_fold),
        per_fold,
    };
    training::state::write_json(&base.out.join("cv.json"), &results)?;
    let markdown = crate::reporting::cv::markdown(&results);
    let path = base.out.join("cv.md");
    crate::io::write_atomic(&path, |w| {
        std::io::Write::write_all(w, markdown.as_bytes()).map_err(|e| Error::io(&path, e))
    })?;
    Ok(results)
}

fn count_sentences(records: &[data::Record]) -> usize {
    records.iter().map(data::Record::sentence).collect::<std::collections::HashSet<_>>().len()
}

/// The cross-validation folder must be new or empty, unless `--overwrite` replaces it.
fn prepare(out: &Path, overwrite: bool) -> Result<()> {
    let occupied = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        if !overwrite {
            return Err(Error::Other(format!("{} exists; pass --overwrite to replace it", out.display())));
        }
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// Trains on the fold's `train.jsonl` and evaluates on its `test.jsonl`.
fn run_fold(config: &CvConfig, dir: &Path, stop: &dyn Fn(usize) -> bool) -> Result<Metrics> {
    let path = |name: &str| dir.join(name).display().to_string();
    let model = dir.join("model");
    let train = TrainConfig { train: vec![path("train.jsonl")], out: model.clone(), ..config.training.clone() };
    let summary = training::train(train, false, stop)?;
    if summary.outcome == Outcome::Interrupted {
        return Err(Error::Other("interrupted; the cross-validation is incomplete".into()));
    }
    // The baselines train on what the fold's model trained on: eval reads it from the run's train_config.json.
    let eval = EvalConfig {
        model: vec![model],
        predictions: Vec::new(),
        compare: Vec::new(),
        data: vec![path("test.jsonl")],
        train: Vec::new(),
        report: Some(dir.join("eval")),
        targets: config.training.targets.clone(),
        format: None,
        bootstrap: config.bootstrap,
        confidence: 0.95,
        seed: 0,
        bins: 10,
        errors: 25,
        batch_size: config.training.per_device_eval_batch_size,
        device: config.training.device.clone(),
        precision: crate::model::Precision::F32,
    };
    let evaluation = command::run(&eval)?;
    command::write(&evaluation, &eval, &dir.join("eval"))?;
    Ok(evaluation.metrics)
}

fn fold_scores(metrics: &Metrics) -> Vec<FoldScores> {
    metrics
        .systems
        .iter()
        .map(|s| FoldScores {
            name: s.info.name.clone(),
            kind: s.info.kind,
            f_avg: s.pooled.scores.f_avg,
            macro_f1: s.pooled.scores.macro_f1,
            f_avg_mean_over_targets: s.mean_over_targets.f_avg,
            accuracy: s.pooled.scores.accuracy,
        })
        .collect()
}

/// Mean ± std per system over the folds, systems in the first fold's order.
pub fn summarise(per_fold: &[FoldResult]) -> Vec<SystemSummary> {
    let Some(first) = per_fold.first() else { return Vec::new() };
    first
        .systems
        .iter()
        .map(|s| {
            let values = |f: fn(&FoldScores) -> f64| -> MeanStd {
                let v: Vec<f64> =
                    per_fold.iter().filter_map(|fold| fold.systems.iter().find(|x| x.name == s.name)).map(f).collect();
                MeanStd::of(&v)
            };
            SystemSummary {
                name: s.name.clone(),
                kind: s.kind,
                f_avg: values(|x| x.f_avg),
                macro_f1: values(|x| x.macro_f1),
                f_avg_mean_over_targets: values(|x| x.f_avg_mean_over_targets),
                accuracy: values(|x| x.accuracy),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        // numpy: np.std([0.6, 0.7, 0.8], ddof=1) = 0.1
        let m = MeanStd::of(&[0.6, 0.7, 0.8]);
        assert!((m.mean - 0.7).abs() < 1e-12 && (m.std - 0.1).abs() < 1e-12, "{m:?}");
        assert_eq!(MeanStd::of(&[0.5]).std, 0.0);
    }
}
