//! Counts of records by target and label, printed as a table.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::Record;

/// Records per target and label, with distinct sentences per target and overall.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    labels: Vec<String>,
    rows: BTreeMap<String, Row>,
    sentences: HashSet<String>,
}

#[derive(Debug, Clone, Default)]
struct Row {
    by_label: Vec<usize>,
    records: usize,
    sentences: HashSet<String>,
}

impl Counts {
    /// Counts `records`, with one column per label in `labels` order.
    pub fn new<'a>(labels: &[String], records: impl IntoIterator<Item = &'a Record>) -> Counts {
        let mut counts = Counts { labels: labels.to_vec(), ..Counts::default() };
        records.into_iter().for_each(|r| counts.add(r));
        counts
    }

    pub fn add(&mut self, record: &Record) {
        let row = self.rows.entry(record.target.clone()).or_default();
        row.by_label.resize(self.labels.len(), 0);
        if let Some(i) = self.labels.iter().position(|l| *l == record.label) {
            row.by_label[i] += 1;
        }
        row.records += 1;
        row.sentences.insert(record.sentence().to_string());
        self.sentences.insert(record.sentence().to_string());
    }

    pub fn records(&self) -> usize {
        self.rows.values().map(|r| r.records).sum()
    }

    /// Distinct sentences over all targets.
    pub fn sentences(&self) -> usize {
        self.sentences.len()
    }

    /// Records of one target with one label.
    pub fn count(&self, target: &str, label: &str) -> usize {
        let column = self.labels.iter().position(|l| l == label);
        self.rows.get(target).zip(column).map_or(0, |(row, i)| row.by_label[i])
    }

    fn total_by_label(&self) -> Vec<usize> {
        (0..self.labels.len()).map(|i| self.rows.values().map(|r| r.by_label[i]).sum()).collect()
    }
}

impl fmt::Display for Counts {
    /// Rows are targets plus a total; columns are the labels, records and distinct sentences.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut header: Vec<String> = vec!["target".into()];
        header.extend(self.labels.iter().cloned());
        header.extend(["records".into(), "sentences".into()]);
        let mut rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|(target, row)| line(target, &row.by_label, row.records, row.sentences.len()))
            .collect();
        rows.push(line("total", &self.total_by_label(), self.records(), self.sentences()));
        write!(f, "{}", crate::text::grid(&header, &rows))
    }
}

fn line(name: &str, by_label: &[usize], records: usize, sentences: usize) -> Vec<String> {
    let mut cells = vec![name.to_string()];
    cells.extend(by_label.iter().map(ToString::to_string));
    cells.extend([records.to_string(), sentences.to_string()]);
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str, target: &str, label: &str) -> Record {
        Record { id: None, text: text.into(), target: target.into(), label: label.into() }
    }

    #[test]
    fn counts_and_table() {
        let labels = ["favor", "against", "none"].map(String::from);
        let records = [
            record("a", "nato", "favor"),
            record("a", "climate", "none"),
            record("b", "nato", "against"),
            record("b", "nato", "against"),
        ];
        let counts = Counts::new(&labels, &records);
        assert_eq!((counts.records(), counts.sentences()), (4, 2));
        assert_eq!(counts.count("nato", "against"), 2);
        assert_eq!(counts.count("nato", "none"), 0);
        assert_eq!(
            counts.to_string(),
            "target   favor  against  none  records  sentences\n\
             climate      0        0     1        1          1\n\
             nato         1        2     0        3          2\n\
             total        1        2     1        4          2\n"
        );
    }
}
