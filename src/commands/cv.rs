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

use super::eval::{self, EvalConfig};
use super::train::{self as training, TrainConfig};
use crate::data::{self, Schema};
use crate::evaluation::cv::{fold_scores, summarise, CvResults, FoldResult, SCHEMA};
use crate::evaluation::results::Metrics;
use crate::training::Outcome;
use crate::{Error, Result};

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
    #[arg(long, default_value_t = 1000, value_parser = super::at_least_one::<usize>)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub training: TrainConfig,
}

/// The coverage of each fold's intervals.
const CONFIDENCE: f64 = 0.95;

/// Runs the cross-validation; `stop` is asked after every optimizer step (Ctrl-C).
pub fn run(config: &CvConfig, stop: &(dyn Fn(usize) -> bool + Sync)) -> Result<CvResults> {
    let base = &config.training;
    base.validate()?;
    let _lock = crate::io::lock_beside(&base.out, super::train::RUN_BUSY)?;
    // Each fold's evaluation reports 95 % intervals: checked before any fold trains.
    super::eval::check_resamples(config.bootstrap, CONFIDENCE)?;
    let inputs = base.input_paths();
    let replace = base.overwrite.then_some(crate::io::Replace { marker: "cv_config.json", inputs: &inputs });
    let hint = "pass --overwrite to replace it";
    let replace = crate::io::check_output_dir(&base.out, replace, hint)?;
    let schema = Schema::load(&base.targets)?;
    let records = data::load_records(&base.train, None, &schema)?;
    let folds = data::kfold_grouped(&records, config.folds, base.seed)?;
    // What every fold's training reads (dev data, model, device, settings), checked
    // once over all the data before anything is written or emptied.
    drop(super::train::prepare(base, false)?);
    // The old folder is set aside until every fold is done, and comes back if one fails.
    let aside = crate::io::Aside::make(&base.out, replace)?;
    let result = run_folds(config, &records, &folds, stop);
    aside.settle(result.is_ok());
    result
}

/// Writes each fold's data, trains and evaluates it, and sums them up in `cv.json` and `cv.md`.
fn run_folds(
    config: &CvConfig,
    records: &[data::Record],
    folds: &[data::Fold],
    stop: &(dyn Fn(usize) -> bool + Sync),
) -> Result<CvResults> {
    let base = &config.training;
    crate::io::write_json(&base.out.join("cv_config.json"), config)?;
    let mut per_fold = Vec::new();
    for (i, fold) in folds.iter().enumerate() {
        let dir = base.out.join(format!("fold-{}", i + 1));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (train, test) = (data::pick(records, &fold.train), data::pick(records, &fold.test));
        crate::io::write_jsonl(&dir.join("train.jsonl"), &train)?;
        crate::io::write_jsonl(&dir.join("test.jsonl"), &test)?;
        let metrics =
            run_fold(config, (i + 1, &dir), stop).map_err(|e| Error::Other(format!("fold {}: {e}", i + 1)))?;
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
        sentences: data::count_sentences(records),
        summary: summarise(&per_fold),
        per_fold,
    };
    crate::io::write_json(&base.out.join("cv.json"), &results)?;
    crate::io::write_text(&base.out.join("cv.md"), &crate::reporting::cv::markdown(&results))?;
    Ok(results)
}

/// Trains on fold `fold`'s `train.jsonl` (in `dir`), saying its warnings as
/// `train` does, and evaluates on its `test.jsonl`.
fn run_fold(config: &CvConfig, (fold, dir): (usize, &Path), stop: &(dyn Fn(usize) -> bool + Sync)) -> Result<Metrics> {
    let path = |name: &str| dir.join(name).display().to_string();
    let model = dir.join("model");
    let train = TrainConfig { train: vec![path("train.jsonl")], out: model.clone(), ..config.training.clone() };
    let interrupted = || Error::Other("interrupted; the cross-validation is incomplete".into());
    let summary = training::train(train, false, stop)?;
    training::say_warnings(&summary, &format!("fold {fold}: "));
    // A frozen encoder's fit has no steps to stop at: Ctrl-C after its encoding pass is seen here.
    if summary.outcome == Outcome::Interrupted || stop(0) {
        return Err(interrupted());
    }
    // The baselines train on what the fold's model trained on: eval reads it from the run's train_config.json.
    let eval = EvalConfig {
        model: vec![model],
        predictions: Vec::new(),
        compare: Vec::new(),
        data: vec![path("test.jsonl")],
        train: Vec::new(),
        report: Some(dir.join("eval")),
        targets: Some(config.training.targets.clone()),
        format: None,
        bootstrap: config.bootstrap,
        confidence: CONFIDENCE,
        seed: 0,
        bins: 10,
        errors: 25,
        batch_size: config.training.per_device_eval_batch_size,
        device: config.training.device.clone(),
        precision: super::PrecisionArgs::default(),
    };
    let evaluation = eval::run(&eval)?;
    eval::write(&evaluation, &eval, &dir.join("eval"))?;
    match stop(0) {
        true => Err(interrupted()),
        false => Ok(evaluation.metrics),
    }
}

/// Runs `stancekit cv`, stopping on Ctrl-C, and prints the summary table.
pub fn run_command(config: &CvConfig) -> Result<()> {
    let stop = super::interrupt_flag()?;
    let results = run(config, &stop)?;
    crate::io::print_stdout(&crate::reporting::cv::table(&results))?;
    eprintln!("cross-validation: {}", config.training.out.join("cv.md").display());
    Ok(())
}
