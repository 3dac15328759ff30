//! Reading sentences to run a model over: JSONL with `text` (optional `id`,
//! `target`), CSV with the same columns, plain text with one sentence per line,
//! or raw article text split into sentences.
//!
//! [`read_texts`] loads a whole file; [`open_records`] streams one, so that a
//! file of any size runs in bounded memory.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::segment::{Sentence, SentenceStream};
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
    item_from_json(&value, number)
}

fn item_from_json(value: &serde_json::Value, number: usize) -> std::result::Result<TextItem, (&'static str, String)> {
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

/// The optional `target` of a JSONL record: a non-empty string, or absent/null.
fn target_from_json(value: &serde_json::Value) -> std::result::Result<Option<String>, (&'static str, String)> {
    match value.get("target") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(serde_json::Value::String(_)) => Err(("target", "empty".into())),
        Some(_) => Err(("target", "not a string".into())),
    }
}

fn problem(file: &str, line: usize, field: &str, message: &str) -> Problem {
    Problem { file: file.to_string(), line, field: field.to_string(), message: message.to_string() }
}

fn invalid(file: &str, line: usize, field: &str, message: &str) -> Error {
    Error::Invalid(Problems(vec![problem(file, line, field, message)]))
}

/// How an input file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// By extension: `.jsonl`/`.ndjson`/`.json` JSONL, `.csv` CSV, `.txt` article text;
    /// otherwise (stdin too) JSONL when the first line opens an object, else lines.
    #[default]
    Auto,
    /// One JSON object per line with `text`, optional `id` and `target`.
    Jsonl,
    /// A header row naming `text`, optional `id` and `target` columns.
    Csv,
    /// One sentence per line.
    Lines,
    /// Raw article text, split into sentences.
    Text,
}

/// Where a sentence sits in the longer text it was cut from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// The document: the file name for article text, else the record's id.
    pub doc: String,
    /// 0-based sentence index in the document.
    pub sentence: usize,
    /// Character offsets into the document, end exclusive.
    pub start: usize,
    pub end: usize,
}

/// One sentence to score, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub text: String,
    /// Score only this target (a JSONL/CSV `target` field).
    pub target: Option<String>,
    pub span: Option<Span>,
    pub file: Arc<str>,
    /// 1-based line the record starts on (article text: a line at or after the sentence's end).
    pub line: usize,
}

/// A stream of records; an `Err(Error::Invalid)` concerns one record and the
/// stream goes on after it, any other error ends it.
pub type Records = Box<dyn Iterator<Item = Result<Record>> + Send>;

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub format: InputFormat,
    /// Split each record's text into sentences (article text always is).
    pub split_sentences: bool,
    /// Counts the bytes read, for a progress bar.
    pub bytes_read: Option<Arc<AtomicU64>>,
}

/// Opens `path` (`-` for stdin) as a stream of records, and says which format
/// it was read as. The format is settled here (a CSV header is read, stdin is
/// sniffed), so that a bad file fails before any work.
pub fn open_records(path: &Path, options: &ReadOptions) -> Result<(InputFormat, Records)> {
    let name: Arc<str> = path.display().to_string().into();
    let raw: Box<dyn Read + Send> = if &*name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?)
    };
    let raw: Box<dyn Read + Send> = match &options.bytes_read {
        Some(counter) => Box::new(Counting { inner: raw, counter: counter.clone() }),
        None => raw,
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);
    let format = match options.format {
        InputFormat::Auto => detect_format(path, &mut reader, options.split_sentences),
        explicit => explicit,
    };
    let records: Records = match format {
        InputFormat::Jsonl => Box::new(json_records(LineReader::new(reader, name))),
        InputFormat::Csv => Box::new(CsvRecords::open(reader, name)?),
        InputFormat::Text => Box::new(TextRecords::new(LineReader::new(reader, name))),
        InputFormat::Lines | InputFormat::Auto => Box::new(line_records(LineReader::new(reader, name))),
    };
    let format = match format {
        InputFormat::Auto => InputFormat::Lines,
        known => known,
    };
    if options.split_sentences && format != InputFormat::Text {
        return Ok((format, Box::new(records.flat_map(split_record))));
    }
    Ok((format, records))
}

fn detect_format(path: &Path, reader: &mut impl BufRead, split: bool) -> InputFormat {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jsonl" | "ndjson" | "json") => return InputFormat::Jsonl,
        Some("csv") => return InputFormat::Csv,
        Some("txt") => return InputFormat::Text,
        _ => {}
    }
    // Peek without consuming, so line numbers stay right.
    let head = reader.fill_buf().unwrap_or_default();
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => InputFormat::Jsonl,
        _ if split => InputFormat::Text,
        _ => InputFormat::Lines,
    }
}

/// Adds the bytes that pass through to a shared counter.
struct Counting {
    inner: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Numbered lines without their line ending; invalid UTF-8 is a problem of its
/// line, a read error ends the stream.
struct LineReader<R> {
    reader: R,
    name: Arc<str>,
    number: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    fn new(reader: R, name: Arc<str>) -> Self {
        Self { reader, name, number: 0, buf: Vec::new(), done: false }
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    /// (line number, the line with its ending).
    type Item = Result<(usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.number += 1;
                let line = std::mem::take(&mut self.buf);
                Some(
                    String::from_utf8(line)
                        .map(|s| (self.number, s))
                        .map_err(|_| invalid(&self.name, self.number, "text", "invalid UTF-8")),
                )
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::io(&*self.name, e)))
            }
        }
    }
}

fn strip_ending(line: &str) -> &str {
    line.trim_end_matches('\n').trim_end_matches('\r')
}

fn line_records<R: BufRead + Send + 'static>(lines: LineReader<R>) -> impl Iterator<Item = Result<Record>> + Send {
    let name = lines.name.clone();
    lines.filter_map(move |line| {
        let (number, line) = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let text = strip_ending(&line);
        (!text.trim().is_empty()).then(|| {
            Ok(Record {
                id: number.to_string(),
                text: text.to_string(),
                target: None,
                span: None,
                file: name.clone(),
                line: number,
            })
        })
    })
}

fn json_records<R: BufRead + Send + 'static>(lines: LineReader<R>) -> impl Iterator<Item = Result<Record>> + Send {
    let name = lines.name.clone();
    lines.filter_map(move |line| {
        let (number, line) = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        if line.trim().is_empty() {
            return None;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| ("json", e.to_string()))
            .and_then(|value| Ok((item_from_json(&value, number)?, target_from_json(&value)?)));
        Some(match parsed {
            Ok((item, target)) => {
                Ok(Record { id: item.id, text: item.text, target, span: None, file: name.clone(), line: number })
            }
            Err((field, message)) => Err(invalid(&name, number, field, &message)),
        })
    })
}

/// CSV with a header row; columns are found by name, others are ignored.
struct CsvRecords {
    reader: csv::Reader<BufReader<Box<dyn Read + Send>>>,
    name: Arc<str>,
    text: usize,
    id: Option<usize>,
    target: Option<usize>,
    row: csv::ByteRecord,
    done: bool,
}

impl CsvRecords {
    fn open(reader: BufReader<Box<dyn Read + Send>>, name: Arc<str>) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = reader.byte_headers().map_err(|e| csv_error(&name, e))?.clone();
        let column = |wanted: &str| headers.iter().position(|h| h.trim_ascii() == wanted.as_bytes());
        let Some(text) = column("text") else {
            let found: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
            return Err(invalid(&name, 1, "text", &format!("no `text` column (header: {})", found.join(","))));
        };
        let (id, target) = (column("id"), column("target"));
        Ok(Self { reader, name, text, id, target, row: csv::ByteRecord::new(), done: false })
    }

    fn record(&self) -> Result<Record> {
        let line = self.row.position().map_or(0, |p| p.line() as usize);
        let cell = |i: usize, field: &str| -> Result<&str> {
            std::str::from_utf8(self.row.get(i).unwrap_or_default())
                .map_err(|_| invalid(&self.name, line, field, "invalid UTF-8"))
        };
        let text = cell(self.text, "text")?;
        if text.trim().is_empty() {
            let message = if self.row.get(self.text).is_some() { "empty" } else { "missing" };
            return Err(invalid(&self.name, line, "text", message));
        }
        let id = match self.id.map(|i| cell(i, "id")).transpose()? {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => line.to_string(),
        };
        let target = self.target.map(|i| cell(i, "target")).transpose()?.map(str::trim).filter(|t| !t.is_empty());
        Ok(Record {
            id,
            text: text.to_string(),
            target: target.map(String::from),
            span: None,
            file: self.name.clone(),
            line,
        })
    }
}

impl Iterator for CsvRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.row) {
            Ok(true) => Some(self.record()),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                // A malformed row is that row's problem; a read error ends the stream.
                self.done = matches!(e.kind(), csv::ErrorKind::Io(_));
                Some(Err(csv_error(&self.name, e)))
            }
        }
    }
}

fn csv_error(name: &str, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(name, io),
        _ => invalid(name, line, "csv", &message),
    }
}

/// Article text: the whole file is one document, split into sentences as it streams.
struct TextRecords<R> {
    lines: LineReader<R>,
    stream: SentenceStream,
    ready: std::collections::VecDeque<Sentence>,
    finished: bool,
}

impl<R: BufRead> TextRecords<R> {
    fn new(lines: LineReader<R>) -> Self {
        Self { lines, stream: SentenceStream::new(), ready: Default::default(), finished: false }
    }

    fn record(&self, s: Sentence) -> Record {
        let doc = self.lines.name.to_string();
        Record {
            id: format!("{doc}:{}", s.index),
            text: s.text,
            target: None,
            span: Some(Span { doc, sentence: s.index, start: s.start, end: s.end }),
            file: self.lines.name.clone(),
            line: self.lines.number,
        }
    }
}

impl<R: BufRead> Iterator for TextRecords<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut out = Vec::new();
        while self.ready.is_empty() && !self.finished {
            match self.lines.next() {
                Some(Ok((_, line))) => self.stream.push_line(&line, &mut out),
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.stream.finish(&mut out);
                    self.finished = true;
                }
            }
            self.ready.extend(out.drain(..));
        }
        let sentence = self.ready.pop_front()?;
        Some(Ok(self.record(sentence)))
    }
}

/// A record's text as its sentences; the record's id names the document.
fn split_record(record: Result<Record>) -> Vec<Result<Record>> {
    let record = match record {
        Ok(r) => r,
        Err(e) => return vec![Err(e)],
    };
    super::segment::split_sentences(&record.text)
        .into_iter()
        .map(|s| {
            Ok(Record {
                id: format!("{}:{}", record.id, s.index),
                text: s.text,
                target: record.target.clone(),
                span: Some(Span { doc: record.id.clone(), sentence: s.index, start: s.start, end: s.end }),
                file: record.file.clone(),
                line: record.line,
            })
        })
        .collect()
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

    fn stream(name: &str, content: &[u8], options: ReadOptions) -> (tempfile::TempDir, Vec<Result<Record>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let records = open_records(&path, &options).unwrap().1.collect();
        (dir, records)
    }

    #[test]
    fn jsonl_and_csv_records_carry_targets_and_line_numbers() {
        let (_d, jsonl) = stream(
            "a.jsonl",
            b"{\"id\": 7, \"text\": \"one\", \"target\": \"nato\"}\n\n{\"text\": \"two\", \"target\": 3}\n{\"text\": \"x\"}\n",
            ReadOptions::default(),
        );
        let first = jsonl[0].as_ref().unwrap();
        assert_eq!((first.id.as_str(), first.target.as_deref(), first.line), ("7", Some("nato"), 1));
        assert!(jsonl[1].as_ref().unwrap_err().to_string().ends_with("a.jsonl:3: target: not a string"));
        assert_eq!(jsonl[2].as_ref().unwrap().id, "4");
        let (_d, csv) = stream(
            "b.csv",
            b"id,target,text\nx,nato,\"one, with a comma\"\ny,,\"two\nlines\"\nz,nato,\n",
            ReadOptions::default(),
        );
        let ok: Vec<&Record> = csv.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok[0].text, "one, with a comma");
        assert_eq!((ok[1].id.as_str(), ok[1].target.as_deref(), ok[1].text.as_str()), ("y", None, "two\nlines"));
        assert!(csv[2].as_ref().unwrap_err().to_string().ends_with("b.csv:5: text: empty"), "{:?}", csv[2]);
    }

    #[test]
    fn csv_without_a_text_column_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "id,sentence\n1,hello\n").unwrap();
        let err = open_records(&path, &ReadOptions::default()).err().unwrap().to_string();
        assert!(err.contains("c.csv:1: text: no `text` column (header: id,sentence)"), "{err}");
    }

    #[test]
    fn article_text_is_split_with_offsets_and_lines_are_not() {
        let text = "Talks failed. The U.S. Army left.\nAgain.\n";
        let (_d, article) = stream("news.txt", text.as_bytes(), ReadOptions::default());
        let article: Vec<Record> = article.into_iter().map(Result::unwrap).collect();
        assert_eq!(article.len(), 3);
        let span = article[1].span.as_ref().unwrap();
        assert!(span.doc.ends_with("news.txt") && article[1].id.ends_with("news.txt:1"));
        assert_eq!((span.sentence, span.start, span.end), (1, 14, 33));
        assert_eq!(&text[14..33], article[1].text);
        let lines = ReadOptions { format: InputFormat::Lines, ..Default::default() };
        let (_d, plain) = stream("news.txt", text.as_bytes(), lines);
        assert_eq!(plain.len(), 2);
        assert!(plain[0].as_ref().unwrap().span.is_none());
        let split = ReadOptions { format: InputFormat::Lines, split_sentences: true, ..Default::default() };
        let (_d, split) = stream("news.txt", text.as_bytes(), split);
        let ids: Vec<String> = split.into_iter().map(|r| r.unwrap().id).collect();
        assert_eq!(ids, ["1:0", "1:1", "2:0"]);
    }

    #[test]
    fn unknown_extensions_are_sniffed_and_bytes_are_counted() {
        let counter = Arc::new(AtomicU64::new(0));
        let options = ReadOptions { bytes_read: Some(counter.clone()), ..Default::default() };
        let (_d, records) = stream("input", b"  {\"text\": \"hello\"}\n", options.clone());
        assert_eq!(records[0].as_ref().unwrap().text, "hello");
        assert_eq!(counter.load(Ordering::Relaxed), 20);
        let (_d, records) = stream("input", b"hello\r\n{not json\n", options);
        let texts: Vec<String> = records.into_iter().map(|r| r.unwrap().text).collect();
        assert_eq!(texts, ["hello", "{not json"]);
    }
}
