//! `stancekit eval`: score one or more systems on gold data, beside the
//! baselines, and write the results and the report.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{self, Format, Record, Schema, DEFAULT_TARGETS};
use crate::evaluation::bootstrap::BootstrapSettings;
use crate::evaluation::gold::{Gold, Output};
use crate::evaluation::predictions::{self, Prediction, Probs};
use crate::evaluation::results::{self, Metrics, ScoreSettings, Scored, SystemInfo, SystemKind};
use crate::evaluation::{align, baselines, single_answer, single_answer_warning};
use crate::model::StanceSpec;
use crate::reporting::{html, markdown, Report, Training};
use crate::resolve::ModelDir;
use crate::training::TrainConfig;
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
    /// Folder for metrics.json, predictions.jsonl (predictions-NAME.jsonl for each further
    /// system), report.md, report.html and eval_config.json (created if missing).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Targets file: the allowed labels and the target ids with their descriptions
    /// (default: those the run folders of --compare and --model carry, else datasets/targets.json).
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Format of the gold data; by default it follows from each path.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Bootstrap resamples (of sentences) for confidence intervals and p-values.
    #[arg(long, default_value_t = 1000, value_parser = super::at_least_one::<usize>)]
    pub bootstrap: usize,
    /// Coverage of the confidence intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Confidence bins of the reliability diagram and ECE.
    #[arg(long, default_value_t = 10, value_parser = super::at_least_one::<usize>)]
    pub bins: usize,
    /// Misclassified records listed per system, most confident first.
    #[arg(long, default_value_t = 25)]
    pub errors: usize,
    /// Pairs per forward pass when running a model.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    #[serde(flatten)]
    pub precision: super::PrecisionArgs,
}

impl EvalConfig {
    fn check(&self) -> Result<()> {
        if self.model.is_empty() && self.predictions.is_empty() && self.compare.is_empty() {
            return Err(Error::Other("nothing to evaluate: pass --model, --predictions or --compare".into()));
        }
        if self.bootstrap == 0 || !(self.confidence > 0.0 && self.confidence < 1.0) || self.bins == 0 {
            return Err(Error::Other("--bootstrap and --bins must be positive and --confidence in (0, 1)".into()));
        }
        check_resamples(self.bootstrap, self.confidence)
    }
}

/// A percentile interval needs a resample beyond each of its ends, or it is
/// the extremes (at `--bootstrap 1`, an interval that missed its own point
/// estimate). `cv` asks too, before its first fold trains.
pub fn check_resamples(resamples: usize, confidence: f64) -> Result<()> {
    // Less a hair, so that 2 / (1 - 0.9) = 20.000000000000004 asks for 20, not 21.
    let least = (2.0 / (1.0 - confidence) - 1e-9).ceil() as usize;
    if resamples < least {
        return Err(Error::Other(format!(
            "--bootstrap {resamples}: a {}% interval needs at least {least} resamples, one beyond each end; \
             1,000 or more for figures you report",
            confidence * 100.0
        )));
    }
    Ok(())
}

impl EvalConfig {
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

/// The systems of a command line, named: `--compare` first, then `--model`,
/// then `--predictions`. A name derived from a path that is taken gets `-2`,
/// `-3`…; a name the user gave that is taken is an error, not renamed.
pub fn sources(config: &EvalConfig) -> Result<Vec<(String, Source)>> {
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
    let all: Vec<(Option<String>, Source)> = named.chain(models).chain(files).collect();
    // Names are unique, and the baselines' names are taken; the names given come
    // first, so that a name derived from a path gives way to them.
    let mut taken: HashSet<String> = baselines::NAMES.iter().map(|n| n.to_string()).collect();
    for name in all.iter().filter_map(|(given, _)| given.as_ref()) {
        if !taken.insert(name.clone()) {
            let whose = if baselines::NAMES.contains(&name.as_str()) { "a baseline's" } else { "another system's" };
            return Err(Error::Other(format!("the system name `{name}` is taken ({whose}); choose another NAME=")));
        }
    }
    for (given, source) in all {
        if let Some(name) = given {
            out.push((name, source));
            continue;
        }
        let base = default_name(&source);
        let mut name = base.clone();
        for n in 2.. {
            if taken.insert(name.clone()) {
                break;
            }
            name = format!("{base}-{n}");
        }
        out.push((name, source));
    }
    Ok(out)
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

/// A run is named by its folder, a predictions file by its stem.
fn default_name(source: &Source) -> String {
    let (path, name) = match source {
        Source::Model(p) => (p, p.file_name()),
        Source::Predictions(p) => (p, p.file_stem()),
    };
    name.map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// What `eval` computed, ready to be written or shown.
pub struct Evaluation {
    pub metrics: Metrics,
    pub gold: Gold,
    /// The answers of each system of `metrics.systems`, in that order.
    pub outputs: Vec<Output>,
    /// The training logs of the systems that are runs.
    pub training: Vec<Training>,
    pub descriptions: BTreeMap<String, String>,
}

impl Evaluation {
    pub fn report(&self) -> Report<'_> {
        Report { metrics: &self.metrics, training: &self.training, descriptions: &self.descriptions }
    }
}

/// Loads the gold data and every system, runs models, trains the baselines, and scores all.
pub fn run(config: &EvalConfig) -> Result<Evaluation> {
    config.check()?;
    let sources = sources(config)?;
    // A predictions file that is not there is the problem to name, before any other input is looked for.
    for (_, source) in &sources {
        if let Source::Predictions(path) = source {
            std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        }
    }
    let schema = schema(config, &sources)?;
    let (gold, records, mut notes) = load_gold(config, &schema)?;
    let (mut answered, training) = answer(&sources, &gold, config, &mut notes)?;
    let runs = run_data(&sources, &schema, &records, &mut notes)?;
    answered.extend(baseline_systems(config, runs.first(), &schema, &records, &gold, &mut notes)?);
    let settings = config.settings();
    let scored: Vec<Scored> =
        answered.iter().map(|(info, out)| results::score(&gold, out, info.clone(), &settings)).collect();
    let metrics = Metrics {
        schema: results::SCHEMA.to_string(),
        labels: gold.labels.clone(),
        stance_labels: results::stance_labels(&gold),
        data: results::data_summary(&gold, &config.data),
        bootstrap: settings.bootstrap,
        comparisons: comparisons(&scored, config.confidence),
        systems: scored.into_iter().map(|s| s.result).collect(),
        notes,
    };
    let outputs = answered.into_iter().map(|(_, o)| o).collect();
    Ok(Evaluation { metrics, gold, outputs, training, descriptions: schema.targets.clone() })
}

/// The gold data, its records, and the report's first notes (on the data).
fn load_gold(config: &EvalConfig, schema: &Schema) -> Result<(Gold, Vec<Record>, Vec<String>)> {
    let dataset = data::load(&config.data, config.format, schema)?;
    // The warnings' first line summarises them; the report is no place for the full list.
    let mut notes: Vec<String> = dataset.warnings().into_iter().take(1).map(|w| format!("Gold data: {w}.")).collect();
    let records = dataset.into_records();
    if records.is_empty() {
        return Err(Error::Other("the gold data holds no records".into()));
    }
    let gold = Gold::new(&schema.labels, &records)?.with_neutral(schema.neutral.as_ref());
    notes.extend(missing_stance_notes(&gold));
    Ok((gold, records, notes))
}

/// A system and its answers.
type Answered = (SystemInfo, Output);

/// Every system's answers on the gold data (runs are run, files aligned),
/// with the runs' training logs; notes on calibration and one-label systems.
fn answer(
    sources: &[(String, Source)],
    gold: &Gold,
    config: &EvalConfig,
    notes: &mut Vec<String>,
) -> Result<(Vec<Answered>, Vec<Training>)> {
    let mut answered = Vec::new();
    let mut training = Vec::new();
    for (name, source) in sources {
        let (kind, path, output) = match source {
            Source::Model(dir) => (SystemKind::Model, dir, run_model(dir, gold, config)?),
            Source::Predictions(file) => {
                (SystemKind::Predictions, file, align::align(gold, &predictions::read(file, &gold.labels)?)?)
            }
        };
        if let Source::Model(dir) = source {
            training.extend(training_of(name, dir)?);
            notes.push(calibration_note(name, dir)?);
        }
        notes.extend(single_answer_note(name, gold, &output));
        answered.push((SystemInfo { name: name.clone(), kind, source: path.display().to_string() }, output));
    }
    Ok((answered, training))
}

/// A warning (printed, and returned for the report) when a system answers one label for everything.
fn single_answer_note(name: &str, gold: &Gold, output: &Output) -> Option<String> {
    use crate::evaluation::metrics::{FINE_TUNING_ADVICE, FROZEN_ADVICE};
    let label = single_answer(&output.pred)?;
    let advice = format!("a fine-tuned model: {FINE_TUNING_ADVICE}; a frozen-encoder one: {FROZEN_ADVICE}");
    let warning = single_answer_warning(&format!("System {name}"), &gold.labels[label], "evaluated", &advice);
    eprintln!("warning: {warning}");
    Some(format!("{warning}."))
}

/// The training and dev data of every run among the systems, with a note
/// wherever the gold data overlaps them.
fn run_data<'a>(
    sources: &'a [(String, Source)],
    schema: &Schema,
    records: &[Record],
    notes: &mut Vec<String>,
) -> Result<Vec<(&'a Path, RunData)>> {
    let mut runs = Vec::new();
    for (name, source) in sources {
        let Source::Model(dir) = source else { continue };
        if let Some(data) = RunData::read(dir, schema)? {
            notes.extend(overlap_note(&data.train, records, &format!("the training data of {name}")));
            let dev = format!("the dev data that selected the model of {name}");
            notes.extend(overlap_note(&data.dev, records, &dev));
            runs.push((dir.as_path(), data));
        }
    }
    Ok(runs)
}

/// The baselines' answers, trained on `--train`, else the first run's
/// training data, else [`DEFAULT_TRAIN`]; none (and a note) without any.
fn baseline_systems(
    config: &EvalConfig,
    first_run: Option<&(&Path, RunData)>,
    schema: &Schema,
    records: &[Record],
    gold: &Gold,
    notes: &mut Vec<String>,
) -> Result<Vec<Answered>> {
    let Some((train, source, from_run)) = training_data(config, first_run, schema)? else {
        notes.push(format!(
            "Baselines not shown: no training data for them. Pass --train FILE (by default the run's \
             training files, else {DEFAULT_TRAIN})."
        ));
        return Ok(Vec::new());
    };
    if !from_run {
        notes.extend(overlap_note(&train, records, &format!("the baselines' training data ({source})")));
    }
    let (systems, baseline_notes) = baselines::run(&train, &source, gold);
    notes.extend(baseline_notes);
    Ok(systems)
}

/// The labels and targets the gold data and the training data are read
/// against: `--targets`, else the run folders' own (a run carries them: the
/// first run's labels and every run's targets, so that each run's training data
/// reads), else [`DEFAULT_TARGETS`].
fn schema(config: &EvalConfig, sources: &[(String, Source)]) -> Result<Schema> {
    if let Some(file) = &config.targets {
        return Schema::load(file);
    }
    let runs: Vec<&PathBuf> = sources
        .iter()
        .filter_map(|(_, s)| match s {
            Source::Model(dir) => Some(dir),
            Source::Predictions(_) => None,
        })
        .collect();
    if runs.is_empty() {
        if !Path::new(DEFAULT_TARGETS).is_file() {
            return Err(Error::Other(format!(
                "no targets file: pass --targets FILE, the labels and targets to read the gold data against \
                 ({DEFAULT_TARGETS} does not exist here, and no run folder was given to take them from)"
            )));
        }
        return Schema::load(Path::new(DEFAULT_TARGETS));
    }
    super::schema_of_runs(&runs)
}

/// A target without gold records of a stance label scores F1 = 0 on it (as
/// scikit-learn's `zero_division=0`), which caps its F_avg; say so.
fn missing_stance_notes(gold: &Gold) -> Vec<String> {
    let summary = results::data_summary(gold, &[]);
    let stance = results::stance_labels(gold);
    summary
        .targets
        .iter()
        .filter_map(|t| {
            let missing: Vec<&str> = gold
                .labels
                .iter()
                .zip(&t.label_counts)
                .filter(|(l, &n)| n == 0 && stance.contains(l))
                .map(|(l, _)| l.as_str())
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "Target {} has no gold records labelled {}; F1 there counts as 0, so its F_avg is at most {:.0}.",
                    t.target,
                    missing.join(" or "),
                    100.0 * (stance.len() - missing.len()) as f64 / stance.len() as f64
                )
            })
        })
        .collect()
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
    // A run is a local folder; a missing one must not be looked up on the Hugging Face hub.
    let dir = ModelDir::open(run)?;
    let classifier = super::classifier_in(&dir, &config.device, &config.precision)?;
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
    Ok(Output { pred: probs.iter().map(|p| crate::kernels::argmax(p)).collect(), probs: Some(probs) })
}

/// Whether a run's probabilities were calibrated, so that a reader weighs its ECE.
fn calibration_note(name: &str, run: &Path) -> Result<String> {
    Ok(match StanceSpec::read(&ModelDir::open(run)?)?.temperature {
        Some(t) => format!(
            "The probabilities of {name} are calibrated: its logits are divided by a temperature of {t:.3}, \
             fitted on held-out data (`train` on its dev data, or `stancekit calibrate`)."
        ),
        None => format!(
            "The probabilities of {name} are not calibrated (trained with `--calibrate false`, without dev data, \
             interrupted, or before `train` calibrated); `stancekit calibrate --model {} --data HELD_OUT` fits a \
             temperature.",
            run.display()
        ),
    })
}

/// What a run trained on, read back through its `train_config.json`.
struct RunData {
    config: TrainConfig,
    train: Vec<Record>,
    /// The records that selected the model (its `--dev` files or `--dev-split` share).
    dev: Vec<Record>,
}

impl RunData {
    /// `None` when the run has no `train_config.json` or its data files are gone.
    fn read(run: &Path, schema: &Schema) -> Result<Option<Self>> {
        let saved = run.join("train_config.json");
        if !saved.is_file() {
            return Ok(None);
        }
        let config = TrainConfig::from_json(&saved)?;
        let files = config.train.iter().chain(config.dev_files());
        if !files.into_iter().all(|f| data::Input::parse(f).path.exists()) {
            return Ok(None);
        }
        let (train, dev) = super::train::load_data(&config, schema)?;
        Ok(Some(Self { config, train, dev }))
    }
}

/// The baselines' training records, where they came from, and whether they are
/// a run's: `--train`, else what the first run trained on (dev split applied),
/// else [`DEFAULT_TRAIN`] if it exists.
fn training_data(
    config: &EvalConfig,
    run: Option<&(&Path, RunData)>,
    schema: &Schema,
) -> Result<Option<(Vec<Record>, String, bool)>> {
    if !config.train.is_empty() {
        return Ok(Some((data::load_records(&config.train, None, schema)?, config.train.join(", "), false)));
    }
    if let Some((dir, data)) = run {
        let source = format!("{} (as the run {} trained on)", data.config.train.join(", "), dir.display());
        return Ok(Some((data.train.clone(), source, true)));
    }
    if !Path::new(DEFAULT_TRAIN).is_file() {
        return Ok(None);
    }
    match data::load_records(&[DEFAULT_TRAIN], None, schema) {
        Ok(records) => Ok(Some((records, DEFAULT_TRAIN.to_string(), false))),
        // The project's file need not hold the targets of runs made on other data.
        Err(_) if schema.from_runs => Ok(None),
        Err(e) => Err(e),
    }
}

/// The records run `dir` trained on (its `--train` files, dev split applied),
/// read back through its `train_config.json`; `None` when that or its data is gone.
pub(crate) fn trained_on(dir: &Path, schema: &Schema) -> Result<Option<Vec<Record>>> {
    Ok(RunData::read(dir, schema)?.map(|data| data.train))
}

/// How many of `records` are also in `seen`, by sentence and target.
pub(crate) fn shared_pairs(seen: &[Record], records: &[Record]) -> usize {
    let seen: HashSet<(&str, &str)> = seen.iter().map(|r| (r.sentence(), r.target.as_str())).collect();
    records.iter().filter(|r| seen.contains(&(r.sentence(), r.target.as_str()))).count()
}

/// Gold records that a system has seen in training or model selection make its scores optimistic.
fn overlap_note(seen: &[Record], gold: &[Record], what: &str) -> Option<String> {
    let shared = shared_pairs(seen, gold);
    (shared > 0).then(|| {
        format!(
            "{shared} of {} gold records (same text and target) are also in {what}; \
             scores on them overstate how it does on new text.",
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

/// Runs `stancekit eval`: the table on stdout, the files into `--report`.
pub fn run_command(config: &EvalConfig) -> Result<()> {
    // Said before the evaluation's work, not after it.
    if let Some(dir) = config.report.as_ref().filter(|d| d.exists() && !d.is_dir()) {
        return Err(Error::Other(format!(
            "--report {}: a file; it names a folder to write the report in",
            dir.display()
        )));
    }
    if let Some(dir) = &config.report {
        // The files `write` puts in the report folder, each checked against what is read.
        let predictions =
            config.predictions.iter().map(|p| PathBuf::from(p.split_once('=').map_or(p.as_str(), |(_, f)| f)));
        let data = config.data.iter().map(|d| crate::data::Input::parse(d).path);
        let read: Vec<PathBuf> = data.chain(predictions).collect();
        for name in ["metrics.json", "eval_config.json", "report.md", "report.html", "predictions.jsonl"] {
            crate::io::check_not_an_input(&dir.join(name), "--report", &read)?;
        }
    }
    let evaluation = run(config)?;
    crate::io::print_stdout(&crate::reporting::table::render(&evaluation.report()))?;
    if let Some(dir) = &config.report {
        write(&evaluation, config, dir)?;
        eprintln!("report: {}", dir.join("report.html").display());
    }
    Ok(())
}

/// Writes metrics.json, the config, each evaluated system's predictions and the reports into `dir`.
pub fn write(evaluation: &Evaluation, config: &EvalConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // All written before any replaces its old self: a failure (a full disk) leaves the old
    // report whole, not new metrics beside an old report.html.
    let mut staged = crate::io::Staged::default();
    staged.json(&dir.join("metrics.json"), &evaluation.metrics)?;
    staged.json(&dir.join("eval_config.json"), config)?;
    let mut taken = std::collections::HashSet::new();
    for (result, output) in evaluation.metrics.systems.iter().zip(&evaluation.outputs) {
        if result.info.kind == SystemKind::Baseline {
            continue;
        }
        let path = dir.join(predictions_file(&result.info.name, &mut taken));
        let rows = scored_rows(&evaluation.gold, output);
        staged.file(&path, |w| crate::io::write_json_lines(w, &rows).map_err(|e| Error::io(&path, e)))?;
    }
    let report = evaluation.report();
    staged.text(&dir.join("report.md"), &markdown::render(&report))?;
    staged.text(&dir.join("report.html"), &html::render(&report))?;
    staged.commit()
}

/// What a run folder logged in training (`metrics.jsonl`, `trainer_state.json`);
/// `None` without dev evaluations.
fn training_of(system: &str, run: &Path) -> Result<Option<Training>> {
    let Some(logs) = crate::training::state::read_eval_logs(&run.join("metrics.jsonl"))? else { return Ok(None) };
    let state = run.join("trainer_state.json");
    let best_step = if state.is_file() { crate::training::state::TrainerState::load(&state)?.best_step } else { None };
    Ok(Some(Training { system: system.to_string(), logs, best_step }))
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

/// The predictions file of the next evaluated system: `predictions.jsonl` for
/// the first, then `predictions-NAME.jsonl`, NAME made file-safe and numbered
/// where two names would meet (`a b` and `a_b`, or names that differ in case
/// alone on a case-blind file system), so that no system's file replaces another's.
fn predictions_file(name: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let candidates =
        std::iter::once("predictions.jsonl".to_string()).filter(|_| taken.is_empty()).chain((1..).map(|n| {
            if n == 1 {
                format!("predictions-{safe}.jsonl")
            } else {
                format!("predictions-{safe}-{n}.jsonl")
            }
        }));
    let file = candidates.into_iter().find(|f| !taken.contains(&f.to_lowercase())).expect("an unbounded sequence");
    taken.insert(file.to_lowercase());
    file
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

    #[test]
    fn every_system_gets_a_predictions_file_of_its_own() {
        let mut taken = std::collections::HashSet::new();
        let files: Vec<String> = ["first", "a b", "a_b", "café", "cafè", "A_B", "a_b-2"]
            .iter()
            .map(|n| predictions_file(n, &mut taken))
            .collect();
        assert_eq!(
            files,
            [
                "predictions.jsonl",
                "predictions-a_b.jsonl",
                "predictions-a_b-2.jsonl",
                "predictions-caf_.jsonl",
                "predictions-caf_-2.jsonl",
                "predictions-A_B-3.jsonl",
                "predictions-a_b-2-2.jsonl",
            ]
        );
    }

    fn parse(args: &[&str]) -> EvalConfig {
        Cli::parse_from(std::iter::once("eval").chain(args.iter().copied())).config
    }

    #[test]
    fn an_interval_needs_a_resample_beyond_each_end() {
        let check = |b: &str, c: &str| {
            parse(&["--data", "g.jsonl", "--predictions", "p.jsonl", "--bootstrap", b, "--confidence", c]).check()
        };
        let err = check("39", "0.95").unwrap_err().to_string();
        assert!(err.contains("a 95% interval needs at least 40 resamples"), "{err}");
        assert!(check("40", "0.95").is_ok());
        assert!(check("100", "0.99").is_err() && check("200", "0.99").is_ok());
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
            "--predictions",
            "majority.jsonl",
        ]);
        let got: Vec<(String, Source)> = sources(&config).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["run-7", "other", "run-7-2", "theirs", "majority-2"]);
        // A name given wins over one derived from a path: the run `run-7` gives way to `run-7=…`.
        let config = parse(&["--data", "gold.jsonl", "--model", run, "--predictions", "run-7=p.jsonl"]);
        let names: Vec<String> = sources(&config).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["run-7-2", "run-7"]);
        for (given, whose) in [("majority=m.jsonl", "a baseline's"), ("other=m.jsonl", "another system's")] {
            let config =
                parse(&["--data", "gold.jsonl", "--predictions", "other=theirs.jsonl", "--predictions", given]);
            let err = sources(&config).unwrap_err().to_string();
            assert!(err.contains(&format!("is taken ({whose})")), "{err}");
        }
        assert_eq!(got[1].1, Source::Predictions("theirs.jsonl".into()));
        assert!(matches!(got[0].1, Source::Model(_)));
    }

    #[test]
    fn nothing_to_evaluate_is_an_error() {
        let err = run(&parse(&["--data", "gold.jsonl"])).err().unwrap().to_string();
        assert!(err.contains("pass --model, --predictions or --compare"), "{err}");
        // A missing predictions file is named first, before the targets file it would be read with.
        let err = run(&parse(&["--data", "gold.jsonl", "--predictions", "nowhere/p.jsonl"])).err().unwrap().to_string();
        assert!(err.starts_with("nowhere/p.jsonl: No such file"), "{err}");
    }

    #[test]
    fn targets_without_a_stance_label_are_noted() {
        let r = |target: &str, label: &str| Record {
            id: None,
            text: "t".into(),
            target: target.into(),
            label: label.into(),
        };
        let labels: Vec<String> = ["favor", "against", "none"].map(String::from).to_vec();
        let gold = Gold::new(&labels, &[r("a", "favor"), r("a", "none"), r("b", "favor"), r("b", "against")]).unwrap();
        assert_eq!(
            missing_stance_notes(&gold),
            vec!["Target a has no gold records labelled against; F1 there counts as 0, so its F_avg is at most 50."]
        );
    }

    #[test]
    fn overlap_with_training_data_is_noted() {
        let r = |text: &str, target: &str| Record {
            id: None,
            text: text.into(),
            target: target.into(),
            label: "none".into(),
        };
        let note = overlap_note(&[r("a ", "t"), r("b", "t")], &[r("a", "t"), r("a", "u"), r("c", "t")], "x.jsonl");
        assert_eq!(
            note.unwrap(),
            "1 of 3 gold records (same text and target) are also in x.jsonl; scores on them overstate how it does \
             on new text."
        );
        assert_eq!(overlap_note(&[r("x", "t")], &[r("a", "t")], "f"), None);
    }
}
