//! Command-line front end. Each subcommand's config struct lives in the module
//! that does the work; this file only routes to it.

use clap::{Parser, Subcommand};

use crate::data;

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
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    Check(data::CheckConfig),
    Split(data::SplitConfig),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(DataCommand::Check(config)) => {
            let report = data::check(&config)?;
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
    }
    Ok(())
}

fn warn(warnings: &[String]) {
    for line in warnings {
        eprintln!("warning: {line}");
    }
}
