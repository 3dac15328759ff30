//! The terminal summary: headline numbers per system, F_avg per target, the
//! comparisons and the notes, as plain aligned text.

use super::{interval, pct, points, Report};
use crate::evaluation::results::{SystemResult, TargetSummary};

use crate::text::grid;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn render(report: &Report) -> String {
    let m = report.metrics;
    let mut out = format!(
        "{} records, {} sentences, {} targets; {} bootstrap resamples of sentences, {} intervals\n\n",
        m.data.records,
        m.data.sentences,
        m.data.targets.len(),
        m.bootstrap.resamples,
        report.ci_percent()
    );
    out.push_str(&headline(report));
    out.push('\n');
    out.push_str(&per_target(report));
    for c in &m.comparisons {
        let d = &c.differences[0];
        out.push_str(&format!(
            "\n{} vs {}: pooled F_avg {} points {}, {}",
            c.a,
            c.b,
            points(d.difference),
            interval(&d.ci),
            report.p_inline(d.p_value)
        ));
    }
    if !m.comparisons.is_empty() {
        out.push('\n');
    }
    for note in &m.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    out.trim_end().to_string() + "\n"
}

/// A row per system: the pooled scores with their intervals, the mean over targets, ECE.
fn headline(report: &Report) -> String {
    let header = strings(&["system", "F_avg (pooled)", "macro-F1", "F_avg (target mean)", "accuracy", "ECE"]);
    let row = |s: &SystemResult| {
        let p = &s.pooled;
        vec![
            s.info.name.clone(),
            format!("{} {}", pct(p.scores.f_avg), interval(&p.ci.f_avg)),
            format!("{} {}", pct(p.scores.macro_f1), interval(&p.ci.macro_f1)),
            pct(s.mean_over_targets.f_avg),
            pct(p.scores.accuracy),
            s.calibration.as_ref().map_or("–".into(), |c| format!("{:.3}", c.ece)),
        ]
    };
    grid(&header, &report.metrics.systems.iter().map(row).collect::<Vec<_>>())
}

/// A row per target: its records and each system's F_avg.
fn per_target(report: &Report) -> String {
    let m = report.metrics;
    let mut header = vec!["F_avg per target".to_string()];
    header.extend(m.systems.iter().map(|s| s.info.name.clone()));
    let row = |(t, summary): (usize, &TargetSummary)| {
        let mut row = vec![format!("{} (n={})", summary.target, summary.records)];
        row.extend(m.systems.iter().map(|s| pct(s.targets[t].block.scores.f_avg)));
        row
    };
    grid(&header, &m.data.targets.iter().enumerate().map(row).collect::<Vec<_>>())
}
