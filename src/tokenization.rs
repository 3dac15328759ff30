//! Turns (target description, sentence) pairs into padded id tensors.
//!
//! The shipped `tokenizer.json` of the default model pads every batch to 128 and
//! truncates both members of a pair; both settings are replaced here: no padding
//! inside the tokenizer (batches are padded to their longest member) and
//! truncation of the sentence only, never of the target.

use std::path::Path;

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// The fewest tokens a max length may allow: a pair's special tokens alone
/// take 3 (BERT) or 4 (MPNet), and a word of the sentence one more.
pub const MIN_MAX_LENGTH: usize = 5;

/// One tokenised example, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// The index of the example's target, for a head with a classifier per target.
    pub target: Option<u32>,
    /// Its sentence was longer than the model's token limit and was cut to it.
    pub truncated: bool,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A padded batch as the encoder reads it; every tensor is [batch, seq] of u32.
#[derive(Debug, Clone)]
pub struct Batch {
    pub input_ids: Tensor,
    pub token_type_ids: Tensor,
    pub attention_mask: Tensor,
    /// `[batch]` target indices, when every example has one.
    pub targets: Option<Tensor>,
}

impl Batch {
    /// Examples `start..start + len` of the batch, with the same padded length.
    pub fn narrow(&self, start: usize, len: usize) -> candle_core::Result<Self> {
        let rows = |t: &Tensor| t.narrow(0, start, len);
        Ok(Self {
            input_ids: rows(&self.input_ids)?,
            token_type_ids: rows(&self.token_type_ids)?,
            attention_mask: rows(&self.attention_mask)?,
            targets: self.targets.as_ref().map(rows).transpose()?,
        })
    }

    /// Pads to the longest example of the batch.
    pub fn from_encoded<'a>(
        items: impl IntoIterator<Item = &'a Encoded>,
        pad_id: u32,
        device: &Device,
    ) -> Result<Self> {
        let items: Vec<&Encoded> = items.into_iter().collect();
        let len = items.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(items.len() * len);
        let mut types = Vec::with_capacity(items.len() * len);
        let mut mask = Vec::with_capacity(items.len() * len);
        for e in &items {
            let pad = len - e.len();
            ids.extend(e.ids.iter().copied().chain(std::iter::repeat_n(pad_id, pad)));
            types.extend(e.type_ids.iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(std::iter::repeat_n(1u32, e.len()).chain(std::iter::repeat_n(0, pad)));
        }
        let shape = (items.len(), len);
        let targets: Option<Vec<u32>> = items.iter().map(|e| e.target).collect();
        Ok(Self {
            input_ids: Tensor::from_vec(ids, shape, device)?,
            token_type_ids: Tensor::from_vec(types, shape, device)?,
            attention_mask: Tensor::from_vec(mask, shape, device)?,
            targets: targets.map(|t| Tensor::new(t, device)).transpose()?,
        })
    }
}

/// A `tokenizer.json` configured for stance pairs and for single sentences.
#[derive(Clone)]
pub struct StanceTokenizer {
    pairs: Tokenizer,
    singles: Tokenizer,
    max_length: usize,
    pad_id: u32,
}

impl StanceTokenizer {
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let base = Tokenizer::from_file(path).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::new(base, max_length)
    }

    pub fn new(mut base: Tokenizer, max_length: usize) -> Result<Self> {
        let pad_id = base
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| base.token_to_id("[PAD]"))
            .or_else(|| base.token_to_id("<pad>"))
            .unwrap_or(0);
        base.with_padding(None);
        let pairs = with_truncation(base.clone(), max_length, TruncationStrategy::OnlySecond)?;
        let singles = with_truncation(base, max_length, TruncationStrategy::LongestFirst)?;
        Ok(Self { pairs, singles, max_length, pad_id })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.pairs.token_to_id(token)
    }

    /// Encodes (target description, sentence) pairs; only the sentence is truncated.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>> {
        self.encode_capped(pairs.iter().map(|p| p.1).collect(), 1, |which, sentences| {
            let inputs: Vec<tokenizers::EncodeInput> =
                which.iter().zip(sentences).map(|(&i, &b)| (pairs[i].0, b).into()).collect();
            self.pairs.encode_batch(inputs, true).map_err(|e| {
                let longest = pairs.iter().map(|p| p.0).max_by_key(|t| t.len()).unwrap_or_default();
                Error::Tokenizer(format!(
                    "cannot fit pairs into {} tokens (is the target description {longest:?} too long?): {e}",
                    self.max_length
                ))
            })
        })
    }

    /// Encodes single sentences (embeddings), truncated to the maximum length.
    pub fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        self.encode_capped(texts.to_vec(), 0, |_, texts| {
            let inputs: Vec<tokenizers::EncodeInput> = texts.iter().map(|&t| t.into()).collect();
            self.singles.encode_batch(inputs, true).map_err(|e| Error::Tokenizer(e.to_string()))
        })
    }

    /// `encode` over the sentences (sequence `sequence` of each input) cut at
    /// a word boundary near `CAP_BYTES_PER_TOKEN` bytes per token allowed. The
    /// tokenizer encodes a text whole and keeps what truncation cuts off, so a
    /// 20 MB line took 2 GB to keep 128 tokens. A cut sentence is taken when
    /// the tokens kept all end before its last word ([`kept_before_last_word`]):
    /// they come from words the cut left whole, which tokenize as in the whole
    /// text. Any other is encoded again from more of its text. `encode` is
    /// given the positions of the inputs it encodes, and their sentences.
    fn encode_capped<'t>(
        &self,
        mut sentences: Vec<&'t str>,
        sequence: usize,
        encode: impl Fn(&[usize], &[&'t str]) -> Result<Vec<tokenizers::Encoding>>,
    ) -> Result<Vec<Encoded>> {
        let mut cap = self.max_length.saturating_mul(CAP_BYTES_PER_TOKEN);
        let whole = sentences.clone();
        sentences.iter_mut().for_each(|s| *s = cut_at_word(s, cap));
        let all: Vec<usize> = (0..sentences.len()).collect();
        let mut encoded = encode(&all, &sentences)?;
        loop {
            let cut = |i: usize| sentences[i].len() < whole[i].len();
            let retry: Vec<usize> = (0..whole.len())
                .filter(|&i| cut(i) && !kept_before_last_word(&encoded[i], sentences[i], sequence))
                .collect();
            if retry.is_empty() {
                return Ok(encoded.iter().map(to_encoded).collect());
            }
            cap = cap.saturating_mul(8);
            let longer: Vec<&str> = retry.iter().map(|&i| cut_at_word(whole[i], cap)).collect();
            for (&i, (text, again)) in retry.iter().zip(longer.iter().zip(encode(&retry, &longer)?)) {
                (sentences[i], encoded[i]) = (text, again);
            }
        }
    }

    /// The tokenizer as it was loaded, less padding: what a run folder saves.
    pub fn to_json(&self) -> Result<String> {
        let mut t = self.singles.clone();
        t.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        t.to_string(true).map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// Bytes of a sentence read per token allowed: English news runs at 4–6 bytes
/// a token, so a cut at this many almost always leaves more than fit.
const CAP_BYTES_PER_TOKEN: usize = 32;

/// Whether truncation cut `encoding` (of the cut text `cut`, sequence
/// `sequence`) and every token it kept of the sentence ends before the cut
/// text's last word: that word, which the cut may have shortened or which a
/// normalizer may join to what followed it (a form feed that BERT deletes),
/// then has no token kept, and the tokens kept are the whole text's.
fn kept_before_last_word(encoding: &tokenizers::Encoding, cut: &str, sequence: usize) -> bool {
    let text = cut.trim_end();
    let last_word = text.rfind(is_separator).map_or(0, |i| i + 1);
    let kept = encoding.get_sequence_ids().into_iter().zip(encoding.get_offsets());
    let end = kept.filter(|(s, _)| *s == Some(sequence)).map(|(_, &(_, end))| end).max().unwrap_or(0);
    !encoding.get_overflowing().is_empty() && end <= last_word
}

/// Whitespace that every tokenizer splits words at. Not all of Unicode's: a
/// form feed, a vertical tab or U+0085 is a control character that BERT's
/// normalizer deletes, joining the words around it into one.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `text` up to the last whitespace before `cap` bytes (whole if shorter, or
/// if no whitespace comes before: a cut inside a word could tokenize it otherwise).
fn cut_at_word(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text[..end].rfind(is_separator) {
        Some(space) if space > 0 => &text[..space],
        _ => text,
    }
}

fn with_truncation(mut t: Tokenizer, max_length: usize, strategy: TruncationStrategy) -> Result<Tokenizer> {
    let params = TruncationParams { max_length, strategy, stride: 0, direction: TruncationDirection::Right };
    t.with_truncation(Some(params)).map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(t)
}

fn to_encoded(e: &tokenizers::Encoding) -> Encoded {
    // With truncation on, what was cut off is kept as the encoding's overflow.
    let truncated = !e.get_overflowing().is_empty();
    Encoded { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec(), target: None, truncated }
}

/// Runs `forward` over `encoded` in batches of similar length (padding is the
/// main waste at these sizes), and returns one output row per input, in input order.
/// On CPU the batches run side by side on rayon's threads: one batch's ops are
/// too small to scale well across cores, whole batches do.
pub fn run_sorted(
    encoded: &[Encoded],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    forward: impl Fn(&Batch) -> Result<Tensor> + Sync,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| encoded[i].len());
    let chunks: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
    let run = |chunk: &&[usize]| -> Result<Vec<Vec<f32>>> {
        let batch = Batch::from_encoded(chunk.iter().map(|&i| &encoded[i]), pad_id, device)?;
        let out = forward(&batch)?.to_device(&Device::Cpu)?.to_dtype(candle_core::DType::F32)?;
        Ok(out.to_vec2::<f32>()?)
    };
    let outputs: Vec<Vec<Vec<f32>>> = if device.is_cpu() {
        chunks.par_iter().map(run).collect::<Result<_>>()?
    } else {
        chunks.iter().map(run).collect::<Result<_>>()?
    };
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    for (chunk, out) in chunks.iter().zip(outputs) {
        for (&i, row) in chunk.iter().zip(out) {
            rows[i] = row;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_tokenizer;

    #[test]
    fn pairs_truncate_only_the_sentence() {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 10).unwrap();
        let long = "the war must end and the war must end and the war must end";
        let both = tok.encode_pairs(&[("ukraine joining nato", long), ("ukraine joining nato", "the war")]).unwrap();
        let enc = &both[0];
        assert_eq!(enc.len(), 10);
        assert_eq!((enc.truncated, both[1].truncated), (true, false));
        let texts = tok.encode_texts(&[long, "the war"]).unwrap();
        assert_eq!((texts[0].truncated, texts[1].truncated), (true, false));
        // [CLS] ukraine joining nato [SEP] → five type-0 tokens survive whole.
        assert_eq!(enc.type_ids.iter().filter(|t| **t == 0).count(), 5);
        assert_eq!(*enc.ids.last().unwrap(), tok.pairs.token_to_id("[SEP]").unwrap());
    }

    /// A sentence far past the limit is encoded from a cut of its text, to
    /// the same tokens as from the whole; one whose first words are mostly
    /// spaces is read on until it fills the limit.
    #[test]
    fn long_sentences_encode_as_whole_ones_from_a_cut() {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 10).unwrap();
        let whole = with_truncation(tiny_tokenizer(), 10, TruncationStrategy::LongestFirst).unwrap();
        let long = "the war must end ".repeat(1000);
        let spaced = format!("the war{}must end and the war must end", " ".repeat(5000));
        for text in [long.as_str(), spaced.as_str(), "the war"] {
            let got = &tok.encode_texts(&[text]).unwrap()[0];
            let want = to_encoded(&whole.encode(text, true).unwrap());
            assert_eq!((&got.ids, got.truncated), (&want.ids, want.truncated), "{}", &text[..20.min(text.len())]);
            let pair = &tok.encode_pairs(&[("ukraine", text)]).unwrap()[0];
            assert_eq!(pair.truncated, text.len() > 100, "{}", &text[..20.min(text.len())]);
        }
        // The long text is taken from its first cut, not encoded whole after all.
        let cut = cut_at_word(&long, 10 * CAP_BYTES_PER_TOKEN);
        assert!(cut.len() < long.len());
        for (encoding, sequence) in
            [(whole.encode(cut, true).unwrap(), 0), (tok.pairs.encode(("ukraine", cut), true).unwrap(), 1)]
        {
            assert!(kept_before_last_word(&encoding, cut, sequence), "sequence {sequence}");
        }
        assert!(!kept_before_last_word(&whole.encode("the war", true).unwrap(), "the war", 0), "not truncated");
        assert_eq!(cut_at_word("ab cd ef", 6), "ab cd");
        assert_eq!(cut_at_word("abcdef gh", 4), "abcdef gh", "no cut inside the first word");
        assert_eq!(cut_at_word("é é é", 4), "é", "cuts on char boundaries");
        assert_eq!(cut_at_word("ab\x0ccd ef", 4), "ab\x0ccd ef", "a form feed joins words in BERT: no cut there");
    }

    /// A sentence encoded again from more of its text keeps its own pair's
    /// description: the first cut of a spaced-out sentence fills the limit
    /// beside a long description, not beside a short one, so of these two
    /// pairs only the second is encoded again.
    #[test]
    fn a_pair_encoded_again_keeps_its_description() {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 12).unwrap();
        // Six words in the first cut (12 × 32 bytes): the first pair keeps 4 of them, the second all.
        let spaced = format!("x{}", " ".repeat(70)).repeat(20);
        let pairs = [("a b c d e", spaced.as_str()), ("a", spaced.as_str())];
        let both = tok.encode_pairs(&pairs).unwrap();
        for (pair, got) in pairs.iter().zip(&both) {
            let alone = &tok.encode_pairs(&[*pair]).unwrap()[0];
            let whole = to_encoded(&tok.pairs.encode(*pair, true).unwrap());
            assert_eq!((&got.ids, &got.type_ids), (&alone.ids, &alone.type_ids), "{}", pair.0);
            assert_eq!(&got.ids, &whole.ids, "{}", pair.0);
        }
    }

    #[test]
    fn a_target_longer_than_the_limit_is_a_clear_error() {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 6).unwrap();
        let err = tok.encode_pairs(&[("ukraine joining nato and the war", "the war")]).unwrap_err();
        assert!(err.to_string().contains("target description"), "{err}");
    }

    #[test]
    fn batches_pad_to_the_longest_member() {
        let tok = StanceTokenizer::new(tiny_tokenizer(), 32).unwrap();
        let enc = tok.encode_texts(&["the war", "the war must end"]).unwrap();
        let batch = Batch::from_encoded(&enc, tok.pad_id(), &Device::Cpu).unwrap();
        assert_eq!(batch.input_ids.dims(), &[2, 6]);
        let mask = batch.attention_mask.to_vec2::<u32>().unwrap();
        assert_eq!(mask, vec![vec![1, 1, 1, 1, 0, 0], vec![1; 6]]);
        assert_eq!(batch.input_ids.to_vec2::<u32>().unwrap()[0][5], tok.pad_id());
    }

    #[test]
    fn outputs_come_back_in_input_order() {
        let encoded: Vec<Encoded> = [5usize, 2, 4, 1, 3]
            .iter()
            .map(|&n| Encoded { ids: vec![n as u32; n], type_ids: vec![0; n], target: None, truncated: false })
            .collect();
        // Each row reports the example's unpadded length, which identifies it.
        let rows = run_sorted(&encoded, 2, 0, &Device::Cpu, |b| {
            Ok(b.attention_mask.to_dtype(candle_core::DType::F32)?.sum_keepdim(1)?)
        })
        .unwrap();
        let lengths: Vec<f32> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(lengths, vec![5.0, 2.0, 4.0, 1.0, 3.0]);
    }
}
