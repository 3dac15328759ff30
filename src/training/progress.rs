//! What a person sees while training: a bar per epoch on stderr, a line per
//! evaluation, a summary table at the end; and a JSON line per evaluation on
//! stdout for scripts.

use indicatif::{ProgressBar, ProgressStyle};

use super::state::EvalLog;

pub struct Progress {
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    pub fn epoch_bar(&self, epoch: usize, epochs: usize, batches: usize) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(batches as u64);
        let style = ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} batches {per_sec} {msg}")
            .expect("the template is valid");
        bar.set_style(style);
        bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
        bar
    }

    pub fn describe_step(&self, bar: &ProgressBar, loss: f64, lr: f64) {
        bar.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
    }

    pub fn evaluation(&self, log: &EvalLog) {
        // metrics.jsonl keeps every line: a stdout that failed (closed, full) stops no training.
        let _ = crate::io::print_stdout(&format!("{}\n", serde_json::to_string(log).expect("an eval log serialises")));
        if !self.quiet {
            eprintln!(
                "epoch {:.2} step {}: train loss {:.4}, dev loss {:.4}, accuracy {:.4}, macro-F1 {:.4}, F_avg {:.4}",
                log.epoch,
                log.step,
                log.train_loss,
                log.eval_loss,
                log.eval_accuracy,
                log.eval_macro_f1,
                log.eval_f_avg
            );
        }
    }

    /// The evaluations as a table, the selected one marked.
    pub fn summary(&self, history: &[EvalLog], best_step: Option<usize>, seconds: f64, examples_per_second: f64) {
        if self.quiet {
            return;
        }
        eprintln!("\n| epoch | step | train loss | dev loss | accuracy | macro-F1 | F_avg | |");
        eprintln!("|---:|---:|---:|---:|---:|---:|---:|---|");
        for l in history {
            let mark = if Some(l.step) == best_step { "best" } else { "" };
            eprintln!(
                "| {:.2} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {mark} |",
                l.epoch, l.step, l.train_loss, l.eval_loss, l.eval_accuracy, l.eval_macro_f1, l.eval_f_avg
            );
        }
        eprintln!("\ntrained in {seconds:.1} s ({examples_per_second:.1} examples/s)");
    }
}
