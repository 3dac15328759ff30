//! `report.md`: the report as Markdown tables, for reading in a terminal, a
//! pull request or a notebook.

use std::fmt::Write;

use super::{interval, pct, points, Report, Training};
use crate::evaluation::calibration::Calibration;
use crate::evaluation::results::{Block, SystemResult};

/// A table cell: pipes and line breaks would break the table.
/// User text (sentences, ids, targets, labels, system names) as literal
/// Markdown: the characters that would make markup, a link, an HTML tag or
/// a new table column are backslash-escaped, and line breaks become spaces.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown table: the first column left-aligned, the others (numbers) right-aligned.
pub(super) fn table<S: AsRef<str>>(out: &mut String, header: &[S], rows: &[Vec<String>]) {
    let header: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rule: Vec<&str> = header.iter().enumerate().map(|(i, _)| if i == 0 { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn with_ci(value: f64, ci: &crate::evaluation::bootstrap::Interval) -> String {
    format!("{} {}", pct(value), interval(ci))
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    headline(&mut out, report);
    comparisons(&mut out, report);
    per_target(&mut out, report);
    for system in report.evaluated() {
        details(&mut out, report, system);
    }
    if !report.metrics.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for note in &report.metrics.notes {
            let _ = writeln!(out, "- {note}");
        }
        out.push('\n');
    }
    out.push_str("## How to read this report\n\n");
    for (term, meaning) in super::definitions(report.metrics) {
        let _ = writeln!(out, "- **{term}**: {meaning}");
    }
    out
}

fn headline(out: &mut String, report: &Report) {
    let m = report.metrics;
    let _ = writeln!(out, "# Stance evaluation\n");
    let _ = writeln!(
        out,
        "Gold: {} ({} records, {} sentences, {} targets). Scores are percentages; brackets hold {} bootstrap \
         intervals over {} resamples of sentences (seed {}).\n",
        m.data.files.join(", "),
        m.data.records,
        m.data.sentences,
        m.data.targets.len(),
        report.ci_percent(),
        m.bootstrap.resamples,
        m.bootstrap.seed
    );
    let rows: Vec<Vec<String>> = m
        .systems
        .iter()
        .map(|s| {
            vec![
                format!("**{}**", cell(&s.info.name)),
                format!("{:?}", s.info.kind).to_lowercase(),
                with_ci(s.pooled.scores.f_avg, &s.pooled.ci.f_avg),
                with_ci(s.pooled.scores.macro_f1, &s.pooled.ci.macro_f1),
                with_ci(s.mean_over_targets.f_avg, &s.mean_over_targets.ci.f_avg),
                pct(s.pooled.scores.accuracy),
                s.calibration.as_ref().map_or("–".into(), |c| format!("{:.3}", c.ece)),
            ]
        })
        .collect();
    table(
        out,
        &["system", "kind", "F_avg (pooled)", "macro-F1 (pooled)", "F_avg (mean of targets)", "accuracy", "ECE"],
        &rows,
    );
}

fn comparisons(out: &mut String, report: &Report) {
    let m = report.metrics;
    let Some(first) = m.comparisons.first() else { return };
    let _ = writeln!(
        out,
        "## Differences\n\nFirst system minus second, in points, with {} intervals and p-values from a paired \
         bootstrap (the same {} resamples for both).\n",
        report.ci_percent(),
        m.bootstrap.resamples
    );
    let titles: Vec<String> = first
        .differences
        .iter()
        .flat_map(|d| [super::html::metric_name(&d.metric).to_string(), "p".to_string()])
        .collect();
    let mut header = vec!["first", "second"];
    header.extend(titles.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = m
        .comparisons
        .iter()
        .map(|c| {
            let mut row = vec![cell(&c.a), cell(&c.b)];
            for d in &c.differences {
                row.push(format!("{} {}", points(d.difference), interval(&d.ci)));
                row.push(report.p_value(d.p_value));
            }
            row
        })
        .collect();
    table(out, &header, &rows);
}

fn per_target(out: &mut String, report: &Report) {
    let m = report.metrics;
    out.push_str("## Per target\n\n");
    for (t, summary) in m.data.targets.iter().enumerate() {
        let description = report.descriptions.get(&summary.target).map_or(String::new(), |d| format!(" — {d}"));
        let counts: Vec<String> =
            m.labels.iter().zip(&summary.label_counts).map(|(l, c)| format!("{} {c}", cell(l))).collect();
        let _ = writeln!(
            out,
            "### {}{}\n\n{} records ({}).\n",
            cell(&summary.target),
            cell(&description),
            summary.records,
            counts.join(", ")
        );
        let rows: Vec<Vec<String>> = m
            .systems
            .iter()
            .map(|s| {
                let b = &s.targets[t].block;
                let mut row = vec![
                    cell(&s.info.name),
                    with_ci(b.scores.f_avg, &b.ci.f_avg),
                    with_ci(b.scores.macro_f1, &b.ci.macro_f1),
                    pct(b.scores.accuracy),
                ];
                row.extend(b.scores.per_label.iter().map(|l| pct(l.f1)));
                row
            })
            .collect();
        let mut header = vec!["system", "F_avg", "macro-F1", "accuracy"];
        let f1s: Vec<String> = m.labels.iter().map(|l| format!("F1 {}", cell(l))).collect();
        header.extend(f1s.iter().map(String::as_str));
        table(out, &header, &rows);
    }
}

fn details(out: &mut String, report: &Report, s: &SystemResult) {
    let _ = writeln!(out, "## {}\n\nSource: {}\n", cell(&s.info.name), cell(&s.info.source));
    out.push_str("### Per label (pooled)\n\n");
    let rows: Vec<Vec<String>> = s
        .pooled
        .scores
        .per_label
        .iter()
        .map(|l| vec![cell(&l.label), pct(l.precision), pct(l.recall), pct(l.f1), l.support.to_string()])
        .collect();
    table(out, &["label", "precision", "recall", "F1", "support"], &rows);
    out.push_str("### Confusion matrices (rows: gold, columns: predicted)\n\n");
    confusion(out, report, "all targets", &s.pooled);
    for t in &s.targets {
        confusion(out, report, &t.target, &t.block);
    }
    if let Some(c) = &s.calibration {
        calibration(out, c);
    }
    if let Some(training) = report.training_of(&s.info.name) {
        training_log(out, training);
    }
    errors(out, s);
}

fn calibration(out: &mut String, c: &Calibration) {
    let _ = writeln!(
        out,
        "### Calibration\n\nECE {:.3}, MCE {:.3}, Brier score {:.3}{} (confidence = probability of the \
         predicted label).\n",
        c.ece,
        c.mce,
        c.brier,
        super::log_loss_text(c, ", ")
    );
    let rows: Vec<Vec<String>> = c
        .bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| {
            vec![format!("({:.1}, {:.1}]", b.low, b.high), b.count.to_string(), pct(b.confidence), pct(b.accuracy)]
        })
        .collect();
    table(out, &["confidence bin", "records", "mean confidence", "accuracy"], &rows);
}

fn training_log(out: &mut String, training: &Training) {
    out.push_str("### Training (dev evaluations from metrics.jsonl)\n\n");
    let rows: Vec<Vec<String>> = training
        .logs
        .iter()
        .map(|l| {
            let selected = if Some(l.step) == training.best_step { " (selected)" } else { "" };
            vec![
                format!("{:.2}", l.epoch),
                format!("{}{selected}", l.step),
                format!("{:.4}", l.train_loss),
                format!("{:.4}", l.eval_loss),
                pct(l.eval_f_avg),
                pct(l.eval_macro_f1),
                pct(l.eval_accuracy),
            ]
        })
        .collect();
    table(out, &["epoch", "step", "train loss", "dev loss", "dev F_avg", "dev macro-F1", "dev accuracy"], &rows);
}

fn errors(out: &mut String, s: &SystemResult) {
    let e = &s.errors;
    let _ = writeln!(
        out,
        "### Errors\n\n{} of {} records misclassified; the {} most confident:\n",
        e.count,
        s.pooled.scores.n,
        e.top.len()
    );
    let rows: Vec<Vec<String>> = e
        .top
        .iter()
        .map(|r| {
            vec![
                cell(r.id.as_deref().unwrap_or_default()),
                cell(&r.target),
                cell(&r.gold),
                cell(&r.predicted),
                r.confidence.map_or("–".into(), |c| format!("{c:.2}")),
                cell(&r.text),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(out, &["id", "target", "gold", "predicted", "confidence", "text"], &rows);
    }
}

fn confusion(out: &mut String, report: &Report, title: &str, block: &Block) {
    let labels = &report.metrics.labels;
    let _ = writeln!(out, "**{}** (n = {})\n", cell(title), block.scores.n);
    let mut header = vec!["gold \\ predicted".to_string()];
    header.extend(labels.iter().map(|l| cell(l)));
    let rows: Vec<Vec<String>> = labels
        .iter()
        .zip(&block.confusion)
        .map(|(l, row)| std::iter::once(cell(l)).chain(row.iter().map(u64::to_string)).collect())
        .collect();
    table(out, &header, &rows);
}
