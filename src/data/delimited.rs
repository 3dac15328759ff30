//! CSV and TSV with a header naming `text`, `target`, `label` and optionally `id`.
//! Other columns are ignored, so spreadsheets with notes columns load as they are.

use std::sync::Arc;

use csv::{ByteRecord, ReaderBuilder};

use super::{lines, Pos, Sink};

const REQUIRED: [&str; 3] = ["text", "target", "label"];

/// Column positions of the fields we use.
struct Columns {
    id: Option<usize>,
    text: usize,
    target: usize,
    label: usize,
}

pub(crate) fn read(file: &Arc<str>, bytes: &[u8], delimiter: u8, sink: &mut Sink) {
    // Quotes are literal in TSV: sentences contain them, and TSV has no escaping.
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter != b'\t')
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes);
    let mut row = ByteRecord::new();
    let mut columns = None;
    let mut lines = LineCounter { bytes, offset: 0, line: 1 };
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                sink.problems.push(Pos { file: file.clone(), line }.problem("row", e.to_string()));
                continue;
            }
        }
        let line = row.position().map_or(0, |p| lines.line_at(p.byte()));
        let at = Pos { file: file.clone(), line };
        let Some(fields) = decode(&row, &at, sink) else {
            // Without a readable header no row can be read.
            if columns.is_none() {
                return;
            }
            continue;
        };
        match &columns {
            None => match header(&fields, &at) {
                Ok(found) => columns = Some(found),
                Err(problem) => return sink.problems.push(problem),
            },
            Some(columns) => entry(columns, &fields, at, sink),
        }
    }
    if columns.is_none() {
        sink.problems.push(Pos { file: file.clone(), line: 1 }.problem("header", "empty file: no header row"));
    }
}

/// Physical line numbers. The csv crate's line count leaves out the blank lines it
/// skips, and a record's byte offset points at the blank lines before it, so lines
/// are counted here from the offsets.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl LineCounter<'_> {
    /// The 1-based line where the record starting at `byte` has its first content;
    /// offsets must not decrease between calls.
    fn line_at(&mut self, byte: u64) -> usize {
        let start = usize::try_from(byte).unwrap_or(usize::MAX).clamp(self.offset, self.bytes.len());
        let blank = self.bytes[start..].iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
        let end = start + blank;
        self.line += self.bytes[self.offset..end].iter().filter(|&&b| b == b'\n').count();
        self.offset = end;
        self.line
    }
}

fn decode(row: &ByteRecord, at: &Pos, sink: &mut Sink) -> Option<Vec<String>> {
    let decoded: Result<Vec<String>, _> =
        row.iter().map(|field| lines::decode(&at.file, at.line, field).map(str::to_string)).collect();
    decoded.map_err(|problem| sink.problems.push(problem)).ok()
}

fn header(fields: &[String], at: &Pos) -> Result<Columns, crate::Problem> {
    let find =
        |name: &str| fields.iter().position(|f| f.trim_start_matches('\u{feff}').trim().eq_ignore_ascii_case(name));
    let missing: Vec<&str> = REQUIRED.into_iter().filter(|name| find(name).is_none()).collect();
    match (find("text"), find("target"), find("label")) {
        (Some(text), Some(target), Some(label)) => Ok(Columns { id: find("id"), text, target, label }),
        _ => Err(at.problem(
            "header",
            format!("no column named {}; the header must name text, target, label (id optional)", missing.join(", ")),
        )),
    }
}

fn entry(columns: &Columns, fields: &[String], at: Pos, sink: &mut Sink) {
    let mut get = |index: usize, name: &str| {
        let value = fields.get(index).cloned();
        if value.is_none() {
            sink.problems.push(at.problem(name, "missing field (the row has too few columns)"));
        }
        value
    };
    let found = [get(columns.text, "text"), get(columns.target, "target"), get(columns.label, "label")];
    let id = columns.id.and_then(|i| fields.get(i)).filter(|id| !id.trim().is_empty()).cloned();
    sink.push_found(id, found, at);
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
}
