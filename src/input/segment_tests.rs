use super::*;

fn texts(text: &str) -> Vec<String> {
    split_sentences(text).into_iter().map(|s| s.text).collect()
}

#[test]
fn abbreviations_initials_and_decimals_do_not_split() {
    let text = "Mr. Smith met Dr. Jones in the U.S. Senate on Feb. 3 at 9 a.m. local time. \
                Growth was 3.5 per cent, said John F. Kennedy Jr. of Acme Inc. in Washington, D.C. on Tuesday. \
                See No. 10 and example.com, e.g. the EU.";
    assert_eq!(
        texts(text),
        [
            "Mr. Smith met Dr. Jones in the U.S. Senate on Feb. 3 at 9 a.m. local time.",
            "Growth was 3.5 per cent, said John F. Kennedy Jr. of Acme Inc. in Washington, D.C. on Tuesday.",
            "See No. 10 and example.com, e.g. the EU.",
        ]
    );
}

#[test]
fn an_abbreviation_can_end_a_sentence() {
    assert_eq!(
        texts("Troops left the U.S. The talks resume in Feb. It will be hard. Shares of Acme Inc. They fell."),
        ["Troops left the U.S.", "The talks resume in Feb.", "It will be hard.", "Shares of Acme Inc.", "They fell."]
    );
    assert_eq!(texts("The answer was no. We left."), ["The answer was no.", "We left."]);
}

#[test]
fn quotes_and_brackets_stay_with_their_sentence() {
    let text = "\"We will never give up.\" He left. \"Why?\" she asked. (The vote was close.) \
                'Enough!' Then silence.";
    assert_eq!(
        texts(text),
        [
            "\"We will never give up.\"",
            "He left.",
            "\"Why?\" she asked.",
            "(The vote was close.)",
            "'Enough!'",
            "Then silence."
        ]
    );
}

#[test]
fn dashes_ellipses_and_runs_of_marks() {
    let text = "The vote — held on Feb. 3 — passed. — Critics disagreed. Really?! Yes... and no… Maybe. \
                The end... Then more.";
    assert_eq!(
        texts(text),
        [
            "The vote — held on Feb. 3 — passed.",
            "— Critics disagreed.",
            "Really?!",
            "Yes... and no…",
            "Maybe.",
            "The end...",
            "Then more."
        ]
    );
}

#[test]
fn blank_lines_end_headlines_and_single_newlines_do_not() {
    let text = "War in Europe\n\nThe army moved\nwest on Monday. Talks failed.\n  \nNew paragraph";
    assert_eq!(texts(text), ["War in Europe", "The army moved\nwest on Monday.", "Talks failed.", "New paragraph"]);
}

#[test]
fn offsets_are_characters_into_the_document() {
    let text = "Übersee – café. Ça va?\n\n  Naïve «test» here.";
    let chars: Vec<char> = text.chars().collect();
    let sentences = split_sentences(text);
    assert_eq!(sentences.len(), 3);
    for (i, s) in sentences.iter().enumerate() {
        assert_eq!(s.index, i);
        assert_eq!(chars[s.start..s.end].iter().collect::<String>(), s.text);
    }
    assert_eq!((sentences[2].start, sentences[2].end), (26, 44));
}

#[test]
fn streaming_a_long_paragraph_matches_whole_text_segmentation() {
    let unit = "Mr. Smith said the U.S. Army moved on Feb. 3, and it was 2.5 km. The end came! ";
    let text: String = std::iter::repeat_n(unit, 1000).collect::<Vec<_>>().join("\n");
    let whole = segment(&text);
    let streamed = split_sentences(&text);
    assert!(text.len() > 4 * SCAN_EVERY_BYTES);
    assert_eq!(streamed.len(), whole.len());
    for (s, w) in streamed.iter().zip(&whole) {
        assert_eq!(s.text, &text[w.clone()]);
        assert_eq!(s.start, text[..w.start].chars().count());
    }
}

#[test]
fn a_text_without_punctuation_is_cut_into_bounded_pieces() {
    let line = "word ".repeat(1000) + "\n";
    let mut stream = SentenceStream::new();
    let mut out = Vec::new();
    for _ in 0..100 {
        stream.push_line(&line, &mut out);
        assert!(stream.pending.len() < MAX_SENTENCE_BYTES + 2 * SCAN_EVERY_BYTES);
    }
    stream.finish(&mut out);
    assert!(out.len() > 1);
    assert_eq!(out.iter().map(|s| s.text.split_whitespace().count()).sum::<usize>(), 100_000);
}

/// A line of megabytes is handed on as it is cleaned (its origins are 16
/// bytes a byte): cut mid-line, markup across the cuts included, it splits
/// as its repeated unit does alone.
#[test]
fn a_long_line_streams_and_splits_as_its_parts_do() {
    let unit =
        "Mr. Smith said the **U.S.** Army [moved](http://x.y) on Feb. 3, and it was 2.5 km. The end &amp; more came! ";
    let line = unit.repeat(1000);
    assert!(line.len() > 8 * SCAN_EVERY_BYTES);
    let mut stream = SentenceStream::new();
    let mut out = Vec::new();
    stream.push_line(&line, &mut out);
    assert!(stream.pending.len() < 2 * SCAN_EVERY_BYTES, "{} bytes pending", stream.pending.len());
    assert!(out.len() > 1900, "sentences are emitted before the line is whole");
    stream.finish(&mut out);
    let alone = split_sentences(unit);
    let (alone_written, written_out) = (written(unit, &alone), written(&line, &out));
    assert_eq!(alone.len(), 2);
    assert_eq!(out.len(), 2000);
    for (i, s) in out.iter().enumerate() {
        let a = &alone[i % 2];
        assert_eq!((s.index, &s.text, &written_out[i]), (i, &a.text, &alone_written[i % 2]));
        assert_eq!(s.start, a.start + i / 2 * unit.chars().count());
    }
}

#[test]
fn a_long_line_without_spaces_or_punctuation_is_cut_into_bounded_pieces() {
    for (piece, count) in [("word ", 200_000), ("é", 400_000)] {
        let line = piece.repeat(count);
        let mut stream = SentenceStream::new();
        let mut out = Vec::new();
        stream.push_line(&line, &mut out);
        assert!(stream.pending.len() < MAX_SENTENCE_BYTES + 2 * SCAN_EVERY_BYTES);
        stream.finish(&mut out);
        assert!(out.len() > 5, "{piece:?}");
        assert!(out.iter().all(|s| s.text.len() < MAX_SENTENCE_BYTES + 2 * SCAN_EVERY_BYTES), "{piece:?}");
        let joined: String = out.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        assert_eq!(joined.split_whitespace().collect::<String>(), line.split_whitespace().collect::<String>());
        assert_eq!(out.last().unwrap().end, line.chars().count() - usize::from(piece.ends_with(' ')));
    }
}

/// A cut never leaves a dash, quote or bracket at the end of the text handed
/// on, where it would read as a sentence's last word: wherever the cuts fall,
/// a long line splits as the same text in short lines does.
#[test]
fn a_cut_line_splits_as_its_short_lines_do() {
    let unit = "The committee met on Tuesday and discussed the budget for next year. ";
    let tricky = " The vote ended at 9 p.m. – after hours of debate. Mr. ( and “ Dr. Smith ” agreed. ";
    for pad in 0..40 {
        let line = format!("{}{}{tricky}{}", "x ".repeat(pad), unit.repeat(118), unit.repeat(200));
        let lines = line.replace(". ", ".\n");
        let (long, short) = (texts(&line), texts(&lines));
        assert_eq!(long.len(), short.len(), "pad {pad}");
        assert!(long.iter().any(|s| s == "The vote ended at 9 p.m. – after hours of debate."), "pad {pad}");
    }
    assert_eq!(after_last_word("said. – “ ("), Some(6));
    assert_eq!(after_last_word("a  b "), Some(5));
    assert_eq!((after_last_word(" xxx"), after_last_word("– ")), (None, None));
}

/// A long line that opens with whitespace, then runs without any, is cut too.
#[test]
fn a_long_word_after_leading_space_is_cut_into_bounded_pieces() {
    for line in [format!(" {}", "x".repeat(300_000)), format!("<p> {}", "y".repeat(300_000))] {
        let mut stream = SentenceStream::new();
        let mut out = Vec::new();
        stream.push_line(&line, &mut out);
        assert!(stream.pending.len() < MAX_SENTENCE_BYTES + 2 * SCAN_EVERY_BYTES);
        stream.finish(&mut out);
        assert!(out.len() > 3 && out.iter().all(|s| s.text.len() < MAX_SENTENCE_BYTES + 2 * SCAN_EVERY_BYTES));
    }
}

/// After a cut, what markup leaves at the line's end still separates it from
/// the next line's text.
#[test]
fn a_cut_line_ending_in_markup_keeps_its_line_break() {
    let text = "word ".repeat(3000) + "<img src=\"x\">\nNext line here.\n";
    let sentences = texts(&text);
    assert_eq!(
        sentences.len(),
        2,
        "{:?}",
        sentences.iter().map(|s| &s[s.len().saturating_sub(30)..]).collect::<Vec<_>>()
    );
    assert_eq!((sentences[0].split_whitespace().count(), sentences[1].as_str()), (3000, "Next line here."));
}

#[test]
fn a_line_without_terminal_punctuation_ends_a_sentence() {
    let text = "Kyiv braces for talks\nBy Jane Doe, Reuters\nUpdated 3:04 PM EST\n\
                KYIV, Feb 11 (Reuters) – Ukraine said on Tuesday it would attend.\n";
    assert_eq!(
        texts(text),
        [
            "Kyiv braces for talks",
            "By Jane Doe, Reuters",
            "Updated 3:04 PM EST",
            "KYIV, Feb 11 (Reuters) – Ukraine said on Tuesday it would attend."
        ]
    );
}

#[test]
fn wrapped_prose_and_datelines_read_on() {
    let text = "The talks, held in\nGeneva, failed;\nMinisters blamed the\nRussian side and\n\"Ukraine\" for it.\n\
                KYIV, Feb. 11 (Reuters) - Ukraine said Mr.\nSmith would go.\n";
    assert_eq!(
        texts(text),
        [
            "The talks, held in\nGeneva, failed;\nMinisters blamed the\nRussian side and\n\"Ukraine\" for it.",
            "KYIV, Feb. 11 (Reuters) - Ukraine said Mr.\nSmith would go."
        ]
    );
}

#[test]
fn an_abbreviation_at_a_line_end_ends_a_byline() {
    let text = "Updated 3:04 p.m.\nKYIV, Feb 11 (Reuters) – Talks failed at 9 a.m.\nlocal time.";
    assert_eq!(texts(text), ["Updated 3:04 p.m.", "KYIV, Feb 11 (Reuters) – Talks failed at 9 a.m.\nlocal time."]);
}

#[test]
fn a_quotation_of_several_sentences_is_split_sentence_by_sentence() {
    assert_eq!(
        texts("\"We will fight. We will win,\" he said. \"Never!\"\n"),
        ["\"We will fight.", "We will win,\" he said.", "\"Never!\""]
    );
}

/// The original text each sentence's offsets point to.
fn written(text: &str, sentences: &[Sentence]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    sentences.iter().map(|s| chars[s.start..s.end].iter().collect()).collect()
}

fn assert_offsets_hold_the_words(text: &str, sentences: &[Sentence]) {
    for (s, written) in sentences.iter().zip(written(text, sentences)) {
        for word in s.text.split_whitespace() {
            assert!(written.contains(word), "{word:?} is not in {written:?}");
        }
    }
}

/// The seed article's sentences as committed: one row per sentence and target.
fn committed_article_sentences() -> Vec<String> {
    let rows = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/article.jsonl")).unwrap();
    let mut texts: Vec<String> = Vec::new();
    for row in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(row).unwrap();
        let text = row["text"].as_str().unwrap();
        if !texts.iter().any(|t| t == text) {
            texts.push(text.to_string());
        }
    }
    texts
}

#[test]
fn the_seed_article_splits_as_its_committed_sentences() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/news/seed_article.txt")).unwrap();
    let sentences = split_sentences(&text);
    let expected = committed_article_sentences();
    assert_eq!(expected.len(), 19);
    assert_eq!(sentences.iter().map(|s| s.text.clone()).collect::<Vec<_>>(), expected);
    assert_offsets_hold_the_words(&text, &sentences);
}

#[test]
fn html_markup_is_not_scored_but_offsets_cover_it() {
    let text = "<div class=\"story\">\n<h1>Kyiv braces for talks</h1>\n\
                <p class=\"byline\">By <a href=\"/jane\">Jane Doe</a>, Reuters</p>\n\
                <p>KYIV &ndash; Talks with Russia&#8217;s envoys failed.<br/>They resume on Monday &amp; Tuesday.</p>\n\
                <p>Officials&nbsp;said <b>nothing</b>.</p><p>No date was set.</p><!-- ad -->\n</div>\n";
    let sentences = split_sentences(text);
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Kyiv braces for talks",
            "By Jane Doe, Reuters",
            "KYIV – Talks with Russia’s envoys failed.",
            "They resume on Monday & Tuesday.",
            "Officials said nothing.",
            "No date was set."
        ]
    );
    assert_eq!(
        written(text, &sentences),
        [
            "<h1>Kyiv braces for talks</h1>",
            "<p class=\"byline\">By <a href=\"/jane\">Jane Doe</a>, Reuters</p>",
            "<p>KYIV &ndash; Talks with Russia&#8217;s envoys failed.",
            "They resume on Monday &amp; Tuesday.</p>",
            "<p>Officials&nbsp;said <b>nothing</b>.</p>",
            "<p>No date was set.</p>"
        ]
    );
}

#[test]
fn markdown_headings_bullets_links_and_emphasis_are_stripped() {
    let text = "# Kyiv braces for talks\n\n**By Jane Doe**, _Reuters_\n\n## What we know\n\
                - Talks failed on *Monday*.\n* A [second round](https://example.com/a_(b)) is planned\n\
                1. Envoys left `Geneva`\n2) Sanctions stay\n\n---\n\nUse file_name and 2 * 3 = 6.\n";
    let sentences = split_sentences(text);
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Kyiv braces for talks",
            "By Jane Doe, Reuters",
            "What we know",
            "Talks failed on Monday.",
            "A second round is planned",
            "Envoys left Geneva",
            "Sanctions stay",
            "Use file_name and 2 * 3 = 6."
        ]
    );
    let written = written(text, &sentences);
    assert_eq!(written[..3], ["# Kyiv braces for talks", "**By Jane Doe**, _Reuters_", "## What we know"]);
    assert_eq!(written[4], "* A [second round](https://example.com/a_(b)) is planned");
    assert_eq!(written[6], "2) Sanctions stay");
}

#[test]
fn a_line_of_markup_only_is_skipped() {
    let text = "The army moved\n![A map of the front](https://example.com/map.png?w=620&fit=cover)\n\
                [![logo](logo.png)](https://example.com)\n<div>\n\
                west on Monday. Talks failed\n<hr/>\n***\nThe end\n";
    let sentences = split_sentences(text);
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["The army moved", "west on Monday.", "Talks failed", "The end"]);
    assert_offsets_hold_the_words(text, &sentences);
    let text = "The army moved\n![A map](map.png)\nwest on Monday.";
    assert_eq!(written(text, &split_sentences(text)), [text]);
}
