//! Command-line front end. Each subcommand's config struct lives in the module
//! that does the work; this file only routes to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::data;
use crate::training::{self, TrainArgs, TrainConfig};

#[derive(Debug, Parser)]
#[command(name = "stancekit", version, about = "Where does a sentence stand on a target?")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Labelled data: validate it, count it, split it.
    #[command(subcommand)]
    Data(DataCommand),
    /// Sentence embeddings, as sentence-transformers' encode() gives them.
    Embed(crate::inference::embed::EmbedConfig),
    /// Fine-tune a BERT encoder and a classification head on labelled pairs.
    Train(Box<TrainArgs>),
    /// Score models or predictions files against gold labels, beside baselines; write a report.
    Eval(Box<crate::evaluation::command::EvalConfig>),
    /// K-fold cross-validation by sentence: train as `train` does on K−1 folds, evaluate on the rest.
    Cv(Box<crate::evaluation::cv::CvConfig>),
    /// Stance of every (sentence, target) pair of the input, streamed.
    Predict(crate::inference::predict::PredictConfig),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    Check(data::CheckConfig),
    Split(data::SplitConfig),
    Clean(data::CleanConfig),
}

/// Parses the process's arguments and runs the command.
pub fn run_from_env() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    run(cli, &matches)
}

/// Runs one parsed command line; `matches` tells flags given from defaults.
pub fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(DataCommand::Check(config)) => {
            let report = data::check(&config)?;
            warn(&report.warnings);
            println!("{report}");
        }
        Command::Data(DataCommand::Clean(config)) => {
            let report = data::clean(&config)?;
            warn(&report.warnings);
            println!("{report}");
        }
        Command::Data(DataCommand::Split(config)) => {
            let report = data::split(&config)?;
            warn(&report.warnings);
            println!("{report}");
        }
        Command::Embed(config) => {
            let n = crate::inference::embed::run(&config)?;
            tracing::info!("embedded {n} sentences");
        }
        Command::Train(args) => {
            let sub = matches.subcommand_matches("train").context("train arguments")?;
            let (config, resume) = train_settings(*args, sub)?;
            train(config, resume)?;
        }
        Command::Eval(config) => eval(&config)?,
        Command::Cv(config) => cv(&config)?,
        Command::Predict(config) => {
            let summary = crate::inference::predict::run(&config)?;
            // A closed output pipe is the reader's choice (`| head`): no noise then.
            if !summary.output_closed {
                eprintln!("{summary}");
            }
        }
    }
    Ok(())
}

/// A flag that Ctrl-C sets; training stops at the next step and saves a checkpoint.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    // A second Ctrl-C while the checkpoint is written is ignored: the save finishes first.
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

fn train(config: TrainConfig, resume: bool) -> anyhow::Result<()> {
    let interrupted = interrupt_flag()?;
    let summary = training::train(config, resume, &|_| interrupted.load(Ordering::SeqCst))?;
    let dir = summary.run_dir.display();
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    match summary.outcome {
        training::Outcome::Interrupted => {
            anyhow::bail!("interrupted; the checkpoint is saved: continue with `stancekit train --resume {dir}`")
        }
        training::Outcome::EarlyStopped => eprintln!("stopped early; the best model is in {dir}"),
        training::Outcome::Finished => eprintln!("done; the best model is in {dir}"),
    }
    Ok(())
}

fn eval(config: &crate::evaluation::command::EvalConfig) -> anyhow::Result<()> {
    use crate::evaluation::command;
    let evaluation = command::run(config)?;
    print!("{}", crate::reporting::table::render(&evaluation.report()));
    if let Some(dir) = &config.report {
        command::write(&evaluation, config, dir)?;
        eprintln!("report: {}", dir.join("report.html").display());
    }
    Ok(())
}

fn cv(config: &crate::evaluation::cv::CvConfig) -> anyhow::Result<()> {
    let interrupted = interrupt_flag()?;
    let results = crate::evaluation::cv::run(config, &|_| interrupted.load(Ordering::SeqCst))?;
    print!("{}", crate::reporting::cv::table(&results));
    eprintln!("cross-validation: {}", config.training.out.join("cv.md").display());
    Ok(())
}

/// The settings of a training run: a resumed run's saved ones, or the TOML of
/// `--config` under the flags given on the command line, or the flags alone.
fn train_settings(args: TrainArgs, matches: &ArgMatches) -> anyhow::Result<(TrainConfig, bool)> {
    let flags = args.settings;
    if let Some(dir) = args.resume {
        let mut config = TrainConfig::from_json(&dir.join("train_config.json"))?;
        config.out = dir;
        config.quiet = flags.quiet;
        return Ok((config, true));
    }
    let Some(file) = args.config else { return Ok((flags, false)) };
    let mut merged = serde_json::to_value(TrainConfig::from_toml(&file)?)?;
    if let serde_json::Value::Object(given) = serde_json::to_value(&flags)? {
        for (key, value) in given {
            if matches.value_source(&key) == Some(ValueSource::CommandLine) {
                merged[key] = value;
            }
        }
    }
    let mut config: TrainConfig = serde_json::from_value(merged)?;
    config.overwrite = flags.overwrite;
    config.quiet = flags.quiet;
    Ok((config, false))
}

fn warn(warnings: &[String]) {
    for line in warnings {
        eprintln!("warning: {line}");
    }
}
