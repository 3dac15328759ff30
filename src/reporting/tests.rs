//! The renderers on one small evaluation: two systems, two baselines, training curves.

use std::collections::BTreeMap;

use super::*;
use crate::evaluation::bootstrap::BootstrapSettings;
use crate::evaluation::gold::tests::{labels, records};
use crate::evaluation::gold::{Gold, Output};
use crate::evaluation::results::{self, ScoreSettings, SystemInfo, SystemKind};

/// What a report renders, made the way `eval` makes it, small enough to read in a test.
pub(crate) struct Sample {
    metrics: Metrics,
    training: Vec<Training>,
    descriptions: BTreeMap<String, String>,
}

impl Sample {
    fn report(&self) -> Report<'_> {
        Report { metrics: &self.metrics, training: &self.training, descriptions: &self.descriptions }
    }
}

pub(crate) fn sample() -> Sample {
    let rows: Vec<(Option<&str>, &str, &str, &str)> = (0..12)
        .flat_map(|i| {
            let text = ["nato <now> & then", "never | again", "meeting at noon"][i % 3];
            let label = ["favor", "against", "none"][i % 3];
            [(None, text, "nato", label), (None, text, "land", ["against", "none", "favor"][i % 3])]
        })
        .collect();
    let gold = Gold::new(&labels(), &records(&rows)).unwrap();
    let settings = ScoreSettings {
        bootstrap: BootstrapSettings { resamples: 50, seed: 3, confidence: 0.95 },
        calibration_bins: 10,
        errors: 5,
    };
    let probs: Vec<Vec<f64>> = gold
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| if i % 5 == 0 { vec![0.1, 0.2, 0.7] } else { onehot(it.label) })
        .collect();
    let pred = probs.iter().map(|p| crate::kernels::argmax(p)).collect();
    let systems = [
        ("run-a", SystemKind::Model, Output { pred, probs: Some(probs) }),
        ("theirs", SystemKind::Predictions, Output { pred: vec![2; gold.items.len()], probs: None }),
        ("majority", SystemKind::Baseline, Output { pred: vec![0; gold.items.len()], probs: None }),
    ];
    let scored: Vec<_> = systems
        .into_iter()
        .map(|(name, kind, out)| {
            results::score(
                &gold,
                &out,
                SystemInfo { name: name.into(), kind, source: format!("{name}.jsonl") },
                &settings,
            )
        })
        .collect();
    let comparisons =
        vec![results::compare(&scored[0], &scored[1], 0.95), results::compare(&scored[0], &scored[2], 0.95)];
    let metrics = Metrics {
        schema: results::SCHEMA.into(),
        labels: labels(),
        stance_labels: results::stance_labels(&gold),
        data: results::data_summary(&gold, &["gold.jsonl".to_string()]),
        bootstrap: settings.bootstrap,
        systems: scored.into_iter().map(|s| s.result).collect(),
        comparisons,
        notes: vec!["a note with <markup>".into()],
    };
    let log = |epoch: f64, f: f64| EvalLog {
        epoch,
        step: (epoch * 10.0) as usize,
        learning_rate: Some(1e-5),
        train_loss: 1.0 / epoch,
        eval_loss: 0.8 / epoch.sqrt(),
        eval_accuracy: f,
        eval_macro_f1: f - 0.05,
        eval_f_avg: f - 0.02,
    };
    let logs = vec![log(1.0, 0.5), log(2.0, 0.7), log(3.0, 0.65)];
    let training = vec![Training { system: "run-a".into(), logs, best_step: Some(20) }];
    let descriptions = [("nato".to_string(), "Ukraine joining NATO".to_string())].into();
    Sample { metrics, training, descriptions }
}

fn onehot(label: usize) -> Vec<f64> {
    (0..3).map(|c| if c == label { 0.9 } else { 0.05 }).collect()
}

#[test]
fn terminal_table_lists_systems_targets_and_comparisons() {
    let sample = sample();
    let text = table::render(&sample.report());
    assert!(
        text.starts_with("24 records, 3 sentences, 2 targets; 50 bootstrap resamples of sentences, 95 % intervals"),
        "{text}"
    );
    assert!(
        text.contains("\nsystem       F_avg (pooled)           macro-F1  F_avg (target mean)  accuracy    ECE\n"),
        "{text}"
    );
    assert!(text.contains("\ntheirs       0.0 [0.0, 0.0]"), "{text}");
    assert!(text.contains("majority  "), "{text}");
    assert!(text.contains("F_avg per target  run-a  theirs  majority"), "{text}");
    assert!(text.contains("run-a vs theirs: pooled F_avg +"), "{text}");
    assert!(text.contains("note: a note with <markup>"), "{text}");
}

#[test]
fn markdown_has_every_section_and_escapes_markup() {
    let sample = sample();
    let md = markdown::render(&sample.report());
    for heading in [
        "# Stance evaluation",
        "## Differences",
        "## Per target",
        "### nato — Ukraine joining NATO",
        "## run-a",
        "### Calibration",
        "### Training",
        "### Errors",
        "## theirs",
        "## How to read",
    ] {
        assert!(md.contains(heading), "{heading} missing");
    }
    assert!(md.contains("never \\| again"), "pipes in text must be escaped");
    assert!(md.contains("nato \\<now\\> \\& then") && !md.contains("<now>"), "a tag in text is text");
    assert!(md.contains("Source: run-a.jsonl"), "the source is text too");
    assert!(
        md.contains("here favor and against (leaving out `none`, the neutral label;"),
        "F_avg in this report's labels"
    );
    assert!(md.contains("| 20 (selected) |"), "the run's kept model is marked");
    assert!(!md.contains("## majority"), "baselines get no detail section");
}

#[test]
fn html_is_self_contained_escaped_and_balanced() {
    let sample = sample();
    let html = html::render(&sample.report());
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    for external in ["<script", "src=", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "{external} makes the report depend on something else");
    }
    assert!(html.contains("nato &lt;now&gt; &amp; then") && !html.contains("<markup>"));
    for tag in ["section", "table", "svg", "figure", "div", "tr", "td"] {
        let open = html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
    // Heatmaps: pooled plus two targets per evaluated system; one reliability diagram; two training charts.
    assert_eq!(html.matches("confusion matrix, rows gold, columns predicted</title>").count(), 6);
    assert_eq!(html.matches("<title>Reliability diagram of").count(), 1);
    assert!(html.contains("Dev scores (%)"));
}

#[test]
fn p_values_below_the_resolution_say_so() {
    let sample = sample();
    let report = sample.report();
    // 50 resamples: p moves in steps of 2/50.
    assert_eq!(report.p_value(0.0), "< 0.04");
    assert_eq!(report.p_inline(0.5), "p = 0.500");
    let mut metrics = sample.metrics.clone();
    metrics.bootstrap.resamples = 10_000;
    let fine = Report { metrics: &metrics, training: &sample.training, descriptions: &sample.descriptions };
    assert_eq!(
        (fine.p_value(0.0004), fine.p_value(0.0), fine.p_value(0.012)),
        ("0.0004".into(), "< 0.0002".into(), "0.0120".into())
    );
    metrics.bootstrap.resamples = 100_000;
    let finer = Report { metrics: &metrics, training: &sample.training, descriptions: &sample.descriptions };
    assert_eq!(finer.p_value(0.0), "< 0.00002", "the bound keeps its digits too");
}
