//! JSONL, the canonical format: one `{"id"?, "text", "target", "label"}` object per line.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Pos, Sink};
use crate::input::id;
use crate::input::json::{parse_line, LineError, GIVEN_TWICE};
use crate::input::lines::LineReader;

pub(crate) fn read(file: &Arc<str>, bytes: &[u8], sink: &mut Sink) {
    for line in LineReader::new(bytes, file.clone()) {
        match line {
            Ok(line) if line.text.trim().is_empty() => {}
            Ok(line) => object(&line.text, Pos { file: file.clone(), line: line.number }, sink),
            Err(e) => sink.error(e),
        }
    }
}

fn object(text: &str, at: Pos, sink: &mut Sink) {
    match parse_line(text) {
        Ok(Value::Object(object)) => entry(&object, at, sink),
        Ok(_) => sink.problems.push(at.problem("json", "expected an object {\"text\", \"target\", \"label\"}")),
        Err(LineError::Twice(key)) => sink.problems.push(at.problem(&key, GIVEN_TWICE)),
        Err(LineError::Json(e)) => sink.problems.push(at.problem("json", crate::input::lines::json_message(text, &e))),
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
            sink.problems.push(at.problem(name, crate::input::json::not_a_string(other)));
            None
        }
    };
    let fields = [field("text"), field("target"), field("label")];
    match id::from_json_at(object.get("id"), &at.file, at.line) {
        Ok(id) => sink.push_found(id, fields, at),
        Err(problem) => sink.problems.push(problem),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, schema, write};
    use super::super::{load, Record};

    #[test]
    fn a_field_given_twice_in_a_record_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"text\":\"Join.\",\"target\":\"nato\",\"label\":\"favor\",\"label\":\"none\"}\n[1]\n";
        let file = write(dir.path(), "a.jsonl", body);
        let got = problems(&[&file], None);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("a.jsonl:1: label: given twice in one record"), "{got:?}");
        assert!(got[1].contains("a.jsonl:2: json: expected an object"), "{got:?}");
    }

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

    #[test]
    fn bom_crlf_and_invalid_utf8_follow_the_line_policy() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"\xEF\xBB\xBF{\"text\":\"x\",\"target\":\"nato\",\"label\":\"none\"}\r\n{\"text\":\"caf\xe9\"}\r\n";
        let file = write(dir.path(), "a.jsonl", body);
        let got = problems(&[&file], None);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(&format!("{file}:2: encoding: invalid UTF-8 at byte 13 of the line")), "{got:?}");
        let good = write(dir.path(), "b.jsonl", &body[..body.len() - 19]);
        assert_eq!(load(&[good], None, &schema()).unwrap().records().next().unwrap().text, "x");
    }

    #[test]
    fn ids_follow_the_id_policy() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: &str| format!("{{\"id\":{id},\"text\":\"t\",\"target\":\"nato\",\"label\":\"none\"}}\n");
        let good = write(dir.path(), "a.jsonl", ["\"s1\"", "7", "-3", "null"].map(line).concat());
        let ids: Vec<Option<String>> =
            load(&[good], None, &schema()).unwrap().records().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [Some("s1".into()), Some("7".into()), Some("-3".into()), None]);
        let bad = write(dir.path(), "b.jsonl", ["true", "{}"].map(line).concat());
        assert_eq!(
            problems(&[&bad], None),
            [
                format!("{bad}:1: id: expected a string or a number, found true"),
                format!("{bad}:2: id: expected a string or a number, found {{}}")
            ]
        );
    }
}
