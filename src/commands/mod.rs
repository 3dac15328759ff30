//! What each CLI command does end to end: its options, reading its inputs,
//! running the library over them, and writing its outputs. This layer sits
//! above every library module and nothing below imports it; `cli.rs` only
//! parses the command line and calls in here.
//!
//! - [`data`]: `data check`, `data split`; [`clean`]: `data clean`.
//! - [`train`]: `train`; [`cv`]: `cv` (train and evaluate per fold).
//! - [`predict`]: `predict`; [`embed`]: `embed`; [`eval`]: `eval`.
//! - [`serve`]: `serve` (HTTP, over [`crate::serving`]).
//! - [`suggest`]: `suggest`; [`label`]: `label`.

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

use crate::model::{Classifier, Precision};
use crate::resolve::ModelDir;
use crate::{Error, Result};

/// The model a command runs over: `--model` resolved, the device chosen for
/// the precision, the classifier loaded for inference.
pub fn load_classifier(model: &str, device: &str, precision: Precision) -> Result<(ModelDir, Classifier)> {
    let dir = crate::resolve::resolve(model)?;
    let device = crate::device::select_for(device, precision)?;
    let classifier = Classifier::load_inference(&dir, &device, precision)?;
    Ok((dir, classifier))
}

/// Tokenising runs on its own thread beside the model (predict's reader,
/// serve's request tasks); tokenizers' rayon jobs would queue in the pool the
/// matmuls use (serial measured +15 % sentences/s).
pub fn tokenize_serially() {
    if !tokenizers::utils::parallelism::is_parallelism_configured() {
        tokenizers::utils::parallelism::set_parallelism(false);
    }
}

/// A stop test that Ctrl-C turns true: training stops at the next step and
/// saves a checkpoint. A second Ctrl-C while the checkpoint is written is
/// ignored: the save finishes first.
pub fn interrupt_flag() -> Result<impl Fn(usize) -> bool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Error::Other(format!("installing the Ctrl-C handler: {e}")))?;
    Ok(move |_| interrupted.load(Ordering::SeqCst))
}

/// What a summary line adds for a run at `--precision int8`: the kernel that ran.
fn int8_note(kernel: Option<crate::kernels::int8::Kernel>) -> String {
    kernel.map(|k| format!(", int8 (kernel {})", k.name())).unwrap_or_default()
}
