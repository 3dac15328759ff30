//! Sentence segmentation of raw article text (news prose, English).
//!
//! Rules, not a model: a sentence ends at `.`, `!`, `?` or `…` (runs such as
//! `?!` or `...` count once), followed by closing quotes or brackets, then
//! whitespace, then a word that does not start in lower case. A period after an
//! abbreviation ("Mr.", "U.S.", "Feb.", "J.") ends a sentence only when the next
//! word is one that typically opens one ("The", "He", …), or starts the next
//! line. A blank line always ends a sentence, and so does a line break after a
//! line without terminal punctuation (headlines, bylines), unless the text reads
//! on: the next line opens in lower case, or the line ends in a comma or a word
//! like "the" (wrapped prose). Decimals, URLs and the like never split because
//! the period is not followed by whitespace. A quotation of several sentences
//! is split like other text (sentences are scored one by one): the opening
//! quote stays with its first sentence, the closing one and the attribution
//! with its last.
//!
//! [`SentenceStream`] segments text fed a line at a time with bounded memory;
//! [`split_sentences`] is the same for a string in memory.

/// Titles before a name: the period never ends a sentence.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "messrs", "dr", "prof", "sen", "rep", "gov", "gen", "col", "capt", "cmdr", "lt", "sgt", "maj",
    "adm", "st", "rev", "hon", "pres", "mt", "supt", "insp", "det", "amb", "atty",
];

/// Abbreviations before a number ("No. 10", "Fig. 3"): no sentence end when a digit follows.
const NUMBER_PREFIXES: &[&str] = &["no", "nos", "fig", "figs", "vol", "art", "sec", "ch", "p", "pp", "op", "ca"];

/// Abbreviations that may also end a sentence ("… of Apple Inc. The shares …").
const ABBREVIATIONS: &[&str] = &[
    "inc", "ltd", "co", "corp", "plc", "llc", "bros", "jr", "sr", "etc", "vs", "v", "approx", "est", "dept", "univ",
    "assn", "govt", "ave", "blvd", "rd", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "mon", "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun", "al", "cf", "min", "max", "mln", "bln",
];

/// Words that open sentences far more often than they follow an abbreviation.
const SENTENCE_STARTERS: &[&str] = &[
    "A",
    "After",
    "Although",
    "An",
    "And",
    "As",
    "At",
    "Because",
    "Before",
    "But",
    "By",
    "Despite",
    "During",
    "For",
    "From",
    "He",
    "Her",
    "Here",
    "His",
    "How",
    "However",
    "I",
    "If",
    "In",
    "It",
    "Its",
    "Last",
    "Meanwhile",
    "More",
    "Most",
    "My",
    "No",
    "Now",
    "On",
    "Once",
    "One",
    "Only",
    "Our",
    "Over",
    "She",
    "Since",
    "So",
    "Some",
    "Still",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "Those",
    "Though",
    "Under",
    "Until",
    "We",
    "What",
    "When",
    "Where",
    "Whether",
    "Which",
    "While",
    "Who",
    "Why",
    "With",
    "Yet",
    "You",
    "Your",
];

/// Words that leave a phrase open: a line ending in one is wrapped prose, not a headline.
const CONTINUATIONS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as",
    "into", "than", "that", "its", "their", "his", "her", "is", "are", "was", "were", "has", "have", "had", "will",
];

/// Text inside a sentence longer than this is cut, so that a file without any
/// punctuation still streams in bounded memory. The model truncates far sooner.
const MAX_SENTENCE_BYTES: usize = 64 * 1024;

/// How much unsegmented text may pile up before a segmentation pass.
const SCAN_EVERY_BYTES: usize = 8 * 1024;

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»')
}

/// What may stand before the first word of a sentence: opening quotes,
/// brackets and dashes (a quoted or dashed line of dialogue).
fn is_opener(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '‘' | '(' | '[' | '{' | '«' | '-' | '–' | '—')
}

/// Byte ranges of the sentences of one paragraph, trimmed of whitespace.
fn segment(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\n' && line_ends_sentence(&text[..i], &text[i..]) {
            push_trimmed(&mut spans, text, start..i);
            start = i;
        }
        if !is_terminator(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if !(is_terminator(d) || is_closer(d)) {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        let followed_by_space = text[end..].chars().next().is_none_or(char::is_whitespace);
        if followed_by_space && ends_sentence(&text[..i], &text[i..end], &text[end..]) {
            push_trimmed(&mut spans, text, start..end);
            start = end;
        }
    }
    push_trimmed(&mut spans, text, start..text.len());
    spans
}

fn push_trimmed(spans: &mut Vec<std::ops::Range<usize>>, text: &str, range: std::ops::Range<usize>) {
    let slice = &text[range.clone()];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    if lead < slice.len() {
        spans.push(range.start + lead..range.end - trail);
    }
}

/// Whether the terminator run `mark` (with its closers) between `before` and `after` ends a sentence.
fn ends_sentence(before: &str, mark: &str, after: &str) -> bool {
    let next = after.trim_start_matches(|c: char| c.is_whitespace() || is_opener(c));
    let Some(first) = next.chars().next() else { return true };
    if first.is_lowercase() {
        return false;
    }
    // `!`, `?` and ellipses carry no abbreviation.
    if !mark.starts_with('.') || mark.starts_with("..") {
        return true;
    }
    let word = before.rsplit(char::is_whitespace).next().unwrap_or("").trim_start_matches(is_opener);
    if word.is_empty() {
        return true;
    }
    let lower = word.to_lowercase();
    if TITLES.contains(&lower.as_str()) {
        return false;
    }
    if NUMBER_PREFIXES.contains(&lower.as_str()) {
        return !first.is_ascii_digit();
    }
    if is_initial(word) {
        return starts_sentence(next);
    }
    if ABBREVIATIONS.contains(&lower.as_str()) || is_initialism(word) {
        // At a line's end ("Updated 3:04 p.m." over a dateline) a capital opens the next line.
        let line_break = after[..after.len() - next.len()].contains('\n');
        return line_break || starts_sentence(next);
    }
    true
}

/// Whether the line break between `before` and `after` ends a sentence: a
/// headline or byline carries no terminal punctuation, so a line without it
/// ends one, unless it reads as wrapped prose (the next line opens in lower
/// case, or this one ends mid-phrase).
fn line_ends_sentence(before: &str, after: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or("").trim_end().trim_end_matches(is_closer);
    if line.trim_start().is_empty() || line.ends_with(is_terminator) || line.ends_with(is_continuation_mark) {
        return false;
    }
    let last = line.rsplit(char::is_whitespace).next().unwrap_or("");
    if CONTINUATIONS.contains(&last) {
        return false;
    }
    let next = after.trim_start_matches(|c: char| c.is_whitespace() || is_opener(c));
    !next.starts_with(char::is_lowercase)
}

/// A line ending in these goes on: the marks of a clause or a hyphenated word.
fn is_continuation_mark(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '-' | '–' | '—' | '&')
}

/// "J" in "John J. Smith".
fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_uppercase())
}

/// "U.S", "e.g", "a.m", "Ph.D": short letter groups joined by periods.
fn is_initialism(word: &str) -> bool {
    word.contains('.')
        && word.split('.').all(|part| (1..=2).contains(&part.chars().count()) && part.chars().all(char::is_alphabetic))
}

fn starts_sentence(next: &str) -> bool {
    let word: String = next.chars().take_while(|c| c.is_alphabetic()).collect();
    SENTENCE_STARTERS.contains(&word.as_str())
}

/// One sentence of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// 0-based position in the document.
    pub index: usize,
    /// Character (Unicode scalar value) offsets into the document, end exclusive.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Splits a document read a line at a time. Memory holds about one paragraph
/// (at most one long sentence plus a few KiB), whatever the document's size.
#[derive(Debug, Default)]
pub struct SentenceStream {
    /// Text not yet emitted; starts at document character `offset`.
    pending: String,
    offset: usize,
    /// Length of `pending` at the last segmentation pass.
    scanned: usize,
    next_index: usize,
}

impl SentenceStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line, with its line ending; finished sentences go to `out`.
    pub fn push_line(&mut self, line: &str, out: &mut Vec<Sentence>) {
        if line.trim().is_empty() {
            // A blank line ends the paragraph: everything pending is final.
            self.emit(true, out);
            self.offset += line.chars().count();
            return;
        }
        self.pending.push_str(line);
        if self.pending.len() >= self.scanned + SCAN_EVERY_BYTES {
            self.emit(false, out);
        }
    }

    /// Ends the document.
    pub fn finish(&mut self, out: &mut Vec<Sentence>) {
        self.emit(true, out);
    }

    /// Emits every finished sentence; the last one of the paragraph may still
    /// grow unless `all` (or it has grown past [`MAX_SENTENCE_BYTES`]).
    fn emit(&mut self, all: bool, out: &mut Vec<Sentence>) {
        let spans = segment(&self.pending);
        let keep_last = !all && spans.last().is_some_and(|s| s.len() < MAX_SENTENCE_BYTES);
        let done = if keep_last { spans.len() - 1 } else { spans.len() };
        let consumed = if keep_last { spans[done].start } else { self.pending.len() };
        let mut chars_before = 0;
        let mut last_byte = 0;
        for span in &spans[..done] {
            chars_before += self.pending[last_byte..span.start].chars().count();
            let length = self.pending[span.clone()].chars().count();
            out.push(Sentence {
                index: self.next_index,
                start: self.offset + chars_before,
                end: self.offset + chars_before + length,
                text: self.pending[span.clone()].to_string(),
            });
            self.next_index += 1;
            chars_before += length;
            last_byte = span.end;
        }
        self.offset += chars_before + self.pending[last_byte..consumed].chars().count();
        self.pending.drain(..consumed);
        self.scanned = self.pending.len();
    }
}

/// Splits a whole document into sentences.
pub fn split_sentences(text: &str) -> Vec<Sentence> {
    let mut stream = SentenceStream::new();
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        stream.push_line(line, &mut out);
    }
    stream.finish(&mut out);
    out
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
