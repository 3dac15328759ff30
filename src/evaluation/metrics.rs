//! Classification metrics over a label set: confusion matrix, per-label
//! precision, recall and F1, accuracy, macro-F1 and F_avg. Undefined ratios
//! count as 0, as scikit-learn's `zero_division=0`.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::{Neutral, DEFAULT_NEUTRAL};

/// The indices of the neutral labels: `declared` (a targets file's `neutral`),
/// else `none`; none when the set holds neither (F_avg is macro-F1 then).
pub fn neutral_indices(labels: &[String], declared: Option<&Neutral>) -> Vec<usize> {
    let default = [DEFAULT_NEUTRAL.to_string()];
    let names = declared.map_or(&default[..], |n| &n.0[..]);
    (0..labels.len()).filter(|&c| names.contains(&labels[c])).collect()
}

/// Counts of (gold, predicted) label pairs: rows are gold, columns predicted.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub counts: Array2<u64>,
    /// The labels F_avg leaves out ([`neutral_indices`]).
    pub neutral: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// The headline numbers of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub n: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Mean F1 of the stance labels (all but the neutral ones, `none`): SemEval-2016's F_avg for favor/against/none.
    pub f_avg: f64,
    pub per_label: Vec<LabelScores>,
}

impl Confusion {
    /// `gold` and `pred` are indices into `labels`.
    pub fn new(labels: &[String], gold: &[usize], pred: &[usize]) -> Self {
        let k = labels.len();
        let mut counts = Array2::zeros((k, k));
        for (&g, &p) in gold.iter().zip(pred) {
            counts[[g, p]] += 1;
        }
        Self { labels: labels.to_vec(), counts, neutral: neutral_indices(labels, None) }
    }

    /// The same counts, with `neutral` the labels F_avg leaves out.
    pub fn with_neutral(self, neutral: Vec<usize>) -> Self {
        Self { neutral, ..self }
    }

    pub fn total(&self) -> u64 {
        self.counts.sum()
    }

    pub fn label_scores(&self, c: usize) -> LabelScores {
        let tp = self.counts[[c, c]] as f64;
        let predicted = self.counts.column(c).sum() as f64;
        let support = self.counts.row(c).sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support as f64);
        let f1 = ratio(2.0 * precision * recall, precision + recall);
        LabelScores { label: self.labels[c].clone(), precision, recall, f1, support }
    }

    pub fn scores(&self) -> Scores {
        let per_label: Vec<LabelScores> = (0..self.labels.len()).map(|c| self.label_scores(c)).collect();
        let correct: u64 = (0..self.labels.len()).map(|c| self.counts[[c, c]]).sum();
        let stance = (0..per_label.len()).filter(|c| !self.neutral.contains(c)).map(|c| per_label[c].f1);
        Scores {
            n: self.total(),
            accuracy: ratio(correct as f64, self.total() as f64),
            macro_f1: mean(per_label.iter().map(|s| s.f1)),
            f_avg: mean(stance),
            per_label,
        }
    }
}

/// The label of every prediction, when there are several and all are the same.
pub fn single_answer(pred: &[usize]) -> Option<usize> {
    let (&first, rest) = pred.split_first()?;
    (!rest.is_empty() && rest.iter().all(|&p| p == first)).then_some(first)
}

/// Said in `train`'s summary and `eval`'s report, whatever recipe made the model;
/// `advice` is what to try (it depends on the recipe).
pub fn single_answer_warning(model: &str, label: &str, data: &str, advice: &str) -> String {
    format!(
        "{model} answers `{label}` for every {data} pair: it has learned nothing a majority vote would not; {advice}"
    )
}

/// What to try when a fine-tuned model answers one label, and when a frozen-encoder one does.
pub const FINE_TUNING_ADVICE: &str = "try more epochs, another learning rate, or --class-weights balanced";
/// The same for a run that already weighs its classes.
pub const WEIGHTED_FINE_TUNING_ADVICE: &str = "try more epochs or another learning rate";
pub const FROZEN_ADVICE: &str = "label more pairs, or try --feature-layers 4, a larger --head-c or another --model";

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    ratio(sum, n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["favor", "against", "none"].map(String::from).to_vec()
    }

    /// Numbers from scikit-learn 1.9.1:
    /// ```python
    /// y = [0,0,0,1,1,2,2,2,2,1]; p = [0,1,0,1,2,2,2,0,2,1]
    /// precision_recall_fscore_support(y, p)  # P [.667 .667 .75] R [.667 .667 .75] F1 idem
    /// f1_score(y, p, average="macro")        # 0.6944444
    /// accuracy_score(y, p)                   # 0.7
    /// ```
    #[test]
    fn hand_computed_case() {
        let gold = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1];
        let pred = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1];
        let s = Confusion::new(&labels(), &gold, &pred).scores();
        assert!((s.accuracy - 0.7).abs() < 1e-12);
        let f1: Vec<f64> = s.per_label.iter().map(|l| l.f1).collect();
        for (got, want) in f1.iter().zip([2.0 / 3.0, 2.0 / 3.0, 0.75]) {
            assert!((got - want).abs() < 1e-12);
        }
        assert!((s.macro_f1 - (2.0 / 3.0 + 2.0 / 3.0 + 0.75) / 3.0).abs() < 1e-12);
        assert!((s.f_avg - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.per_label[2].support, 4);
    }

    #[test]
    fn a_label_never_predicted_scores_zero_not_nan() {
        let s = Confusion::new(&labels(), &[0, 1], &[2, 2]).scores();
        assert_eq!(s.per_label[0].precision, 0.0);
        assert_eq!(s.f_avg, 0.0);
        assert!(s.macro_f1.is_finite());
    }

    /// A targets file may name several labels that take no stance: F_avg
    /// averages the others; an empty list leaves none out (F_avg = macro-F1).
    #[test]
    fn several_neutral_labels_are_all_left_out_of_f_avg() {
        let labels: Vec<String> = ["support", "oppose", "none", "unrelated"].map(String::from).to_vec();
        let (gold, pred) = ([0, 1, 2, 3, 3], [0, 0, 2, 3, 2]);
        let confusion = || Confusion::new(&labels, &gold, &pred);
        assert_eq!(confusion().neutral, [2], "`none` alone by default");
        let both = Neutral(vec!["unrelated".into(), "none".into()]);
        let s = confusion().with_neutral(neutral_indices(&labels, Some(&both))).scores();
        let f1: Vec<f64> = s.per_label.iter().map(|l| l.f1).collect();
        assert!((s.f_avg - (f1[0] + f1[1]) / 2.0).abs() < 1e-12, "{s:?}");
        let no_neutral = confusion().with_neutral(neutral_indices(&labels, Some(&Neutral(Vec::new())))).scores();
        assert_eq!(no_neutral.f_avg, no_neutral.macro_f1);
    }
}
