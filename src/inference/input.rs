//! Reading sentences to run a model over: JSONL with `text` (optional `id`), or
//! plain text with one sentence per line.

use std::io::BufRead;
use std::path::Path;

use crate::{Error, Problem, Problems, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    pub id: String,
    pub text: String,
}

/// Reads `path` (`-` for stdin). JSONL is chosen by a `.jsonl`/`.json` extension,
/// or on stdin by a first line that opens a JSON object.
pub fn read_texts(path: &Path) -> Result<Vec<TextItem>> {
    let name = path.display().to_string();
    let lines: Vec<String> = if name == "-" {
        read_lines(std::io::stdin().lock(), &name)?
    } else {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        read_lines(std::io::BufReader::new(file), &name)?
    };
    let jsonl = match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "json") => true,
        _ => {
            name == "-" && lines.iter().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim_start().starts_with('{'))
        }
    };
    parse(&lines, &name, jsonl)
}

fn read_lines(reader: impl BufRead, name: &str) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (i, bytes) in reader.split(b'\n').enumerate() {
        let bytes = bytes.map_err(|e| Error::io(name, e))?;
        match String::from_utf8(bytes) {
            Ok(s) => lines.push(s.trim_end_matches('\r').to_string()),
            Err(_) => {
                problems.push(problem(name, i + 1, "text", "invalid UTF-8"));
                lines.push(String::new());
            }
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(Error::Invalid(Problems(problems)))
    }
}

fn parse(lines: &[String], name: &str, jsonl: bool) -> Result<Vec<TextItem>> {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed =
            if jsonl { parse_json(line, i + 1) } else { Ok(TextItem { id: (i + 1).to_string(), text: line.clone() }) };
        match parsed {
            Ok(item) => items.push(item),
            Err((field, message)) => problems.push(problem(name, i + 1, field, &message)),
        }
    }
    if problems.is_empty() {
        Ok(items)
    } else {
        Err(Error::Invalid(Problems(problems)))
    }
}

fn parse_json(line: &str, number: usize) -> std::result::Result<TextItem, (&'static str, String)> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| ("json", e.to_string()))?;
    let text = match value.get("text") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(serde_json::Value::String(_)) => return Err(("text", "empty".into())),
        Some(_) => return Err(("text", "not a string".into())),
        None => return Err(("text", "missing".into())),
    };
    let id = match value.get("id") {
        None | Some(serde_json::Value::Null) => number.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Ok(TextItem { id, text })
}

fn problem(file: &str, line: usize, field: &str, message: &str) -> Problem {
    Problem { file: file.to_string(), line, field: field.to_string(), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_plain_lines() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(&jsonl, "{\"id\": \"x\", \"text\": \"one\"}\n\n{\"text\": \"two\"}\n").unwrap();
        let items = read_texts(&jsonl).unwrap();
        assert_eq!(items[0], TextItem { id: "x".into(), text: "one".into() });
        assert_eq!(items[1].id, "3");
        let txt = dir.path().join("a.txt");
        std::fs::write(&txt, "first\r\nsecond\n").unwrap();
        assert_eq!(read_texts(&txt).unwrap()[1], TextItem { id: "2".into(), text: "second".into() });
    }

    #[test]
    fn every_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, b"{\"text\": \"ok\"}\n{\"id\": 1}\nnot json\n{\"text\": \"  \"}\n\xff\n").unwrap();
        let err = read_texts(&path).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:5: text: invalid UTF-8"), "{err}");
        std::fs::write(&path, "{\"text\": \"ok\"}\n{\"id\": 1}\nnot json\n{\"text\": \"  \"}\n").unwrap();
        let err = read_texts(&path).unwrap_err().to_string();
        for expected in ["bad.jsonl:2: text: missing", "bad.jsonl:3: json:", "bad.jsonl:4: text: empty"] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
    }
}
