//! The rows `stancekit suggest` writes and `stancekit label` reads back: one
//! JSONL object per picked sentence, with where it came from, its
//! neighbours, the model's probabilities per target and why it was picked.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Strategy;
use crate::{Error, Problem, Problems, Result};

/// The field that marks a suggestions file (no input format of `predict` has it).
const MARKER: &str = "picked_for";

/// One suggested sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: String,
    /// The document and place the sentence was cut from (article text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentence: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
    pub text: String,
    /// The sentences before and after it in its document, for a reader's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Target id → the model's probability of each label.
    pub probs: BTreeMap<String, LabelProbs>,
    /// The target whose turn picked it.
    pub picked_for: String,
    pub strategy: Strategy,
    /// The strategy's score on `picked_for`: normalised entropy, 1 − margin, or the random draw.
    pub score: f64,
    /// `diverse`: cosine distance to the nearest labelled or earlier-suggested sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<f64>,
    /// The same in words.
    pub why: String,
}

/// Label → probability, in the model's label order (a JSON object keeps it).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelProbs(pub Vec<(String, f32)>);

impl Serialize for LabelProbs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(l, p)| (l, p)))
    }
}

impl<'de> Deserialize<'de> for LabelProbs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // serde_json keeps object order (preserve_order), so the labels stay in model order.
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let pairs = map.into_iter().map(|(label, p)| match p.as_f64() {
            Some(p) => Ok((label, p as f32)),
            None => Err(serde::de::Error::custom(format!("probability of `{label}` is not a number"))),
        });
        pairs.collect::<std::result::Result<_, _>>().map(LabelProbs)
    }
}

/// Whether `path` is a suggestions file: JSONL whose first object has `picked_for`.
pub fn is_suggestions_file(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    let first = std::io::BufReader::new(file).lines().map_while(|l| l.ok()).find(|l| !l.trim().is_empty());
    first
        .and_then(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .is_some_and(|v| v.get(MARKER).is_some())
}

/// Reads a suggestions file; every bad line is named.
pub fn read_suggestions(path: &Path) -> Result<Vec<Suggestion>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<Suggestion>(line) {
            Ok(row) => rows.push(row),
            Err(e) => problems.push(Problem {
                file: path.display().to_string(),
                line: i + 1,
                field: "json".into(),
                message: e.to_string(),
            }),
        }
    }
    Problems::or_ok(problems, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Suggestion {
        Suggestion {
            id: "news.txt:3".into(),
            doc: Some("news.txt".into()),
            sentence: Some(3),
            start: Some(40),
            end: Some(61),
            text: "Talks resume in May.".into(),
            before: Some("The war goes on.".into()),
            after: None,
            probs: [("nato".to_string(), LabelProbs(vec![("none".into(), 0.5), ("favor".into(), 0.25)]))].into(),
            picked_for: "nato".into(),
            strategy: Strategy::Diverse,
            score: 0.9,
            distance: Some(0.4),
            why: "uncertain".into(),
        }
    }

    #[test]
    fn rows_round_trip_and_keep_label_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        crate::io::write_jsonl(&path, &[row()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""probs":{"nato":{"none":0.5,"favor":0.25}}"#), "{text}");
        assert!(is_suggestions_file(&path));
        assert_eq!(read_suggestions(&path).unwrap(), vec![row()]);
        let plain = dir.path().join("p.jsonl");
        std::fs::write(&plain, "{\"text\": \"x\"}\n").unwrap();
        assert!(!is_suggestions_file(&plain));
    }

    #[test]
    fn a_bad_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let good = serde_json::to_string(&row()).unwrap();
        std::fs::write(&path, format!("{good}\n\n{{\"picked_for\": 1}}\n")).unwrap();
        let err = read_suggestions(&path).unwrap_err().to_string();
        assert!(err.contains("s.jsonl:3: json:"), "{err}");
    }
}
