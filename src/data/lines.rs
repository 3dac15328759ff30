//! Line-by-line decoding shared by the readers, so an encoding problem is
//! reported on its own line instead of failing the whole file.

use crate::error::Problem;

/// The lines of a file as (1-based line number, bytes), without line terminators.
/// A final newline does not start another line.
pub(crate) fn split(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    body.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(move |_| !empty)
}

/// Decodes one line as UTF-8, or says where it is not.
pub(crate) fn decode<'a>(file: &str, line: usize, bytes: &'a [u8]) -> Result<&'a str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| Problem {
        file: file.to_string(),
        line,
        field: "encoding".into(),
        message: format!(
            "invalid UTF-8 at byte {} of the line; convert the file to UTF-8 \
             (SemEval files are often Windows-1252)",
            e.valid_up_to() + 1
        ),
    })
}

/// Removes the SemEval `#SemST` marker hashtag (annotators never saw it) and the
/// trailing spaces TweetEval leaves on every line.
pub(crate) fn strip_semst(text: &str) -> &str {
    let text = text.trim_end();
    text.strip_suffix("#SemST").map(str::trim_end).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_with_numbers() {
        let lines: Vec<_> = split(b"\xEF\xBB\xBFa\r\n\nb\n").collect();
        assert_eq!(lines, vec![(1, &b"a"[..]), (2, &b""[..]), (3, &b"b"[..])]);
        assert_eq!(split(b"").count(), 0);
        assert_eq!(split(b"x").count(), 1);
    }

    #[test]
    fn reports_invalid_utf8_with_line() {
        let p = decode("f.txt", 7, b"caf\xe9").unwrap_err();
        assert_eq!((p.line, p.field.as_str()), (7, "encoding"));
        assert!(p.to_string().starts_with("f.txt:7: encoding: invalid UTF-8 at byte 4"));
    }

    #[test]
    fn strips_marker() {
        assert_eq!(strip_semst("Think #SemST "), "Think");
        assert_eq!(strip_semst("no marker  "), "no marker");
        assert_eq!(strip_semst("#SemST"), "");
    }
}
