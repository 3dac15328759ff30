//! Command-line front end: parses the command line and calls the command in
//! [`crate::commands`], which holds each command's options and work.

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{calibrate, clean, cv, data, embed, eval, label, predict, serve, suggest, train};

#[derive(Debug, Parser)]
#[command(name = "stancekit", version, about = "Where does a sentence stand on a target?")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Labelled data: validate it, count it, split it, clean it.
    #[command(subcommand)]
    Data(DataCommand),
    /// Sentence embeddings, as sentence-transformers' encode() gives them.
    Embed(embed::EmbedConfig),
    /// Train on labelled pairs: fine-tune the encoder (BERT or MPNet) and a head, or fit a classifier per target on a frozen encoder.
    Train(Box<train::TrainArgs>),
    /// Score models or predictions files against gold labels, beside baselines; write a report.
    Eval(Box<eval::EvalConfig>),
    /// Fit a trained model's temperature on held-out labelled data, so that its probabilities are calibrated.
    Calibrate(Box<calibrate::CalibrateConfig>),
    /// K-fold cross-validation by sentence: train as `train` does on K−1 folds, evaluate on the rest.
    // Not `train`'s runs/default: that is the demo's model, which `cv --overwrite` would wipe.
    #[command(mut_arg("out", |a| a.default_value("runs/cv").help("The cross-validation folder to write")))]
    Cv(Box<cv::CvConfig>),
    /// Stance of every (sentence, target) pair of the input, streamed.
    Predict(predict::PredictConfig),
    /// Pick the unlabelled sentences most worth labelling next, balanced over targets.
    Suggest(Box<suggest::SuggestConfig>),
    /// Label sentences in the browser: a page on localhost, each decision saved at once.
    Label(Box<label::LabelConfig>),
    /// HTTP service: stance for texts sent one request at a time, merged into model batches.
    Serve(serve::ServeConfig),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    Check(data::CheckConfig),
    Split(data::SplitConfig),
    Clean(clean::CleanConfig),
}

/// Parses the process's arguments and runs the command.
pub fn run_from_env() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    run(cli, &matches)
}

/// Runs one parsed command line; `matches` tells flags given from defaults.
pub fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    if let Some(warning) = crate::kernels::fused_setting().map_err(anyhow::Error::msg)? {
        eprintln!("warning: {warning}");
    }
    match cli.command {
        Command::Data(DataCommand::Check(config)) => report(data::check(&config)?, |r| &r.warnings)?,
        Command::Data(DataCommand::Split(config)) => report(data::split(&config)?, |r| &r.warnings)?,
        Command::Data(DataCommand::Clean(config)) => report(clean::clean(&config)?, |r| &r.warnings)?,
        // Run first: `tracing::info!` would skip its arguments, the run included, below info level.
        Command::Embed(config) => eprintln!("{}", embed::run(&config)?),
        Command::Train(args) => {
            let sub = matches.subcommand_matches("train").context("train arguments")?;
            train::run(*args, sub)?
        }
        Command::Eval(config) => eval::run_command(&config)?,
        Command::Calibrate(config) => calibrate::run_command(&config)?,
        Command::Cv(config) => cv::run_command(&config)?,
        Command::Predict(config) => predict::run_command(&config)?,
        Command::Suggest(config) => suggest::run_command(&config)?,
        Command::Label(config) => label::run_command(&config)?,
        Command::Serve(config) => serve::run(&config)?,
    }
    Ok(())
}

/// A data command's warnings on stderr, then its report.
fn report<R: std::fmt::Display>(report: R, warnings: fn(&R) -> &Vec<String>) -> crate::Result<()> {
    for line in warnings(&report) {
        eprintln!("warning: {line}");
    }
    crate::io::print_stdout(&format!("{report}\n"))
}

/// An error and its causes, each said once: an I/O error's message already
/// quotes the OS error that is also its cause.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1).map(|c| c.to_string()) {
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cv_writes_beside_the_demo_run_not_over_it() {
        let out = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Cv(config) => config.training.out,
            Command::Train(args) => args.settings.out,
            _ => unreachable!(),
        };
        assert_eq!(out(&["stancekit", "cv"]), std::path::Path::new("runs/cv"));
        assert_eq!(out(&["stancekit", "train"]), std::path::Path::new("runs/default"));
        assert_eq!(out(&["stancekit", "cv", "--out", "x"]), std::path::Path::new("x"));
    }

    #[test]
    fn a_count_of_zero_is_refused_not_made_one() {
        for args in [
            ["stancekit", "serve", "--queue-size", "0"],
            ["stancekit", "serve", "--timeout-ms", "0"],
            ["stancekit", "predict", "--window", "0"],
            ["stancekit", "eval", "--batch-size", "0"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err().to_string();
            assert!(err.contains("must be at least 1"), "{args:?}: {err}");
        }
        assert!(Cli::try_parse_from(["stancekit", "serve", "--model", "m", "--queue-size", "1"]).is_ok());
    }

    /// The commands that read sentences take the same layout flags, `--lines` too.
    #[test]
    fn sentence_readers_share_their_layout_flags() {
        let lines = crate::input::InputFormat::Lines;
        for args in [
            &["stancekit", "predict", "--model", "m", "--input", "a", "--lines"][..],
            &["stancekit", "suggest", "--model", "m", "--pool", "a", "--out", "o", "--lines"],
            &["stancekit", "label", "--input", "a", "--out", "o", "--lines"],
        ] {
            let layout = match Cli::try_parse_from(args).unwrap().command {
                Command::Predict(c) => c.layout,
                Command::Suggest(c) => c.layout,
                Command::Label(c) => c.layout,
                _ => unreachable!(),
            };
            assert_eq!(layout.read_options(None).format, lines, "{args:?}");
        }
        let both = ["stancekit", "label", "--input", "a", "--out", "o", "--lines", "--input-format", "jsonl"];
        assert!(Cli::try_parse_from(both).is_err(), "--lines is --input-format lines");
    }
}
