//! TF-IDF features as scikit-learn's
//! `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)` computes them, for
//! the baseline that every report shows:
//!
//! - tokens: lower-cased runs of two or more word characters (letters, digits,
//!   `_`), as the default `token_pattern` `(?u)\b\w\w+\b`;
//! - terms: every token and every pair of adjacent tokens (joined by a space);
//! - weight: (1 + ln tf) · idf, with the smoothed idf ln((1 + n) / (1 + df)) + 1;
//! - each document vector is scaled to unit L2 norm.

use std::collections::{BTreeMap, HashMap};

/// A sparse vector: (feature index, value), sorted by index.
pub type SparseVec = Vec<(u32, f64)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Tfidf {
    /// Term → feature index; indices follow the terms' sorted order, as scikit-learn's.
    pub vocabulary: HashMap<String, u32>,
    pub idf: Vec<f64>,
}

/// The lower-cased tokens of a document.
pub fn tokens(doc: &str) -> Vec<String> {
    doc.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| t.chars().count() >= 2)
        .map(String::from)
        .collect()
}

/// Unigrams then bigrams, as scikit-learn's `_word_ngrams`.
pub fn terms(doc: &str) -> Vec<String> {
    let tokens = tokens(doc);
    let bigrams = tokens.windows(2).map(|w| format!("{} {}", w[0], w[1]));
    let mut out = tokens.clone();
    out.extend(bigrams);
    out
}

impl Tfidf {
    /// Learns the vocabulary and idf of `docs`.
    pub fn fit<S: AsRef<str>>(docs: &[S]) -> Self {
        let mut df: BTreeMap<String, usize> = BTreeMap::new();
        for doc in docs {
            let mut seen: Vec<String> = terms(doc.as_ref());
            seen.sort_unstable();
            seen.dedup();
            for term in seen {
                *df.entry(term).or_default() += 1;
            }
        }
        let n = docs.len() as f64;
        let idf = df.values().map(|&d| ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0).collect();
        let vocabulary = df.into_keys().enumerate().map(|(i, t)| (t, i as u32)).collect();
        Self { vocabulary, idf }
    }

    pub fn n_features(&self) -> usize {
        self.idf.len()
    }

    /// The unit-length TF-IDF vector of `doc`; terms not seen in training are dropped.
    pub fn transform(&self, doc: &str) -> SparseVec {
        let mut tf: BTreeMap<u32, usize> = BTreeMap::new();
        for term in terms(doc) {
            if let Some(&i) = self.vocabulary.get(&term) {
                *tf.entry(i).or_default() += 1;
            }
        }
        let mut row: SparseVec =
            tf.into_iter().map(|(i, count)| (i, (1.0 + (count as f64).ln()) * self.idf[i as usize])).collect();
        let norm = row.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_default_pattern() {
        assert_eq!(tokens("I can't-stop #SemST, a_b 2015!"), vec!["can", "stop", "semst", "a_b", "2015"]);
        assert_eq!(terms("NATO now, NATO"), vec!["nato", "now", "nato", "nato now", "now nato"]);
    }

    /// Two documents "aa bb" and "aa aa": df(aa) = 2, df(bb) = df(aa bb) = df(aa aa) = 1.
    /// idf = ln(3/3) + 1 = 1 for aa, ln(3/2) + 1 for the others.
    /// "aa aa" → aa: (1 + ln 2)·1, "aa aa": 1·(ln 1.5 + 1), then L2-normalised.
    #[test]
    fn hand_computed_weights() {
        let v = Tfidf::fit(&["aa bb", "aa aa"]);
        let names: BTreeMap<u32, &str> = v.vocabulary.iter().map(|(t, &i)| (i, t.as_str())).collect();
        assert_eq!(names.values().copied().collect::<Vec<_>>(), vec!["aa", "aa aa", "aa bb", "bb"]);
        let rare = 1.5f64.ln() + 1.0;
        assert_eq!(v.idf, vec![1.0, rare, rare, rare]);
        let row = v.transform("aa aa");
        let (a, b) = (1.0 + 2f64.ln(), rare);
        let norm = (a * a + b * b).sqrt();
        assert_eq!(row.len(), 2);
        assert!((row[0].1 - a / norm).abs() < 1e-12 && (row[1].1 - b / norm).abs() < 1e-12);
        assert!(v.transform("unseen words").is_empty());
    }
}
