//! Reports of an evaluation: a terminal table, Markdown, and one self-contained
//! HTML file with SVG charts. Each renders the same [`Report`]; none computes a
//! number of its own beyond formatting.

pub mod cv;
pub mod html;
pub mod markdown;
pub mod svg;
pub mod table;

use std::collections::BTreeMap;

use crate::evaluation::bootstrap::Interval;
use crate::evaluation::results::{Metrics, SystemKind, SystemResult};
use crate::training::EvalLog;

/// What a report shows.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub metrics: &'a Metrics,
    /// The training logs of the systems that are training runs.
    pub training: &'a [Training],
    /// Target id → description.
    pub descriptions: &'a BTreeMap<String, String>,
}

/// What a training run logged: its dev evaluations and the one it selected.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    /// The system (run) name.
    pub system: String,
    pub logs: Vec<EvalLog>,
    /// The step of the model in the run folder, from `trainer_state.json`.
    pub best_step: Option<usize>,
}

impl Training {
    /// The epoch of the selected evaluation.
    pub fn best_epoch(&self) -> Option<f64> {
        self.logs.iter().find(|l| Some(l.step) == self.best_step).map(|l| l.epoch)
    }
}

impl Report<'_> {
    /// The training logs of a system, if it is a run that has them.
    pub fn training_of(&self, system: &str) -> Option<&Training> {
        self.training.iter().find(|t| t.system == system)
    }

    /// The systems under evaluation, baselines left out.
    pub fn evaluated(&self) -> impl Iterator<Item = &SystemResult> {
        self.metrics.systems.iter().filter(|s| s.info.kind != SystemKind::Baseline)
    }

    /// A p-value as text: one that no resample reached is below 1 / resamples.
    /// A p-value as its resolution allows: p = 2 × flips / B moves in steps
    /// of 2/B, so no flip at all says p < 2/B, and a p below 0.001 keeps the
    /// digits that tell it from 0 (0.0004 at B = 10,000, not 0.000).
    pub fn p_value(&self, p: f64) -> String {
        let step = 2.0 / self.metrics.bootstrap.resamples as f64;
        let decimals = (-step.log10()).ceil().max(3.0) as usize;
        if p < step {
            let bound = format!("{:.decimals$}", step.min(1.0));
            return format!("< {}", bound.trim_end_matches('0').trim_end_matches('.'));
        }
        format!("{p:.decimals$}")
    }

    /// "p = 0.012" or "p < 0.001".
    pub fn p_inline(&self, p: f64) -> String {
        let text = self.p_value(p);
        if text.starts_with('<') {
            format!("p {text}")
        } else {
            format!("p = {text}")
        }
    }

    pub fn ci_percent(&self) -> String {
        format!("{} %", trim_float(self.metrics.bootstrap.confidence * 100.0))
    }
}

/// What the report's terms mean, F_avg's with this report's labels; both
/// the Markdown and the HTML report end with these.
pub fn definitions(metrics: &Metrics) -> Vec<(&'static str, String)> {
    let stance = metrics.stance_labels.join(" and ");
    let neutral: Vec<&str> =
        metrics.labels.iter().filter(|l| !metrics.stance_labels.contains(l)).map(String::as_str).collect();
    let left_out = match neutral.as_slice() {
        [] => "no label is neutral here, so F_avg equals macro-F1".to_string(),
        [label] => format!("leaving out `{label}`, the neutral label"),
        labels => format!("leaving out the neutral labels `{}`", labels.join("`, `")),
    };
    let f_avg = format!(
        "the mean of the F1 scores of the stance labels, here {stance} ({left_out}; the targets file's `neutral` \
         names the neutral label or labels, `none` by default): the official SemEval-2016 Task 6 metric. Pooled: \
         computed once over the records of all targets together, as the official script and TweetEval do. Mean \
         of targets: computed per target, then averaged; it weighs a small target as much as a large one."
    );
    let mut out = vec![("F_avg", f_avg)];
    out.extend(DEFINITIONS.iter().map(|&(term, meaning)| (term, meaning.to_string())));
    out
}

/// The terms whose meaning does not depend on the report.
const DEFINITIONS: &[(&str, &str)] = &[
    ("macro-F1", "the unweighted mean of the F1 scores of all labels, the neutral ones included."),
    (
        "Interval",
        "a percentile bootstrap interval: sentences are drawn with replacement (all records of a sentence \
         together, since they share its wording) and every score is recomputed on each resample.",
    ),
    (
        "p",
        "two-sided paired-bootstrap p-value of a difference between two systems: twice the share of resamples \
         (the same resamples for both) in which the difference does not have the observed sign.",
    ),
    (
        "ECE",
        "expected calibration error: records are binned by confidence (the probability of the predicted \
         label); ECE is the record-weighted mean gap between a bin's accuracy and its mean confidence. \
         0 is perfect. Brier: the mean squared distance between the probabilities and the one-hot gold label.",
    ),
    (
        "Baselines",
        "majority: each target's most frequent training label. tfidf-lr: per target, TF-IDF over word \
         1- and 2-grams with logistic regression (C = 1), trained on the same training data.",
    ),
];

/// A score in [0, 1] as a percentage with one decimal, as SemEval tables print F_avg.
pub fn pct(x: f64) -> String {
    // Bootstrap percentiles can land a hair below zero; "-0.0" would read as a sign.
    let text = format!("{:.1}", 100.0 * x);
    if text == "-0.0" {
        "0.0".into()
    } else {
        text
    }
}

/// An interval as percentages.
pub fn interval(ci: &Interval) -> String {
    format!("[{}, {}]", pct(ci.low), pct(ci.high))
}

/// A signed difference of scores in percentage points.
pub fn points(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// ", log loss 0.123" after `separator`, or nothing for a file written before the log loss was.
fn log_loss_text(c: &crate::evaluation::calibration::Calibration, separator: &str) -> String {
    c.log_loss.map_or(String::new(), |l| format!("{separator}log loss {l:.3}"))
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod format_tests {
    #[test]
    fn no_negative_zero() {
        assert_eq!(super::pct(-1e-12), "0.0");
        assert_eq!(super::pct(0.4567), "45.7");
        assert_eq!(super::points(0.1), "+10.0");
    }
}
