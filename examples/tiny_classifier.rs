//! Writes the tests' tiny random stance classifier
//! ([`stancekit::testing::write_tiny_classifier`]) to a folder, for scripts
//! that need a model in seconds and no download (`scripts/test-spark.sh`).
//!
//! ```text
//! cargo run --example tiny_classifier -- DIR [SEED]
//! ```

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().context("usage: tiny_classifier DIR [SEED]")?);
    let seed = args.next().map(|s| s.parse()).transpose().context("SEED: a whole number")?.unwrap_or(11);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    stancekit::testing::write_tiny_classifier(&dir, seed)?;
    Ok(())
}
