//! `stancekit train`: the settings (flags, a TOML file, or a run's saved
//! ones), the run folder, the data, and the [`Trainer`] over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::{Record, Schema};
use crate::evaluation::metrics;
use crate::model::{Classifier, HeadKind, StanceSpec};
use crate::resolve::ModelDir;
use crate::training::temperature::{self, TemperatureFit};
pub use crate::training::TrainConfig;
use crate::training::{class_weights, encode, progress, state, trainer, EvalLog, EvalStrategy, Outcome, Trainer};
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
    /// The temperature fitted on dev once trained (`--calibrate`), if any.
    pub calibration: Option<TemperatureFit>,
    pub seconds: f64,
    /// What the user must know about the model (printed after training).
    pub warnings: Vec<String>,
}

/// Trains as `config` says; `resume` continues the run in `config.out`.
/// `stop(step)` is asked after every optimizer step (Ctrl-C, tests).
pub fn train(config: TrainConfig, resume: bool, stop: &(dyn Fn(usize) -> bool + Sync)) -> Result<TrainSummary> {
    let started = Instant::now();
    config.validate()?;
    // Two runs into one folder would mix their files: the second is refused while the first runs.
    let _lock = crate::io::lock_beside(&config.out, RUN_BUSY)?;
    let pending = if resume { Some(check_resumable(&config)?) } else { None };
    let replace = if resume { false } else { check_run_dir(&config)? };
    let prepared = prepare(&config, resume)?;
    match pending {
        Some(Pending::Training) => {
            let out = config.out.clone();
            let summary = run_prepared(config, prepared, true, stop, started)?;
            if summary.outcome != Outcome::Interrupted {
                // What an interrupted --overwrite kept aside goes now that the new run is done.
                crate::io::Aside::left_behind(&out)?.settle(true);
            }
            return Ok(summary);
        }
        // Every dev pair dropped (a frozen run's untrained targets): nothing to fit the temperature on.
        Some(Pending::Calibration) if prepared.dev.is_empty() => return Err(finished(&config.out)),
        Some(Pending::Calibration) => return finish_calibration(config, prepared, started),
        None => {}
    }
    // Only now, with every input read and checked, may --overwrite replace the folder; the old
    // run is set aside until the new one is done, and comes back if training fails.
    let aside = crate::io::Aside::make(&config.out, replace)?;
    let mut result = crate::io::write_json(&config.out.join("train_config.json"), &config.as_saved())
        .and_then(|()| run_prepared(config, prepared, false, stop, started));
    match &mut result {
        // Interrupted to be resumed: neither run is done with, so both stay.
        Ok(summary) if summary.outcome == Outcome::Interrupted => {
            if let Some(kept) = aside.keep() {
                summary.warnings.push(format!(
                    "the run --overwrite replaces is kept in {} until --resume finishes the new one",
                    kept.display()
                ));
            }
        }
        _ => aside.settle(result.is_ok()),
    }
    result
}

/// Trains from what [`prepare`] read, in the run folder made for it.
fn run_prepared(
    config: TrainConfig,
    prepared: Prepared,
    resume: bool,
    stop: &(dyn Fn(usize) -> bool + Sync),
    started: Instant,
) -> Result<TrainSummary> {
    let Prepared { classifier, base, train, dev, weights, mut warnings } = prepared;
    let device = classifier.device.clone();
    let run = trainer::RunDir(config.out.clone());
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
    let single = trainer.best_single_answer.iter();
    let advice = match (trainer.config().freeze_encoder, trainer.config().class_weights.is_some()) {
        (true, _) => metrics::FROZEN_ADVICE,
        (false, false) => metrics::FINE_TUNING_ADVICE,
        (false, true) => metrics::WEIGHTED_FINE_TUNING_ADVICE,
    };
    warnings.extend(single.map(|label| metrics::single_answer_warning("the selected model", label, "dev", advice)));
    let calibrate = trainer.config().calibrate && outcome != Outcome::Interrupted;
    let batch_size = trainer.config().per_device_eval_batch_size;
    // The trainer's model and optimizer go first: the calibration loads the selected model anew.
    let dev = trainer.into_dev();
    let calibration = if calibrate { calibrate_on_dev(&run, dev, batch_size, &device, &mut warnings)? } else { None };
    Ok(TrainSummary { outcome, run_dir: run.0, best, calibration, seconds, warnings })
}

/// Fits the selected model's temperature on `dev` in the run folder (`--calibrate`).
fn calibrate_on_dev(
    run: &trainer::RunDir,
    dev: Vec<crate::training::Example>,
    batch_size: usize,
    device: &candle_core::Device,
    warnings: &mut Vec<String>,
) -> Result<Option<TemperatureFit>> {
    let dev_pairs = dev.len();
    if dev_pairs == 0 {
        return Ok(None);
    }
    let fit = temperature::calibrate_saved((&run.0, &run.0), |_| Ok(dev), batch_size, device)?;
    if fit.is_none() {
        warnings.push(format!(
            "not calibrated: the model gives the label of each of the {dev_pairs} dev pairs no probability at \
             any temperature (labels that the training data lacks for their targets)"
        ));
    }
    Ok(fit)
}

/// `--resume` of a run that finished training but was stopped before its
/// temperature was fitted: only the calibration is left to do.
fn finish_calibration(config: TrainConfig, prepared: Prepared, started: Instant) -> Result<TrainSummary> {
    let run = trainer::RunDir(config.out.clone());
    let state = state::TrainerState::load(&run.checkpoint().join("trainer_state.json"))?;
    let best = state.log_history.iter().find(|l| Some(l.step) == state.best_step).cloned();
    let Prepared { classifier, dev, mut warnings, .. } = prepared;
    let batch_size = config.per_device_eval_batch_size;
    let calibration = calibrate_on_dev(&run, dev, batch_size, &classifier.device, &mut warnings)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainSummary { outcome: Outcome::Finished, run_dir: run.0, best, calibration, seconds, warnings })
}

/// Why a run folder is refused while another process writes it.
pub const RUN_BUSY: &str = "another stancekit process is writing this folder; wait for it, or choose another --out";

/// What a run is built from, read and checked: nothing written yet.
pub struct Prepared {
    classifier: Classifier,
    base: ModelDir,
    train: Vec<crate::training::Example>,
    dev: Vec<crate::training::Example>,
    weights: Option<Vec<f32>>,
    /// What the user must know about the data (printed after training).
    warnings: Vec<String>,
}

/// Reads and checks everything a run needs (the targets, the data, the
/// device, the base model, the class weights), as `train` does before it
/// writes anything; `cv` asks it too before it empties its folder.
pub fn prepare(config: &TrainConfig, resume: bool) -> Result<Prepared> {
    let schema = Schema::load(&config.targets)?;
    let (train_records, mut dev_records) = load_data(config, &schema)?;
    let device = crate::device::select(&config.device)?;
    let base = crate::resolve::resolve(&config.model)?;
    // A fine-tuned model reads any target's description; the frozen recipe has a
    // classifier for each target it trained on and none for the others, so their
    // dev pairs are left out rather than scored by a classifier that learned nothing.
    let trained = targets_of(&schema, train_records.iter())?;
    let untrained = if config.freeze_encoder { untrained_dev(&mut dev_records, &trained) } else { Vec::new() };
    let spec = StanceSpec {
        labels: schema.labels.clone(),
        targets: targets_of(&schema, train_records.iter().chain(&dev_records))?,
        pooling: config.pooling,
        max_length: config.max_length,
        // The frozen recipe: a classifier per target over the sentence embedding (see head_fit).
        head: if config.freeze_encoder { HeadKind::PerTarget } else { HeadKind::Joint },
        feature_layers: config.feature_layers,
        temperature: None,
        neutral: schema.neutral.clone(),
    };
    let classifier = if resume {
        Classifier::load(&ModelDir::open(&trainer::RunDir(config.out.clone()).checkpoint())?, &device)?
    } else {
        Classifier::from_base(&base, spec, &device, config.seed)?
    };
    let train = encode(&classifier, &schema, &train_records)?;
    let dev = encode(&classifier, &schema, &dev_records)?;
    let weights = class_weights(config.class_weights.as_deref(), &train, schema.labels.len())?;
    let mut warnings: Vec<String> = schema.warnings().into_iter().chain(untrained).collect();
    warnings.extend(unseen_labels(&schema, &train_records, &dev_records, config.freeze_encoder));
    let (every, total) = (config.eval_steps, trainer::total_steps(config, train.len()));
    if config.eval_strategy == EvalStrategy::Steps && !config.freeze_encoder && every > total {
        // As transformers' Trainer: allowed, but then nothing is evaluated and the last model is kept.
        warnings.push(format!(
            "--eval-steps {every} is more than the run's {total} steps: no evaluation ran, the last model is kept"
        ));
    }
    warnings.extend(cut_pairs(&[("training", &train), ("dev", &dev)], config.max_length, &classifier));
    Ok(Prepared { classifier, base, train, dev, weights, warnings })
}

/// What a `--resume` has left to do.
enum Pending {
    Training,
    /// Trained, but stopped before `--calibrate` fitted the temperature.
    Calibration,
}

fn check_resumable(config: &TrainConfig) -> Result<Pending> {
    let out = &config.out;
    let run = trainer::RunDir(out.to_path_buf());
    run.recover_checkpoint()?;
    if !run.checkpoint().is_dir() && out.join("train_config.json").is_file() {
        return Err(Error::Other(format!(
            "cannot resume {}: it holds no whole checkpoint (the run stopped before its first one was written); \
             start again with --overwrite",
            out.display()
        )));
    }
    let state = run.checkpoint().join("trainer_state.json");
    let state =
        state::TrainerState::load(&state).map_err(|e| Error::Other(format!("cannot resume {}: {e}", out.display())))?;
    pending(&state, config).ok_or_else(|| finished(out))
}

fn finished(out: &Path) -> Error {
    Error::Other(format!("{}: this run has already finished", out.display()))
}

/// What `--resume` has left to do in the run `saved` describes, whose
/// checkpoint holds `state`: none once it is trained and calibrated.
fn pending(state: &state::TrainerState, saved: &TrainConfig) -> Option<Pending> {
    if !state.finished {
        return Some(Pending::Training);
    }
    // The temperature is written into config.json once fitted; without dev data there is none to fit.
    let has_dev = !saved.dev_files().is_empty() || saved.dev_split.is_some();
    let uncalibrated = || StanceSpec::read(&ModelDir::open(&saved.out).ok()?).ok().map(|s| s.temperature.is_none());
    (saved.calibrate && has_dev && uncalibrated() == Some(true)).then_some(Pending::Calibration)
}

/// Whether the run folder may be written ([`crate::io::check_output_dir`]), and is to be emptied first.
fn check_run_dir(config: &TrainConfig) -> Result<bool> {
    let out = &config.out;
    let inputs = config.input_paths();
    let replace = crate::io::Replace { marker: "train_config.json", inputs: &inputs };
    crate::io::check_output_dir(out, config.overwrite.then_some(replace), &refusal_hint(out))
}

/// The way out offered when `out` exists: `--resume` only where it would
/// have something to do, `--overwrite` only for a run folder.
fn refusal_hint(out: &Path) -> String {
    let settings = out.join("train_config.json");
    if !settings.is_file() {
        return "choose another --out: it holds no train_config.json, and --overwrite replaces only a run folder"
            .to_string();
    }
    let saved = TrainConfig::from_json(&settings).ok().map(|c| TrainConfig { out: out.to_path_buf(), ..c });
    let run = trainer::RunDir(out.to_path_buf());
    let checkpoints = [run.checkpoint(), run.new_checkpoint(), run.old_checkpoint()];
    let state = checkpoints.iter().find_map(|c| state::TrainerState::load(&c.join("trainer_state.json")).ok());
    match state.map(|state| saved.and_then(|saved| pending(&state, &saved))) {
        Some(Some(_)) => format!("pass --overwrite to replace it or --resume {} to continue it", out.display()),
        Some(None) => "pass --overwrite to replace it".to_string(),
        None => "pass --overwrite to replace it (it holds no checkpoint to --resume from: a run stopped before \
                 its first evaluation starts again, as does a frozen-encoder run)"
            .to_string(),
    }
}

pub fn load_data(config: &TrainConfig, schema: &Schema) -> Result<(Vec<Record>, Vec<Record>)> {
    let train = crate::data::load_records(&config.train, None, schema)?;
    match config.dev_split.filter(|_| config.eval_strategy != EvalStrategy::No) {
        Some(share) => {
            let parts = crate::data::split_grouped(&train, share, 0.0, config.seed)?;
            if parts.train.is_empty() || parts.dev.is_empty() {
                let (t, d) = (parts.train.len(), parts.dev.len());
                return Err(Error::Other(format!(
                    "--dev-split {share} leaves {t} training and {d} dev pairs of {}: both need some",
                    train.len()
                )));
            }
            Ok((crate::data::pick(&train, &parts.train), crate::data::pick(&train, &parts.dev)))
        }
        None if config.dev_files().is_empty() => Ok((train, Vec::new())),
        None => Ok((train, crate::data::load_records(config.dev_files(), None, schema)?)),
    }
}

/// Takes the dev pairs of targets without a training pair out of `dev`, with a
/// warning for each such target.
fn untrained_dev(dev: &mut Vec<Record>, trained: &BTreeMap<String, String>) -> Vec<String> {
    let mut left_out = BTreeMap::<String, usize>::new();
    dev.retain(|r| {
        trained.contains_key(&r.target) || {
            *left_out.entry(r.target.clone()).or_default() += 1;
            false
        }
    });
    let said = |(target, n): (String, usize)| {
        format!(
            "target `{target}` is in the dev data but has no training pair: the frozen recipe has no classifier \
             for it, so the run leaves it out, and its {n} dev pairs with it"
        )
    };
    left_out.into_iter().map(said).collect()
}

/// A warning for each target of the dev data with no training pair, and for
/// each label that no training pair of a target has: the frozen recipe's
/// classifier for that target never answers it (its probability is 0), and a
/// fine-tuned one has seen no example of it there.
fn unseen_labels(schema: &Schema, train: &[Record], dev: &[Record], frozen: bool) -> Vec<String> {
    let seen: std::collections::BTreeSet<(&str, &str)> =
        train.iter().map(|r| (r.target.as_str(), r.label.as_str())).collect();
    let targets: std::collections::BTreeSet<&str> = seen.iter().map(|&(t, _)| t).collect();
    let untrained: std::collections::BTreeSet<&str> =
        dev.iter().map(|r| r.target.as_str()).filter(|t| !targets.contains(t)).collect();
    let mut warnings: Vec<String> = untrained
        .into_iter()
        .map(|t| format!("target `{t}` is in the dev data but has no training pair: the model learns nothing of it"))
        .collect();
    let consequence =
        if frozen { "its classifier never answers it" } else { "the model has seen no example of it there" };
    for target in targets {
        for label in schema.labels.iter().filter(|l| !seen.contains(&(target, l.as_str()))) {
            warnings.push(format!("no training pair of target `{target}` is labelled `{label}`: {consequence}"));
        }
    }
    warnings
}

/// A warning for each set with pairs longer than the model reads: `--max-length`,
/// or the model's positions where those are fewer.
fn cut_pairs(sets: &[(&str, &[crate::training::Example])], max_length: usize, model: &Classifier) -> Vec<String> {
    let limit = model.tokenizer.max_length();
    let longer = if limit < max_length {
        format!("the model's {limit} positions (fewer than --max-length {max_length})")
    } else {
        format!("--max-length {max_length} tokens")
    };
    let cut = |set: &[crate::training::Example]| set.iter().filter(|e| e.encoded.truncated).count();
    sets.iter()
        .filter(|(_, set)| cut(set) > 0)
        .map(|(name, set)| {
            format!(
                "{} of {} {name} pairs are longer than {longer}: their sentences were cut to it",
                cut(set),
                set.len()
            )
        })
        .collect()
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

/// A run's warnings and its calibration on stderr, each line after `prefix`
/// (`cv` names the fold there).
pub fn say_warnings(summary: &TrainSummary, prefix: &str) {
    for warning in &summary.warnings {
        eprintln!("warning: {prefix}{warning}");
    }
    if let Some(fit) = &summary.calibration {
        eprintln!("{prefix}calibrated on dev: logits divided by {fit}");
    }
}

/// Runs `stancekit train` from its command line (`matches` tells flags given
/// from defaults), stopping cleanly on Ctrl-C; says how it ended.
pub fn run(args: TrainArgs, matches: &clap::ArgMatches) -> Result<()> {
    let (config, resume) = settings(args, matches)?;
    let stop = super::interrupt_flag()?;
    let summary = train(config, resume, &stop)?;
    let dir = summary.run_dir.display();
    say_warnings(&summary, "");
    match summary.outcome {
        Outcome::Interrupted => {
            let resume = format!("continue with `stancekit train --resume {dir}`");
            return Err(Error::Other(format!("interrupted; the checkpoint is saved: {resume}")));
        }
        Outcome::EarlyStopped => eprintln!("stopped early; the best model is in {dir}"),
        Outcome::Finished => eprintln!("done; the best model is in {dir}"),
    }
    Ok(())
}

/// The settings of a training run: a resumed run's saved ones, or the TOML of
/// `--config` under the flags given on the command line, or the flags alone.
fn settings(args: TrainArgs, matches: &clap::ArgMatches) -> Result<(TrainConfig, bool)> {
    let flags = args.settings;
    if let Some(dir) = args.resume {
        // The saved settings are the run's: a flag that would change one is refused, not dropped.
        let command = <TrainArgs as clap::Args>::augment_args(clap::Command::new("train"));
        let given = command.get_arguments().filter(|a| {
            let id = a.get_id().as_str();
            !["resume", "quiet"].contains(&id)
                && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        });
        if let Some(flag) = given.filter_map(|a| a.get_long()).map(|long| format!("--{long}")).next() {
            return Err(Error::Other(format!(
                "--resume continues {} with its saved settings; {flag} cannot change them (start a new run instead)",
                dir.display()
            )));
        }
        let mut config = TrainConfig::from_json(&dir.join("train_config.json"))?;
        let run = trainer::RunDir(dir.clone());
        // Read only: a checkpoint swap cut short is finished under the lock (check_resumable).
        let state = state::TrainerState::load(&run.checkpoint().join("trainer_state.json"))
            .or_else(|_| state::TrainerState::load(&run.new_checkpoint().join("trainer_state.json")));
        // Unreadable state is check_resumable's to report; checkpoints from before `started_in` keep their paths.
        if let Some(from) = state.ok().and_then(|s| s.started_in) {
            if std::env::current_dir().is_ok_and(|here| here != from) {
                config.rebase(&from);
            }
        }
        config.out = dir;
        config.quiet = flags.quiet;
        return Ok((config, true));
    }
    let Some(file) = args.config else { return Ok((flags, false)) };
    let json = |e: serde_json::Error| Error::Other(format!("{}: {e}", file.display()));
    let mut merged = serde_json::to_value(TrainConfig::from_toml(&file)?).map_err(json)?;
    if let serde_json::Value::Object(given) = serde_json::to_value(&flags).map_err(json)? {
        for (key, value) in given {
            if matches.value_source(&key) == Some(clap::parser::ValueSource::CommandLine) {
                merged[key] = value;
            }
        }
    }
    let mut config: TrainConfig = serde_json::from_value(merged).map_err(json)?;
    config.overwrite = flags.overwrite;
    config.quiet = flags.quiet;
    let (out, inside) = (config.out.canonicalize(), file.canonicalize());
    if config.overwrite && out.is_ok_and(|out| inside.is_ok_and(|f| f.starts_with(out))) {
        return Err(Error::Other(format!(
            "--config {} lies inside --out {}, which --overwrite would empty; keep it elsewhere",
            file.display(),
            config.out.display()
        )));
    }
    Ok((config, false))
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
