//! JSONL, the canonical format: one `{"id"?, "text", "target", "label"}` object per line.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{lines, Pos, Sink};

pub(crate) fn read(file: &Arc<str>, bytes: &[u8], sink: &mut Sink) {
    for (line, raw) in lines::split(bytes) {
        let text = match lines::decode(file, line, raw) {
            Ok(text) => text,
            Err(problem) => {
                sink.problems.push(problem);
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let at = Pos { file: file.clone(), line };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => entry(&object, at, sink),
            Ok(_) => sink.problems.push(at.problem("json", "expected an object {\"text\", \"target\", \"label\"}")),
            Err(e) => sink.problems.push(at.problem("json", e.to_string())),
        }
    }
}

fn entry(object: &Map<String, Value>, at: Pos, sink: &mut Sink) {
    let mut field = |name: &str| match object.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => {
            sink.problems.push(at.problem(name, "missing field"));
            None
        }
        Some(other) => {
            sink.problems.push(at.problem(name, format!("expected a string, found {other}")));
            None
        }
    };
    let fields = [field("text"), field("target"), field("label")];
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Numeric ids are common in exported data and unambiguous as strings.
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            sink.problems.push(at.problem("id", format!("expected a string, found {other}")));
            return;
        }
    };
    sink.push_found(id, fields, at);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, schema, write};
    use super::super::{load, Record};

    #[test]
    fn reads_records_and_skips_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"id\":\"s1\",\"text\":\"Join now.\",\"target\":\"nato\",\"label\":\"favor\",\"note\":1}\n\n  \n\
                    {\"text\":\"Hot.\",\"target\":\"climate\",\"label\":\"none\",\"id\":7}";
        let file = write(dir.path(), "a.jsonl", body);
        let data = load(&[&file], None, &schema()).unwrap();
        let records: Vec<&Record> = data.records().collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id.as_deref(), Some("s1"));
        assert_eq!((records[1].id.as_deref(), records[1].label.as_str()), (Some("7"), "none"));
        assert_eq!(data.files[0].entries[1].text_at.line, 4);
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.jsonl", "\n{\"text\": \"x\",\n[1]\n");
        let got = problems(&[&file], None);
        assert!(got[0].starts_with(&format!("{file}:2: json: EOF while parsing")), "{got:?}");
        assert!(got[1].starts_with(&format!("{file}:3: json: expected an object")), "{got:?}");
    }

    #[test]
    fn missing_and_mistyped_fields() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.jsonl", "{\"text\":\"x\",\"target\":1}\n");
        let got = problems(&[&file], None);
        assert_eq!(
            got,
            vec![format!("{file}:1: target: expected a string, found 1"), format!("{file}:1: label: missing field"),]
        );
    }
}
