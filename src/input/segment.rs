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
//! Markup is not scored: markdown images, link URLs, heading marks, list
//! bullets, emphasis marks and HTML tags are removed, HTML entities decoded.
//! A line of markup only (an image, a lone tag, `---`) is skipped; headings,
//! list items and HTML blocks end sentences. A sentence's offsets index the
//! original text and take in the markup at its edges (`## `, `**`, `<p>`).
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

/// HTML elements that stand as blocks: a sentence never runs across their tags.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Named HTML entities common in news pages, with their text.
const ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", " "),
    ("ndash", "–"),
    ("mdash", "—"),
    ("hellip", "…"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("shy", ""),
    ("euro", "€"),
    ("pound", "£"),
    ("deg", "°"),
    ("bull", "•"),
];

/// Markup (a link's URL, a tag) is looked for this far ahead of its start, so
/// that a line full of stray `[` or `<` costs linear time.
const MAX_MARKUP_BYTES: usize = 4096;

/// Where a byte of the scored text came from: document character offsets, end
/// exclusive, widened over the markup removed next to it.
#[derive(Debug, Clone, Copy)]
struct Origin {
    start: usize,
    end: usize,
}

/// A piece of one line's scored text, or a block boundary (a heading, a list
/// item, an HTML block tag), where a sentence ends.
enum Chunk {
    Text(String, Vec<Origin>),
    Break,
}

/// The scored text of `line`, which starts at document character `at`:
/// markdown and HTML markup removed, entities decoded. Its chunks go to `take`
/// as they are made, so that a line of megabytes is held once, not with the
/// origin of each of its bytes.
fn clean_line(line: &str, at: usize, mut take: impl FnMut(Chunk)) {
    if is_rule(line) {
        return;
    }
    let mut cleaner = Cleaner { line, pos: 0, at, next_cut: SCAN_EVERY_BYTES, ..Default::default() };
    let heading = cleaner.line_marker();
    while cleaner.pos < line.len() {
        cleaner.step();
        if cleaner.text.len() >= cleaner.next_cut {
            cleaner.cut();
        }
        cleaner.chunks.drain(..).for_each(&mut take);
    }
    cleaner.flush();
    if heading {
        cleaner.chunks.push(Chunk::Break);
    }
    cleaner.chunks.drain(..).for_each(take);
}

/// `---`, `***`, `===`: a thematic break or a heading's underline, markup only.
fn is_rule(line: &str) -> bool {
    let marks = line.trim();
    marks.len() >= 3 && marks.chars().all(|c| matches!(c, '-' | '*' | '_' | '=' | ' ' | '\t'))
}

/// Builds the scored text of one line and the origin of each of its bytes.
#[derive(Default)]
struct Cleaner<'a> {
    line: &'a str,
    /// Byte position in `line`, and the document character offset there.
    pos: usize,
    at: usize,
    text: String,
    /// One per byte of `text`.
    origins: Vec<Origin>,
    /// Where removed markup that belongs to the next kept character began.
    markup_start: Option<usize>,
    /// Byte ranges of the `](url)` that close the links open, innermost last.
    link_ends: Vec<std::ops::Range<usize>>,
    chunks: Vec<Chunk>,
    /// Length of `text` at which a long line's text so far is next handed on.
    next_cut: usize,
    /// Whether the block's text was cut (handed on in part) already.
    cut_made: bool,
}

impl Cleaner<'_> {
    /// Removes a heading's `#`s or a list item's bullet, which start a block;
    /// says whether the line is a heading (which ends a block too).
    fn line_marker(&mut self) -> bool {
        let body = self.line.trim_start();
        let (len, heading) = match (heading_marker(body), bullet_marker(body)) {
            (Some(len), _) => (len, true),
            (None, Some(len)) => (len, false),
            (None, None) => return false,
        };
        self.block_break();
        self.keep(self.line.len() - body.len());
        self.remove(len);
        heading
    }

    /// Consumes the markup or the character at `pos`.
    fn step(&mut self) {
        let rest = head(&self.line[self.pos..], MAX_MARKUP_BYTES);
        if let Some(end) = self.link_ends.pop_if(|end| end.start == self.pos) {
            self.remove(end.len());
        } else if let Some(tag) = html_tag(rest) {
            self.tag(tag);
        } else if let Some((len, text)) = entity(rest) {
            self.replace(len, &text);
        } else if let Some((_, end)) = rest.strip_prefix('!').and_then(link) {
            // An image: its alt text mostly repeats the headline or caption.
            self.remove(1 + end);
        } else if let Some((text_end, end)) = link(rest) {
            self.link_ends.push(self.pos + text_end..self.pos + end);
            self.remove(1);
        } else if let Some(len) = self.emphasis(rest) {
            self.remove(len);
        } else {
            self.keep(rest.chars().next().map_or(1, char::len_utf8));
        }
    }

    /// A run of `*`, `_` or `` ` `` that opens or closes emphasis or code: it
    /// touches a word on one side only (not `snake_case`, not `2 * 3`).
    fn emphasis(&self, rest: &str) -> Option<usize> {
        let mark = rest.chars().next().filter(|c| matches!(c, '*' | '_' | '`'))?;
        let len = rest.len() - rest.trim_start_matches(mark).len();
        let before = self.line[..self.pos].chars().next_back();
        let after = rest[len..].chars().next();
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let space = |c: Option<char>| c.is_none_or(char::is_whitespace);
        (len <= 3 && !(word(before) && word(after)) && !(space(before) && space(after))).then_some(len)
    }

    /// A `<br>` is a line break; a block's tag ends a sentence.
    fn tag(&mut self, tag: &str) {
        let name: String = tag.trim_start_matches(['<', '/']).chars().take_while(char::is_ascii_alphanumeric).collect();
        let name = name.to_ascii_lowercase();
        if name == "br" {
            return self.replace(tag.len(), "\n");
        }
        if !BLOCK_TAGS.contains(&name.as_str()) {
            return self.remove(tag.len());
        }
        if tag.starts_with("</") {
            // A closing tag ends its block's last sentence and belongs to no later one.
            self.remove(tag.len());
            self.markup_start = None;
            self.block_break();
        } else {
            // An opening tag belongs to its block's first sentence.
            self.block_break();
            self.remove(tag.len());
        }
    }

    fn keep(&mut self, len: usize) {
        let line = self.line;
        for c in line[self.pos..self.pos + len].chars() {
            self.replace(c.len_utf8(), c.encode_utf8(&mut [0; 4]));
        }
    }

    /// Scores `text` for the next `len` bytes of the line.
    fn replace(&mut self, len: usize, text: &str) {
        if text.is_empty() {
            return self.remove(len);
        }
        let span = self.advance(len);
        let origin = Origin { start: self.markup_start.take().unwrap_or(span.start), end: span.end };
        self.text.push_str(text);
        self.origins.resize(self.text.len(), origin);
    }

    /// Drops `len` bytes of markup. Right after a word it closes that word
    /// (`**`, `](url)`, `</a>`) and widens its origin; else it opens the next.
    fn remove(&mut self, len: usize) {
        let span = self.advance(len);
        match self.text.chars().next_back() {
            Some(c) if !c.is_whitespace() => {
                let last = self.text.len() - c.len_utf8();
                self.origins[last..].iter_mut().for_each(|o| o.end = span.end);
            }
            _ => {
                self.markup_start.get_or_insert(span.start);
            }
        }
    }

    /// Moves `len` bytes on; returns the document characters passed.
    fn advance(&mut self, len: usize) -> std::ops::Range<usize> {
        let start = self.at;
        self.at += self.line[self.pos..self.pos + len].chars().count();
        self.pos += len;
        start..self.at
    }

    fn block_break(&mut self) {
        self.flush();
        self.cut_made = false;
        self.chunks.push(Chunk::Break);
    }

    /// Hands on a long line's text mid-line, up to the whitespace after its
    /// last word with a letter or digit in it. What follows stays: markup
    /// closing that word may still widen its origin, and the stream, whose
    /// text then ends in a word and whitespace, keeps the sentence it ends as
    /// unfinished; a dash, quote or bracket left at its end would read as a
    /// sentence's last word (`… 9 p.m. – after`). Text without such a word is
    /// cut before its last character; the stream cuts it into sentences of
    /// [`MAX_SENTENCE_BYTES`].
    fn cut(&mut self) {
        self.next_cut = self.text.len() + SCAN_EVERY_BYTES;
        let at = match after_last_word(&self.text) {
            Some(at) => at,
            None => self.text.char_indices().next_back().map_or(0, |(i, _)| i),
        };
        if super::is_blank(&self.text[..at]) {
            return;
        }
        let (text, origins) = (self.text.split_off(at), self.origins.split_off(at));
        let text = std::mem::replace(&mut self.text, text);
        self.chunks.push(Chunk::Text(text, std::mem::replace(&mut self.origins, origins)));
        self.next_cut = self.text.len() + SCAN_EVERY_BYTES;
        self.cut_made = true;
    }

    /// Hands on the text so far. What a line or block of markup only leaves
    /// (whitespace) is dropped: it joins no sentence. After a cut, whitespace
    /// is kept, since it ends the text handed on before.
    fn flush(&mut self) {
        let (text, origins) = (std::mem::take(&mut self.text), std::mem::take(&mut self.origins));
        if !text.is_empty() && (self.cut_made || !super::is_blank(&text)) {
            self.chunks.push(Chunk::Text(text, origins));
        }
    }
}

/// Where the whitespace after the last word of `text` with a letter or digit
/// in it ends, if whitespace follows that word.
fn after_last_word(text: &str) -> Option<usize> {
    let (mut cut, mut word_has_alphanumeric, mut after_word) = (None, false, false);
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            after_word |= word_has_alphanumeric;
            word_has_alphanumeric = false;
            if after_word {
                cut = Some(i + c.len_utf8());
            }
        } else {
            after_word = false;
            word_has_alphanumeric |= c.is_alphanumeric();
        }
    }
    cut
}

/// The first `max` bytes of `text`, or fewer to end on a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Length of `# `…`###### ` opening `body`, with the spaces after it.
fn heading_marker(body: &str) -> Option<usize> {
    let hashes = body.len() - body.trim_start_matches('#').len();
    marker_len(body, hashes).filter(|_| (1..=6).contains(&hashes))
}

/// Length of `- `, `* `, `+ `, `• `, `1. ` or `1) ` opening `body`, with the spaces after it.
fn bullet_marker(body: &str) -> Option<usize> {
    let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let len = match body.chars().next()? {
        c @ ('-' | '*' | '+' | '•') => c.len_utf8(),
        _ if (1..=3).contains(&digits) && body[digits..].starts_with(['.', ')']) => digits + 1,
        _ => return None,
    };
    marker_len(body, len)
}

/// A marker needs whitespace after it (`-5 °C`, `#1 seed` and `1.5` are text).
fn marker_len(body: &str, len: usize) -> Option<usize> {
    let rest = &body[len..];
    let text = rest.trim_start();
    (len > 0 && text.len() < rest.len()).then_some(body.len() - text.len())
}

/// `<p>`, `</a>`, `<br/>`, `<!-- … -->` opening `rest`.
fn html_tag(rest: &str) -> Option<&str> {
    let body = rest.strip_prefix('<')?;
    let len = if body.starts_with("!--") {
        body.find("-->")? + 3
    } else {
        let name = body.strip_prefix('/').unwrap_or(body);
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '!') {
            return None;
        }
        body.find('>')? + 1
    };
    Some(&rest[..1 + len])
}

/// `&amp;`, `&#8217;` or `&#x2019;` opening `rest`: its length and text.
fn entity(rest: &str) -> Option<(usize, String)> {
    let body = rest.strip_prefix('&')?;
    let end = body.bytes().take(10).position(|b| b == b';')?;
    let name = &body[..end];
    let text = match name.strip_prefix('#') {
        Some(number) => {
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            // A no-break space scores as a space.
            char::from_u32(code).map(|c| if c == '\u{a0}' { ' ' } else { c })?.to_string()
        }
        None => ENTITIES.iter().find(|(n, _)| *n == name)?.1.to_string(),
    };
    Some((end + 2, text))
}

/// `[text](url)` opening `rest`: the byte positions of its `]` and of its end.
fn link(rest: &str) -> Option<(usize, usize)> {
    let text_end = closing(rest, '[', ']')?;
    let url_end = closing(&rest[text_end + 1..], '(', ')')?;
    Some((text_end, text_end + 1 + url_end + 1))
}

/// Position of the bracket that closes the one opening `text`, if it opens with one.
fn closing(text: &str, open: char, close: char) -> Option<usize> {
    if !text.starts_with(open) {
        return None;
    }
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// One sentence of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// 0-based position in the document.
    pub index: usize,
    /// Character (Unicode scalar value) offsets into the document, end
    /// exclusive: the sentence as written, its markup included.
    pub start: usize,
    pub end: usize,
    /// The sentence without markup: the text scored.
    pub text: String,
}

/// Splits a document read a line at a time. Memory holds the line read and
/// about one paragraph (at most one long sentence plus a few KiB, and the
/// origin of each of their bytes), whatever the document's size.
#[derive(Debug, Default)]
pub struct SentenceStream {
    /// Scored text not yet emitted, and the origin of each of its bytes.
    pending: String,
    origins: Vec<Origin>,
    /// Characters of the document read so far.
    read: usize,
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
        let at = self.read;
        self.read += line.chars().count();
        if line.trim().is_empty() {
            // A blank line ends the paragraph: everything pending is final.
            return self.emit(true, out);
        }
        clean_line(line, at, |chunk| self.take(chunk, out));
    }

    fn take(&mut self, chunk: Chunk, out: &mut Vec<Sentence>) {
        match chunk {
            Chunk::Break => return self.emit(true, out),
            // Moved, not copied, when nothing is pending: origins are 16 bytes a byte.
            Chunk::Text(text, origins) if self.pending.is_empty() => (self.pending, self.origins) = (text, origins),
            Chunk::Text(text, origins) => {
                self.pending.push_str(&text);
                self.origins.extend(origins);
            }
        }
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
        for span in &spans[..done] {
            let text = &self.pending[span.clone()];
            let last_char = span.end - text.chars().next_back().map_or(0, char::len_utf8);
            out.push(Sentence {
                index: self.next_index,
                start: self.origins[span.start].start,
                end: self.origins[last_char].end,
                text: text.to_string(),
            });
            self.next_index += 1;
        }
        self.pending.drain(..consumed);
        self.origins.drain(..consumed);
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
