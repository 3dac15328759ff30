//! `stancekit eval`: score one or more systems on gold data, beside the
//! baselines, and write the results and the report.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bootstrap::BootstrapSettings;
use super::gold::{Gold, Output};
use super::predictions::{self, Prediction, Probs};
use super::results::{self, Metrics, ScoreSettings, Scored, SystemInfo, SystemKind};
use super::{align, baselines};
use crate::data::{self, Format, Record, Schema};
use crate::model::Classifier;
use crate::reporting::{self, Report};
use crate::training::{EvalLog, TrainConfig};
use crate::{Error, Result};

/// Where `eval` looks for training data for the baselines when nothing names it.
pub const DEFAULT_TRAIN: &str = "datasets/train.jsonl";

/// Score stance predictions against gold labels, with confidence intervals,
/// calibration, the errors, and baselines; write metrics.json and reports.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct EvalConfig {
    /// A trained model (run folder) to evaluate; may be repeated.
    #[arg(long, value_name = "RUN_DIR")]
    pub model: Vec<PathBuf>,
    /// A predictions file from stancekit or any other system (JSONL: id, text, target, label,
    /// optional probs); may be repeated. NAME=FILE names the system in the report.
    #[arg(long, value_name = "FILE")]
    pub predictions: Vec<String>,
    /// Two systems side by side with a paired-bootstrap p-value; each a run folder or a predictions file.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    pub compare: Vec<String>,
    /// Gold data: files or folders in any format `stancekit data check` reads.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub data: Vec<String>,
    /// Training data for the baselines (default: the run's training files, else datasets/train.jsonl).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub train: Vec<String>,
    /// Folder for metrics.json, predictions.jsonl, report.md and report.html (created if missing).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Targets file: the allowed labels and the target ids with their descriptions.
    #[arg(long, value_name = "FILE", default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// Format of the gold data; by default it follows from each path.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Bootstrap resamples (of sentences) for confidence intervals and p-values.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Coverage of the confidence intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Confidence bins of the reliability diagram and ECE.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Misclassified records listed per system, most confident first.
    #[arg(long, default_value_t = 25)]
    pub errors: usize,
    /// Pairs per forward pass when running a model.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl EvalConfig {
    fn check(&self) -> Result<()> {
        if self.model.is_empty() && self.predictions.is_empty() && self.compare.is_empty() {
            return Err(Error::Other("nothing to evaluate: pass --model, --predictions or --compare".into()));
        }
        if self.bootstrap == 0 || !(self.confidence > 0.0 && self.confidence < 1.0) || self.bins == 0 {
            return Err(Error::Other("--bootstrap and --bins must be positive and --confidence in (0, 1)".into()));
        }
        Ok(())
    }

    fn settings(&self) -> ScoreSettings {
        ScoreSettings {
            bootstrap: BootstrapSettings { resamples: self.bootstrap, seed: self.seed, confidence: self.confidence },
            calibration_bins: self.bins,
            errors: self.errors,
        }
    }
}

/// A system to score, before it has answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A run folder holding a trained classifier.
    Model(PathBuf),
    Predictions(PathBuf),
}

/// The systems of a command line, named: `--compare` first, then `--model`, then `--predictions`.
pub fn sources(config: &EvalConfig) -> Vec<(String, Source)> {
    let mut out: Vec<(String, Source)> = Vec::new();
    let as_source = |arg: &str| {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            Source::Model(path)
        } else {
            Source::Predictions(path)
        }
    };
    let named = config.compare.iter().map(|a| named_arg(a, as_source));
    let models = config.model.iter().map(|p| (None, Source::Model(p.clone())));
    let files = config.predictions.iter().map(|a| named_arg(a, |p| Source::Predictions(PathBuf::from(p))));
    let mut taken = HashSet::new();
    for (name, source) in named.chain(models).chain(files) {
        let base = name.unwrap_or_else(|| default_name(&source));
        let mut name = base.clone();
        for n in 2.. {
            if taken.insert(name.clone()) {
                break;
            }
            name = format!("{base}-{n}");
        }
        out.push((name, source));
    }
    out
}

/// `NAME=PATH` names a system, unless the whole argument is an existing path.
fn named_arg(arg: &str, source: impl Fn(&str) -> Source) -> (Option<String>, Source) {
    match arg.split_once('=') {
        Some((name, path)) if !Path::new(arg).exists() && !name.is_empty() && !name.contains('/') => {
            (Some(name.to_string()), source(path))
        }
        _ => (None, source(arg)),
    }
}

fn default_name(source: &Source) -> String {
    let path = match source {
        Source::Model(p) => p.as_path(),
        Source::Predictions(p) => p.as_path(),
    };
    let stem = match source {
        Source::Model(_) => path.file_name(),
        Source::Predictions(_) => path.file_stem(),
    };
    stem.map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// What `eval` computed, ready to be written or shown.
pub struct Evaluation {
    pub metrics: Metrics,
    pub gold: Gold,
    /// The answers of each system of `metrics.systems`, in that order.
    pub outputs: Vec<Output>,
    /// Training curves of the systems that are runs with a `metrics.jsonl`.
    pub curves: Vec<(String, Vec<EvalLog>)>,
    pub descriptions: BTreeMap<String, String>,
}

impl Evaluation {
    pub fn report(&self) -> Report<'_> {
        Report { metrics: &self.metrics, curves: &self.curves, descriptions: &self.descriptions }
    }
}

/// Loads the gold data and every system, runs models, trains the baselines, and scores all.
pub fn run(config: &EvalConfig) -> Result<Evaluation> {
    config.check()?;
    let schema = Schema::load(&config.targets)?;
    let records = data::load_records(&config.data, config.format, &schema)?;
    if records.is_empty() {
        return Err(Error::Other("the gold data holds no records".into()));
    }
    let gold = Gold::new(&schema.labels, &records)?;
    let sources = sources(config);
    let mut answered = Vec::new();
    let mut curves = Vec::new();
    for (name, source) in &sources {
        let (kind, path, output) = match source {
            Source::Model(dir) => (SystemKind::Model, dir, run_model(dir, &gold, config)?),
            Source::Predictions(file) => {
                (SystemKind::Predictions, file, align::align(&gold, &predictions::read(file, &gold.labels)?)?)
            }
        };
        if let Source::Model(dir) = source {
            if let Some(logs) = reporting::read_curves(&dir.join("metrics.jsonl"))? {
                curves.push((name.clone(), logs));
            }
        }
        answered.push((SystemInfo { name: name.clone(), kind, source: path.display().to_string() }, output));
    }
    let mut notes = Vec::new();
    let runs: Vec<&Path> =
        sources.iter().filter_map(|(_, s)| if let Source::Model(d) = s { Some(d.as_path()) } else { None }).collect();
    match training_data(config, &runs, &schema)? {
        Some((train, source)) => {
            notes.extend(overlap_note(&train, &records, &source));
            let (systems, baseline_notes) = baselines::run(&train, &source, &gold);
            answered.extend(systems);
            notes.extend(baseline_notes);
        }
        None => notes.push(format!(
            "Baselines not shown: no training data. Pass --train FILE (by default {DEFAULT_TRAIN}, which does not exist)."
        )),
    }
    let settings = config.settings();
    let scored: Vec<Scored> =
        answered.iter().map(|(info, out)| results::score(&gold, out, info.clone(), &settings)).collect();
    let metrics = Metrics {
        schema: results::SCHEMA.to_string(),
        labels: gold.labels.clone(),
        stance_labels: results::stance_labels(&gold.labels),
        data: results::data_summary(&gold, &config.data),
        bootstrap: settings.bootstrap,
        comparisons: comparisons(&scored, config.confidence),
        systems: scored.into_iter().map(|s| s.result).collect(),
        notes,
    };
    let outputs = answered.into_iter().map(|(_, o)| o).collect();
    Ok(Evaluation { metrics, gold, outputs, curves, descriptions: schema.targets.clone() })
}

/// Every pair of evaluated systems, then each of them against each baseline.
fn comparisons(scored: &[Scored], confidence: f64) -> Vec<results::Comparison> {
    let (systems, baselines): (Vec<&Scored>, Vec<&Scored>) =
        scored.iter().partition(|s| s.result.info.kind != SystemKind::Baseline);
    let mut out = Vec::new();
    for (i, a) in systems.iter().enumerate() {
        out.extend(systems[i + 1..].iter().map(|b| results::compare(a, b, confidence)));
    }
    for a in &systems {
        out.extend(baselines.iter().map(|b| results::compare(a, b, confidence)));
    }
    out
}

/// Runs a trained classifier over the gold records.
fn run_model(run: &Path, gold: &Gold, config: &EvalConfig) -> Result<Output> {
    let dir = crate::resolve::resolve(&run.display().to_string())?;
    let classifier = Classifier::load(&dir, &crate::device::select(&config.device)?)?;
    let spec = &classifier.spec;
    let unknown: Vec<&str> =
        gold.targets.iter().filter(|t| !spec.targets.contains_key(*t)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(Error::Model(format!(
            "{}: the model does not know target(s) {} (it was trained on {})",
            run.display(),
            unknown.join(", "),
            spec.targets.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    // The model's label order may differ from the targets file's.
    let column: Vec<usize> = gold
        .labels
        .iter()
        .map(|l| spec.labels.iter().position(|m| m == l))
        .collect::<Option<_>>()
        .filter(|_| spec.labels.len() == gold.labels.len())
        .ok_or_else(|| {
            Error::Model(format!(
                "{}: the model's labels ({}) are not the task's ({})",
                run.display(),
                spec.labels.join(", "),
                gold.labels.join(", ")
            ))
        })?;
    let pairs: Vec<(&str, &str)> =
        gold.items.iter().map(|i| (spec.targets[&gold.targets[i.target]].as_str(), i.text.as_str())).collect();
    let raw = classifier.predict_proba(&pairs, config.batch_size)?;
    let probs: Vec<Vec<f64>> = raw.iter().map(|row| column.iter().map(|&c| f64::from(row[c])).collect()).collect();
    Ok(Output { pred: probs.iter().map(|p| baselines::argmax(p)).collect(), probs: Some(probs) })
}

/// The baselines' training records and where they came from: `--train`, else
/// the records the first run trained on (its `train_config.json`, dev split
/// applied), else [`DEFAULT_TRAIN`] if it exists.
fn training_data(config: &EvalConfig, runs: &[&Path], schema: &Schema) -> Result<Option<(Vec<Record>, String)>> {
    if !config.train.is_empty() {
        return Ok(Some((data::load_records(&config.train, None, schema)?, config.train.join(", "))));
    }
    if let Some(run) = runs.first() {
        let saved = run.join("train_config.json");
        if saved.is_file() {
            let train = TrainConfig::from_json(&saved)?;
            if train.train.iter().all(|f| data::Input::parse(f).path.exists()) {
                let (records, _dev) = crate::training::load_data(&train, schema)?;
                return Ok(Some((
                    records,
                    format!("{} (as the run {} trained on)", train.train.join(", "), run.display()),
                )));
            }
        }
    }
    if Path::new(DEFAULT_TRAIN).is_file() {
        return Ok(Some((data::load_records(&[DEFAULT_TRAIN], None, schema)?, DEFAULT_TRAIN.to_string())));
    }
    Ok(None)
}

/// Gold records that also sit in the training data make every score optimistic.
fn overlap_note(train: &[Record], gold: &[Record], source: &str) -> Option<String> {
    let seen: HashSet<(&str, &str)> = train.iter().map(|r| (r.sentence(), r.target.as_str())).collect();
    let shared = gold.iter().filter(|r| seen.contains(&(r.sentence(), r.target.as_str()))).count();
    (shared > 0).then(|| {
        format!(
            "{shared} of {} gold records (same text and target) are also in the training data ({source}); \
             scores on them overstate what a model does on new text.",
            gold.len()
        )
    })
}

/// One line of the `predictions.jsonl` that `eval` writes: the prediction and the gold label.
#[derive(Debug, Serialize)]
struct ScoredRow<'a> {
    #[serde(flatten)]
    prediction: Prediction,
    gold: &'a str,
}

/// Writes metrics.json, the config, each evaluated system's predictions and the reports into `dir`.
pub fn write(evaluation: &Evaluation, config: &EvalConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::training::state::write_json(&dir.join("metrics.json"), &evaluation.metrics)?;
    crate::training::state::write_json(&dir.join("eval_config.json"), config)?;
    let mut first = true;
    for (result, output) in evaluation.metrics.systems.iter().zip(&evaluation.outputs) {
        if result.info.kind == SystemKind::Baseline {
            continue;
        }
        let name = if first {
            "predictions.jsonl".to_string()
        } else {
            format!("predictions-{}.jsonl", file_safe(&result.info.name))
        };
        first = false;
        crate::io::write_jsonl(&dir.join(name), &scored_rows(&evaluation.gold, output))?;
    }
    reporting::write(&evaluation.report(), dir)
}

fn scored_rows<'a>(gold: &'a Gold, output: &Output) -> Vec<ScoredRow<'a>> {
    gold.items
        .iter()
        .enumerate()
        .map(|(i, item)| ScoredRow {
            prediction: Prediction {
                id: item.id.clone(),
                text: item.text.clone(),
                target: gold.targets[item.target].clone(),
                label: gold.labels[output.pred[i]].clone(),
                probs: output.probs.as_ref().map(|p| Probs::from_values(&gold.labels, &p[i])).unwrap_or_default(),
            },
            gold: &gold.labels[item.label],
        })
        .collect()
}

/// A system name as part of a file name.
fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: EvalConfig,
    }

    fn parse(args: &[&str]) -> EvalConfig {
        Cli::parse_from(std::iter::once("eval").chain(args.iter().copied())).config
    }

    #[test]
    fn systems_are_named_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-7");
        std::fs::create_dir(&run).unwrap();
        let run = run.to_str().unwrap();
        let config = parse(&[
            "--data",
            "gold.jsonl",
            "--compare",
            run,
            "other=theirs.jsonl",
            "--model",
            run,
            "--predictions",
            "out/theirs.jsonl",
        ]);
        let got: Vec<(String, Source)> = sources(&config);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["run-7", "other", "run-7-2", "theirs"]);
        assert_eq!(got[1].1, Source::Predictions("theirs.jsonl".into()));
        assert!(matches!(got[0].1, Source::Model(_)));
    }

    #[test]
    fn nothing_to_evaluate_is_an_error() {
        let err = run(&parse(&["--data", "gold.jsonl"])).err().unwrap().to_string();
        assert!(err.contains("pass --model, --predictions or --compare"), "{err}");
    }

    #[test]
    fn overlap_with_training_data_is_noted() {
        let r = |text: &str, target: &str| Record {
            id: None,
            text: text.into(),
            target: target.into(),
            label: "none".into(),
        };
        let note = overlap_note(&[r("a ", "t"), r("b", "t")], &[r("a", "t"), r("a", "u"), r("c", "t")], "train.jsonl");
        assert!(note.unwrap().starts_with("1 of 3 gold records"));
        assert_eq!(overlap_note(&[r("x", "t")], &[r("a", "t")], "f"), None);
    }
}
