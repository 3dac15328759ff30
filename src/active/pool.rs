//! Unlabelled sentences read with `predict`'s inputs (raw article text, lines,
//! JSONL, CSV), each once, with its neighbours in its document.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::input::{open_records, ReadOptions, Record};
use crate::Result;

/// One distinct sentence of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSentence {
    /// Its first record.
    pub record: Record,
    /// The targets it is scored on: those its records name, or `None` for
    /// every target selected (a record naming none asks for all of them).
    pub targets: Option<Vec<String>>,
    /// The sentences just before and after it in the same document (article
    /// text only: elsewhere neighbouring lines need not belong together).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Reads every input in order. A sentence already seen (same text, surrounding
/// whitespace aside) or in `skip` is left out; its neighbours still count, and
/// a repeat's target is added to the first's, whatever the order.
pub fn read_pool(inputs: &[PathBuf], options: &ReadOptions, skip: &HashSet<String>) -> Result<Vec<PoolSentence>> {
    let mut records = Vec::new();
    let options = ReadOptions { ids_name_file: inputs.len() > 1, ..options.clone() };
    for path in inputs {
        let (_, stream) = open_records(path, &options)?;
        for record in stream {
            records.push(record?);
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut pool: Vec<PoolSentence> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let text = record.text.trim();
        if skip.contains(text) {
            continue;
        }
        if let Some(&at) = seen.get(text) {
            pool[at].add_target(record.target.as_deref());
            continue;
        }
        seen.insert(text, pool.len());
        let neighbour = |j: Option<usize>| {
            j.and_then(|j| records.get(j)).filter(|other| adjacent(record, other)).map(|other| other.text.clone())
        };
        let (before, after) = (neighbour(i.checked_sub(1)), neighbour(Some(i + 1)));
        let targets = record.target.clone().map(|t| vec![t]);
        pool.push(PoolSentence { record: record.clone(), targets, before, after });
    }
    Ok(pool)
}

impl PoolSentence {
    fn add_target(&mut self, target: Option<&str>) {
        match (&mut self.targets, target) {
            (Some(_), None) => self.targets = None,
            (Some(targets), Some(t)) if !targets.iter().any(|have| have == t) => targets.push(t.to_string()),
            _ => {}
        }
    }
}

/// Sentences next to each other in one document.
fn adjacent(a: &Record, b: &Record) -> bool {
    match (&a.span, &b.span) {
        (Some(x), Some(y)) => x.doc == y.doc && a.file == b.file && x.sentence.abs_diff(y.sentence) == 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_sentences_get_neighbours_and_repeats_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let article = dir.path().join("news.txt");
        std::fs::write(&article, "Talks failed. Peace is far. Talks failed.\n\nWar goes on.\n").unwrap();
        let lines = dir.path().join("more.lines");
        std::fs::write(&lines, "War goes on.\nnew one\nold one\n").unwrap();
        let skip: HashSet<String> = ["old one".to_string()].into();
        let options = ReadOptions::default();
        let pool = read_pool(&[article, lines], &options, &skip).unwrap();
        let texts: Vec<&str> = pool.iter().map(|p| p.record.text.as_str()).collect();
        assert_eq!(texts, ["Talks failed.", "Peace is far.", "War goes on.", "new one"]);
        assert_eq!((pool[0].before.as_deref(), pool[0].after.as_deref()), (None, Some("Peace is far.")));
        assert_eq!(pool[2].before.as_deref(), Some("Talks failed."), "the repeat still neighbours it");
        assert_eq!((pool[3].before.as_deref(), pool[3].after.as_deref()), (None, None), "lines have none");
    }

    /// A sentence given with one target and again with another (or with
    /// none, which asks for every target) is one pool sentence scored on all
    /// its records ask for, in any order.
    #[test]
    fn a_repeated_sentence_keeps_every_target_its_records_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.jsonl");
        let read = |lines: &[&str]| {
            std::fs::write(&path, lines.join("\n")).unwrap();
            read_pool(std::slice::from_ref(&path), &ReadOptions::default(), &HashSet::new()).unwrap()
        };
        let (a, b, all) =
            (r#"{"text": "S.", "target": "nato"}"#, r#"{"text": " S. ", "target": "eu"}"#, r#"{"text": "S."}"#);
        let pool = read(&[a, b, a]);
        assert_eq!((pool.len(), pool[0].targets.clone()), (1, Some(vec!["nato".to_string(), "eu".to_string()])));
        for lines in [[a, all], [all, a]] {
            assert_eq!(read(&lines)[0].targets, None, "{lines:?}");
        }
    }
}
