//! SemEval-2016 Task 6 files: tab-separated `ID, Target, Tweet, Stance` (later
//! releases add columns, which are ignored). Targets are given by description
//! and stances in capitals; both are mapped to the project's ids and labels.

use std::sync::Arc;

use super::{Pos, Record, Schema, Sink};
use crate::input::lines::LineReader;
use crate::input::strip_semst;

const COLUMNS: [&str; 4] = ["id", "target", "tweet", "stance"];

/// Whether a file's bytes start with the SemEval header.
pub(crate) fn has_header(bytes: &[u8]) -> bool {
    let Some(Ok(first)) = LineReader::new(bytes, "".into()).next() else {
        return false;
    };
    let names: Vec<String> = first.text.split('\t').map(|c| c.trim().to_lowercase()).collect();
    names.len() >= COLUMNS.len() && names[..COLUMNS.len()] == COLUMNS
}

pub(crate) fn read(file: &Arc<str>, bytes: &[u8], schema: &Schema, sink: &mut Sink) {
    let mut columns: Option<[usize; 4]> = None;
    for line in LineReader::new(bytes, file.clone()) {
        let (line, text) = match line {
            Ok(line) => (line.number, line.text),
            Err(e) if columns.is_none() => return sink.error(e),
            Err(e) => {
                sink.error(e);
                continue;
            }
        };
        let at = Pos { file: file.clone(), line };
        let fields: Vec<&str> = text.split('\t').collect();
        match columns {
            None => match header(&fields) {
                Some(found) => columns = Some(found),
                None => return sink.problems.push(at.problem("header", "expected ID, Target, Tweet, Stance")),
            },
            Some(_) if text.trim().is_empty() => {}
            Some(columns) => entry(columns, &fields, at, schema, sink),
        }
    }
    if columns.is_none() {
        sink.problems.push(Pos { file: file.clone(), line: 1 }.problem("header", "empty file: no header row"));
    }
}

fn header(fields: &[&str]) -> Option<[usize; 4]> {
    let find = |name: &str| fields.iter().position(|f| f.trim().eq_ignore_ascii_case(name));
    Some([find("id")?, find("target")?, find("tweet")?, find("stance")?])
}

fn entry(columns: [usize; 4], fields: &[&str], at: Pos, schema: &Schema, sink: &mut Sink) {
    let mut get = |index: usize, name: &str| {
        let value = fields.get(index).copied();
        if value.is_none() {
            sink.problems.push(at.problem(name, "missing field (the line has too few tab-separated columns)"));
        }
        value
    };
    let [id, target, tweet, stance] = columns;
    let (id, target, tweet, stance) =
        (get(id, "ID"), get(target, "Target"), get(tweet, "Tweet"), get(stance, "Stance"));
    let (Some(id), Some(target), Some(tweet), Some(stance)) = (id, target, tweet, stance) else { return };
    Fields { id: Some(id), target, tweet, stance }.push(schema, at, sink);
}

/// One line's values under SemEval's column names, here or in a CSV/TSV that uses them.
pub(crate) struct Fields<'a> {
    pub id: Option<&'a str>,
    pub target: &'a str,
    pub tweet: &'a str,
    pub stance: &'a str,
}

impl Fields<'_> {
    /// The record, read as SemEval is: the target by id or description, the stance in any case.
    pub(crate) fn push(self, schema: &Schema, at: Pos, sink: &mut Sink) {
        let Fields { id, target, tweet, stance } = self;
        let Some(target) = schema.resolve_target(target) else {
            let message = format!(
                "unknown target description '{target}'; add a target with this description to the targets file \
                 (known: {})",
                schema.targets.values().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", ")
            );
            return sink.problems.push(at.problem("Target", message));
        };
        let record = Record {
            id: id.map(|id| id.trim().to_string()).filter(|id| !id.is_empty()),
            text: strip_semst(tweet).to_string(),
            target: target.to_string(),
            label: schema_label(schema, stance.trim()),
        };
        sink.push_one_line(record, at);
    }
}

/// The schema's label that `stance` spells in any case (`FAVOR` is `favor`,
/// `support` is `Support`); as given when none does, for the check to name.
fn schema_label(schema: &Schema, stance: &str) -> String {
    super::label_in_any_case(&schema.labels, stance).map_or_else(|| stance.to_string(), String::clone)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, schema, write};
    use super::super::{load, Format};

    const HEADER: &str = "ID\tTarget\tTweet\tStance\tOpinion Towards\tSentiment\r\n";

    #[test]
    fn maps_descriptions_and_labels_and_strips_marker() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("{HEADER}10001\tClimate Change is a Real Concern\tIt is hot #SemST \tFAVOR\t1\tpos\r\n");
        let file = write(dir.path(), "train.txt", body);
        let data = load(&[file], None, &schema()).unwrap();
        let r = &data.files[0].entries[0].record;
        assert_eq!(
            (r.id.as_deref(), r.text.as_str(), r.target.as_str(), r.label.as_str()),
            (Some("10001"), "It is hot", "climate", "favor")
        );
        // Labels with capitals of their own are matched in any case too.
        let mut capitals = schema();
        capitals.labels = ["Support", "Oppose", "No Stance"].map(String::from).to_vec();
        let body = format!("{HEADER}1\tclimate\tx\tsupport\n2\tclimate\ty\tNO STANCE\n");
        let data = load(&[write(dir.path(), "capitals.txt", body)], None, &capitals).unwrap();
        let labels: Vec<&str> = data.files[0].entries.iter().map(|e| e.record.label.as_str()).collect();
        assert_eq!(labels, ["Support", "No Stance"]);
        // Labels that differ in case alone: the one spelled exactly wins.
        capitals.labels = ["none", "NONE", "favor"].map(String::from).to_vec();
        let body = format!("{HEADER}1\tclimate\tx\tNONE\n2\tclimate\ty\tNone\n");
        let data = load(&[write(dir.path(), "cases.txt", body)], None, &capitals).unwrap();
        let labels: Vec<&str> = data.files[0].entries.iter().map(|e| e.record.label.as_str()).collect();
        assert_eq!(labels, ["NONE", "none"]);
    }

    #[test]
    fn unknown_description_and_label_and_latin1() {
        let dir = tempfile::tempdir().unwrap();
        let body = [
            HEADER.as_bytes(),
            b"1\tLegalization of Abortion\tx\tAGAINST\n",
            b"2\tAtheism\tcaf\xe9\tNONE\n",
            b"3\tUkraine joining NATO\ty\tMAYBE\n",
        ]
        .concat();
        let file = write(dir.path(), "test.tsv", body);
        let got = problems(&[&file], Some(Format::Semeval));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with(&format!("{file}:2: Target: unknown target description 'Legalization")), "{got:?}");
        assert!(got[1].starts_with(&format!("{file}:3: encoding: invalid UTF-8 at byte 14")), "{got:?}");
        assert!(got[2].starts_with(&format!("{file}:4: label: unknown label 'MAYBE'")), "{got:?}");
    }

    #[test]
    fn bom_crlf_and_invalid_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("\u{feff}{HEADER}1\tUkraine joining NATO\tJoin #SemST\tFAVOR\r\n");
        let file = write(dir.path(), "a.txt", &body);
        let data = load(&[&file], None, &schema()).unwrap();
        assert_eq!(data.files[0].entries[0].record.text, "Join");
        write(dir.path(), "a.txt", [body.as_bytes(), b"2\tUkraine joining NATO\t\xff\tNONE\r\n"].concat());
        let got = problems(&[&file], None);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(&format!("{file}:3: encoding: invalid UTF-8 at byte 24 of the line")), "{got:?}");
    }
}
