//! The one line policy of every reader: a UTF-8 byte order mark at the start of
//! the input goes, each line loses its ending (`\n`, `\r\n`, or `\r` before the
//! end of input), and a line that is not UTF-8 is a problem of that line alone,
//! so that every bad line of a file is reported in one run.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use crate::error::{Error, Problem, Problems, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without the byte order mark it may start with.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// A stream without the byte order mark it may start with, for readers that
/// do not go line by line.
pub fn skip_bom<R: Read>(mut reader: R) -> io::Result<io::Chain<io::Cursor<Vec<u8>>, R>> {
    let mut head = Vec::with_capacity(BOM.len());
    // `take` + `read_to_end` keeps reading until it has the whole mark (or the end).
    (&mut reader).take(BOM.len() as u64).read_to_end(&mut head)?;
    let kept = strip_bom(&head).len();
    head.drain(..head.len() - kept);
    Ok(io::Cursor::new(head).chain(reader))
}

/// One line of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based.
    pub number: usize,
    /// The line without its ending.
    pub text: String,
    /// The ending that was removed (empty on a last line without one), for
    /// readers that measure offsets into the whole text.
    pub ending: &'static str,
}

/// Numbered lines of a stream (or, over `&[u8]`, of bytes in memory). An
/// encoding problem is an `Err(Error::Invalid)` of its line and reading goes
/// on; a read error is an `Err(Error::Io)` and ends the lines. A final line
/// ending does not start another line.
pub struct LineReader<R> {
    reader: R,
    file: Arc<str>,
    number: usize,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R, file: Arc<str>) -> Self {
        Self { reader, file, number: 0, done: false }
    }

    /// The input as named in problems.
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// The number of the last line read (0 before the first).
    pub fn number(&self) -> usize {
        self.number
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut raw = Vec::new();
        match self.reader.read_until(b'\n', &mut raw) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.number += 1;
                Some(decode_line(&self.file, self.number, raw).map_err(|p| Error::Invalid(Problems(vec![p]))))
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::io(&*self.file, e)))
            }
        }
    }
}

/// Applies the policy to one raw line, ending included.
fn decode_line(file: &str, number: usize, mut raw: Vec<u8>) -> Result<Line, Problem> {
    if number == 1 {
        raw.drain(..raw.len() - strip_bom(&raw).len());
    }
    let ending = ["\r\n", "\n", "\r"].into_iter().find(|e| raw.ends_with(e.as_bytes())).unwrap_or("");
    raw.truncate(raw.len() - ending.len());
    let text = String::from_utf8(raw).map_err(|e| invalid_utf8(file, number, e.utf8_error(), "the line"))?;
    Ok(Line { number, text, ending })
}

/// Decodes bytes found on line `line` (`part` says which bytes: "the line", "column 2").
pub fn decode<'a>(file: &str, line: usize, bytes: &'a [u8], part: &str) -> Result<&'a str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| invalid_utf8(file, line, e, part))
}

fn invalid_utf8(file: &str, line: usize, e: std::str::Utf8Error, part: &str) -> Problem {
    Problem {
        file: file.to_string(),
        line,
        field: "encoding".into(),
        message: format!(
            "invalid UTF-8 at byte {} of {part}; convert the file to UTF-8 (SemEval files are often Windows-1252)",
            e.valid_up_to() + 1
        ),
    }
}
