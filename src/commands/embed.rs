//! `stancekit embed`: read sentences, embed them, write `.npy` or JSONL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::inference::embed::Embedder;
use crate::input::TextItem;
use crate::model::Int8Plan;
use crate::resolve;
use crate::{Error, Result};

/// Configuration of `stancekit embed`.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct EmbedConfig {
    /// Model folder or Hugging Face hub id.
    #[arg(long, default_value = resolve::DEFAULT_MODEL)]
    pub model: String,
    /// Sentences: JSONL with `text` (optional `id`), CSV/TSV with a `text` column, or plain text with one
    /// sentence per line; `-` reads stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write: `.npy` (a float32 matrix) or `.jsonl` (`{"id", "text", "embedding"}`); `-` is stdout (JSONL).
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// Token limit per sentence (default: the model's `max_seq_length`, else its position table).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    #[serde(flatten)]
    pub precision: super::PrecisionArgs,
}

/// What `stancekit embed` did, for its summary line.
#[derive(Debug)]
pub struct Summary {
    pub sentences: usize,
    /// Blank lines between the texts of a plain-text input, which get no row.
    pub blank_lines: usize,
    pub seconds: f64,
    /// The int8 kernel and layers, if `--precision int8`.
    pub int8: Option<Int8Plan>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.sentences as f64 / self.seconds.max(1e-9);
        let int8 = super::int8_note(self.int8);
        write!(f, "embedded {} sentences in {:.2} s ({rate:.1} sentences/s){int8}", self.sentences, self.seconds)?;
        if self.blank_lines > 0 {
            let n = self.blank_lines;
            write!(f, "; {n} blank line{} got no row: row i is the i-th text, and the JSONL output gives each its line number as `id`", if n == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// Runs `stancekit embed`: from reading the input to the last row written.
pub fn run(config: &EmbedConfig) -> Result<Summary> {
    let inputs = [config.input.clone(), PathBuf::from(&config.model)];
    crate::io::check_not_an_input(&config.output, "--output", &inputs)?;
    check_output_format(&config.output)?;
    if let Some(n) = config.max_length.filter(|&n| n < crate::tokenization::MIN_MAX_LENGTH) {
        let min = crate::tokenization::MIN_MAX_LENGTH;
        return Err(Error::Other(format!("--max-length {n}: at least {min} tokens, the special tokens and a word")));
    }
    let arithmetic = config.precision.arithmetic()?;
    let dir = resolve::resolve(&config.model)?;
    let device = crate::device::select_for(&config.device, arithmetic.precision)?;
    let embedder = Embedder::load(&dir, &device, config.max_length, arithmetic)?;
    if let Some(n) = config.max_length.filter(|&n| n > embedder.max_length()) {
        // sentence-transformers fails on such a length; cutting quietly would hide that the text was cut.
        let table = embedder.max_length();
        return Err(Error::Other(format!(
            "--max-length {n}: the model's position table holds {table} tokens; give at most {table}"
        )));
    }
    let started = Instant::now();
    let (format, items) = crate::input::read_texts_as(&config.input)?;
    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let vectors = embedder.embed(&texts, config.batch_size)?;
    write_output(&config.output, &items, &vectors, embedder.dimension)?;
    let seconds = started.elapsed().as_secs_f64();
    // One text per line: each id is its line number, so the last one tells how many lines were blank.
    let lines = format == crate::input::InputFormat::Lines;
    let last_line = items.last().and_then(|i| i.id.parse::<usize>().ok()).filter(|_| lines);
    let blank_lines = last_line.map_or(0, |last| last.saturating_sub(items.len()));
    Ok(Summary { sentences: items.len(), blank_lines, seconds, int8: embedder.int8 })
}

/// The output's ending picks its format: `.npy`, or JSONL for `.jsonl`, `.json`,
/// `.ndjson` and stdout. Another ending (`.npz`, `.csv`) is refused rather than
/// written as JSONL under a name that promises something else.
fn check_output_format(path: &Path) -> Result<()> {
    let ending = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ending.as_deref() {
        _ if path.as_os_str() == "-" => Ok(()),
        Some("npy" | "jsonl" | "json" | "ndjson") => Ok(()),
        _ => Err(Error::Other(format!(
            "--output {}: end the name in .npy (a float32 matrix) or .jsonl (one JSON line per sentence)",
            path.display()
        ))),
    }
}

fn write_output(path: &Path, items: &[TextItem], vectors: &[Vec<f32>], dimension: usize) -> Result<()> {
    #[derive(Serialize)]
    struct Row<'a> {
        id: &'a str,
        text: &'a str,
        embedding: &'a [f32],
    }
    let rows = items.iter().zip(vectors).map(|(i, v)| Row { id: &i.id, text: &i.text, embedding: v });
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) chose to: as `predict`, end quietly.
        return match crate::io::write_json_lines(&mut out, rows) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            result => result.map_err(|e| Error::io("stdout", e)),
        };
    }
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    crate::io::write_atomic(path, |w| {
        if is_npy {
            // No sentences still make a matrix of the model's width: (0, 384), not (0, 0).
            let matrix = ndarray::Array2::from_shape_vec((vectors.len(), dimension), vectors.concat())
                .map_err(|e| Error::Other(e.to_string()))?;
            ndarray_npy::WriteNpyExt::write_npy(&matrix, w)
                .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
        } else {
            crate::io::write_json_lines(w, rows).map_err(|e| Error::io(path, e))
        }
    })
}
