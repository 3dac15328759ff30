//! Hand-written SVG charts for the HTML report: no script, no external file,
//! so the report opens anywhere, prints, and stays one file. Sizes are in
//! user units; each chart scales to its container's width.

use std::fmt::Write;

use crate::evaluation::calibration::Calibration;

/// Escapes text for HTML and SVG.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Muted, print-safe colours for labels: `favor` green and `against` red; a
/// neutral label (one F_avg leaves out) grey; the other stance labels take
/// the colours after those favor and against hold, in their order (as the
/// label page's `role()` gives them).
pub fn label_colour(label: &str, stance_labels: &[String]) -> &'static str {
    const STANCES: [&str; 6] = ["#2f855a", "#c53030", "#6b46c1", "#b7791f", "#2c7a7b", "#975a16"];
    let named = |l: &&String| l.as_str() == "favor" || l.as_str() == "against";
    let taken = stance_labels.iter().filter(named).count();
    let mut others = stance_labels.iter().filter(|l| !named(l));
    match (label, others.position(|l| l == label)) {
        ("favor", _) => STANCES[0],
        ("against", _) => STANCES[1],
        _ if !stance_labels.iter().any(|l| l == label) => "#8a94a6",
        (_, Some(i)) => STANCES[(i + taken) % STANCES.len()],
        (_, None) => "#8a94a6",
    }
}

/// Evaluated systems get saturated colours, baselines greys.
pub fn system_colour(index: usize, baseline: bool) -> &'static str {
    const SYSTEMS: [&str; 4] = ["#2b6cb0", "#dd6b20", "#6b46c1", "#2c7a7b"];
    const BASELINES: [&str; 3] = ["#a0aec0", "#718096", "#4a5568"];
    if baseline {
        BASELINES[index % BASELINES.len()]
    } else {
        SYSTEMS[index % SYSTEMS.len()]
    }
}

/// An SVG document under construction.
struct Svg {
    width: f64,
    height: f64,
    body: String,
}

impl Svg {
    fn new(width: f64, height: f64) -> Self {
        Self { width, height, body: String::new() }
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" {extra}/>"#,
            w.max(0.0),
            h.max(0.0)
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" {extra}/>"#
        );
    }

    /// `anchor` is start, middle or end.
    fn text(&mut self, x: f64, y: f64, anchor: &str, class: &str, text: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}">{}</text>"#,
            esc(text)
        );
    }

    fn finish(self, title: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>{body}</svg>"#,
            w = self.width,
            h = self.height,
            t = esc(title),
            body = self.body
        )
    }

    /// Vertical grid lines and labels for a 0–100 % axis from `x0` to `x1`, under rows `top`..`bottom`.
    fn percent_axis(&mut self, x0: f64, x1: f64, top: f64, bottom: f64) {
        for tick in (0..=100).step_by(20) {
            let x = x0 + (x1 - x0) * tick as f64 / 100.0;
            self.line(x, top, x, bottom, "#e2e8f0", "");
            self.text(x, bottom + 14.0, "middle", "tick", &tick.to_string());
        }
    }
}

/// One bar: a score in [0, 1] with its interval.
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub colour: &'a str,
}

const PLOT_WIDTH: f64 = 440.0;

/// Room for left-hand labels of `chars` characters at the label font size.
fn label_width(chars: usize) -> f64 {
    (7.4 * chars as f64 + 18.0).max(60.0)
}

/// Draws one horizontal bar with its whisker at vertical position `y`, the plot starting at `x0`.
fn bar(svg: &mut Svg, x0: f64, b: &Bar, y: f64, height: f64) {
    let x = |v: f64| x0 + PLOT_WIDTH * v.clamp(0.0, 1.0);
    svg.rect(x0, y, x(b.value) - x0, height, b.colour, r#"rx="2""#);
    let mid = y + height / 2.0;
    let whisker = r#"stroke-width="1.5""#;
    svg.line(x(b.low), mid, x(b.high), mid, "#1a202c", whisker);
    for end in [b.low, b.high] {
        svg.line(x(end), mid - height * 0.3, x(end), mid + height * 0.3, "#1a202c", whisker);
    }
    let value = format!("{:.1}", 100.0 * b.value);
    svg.text(x(b.high) + 6.0, mid + 4.0, "start", "value", &value);
}

/// Horizontal bars (0–100 %) with interval whiskers, one per row.
pub fn bars(title: &str, rows: &[Bar]) -> String {
    let (row_h, top) = (26.0, 8.0);
    let x0 = label_width(rows.iter().map(|b| b.label.chars().count()).max().unwrap_or(0));
    let bottom = top + row_h * rows.len() as f64;
    let mut svg = Svg::new(x0 + PLOT_WIDTH + 50.0, bottom + 24.0);
    svg.percent_axis(x0, x0 + PLOT_WIDTH, top, bottom);
    for (i, b) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        svg.text(x0 - 10.0, y + row_h / 2.0 + 4.0, "end", "label", b.label);
        bar(&mut svg, x0, b, y + 4.0, row_h - 8.0);
    }
    svg.finish(title)
}

/// One group of bars: a name, a second line under it, and the bars.
pub struct Group<'a> {
    pub name: String,
    pub detail: String,
    pub bars: Vec<Bar<'a>>,
}

/// Groups of horizontal bars (one group per target, one bar per system), with a legend.
pub fn grouped_bars(title: &str, groups: &[Group]) -> String {
    let (bar_h, gap, top) = (16.0, 16.0, 30.0);
    let x0 =
        label_width(groups.iter().map(|g| g.name.chars().count().max(g.detail.chars().count())).max().unwrap_or(0));
    let bottom = top + groups.iter().map(|g| bar_h * g.bars.len().max(2) as f64 + gap).sum::<f64>();
    let mut svg = Svg::new(x0 + PLOT_WIDTH + 50.0, bottom + 24.0);
    legend(&mut svg, x0, groups.first().map(|g| g.bars.as_slice()).unwrap_or(&[]));
    svg.percent_axis(x0, x0 + PLOT_WIDTH, top, bottom);
    let mut y = top + gap / 2.0;
    for g in groups {
        let height = bar_h * g.bars.len().max(2) as f64;
        let mid = y + height / 2.0;
        svg.text(x0 - 10.0, mid - 2.0, "end", "label", &g.name);
        svg.text(x0 - 10.0, mid + 12.0, "end", "tick", &g.detail);
        let mut bar_y = mid - bar_h * g.bars.len() as f64 / 2.0;
        for b in &g.bars {
            bar(&mut svg, x0, b, bar_y + 1.5, bar_h - 3.0);
            bar_y += bar_h;
        }
        y += height + gap;
    }
    svg.finish(title)
}

/// A row of coloured keys at the top of a chart.
fn legend(svg: &mut Svg, x0: f64, bars: &[Bar]) {
    let mut x = x0;
    for b in bars {
        svg.rect(x, 6.0, 12.0, 12.0, b.colour, r#"rx="2""#);
        svg.text(x + 17.0, 16.0, "start", "label", b.label);
        x += 30.0 + 7.0 * b.label.chars().count() as f64;
    }
}

/// A confusion matrix as a heatmap: colour is the share of the gold row (so
/// the diagonal reads as recall), the number is the count.
pub fn heatmap(name: &str, detail: &str, labels: &[String], counts: &[Vec<u64>]) -> String {
    let (cell, left, top) = (46.0, 64.0, 58.0);
    let k = labels.len() as f64;
    let centre = left + cell * k / 2.0;
    // A long target name is centred where it fits, and widens the chart if it must.
    let half = 4.4 * name.chars().count() as f64 + 4.0;
    let title_x = centre.max(half);
    let width = (left + cell * k + 8.0).max(title_x + half);
    let mut svg = Svg::new(width, top + cell * k + 8.0);
    svg.text(title_x, 13.0, "middle", "heading", name);
    svg.text(title_x, 28.0, "middle", "tick", detail);
    svg.text(centre, 44.0, "middle", "axis", "predicted →");
    for (j, l) in labels.iter().enumerate() {
        svg.text(left + cell * (j as f64 + 0.5) - 1.0, top - 4.0, "middle", "tick", l);
    }
    for (i, (l, row)) in labels.iter().zip(counts).enumerate() {
        let y = top + cell * i as f64;
        svg.text(left - 6.0, y + cell / 2.0 + 4.0, "end", "tick", l);
        let total = row.iter().sum::<u64>().max(1) as f64;
        for (j, &n) in row.iter().enumerate() {
            let share = n as f64 / total;
            let x = left + cell * j as f64;
            svg.rect(x, y, cell - 2.0, cell - 2.0, &blue(share), r#"rx="3""#);
            let class = if share > 0.55 { "cell-dark" } else { "cell" };
            svg.text(x + cell / 2.0 - 1.0, y + cell / 2.0 + 4.0, "middle", class, &n.to_string());
        }
    }
    svg.finish(&format!("{name}: confusion matrix, rows gold, columns predicted"))
}

/// White to a strong blue, by share in [0, 1].
fn blue(share: f64) -> String {
    let (from, to) = ([247.0, 250.0, 252.0], [43.0, 108.0, 176.0]);
    let c: Vec<u8> = from.iter().zip(to).map(|(a, b)| (a + (b - a) * share.clamp(0.0, 1.0)).round() as u8).collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Reliability diagram: accuracy per confidence bin against the diagonal of
/// perfect calibration, with the bins' record counts as a strip below.
pub fn reliability(title: &str, c: &Calibration, colour: &str) -> String {
    let (left, top, size, strip) = (44.0, 10.0, 240.0, 46.0);
    let mut svg = Svg::new(left + size + 20.0, top + size + strip + 40.0);
    let x = |v: f64| left + size * v;
    let y = |v: f64| top + size * (1.0 - v);
    for tick in (0..=10).step_by(2) {
        let v = tick as f64 / 10.0;
        svg.line(x(0.0), y(v), x(1.0), y(v), "#e2e8f0", "");
        svg.text(left - 6.0, y(v) + 4.0, "end", "tick", &format!("{v:.1}"));
        svg.text(x(v), top + size + strip + 16.0, "middle", "tick", &format!("{v:.1}"));
    }
    let max_count = c.bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    for b in &c.bins {
        let (x0, w) = (x(b.low) + 1.0, size * (b.high - b.low) - 2.0);
        if b.count > 0 {
            svg.rect(x0, y(b.accuracy), w, y(0.0) - y(b.accuracy), colour, r#"opacity="0.8""#);
            // The bin's mean confidence: where the bar would end if the system were calibrated.
            svg.line(x0 - 1.0, y(b.confidence), x0 + w + 1.0, y(b.confidence), "#c53030", r#"stroke-width="2.5""#);
        }
        let h = (strip - 12.0) * b.count as f64 / max_count;
        svg.rect(x0, top + size + strip - h, w, h, "#a0aec0", "");
    }
    svg.line(x(0.0), y(0.0), x(1.0), y(1.0), "#1a202c", r#"stroke-dasharray="4 3""#);
    svg.line(x(0.0), y(0.0), x(1.0), y(0.0), "#4a5568", "");
    svg.text(x(0.5), top + size + strip + 32.0, "middle", "axis", "confidence (probability of the predicted label)");
    svg.text(x(0.02), top + size + 14.0, "start", "tick", "records per bin ↓");
    let _ = write!(
        svg.body,
        r#"<text x="12" y="{:.1}" text-anchor="middle" class="axis" transform="rotate(-90 12 {:.1})">accuracy</text>"#,
        y(0.5),
        y(0.5)
    );
    svg.finish(title)
}

/// One line of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// Lines over a shared x axis; `mark_x` draws a vertical marker (the selected checkpoint).
pub fn lines(
    title: &str,
    x_label: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
    mark_x: Option<f64>,
) -> String {
    let (left, top, w, h) = (48.0, 28.0, 400.0, 180.0);
    let mut svg = Svg::new(left + w + 16.0, top + h + 40.0);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (x_min, x_max) = span(all().map(|p| p.0));
    let (y_min, y_max) = y_range.unwrap_or_else(|| {
        let (lo, hi) = span(all().map(|p| p.1));
        (lo.min(0.0), hi * 1.05)
    });
    let y_max = y_max.max(y_min + 1e-9);
    let y_step = nice_step(y_max - y_min);
    // The y range widens to whole ticks, so that the top gridline is labelled.
    let (y_min, y_max) = ((y_min / y_step).floor() * y_step, (y_max / y_step).ceil() * y_step);
    // The x axis starts at 0 (an epoch or step count) and ends on a whole tick.
    let x_step = nice_step(x_max - x_min.min(0.0));
    let (x_min, x_max) = (x_min.min(0.0), (x_max / x_step).ceil() * x_step);
    let x = |v: f64| left + w * (v - x_min) / (x_max - x_min).max(1e-12);
    let y = |v: f64| top + h * (1.0 - (v - y_min) / (y_max - y_min).max(1e-12));
    for v in ticks(y_min, y_max, y_step) {
        svg.line(left, y(v), left + w, y(v), "#e2e8f0", "");
        svg.text(left - 6.0, y(v) + 4.0, "end", "tick", &short(v));
    }
    for v in ticks(x_min, x_max, x_step) {
        svg.text(x(v), top + h + 16.0, "middle", "tick", &short(v));
    }
    svg.text(left + w / 2.0, top + h + 34.0, "middle", "axis", x_label);
    if let Some(m) = mark_x {
        svg.line(x(m), top, x(m), top + h, "#718096", r#"stroke-dasharray="2 3""#);
        // Near the right edge the label goes on the marker's left, inside the chart.
        let (dx, anchor) = if x(m) > left + 0.85 * w { (-4.0, "end") } else { (4.0, "start") };
        svg.text(x(m) + dx, top + 10.0, anchor, "tick", "selected");
    }
    let mut legend_x = left;
    for s in series {
        let path: Vec<String> = s.points.iter().map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="5 3""# } else { "" };
        let _ = write!(
            svg.body,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            s.colour
        );
        for &(a, b) in &s.points {
            let _ = write!(svg.body, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#, x(a), y(b), s.colour);
        }
        svg.line(legend_x, 12.0, legend_x + 18.0, 12.0, s.colour, &format!(r#"stroke-width="2"{dash}"#));
        svg.text(legend_x + 23.0, 16.0, "start", "label", s.name);
        legend_x += 40.0 + 6.5 * s.name.chars().count() as f64;
    }
    svg.finish(title)
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    }
}

/// A round step that cuts `range` into about four to eight parts: 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(range: f64) -> f64 {
    let raw = range.abs().max(1e-12) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|&s| s >= raw);
    step.unwrap_or(10.0 * magnitude)
}

/// Multiples of `step` from `lo` to `hi`.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label: few digits.
fn short(v: f64) -> String {
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A small stacked bar of a probability distribution, for error tables.
pub fn probability_strip(parts: &[(&str, f64, &str)]) -> String {
    let (w, h) = (120.0, 12.0);
    let mut svg = Svg::new(w, h);
    let mut x = 0.0;
    for (_, p, colour) in parts {
        svg.rect(x, 0.0, w * p, h, colour, "");
        x += w * p;
    }
    let title: Vec<String> = parts.iter().map(|(l, p, _)| format!("{l} {p:.2}")).collect();
    svg.finish(&title.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let svg = bars("t", &[Bar { label: "<b>", value: 0.5, low: 0.4, high: 0.6, colour: "#000" }]);
        let svg = svg + &heatmap("a&b", "n=1", &["x".to_string()], &[vec![1]]);
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>") && svg.contains("a&amp;b"));
    }

    #[test]
    fn heat_runs_from_white_to_blue() {
        assert_eq!(blue(0.0), "#f7fafc");
        assert_eq!(blue(1.0), "#2b6cb0");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(6.0), 2.0);
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(1.1), 0.25);
        assert_eq!(ticks(0.23, 6.0, 1.0), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(ticks(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn charts_are_well_formed_without_data() {
        for svg in [lines("empty", "step", &[], None, None), grouped_bars("empty", &[]), bars("empty", &[])] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    /// Any label set gets the stance colours: its stance labels green, red and
    /// on, its neutral ones grey; favor and against keep theirs.
    #[test]
    fn label_colours_follow_the_labels_roles() {
        let stance = |labels: &[&str]| labels.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let semeval = stance(&["favor", "against"]);
        let colours: Vec<&str> = ["favor", "against", "none"].iter().map(|l| label_colour(l, &semeval)).collect();
        assert_eq!(colours, ["#2f855a", "#c53030", "#8a94a6"]);
        let custom = stance(&["Support", "Oppose", "Query"]);
        let colours: Vec<&str> =
            ["Support", "Oppose", "Query", "No Stance", "unrelated"].iter().map(|l| label_colour(l, &custom)).collect();
        assert_eq!(colours, ["#2f855a", "#c53030", "#6b46c1", "#8a94a6", "#8a94a6"]);
        // A label of its own beside favor and against takes the colour after theirs, wherever it stands.
        let mixed = stance(&["support", "favor", "against"]);
        let colours: Vec<&str> = ["support", "favor", "against"].iter().map(|l| label_colour(l, &mixed)).collect();
        assert_eq!(colours, ["#6b46c1", "#2f855a", "#c53030"]);
    }
}
