//! `stancekit embed`: read sentences, embed them, write `.npy` or JSONL.

use std::fmt;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Problems;
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

/// Texts embedded per call: this many batches, sorted by length within them
/// as `predict` sorts its window, so that memory holds one window's texts and
/// rows, whatever the input's size.
const WINDOW_BATCHES: usize = 64;

/// Runs `stancekit embed`: from reading the input to the last row written.
pub fn run(config: &EmbedConfig) -> Result<Summary> {
    let inputs = [config.input.clone(), PathBuf::from(&config.model)];
    crate::io::check_not_an_input(&config.output, "--output", &inputs)?;
    check_output_format(&config.output)?;
    let arithmetic = config.precision.arithmetic()?;
    let dir = resolve::resolve(&config.model)?;
    check_max_length(config.max_length, &dir)?;
    let device = crate::device::select_for(&config.device, arithmetic.precision)?;
    let embedder = Embedder::load(&dir, &device, config.max_length, arithmetic)?;
    let started = Instant::now();
    let (format, records) = crate::input::open_texts(&config.input)?;
    let size = config.batch_size.saturating_mul(WINDOW_BATCHES);
    let windows = Windows { records, size, embedder: &embedder, batch_size: config.batch_size };
    let read = write_output(&config.output, windows, embedder.dimension)?;
    let seconds = started.elapsed().as_secs_f64();
    // One text per line: the last one's line number tells how many lines were blank.
    let lines = format == crate::input::InputFormat::Lines;
    let blank_lines = if lines { read.last_line.saturating_sub(read.rows) } else { 0 };
    Ok(Summary { sentences: read.rows, blank_lines, seconds, int8: embedder.int8 })
}

/// `--max-length`, if given, within what the model reads: the special tokens
/// and a word, up to its position table. Past the table sentence-transformers
/// fails; cutting quietly would hide that texts were cut. Checked before the
/// weights load.
fn check_max_length(max_length: Option<usize>, dir: &resolve::ModelDir) -> Result<()> {
    let Some(n) = max_length else { return Ok(()) };
    let min = crate::tokenization::MIN_MAX_LENGTH;
    if n < min {
        return Err(Error::Other(format!("--max-length {n}: at least {min} tokens, the special tokens and a word")));
    }
    let table = crate::model::EncoderConfig::load(&dir.config())?.max_tokens();
    if n > table {
        return Err(Error::Other(format!(
            "--max-length {n}: the model's position table holds {table} tokens; give at most {table}"
        )));
    }
    Ok(())
}

/// What was embedded: rows written, and the line of the last one's text.
#[derive(Debug, Default)]
struct Read {
    rows: usize,
    last_line: usize,
}

/// The input, read and embedded a window at a time.
struct Windows<'a> {
    records: crate::input::Records,
    size: usize,
    embedder: &'a Embedder,
    batch_size: usize,
}

type RowSink<'a> = dyn FnMut(&TextItem, &[f32]) -> Result<()> + 'a;

impl Windows<'_> {
    /// Hands each text's row to `row`, in input order. A bad record stops the
    /// embedding, and reading goes on only so that every problem is named.
    fn run(self, read: &mut Read, row: &mut RowSink) -> Result<()> {
        let mut problems = Vec::new();
        let mut items = Vec::with_capacity(self.size);
        let mut flush = |items: &mut Vec<(TextItem, usize)>, read: &mut Read| -> Result<()> {
            let texts: Vec<&str> = items.iter().map(|(i, _)| i.text.as_str()).collect();
            for ((item, line), vector) in items.iter().zip(self.embedder.embed(&texts, self.batch_size)?) {
                row(item, &vector)?;
                (read.rows, read.last_line) = (read.rows + 1, *line);
            }
            items.clear();
            Ok(())
        };
        for record in self.records {
            let Some(record) = Problems::gather(record, &mut problems)? else { continue };
            if problems.is_empty() {
                items.push((TextItem { id: record.id, text: record.text }, record.line));
                if items.len() >= self.size {
                    flush(&mut items, read)?;
                }
            }
        }
        if problems.is_empty() {
            flush(&mut items, read)?;
        }
        Problems::or_ok(problems, ())
    }
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

/// Writes each window's rows as they come: to stdout as JSONL (a reader that
/// went away, `| head`, ends the run quietly, as `predict`), or to a file
/// under a temporary name, renamed into place once every row is in.
fn write_output(path: &Path, windows: Windows, dimension: usize) -> Result<Read> {
    let mut read = Read::default();
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        let result = windows
            .run(&mut read, &mut |item, vector| json_row(&mut out, item, vector).map_err(|e| Error::io("stdout", e)));
        return match result {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(read),
            result => result.map(|()| read),
        };
    }
    super::remove_partial_output_on_interrupt(path)?;
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let failed = |e| Error::io(path, e);
    crate::io::write_atomic(path, |w| {
        if !is_npy {
            return windows.run(&mut read, &mut |item, vector| json_row(w, item, vector).map_err(failed));
        }
        // The header's row count is known at the end: it is written again over itself then.
        w.write_all(&npy_header(0, dimension)).map_err(failed)?;
        windows.run(&mut read, &mut |_, vector| {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            w.write_all(&bytes).map_err(failed)
        })?;
        w.seek(std::io::SeekFrom::Start(0)).map_err(failed)?;
        w.write_all(&npy_header(read.rows, dimension)).map_err(failed)
    })?;
    Ok(read)
}

fn json_row(out: &mut impl Write, item: &TextItem, embedding: &[f32]) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Row<'a> {
        id: &'a str,
        text: &'a str,
        embedding: &'a [f32],
    }
    crate::io::write_json_lines(out, [Row { id: &item.id, text: &item.text, embedding }])
}

/// An `.npy` (format 1.0) header of a `rows` × `dimension` float32 matrix,
/// always [`NPY_HEADER_BYTES`] long, so that the final one overwrites the first.
/// <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>
fn npy_header(rows: usize, dimension: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dimension}), }}");
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend(((NPY_HEADER_BYTES - 10) as u16).to_le_bytes());
    header.extend(dict.as_bytes());
    header.resize(NPY_HEADER_BYTES - 1, b' ');
    header.push(b'\n');
    header
}

/// A multiple of 64, as numpy aligns the data; room for any row count.
const NPY_HEADER_BYTES: usize = 128;
