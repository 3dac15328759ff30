//! The results of an evaluation, as saved in `metrics.json`, and how one
//! system's answers become them. The field-by-field schema is documented in
//! `docs/metrics-json.md`; a change that is not additive bumps [`SCHEMA`].

use serde::{Deserialize, Serialize};

use super::bootstrap::{self, BootstrapSettings, Interval};
use super::calibration::{calibration, Calibration};
use super::gold::{Gold, Output};
use super::metrics::{Confusion, Scores};
use super::predictions::Probs;

/// Names the layout of `metrics.json`.
pub const SCHEMA: &str = "stancekit.metrics/1";

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub schema: String,
    pub labels: Vec<String>,
    /// The labels F_avg averages: all but `none`.
    pub stance_labels: Vec<String>,
    pub data: DataSummary,
    pub bootstrap: BootstrapSettings,
    /// Systems first, then baselines, in the order given.
    pub systems: Vec<SystemResult>,
    pub comparisons: Vec<Comparison>,
    /// What a reader should know: missing baselines, overlaps with training data.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    pub files: Vec<String>,
    pub records: usize,
    pub sentences: usize,
    pub targets: Vec<TargetSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub target: String,
    pub records: usize,
    /// Gold records per label, in `labels` order.
    pub label_counts: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    /// A stancekit model run by `eval`.
    Model,
    /// A predictions file, from stancekit or any other system.
    Predictions,
    Baseline,
}

/// Who a system is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub name: String,
    pub kind: SystemKind,
    /// The model folder, predictions file or baseline description.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemResult {
    #[serde(flatten)]
    pub info: SystemInfo,
    /// All targets in one pool: the official SemEval-2016 / TweetEval way.
    pub pooled: Block,
    /// The unweighted mean of the per-target scores.
    pub mean_over_targets: MeanBlock,
    pub targets: Vec<TargetBlock>,
    /// Absent when the system gives no probabilities.
    pub calibration: Option<Calibration>,
    pub errors: Errors,
}

/// Scores of one pool of records, with bootstrap intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    #[serde(flatten)]
    pub scores: Scores,
    /// Counts with gold labels as rows and predicted labels as columns, in `labels` order.
    pub confusion: Vec<Vec<u64>>,
    pub ci: Intervals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetBlock {
    pub target: String,
    #[serde(flatten)]
    pub block: Block,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanBlock {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub f_avg: f64,
    pub ci: Intervals,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    pub macro_f1: Interval,
    pub f_avg: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Misclassified records in all.
    pub count: usize,
    /// The first of them, most confident first (in data order without probabilities).
    pub top: Vec<ErrorRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub text: String,
    pub target: String,
    pub gold: String,
    pub predicted: String,
    /// The probability of the predicted label.
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Probs::is_empty")]
    pub probs: Probs,
}

/// System `a` against system `b` on the same resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// `pooled.f_avg`, `pooled.macro_f1` or `mean_over_targets.f_avg`.
    pub metric: String,
    pub a: f64,
    pub b: f64,
    /// a − b.
    pub difference: f64,
    /// Percentile interval of the resampled differences.
    pub ci: Interval,
    /// Two-sided paired-bootstrap p-value ([`bootstrap::flip_p_value`]).
    pub p_value: f64,
}

/// How a system is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreSettings {
    pub bootstrap: BootstrapSettings,
    pub calibration_bins: usize,
    /// How many errors [`Errors::top`] keeps.
    pub errors: usize,
}

/// A scored system with its bootstrap samples, kept for paired comparisons.
#[derive(Debug, Clone)]
pub struct Scored {
    pub result: SystemResult,
    /// One row of [`Columns`] statistics per resample.
    pub samples: Vec<Vec<f64>>,
}

/// The statistics computed on every resample, by column.
struct Columns;

impl Columns {
    const POOLED_MACRO_F1: usize = 0;
    const POOLED_F_AVG: usize = 1;
    const MEAN_MACRO_F1: usize = 2;
    const MEAN_F_AVG: usize = 3;
    /// Per target t: macro-F1 at FIRST_TARGET + 2t, F_avg at FIRST_TARGET + 2t + 1.
    const FIRST_TARGET: usize = 4;
}

/// The pooled and per-target confusions, each record counted `weights[i]` times.
fn confusions(gold: &Gold, pred: &[usize], weights: Option<&[u32]>) -> (Confusion, Vec<Confusion>) {
    let k = gold.labels.len();
    let mut pooled = Confusion {
        labels: gold.labels.clone(),
        counts: ndarray::Array2::zeros((k, k)),
        neutral: gold.neutral.clone(),
    };
    let mut per_target = vec![pooled.clone(); gold.targets.len()];
    for (i, (item, &p)) in gold.items.iter().zip(pred).enumerate() {
        let w = weights.map_or(1, |w| u64::from(w[i]));
        pooled.counts[[item.label, p]] += w;
        per_target[item.target].counts[[item.label, p]] += w;
    }
    (pooled, per_target)
}

/// Means over the targets that have records.
fn mean_scores(per_target: &[Scores]) -> (f64, f64, f64) {
    let present: Vec<&Scores> = per_target.iter().filter(|s| s.n > 0).collect();
    let n = present.len().max(1) as f64;
    let mean = |f: fn(&Scores) -> f64| present.iter().map(|s| f(s)).sum::<f64>() / n;
    (mean(|s| s.accuracy), mean(|s| s.macro_f1), mean(|s| s.f_avg))
}

fn stat_row(gold: &Gold, pred: &[usize], weights: &[u32]) -> Vec<f64> {
    let (pooled, per_target) = confusions(gold, pred, Some(weights));
    let pooled = pooled.scores();
    let per_target: Vec<Scores> = per_target.iter().map(Confusion::scores).collect();
    let (_, mean_macro, mean_f_avg) = mean_scores(&per_target);
    let mut row = vec![pooled.macro_f1, pooled.f_avg, mean_macro, mean_f_avg];
    // A resample that drew none of a target's sentences has no score for it
    // (not 0): NaN, which the intervals leave out, as the means over targets do.
    row.extend(per_target.iter().flat_map(|s| if s.n > 0 { [s.macro_f1, s.f_avg] } else { [f64::NAN; 2] }));
    row
}

/// Scores one system's answers on `gold`.
pub fn score(gold: &Gold, output: &Output, info: SystemInfo, settings: &ScoreSettings) -> Scored {
    let samples = bootstrap::samples(&gold.sentences, &settings.bootstrap, |w| stat_row(gold, &output.pred, w));
    let confidence = settings.bootstrap.confidence;
    let ci = |macro_col: usize, f_avg_col: usize| Intervals {
        macro_f1: bootstrap::interval(&samples, macro_col, confidence),
        f_avg: bootstrap::interval(&samples, f_avg_col, confidence),
    };
    let (pooled, per_target) = confusions(gold, &output.pred, None);
    let block = |c: &Confusion, ci: Intervals| Block {
        scores: c.scores(),
        confusion: c.counts.rows().into_iter().map(|r| r.to_vec()).collect(),
        ci,
    };
    let targets: Vec<TargetBlock> = per_target
        .iter()
        .enumerate()
        .map(|(t, c)| {
            let col = Columns::FIRST_TARGET + 2 * t;
            TargetBlock { target: gold.targets[t].clone(), block: block(c, ci(col, col + 1)) }
        })
        .collect();
    let target_scores: Vec<Scores> = targets.iter().map(|t| t.block.scores.clone()).collect();
    let (accuracy, macro_f1, f_avg) = mean_scores(&target_scores);
    let gold_labels = gold.gold_labels();
    let result = SystemResult {
        info,
        pooled: block(&pooled, ci(Columns::POOLED_MACRO_F1, Columns::POOLED_F_AVG)),
        mean_over_targets: MeanBlock { accuracy, macro_f1, f_avg, ci: ci(Columns::MEAN_MACRO_F1, Columns::MEAN_F_AVG) },
        targets,
        calibration: output
            .probs
            .as_ref()
            .map(|p| calibration(&gold_labels, &output.pred, p, settings.calibration_bins)),
        errors: errors(gold, output, settings.errors),
    };
    Scored { result, samples }
}

/// Misclassified records, most confident first.
fn errors(gold: &Gold, output: &Output, keep: usize) -> Errors {
    let confidence = |i: usize| output.probs.as_ref().map(|p| p[i][output.pred[i]]);
    let mut wrong: Vec<usize> = (0..gold.items.len()).filter(|&i| gold.items[i].label != output.pred[i]).collect();
    // A stable sort keeps data order among equal confidences.
    wrong.sort_by(|&a, &b| confidence(b).unwrap_or(0.0).total_cmp(&confidence(a).unwrap_or(0.0)));
    let top = wrong
        .iter()
        .take(keep)
        .map(|&i| {
            let item = &gold.items[i];
            ErrorRow {
                id: item.id.clone(),
                text: item.text.clone(),
                target: gold.targets[item.target].clone(),
                gold: gold.labels[item.label].clone(),
                predicted: gold.labels[output.pred[i]].clone(),
                confidence: confidence(i),
                probs: output.probs.as_ref().map(|p| Probs::from_values(&gold.labels, &p[i])).unwrap_or_default(),
            }
        })
        .collect();
    Errors { count: wrong.len(), top }
}

/// Paired comparison of `a` and `b`, scored on the same gold with the same bootstrap settings.
pub fn compare(a: &Scored, b: &Scored, confidence: f64) -> Comparison {
    let metrics = [
        ("pooled.f_avg", Columns::POOLED_F_AVG, a.result.pooled.scores.f_avg, b.result.pooled.scores.f_avg),
        ("pooled.macro_f1", Columns::POOLED_MACRO_F1, a.result.pooled.scores.macro_f1, b.result.pooled.scores.macro_f1),
        (
            "mean_over_targets.f_avg",
            Columns::MEAN_F_AVG,
            a.result.mean_over_targets.f_avg,
            b.result.mean_over_targets.f_avg,
        ),
    ];
    let differences = metrics
        .into_iter()
        .map(|(metric, col, va, vb)| {
            let diffs: Vec<f64> = a.samples.iter().zip(&b.samples).map(|(x, y)| x[col] - y[col]).collect();
            Difference {
                metric: metric.to_string(),
                a: va,
                b: vb,
                difference: va - vb,
                ci: bootstrap::interval_of(diffs.clone(), confidence),
                p_value: bootstrap::flip_p_value(va - vb, &diffs),
            }
        })
        .collect();
    Comparison { a: a.result.info.name.clone(), b: b.result.info.name.clone(), differences }
}

/// Record and label counts of the gold data.
pub fn data_summary(gold: &Gold, files: &[String]) -> DataSummary {
    let targets = (0..gold.targets.len())
        .map(|t| {
            let mut label_counts = vec![0u64; gold.labels.len()];
            gold.of_target(t).for_each(|i| label_counts[gold.items[i].label] += 1);
            TargetSummary {
                target: gold.targets[t].clone(),
                records: label_counts.iter().sum::<u64>() as usize,
                label_counts,
            }
        })
        .collect();
    DataSummary { files: files.to_vec(), records: gold.items.len(), sentences: gold.sentences.len(), targets }
}

/// The labels F_avg averages: all but the neutral ones.
pub fn stance_labels(gold: &Gold) -> Vec<String> {
    let labels = gold.labels.iter().enumerate();
    labels.filter(|(c, _)| !gold.neutral.contains(c)).map(|(_, l)| l.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::gold::tests::{labels, records};
    use super::*;

    fn gold() -> Gold {
        // Two targets; sentences s1..s4 each labelled for both.
        let rows = [
            ("s1", "a", "favor"),
            ("s1", "b", "against"),
            ("s2", "a", "against"),
            ("s2", "b", "none"),
            ("s3", "a", "none"),
            ("s3", "b", "favor"),
            ("s4", "a", "favor"),
            ("s4", "b", "against"),
        ];
        Gold::new(&labels(), &records(&rows.map(|(id, t, l)| (Some(id), id, t, l)))).unwrap()
    }

    fn settings() -> ScoreSettings {
        ScoreSettings {
            bootstrap: BootstrapSettings { resamples: 200, seed: 1, confidence: 0.95 },
            calibration_bins: 10,
            errors: 10,
        }
    }

    fn info(name: &str) -> SystemInfo {
        SystemInfo { name: name.into(), kind: SystemKind::Predictions, source: "test".into() }
    }

    /// Target a: gold F A N F, predicted F A F F → F1 favor 0.8, against 1, none 0.
    /// Target b: gold A N F A, predicted A N F N → F1 favor 1, against 2/3, none 2/3.
    /// Pooled: gold F A N F A N F A, predicted F A F F A N F N → favor P 3/4 R 1 F1 6/7,
    /// against P 1 R 2/3 F1 0.8, none P 1/2 R 1/2 F1 1/2.
    #[test]
    fn pooled_and_mean_over_targets_differ_as_computed_by_hand() {
        let output = Output { pred: vec![0, 1, 1, 2, 0, 0, 0, 2], probs: None };
        let r = score(&gold(), &output, info("x"), &settings()).result;
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(r.pooled.scores.f_avg, (6.0 / 7.0 + 0.8) / 2.0);
        close(r.pooled.scores.macro_f1, (6.0 / 7.0 + 0.8 + 0.5) / 3.0);
        close(r.targets[0].block.scores.f_avg, 0.9);
        close(r.targets[1].block.scores.f_avg, (1.0 + 2.0 / 3.0) / 2.0);
        close(r.mean_over_targets.f_avg, (0.9 + 5.0 / 6.0) / 2.0);
        close(r.mean_over_targets.accuracy, (0.75 + 0.75) / 2.0);
        assert_eq!(r.pooled.confusion, vec![vec![3, 0, 0], vec![0, 2, 1], vec![1, 0, 1]]);
        let ci = r.pooled.ci.f_avg;
        assert!(ci.low <= r.pooled.scores.f_avg && r.pooled.scores.f_avg <= ci.high, "{ci:?}");
        assert_eq!(r.errors.count, 2);
        assert!(r.calibration.is_none());
    }

    #[test]
    fn errors_come_most_confident_first() {
        let probs: Vec<Vec<f64>> = vec![
            vec![0.2, 0.3, 0.5],
            vec![0.1, 0.8, 0.1],
            vec![0.6, 0.3, 0.1],
            vec![0.1, 0.1, 0.8],
            vec![0.9, 0.05, 0.05],
            vec![0.5, 0.2, 0.3],
            vec![0.4, 0.3, 0.3],
            vec![0.3, 0.3, 0.4],
        ];
        let pred = probs.iter().map(|p| (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()).collect();
        let r = score(&gold(), &Output { pred, probs: Some(probs) }, info("x"), &settings()).result;
        let order: Vec<(Option<&str>, f64)> =
            r.errors.top.iter().map(|e| (e.id.as_deref(), e.confidence.unwrap())).collect();
        assert_eq!(order, vec![(Some("s3"), 0.9), (Some("s2"), 0.6), (Some("s1"), 0.5), (Some("s4"), 0.4)]);
        assert_eq!(r.errors.top[0].gold, "none");
        assert_eq!(r.errors.top[0].probs.get("favor"), Some(0.9));
        assert!(r.calibration.is_some());
    }

    #[test]
    fn a_system_compared_with_itself_does_not_differ() {
        let output = Output { pred: vec![0, 1, 1, 2, 0, 0, 0, 2], probs: None };
        let a = score(&gold(), &output, info("a"), &settings());
        let b = score(&gold(), &output, info("b"), &settings());
        let c = compare(&a, &b, 0.95);
        assert!(c.differences.iter().all(|d| d.difference == 0.0 && d.p_value == 1.0));
        let perfect = Output { pred: gold().gold_labels(), probs: None };
        let p = score(&gold(), &perfect, info("p"), &settings());
        let d = &compare(&p, &a, 0.95).differences[0];
        assert!(d.difference > 0.0 && d.ci.low >= 0.0, "{d:?}");
    }
}
