//! The summary of a cross-validation: mean ± standard deviation over folds,
//! then every fold's numbers, as a terminal table and as Markdown.

use super::pct;
use crate::evaluation::cv::{CvResults, FoldScores, MeanStd};
use crate::text::grid;

fn mean_std(m: &MeanStd) -> String {
    format!("{} ± {}", pct(m.mean), pct(m.std))
}

fn intro(r: &CvResults) -> String {
    format!(
        "{}-fold cross-validation on {} ({} records, {} sentences; folds grouped by sentence, seed {}). \
         Scores in %, pooled over targets unless named otherwise, ECE as a fraction; ± is the standard \
         deviation over folds.",
        r.folds,
        r.data.join(", "),
        r.records,
        r.sentences,
        r.seed
    )
}

fn summary_rows(r: &CvResults) -> (Vec<String>, Vec<Vec<String>>) {
    let header = ["system", "F_avg", "macro-F1", "F_avg (target mean)", "accuracy", "ECE"].map(String::from).to_vec();
    let rows = r
        .summary
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                mean_std(&s.f_avg),
                mean_std(&s.macro_f1),
                mean_std(&s.f_avg_mean_over_targets),
                mean_std(&s.accuracy),
                s.ece.map_or("–".into(), |m| format!("{:.3} ± {:.3}", m.mean, m.std)),
            ]
        })
        .collect();
    (header, rows)
}

/// Per fold: test size and each system's pooled F_avg.
fn fold_rows(r: &CvResults) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["fold".to_string(), "test records".to_string()];
    header.extend(r.summary.iter().map(|s| format!("{} F_avg", s.name)));
    let rows = r
        .per_fold
        .iter()
        .map(|f| {
            let mut row = vec![f.fold.to_string(), f.test_records.to_string()];
            row.extend(r.summary.iter().map(|s| {
                f.systems.iter().find(|x| x.name == s.name).map_or("–".into(), |x: &FoldScores| pct(x.f_avg))
            }));
            row
        })
        .collect();
    (header, rows)
}

pub fn table(r: &CvResults) -> String {
    let (h1, r1) = summary_rows(r);
    let (h2, r2) = fold_rows(r);
    format!("{}\n\n{}\n{}", intro(r), grid(&h1, &r1), grid(&h2, &r2))
}

pub fn markdown(r: &CvResults) -> String {
    let mut out = format!("# Cross-validation\n\n{}\n\n", intro(r));
    for (header, rows) in [summary_rows(r), fold_rows(r)] {
        super::markdown::table(&mut out, &header, &rows);
    }
    out.push_str("Each fold's full report is in `fold-K/eval/report.html`.\n");
    out
}
