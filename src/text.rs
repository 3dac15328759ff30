//! Plain text laid out for a terminal: columns aligned by how wide their
//! text shows, so that labels and targets in any script line up (`é` is one
//! column, `日` two).

use unicode_width::UnicodeWidthStr;

/// Columns of text; the first is left-aligned, the others right-aligned.
pub fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let width = |c: usize| rows.iter().chain([&header.to_vec()]).map(|r| r[c].width()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let mut out = String::new();
    for row in std::iter::once(&header.to_vec()).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                let pad = " ".repeat(w.saturating_sub(cell.width()));
                if c == 0 {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use unicode_width::UnicodeWidthStr;

    /// Every line of a grid with accented and CJK cells shows as wide as the others.
    #[test]
    fn cells_align_by_their_shown_width() {
        let strings = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let header = strings(&["target", "Dafür", "against"]);
        let rows = [strings(&["日本語", "1", "22"]), strings(&["énergie", "333", "4"])];
        let text = super::grid(&header, &rows);
        let widths: Vec<usize> = text.lines().map(UnicodeWidthStr::width).collect();
        assert_eq!(widths, [widths[0]; 3], "{text}");
        assert!(text.lines().nth(1).unwrap().starts_with("日本語   "), "{text}");
    }
}
