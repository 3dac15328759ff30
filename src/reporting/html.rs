//! `report.html`: one self-contained page (inline CSS and SVG, no script, no
//! external font or file) that reads on screen and prints. Headline numbers
//! first, then per-target results, then each system in detail.

use std::fmt::Write;

use super::svg::{self, esc, Bar, Group, Series};
use super::{definitions as terms, interval, pct, points, Report, Training};
use crate::evaluation::results::{Block, SystemKind, SystemResult, TargetSummary};
use crate::training::EvalLog;

const STYLE: &str = r#"
:root { --ink: #1a202c; --muted: #5a6578; --rule: #e2e8f0; --accent: #2b6cb0; --bg-soft: #f7fafc; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--rule); }
h3 { font-size: 16px; margin: 26px 0 8px; }
p { margin: 6px 0 10px; }
.meta, .caption, footer { color: var(--muted); font-size: 13px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--bg-soft);
  padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 18px 0 10px; }
.card { border: 1px solid var(--rule); border-radius: 8px; padding: 12px 14px; background: #fff; }
.card.primary { border-color: var(--accent); box-shadow: inset 4px 0 0 var(--accent); }
.card .name { font-size: 13px; color: var(--muted); }
.card .value { font-size: 30px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.2; }
.card .ci { font-size: 12.5px; color: var(--muted); font-variant-numeric: tabular-nums; }
.lead { font-size: 15.5px; background: var(--bg-soft); border-radius: 8px; padding: 10px 14px; }
.lead b { font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { font-weight: 600; color: var(--muted); border-bottom: 1.5px solid #cbd5e0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { color: var(--muted); }
td .ci { color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 10px 0 18px; break-inside: avoid; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 720px; }
svg { max-width: 100%; height: auto; }
svg text { font-family: inherit; fill: var(--ink); }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .label { font-size: 12.5px; }
svg .value { font-size: 11.5px; fill: var(--muted); }
svg .axis { font-size: 12px; fill: var(--muted); }
svg .heading { font-size: 13px; font-weight: 600; }
svg .cell { font-size: 13px; font-variant-numeric: tabular-nums; }
svg .cell-dark { font-size: 13px; fill: #fff; font-weight: 600; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 8px 22px; }
.heatmaps figure { margin: 0; }
.pair { display: flex; flex-wrap: wrap; gap: 12px 36px; align-items: flex-start; }
.pair figure { flex: 0 1 auto; }
figure.narrow { max-width: 360px; }
table.errors td.text { max-width: 520px; }
table.errors td { font-size: 13px; }
.pill { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; color: #fff; }
section.notes { margin: 12px 0 0; padding: 10px 14px; border-radius: 8px; background: #fffaf0;
  border: 1px solid #f6d58e; font-size: 14px; }
section.notes ul { margin: 4px 0 0; padding-left: 20px; }
section.notes li { margin: 3px 0; }
dl.defs dt { font-weight: 600; margin-top: 8px; }
dl.defs dd { margin: 2px 0 6px 0; color: #2d3748; max-width: 820px; }
@media print {
  main { max-width: none; padding: 0; }
  body { font-size: 12px; }
  h2 { break-before: auto; break-after: avoid; }
  section.system { break-before: page; }
  .card { box-shadow: none; }
}
@page { margin: 16mm 14mm; }
"#;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let first = report.evaluated().next().map(|s| s.info.name.as_str()).unwrap_or("stancekit");
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Stance evaluation: {}</title><style>{STYLE}</style></head><body><main>\n",
        esc(first)
    );
    header(&mut out, report);
    headline(&mut out, report);
    notes(&mut out, report);
    systems(&mut out, report);
    comparisons(&mut out, report);
    targets(&mut out, report);
    for (i, system) in report.evaluated().enumerate() {
        details(&mut out, report, system, svg::system_colour(i, false));
    }
    definitions(&mut out, report);
    let _ = writeln!(
        out,
        "<footer><p>Made by stancekit {} · numbers from <code>metrics.json</code> (schema <code>{}</code>)</p></footer>\
         </main></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&report.metrics.schema)
    );
    out
}

fn header(out: &mut String, report: &Report) {
    let m = report.metrics;
    let _ = writeln!(
        out,
        "<header><h1>Stance evaluation</h1><p class=\"meta\">Gold data: {} · {} records · {} sentences · {} targets · \
         {} bootstrap intervals from {} resamples of sentences (seed {}) · scores in %</p></header>",
        m.data.files.iter().map(|f| format!("<code>{}</code>", esc(f))).collect::<Vec<_>>().join(", "),
        m.data.records,
        m.data.sentences,
        m.data.targets.len(),
        esc(&report.ci_percent()),
        m.bootstrap.resamples,
        m.bootstrap.seed
    );
}

fn card(out: &mut String, name: &str, value: &str, ci: &str, primary: bool) {
    let _ = write!(
        out,
        "<div class=\"card{}\"><div class=\"name\">{}</div><div class=\"value\">{}</div><div class=\"ci\">{}</div></div>",
        if primary { " primary" } else { "" },
        esc(name),
        esc(value),
        esc(ci)
    );
}

/// The first evaluated system's numbers as cards, and how far it stands above the baselines.
fn headline(out: &mut String, report: &Report) {
    let Some(s) = report.evaluated().next() else { return };
    let ci = |c: &crate::evaluation::bootstrap::Interval| {
        format!("{} CI {}–{}", report.ci_percent(), pct(c.low), pct(c.high))
    };
    let _ = write!(out, "<section><div class=\"cards\">");
    card(
        out,
        &format!("{}: F_avg, all targets pooled", s.info.name),
        &pct(s.pooled.scores.f_avg),
        &ci(&s.pooled.ci.f_avg),
        true,
    );
    card(out, "macro-F1, pooled", &pct(s.pooled.scores.macro_f1), &ci(&s.pooled.ci.macro_f1), false);
    card(out, "F_avg, mean of targets", &pct(s.mean_over_targets.f_avg), &ci(&s.mean_over_targets.ci.f_avg), false);
    card(out, "accuracy", &pct(s.pooled.scores.accuracy), &format!("{} records", s.pooled.scores.n), false);
    if let Some(c) = &s.calibration {
        let detail = format!("Brier {:.3}{}", c.brier, super::log_loss_text(c, " · "));
        card(out, "calibration error (ECE)", &format!("{:.3}", c.ece), &detail, false);
    }
    out.push_str("</div>\n");
    let against_baselines: Vec<String> = report
        .metrics
        .comparisons
        .iter()
        .filter(|c| c.a == s.info.name && is_baseline(report, &c.b))
        .map(|c| {
            let d = &c.differences[0];
            format!(
                "<b>{}</b> points against <b>{}</b> ({}; difference {} {}, {})",
                esc(&points(d.difference)),
                esc(&c.b),
                pct(d.b),
                esc(&report.ci_percent()),
                esc(&interval(&d.ci)),
                esc(&report.p_inline(d.p_value))
            )
        })
        .collect();
    if against_baselines.is_empty() {
        out.push_str("<p class=\"lead\">No baselines: see the note below.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"lead\">Pooled F_avg of <b>{}</b>, {}: {}.</p>",
            esc(&s.info.name),
            pct(s.pooled.scores.f_avg),
            against_baselines.join("; ")
        );
    }
    out.push_str("</section>\n");
}

fn is_baseline(report: &Report, name: &str) -> bool {
    report.metrics.systems.iter().any(|s| s.info.name == name && s.info.kind == SystemKind::Baseline)
}

/// Colours by system, in `metrics.systems` order.
fn colours(report: &Report) -> Vec<&'static str> {
    let (mut evaluated, mut baselines) = (0, 0);
    report
        .metrics
        .systems
        .iter()
        .map(|s| {
            let baseline = s.info.kind == SystemKind::Baseline;
            let counter = if baseline { &mut baselines } else { &mut evaluated };
            *counter += 1;
            svg::system_colour(*counter - 1, baseline)
        })
        .collect()
}

fn num(value: &str) -> String {
    format!("<td class=\"num\">{value}</td>")
}

fn num_ci(value: f64, ci: &crate::evaluation::bootstrap::Interval) -> String {
    num(&format!("{} <span class=\"ci\">{}</span>", pct(value), esc(&interval(ci))))
}

fn systems(out: &mut String, report: &Report) {
    let m = report.metrics;
    let colours = colours(report);
    out.push_str("<section><h2>All systems</h2>");
    let bars: Vec<Bar> = m
        .systems
        .iter()
        .zip(&colours)
        .map(|(s, c)| Bar {
            label: &s.info.name,
            value: s.pooled.scores.f_avg,
            low: s.pooled.ci.f_avg.low,
            high: s.pooled.ci.f_avg.high,
            colour: c,
        })
        .collect();
    let _ = write!(
        out,
        "<figure>{}<figcaption>Pooled F_avg (%) with {} intervals. Grey bars are baselines trained on the same \
         training data.</figcaption></figure>",
        svg::bars("Pooled F_avg per system", &bars),
        esc(&report.ci_percent())
    );
    out.push_str(
        "<table><thead><tr><th>system</th><th>kind</th><th class=\"num\">F_avg pooled</th>\
         <th class=\"num\">macro-F1 pooled</th><th class=\"num\">F_avg mean of targets</th>\
         <th class=\"num\">accuracy</th><th class=\"num\">ECE</th><th class=\"num\">Brier</th></tr></thead><tbody>",
    );
    for (s, colour) in m.systems.iter().zip(&colours) {
        let baseline = s.info.kind == SystemKind::Baseline;
        let (ece, brier) = s
            .calibration
            .as_ref()
            .map_or(("–".to_string(), "–".to_string()), |c| (format!("{:.3}", c.ece), format!("{:.3}", c.brier)));
        let _ = write!(
            out,
            "<tr{}><td><span class=\"swatch\" style=\"background:{colour}\"></span>{}</td><td>{}</td>{}{}{}{}{}{}</tr>",
            if baseline { " class=\"baseline\"" } else { "" },
            esc(&s.info.name),
            kind(s),
            num_ci(s.pooled.scores.f_avg, &s.pooled.ci.f_avg),
            num_ci(s.pooled.scores.macro_f1, &s.pooled.ci.macro_f1),
            num_ci(s.mean_over_targets.f_avg, &s.mean_over_targets.ci.f_avg),
            num(&pct(s.pooled.scores.accuracy)),
            num(&ece),
            num(&brier)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn kind(s: &SystemResult) -> String {
    let kind = match s.info.kind {
        SystemKind::Model => "stancekit model",
        SystemKind::Predictions => "predictions file",
        SystemKind::Baseline => "baseline",
    };
    format!("<span title=\"{}\">{kind}</span>", esc(&s.info.source))
}

/// One row per pair of systems; each metric's difference with its interval and p-value.
fn comparisons(out: &mut String, report: &Report) {
    let m = report.metrics;
    let Some(first) = m.comparisons.first() else { return };
    let _ = write!(
        out,
        "<section><h2>Differences</h2><p class=\"caption\">First system minus second, in points, with {} \
         intervals and p-values from a paired bootstrap: both systems scored on the same {} resamples of \
         sentences.</p><table><thead><tr><th>first</th><th>second</th>",
        esc(&report.ci_percent()),
        m.bootstrap.resamples
    );
    for d in &first.differences {
        let _ = write!(out, "<th class=\"num\">{}</th><th class=\"num\">p</th>", esc(metric_name(&d.metric)));
    }
    out.push_str("</tr></thead><tbody>");
    for c in &m.comparisons {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td>", esc(&c.a), esc(&c.b));
        for d in &c.differences {
            let _ = write!(
                out,
                "{}{}",
                num(&format!("{} <span class=\"ci\">{}</span>", points(d.difference), esc(&interval(&d.ci)))),
                num(&esc(&report.p_value(d.p_value)))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

/// A metric path of `metrics.json` as a column title.
pub fn metric_name(metric: &str) -> &str {
    match metric {
        "pooled.f_avg" => "Δ F_avg pooled",
        "pooled.macro_f1" => "Δ macro-F1 pooled",
        "mean_over_targets.f_avg" => "Δ F_avg mean of targets",
        other => other,
    }
}

fn targets(out: &mut String, report: &Report) {
    out.push_str("<section><h2>Per target</h2>");
    let _ = write!(
        out,
        "<figure>{}<figcaption>F_avg (%) per target with {} intervals. Few records per target make wide \
         intervals.</figcaption></figure>",
        svg::grouped_bars("F_avg per target and system", &target_groups(report, &colours(report))),
        esc(&report.ci_percent())
    );
    target_table(out, report);
    out.push_str("<p class=\"caption\">Label columns count gold records.</p></section>\n");
}

/// One group of bars per target: each system's F_avg with its interval.
fn target_groups<'a>(report: &'a Report, colours: &[&'static str]) -> Vec<Group<'a>> {
    let m = report.metrics;
    let bar = |t: usize| {
        move |(s, &colour): (&'a SystemResult, &&'static str)| {
            let b = &s.targets[t].block;
            Bar { label: &s.info.name, value: b.scores.f_avg, low: b.ci.f_avg.low, high: b.ci.f_avg.high, colour }
        }
    };
    let group = |(t, summary): (usize, &TargetSummary)| Group {
        name: summary.target.clone(),
        detail: format!("{} records", summary.records),
        bars: m.systems.iter().zip(colours).map(bar(t)).collect(),
    };
    m.data.targets.iter().enumerate().map(group).collect()
}

/// Per target: its description, its gold records by label, and each system's F_avg.
fn target_table(out: &mut String, report: &Report) {
    let m = report.metrics;
    out.push_str("<table><thead><tr><th>target</th>");
    for label in &m.labels {
        let _ = write!(out, "<th class=\"num\">{}</th>", esc(label));
    }
    for s in &m.systems {
        let _ = write!(out, "<th class=\"num\">{}<br>F_avg</th>", esc(&s.info.name));
    }
    out.push_str("</tr></thead><tbody>");
    for (t, summary) in m.data.targets.iter().enumerate() {
        let description = report.descriptions.get(&summary.target).cloned().unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td title=\"{}\"><b>{}</b><br><span class=\"ci\">{}</span></td>",
            esc(&description),
            esc(&summary.target),
            esc(&description)
        );
        for c in &summary.label_counts {
            out.push_str(&num(&c.to_string()));
        }
        for s in &m.systems {
            let b = &s.targets[t].block;
            out.push_str(&num_ci(b.scores.f_avg, &b.ci.f_avg));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn details(out: &mut String, report: &Report, s: &SystemResult, colour: &str) {
    let _ = write!(
        out,
        "<section class=\"system\"><h2>{}</h2><p class=\"meta\">{} · <code>{}</code></p>",
        esc(&s.info.name),
        kind(s),
        esc(&s.info.source)
    );
    heatmaps(out, report, s);
    out.push_str("<div class=\"pair\">");
    if let Some(c) = &s.calibration {
        let _ = write!(
            out,
            "<figure class=\"narrow\"><h3>Reliability</h3>{}<figcaption>Bars: accuracy of the records in each \
             confidence bin; red ticks: their mean confidence; dashed: perfect calibration. Grey strip: records per \
             bin. ECE {:.3}, MCE {:.3}, Brier {:.3}{}.</figcaption></figure>",
            svg::reliability(&format!("Reliability diagram of {}", s.info.name), c, colour),
            c.ece,
            c.mce,
            c.brier,
            super::log_loss_text(c, ", ")
        );
    }
    per_label(out, &s.pooled);
    out.push_str("</div>");
    if let Some(training) = report.training_of(&s.info.name) {
        curves(out, training, colour);
    }
    errors(out, report, s);
    out.push_str("</section>\n");
}

fn heatmaps(out: &mut String, report: &Report, s: &SystemResult) {
    let labels = &report.metrics.labels;
    out.push_str("<h3>Confusion matrices</h3><div class=\"heatmaps\">");
    let all = std::iter::once(("all targets".to_string(), &s.pooled));
    for (title, block) in all.chain(s.targets.iter().map(|t| (t.target.clone(), &t.block))) {
        let detail = format!("{} records", block.scores.n);
        let _ = write!(out, "<figure>{}</figure>", svg::heatmap(&title, &detail, labels, &block.confusion));
    }
    out.push_str(
        "</div><p class=\"caption\">Rows: gold label; columns: predicted label. Numbers are records; the shade is \
         the share of the gold row, so the diagonal reads as recall.</p>",
    );
}

fn per_label(out: &mut String, block: &Block) {
    out.push_str(
        "<figure><h3>Per label, pooled</h3><table><thead><tr><th>label</th><th class=\"num\">precision</th>\
         <th class=\"num\">recall</th><th class=\"num\">F1</th><th class=\"num\">support</th></tr></thead><tbody>",
    );
    for l in &block.scores.per_label {
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}{}{}</tr>",
            esc(&l.label),
            num(&pct(l.precision)),
            num(&pct(l.recall)),
            num(&pct(l.f1)),
            num(&l.support.to_string())
        );
    }
    out.push_str("</tbody></table></figure>");
}

fn curves(out: &mut String, training: &Training, colour: &str) {
    let (logs, best) = (&training.logs, training.best_epoch());
    let series = |name: &'static str, colour: &'static str, dashed: bool, f: fn(&EvalLog) -> f64| Series {
        name,
        colour,
        points: logs.iter().map(|l| (l.epoch, f(l))).collect(),
        dashed,
    };
    let loss = [
        series("train loss", "#718096", true, |l| l.train_loss),
        series("dev loss", "#c53030", false, |l| l.eval_loss),
    ];
    let scores = [
        Series { colour, ..series("dev F_avg", "#2b6cb0", false, |l| 100.0 * l.eval_f_avg) },
        series("dev macro-F1", "#2f855a", true, |l| 100.0 * l.eval_macro_f1),
        series("dev accuracy", "#a0aec0", true, |l| 100.0 * l.eval_accuracy),
    ];
    let _ = write!(
        out,
        "<h3>Training</h3><div class=\"pair\"><figure>{}</figure><figure>{}</figure></div><p class=\"caption\">\
         From the run's <code>metrics.jsonl</code>: one point per dev evaluation. The marker is the evaluation \
         whose model the run kept (<code>trainer_state.json</code>).</p>",
        svg::lines("Training and dev loss", "epoch", &loss, None, best),
        svg::lines("Dev scores (%)", "epoch", &scores, Some((0.0, 100.0)), best)
    );
}

fn errors(out: &mut String, report: &Report, s: &SystemResult) {
    let e = &s.errors;
    let stance = &report.metrics.stance_labels;
    let colour = |label: &str| svg::label_colour(label, stance);
    let key: Vec<String> = (report.metrics.labels.iter())
        .map(|l| format!("<span class=\"swatch\" style=\"background:{}\"></span>{}", colour(l), esc(l)))
        .collect();
    let _ = write!(
        out,
        "<h3>Errors</h3><p class=\"caption\">{} of {} records are misclassified; {} shown{}. Probability bars: {}.</p>",
        e.count,
        s.pooled.scores.n,
        e.top.len(),
        if s.calibration.is_some() { ", most confident first" } else { "" },
        key.join(" ")
    );
    if e.top.is_empty() {
        return;
    }
    out.push_str(
        "<table class=\"errors\"><thead><tr><th>target</th><th>gold</th><th>predicted</th>\
         <th class=\"num\">confidence</th><th>probabilities</th><th>text</th></tr></thead><tbody>",
    );
    let pill =
        |label: &str| format!("<span class=\"pill\" style=\"background:{}\">{}</span>", colour(label), esc(label));
    for r in &e.top {
        let strip = if r.probs.is_empty() {
            String::new()
        } else {
            let parts: Vec<(&str, f64, &str)> = r.probs.0.iter().map(|(l, p)| (l.as_str(), *p, colour(l))).collect();
            svg::probability_strip(&parts)
        };
        let id = r.id.as_deref().map_or(String::new(), |id| format!("<br><span class=\"ci\">{}</span>", esc(id)));
        let _ = write!(
            out,
            "<tr><td>{}{id}</td><td>{}</td><td>{}</td>{}<td>{strip}</td><td class=\"text\">{}</td></tr>",
            esc(&r.target),
            pill(&r.gold),
            pill(&r.predicted),
            num(&r.confidence.map_or("–".into(), |c| format!("{c:.2}"))),
            esc(&r.text)
        );
    }
    out.push_str("</tbody></table>");
}

/// What a reader must know before trusting the numbers, right under them.
fn notes(out: &mut String, report: &Report) {
    if report.metrics.notes.is_empty() {
        return;
    }
    out.push_str("<section class=\"notes\"><b>Read with care</b><ul>");
    for note in &report.metrics.notes {
        let _ = write!(out, "<li>{}</li>", esc(note));
    }
    out.push_str("</ul></section>\n");
}

fn definitions(out: &mut String, report: &Report) {
    out.push_str("<section><h2>How to read this report</h2><dl class=\"defs\">");
    for (term, meaning) in terms(report.metrics) {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(term), esc(&meaning));
    }
    out.push_str("</dl></section>\n");
}
