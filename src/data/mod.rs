//! Labelled records: reading, validating and splitting them.
//!
//! Every reader turns its format into [`Entry`] values (a [`Record`] plus the lines it
//! came from); [`validate`] then checks them against the [`Schema`] all at once, so a
//! user sees every problem of every file in one run.

mod delimited;
mod jsonl;
mod record;
mod schema;
mod semeval;
mod split;
mod stats;
mod tweeteval;
pub(crate) mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use record::{count_sentences, Record};
pub use schema::{
    label_in_any_case, names_description, unique_targets, Neutral, Schema, DEFAULT_NEUTRAL, DEFAULT_TARGETS,
};
pub use split::{kfold_grouped, pick, split_grouped, Fold, Parts};
pub use stats::Counts;
pub use validate::Duplicate;

use crate::error::{Error, Problem, Problems, Result};
use crate::input::csv::Dialect;

/// A place in an input file: the file as named to the user and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
}

impl Pos {
    pub fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        Problem { file: self.file.to_string(), line: self.line, field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A record and where it came from. Text and label sit on different lines of
/// different files in TweetEval, so each has its own position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub record: Record,
    pub text_at: Pos,
    pub label_at: Pos,
}

/// An input format. Without one, the format follows from the path: a folder is
/// TweetEval, `.jsonl` JSONL, `.csv` CSV, and `.tsv`/`.txt` SemEval when the header is
/// SemEval's, else (`.tsv` only) TSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line with text, target, label and optional id.
    Jsonl,
    /// A header naming text, target, label (id optional; other columns ignored), or SemEval's
    /// Tweet, Target (a description or an id), Stance (any case), ID optional.
    Csv,
    /// Like csv, tab-separated and without quoting.
    Tsv,
    /// SemEval-2016 Task 6: ID, Target (a description), Tweet, Stance.
    Semeval,
    /// A TweetEval stance folder (root or one target), optionally with a `:train,val,test` suffix.
    Tweeteval,
}

/// A TweetEval split, named as in its file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SplitName {
    Train,
    Val,
    Test,
}

impl SplitName {
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Val, SplitName::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }

    fn parse(name: &str) -> Option<SplitName> {
        SplitName::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An input argument: a path, for TweetEval optionally narrowed by a split
/// suffix (`PATH:train`, `PATH:train,val`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// The splits to read; empty means all.
    pub splits: Vec<SplitName>,
}

impl Input {
    /// An existing path is taken whole, so a file name with a colon still works.
    pub fn parse(arg: &str) -> Input {
        let whole = Input { path: PathBuf::from(arg), splits: Vec::new() };
        if Path::new(arg).exists() {
            return whole;
        }
        let Some((path, suffix)) = arg.rsplit_once(':') else { return whole };
        let splits: Option<Vec<SplitName>> = suffix.split(',').map(|s| SplitName::parse(s.trim())).collect();
        match splits {
            Some(splits) if !path.is_empty() => Input { path: PathBuf::from(path), splits },
            _ => whole,
        }
    }
}

/// The entries read from one input argument.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The argument as given.
    pub name: String,
    pub entries: Vec<Entry>,
}

/// Every input of one command, validated together.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub files: Vec<Loaded>,
    /// Exact repeats (same text, target and label): not errors, but worth a warning.
    pub duplicates: Vec<Duplicate>,
}

impl Dataset {
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.files.iter().flat_map(|f| f.entries.iter().map(|e| &e.record))
    }

    pub fn into_records(self) -> Vec<Record> {
        self.files.into_iter().flat_map(|f| f.entries.into_iter().map(|e| e.record)).collect()
    }

    /// Human-readable warnings, one per line; empty when there are none.
    pub fn warnings(&self) -> Vec<String> {
        const SHOWN: usize = 10;
        if self.duplicates.is_empty() {
            return Vec::new();
        }
        let mut out = vec![format!(
            "{} exact duplicate record(s) (same text, target and label), kept as they are",
            self.duplicates.len()
        )];
        out.extend(self.duplicates.iter().take(SHOWN).map(|d| format!("  {}: duplicate of {}", d.at, d.first)));
        if self.duplicates.len() > SHOWN {
            out.push(format!("  ... and {} more", self.duplicates.len() - SHOWN));
        }
        out
    }
}

/// Reads and validates every input; any problem in any of them rejects the lot,
/// with all problems listed.
pub fn load<S: AsRef<str>>(inputs: &[S], format: Option<Format>, schema: &Schema) -> Result<Dataset> {
    let (files, mut problems) = read_all(inputs, format, schema);
    let found = validate::validate(files.iter().flat_map(|f| &f.entries), schema);
    problems.extend(found.problems);
    let names: Vec<&str> = inputs.iter().map(AsRef::as_ref).collect();
    problems.extend(validate::conflict_problems(found.conflicts, &names, schema));
    if problems.is_empty() {
        Ok(Dataset { files, duplicates: found.duplicates })
    } else {
        Err(invalid(problems))
    }
}

/// Reads every input, unvalidated, with the problems of reading them.
pub(crate) fn read_all<S: AsRef<str>>(
    inputs: &[S],
    format: Option<Format>,
    schema: &Schema,
) -> (Vec<Loaded>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for arg in inputs.iter().map(AsRef::as_ref) {
        let input = Input::parse(arg);
        let mut sink = Sink::default();
        read_input(&input, format, schema, &mut sink);
        // An input without records is a wrong path or a failed export far more often
        // than intent, and would otherwise train or score on nothing without a word.
        if sink.entries.is_empty() && sink.problems.is_empty() {
            sink.problems.push(whole_file(&input.path, "file", "no records".into()));
        }
        problems.append(&mut sink.problems);
        files.push(Loaded { name: arg.to_string(), entries: sink.entries });
    }
    (files, problems)
}

pub(crate) fn invalid(problems: Vec<Problem>) -> Error {
    Error::Invalid(Problems(in_file_order(problems)))
}

/// Loads inputs and returns just their records, for commands that train or evaluate.
pub fn load_records<S: AsRef<str>>(inputs: &[S], format: Option<Format>, schema: &Schema) -> Result<Vec<Record>> {
    load(inputs, format, schema).map(Dataset::into_records)
}

/// Where readers put what they find.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
}

impl Sink {
    /// A record whose fields all sit on one line of one file.
    fn push_one_line(&mut self, record: Record, at: Pos) {
        self.entries.push(Entry { record, text_at: at.clone(), label_at: at });
    }

    /// The same, from fields looked up one by one (text, target, label): pushed
    /// only when all three were found, since a missing one is already reported.
    fn push_found(&mut self, id: Option<String>, fields: [Option<String>; 3], at: Pos) {
        if let [Some(text), Some(target), Some(label)] = fields {
            self.push_one_line(Record { id, text, target, label }, at);
        }
    }

    /// An error of the input layer: the problems it names, or one about the whole file.
    fn error(&mut self, e: Error) {
        match e {
            Error::Invalid(Problems(problems)) => self.problems.extend(problems),
            Error::Io { path, source } => {
                self.problems.push(whole_file(&path, "file", format!("cannot read: {source}")))
            }
            other => self.problems.push(whole_file(Path::new(""), "file", other.to_string())),
        }
    }
}

fn read_input(input: &Input, format: Option<Format>, schema: &Schema, sink: &mut Sink) {
    let format = match format {
        Some(format) => Some(format),
        None if input.path.is_dir() => Some(Format::Tweeteval),
        // A missing file is that, whatever its name says.
        None if !input.path.exists() => {
            return sink.problems.push(whole_file(&input.path, "file", "no such file or folder".into()))
        }
        None => match by_extension(&input.path) {
            Ok(format) => format,
            Err(message) => return sink.problems.push(whole_file(&input.path, "file", message)),
        },
    };
    if format == Some(Format::Tweeteval) {
        return tweeteval::read(&input.path, &input.splits, schema, sink);
    }
    // Single files are read whole, as bytes, so that encoding problems are
    // reported per line (and a header is looked at without opening it twice).
    if !input.splits.is_empty() {
        let message = "a split suffix (:train, :val, :test) only applies to TweetEval folders";
        return sink.problems.push(whole_file(&input.path, "file", message.into()));
    }
    let bytes = match std::fs::read(&input.path) {
        Ok(bytes) => bytes,
        Err(e) => return sink.problems.push(whole_file(&input.path, "file", format!("cannot read: {e}"))),
    };
    let format = match format {
        Some(format) => format,
        None if semeval::has_header(&bytes) => Format::Semeval,
        None if input.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv")) => Format::Tsv,
        None => return sink.problems.push(whole_file(&input.path, "file", unknown_format(&input.path))),
    };
    let file: Arc<str> = input.path.display().to_string().into();
    match format {
        Format::Jsonl => jsonl::read(&file, &bytes, sink),
        Format::Csv => delimited::read(&file, &bytes, Dialect::CSV, schema, sink),
        Format::Tsv => delimited::read(&file, &bytes, Dialect::TSV, schema, sink),
        Format::Semeval => semeval::read(&file, &bytes, schema, sink),
        Format::Tweeteval => unreachable!("read above"),
    }
}

/// A problem with a whole file or folder (line 0).
pub(crate) fn whole_file(path: &Path, field: &str, message: String) -> Problem {
    Problem { file: path.display().to_string(), line: 0, field: field.into(), message }
}

/// The format a file name implies; `None` for `.tsv` and `.txt`, which their
/// header tells apart (SemEval's; else a `.tsv` is plain TSV).
fn by_extension(path: &Path) -> std::result::Result<Option<Format>, String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "ndjson" => Ok(Some(Format::Jsonl)),
        "csv" => Ok(Some(Format::Csv)),
        "tsv" | "txt" => Ok(None),
        _ => Err(unknown_format(path)),
    }
}

fn unknown_format(path: &Path) -> String {
    format!(
        "cannot tell the format from the name '{}': name it .jsonl, .csv or .tsv (or pass --format, where the command has it)",
        path.display()
    )
}

/// Groups problems by file (in the order files first show up) and sorts each file's by line.
fn in_file_order(mut problems: Vec<Problem>) -> Vec<Problem> {
    let mut order: Vec<String> = Vec::new();
    for p in &problems {
        if !order.contains(&p.file) {
            order.push(p.file.clone());
        }
    }
    problems.sort_by_key(|p| (order.iter().position(|f| *f == p.file), p.line));
    problems
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn schema() -> Schema {
        let targets = [("nato", "Ukraine joining NATO"), ("climate", "Climate Change is a Real Concern")];
        Schema {
            labels: ["favor", "against", "none"].map(String::from).to_vec(),
            targets: targets.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            neutral: None,
            source: None,
            from_runs: false,
        }
    }

    pub(crate) fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// The problems of a rejected load, as displayed.
    pub(crate) fn problems<S: AsRef<str>>(inputs: &[S], format: Option<Format>) -> Vec<String> {
        match load(inputs, format, &schema()) {
            Err(Error::Invalid(Problems(ps))) => ps.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn input_suffix_parsing() {
        assert_eq!(Input::parse("root:train").splits, vec![SplitName::Train]);
        let both = Input::parse("root/abortion:train,val");
        assert_eq!((both.path, both.splits), (PathBuf::from("root/abortion"), vec![SplitName::Train, SplitName::Val]));
        assert_eq!(Input::parse("root:other").path, PathBuf::from("root:other"));
        assert!(Input::parse("C:train").splits.len() == 1);
        assert!(Input::parse(":train").splits.is_empty());
    }

    #[test]
    fn existing_path_with_colon_is_taken_whole() {
        let dir = tempfile::tempdir().unwrap();
        let name = write(dir.path(), "odd:test", "x");
        assert_eq!(Input::parse(&name), Input { path: PathBuf::from(&name), splits: vec![] });
    }

    #[test]
    fn detects_format_from_name_and_header() {
        assert_eq!(by_extension(Path::new("a.jsonl")), Ok(Some(Format::Jsonl)));
        assert_eq!(by_extension(Path::new("a.CSV")), Ok(Some(Format::Csv)));
        assert_eq!(by_extension(Path::new("a.tsv")), Ok(None));
        assert!(by_extension(Path::new("a.xlsx")).is_err());
        assert!(semeval::has_header(b"ID\tTarget\tTweet\tStance\r\n1\tx\ty\tNONE\n"));
        assert!(!semeval::has_header(b"text\ttarget\tlabel\n"));
        // A .tsv without SemEval's header is plain TSV; a .txt without it is an error.
        let dir = tempfile::tempdir().unwrap();
        let tsv = write(dir.path(), "a.tsv", "text\ttarget\tlabel\nnato now\tnato\tfavor\n");
        let other = write(dir.path(), "b.txt", "hello\n");
        assert_eq!(load(&[&tsv], None, &schema()).unwrap().records().count(), 1);
        let got = problems(&[&other], None);
        assert!(got.len() == 1 && got[0].contains("cannot tell the format"), "{got:?}");
    }

    #[test]
    fn problems_from_all_files_are_listed_together_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.jsonl", "{\"text\":\"x\",\"target\":\"nato\",\"label\":\"pro\"}\nnot json\n");
        let b = write(dir.path(), "b.jsonl", "{\"text\":\" \",\"target\":\"nato\",\"label\":\"none\"}\n");
        let got = problems(&[&a, &b], None);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with(&format!("{a}:1: label:")), "{got:?}");
        assert!(got[1].starts_with(&format!("{a}:2: json:")), "{got:?}");
        assert!(got[2].starts_with(&format!("{b}:1: text:")), "{got:?}");
    }

    #[test]
    fn unreadable_and_unknown_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let odd = write(dir.path(), "a.xml", "<x/>");
        let missing = dir.path().join("missing.jsonl").display().to_string();
        let nameless = dir.path().join("missing").display().to_string();
        let got = problems(&[&odd, &missing, &nameless], None);
        assert!(got[0].starts_with(&format!("{odd}: file: cannot tell the format")), "{got:?}");
        assert_eq!(got[1], format!("{missing}: file: no such file or folder"));
        assert_eq!(got[2], format!("{nameless}: file: no such file or folder"), "not a format to name");
    }

    #[test]
    fn split_suffix_on_a_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.jsonl", "");
        let got = problems(&[format!("{a}:train")], None);
        assert!(got[0].contains("only applies to TweetEval"), "{got:?}");
    }

    #[test]
    fn warns_about_exact_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let line = "{\"text\":\"x\",\"target\":\"nato\",\"label\":\"none\"}\n";
        let a = write(dir.path(), "a.jsonl", line.repeat(2));
        let data = load(&[&a], None, &schema()).unwrap();
        assert_eq!(data.records().count(), 2);
        let warnings = data.warnings();
        assert!(warnings[0].starts_with("1 exact duplicate"), "{warnings:?}");
        assert_eq!(warnings[1], format!("  {a}:2: duplicate of {a}:1"));
    }

    #[test]
    fn an_input_without_records_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "a.jsonl", "");
        let blank = write(dir.path(), "b.jsonl", "\n  \n");
        let header = write(dir.path(), "c.csv", "text,target,label\n");
        let semeval = write(dir.path(), "d.txt", "ID\tTarget\tTweet\tStance\n");
        let got = problems(&[&empty, &blank, &header, &semeval], None);
        let expected: Vec<String> =
            [&empty, &blank, &header, &semeval].iter().map(|f| format!("{f}: file: no records")).collect();
        assert_eq!(got, expected);
        let good = write(dir.path(), "e.jsonl", "{\"text\":\"x\",\"target\":\"nato\",\"label\":\"none\"}\n");
        assert_eq!(problems(&[&good, &empty], None), vec![format!("{empty}: file: no records")]);
        assert_eq!(load_records(&[&good], None, &schema()).unwrap().len(), 1);
    }
}
