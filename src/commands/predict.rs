//! `stancekit predict`: open the inputs, load the model, stream every
//! (sentence, target) pair through it, write the rows (a file only when the run
//! succeeds), and say what was done.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::inference::predict::{predict_stream, Counts, OutputFormat, RowWriter, Sink, StreamOptions, TargetSet};
use crate::input::{open_records, InputFormat, ReadOptions, Records};
use crate::model::Int8Plan;
use crate::{Error, Result};

/// Configuration of `stancekit predict`.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct PredictConfig {
    /// Trained model folder (as `stancekit train` writes it) or Hugging Face hub id.
    #[arg(long)]
    pub model: String,
    /// Input files, read in order; `-` reads stdin.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Targets to score, comma-separated ids (default: every target the model was trained on).
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub targets: Vec<String>,
    /// A target and the description the model reads for it, `ID=DESCRIPTION`: a target
    /// the model was not trained on (zero-shot), or new wording for a known one; fine-tuned
    /// models only, as a frozen-encoder model has a classifier per trained target and
    /// description. Repeatable; each is scored as if listed in --targets.
    #[arg(long = "target", value_name = "ID=DESCRIPTION")]
    #[serde(default)]
    pub target: Vec<String>,
    /// Where to write predictions; `-` is stdout. A file is replaced only when the run succeeds.
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
    /// Output format (default: csv for a `.csv` output, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    #[command(flatten)]
    #[serde(flatten)]
    pub layout: super::InputLayout,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = 32, value_parser = super::count)]
    pub batch_size: usize,
    /// Batches per sorting window: pairs are sorted by length within a window to cut padding.
    #[arg(long, default_value_t = 16, value_parser = super::count)]
    pub window: usize,
    /// Skip invalid input lines (and count them) instead of stopping at the first.
    #[arg(long)]
    #[serde(default)]
    pub skip_invalid: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    #[serde(flatten)]
    pub precision: super::PrecisionArgs,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub counts: Counts,
    pub targets: usize,
    /// From the first input byte to the last output row (model loading excluded).
    pub seconds: f64,
    /// The reader of stdout went away (a closed pipe): the run stopped early, quietly.
    pub output_closed: bool,
    /// The int8 kernel and layers that ran, if `--precision int8`.
    pub int8: Option<Int8Plan>,
    /// The model's token limit for a pair (`max_length`), to which long sentences are cut.
    pub max_length: usize,
}

impl Summary {
    pub fn sentences_per_second(&self) -> f64 {
        self.counts.sentences as f64 / self.seconds.max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            // Not "sentences × targets": an input record may name its one target.
            "predicted {} rows ({} sentences, {} target{}) in {:.2} s ({:.1} sentences/s)",
            c.rows,
            c.sentences,
            self.targets,
            if self.targets == 1 { "" } else { "s" },
            self.seconds,
            self.sentences_per_second()
        )?;
        write!(f, "{}", super::int8_note(self.int8))?;
        if c.skipped > 0 {
            write!(f, "; skipped {} invalid line{}", c.skipped, if c.skipped == 1 { "" } else { "s" })?;
        }
        if c.truncated > 0 {
            let (n, max) = (c.truncated, self.max_length);
            write!(f, "; {n} row{} read a sentence cut to the model's {max} tokens", if n == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// Runs `stancekit predict`.
pub fn run(config: &PredictConfig) -> Result<Summary> {
    super::tokenize_serially();
    let inputs = config.input.iter().map(PathBuf::as_path).chain([Path::new(&config.model)]);
    crate::io::check_not_an_input(&config.output, "--output", inputs)?;
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (records, spans) = open_inputs(config, &bytes_read)?;
    let (_, classifier) = super::load_classifier(&config.model, &config.device, &config.precision)?;
    let targets = TargetSet::new(&classifier.spec.targets, &config.targets, &config.target)?;
    targets.check_fit(&classifier.pair_encoder())?;
    let format = config.format.unwrap_or(if config.output.extension().is_some_and(|e| e == "csv") {
        OutputFormat::Csv
    } else {
        OutputFormat::Jsonl
    });
    let options =
        StreamOptions { batch_size: config.batch_size, window: config.window, skip_invalid: config.skip_invalid };
    let progress = progress_bar(&config.input);
    let started = Instant::now();
    let labels = &classifier.spec.labels;
    let stream =
        |sink: &mut dyn Sink| predict_stream(&classifier, &targets, records, &options, Some(&bytes_read), sink);
    let counts = if config.output.as_os_str() == "-" {
        let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let mut writer =
            RowWriter::new(stdout, format, labels, spans, "stdout")?.flush_each_window(true).with_progress(progress);
        stream(&mut writer).and_then(|counts| writer.finish().map(|_| counts))
    } else {
        super::remove_partial_output_on_interrupt(&config.output)?;
        let mut counts = Counts::default();
        crate::io::write_atomic(&config.output, |w| {
            let name = config.output.display().to_string();
            let mut writer = RowWriter::new(w, format, labels, spans, &name)?.with_progress(progress);
            counts = stream(&mut writer)?;
            writer.finish().map(|_| ())
        })
        .map(|()| counts)
    };
    let targets = targets.selected().len();
    let (seconds, int8, max_length) =
        (started.elapsed().as_secs_f64(), classifier.int8, classifier.tokenizer.max_length());
    match counts {
        Ok(counts) => Ok(Summary { counts, targets, seconds, output_closed: false, int8, max_length }),
        Err(e) if is_broken_pipe(&e) => {
            Ok(Summary { counts: Counts::default(), targets, seconds, output_closed: true, int8, max_length })
        }
        Err(e) => Err(e),
    }
}

/// Opens every input now (a missing file fails before the model loads) and
/// chains them; also says whether records may carry spans.
fn open_inputs(config: &PredictConfig, bytes_read: &Arc<AtomicU64>) -> Result<(Records, bool)> {
    if config.input.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(Error::Other("--input: stdin (`-`) can be read only once".into()));
    }
    let options =
        ReadOptions { ids_name_file: config.input.len() > 1, ..config.layout.read_options(Some(bytes_read.clone())) };
    let mut chained: Records = Box::new(std::iter::empty());
    let mut spans = config.layout.split_sentences;
    for path in &config.input {
        let (format, records) = open_records(path, &options)?;
        spans |= format == InputFormat::Text;
        chained = Box::new(chained.chain(records));
    }
    Ok((chained, spans))
}

/// A byte-based bar when every input is a file and stderr a terminal; else none.
fn progress_bar(inputs: &[PathBuf]) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total: Option<u64> = inputs.iter().map(|p| file_size(p)).sum();
    let target = indicatif::ProgressDrawTarget::stderr();
    let bar = match total {
        Some(total) => indicatif::ProgressBar::with_draw_target(Some(total), target).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} [{elapsed_precise}, eta {eta}]")
                .expect("the template parses"),
        ),
        None => indicatif::ProgressBar::with_draw_target(None, target),
    };
    Some(bar)
}

fn file_size(path: &Path) -> Option<u64> {
    (path.as_os_str() != "-").then(|| std::fs::metadata(path).ok().map(|m| m.len())).flatten()
}

fn is_broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Runs `stancekit predict` and prints its summary line.
pub fn run_command(config: &PredictConfig) -> Result<()> {
    let summary = run(config)?;
    // A closed output pipe is the reader's choice (`| head`): no noise then.
    if !summary.output_closed {
        eprintln!("{summary}");
    }
    Ok(())
}
