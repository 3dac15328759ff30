//! The gold side of an evaluation and what a system answers on it.

use std::collections::BTreeSet;

use crate::data::Record;
use crate::{Error, Result};

/// One gold record, with its target and label as indices into [`Gold`]'s lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldItem {
    pub id: Option<String>,
    pub text: String,
    pub target: usize,
    pub label: usize,
}

/// Gold records with their label set, the targets they cover and their sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct Gold {
    /// Label names; an index into this is a label everywhere in evaluation.
    pub labels: Vec<String>,
    /// The target ids that occur, sorted.
    pub targets: Vec<String>,
    pub items: Vec<GoldItem>,
    /// Item indices of each sentence: the unit the bootstrap resamples. A
    /// sentence is its trimmed text, as the data layer's splits have it (ids do
    /// not survive across formats).
    pub sentences: Vec<Vec<usize>>,
    /// The labels F_avg leaves out ([`super::metrics::neutral_indices`]): `none`
    /// unless the targets file names others ([`Gold::with_neutral`]).
    pub neutral: Vec<usize>,
}

/// A system's answer on every gold item, in gold order.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub pred: Vec<usize>,
    /// A probability per label for each item, when the system gives them.
    pub probs: Option<Vec<Vec<f64>>>,
}

impl Gold {
    /// Indexes records; a label outside `labels` is an error (the data layer
    /// has already checked records against the schema, so this is a bug guard).
    pub fn new(labels: &[String], records: &[Record]) -> Result<Self> {
        let targets: Vec<String> =
            records.iter().map(|r| r.target.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let items = records
            .iter()
            .map(|r| {
                let label = labels.iter().position(|l| *l == r.label).ok_or_else(|| {
                    Error::Other(format!("gold label '{}' is not one of {}", r.label, labels.join(", ")))
                })?;
                let target = targets.binary_search(&r.target).expect("targets come from records");
                Ok(GoldItem { id: r.id.clone(), text: r.text.clone(), target, label })
            })
            .collect::<Result<Vec<_>>>()?;
        let sentences = super::bootstrap::group_by(records.iter().map(Record::sentence));
        let neutral = super::metrics::neutral_indices(labels, None);
        Ok(Self { labels: labels.to_vec(), targets, items, sentences, neutral })
    }

    /// The same records, with the neutral labels a targets file declares.
    pub fn with_neutral(self, declared: Option<&crate::data::Neutral>) -> Self {
        Self { neutral: super::metrics::neutral_indices(&self.labels, declared), ..self }
    }

    pub fn gold_labels(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.label).collect()
    }

    /// The items of target `t`.
    pub fn of_target(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        self.items.iter().enumerate().filter(move |(_, item)| item.target == t).map(|(i, _)| i)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn labels() -> Vec<String> {
        ["favor", "against", "none"].map(String::from).to_vec()
    }

    pub(crate) fn records(rows: &[(Option<&str>, &str, &str, &str)]) -> Vec<Record> {
        rows.iter()
            .map(|&(id, text, target, label)| Record {
                id: id.map(String::from),
                text: text.into(),
                target: target.into(),
                label: label.into(),
            })
            .collect()
    }

    #[test]
    fn sentences_group_by_trimmed_text() {
        let rows = [
            (Some("s1"), "a", "nato", "favor"),
            (Some("s1"), "a", "land", "none"),
            (None, " b ", "nato", "against"),
            (None, "b", "land", "against"),
            (Some("x"), "c", "burden", "none"),
        ];
        let gold = Gold::new(&labels(), &records(&rows)).unwrap();
        assert_eq!(gold.targets, vec!["burden", "land", "nato"]);
        assert_eq!(gold.sentences, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(gold.items[2].target, 2);
        assert_eq!(gold.gold_labels(), vec![0, 2, 1, 1, 2]);
        assert_eq!(gold.of_target(1).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn unknown_gold_label_is_an_error() {
        let err = Gold::new(&labels(), &records(&[(None, "a", "t", "pro")])).unwrap_err().to_string();
        assert!(err.contains("'pro'"), "{err}");
    }
}
