//! The one CSV path, for labelled data (CSV and TSV) and for `predict`'s CSV
//! input: a header row whose columns are found by name, fields held to the
//! line policy's UTF-8 rule, and rows numbered by physical line.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

use ::csv::{ByteRecord, ErrorKind, ReaderBuilder};

use super::lines::{decode, skip_bom};
use crate::error::{Error, Problem, Result};

/// How fields are separated and quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quoting: bool,
}

impl Dialect {
    pub const CSV: Dialect = Dialect { delimiter: b',', quoting: true };
    /// Quotes are literal in TSV: sentences contain them, and TSV has no escaping.
    pub const TSV: Dialect = Dialect { delimiter: b'\t', quoting: false };
}

/// One row: its fields, decoded, and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based physical line of the row's first field (blank lines count).
    pub line: usize,
    pub fields: Vec<String>,
}

/// The rows after the header, as a stream (over `&[u8]`, from memory). A row
/// that cannot be read is an `Err(Error::Invalid)` of that row and reading goes
/// on; a read error is an `Err(Error::Io)` and ends the rows. Rows may be short.
pub struct CsvReader<R> {
    reader: ::csv::Reader<Marks<io::Chain<io::Cursor<Vec<u8>>, R>>>,
    file: Arc<str>,
    header: Row,
    row: ByteRecord,
    done: bool,
    quoting: bool,
    /// The line of the last row read, if its last field spans lines: should
    /// the file end without a closing quote, that field was never closed.
    open_field: Option<usize>,
}

impl<R: Read> CsvReader<R> {
    /// Reads up to and including the header row (the first row that is not blank).
    pub fn open(reader: R, file: Arc<str>, dialect: Dialect) -> Result<Self> {
        let reader = skip_bom(reader).map_err(|e| Error::io(&*file, e))?;
        let reader = ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .quoting(dialect.quoting)
            .flexible(true)
            .has_headers(false)
            .from_reader(Marks::new(reader, dialect));
        let empty = Row { line: 1, fields: Vec::new() };
        let quoting = dialect.quoting;
        let mut rows =
            Self { reader, file, header: empty, row: ByteRecord::new(), done: false, quoting, open_field: None };
        match rows.next() {
            Some(header) => rows.header = header?,
            None => return Err(Problem::new(&rows.file, 1, "header", "empty file: no header row").into()),
        }
        rows.check_header()?;
        Ok(rows)
    }

    /// A column named twice would leave one of the two unread.
    fn check_header(&self) -> Result<()> {
        let names: Vec<String> = self.header.fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
        match names.iter().enumerate().find(|(i, n)| !n.is_empty() && names[..*i].contains(n)) {
            Some((i, _)) => {
                let message = format!("column `{}` is named twice", self.header.fields[i].trim());
                Err(Problem::new(&self.file, self.header.line, "header", message).into())
            }
            None => Ok(()),
        }
    }

    /// More fields than the header names, which the csv crate lets pass.
    fn check_row(&mut self, row: Row) -> Result<Row> {
        let multiline = row.fields.last().is_some_and(|f| f.contains('\n'));
        self.open_field = (self.quoting && multiline).then_some(row.line);
        let (got, named) = (row.fields.len(), self.header.fields.len());
        if named > 0 && got > named {
            let message = format!("{got} fields, but the header names {named} columns");
            return Err(Problem::new(&self.file, row.line, "row", message).into());
        }
        Ok(row)
    }

    /// A closing quote with text after it, at byte `at` of field `field`.
    fn stray_quote(&mut self, row: &Row, at: u64, field: usize) -> Problem {
        let line = self.reader.get_mut().line_at(at);
        let column =
            self.header.fields.get(field).map(|f| f.trim()).filter(|f| !f.is_empty() && row.line != self.header.line);
        let column = column.map_or_else(|| format!("column {}", field + 1), String::from);
        let doubled = "a quote inside a quoted field is written twice (\"\")";
        let message = if line == row.line {
            format!("text follows the quote that closes this field; {doubled}")
        } else {
            format!(
                "the quoted field opened here closes on line {line} with text after its quote, and holds the \
                 lines between: a quote left open swallows rows; {doubled}"
            )
        };
        Problem::new(&self.file, row.line, &column, message)
    }

    /// At the end of the file: a last field spanning lines with no closing
    /// quote after it was opened and never closed, and swallowed every row
    /// after its own (the csv crate reads it to the end without a word).
    fn unclosed_quote(&self) -> Option<Error> {
        let line = self.open_field.filter(|_| self.reader.get_ref().last != Some(b'"'))?;
        let message = "a quoted field is never closed: it runs to the end of the file";
        Some(Problem::new(&self.file, line, "row", message).into())
    }

    /// The input as named in problems.
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    pub fn header(&self) -> &Row {
        &self.header
    }

    /// The position of the column named `name`, ignoring case and surrounding spaces.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.fields.iter().position(|f| f.trim().eq_ignore_ascii_case(name))
    }

    fn decoded(&mut self) -> Result<Row> {
        let line = self.row.position().map_or(0, |p| self.reader.get_mut().line_at(p.byte()));
        let decode_field =
            |(i, field)| decode(&self.file, line, field, || format!("column {}", i + 1)).map(String::from);
        let fields = self.row.iter().enumerate().map(decode_field).collect::<Result<_, _>>();
        Ok(Row { line, fields: fields.map_err(Error::from)? })
    }

    fn error(&mut self, e: ::csv::Error) -> Error {
        let line = e.position().map_or(0, |p| self.reader.get_mut().line_at(p.byte()));
        let message = e.to_string();
        match e.into_kind() {
            ErrorKind::Io(source) => {
                self.done = true;
                Error::io(&*self.file, source)
            }
            _ => Problem::new(&self.file, line, "row", message).into(),
        }
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.row) {
            Ok(true) => {
                // The row's stray quotes are taken on every path, so that none is left to blame the next row.
                let end = self.reader.position().byte();
                let stray = self.reader.get_mut().stray_before(end);
                let unclosed = self.reader.get_ref().open_at_end(end);
                Some(self.decoded().and_then(|row| match stray {
                    // A quote never closed ends the last row at the end of the file, with every line after
                    // it inside: that row is the problem, not a record (`--skip-invalid` must not score it).
                    _ if unclosed => {
                        self.open_field = None;
                        let message = "a quoted field is never closed: it runs to the end of the file";
                        Err(Problem::new(&self.file, row.line, "row", message).into())
                    }
                    // Before the field count: what a stray quote swallows often adds fields.
                    Some((at, field)) => {
                        self.open_field = None;
                        Err(self.stray_quote(&row, at, field).into())
                    }
                    None => self.check_row(row),
                }))
            }
            Ok(false) => {
                self.done = true;
                self.unclosed_quote().map(Err)
            }
            Err(e) => Some(Err(self.error(e))),
        }
    }
}

/// Passes bytes through, noting where each `\r` and `\n` went, so that a row's
/// byte offset becomes its physical line. The csv crate's own line count leaves
/// out the blank lines it skips, and a row's offset points at the blank lines
/// before it. Marks behind the last row asked about are dropped, so memory
/// holds only what the csv reader has read ahead.
struct Marks<R> {
    inner: R,
    /// Bytes passed through so far.
    offset: u64,
    /// Offsets of the `\r` and `\n` bytes not yet counted, with the byte.
    ends: VecDeque<(u64, u8)>,
    /// The line of byte `counted`.
    line: usize,
    counted: u64,
    /// The last byte passed through that ends no line.
    last: Option<u8>,
    /// Quotes followed by text, for CSV (TSV has no quoting).
    quotes: Option<QuoteScan>,
    /// Whether the input has ended (a read gave nothing).
    ended: bool,
}

impl<R: Read> Marks<R> {
    fn new(inner: R, dialect: Dialect) -> Self {
        let quotes = dialect.quoting.then(|| QuoteScan::new(dialect.delimiter));
        Self { inner, offset: 0, ends: VecDeque::new(), line: 1, counted: 0, last: None, quotes, ended: false }
    }

    /// Whether a row ending at byte `end` ends at the end of the input inside
    /// a quoted field: a quote opened there was never closed.
    fn open_at_end(&self, end: u64) -> bool {
        self.ended && end == self.offset && self.quotes.as_ref().is_some_and(|q| q.state == Quoting::Quoted)
    }

    /// The first stray quote before byte `end` (the end of the row just
    /// read), dropping those behind it.
    fn stray_before(&mut self, end: u64) -> Option<(u64, usize)> {
        let strays = &mut self.quotes.as_mut()?.strays;
        let first = strays.front().copied().filter(|&(at, _)| at < end);
        while strays.front().is_some_and(|&(at, _)| at < end) {
            strays.pop_front();
        }
        first
    }

    /// The line of the first byte at or after `byte` that is not a line ending;
    /// `byte` must not be behind an earlier call's.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = byte.max(self.counted);
        while let Some(&(at, b)) = self.ends.front().filter(|(at, _)| *at <= start) {
            // A line ending right at `start` belongs to a blank line before the row.
            start += u64::from(at == start);
            // `\r\n` ends one line; a `\r` alone ends one too (old Mac files), as it ends a row for the csv crate.
            let crlf = b == b'\r' && self.ends.get(1).is_some_and(|&(next, b)| next == at + 1 && b == b'\n');
            self.line += usize::from(!crlf);
            self.ends.pop_front();
        }
        self.counted = start;
        self.line
    }
}

impl<R: Read> Read for Marks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ended |= n == 0 && !buf.is_empty();
        let ends = buf[..n].iter().enumerate().filter(|(_, b)| matches!(b, b'\r' | b'\n'));
        self.ends.extend(ends.map(|(i, &b)| (self.offset + i as u64, b)));
        if let Some(quotes) = &mut self.quotes {
            buf[..n].iter().enumerate().for_each(|(i, &b)| quotes.eat(self.offset + i as u64, b));
        }
        self.offset += n as u64;
        self.last = buf[..n].iter().rev().find(|b| !matches!(b, b'\r' | b'\n')).copied().or(self.last);
        Ok(n)
    }
}

/// Finds closing quotes followed by text (`"a"b,`). RFC 4180 doubles a quote
/// inside a quoted field; the csv crate reads on past such a quote, unquoted,
/// without a word, so that a quote left open on one row swallows every row up
/// to the next stray quote. Mirrors the crate's reading byte by byte.
struct QuoteScan {
    delimiter: u8,
    state: Quoting,
    /// The field of the current row (0-based).
    field: usize,
    /// Offsets of the stray quotes' next byte, with their field.
    strays: VecDeque<(u64, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: doubled, or the field's end.
    QuoteInQuoted,
}

impl QuoteScan {
    fn new(delimiter: u8) -> Self {
        Self { delimiter, state: Quoting::FieldStart, field: 0, strays: VecDeque::new() }
    }

    fn eat(&mut self, at: u64, byte: u8) {
        use Quoting::*;
        let ends_field = byte == self.delimiter || byte == b'\n' || byte == b'\r';
        self.state = match (self.state, byte) {
            (FieldStart, b'"') => Quoted,
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            _ if ends_field => {
                self.field = if byte == self.delimiter { self.field + 1 } else { 0 };
                FieldStart
            }
            (QuoteInQuoted, _) => {
                self.strays.push_back((at, self.field));
                Unquoted
            }
            _ => Unquoted,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::lines::tests::Trickle;

    type Rows = Vec<Result<(usize, Vec<String>), String>>;

    fn collect<R: Read>(reader: R, dialect: Dialect) -> Result<Rows, String> {
        let rows = CsvReader::open(reader, "f.csv".into(), dialect).map_err(|e| e.to_string())?;
        let header = Ok(rows.header().clone());
        let all = std::iter::once(header).chain(rows);
        Ok(all.map(|row| row.map(|r| (r.line, r.fields)).map_err(|e| e.to_string())).collect())
    }

    /// The header and rows as (line, fields) or problem, read from memory and
    /// from a one-byte stream, which must agree.
    fn rows(bytes: &[u8], dialect: Dialect) -> Result<Rows, String> {
        let memory = collect(bytes, dialect);
        assert_eq!(collect(Trickle(bytes), dialect), memory);
        memory
    }

    fn row(line: usize, fields: &[&str]) -> Result<(usize, Vec<String>), String> {
        Ok((line, fields.iter().map(|f| f.to_string()).collect()))
    }

    #[test]
    fn extra_fields_an_unclosed_quote_and_a_twice_named_column_are_problems() {
        let extra = rows(b"id,text\n1,hello,extra\n2,fine\n", Dialect::CSV).unwrap();
        let problem = |p: &str| Err(format!("invalid input (1 problem(s)):\nf.csv:{p}"));
        assert_eq!(extra[1], problem("2: row: 3 fields, but the header names 2 columns"));
        assert_eq!(extra[2], row(3, &["2", "fine"]));
        let unclosed = rows(b"id,text\n1,\"unterminated\n2,foo\n", Dialect::CSV).unwrap();
        let never_closed = problem("2: row: a quoted field is never closed: it runs to the end of the file");
        // In place of the row, which holds every line after it: nothing is read from it (`--skip-invalid`).
        assert_eq!(unclosed[1..], [never_closed]);
        let closed: [&[u8]; 4] = [
            b"id,text\n1,\"two\nlines\"\n",
            b"id,text\n1,\"two\nlines\"",
            b"id,text\n1,two\n",
            b"id,text,x\n1,\"two\nlines\",x\n",
        ];
        for closed in closed {
            assert!(rows(closed, Dialect::CSV).unwrap().iter().all(Result::is_ok), "{closed:?}");
        }
        let twice = collect(&b"id,Text,text \n1,a,b\n"[..], Dialect::CSV).unwrap_err();
        assert_eq!(twice, "invalid input (1 problem(s)):\nf.csv:1: header: column `text` is named twice");
    }

    /// Text after a closing quote is a problem of its row, named at the line
    /// the field opened on: the row a quote left open swallowed is not lost quietly.
    #[test]
    fn text_after_a_closing_quote_is_a_problem() {
        let problem = |p: &str| Err(format!("invalid input (1 problem(s)):\nf.csv:{p}"));
        let doubled = "a quote inside a quoted field is written twice (\"\")";
        let early = rows(b"id,text\n1,\"He said \"no\" to NATO\"\n2,fine\n", Dialect::CSV).unwrap();
        assert_eq!(early[1], problem(&format!("2: text: text follows the quote that closes this field; {doubled}")));
        assert_eq!(early[2], row(3, &["2", "fine"]));
        let swallowed = rows(b"id,text,t\r\n1,\"open,a\r\n2,b,c\r\n3,end\" x,c\r\n4,ok,c\r\n", Dialect::CSV).unwrap();
        let message = "the quoted field opened here closes on line 4 with text after its quote, and holds the lines \
                       between: a quote left open swallows rows";
        assert_eq!(swallowed[1], problem(&format!("2: text: {message}; {doubled}")));
        assert_eq!(swallowed[2], row(5, &["4", "ok", "c"]));
        // With a field too many, or bytes that are no UTF-8, the stray quote is still its own row's.
        for body in [&b"t,u,v\n\"a\"b,x,y,extra\nfine,x,y\n"[..], b"t,u,v\n\"a\"b\xff,x,y\nfine,x,y\n"] {
            let got = rows(body, Dialect::CSV).unwrap();
            assert!(got[1].is_err(), "{got:?}");
            assert_eq!(got[2], row(3, &["fine", "x", "y"]), "{}", String::from_utf8_lossy(body));
        }
        let fine: [&[u8]; 5] = [
            b"id,text\n1,\"a \"\"quoted\"\" word\"\n",
            b"id,text,x\r\n1,\"x\"\r\n2,\"y\",\n",
            b"id,text\n1,say \"hi\" now\n",
            b"id,text\n1,\"\"\n2,\"\"\"\"\n",
            b"\"id\",\"text\"\n1,\"two\nlines\"\n",
        ];
        for fine in fine {
            assert!(rows(fine, Dialect::CSV).unwrap().iter().all(Result::is_ok), "{}", String::from_utf8_lossy(fine));
        }
    }

    #[test]
    fn rows_are_numbered_by_physical_line_counting_blank_and_quoted_lines() {
        let body = b"\n\nid,text\r\n\r\n1,\"two\nlines\"\n\n\n2,plain\r\n3,\"a\n\nb\"\n4,x";
        let expected = vec![
            row(3, &["id", "text"]),
            row(5, &["1", "two\nlines"]),
            row(9, &["2", "plain"]),
            row(10, &["3", "a\n\nb"]),
            row(13, &["4", "x"]),
        ];
        assert_eq!(rows(body, Dialect::CSV), Ok(expected));
    }

    /// Files from old Mac software end lines with `\r` alone: each is a line, as each is a row.
    #[test]
    fn a_carriage_return_alone_ends_a_line() {
        let body = b"id,text\r1,a\r\r2,\"two\rlines\"\r3,b\r\n4,c\n5,d\r";
        let expected = vec![
            row(1, &["id", "text"]),
            row(2, &["1", "a"]),
            row(4, &["2", "two\rlines"]),
            row(6, &["3", "b"]),
            row(7, &["4", "c"]),
            row(8, &["5", "d"]),
        ];
        assert_eq!(rows(body, Dialect::CSV), Ok(expected));
    }

    #[test]
    fn tsv_quotes_are_literal_and_short_rows_stay_short() {
        let got = rows(b"text\tlabel\n\"Quoted\" words\tx\nshort\n", Dialect::TSV);
        assert_eq!(got, Ok(vec![row(1, &["text", "label"]), row(2, &["\"Quoted\" words", "x"]), row(3, &["short"])]));
    }

    #[test]
    fn columns_are_found_by_trimmed_name_in_any_case_after_a_bom() {
        let rows = CsvReader::open(&b"\xEF\xBB\xBF Text ,ID\r\nx,1\r\n"[..], "f.csv".into(), Dialect::CSV).unwrap();
        assert_eq!((rows.column("text"), rows.column("id"), rows.column("target")), (Some(0), Some(1), None));
        assert_eq!(rows.map(|r| r.unwrap().fields).collect::<Vec<_>>(), [["x", "1"]]);
    }

    #[test]
    fn invalid_utf8_is_a_problem_of_its_row_and_reading_goes_on() {
        let got = rows(b"a,b\nok,caf\xe9\nnext,1\n", Dialect::CSV).unwrap();
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .starts_with("invalid input (1 problem(s)):\nf.csv:2: encoding: invalid UTF-8 at byte 4 of column 2"),
            "{got:?}"
        );
        assert_eq!(got[2], row(3, &["next", "1"]));
        let header = rows(b"\n\xff,b\n", Dialect::CSV).unwrap_err();
        assert!(header.contains("f.csv:2: encoding: invalid UTF-8 at byte 1 of column 1"), "{header}");
    }

    #[test]
    fn no_header_row_is_a_problem() {
        for body in [&b""[..], b"\xEF\xBB\xBF", b"\n\r\n\n"] {
            let err = rows(body, Dialect::CSV).unwrap_err();
            assert!(err.ends_with("f.csv:1: header: empty file: no header row"), "{err}");
        }
    }

    #[test]
    fn line_marks_behind_the_current_row_are_dropped() {
        let body = "text\n".to_string() + &"x\n\n".repeat(50_000);
        let mut rows = CsvReader::open(body.as_bytes(), "f.csv".into(), Dialect::CSV).unwrap();
        let mut most = 0;
        while let Some(row) = rows.next() {
            assert_eq!(row.unwrap().line % 2, 0);
            most = most.max(rows.reader.get_ref().ends.len());
        }
        assert!(most < 20_000, "{most} marks held");
    }
}
