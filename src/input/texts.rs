//! Reading sentences to run a model over: JSONL with `text` (optional `id`,
//! `target`), CSV with the same columns, plain text with one sentence per line,
//! or raw article text split into sentences.
//!
//! [`open_records`] streams a file, so that a file of any size runs in bounded
//! memory; [`read_texts`] collects one.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::csv::{CsvReader, Dialect, Row};
use super::id;
use super::lines::{strip_bom, Line, LineReader};
use super::segment::{split_sentences, Sentence, SentenceStream};
use crate::error::{Error, Problem, Problems, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    pub id: String,
    pub text: String,
}

/// Reads `path` (`-` for stdin) whole, with every bad line reported at once,
/// as `embed` reads it ([`open_texts`]).
pub fn read_texts(path: &Path) -> Result<Vec<TextItem>> {
    let (_, records) = open_texts(path)?;
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for record in records {
        if let Some(record) = Problems::gather(record, &mut problems)? {
            items.push(TextItem { id: record.id, text: record.text });
        }
    }
    Problems::or_ok(problems, items)
}

/// The texts of `path` as a stream of records, with the layout it reads:
/// JSONL by a `.jsonl`/`.json` extension, or on stdin by a first line that
/// opens a JSON object; CSV or TSV by extension; anything else one text per
/// line. A JSONL or CSV record's blank text is a text (sentence-transformers
/// embeds it); a blank line is none.
pub fn open_texts(path: &Path) -> Result<(InputFormat, Records)> {
    open_records(path, &ReadOptions { format: texts_format(path), blank_texts: true, ..Default::default() })
}

/// How [`read_texts`] reads `path`: by its ending, stdin sniffed, anything
/// else one text per line (whose id is its line number).
fn texts_format(path: &Path) -> InputFormat {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl" | "json" | "ndjson") => InputFormat::Jsonl,
        // As `predict` reads them: a header row naming the `text` column.
        Some("csv") => InputFormat::Csv,
        Some("tsv") => InputFormat::Tsv,
        _ if path == Path::new("-") => InputFormat::Auto,
        _ => InputFormat::Lines,
    }
}

/// How an input file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// By extension: `.jsonl`/`.ndjson`/`.json` JSONL, `.csv` CSV, `.tsv` TSV, `.txt` article text;
    /// otherwise (stdin too) JSONL when the first line opens an object, else lines.
    #[default]
    Auto,
    /// One JSON object per line with `text`, optional `id` and `target`.
    Jsonl,
    /// A header row naming `text`, optional `id` and `target` columns.
    Csv,
    /// The same, tab-separated (quotes are literal, as in the labelled TSV reader).
    Tsv,
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
    /// Character offsets into the document (after a byte order mark), end exclusive.
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
    /// A record without an id is numbered `FILE:LINE` (the path as given, as
    /// an article's sentences are `FILE:INDEX`), not `LINE`: several inputs
    /// are read into one output.
    pub ids_name_file: bool,
    /// A JSONL or CSV record whose text is empty or whitespace is read, not
    /// refused (`embed`, as sentence-transformers encodes it).
    pub blank_texts: bool,
}

/// How one input's JSONL, CSV and line records are named and taken.
struct Reading {
    file: Arc<str>,
    /// [`ReadOptions::ids_name_file`].
    ids_name_file: bool,
    blank_texts: bool,
}

impl Reading {
    /// The id of a record that gives none: its line number, after the
    /// input's name when there are several inputs.
    fn default_id(&self, line: usize) -> String {
        match self.ids_name_file {
            true => format!("{}:{line}", self.file),
            false => line.to_string(),
        }
    }
}

type Input = BufReader<Box<dyn Read + Send>>;

/// Opens `path` (`-` for stdin) as a stream of records, and says which format
/// it was read as. The format is settled here (a CSV header is read, stdin is
/// sniffed), so that a bad file fails before any work.
pub fn open_records(path: &Path, options: &ReadOptions) -> Result<(InputFormat, Records)> {
    let name: Arc<str> = path.display().to_string().into();
    let mut reader = open(path, options)?;
    let format = match options.format {
        InputFormat::Auto => detect_format(path, &mut reader, options.split_sentences),
        explicit => explicit,
    };
    let reading =
        Reading { file: name.clone(), ids_name_file: options.ids_name_file, blank_texts: options.blank_texts };
    let records: Records = match format {
        InputFormat::Jsonl => Box::new(LineReader::new(reader, name).filter_map(move |l| json_record(l, &reading))),
        InputFormat::Csv => Box::new(CsvRecords::open(reader, reading, Dialect::CSV)?),
        InputFormat::Tsv => Box::new(CsvRecords::open(reader, reading, Dialect::TSV)?),
        InputFormat::Text => Box::new(TextRecords::new(LineReader::new(reader, name))),
        InputFormat::Lines | InputFormat::Auto => {
            Box::new(LineReader::new(reader, name).filter_map(move |l| line_record(l, &reading)))
        }
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

/// The file or stdin, buffered, counting bytes when asked to.
fn open(path: &Path, options: &ReadOptions) -> Result<Input> {
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?)
    };
    let raw: Box<dyn Read + Send> = match &options.bytes_read {
        Some(counter) => Box::new(Counting { inner: raw, counter: counter.clone() }),
        None => raw,
    };
    Ok(BufReader::with_capacity(1 << 16, raw))
}

fn detect_format(path: &Path, reader: &mut impl BufRead, split: bool) -> InputFormat {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jsonl" | "ndjson" | "json") => return InputFormat::Jsonl,
        Some("csv") => return InputFormat::Csv,
        Some("tsv") => return InputFormat::Tsv,
        Some("txt") => return InputFormat::Text,
        _ => {}
    }
    // Peek without consuming, so line numbers stay right.
    let head = strip_bom(reader.fill_buf().unwrap_or_default());
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

/// A line of text, numbered by its line; blank lines are no record.
fn line_record(line: Result<Line>, reading: &Reading) -> Option<Result<Record>> {
    let line = match line {
        Ok(line) if super::is_blank(&line.text) => return None,
        Ok(line) => line,
        Err(e) => return Some(Err(e)),
    };
    let record = Record {
        id: reading.default_id(line.number),
        text: line.text,
        target: None,
        span: None,
        file: reading.file.clone(),
        line: line.number,
    };
    Some(Ok(record))
}

/// A JSONL line as a record; blank lines are no record.
fn json_record(line: Result<Line>, reading: &Reading) -> Option<Result<Record>> {
    match line {
        Ok(line) if line.text.trim().is_empty() => None,
        Ok(line) => Some(json_object(&line, reading)),
        Err(e) => Some(Err(e)),
    }
}

fn json_object(line: &Line, reading: &Reading) -> Result<Record> {
    let file = &reading.file;
    let problem = |(field, message): (&str, String)| Error::from(Problem::new(file, line.number, field, message));
    use super::json::{parse_line, LineError, GIVEN_TWICE};
    let mut value = parse_line(&line.text).map_err(|e| match e {
        LineError::Twice(key) => problem((&key, GIVEN_TWICE.into())),
        LineError::Json(e) => problem(("json", super::lines::json_message(&line.text, &e))),
    })?;
    let text = json_text(&mut value, reading.blank_texts).map_err(problem)?;
    let id = id::from_json(value.get("id")).map_err(|m| problem(("id", m)))?;
    let target = json_target(&value).map_err(problem)?;
    Ok(Record {
        id: id.unwrap_or_else(|| reading.default_id(line.number)),
        text,
        target,
        span: None,
        file: file.clone(),
        line: line.number,
    })
}

/// The `text` of a JSONL record, moved out of the parsed line (no copy per line).
fn json_text(value: &mut Value, blank: bool) -> std::result::Result<String, (&'static str, String)> {
    match value.get_mut("text") {
        Some(Value::String(s)) if blank || !super::is_blank(s) => Ok(std::mem::take(s)),
        Some(Value::String(_)) => Err(("text", "empty".into())),
        Some(other) => Err(("text", super::json::not_a_string(other))),
        None => Err(("text", "missing".into())),
    }
}

/// The optional `target` of a JSONL record: a non-empty string, or absent/null.
fn json_target(value: &Value) -> std::result::Result<Option<String>, (&'static str, String)> {
    match value.get("target") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(("target", "empty".into())),
        Some(other) => Err(("target", super::json::not_a_string(other))),
    }
}

/// CSV with a header row; columns are found by name, others are ignored.
struct CsvRecords {
    rows: CsvReader<Input>,
    text: usize,
    /// The text is SemEval's `Tweet` column, whose `#SemST` marker goes, as the data readers drop it.
    tweet: bool,
    id: Option<usize>,
    target: Option<usize>,
    reading: Reading,
}

impl CsvRecords {
    fn open(reader: Input, reading: Reading, dialect: Dialect) -> Result<Self> {
        let name = reading.file.clone();
        let rows = CsvReader::open(reader, name.clone(), dialect)?;
        // SemEval's name for the text column, which the sets derived from it keep.
        let (text, tweet) = match rows.column("text") {
            Some(text) => (Some(text), false),
            None => (rows.column("tweet"), true),
        };
        let Some(text) = text else {
            let header = rows.header();
            let message = format!("no `text` (or `tweet`) column (header: {})", header.fields.join(","));
            return Err(Problem::new(&name, header.line, "text", message).into());
        };
        let (id, target) = (rows.column("id"), rows.column("target"));
        Ok(Self { rows, text, tweet, id, target, reading })
    }

    fn record(&self, mut row: Row) -> Result<Record> {
        let mut take = |i: Option<usize>| i.and_then(|i| row.fields.get_mut(i)).map(std::mem::take);
        let (text, id, target) = (take(Some(self.text)), take(self.id), take(self.target));
        let file = self.reading.file.clone();
        let text = text.map(|t| if self.tweet { super::strip_semst(&t).to_string() } else { t });
        let text = match text {
            None => Err("missing"),
            Some(text) if !self.reading.blank_texts && super::is_blank(&text) => Err("empty"),
            Some(text) => Ok(text),
        };
        Ok(Record {
            id: id.filter(|id| !id.is_empty()).unwrap_or_else(|| self.reading.default_id(row.line)),
            text: text.map_err(|message| Error::from(Problem::new(&file, row.line, "text", message)))?,
            target: target.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            span: None,
            file,
            line: row.line,
        })
    }
}

impl Iterator for CsvRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        Some(row.and_then(|row| self.record(row)))
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
        let doc = self.lines.file().to_string();
        Record {
            id: format!("{doc}:{}", s.index),
            text: s.text,
            target: None,
            span: Some(Span { doc, sentence: s.index, start: s.start, end: s.end }),
            file: self.lines.file().clone(),
            line: self.lines.number(),
        }
    }
}

impl<R: BufRead> Iterator for TextRecords<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut out = Vec::new();
        while self.ready.is_empty() && !self.finished {
            match self.lines.next() {
                // Offsets count the line endings, so the stream gets them back.
                Some(Ok(line)) => self.stream.push_line(&(line.text + line.ending), &mut out),
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
    split_sentences(&record.text)
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
        let csv = dir.path().join("a.CSV");
        std::fs::write(&csv, "id,text\nk1,\"a, \"\"quoted\"\" one\"\n").unwrap();
        assert_eq!(
            read_texts(&csv).unwrap(),
            [TextItem { id: "k1".into(), text: "a, \"quoted\" one".into() }],
            "CSV, not lines"
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, b"{\"text\": \"ok\"}\n{\"id\": 1}\nnot json\n{\"text\": \"  \"}\n\xff\n").unwrap();
        let err = read_texts(&path).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:5: encoding: invalid UTF-8"), "{err}");
        std::fs::write(&path, "{\"text\": \"ok\"}\n{\"id\": 1}\nnot json\n{\"text\": 4}\n").unwrap();
        let err = read_texts(&path).unwrap_err().to_string();
        for expected in ["bad.jsonl:2: text: missing", "bad.jsonl:3: json:", "bad.jsonl:4: text: expected a string"] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
    }

    /// A record's blank text is read for `embed` (sentence-transformers
    /// encodes it) and refused where a stance is asked of it.
    #[test]
    fn a_blank_text_is_a_text_to_embed_and_a_problem_to_predict() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [("b.jsonl", "{\"text\": \" \"}\n{\"text\": \"\"}\n"), ("b.csv", "id,text\na, \nb,\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            let texts: Vec<String> = read_texts(&path).unwrap().into_iter().map(|t| t.text).collect();
            assert_eq!(texts, [" ", ""], "{name}");
            let (_, records) = open_records(&path, &ReadOptions::default()).unwrap();
            for record in records {
                assert!(record.unwrap_err().to_string().ends_with("text: empty"), "{name}");
            }
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
            b"{\"id\": 7, \"text\": \"one\", \"target\": \"nato\"}\n\n{\"text\": \"two\", \"target\": 3}\n{\"text\": \"x\"}\n\
              {\"text\": \"a\", \"text\": \"b\"}\n",
            ReadOptions::default(),
        );
        let first = jsonl[0].as_ref().unwrap();
        assert_eq!((first.id.as_str(), first.target.as_deref(), first.line), ("7", Some("nato"), 1));
        assert!(jsonl[1].as_ref().unwrap_err().to_string().ends_with("a.jsonl:3: target: expected a string, found 3"));
        // A key given twice is a typo to name, not a value to pick.
        assert!(jsonl[3].as_ref().unwrap_err().to_string().ends_with("a.jsonl:5: text: given twice in one record"));
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
    fn tsv_is_read_by_its_header_with_literal_quotes() {
        let (_d, tsv) = stream("t.tsv", b"id\ttext\ttarget\n1\tKyiv \"must\" join\tnato\n", ReadOptions::default());
        let record = tsv[0].as_ref().unwrap();
        assert_eq!(
            (record.id.as_str(), record.text.as_str(), record.target.as_deref()),
            ("1", "Kyiv \"must\" join", Some("nato"))
        );
        assert_eq!(tsv.len(), 1, "the header is no sentence");
    }

    #[test]
    fn csv_without_a_text_column_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "id,sentence\n1,hello\n").unwrap();
        let err = open_records(&path, &ReadOptions::default()).err().unwrap().to_string();
        assert!(err.contains("c.csv:1: text: no `text` (or `tweet`) column (header: id,sentence)"), "{err}");
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

    /// The texts read and the problems met, each problem as `line: field`.
    fn texts_and_problems(records: Vec<Result<Record>>) -> (Vec<String>, Vec<String>) {
        let (ok, bad): (Vec<_>, Vec<_>) = records.into_iter().partition(Result::is_ok);
        let problem = |e: Error| -> Vec<String> {
            match e {
                Error::Invalid(Problems(ps)) => ps.iter().map(|p| format!("{}: {}", p.line, p.field)).collect(),
                other => panic!("{other}"),
            }
        };
        (
            ok.into_iter().map(|r| r.unwrap().text).collect(),
            bad.into_iter().flat_map(|r| problem(r.unwrap_err())).collect::<Vec<String>>(),
        )
    }

    #[test]
    fn every_format_strips_a_bom_and_crlf_and_names_invalid_utf8_by_line() {
        let lines = b"\xEF\xBB\xBFOne.\r\ncaf\xe9\r\nThree.\r\n";
        let cases: [(InputFormat, &[u8], usize); 4] = [
            (
                InputFormat::Jsonl,
                b"\xEF\xBB\xBF{\"text\": \"One.\"}\r\n{\"text\": \"caf\xe9\"}\r\n{\"text\": \"Three.\"}\r\n",
                2,
            ),
            (InputFormat::Csv, b"\xEF\xBB\xBFtext\r\nOne.\r\ncaf\xe9\r\nThree.\r\n", 3),
            (InputFormat::Lines, lines, 2),
            (InputFormat::Text, lines, 2),
        ];
        for (format, content, bad) in cases {
            let (_d, records) = stream("input", content, ReadOptions { format, ..Default::default() });
            let expected = (vec!["One.".to_string(), "Three.".to_string()], vec![format!("{bad}: encoding")]);
            assert_eq!(texts_and_problems(records), expected, "{format:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let good: [(&str, &[u8]); 2] =
            [("a.jsonl", b"\xEF\xBB\xBF{\"text\": \"One.\"}\r\n"), ("a.txt", b"\xEF\xBB\xBFOne.\r\n")];
        for (name, good) in good {
            let path = dir.path().join(name);
            std::fs::write(&path, good).unwrap();
            assert_eq!(read_texts(&path).unwrap(), [TextItem { id: "1".into(), text: "One.".into() }]);
            std::fs::write(&path, [good, b"caf\xe9\r\n"].concat()).unwrap();
            let err = read_texts(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("{name}:2: encoding: invalid UTF-8")), "{err}");
        }
    }

    #[test]
    fn article_offsets_start_after_a_bom_and_count_crlf() {
        let (_d, records) = stream("news.txt", "\u{feff}One.\r\nTwo.\r\n".as_bytes(), ReadOptions::default());
        let spans: Vec<(usize, usize)> =
            records.iter().map(|r| r.as_ref().unwrap().span.as_ref().map(|s| (s.start, s.end)).unwrap()).collect();
        assert_eq!(spans, [(0, 4), (6, 10)]);
    }

    #[test]
    fn jsonl_ids_follow_the_id_policy() {
        let body = b"{\"id\": 25, \"text\": \"a\"}\n{\"id\": true, \"text\": \"b\"}\n{\"id\": null, \"text\": \"c\"}\n{\"id\": [1], \"text\": \"d\"}\n";
        let (_d, records) = stream("a.jsonl", body, ReadOptions::default());
        assert_eq!(records[0].as_ref().unwrap().id, "25");
        assert!(records[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .ends_with("a.jsonl:2: id: expected a string or a number, found true"));
        assert_eq!(records[2].as_ref().unwrap().id, "3");
        assert!(records[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .ends_with("a.jsonl:4: id: expected a string or a number, found [1]"));
    }

    #[test]
    fn csv_text_may_be_semevals_tweet_column() {
        let csv = b"Tweet,Target,Stance\nhello #SemST ,Donald Trump,FAVOR\n";
        let (_d, records) = stream("a.csv", csv, ReadOptions::default());
        let record = records[0].as_ref().unwrap();
        assert_eq!((record.text.as_str(), record.target.as_deref()), ("hello", Some("Donald Trump")));
        let (_d, records) = stream("b.csv", b"text\nhello #SemST\n", ReadOptions::default());
        assert_eq!(records[0].as_ref().unwrap().text, "hello #SemST", "a text column is the user's own");
    }

    #[test]
    fn csv_columns_are_found_whatever_their_case() {
        let (_d, records) = stream("a.csv", b" Text ,ID\nhello,h1\n", ReadOptions::default());
        let record = records[0].as_ref().unwrap();
        assert_eq!((record.id.as_str(), record.text.as_str(), record.line), ("h1", "hello", 2));
    }
}
