//! What each CLI command does end to end: its options, reading its inputs,
//! running the library over them, and writing its outputs. This layer sits
//! above every library module and nothing below imports it; `cli.rs` only
//! parses the command line and calls in here.
//!
//! - [`data`]: `data check`, `data split`; [`clean`]: `data clean`.
//! - [`train`]: `train`; [`cv`]: `cv` (train and evaluate per fold).
//! - [`predict`]: `predict`; [`embed`]: `embed`; [`eval`]: `eval`;
//!   [`calibrate`]: `calibrate` (a run's temperature, fitted on held-out data).
//! - [`serve`]: `serve` (HTTP, over [`crate::serving`]).
//! - [`suggest`]: `suggest`; [`label`]: `label`.

pub mod calibrate;
pub mod clean;
pub mod cv;
pub mod data;
pub mod embed;
pub mod eval;
pub mod label;
pub mod predict;
pub mod serve;
pub mod suggest;
pub mod train;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::Schema;
use crate::model::{Arithmetic, Classifier, Int8Plan, LinearKind, Precision, StanceSpec, MAX_LAYERS};
use crate::resolve::ModelDir;
use crate::training::TrainConfig;
use crate::{Error, Result};

/// How `predict`, `suggest` and `label` read their sentences: `--input-format`,
/// `--lines` and `--split-sentences`.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct InputLayout {
    /// Input layout (auto: by extension; stdin and others are sniffed as JSONL or lines).
    #[arg(long, value_enum, default_value_t = crate::input::InputFormat::Auto)]
    #[serde(default)]
    pub input_format: crate::input::InputFormat,
    /// Plain text with one sentence per line (the same as --input-format lines).
    #[arg(long, conflicts_with = "input_format")]
    #[serde(default)]
    pub lines: bool,
    /// Split each text into sentences (article text, `.txt` by default, always is).
    #[arg(long)]
    #[serde(default)]
    pub split_sentences: bool,
}

impl InputLayout {
    pub fn read_options(&self, bytes_read: Option<Arc<std::sync::atomic::AtomicU64>>) -> crate::input::ReadOptions {
        let format = if self.lines { crate::input::InputFormat::Lines } else { self.input_format };
        crate::input::ReadOptions { format, split_sentences: self.split_sentences, bytes_read, ..Default::default() }
    }
}

/// `--precision`, `--int8-keep-f32` and `--int8-keep-f32-layers`, as
/// `predict`, `eval`, `embed` and `serve` take them.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct PrecisionArgs {
    /// f32, or int8: the encoder's linear layers in 8-bit integers (CPU only;
    /// faster, within a fraction of a point of f32, see the README).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    #[serde(default)]
    pub precision: Precision,
    /// With int8: kinds of linear layer to keep in f32, comma-separated
    /// (query, key, value, attention-output, ffn-in, ffn-out): closer to f32, slower.
    #[arg(long, value_delimiter = ',', value_parser = linear_kind)]
    #[serde(default)]
    pub int8_keep_f32: Vec<LinearKind>,
    /// With int8: encoder layers to keep whole in f32, comma-separated, 0 the
    /// first (`docs/performance.md` measures `0`).
    #[arg(long, value_delimiter = ',', value_parser = layer_number)]
    #[serde(default)]
    pub int8_keep_f32_layers: Vec<u8>,
    /// With int8: input columns of the query, key, value and FFN-in layers
    /// multiplied in f32, where an encoder's few large activation columns
    /// are: `auto` (the default) chooses them when the model loads, from a
    /// built-in text; `none`; or up to 8 column numbers, comma-separated
    /// (`scripts/int8-error-sim.py` lists a model's). `docs/performance.md` measures them.
    #[arg(long, value_parser = ColumnChoice::parse)]
    #[serde(default)]
    pub int8_f32_columns: Option<ColumnChoice>,
}

/// One item of a comma-separated flag, with spaces around it allowed, as
/// `--int8-f32-columns` reads its own; an empty one is named.
fn list_item(item: &str) -> std::result::Result<&str, String> {
    match item.trim() {
        "" => Err("an empty item in the list (a comma too many?)".into()),
        item => Ok(item),
    }
}

/// One kind of `--int8-keep-f32`.
fn linear_kind(item: &str) -> std::result::Result<LinearKind, String> {
    let item = list_item(item)?;
    <LinearKind as clap::ValueEnum>::from_str(item, false).map_err(|_| {
        let kinds: Vec<_> =
            LinearKind::ALL.iter().filter_map(|k| Some(k.to_possible_value()?.get_name().to_string())).collect();
        format!("`{item}`: one of {}", kinds.join(", "))
    })
}

/// One layer of `--int8-keep-f32-layers`.
fn layer_number(item: &str) -> std::result::Result<u8, String> {
    let item = list_item(item)?;
    let max = MAX_LAYERS - 1;
    item.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| format!("`{item}`: a layer number, 0 to {max}"))
}

/// `--int8-f32-columns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnChoice {
    Auto,
    None,
    Columns(Vec<u16>),
}

impl ColumnChoice {
    /// One column number; a number too large for any layer is said to be one.
    fn column(c: &str, value: &str) -> std::result::Result<u16, String> {
        match c.parse::<u64>() {
            Ok(n) => u16::try_from(n).map_err(|_| format!("`{value}`: column {n} is past any layer's inputs")),
            Err(_) => Err(format!("`{value}`: auto, none, or column numbers (0, 1, …) separated by commas")),
        }
    }

    fn parse(value: &str) -> std::result::Result<Self, String> {
        match value.trim() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            _ => value
                .split(',')
                .map(|c| Self::column(list_item(c)?, value))
                .collect::<Result<_, _>>()
                .map(Self::Columns),
        }
    }
}

impl PrecisionArgs {
    pub fn arithmetic(&self) -> Result<Arithmetic> {
        for (flag, given) in [
            ("--int8-keep-f32", !self.int8_keep_f32.is_empty()),
            ("--int8-keep-f32-layers", !self.int8_keep_f32_layers.is_empty()),
            ("--int8-f32-columns", self.int8_f32_columns.is_some()),
        ] {
            if given && self.precision != Precision::Int8 {
                return Err(Error::Other(format!("{flag} needs --precision int8")));
            }
        }
        let arithmetic =
            Arithmetic::new(self.precision, &self.int8_keep_f32).keeping_layers(&self.int8_keep_f32_layers);
        match &self.int8_f32_columns {
            _ if self.precision != Precision::Int8 => Ok(arithmetic),
            None | Some(ColumnChoice::Auto) => Ok(arithmetic.with_f32_columns_chosen_at_load()),
            Some(ColumnChoice::None) => Ok(arithmetic),
            Some(ColumnChoice::Columns(columns)) => arithmetic.with_f32_columns(columns).map_err(Error::Other),
        }
    }
}

/// The model a command runs over: `--model` resolved, the device chosen for
/// the precision, the classifier loaded for inference.
pub fn load_classifier(model: &str, device: &str, precision: &PrecisionArgs) -> Result<(ModelDir, Classifier)> {
    let dir = crate::resolve::resolve(model)?;
    let classifier = classifier_in(&dir, device, precision)?;
    Ok((dir, classifier))
}

/// The classifier in `dir`, loaded for inference on the device chosen for the precision.
pub fn classifier_in(dir: &ModelDir, device: &str, precision: &PrecisionArgs) -> Result<Classifier> {
    let arithmetic = precision.arithmetic()?;
    let device = crate::device::select_for(device, arithmetic.precision)?;
    Classifier::load_inference(dir, &device, arithmetic)
}

/// The labels and targets that run folders carry, as a schema to read gold
/// data against: the first run's labels and every run's targets (so that each
/// run's data reads). Problems blame the runs; hints name the targets file the
/// first run trained with.
pub fn schema_of_runs(runs: &[impl AsRef<Path>]) -> Result<Schema> {
    let mut schema =
        Schema { labels: Vec::new(), targets: BTreeMap::new(), neutral: None, source: None, from_runs: true };
    for dir in runs {
        let spec = StanceSpec::read(&ModelDir::open(dir.as_ref())?)?;
        if schema.labels.is_empty() {
            (schema.labels, schema.neutral) = (spec.labels, spec.neutral);
        }
        for (id, description) in spec.targets {
            schema.targets.entry(id).or_insert(description);
        }
    }
    let trained_with = runs.first().and_then(|r| TrainConfig::from_json(&r.as_ref().join("train_config.json")).ok());
    schema.source = trained_with.map(|c| c.targets).filter(|file| file.is_file());
    Ok(schema)
}

/// Tokenising runs on its own thread beside the model (predict's reader,
/// serve's request tasks); tokenizers' rayon jobs would queue in the pool the
/// matmuls use (serial measured +15 % sentences/s).
pub fn tokenize_serially() {
    if !tokenizers::utils::parallelism::is_parallelism_configured() {
        tokenizers::utils::parallelism::set_parallelism(false);
    }
}

/// A stop test that Ctrl-C, SIGTERM (what `timeout`, docker and systemd
/// send) or SIGHUP turns true: training stops at the next step and saves a
/// checkpoint, and the process then ends as the signal would ([`stopped_by`]).
/// A second signal stops at once, as a kill would (reading data or evaluating
/// asks no stop test): a checkpoint swap it cuts short is finished by `--resume`.
pub fn interrupt_flag() -> Result<impl Fn(usize) -> bool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let handler = move |signal| {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("stancekit: stopped at once (a second signal)");
            end_as_signal(signal);
        }
        eprintln!("stancekit: stopping at the next step (a second signal stops at once)");
    };
    on_signal(handler)?;
    Ok(move |_| interrupted.load(Ordering::SeqCst))
}

/// Ctrl-C, SIGTERM or SIGHUP while `output` is streamed to its temporary
/// file: the temporary goes and the process ends as the signal would, so
/// `output` keeps what it held and nothing is left beside it. The signal is
/// never ignored: input may be a terminal that sends nothing more.
pub fn remove_partial_output_on_interrupt(output: &Path) -> Result<()> {
    let temp = crate::io::temp_file_of(output);
    on_signal(move |signal| {
        if let Some(temp) = &temp {
            let _ = std::fs::remove_file(temp);
        }
        end_as_signal(signal);
    })
}

/// The signal that stopped this run, if one did: the process should end as
/// that signal would once it has said so ([`end_as_signal`]).
pub fn stopped_by() -> Option<i32> {
    match STOPPED_BY.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Ends the process as `signal` would have, stancekit's own clean-up done: a
/// shell then sees 128 + the signal (130 for Ctrl-C, 143 for SIGTERM),
/// systemd a stop by SIGTERM, and a shell loop stops on Ctrl-C, as it does for
/// programs the signal kills (an exit status of 130 would let it go on).
pub fn end_as_signal(signal: i32) -> ! {
    #[cfg(unix)]
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// Runs `handler` on Ctrl-C, SIGTERM and SIGHUP, with the signal's number,
/// on a thread of its own.
/// A signal the process started with set to be ignored (`nohup` ignores
/// SIGHUP, a script's `cmd &` SIGINT) is left ignored.
#[cfg(unix)]
fn on_signal(mut handler: impl FnMut(i32) + Send + 'static) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let caught: Vec<i32> = [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|&s| !ignored(s)).collect();
    let mut signals = signal_hook::iterator::Signals::new(caught)
        .map_err(|e| Error::Other(format!("installing the signal handler: {e}")))?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            STOPPED_BY.store(signal, Ordering::SeqCst);
            handler(signal);
        }
    });
    Ok(())
}

/// Whether `signal` is set to be ignored.
#[cfg(unix)]
fn ignored(signal: i32) -> bool {
    // SAFETY: a null new action only reads the current one into `current`.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } == 0;
    read && current.sa_sigaction == libc::SIG_IGN
}

/// Elsewhere ctrlc, which does not say which signal came: Ctrl-C's.
#[cfg(not(unix))]
fn on_signal(mut handler: impl FnMut(i32) + Send + 'static) -> Result<()> {
    const SIGINT: i32 = 2;
    ctrlc::set_handler(move || {
        STOPPED_BY.store(SIGINT, Ordering::SeqCst);
        handler(SIGINT)
    })
    .map_err(|e| Error::Other(format!("installing the Ctrl-C handler: {e}")))
}

/// What a summary line adds for a run at `--precision int8`: the kernel that
/// ran, and the layers kept in f32.
fn int8_note(int8: Option<Int8Plan>) -> String {
    let Some(Int8Plan { kernel, arithmetic }) = int8 else { return String::new() };
    let mut kept: Vec<String> =
        arithmetic.kept_f32().into_iter().filter_map(|k| Some(k.to_possible_value()?.get_name().to_string())).collect();
    kept.extend(arithmetic.kept_layers().into_iter().map(|i| format!("layer {i}")));
    let columns: Vec<String> = arithmetic.f32_columns().iter().map(|c| c.to_string()).collect();
    if !columns.is_empty() {
        let how = if arithmetic.f32_columns_chosen_at_load() { " chosen at load" } else { "" };
        kept.push(format!("columns {}{how}", columns.join(" ")));
    }
    match kept.is_empty() {
        true => format!(", int8 (kernel {})", kernel.name()),
        false => format!(", int8 (kernel {}; in f32: {})", kernel.name(), kept.join(", ")),
    }
}

/// The parser of a count flag that must be at least 1 (a batch size, a timeout):
/// 0 is refused on the command line, not quietly made 1.
pub fn at_least_one<T>(value: &str) -> std::result::Result<T, String>
where
    T: std::str::FromStr<Err = std::num::ParseIntError> + PartialEq + From<u8>,
{
    match value.parse::<T>() {
        Ok(n) if n == T::from(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The most a count of things held in memory at once may be (a queue, open
/// connections, a batch): beyond, allocating them up front fails or panics.
pub const MAX_COUNT: usize = 1 << 20;

/// [`at_least_one`] for such a count, also at most [`MAX_COUNT`].
pub fn count(value: &str) -> std::result::Result<usize, String> {
    match at_least_one::<usize>(value)? {
        n if n > MAX_COUNT => Err(format!("must be at most {MAX_COUNT}")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three int8 lists read their items alike: spaces around an item
    /// are allowed, an empty one (a comma too many) is named, and a bad one
    /// says what is allowed.
    #[test]
    fn the_int8_lists_read_items_alike() {
        assert_eq!((linear_kind(" key"), layer_number(" 1")), (Ok(LinearKind::Key), Ok(1)));
        assert_eq!(ColumnChoice::parse(" 3, 5"), Ok(ColumnChoice::Columns(vec![3, 5])));
        assert_eq!(ColumnChoice::parse(" auto "), Ok(ColumnChoice::Auto));
        for empty in [linear_kind("").map(|_| ()), layer_number(" ").map(|_| ()), ColumnChoice::parse("3,").map(|_| ())]
        {
            assert_eq!(empty, Err("an empty item in the list (a comma too many?)".into()));
        }
        assert!(linear_kind("keyz")
            .unwrap_err()
            .contains("one of query, key, value, attention-output, ffn-in, ffn-out"));
        assert_eq!(layer_number("64"), Err("`64`: a layer number, 0 to 63".into()));
    }
}
