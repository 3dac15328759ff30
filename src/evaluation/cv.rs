//! The results of a k-fold cross-validation (`stancekit cv`, run by
//! `commands/cv.rs`): each fold's scores and their mean ± standard
//! deviation, as `cv.json` holds them.

use serde::{Deserialize, Serialize};

use super::results::{Metrics, SystemKind};

/// Names the layout of `cv.json`.
pub const SCHEMA: &str = "stancekit.cv/1";

/// One system's scores on one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    pub name: String,
    pub kind: SystemKind,
    pub f_avg: f64,
    pub macro_f1: f64,
    pub f_avg_mean_over_targets: f64,
    pub accuracy: f64,
    /// Expected calibration error, for a system with probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// 1-based.
    pub fold: usize,
    pub train_records: usize,
    pub test_records: usize,
    pub test_sentences: usize,
    pub systems: Vec<FoldScores>,
}

/// Mean and sample standard deviation (n − 1 in the denominator) over folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self { mean, std: var.sqrt() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSummary {
    pub name: String,
    pub kind: SystemKind,
    pub f_avg: MeanStd,
    pub macro_f1: MeanStd,
    pub f_avg_mean_over_targets: MeanStd,
    pub accuracy: MeanStd,
    /// Over the folds where the system gave probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece: Option<MeanStd>,
}

/// Everything `cv.json` holds. Scores are pooled over the fold's targets unless named otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResults {
    pub schema: String,
    pub folds: usize,
    pub seed: u64,
    pub data: Vec<String>,
    pub records: usize,
    pub sentences: usize,
    pub summary: Vec<SystemSummary>,
    pub per_fold: Vec<FoldResult>,
}

pub fn fold_scores(metrics: &Metrics) -> Vec<FoldScores> {
    metrics
        .systems
        .iter()
        .map(|s| FoldScores {
            name: s.info.name.clone(),
            kind: s.info.kind,
            f_avg: s.pooled.scores.f_avg,
            macro_f1: s.pooled.scores.macro_f1,
            f_avg_mean_over_targets: s.mean_over_targets.f_avg,
            accuracy: s.pooled.scores.accuracy,
            ece: s.calibration.as_ref().map(|c| c.ece),
        })
        .collect()
}

/// Mean ± std per system over the folds, systems in the first fold's order.
pub fn summarise(per_fold: &[FoldResult]) -> Vec<SystemSummary> {
    let Some(first) = per_fold.first() else { return Vec::new() };
    first
        .systems
        .iter()
        .map(|s| {
            let folds = || per_fold.iter().filter_map(|fold| fold.systems.iter().find(|x| x.name == s.name));
            let values = |f: fn(&FoldScores) -> f64| -> MeanStd { MeanStd::of(&folds().map(f).collect::<Vec<_>>()) };
            let ece: Vec<f64> = folds().filter_map(|x| x.ece).collect();
            SystemSummary {
                name: s.name.clone(),
                kind: s.kind,
                f_avg: values(|x| x.f_avg),
                macro_f1: values(|x| x.macro_f1),
                f_avg_mean_over_targets: values(|x| x.f_avg_mean_over_targets),
                accuracy: values(|x| x.accuracy),
                ece: (!ece.is_empty()).then(|| MeanStd::of(&ece)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        // numpy: np.std([0.6, 0.7, 0.8], ddof=1) = 0.1
        let m = MeanStd::of(&[0.6, 0.7, 0.8]);
        assert!((m.mean - 0.7).abs() < 1e-12 && (m.std - 0.1).abs() < 1e-12, "{m:?}");
        assert_eq!(MeanStd::of(&[0.5]).std, 0.0);
    }
}
