//! The predictions file: what `stancekit predict` writes and `stancekit eval`
//! reads, from stancekit or from any other system. The format is read and
//! written here and nowhere else.
//!
//! JSONL, one object per (sentence, target):
//!
//! ```json
//! {"id": "s1", "text": "…", "target": "nato_accession", "label": "favor",
//!  "probs": {"favor": 0.81, "against": 0.07, "none": 0.12}}
//! ```
//!
//! - `id` is optional (a string or a number); it names the sentence, so the
//!   records of one sentence share it.
//! - `label` is the predicted label.
//! - `probs` is optional. When present it holds every label of the task, each in
//!   [0, 1], summing to 1 (± 0.01); calibration needs it. `probabilities` is
//!   read as another name for it.
//! - Other fields (such as the `gold` that `eval` adds) are ignored on reading.

use std::io::BufReader;
use std::path::Path;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::input::id;
use crate::input::lines::LineReader;
use crate::{Error, Problem, Problems, Result};

/// How far from 1 a probability distribution may sum (files round their numbers).
const SUM_TOLERANCE: f64 = 0.01;

/// Label → probability, in the order the writer gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probs(pub Vec<(String, f64)>);

impl Probs {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, label: &str) -> Option<f64> {
        self.0.iter().find(|(l, _)| l == label).map(|&(_, p)| p)
    }

    /// The probabilities in `labels` order; `None` when one is missing.
    pub fn in_order(&self, labels: &[String]) -> Option<Vec<f64>> {
        labels.iter().map(|l| self.get(l)).collect()
    }

    /// Pairs `labels` with `values`, in that order.
    pub fn from_values(labels: &[String], values: &[f64]) -> Self {
        Probs(labels.iter().cloned().zip(values.iter().copied()).collect())
    }
}

impl Serialize for Probs {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (label, p) in &self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Probs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ProbsVisitor;
        impl<'de> Visitor<'de> for ProbsVisitor {
            type Value = Probs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of label → probability")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Probs, A::Error> {
                let mut out = Vec::new();
                while let Some((label, p)) = map.next_entry::<String, f64>()? {
                    out.push((label, p));
                }
                Ok(Probs(out))
            }
        }
        d.deserialize_map(ProbsVisitor)
    }
}

/// One line of a predictions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    #[serde(default, deserialize_with = "id_string", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub text: String,
    pub target: String,
    pub label: String,
    #[serde(default, alias = "probabilities", skip_serializing_if = "Probs::is_empty")]
    pub probs: Probs,
}

/// The input layer's id policy (other tools number their rows).
fn id_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    id::from_json(Option::<serde_json::Value>::deserialize(d)?.as_ref()).map_err(D::Error::custom)
}

/// The predictions of one file, with the line each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionsFile {
    /// The file as named to the user.
    pub name: String,
    pub rows: Vec<Prediction>,
    /// 1-based line number of each row.
    pub lines: Vec<usize>,
}

impl PredictionsFile {
    pub fn problem(&self, row: usize, field: &str, message: impl Into<String>) -> Problem {
        Problem { file: self.name.clone(), line: self.lines[row], field: field.into(), message: message.into() }
    }
}

/// Reads and checks a predictions file against the task's labels; every bad
/// line is reported at once.
pub fn read(path: &Path, labels: &[String]) -> Result<PredictionsFile> {
    let name = path.display().to_string();
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let message = "predictions are read as JSONL, as `stancekit predict` writes them by default (not --format csv)";
        return Err(Problem::new(&name, 0, "file", message).into());
    }
    let input = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut file = PredictionsFile { name: name.clone(), rows: Vec::new(), lines: Vec::new() };
    let mut problems = Vec::new();
    for line in LineReader::new(BufReader::new(input), name.as_str().into()) {
        let line = match Problems::gather(line, &mut problems)? {
            Some(line) if !line.text.trim().is_empty() => line,
            _ => continue,
        };
        let at = |(field, message): (&str, String)| Problem::new(&name, line.number, field, message);
        match parse(&line.text) {
            Ok(mut p) => {
                spell_as_the_task(&mut p, labels);
                problems.extend(check(&p, labels).into_iter().map(at));
                file.rows.push(p);
                file.lines.push(line.number);
            }
            Err(problem) => problems.push(at(problem)),
        }
    }
    Problems::or_ok(problems, file)
}

/// A label and probabilities in another case than the task's (`FAVOR`) take the task's spelling.
fn spell_as_the_task(p: &mut Prediction, labels: &[String]) {
    let spell = |given: &mut String| {
        if let Some(label) = crate::data::label_in_any_case(labels, given) {
            given.clone_from(label);
        }
    };
    spell(&mut p.label);
    p.probs.0.iter_mut().for_each(|(label, _)| spell(label));
}

/// One line; a line that does not deserialize because of its id names the id.
fn parse(line: &str) -> std::result::Result<Prediction, (&'static str, String)> {
    use crate::input::json::{parse_line, LineError, GIVEN_TWICE};
    // A key given twice is named, not its last value taken.
    let value = parse_line(line).map_err(|e| match e {
        LineError::Twice(key) => ("json", format!("`{key}` {GIVEN_TWICE}")),
        LineError::Json(e) => ("json", crate::input::lines::json_message(line, &e)),
    })?;
    Prediction::deserialize(&value).map_err(|e| match id::from_json(value.get("id")) {
        Err(message) => ("id", message),
        Ok(_) => ("json", e.to_string()),
    })
}

fn check(p: &Prediction, labels: &[String]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let list = || labels.join(", ");
    if p.text.trim().is_empty() {
        out.push(("text", "empty".to_string()));
    }
    if !labels.contains(&p.label) {
        out.push(("label", format!("'{}' is not a label of the task ({})", p.label, list())));
    }
    if p.probs.is_empty() {
        return out;
    }
    let mut seen = std::collections::HashSet::new();
    if let Some((label, _)) = p.probs.0.iter().find(|(label, _)| !seen.insert(label)) {
        // Two spellings of one label (`favor` and `FAVOR`): which to take is the writer's to say.
        out.push(("probs", format!("'{label}' is given twice (in two spellings or as one key twice)")));
    }
    for (label, prob) in &p.probs.0 {
        if !labels.contains(label) {
            out.push(("probs", format!("'{label}' is not a label of the task ({})", list())));
        } else if !(0.0..=1.0).contains(prob) {
            out.push(("probs", format!("probability of '{label}' is {prob}, outside [0, 1]")));
        }
    }
    if let Some(missing) = labels.iter().find(|l| p.probs.get(l).is_none()) {
        out.push(("probs", format!("no probability for '{missing}'")));
    }
    let sum: f64 = p.probs.0.iter().map(|(_, p)| p).sum();
    if (sum - 1.0).abs() > SUM_TOLERANCE {
        out.push((
            "probs",
            format!("probabilities sum to {sum:.4}, not 1 (within {SUM_TOLERANCE}); write more digits"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["favor", "against", "none"].map(String::from).to_vec()
    }

    #[test]
    fn round_trips_with_probabilities_in_label_order() {
        let p = Prediction {
            id: Some("s1".into()),
            text: "nato now".into(),
            target: "nato".into(),
            label: "favor".into(),
            probs: Probs::from_values(&labels(), &[0.7, 0.2, 0.1]),
        };
        let line = serde_json::to_string(&p).unwrap();
        assert_eq!(
            line,
            r#"{"id":"s1","text":"nato now","target":"nato","label":"favor","probs":{"favor":0.7,"against":0.2,"none":0.1}}"#
        );
        assert_eq!(serde_json::from_str::<Prediction>(&line).unwrap(), p);
        assert_eq!(p.probs.in_order(&["none".into(), "favor".into()]), Some(vec![0.1, 0.7]));
    }

    #[test]
    fn numeric_ids_extra_fields_and_missing_probs_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"id\": 7, \"text\": \"a\", \"target\": \"t\", \"label\": \"none\", \"gold\": \"favor\"}\n\n",
        )
        .unwrap();
        let file = read(&path, &labels()).unwrap();
        assert_eq!(file.rows[0].id.as_deref(), Some("7"));
        assert!(file.rows[0].probs.is_empty());
        assert_eq!(file.lines, vec![1]);
    }

    #[test]
    fn every_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let lines = [
            r#"{"text": "a", "target": "t", "label": "pro"}"#,
            r#"{"text": "a", "target": "t", "label": "none", "probs": {"favor": 0.5, "none": 0.2}}"#,
            r#"{"text": "a", "target": "t", "label": "none", "probs": {"favor": 1.5, "against": 0, "none": 0, "x": 0}}"#,
            r#"{"text": "a", "label": "none"}"#,
            r#"{"text": "a", "target": "t", "label": "none", "probs": {"favor": NaN, "against": 0, "none": 1}}"#,
            r#"{"text": "a", "target": "t", "label": "favor", "label": "none"}"#,
            r#"{"text": "b", "target": "t", "label": "FAVOR", "probs": {"Favor": 0.5, "AGAINST": 0.25, "none": 0.25}}"#,
            r#"{"text": "c", "target": "t", "label": "none", "probs": {"favor": 0.5, "FAVOR": 0.3, "against": 0.1, "none": 0.1}}"#,
            r#"{"text": "d", "target": "t", "label": "none", "probs": {"favor": 0.5, "favor": 0.9, "against": 0.05, "none": 0.05}}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = read(&path, &labels()).unwrap_err().to_string();
        for expected in [
            "p.jsonl:1: label: 'pro' is not a label of the task (favor, against, none)",
            "p.jsonl:2: probs: no probability for 'against'",
            "p.jsonl:2: probs: probabilities sum to 0.7000, not 1 (within 0.01); write more digits",
            "p.jsonl:3: probs: probability of 'favor' is 1.5, outside [0, 1]",
            "p.jsonl:3: probs: 'x' is not a label",
            "p.jsonl:4: json: missing field `target`",
            "(NaN and Infinity are not JSON numbers, nor a probability or a score)",
            "p.jsonl:6: json: `label` given twice in one record",
            "p.jsonl:8: probs: 'favor' is given twice (in two spellings or as one key twice)",
            "p.jsonl:9: json: `favor` given twice in one record",
        ] {
            assert!(err.contains(expected), "{expected} not in\n{err}");
        }
        assert!(!err.contains("p.jsonl:7"), "labels in another case take the task's spelling: {err}");
        std::fs::write(&path, lines[6]).unwrap();
        let row = &read(&path, &labels()).unwrap().rows[0];
        assert_eq!((row.label.as_str(), row.probs.in_order(&labels())), ("favor", Some(vec![0.5, 0.25, 0.25])));
    }

    #[test]
    fn bom_crlf_and_invalid_utf8_follow_the_line_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let good = b"\xEF\xBB\xBF{\"id\": \"a\", \"text\": \"x\", \"target\": \"t\", \"label\": \"none\"}\r\n";
        std::fs::write(&path, good).unwrap();
        assert_eq!(read(&path, &labels()).unwrap().rows[0].id.as_deref(), Some("a"));
        std::fs::write(&path, [&good[..], b"\r\n{\"text\": \"caf\xe9\"}\r\n"].concat()).unwrap();
        let err = read(&path, &labels()).unwrap_err().to_string();
        assert!(err.ends_with("p.jsonl:3: encoding: invalid UTF-8 at byte 14 of the line; convert the file to UTF-8 (SemEval files are often Windows-1252)"), "{err}");
    }

    #[test]
    fn ids_follow_the_id_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let line = |id: &str| format!("{{\"id\": {id}, \"text\": \"a\", \"target\": \"t\", \"label\": \"none\"}}\n");
        std::fs::write(&path, ["\"s\"", "25", "null"].map(line).concat()).unwrap();
        let ids: Vec<Option<String>> = read(&path, &labels()).unwrap().rows.into_iter().map(|p| p.id).collect();
        assert_eq!(ids, [Some("s".into()), Some("25".into()), None]);
        std::fs::write(&path, ["true", "[1]"].map(line).concat()).unwrap();
        let err = read(&path, &labels()).unwrap_err().to_string();
        for expected in [
            "p.jsonl:1: id: expected a string or a number, found true",
            "p.jsonl:2: id: expected a string or a number, found [1]",
        ] {
            assert!(err.contains(expected), "{expected} not in\n{err}");
        }
        let bad = serde_json::from_str::<Prediction>(&line("false")).unwrap_err().to_string();
        assert!(bad.starts_with("expected a string or a number, found false"), "{bad}");
    }

    #[test]
    fn a_csv_of_predictions_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "id,text,target,label\n").unwrap();
        let err = read(&path, &labels()).err().unwrap().to_string();
        assert!(err.contains("p.csv: file: predictions are read as JSONL"), "{err}");
    }
}
