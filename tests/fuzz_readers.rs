//! Property tests of every input reader: fed arbitrary bytes, or arbitrary
//! JSONL/CSV/TSV/SemEval/TweetEval shapes with byte order marks, mixed line
//! endings and invalid UTF-8 thrown in, each returns records or problems that
//! name a file, a line within it and a field, and never panics.
//!
//! `STANCEKIT_FUZZ_CASES` sets the cases per property (256 by default, which
//! `cargo test` runs); `scripts/fuzz-readers.sh` runs a long campaign.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use stancekit::data::{self, Format, Schema};
use stancekit::evaluation::predictions;
use stancekit::input::{open_records, read_texts, InputFormat, ReadOptions};
use stancekit::{Error, Problems};

fn config() -> ProptestConfig {
    let cases = std::env::var("STANCEKIT_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

fn schema() -> Schema {
    let targets = [("nato", "Ukraine joining NATO"), ("climate", "Climate Change is a Real Concern")];
    Schema {
        labels: ["favor", "against", "none"].map(String::from).to_vec(),
        targets: targets.into_iter().map(|(id, d)| (id.to_string(), d.to_string())).collect(),
        neutral: None,
        source: None,
        from_runs: false,
    }
}

/// The most lines any of `files` has, the bound of every line a problem may
/// name: a line ends at `\n`, or at a `\r` alone (as CSV rows do).
fn max_line(files: &[&[u8]]) -> usize {
    let ends =
        |f: &[u8]| (0..f.len()).filter(|&i| f[i] == b'\n' || (f[i] == b'\r' && f.get(i + 1) != Some(&b'\n'))).count();
    files.iter().map(|f| ends(f) + 1).max().unwrap_or(1)
}

/// An error is fine when it is a list of problems, each naming a file under
/// `dir`, a line no further than `lines`, and a field.
fn named(error: Error, dir: &Path, lines: usize) -> Result<(), TestCaseError> {
    let Error::Invalid(Problems(problems)) = error else {
        return Err(TestCaseError::fail(format!("not a list of problems: {error}")));
    };
    prop_assert!(!problems.is_empty());
    for p in problems {
        prop_assert!(Path::new(&p.file).starts_with(dir), "{p}");
        prop_assert!(p.line <= lines && !p.field.is_empty(), "{p}");
    }
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load(inputs: &[&Path], format: Option<Format>, dir: &Path, lines: usize) -> Result<(), TestCaseError> {
    let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    match data::load(&inputs, format, &schema()) {
        Ok(dataset) => {
            prop_assert!(dataset.records().count() > 0);
            Ok(())
        }
        Err(e) => named(e, dir, lines),
    }
}

/// `data check`/`train`/`eval`'s reader in every single-file format.
fn data_readers(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let lines = max_line(&[bytes]);
    for (name, format) in [("a.jsonl", Format::Jsonl), ("a.csv", Format::Csv), ("a.tsv", Format::Tsv)] {
        load(&[&write(dir.path(), name, bytes)], Some(format), dir.path(), lines)?;
    }
    let semeval = write(dir.path(), "a.txt", bytes);
    load(&[&semeval], Some(Format::Semeval), dir.path(), lines)?;
    // The format told by the header.
    load(&[&write(dir.path(), "b.tsv", bytes)], None, dir.path(), lines)
}

/// `predict`'s reader in every format, with and without sentence splitting.
fn predict_readers(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "input", bytes);
    let lines = max_line(&[bytes]);
    let formats = [InputFormat::Auto, InputFormat::Jsonl, InputFormat::Csv, InputFormat::Lines, InputFormat::Text];
    for (format, split_sentences) in formats.into_iter().flat_map(|f| [(f, false), (f, true)]) {
        let records = match open_records(&path, &ReadOptions { format, split_sentences, ..Default::default() }) {
            Ok((_, records)) => records,
            Err(e) => {
                named(e, dir.path(), lines)?;
                continue;
            }
        };
        for record in records {
            match record {
                Ok(record) => prop_assert!((1..=lines).contains(&record.line), "{record:?}"),
                Err(e) => named(e, dir.path(), lines)?,
            }
        }
    }
    Ok(())
}

/// `embed`'s reader (JSONL and lines) and `eval --predictions`' reader.
fn other_readers(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let lines = max_line(&[bytes]);
    for name in ["a.jsonl", "a.lines"] {
        if let Err(e) = read_texts(&write(dir.path(), name, bytes)) {
            named(e, dir.path(), lines)?;
        }
    }
    let labels = schema().labels;
    match predictions::read(&write(dir.path(), "p.jsonl", bytes), &labels) {
        Ok(file) => prop_assert!(file.lines.iter().all(|&l| (1..=lines).contains(&l))),
        Err(e) => named(e, dir.path(), lines)?,
    }
    Ok(())
}

fn every_reader(bytes: &[u8]) -> Result<(), TestCaseError> {
    data_readers(bytes)?;
    predict_readers(bytes)?;
    other_readers(bytes)
}

/// Words the readers look for, and anything else.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(WORDS).prop_map(String::from), "\\PC{0,12}", ".{0,6}"]
}

/// A value readers accept for the field or column `name` most of the time, or any word.
fn value_for(name: &str) -> BoxedStrategy<String> {
    let plausible: &'static [&'static str] = match name.to_ascii_lowercase().as_str() {
        "text" | "tweet" => TEXTS,
        "target" => TARGETS,
        "label" | "stance" => LABELS,
        "id" => &["s1", "7", "", " "],
        _ => WORDS,
    };
    prop_oneof![9 => prop::sample::select(plausible).prop_map(String::from), 1 => word()].boxed()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0.0..1.0f64).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..5).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Probabilities over the labels, summing to 1 or not, perhaps with other keys.
fn probs() -> impl Strategy<Value = Value> {
    let weights = prop::collection::vec(0.0..1.0f64, 3);
    let extra = prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec((word(), json_value()), 1..3)];
    let normalize = prop_oneof![3 => Just(true), 1 => Just(false)];
    (weights, normalize, extra).prop_map(|(weights, normalize, extra)| {
        let sum = if normalize { weights.iter().sum::<f64>().max(f64::MIN_POSITIVE) } else { 1.0 };
        let labels =
            ["favor", "against", "none"].iter().zip(&weights).map(|(l, w)| (l.to_string(), Value::from(w / sum)));
        Value::Object(labels.chain(extra).collect())
    })
}

/// A value for JSON field `name`: mostly a plausible one, else of any type.
fn json_field(name: String) -> BoxedStrategy<(String, Value)> {
    let plausible = match name.as_str() {
        "probs" | "probabilities" => probs().boxed(),
        "id" => prop_oneof![value_for("id").prop_map(Value::String), any::<u32>().prop_map(Value::from)].boxed(),
        other => value_for(other).prop_map(Value::String).boxed(),
    };
    (Just(name), prop_oneof![9 => plausible, 1 => json_value()]).boxed()
}

/// Some of `names` in any order, mostly all of them and mostly in this order.
fn some_of(names: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    let order = prop_oneof![Just(names.to_vec()), Just(names.to_vec()).prop_shuffle()];
    (order, prop_oneof![3 => Just(names.len()), 1 => 0..=names.len()]).prop_map(|(names, n)| names[..n].to_vec())
}

/// A JSONL line: mostly an object with the fields readers look for, and other lines.
fn json_line() -> impl Strategy<Value = String> {
    let names = (some_of(JSON_FIELDS), prop::collection::vec(word(), 0..2));
    let fields = names.prop_flat_map(|(known, other)| {
        known.into_iter().map(String::from).chain(other).map(json_field).collect::<Vec<_>>()
    });
    let object = fields.prop_map(|fields| Value::Object(fields.into_iter().collect()).to_string());
    prop_oneof![18 => object, 1 => json_value().prop_map(|v| v.to_string()), 1 => word()]
}

/// A field of a delimited file: as it is, quoted, or (rarely) with a quote left open.
fn quoted(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let how = prop_oneof![12 => Just(0u8), 6 => Just(1), 1 => Just(2)];
    (value, how).prop_map(|(value, how)| match how {
        1 => format!("\"{}\"", value.replace('"', "\"\"")),
        2 => format!("\"{value}"),
        _ => value,
    })
}

/// A header naming some of `names` (in any case, padded or not) and rows that
/// mostly have a plausible value in each column, else any fields.
fn table(names: &'static [&'static str], delimiter: &'static str) -> impl Strategy<Value = Vec<String>> {
    let disguise = |name: &str, how: u8| match how {
        0 => format!(" {} ", name.to_uppercase()),
        _ => name.to_string(),
    };
    let header = (some_of(names), prop::collection::vec(0..4u8, names.len()));
    header.prop_flat_map(move |(columns, disguises)| {
        let header = columns.iter().zip(&disguises).map(|(n, &how)| disguise(n, how)).collect::<Vec<_>>();
        let cells = columns.iter().map(|n| quoted(value_for(n))).collect::<Vec<_>>();
        let row = prop_oneof![9 => cells, 1 => prop::collection::vec(quoted(word()), 0..7)];
        let rows = prop::collection::vec(row.prop_map(move |row| row.join(delimiter)), 0..5);
        rows.prop_map(move |rows| [vec![header.join(delimiter)], rows].concat())
    })
}

/// Lines as a file: a byte order mark or not, any line endings, and a few
/// bytes that are not UTF-8 dropped anywhere.
fn file(lines: impl Strategy<Value = Vec<String>>) -> impl Strategy<Value = Vec<u8>> {
    let ending = prop_oneof![8 => Just("\n"), 8 => Just("\r\n"), 1 => prop::sample::select(ENDINGS)];
    let insert = (any::<Index>(), prop::sample::select(NOT_UTF8));
    let inserts = prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(insert, 1..3)];
    (lines, prop::collection::vec(ending, 16), any::<bool>(), inserts).prop_map(|(lines, endings, bom, inserts)| {
        let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
        for (line, ending) in lines.iter().zip(endings.iter().cycle()) {
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(ending.as_bytes());
        }
        for (at, bad) in inserts {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, bad.iter().copied());
        }
        bytes
    })
}

const WORDS: &[&str] = &[
    "favor",
    "against",
    "none",
    "FAVOR",
    "nato",
    "climate",
    "Ukraine joining NATO",
    "text",
    "id",
    "#SemST",
    "",
    " ",
    "0",
    "7",
];
const TEXTS: &[&str] =
    &["Join now.", "It is hot #SemST ", "Talks failed. The U.S. Army left.", "Mr. Smith said \"no\",\nthen left."];
/// Ids for most formats, descriptions for SemEval (which takes ids too).
const TARGETS: &[&str] = &["nato", "climate", "nato", "climate", "Ukraine joining NATO"];
/// Only SemEval's labels are in capitals.
const LABELS: &[&str] = &["favor", "against", "none", "favor", "against", "none", "FAVOR"];
const JSON_FIELDS: &[&str] = &["id", "text", "target", "label", "probs"];
const ENDINGS: &[&str] = &["\n", "\r\n", "\r", "", "\n\n"];
/// Bytes that are not UTF-8 where they land (a byte order mark is, but not past the start).
const NOT_UTF8: &[&[u8]] = &[b"\xff", b"\xe9", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf"];
const DATA_COLUMNS: &[&str] = &["text", "target", "label", "id", "note"];
const SEMEVAL_COLUMNS: &[&str] = &["ID", "Target", "Tweet", "Stance", "Sentiment"];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        every_reader(&bytes)?;
    }

    #[test]
    fn jsonl_shapes(bytes in file(prop::collection::vec(json_line(), 0..5))) {
        every_reader(&bytes)?;
    }

    #[test]
    fn csv_shapes(bytes in file(table(DATA_COLUMNS, ","))) {
        every_reader(&bytes)?;
    }

    #[test]
    fn tsv_and_semeval_shapes(bytes in prop_oneof![file(table(DATA_COLUMNS, "\t")), file(table(SEMEVAL_COLUMNS, "\t"))]) {
        every_reader(&bytes)?;
    }

    #[test]
    fn tweeteval_folders(
        mapping in file(prop::collection::vec(prop_oneof![9 => "[0-3]\t(none|favor|against)", 1 => word()], 0..4)),
        texts in file(prop::collection::vec(value_for("text"), 0..4)),
        labels in file(prop::collection::vec(prop_oneof![9 => "[0-2]", 1 => word()], 0..4)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mapping.txt", &mapping);
        write(dir.path(), "nato/train_text.txt", &texts);
        write(dir.path(), "nato/train_labels.txt", &labels);
        load(&[dir.path()], None, dir.path(), max_line(&[&mapping, &texts, &labels]))?;
    }
}
