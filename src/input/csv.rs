//! The one CSV path, for labelled data (CSV and TSV) and for `predict`'s CSV
//! input: a header row whose columns are found by name, fields held to the
//! line policy's UTF-8 rule, and rows numbered by physical line.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

use ::csv::{ByteRecord, ErrorKind, ReaderBuilder};

use super::lines::{decode, skip_bom};
use crate::error::{Error, Problem, Problems, Result};

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
            .from_reader(Marks::new(reader));
        let empty = Row { line: 1, fields: Vec::new() };
        let mut rows = Self { reader, file, header: empty, row: ByteRecord::new(), done: false };
        match rows.next() {
            Some(header) => rows.header = header?,
            None => return Err(invalid(&rows.file, 1, "header", "empty file: no header row".into())),
        }
        Ok(rows)
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
        let decode_field = |(i, field)| decode(&self.file, line, field, &format!("column {}", i + 1)).map(String::from);
        let fields = self.row.iter().enumerate().map(decode_field).collect::<Result<_, _>>();
        Ok(Row { line, fields: fields.map_err(|p| Error::Invalid(Problems(vec![p])))? })
    }

    fn error(&mut self, e: ::csv::Error) -> Error {
        let line = e.position().map_or(0, |p| self.reader.get_mut().line_at(p.byte()));
        let message = e.to_string();
        match e.into_kind() {
            ErrorKind::Io(source) => {
                self.done = true;
                Error::io(&*self.file, source)
            }
            _ => invalid(&self.file, line, "row", message),
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
            Ok(true) => Some(self.decoded()),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => Some(Err(self.error(e))),
        }
    }
}

fn invalid(file: &str, line: usize, field: &str, message: String) -> Error {
    Error::Invalid(Problems(vec![Problem { file: file.to_string(), line, field: field.into(), message }]))
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
}

impl<R: Read> Marks<R> {
    fn new(inner: R) -> Self {
        Self { inner, offset: 0, ends: VecDeque::new(), line: 1, counted: 0 }
    }

    /// The line of the first byte at or after `byte` that is not a line ending;
    /// `byte` must not be behind an earlier call's.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = byte.max(self.counted);
        while let Some(&(at, b)) = self.ends.front().filter(|(at, _)| *at <= start) {
            // A line ending right at `start` belongs to a blank line before the row.
            start += u64::from(at == start);
            self.line += usize::from(b == b'\n');
            self.ends.pop_front();
        }
        self.counted = start;
        self.line
    }
}

impl<R: Read> Read for Marks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let ends = buf[..n].iter().enumerate().filter(|(_, b)| matches!(b, b'\r' | b'\n'));
        self.ends.extend(ends.map(|(i, &b)| (self.offset + i as u64, b)));
        self.offset += n as u64;
        Ok(n)
    }
}
