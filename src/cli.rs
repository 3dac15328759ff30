//! Command-line front end. Each subcommand's config struct lives in the module
//! that does the work; this file only routes to it.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "stancekit", version, about = "Where does a sentence stand on a target?")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sentence embeddings, as sentence-transformers' encode() gives them.
    Embed(crate::inference::embed::EmbedConfig),
    /// Stance of every (sentence, target) pair of the input, streamed.
    Predict(crate::inference::predict::PredictConfig),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Embed(config) => {
            let n = crate::inference::embed::run(&config)?;
            tracing::info!("embedded {n} sentences");
        }
        Command::Predict(config) => {
            crate::inference::predict::prepare_process();
            let summary = crate::inference::predict::run(&config)?;
            // A closed output pipe is the reader's choice (`| head`): no noise then.
            if !summary.output_closed {
                eprintln!("{summary}");
            }
        }
    }
    Ok(())
}
