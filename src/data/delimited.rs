//! CSV and TSV with a header naming `text`, `target`, `label` and optionally `id`.
//! Other columns are ignored, so spreadsheets with notes columns load as they are.
//! A header naming SemEval-2016's `Tweet`, `Target`, `Stance` (and optionally
//! `ID`) instead is read as SemEval is: targets by description, stances in any
//! case. Sets derived from SemEval ship that way (P-Stance's CSV files do).

use std::sync::Arc;

use super::{semeval, Pos, Schema, Sink};
use crate::input::csv::{CsvReader, Dialect, Row};

const REQUIRED: [&str; 3] = ["text", "target", "label"];
/// SemEval's names for the same three columns.
const SEMEVAL: [&str; 3] = ["Tweet", "Target", "Stance"];

/// Column positions of the fields we use.
struct Columns {
    id: Option<usize>,
    text: usize,
    target: usize,
    label: usize,
    /// SemEval's names (`Tweet`, `Target`, `Stance`) and its conventions.
    semeval: bool,
}

impl Columns {
    /// The three columns' names as the header gives them, for problems to name.
    fn names(&self) -> [&'static str; 3] {
        if self.semeval {
            SEMEVAL
        } else {
            REQUIRED
        }
    }
}

pub(crate) fn read(file: &Arc<str>, bytes: &[u8], dialect: Dialect, schema: &Schema, sink: &mut Sink) {
    // Without a readable header no row can be read.
    let rows = match CsvReader::open(bytes, file.clone(), dialect) {
        Ok(rows) => rows,
        Err(e) => return sink.error(e),
    };
    let columns = match header(&rows) {
        Ok(columns) => columns,
        Err(problem) => return sink.problems.push(problem),
    };
    for row in rows {
        match row {
            Ok(Row { line, fields }) => entry(&columns, &fields, Pos { file: file.clone(), line }, schema, sink),
            Err(e) => sink.error(e),
        }
    }
}

fn header(rows: &CsvReader<&[u8]>) -> Result<Columns, crate::Problem> {
    let find = |name: &str| rows.column(name);
    // A header that names Tweet or Stance means SemEval's set, and is told what it lacks of that set.
    let semeval = find("tweet").is_some() || find("stance").is_some();
    let names = if semeval { SEMEVAL } else { REQUIRED };
    if let [Some(text), Some(target), Some(label)] = names.map(find) {
        return Ok(Columns { id: find("id"), text, target, label, semeval });
    }
    let missing: Vec<&str> = names.into_iter().filter(|name| find(name).is_none()).collect();
    let at = Pos { file: rows.file().clone(), line: rows.header().line };
    let message = format!(
        "no column named {}; the header must name text, target, label (id optional), \
         or SemEval's Tweet, Target, Stance (ID optional)",
        missing.join(", ")
    );
    Err(at.problem("header", message))
}

fn entry(columns: &Columns, fields: &[String], at: Pos, schema: &Schema, sink: &mut Sink) {
    let mut get = |index: usize, name: &str| {
        let value = fields.get(index).cloned();
        if value.is_none() {
            sink.problems.push(at.problem(name, "missing field (the row has too few columns)"));
        }
        value
    };
    let [text, target, label] = columns.names();
    let found = [get(columns.text, text), get(columns.target, target), get(columns.label, label)];
    let id = columns.id.and_then(|i| fields.get(i)).filter(|id| !id.trim().is_empty()).cloned();
    if !columns.semeval {
        return sink.push_found(id, found, at);
    }
    if let [Some(tweet), Some(target), Some(stance)] = &found {
        semeval::Fields { id: id.as_deref(), target, tweet, stance }.push(schema, at, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, schema, write};
    use super::super::{load, Format};

    #[test]
    fn reads_csv_with_quotes_extra_columns_and_any_column_order() {
        let dir = tempfile::tempdir().unwrap();
        let body = "label,note,text,target,id\nfavor,x,\"Join, now\nplease.\",nato,s1\n\nnone,,plain,climate,\n";
        let file = write(dir.path(), "a.csv", body);
        let data = load(&[file], None, &schema()).unwrap();
        let entries = &data.files[0].entries;
        assert_eq!(entries[0].record.text, "Join, now\nplease.");
        assert_eq!(entries[0].record.id.as_deref(), Some("s1"));
        assert_eq!((entries[1].record.id.clone(), entries[1].text_at.line), (None, 5));
    }

    #[test]
    fn reads_semeval_column_names_as_semeval() {
        let dir = tempfile::tempdir().unwrap();
        let body = "Tweet,Target,Stance\n\"Hot, again #SemST \",Climate Change is a Real Concern,FAVOR\n\
                    x,Ukraine joining NATO,MAYBE\ny,Donald Trump,AGAINST\nz,nato,None\n";
        let file = write(dir.path(), "p.csv", body);
        let got = problems(&[&file], None);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with(&format!("{file}:3: label: unknown label 'MAYBE'")), "{got:?}");
        assert!(got[1].starts_with(&format!("{file}:4: Target: unknown target description 'Donald Trump'")), "{got:?}");
        let good: String =
            body.lines().enumerate().filter(|(i, _)| ![2, 3].contains(i)).map(|(_, l)| format!("{l}\n")).collect();
        write(dir.path(), "p.csv", good);
        let data = load(&[&file], None, &schema()).unwrap();
        let got: Vec<(&str, &str, &str)> =
            data.records().map(|r| (r.text.as_str(), r.target.as_str(), r.label.as_str())).collect();
        assert_eq!(got, [("Hot, again", "climate", "favor"), ("z", "nato", "none")]);
    }

    #[test]
    fn a_semeval_header_is_told_what_it_lacks_of_semevals_columns() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.csv", "Tweet,Target\nx,nato\n");
        let got = problems(&[&file], None);
        assert!(got[0].starts_with(&format!("{file}:1: header: no column named Stance;")), "{got:?}");
    }

    #[test]
    fn reads_tsv_without_quoting() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.tsv", "text\ttarget\tlabel\n\"Quoted\" words\tnato\tagainst\n");
        let data = load(&[file], None, &schema()).unwrap();
        assert_eq!(data.files[0].entries[0].record.text, "\"Quoted\" words");
        let bom = write(dir.path(), "bom.csv", "\u{feff}text,target,label\nx,nato,none\n");
        assert_eq!(load(&[bom], None, &schema()).unwrap().records().count(), 1);
    }

    #[test]
    fn header_without_required_columns() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.csv", "sentence,target\nx,nato\n");
        let got = problems(&[&file], None);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with(&format!("{file}:1: header: no column named text, label")), "{got:?}");
    }

    #[test]
    fn short_row_is_a_missing_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.csv", "text,target,label\nfine,nato,none\nshort,nato\n");
        let got = problems(&[&file], Some(Format::Csv));
        assert_eq!(got, vec![format!("{file}:3: label: missing field (the row has too few columns)")]);
    }

    #[test]
    fn invalid_utf8_names_the_row_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.csv", b"\ntext,target,label\r\n\r\nok,nato,none\ncaf\xe9,nato,none\n");
        let got = problems(&[&file], None);
        assert!(got[0].starts_with(&format!("{file}:5: encoding: invalid UTF-8")), "{got:?}");
    }

    #[test]
    fn bom_crlf_and_invalid_utf8_in_csv_and_tsv() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sep) in [("a.csv", ","), ("a.tsv", "\t")] {
            let good = format!("\u{feff}text{sep}target{sep}label\r\nx{sep}nato{sep}none\r\n").into_bytes();
            let file = write(dir.path(), name, &good);
            let data = load(&[&file], None, &schema()).unwrap();
            assert_eq!(data.records().map(|r| r.label.as_str()).collect::<Vec<_>>(), ["none"], "{name}");
            write(
                dir.path(),
                name,
                [&good[..], format!("caf\u{e9}{sep}nato{sep}none\r\n").as_bytes(), b"\xff\r\n"].concat(),
            );
            let got = problems(&[&file], None);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].starts_with(&format!("{file}:4: encoding: invalid UTF-8 at byte 1 of column 1")), "{got:?}");
        }
    }
}
