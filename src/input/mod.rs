//! Reading input files, with one policy whatever the command: [`lines`] (a
//! byte order mark and line endings go, invalid UTF-8 is a problem of its
//! line), [`id`] (what a JSON `id` may be), [`json`] (a key given twice is
//! named, not the last kept) and [`csv`] (header by name,
//! physical line numbers). [`open_records`] and [`read_texts`] read the
//! sentences `predict` and `embed` run over, raw text cut into sentences by
//! [`segment`]; `data` and `evaluation` read
//! labelled records and predictions with the same parts.

pub mod csv;
pub mod id;
pub mod json;
pub mod lines;
pub mod segment;
mod texts;

pub use texts::{open_records, open_texts, read_texts, InputFormat, ReadOptions, Record, Records, Span, TextItem};

/// Whether a text holds nothing to read: whitespace and invisible format
/// characters only (zero-width spaces and joiners, the word joiner, a byte
/// order mark, a soft hyphen), which `str::trim` keeps.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}')
    })
}

/// `text` trimmed and cut after `chars` characters, with "…" where it was
/// cut: how a message quotes a sentence.
pub fn shorten(text: &str, chars: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Removes the SemEval `#SemST` marker hashtag (annotators never saw it) and the
/// trailing spaces TweetEval (SemEval re-released) leaves on every line: what
/// the SemEval and TweetEval readers and a CSV's `Tweet` column read.
pub fn strip_semst(text: &str) -> &str {
    let text = text.trim_end();
    text.strip_suffix("#SemST").map(str::trim_end).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_marker() {
        use super::strip_semst;
        assert_eq!(strip_semst("Think #SemST "), "Think");
        assert_eq!(strip_semst("no marker  "), "no marker");
        assert_eq!(strip_semst("#SemST"), "");
    }

    #[test]
    fn long_sentences_are_shortened_by_characters() {
        assert_eq!(super::shorten(" short ", 60), "short");
        let long = "é".repeat(70);
        assert_eq!(super::shorten(&long, 60), format!("{}…", "é".repeat(60)));
    }

    #[test]
    fn invisible_characters_are_blank_and_letters_are_not() {
        for blank in ["", " \t\n", "\u{200B}", "\u{00A0}\u{200B}\u{3000}", "\u{FEFF}\u{2060}\u{00AD}"] {
            assert!(super::is_blank(blank), "{blank:?}");
        }
        for text in ["a", "\u{200B}a", "🙂", "."] {
            assert!(!super::is_blank(text), "{text:?}");
        }
    }
}
