//! The one line policy of every reader: a UTF-8 byte order mark at the start of
//! the input goes, each line loses its ending (`\n`, `\r\n`, or `\r` before the
//! end of input), and a line that is not UTF-8 is a problem of that line alone,
//! so that every bad line of a file is reported in one run.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use crate::error::{Error, Problem, Result};

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
                Some(decode_line(&self.file, self.number, raw).map_err(Error::from))
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
    let text =
        String::from_utf8(raw).map_err(|e| invalid_utf8(file, number, e.as_bytes(), e.utf8_error(), "the line"))?;
    Ok(Line { number, text, ending })
}

/// serde_json's complaint about a line, with the likely cause when the line
/// holds a carriage return: lines end in `\n` (or `\r\n`), so a file whose
/// lines end in `\r` alone (old Mac software) reads as one long line.
pub fn json_message(text: &str, e: &serde_json::Error) -> String {
    if text.contains('\r') {
        return format!("{e} (the line holds a carriage return, \\r: lines must end in \\n or \\r\\n, not \\r alone)");
    }
    // Python's json.dump writes these unless told allow_nan=False.
    let bare = |word: &str| text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word);
    if e.is_syntax() && (bare("NaN") || bare("Infinity")) {
        return format!("{e} (NaN and Infinity are not JSON numbers, nor a probability or a score)");
    }
    e.to_string()
}

/// Decodes bytes found on line `line`; `part` says which bytes ("column 2"),
/// and is only asked when they are not UTF-8.
pub fn decode<'a>(file: &str, line: usize, bytes: &'a [u8], part: impl FnOnce() -> String) -> Result<&'a str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| invalid_utf8(file, line, bytes, e, &part()))
}

/// Bytes of line `line` that are not UTF-8: where, and what to do. A file
/// that starts with UTF-16's byte order mark (Windows' "Unicode" text) is
/// said to be UTF-16, which the advice for Windows-1252 would not fix.
fn invalid_utf8(file: &str, line: usize, bytes: &[u8], e: std::str::Utf8Error, part: &str) -> Problem {
    if line == 1 && (bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF])) {
        let message = "the file is UTF-16 (it starts with UTF-16's byte order mark); save it as UTF-8";
        return Problem::new(file, line, "encoding", message);
    }
    let byte = e.valid_up_to() + 1;
    let message = format!(
        "invalid UTF-8 at byte {byte} of {part}; convert the file to UTF-8 (SemEval files are often Windows-1252)"
    );
    Problem::new(file, line, "encoding", message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_utf16_file_is_named_as_such() {
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("{\"text\": \"a\"}\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let lines = LineReader::new(&utf16[..], "f.jsonl".into());
        let err = lines.into_iter().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("f.jsonl:1: encoding: the file is UTF-16"), "{err}");
        let err = decode("f.csv", 1, &utf16[..8], || "column 1".into()).unwrap_err().to_string();
        assert!(err.contains("the file is UTF-16"), "{err}");
    }

    #[test]
    fn a_json_line_holding_a_carriage_return_says_how_lines_end() {
        let message = |text: &str| json_message(text, &serde_json::from_str::<serde_json::Value>(text).unwrap_err());
        let joined = message("{\"text\": \"a\"}\r{\"text\": \"b\"}");
        assert!(joined.starts_with("trailing characters") && joined.contains("not \\r alone"), "{joined}");
        assert_eq!(message("{\"text\": }"), "expected value at line 1 column 10");
    }

    /// A stream that hands out one byte per read, to cross every buffer boundary.
    pub(crate) struct Trickle<'a>(pub &'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first().filter(|_| !buf.is_empty()) else { return Ok(0) };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    /// (number, text) of each line, or the problem, read from memory and from a
    /// one-byte stream, which must agree.
    fn read(bytes: &[u8]) -> Vec<Result<(usize, String), String>> {
        let collect = |lines: Vec<Result<Line>>| -> Vec<_> {
            lines.into_iter().map(|l| l.map(|l| (l.number, l.text)).map_err(|e| e.to_string())).collect()
        };
        let memory = collect(LineReader::new(bytes, "f.txt".into()).collect());
        let stream = io::BufReader::with_capacity(1, Trickle(bytes));
        assert_eq!(collect(LineReader::new(stream, "f.txt".into()).collect()), memory);
        memory
    }

    fn ok(lines: &[(usize, &str)]) -> Vec<Result<(usize, String), String>> {
        lines.iter().map(|&(n, t)| Ok((n, t.to_string()))).collect()
    }

    #[test]
    fn splits_lines_with_numbers() {
        assert_eq!(read(b"\xEF\xBB\xBFa\r\n\nb\n"), ok(&[(1, "a"), (2, ""), (3, "b")]));
        assert_eq!(read(b""), ok(&[]));
        assert_eq!(read(b"x"), ok(&[(1, "x")]));
        assert_eq!(read(b"x\r"), ok(&[(1, "x")]));
    }

    #[test]
    fn only_a_leading_bom_goes_and_endings_are_kept_aside() {
        assert_eq!(read(b"a\n\xEF\xBB\xBFb"), ok(&[(1, "a"), (2, "\u{feff}b")]));
        assert_eq!(read(b"\xEF\xBB\xBF"), ok(&[(1, "")]));
        let endings: Vec<&str> = LineReader::new(&b"a\r\nb\nc"[..], "f".into()).map(|l| l.unwrap().ending).collect();
        assert_eq!(endings, ["\r\n", "\n", ""]);
    }

    #[test]
    fn reports_invalid_utf8_with_line_and_reads_on() {
        let got = read(b"ok\r\ncaf\xe9\r\nnext");
        assert!(got[1].as_ref().unwrap_err().contains("f.txt:2: encoding: invalid UTF-8 at byte 4 of the line"));
        assert_eq!((&got[0], &got[2]), (&Ok((1, "ok".into())), &Ok((3, "next".into()))));
        let p = decode("f.txt", 7, b"caf\xe9", || "column 2".into()).unwrap_err();
        assert_eq!((p.line, p.field.as_str()), (7, "encoding"));
        assert!(p.to_string().starts_with("f.txt:7: encoding: invalid UTF-8 at byte 4 of column 2"));
    }

    #[test]
    fn a_read_error_ends_the_lines() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let mut lines = LineReader::new(io::BufReader::new(Failing), "f.txt".into());
        assert!(matches!(lines.next(), Some(Err(Error::Io { .. }))));
        assert!(lines.next().is_none());
    }

    #[test]
    fn skip_bom_reads_the_whole_mark_from_a_trickle() {
        let rest = |bytes: &[u8]| {
            let mut out = Vec::new();
            skip_bom(Trickle(bytes)).unwrap().read_to_end(&mut out).unwrap();
            out
        };
        assert_eq!(rest(b"\xEF\xBB\xBFa,b"), b"a,b");
        assert_eq!(rest(b"\xEF\xBBa"), b"\xEF\xBBa");
        assert_eq!(rest(b"ab"), b"ab");
        assert_eq!(strip_bom(b"\xEF\xBB\xBF{"), b"{");
    }
}
