//! Reproducible splits that keep each sentence's records together and keep the
//! mix of labels similar across parts.
//!
//! Records are grouped by sentence text (ids do not survive across formats), so a
//! sentence never sits on both sides of a split. Groups are stratified by their
//! label signature, the sorted set of `target=label` pairs of the group's records:
//! groups with the same signature are shuffled together and dealt out evenly.
//! Fractions count sentences, not records.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Record;
use crate::error::{Error, Result};

/// Record indices of each part, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub train: Vec<usize>,
    pub dev: Vec<usize>,
    pub test: Vec<usize>,
}

/// One cross-validation fold: record indices, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits records into train, dev and test, with about `dev` and `test` of the
/// sentences in the last two. The same records and seed give the same split on
/// every platform, whatever order the records come in.
pub fn split_grouped(records: &[Record], dev: f64, test: f64, seed: u64) -> Result<Parts> {
    let valid = |f: f64| f.is_finite() && (0.0..1.0).contains(&f);
    if !valid(dev) || !valid(test) || dev + test >= 1.0 {
        return Err(Error::Other(format!("dev ({dev}) and test ({test}) must be in [0, 1) and sum to less than 1")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = stratified_order(records, &mut rng);
    // Error diffusion along the stratified order: each stratum gets its share to
    // within one sentence, and rounding carries over instead of piling up.
    let (dev_phase, test_phase): (f64, f64) = (rng.random(), rng.random());
    let (mut n_dev, mut n_test) = (0usize, 0usize);
    let mut parts = Parts::default();
    for (i, group) in groups.into_iter().enumerate() {
        let seen = (i + 1) as f64;
        let part = if (seen * test + test_phase).floor() as usize > n_test {
            n_test += 1;
            &mut parts.test
        } else if (seen * dev + dev_phase).floor() as usize > n_dev {
            n_dev += 1;
            &mut parts.dev
        } else {
            &mut parts.train
        };
        part.extend(group);
    }
    for part in [&mut parts.train, &mut parts.dev, &mut parts.test] {
        part.sort_unstable();
    }
    Ok(parts)
}

/// Deals sentences into `k` folds; each sentence is in exactly one fold's test part.
pub fn kfold_grouped(records: &[Record], k: usize, seed: u64) -> Result<Vec<Fold>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = stratified_order(records, &mut rng);
    if k < 2 || k > groups.len() {
        return Err(Error::Other(format!("--folds must be between 2 and the number of sentences ({})", groups.len())));
    }
    let offset = rng.random_range(0..k);
    let mut folds = vec![Fold::default(); k];
    for (i, group) in groups.iter().enumerate() {
        let home = (i + offset) % k;
        for (f, fold) in folds.iter_mut().enumerate() {
            let part = if f == home { &mut fold.test } else { &mut fold.train };
            part.extend(group);
        }
    }
    for fold in &mut folds {
        fold.train.sort_unstable();
        fold.test.sort_unstable();
    }
    Ok(folds)
}

/// The records at `indices`, cloned.
pub fn pick(records: &[Record], indices: &[usize]) -> Vec<Record> {
    indices.iter().filter_map(|&i| records.get(i)).cloned().collect()
}

/// Sentence groups ordered stratum by stratum (strata by signature), shuffled within each.
fn stratified_order(records: &[Record], rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut by_sentence: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        by_sentence.entry(r.sentence()).or_default().push(i);
    }
    // Sentences are visited in sorted order, so input order does not matter.
    let mut strata: BTreeMap<String, Vec<Vec<usize>>> = BTreeMap::new();
    for group in by_sentence.into_values() {
        strata.entry(signature(records, &group)).or_default().push(group);
    }
    strata
        .into_values()
        .flat_map(|mut groups| {
            groups.shuffle(rng);
            groups
        })
        .collect()
}

fn signature(records: &[Record], group: &[usize]) -> String {
    let mut pairs: Vec<String> = group.iter().map(|&i| format!("{}={}", records[i].target, records[i].label)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// `n` sentences, each labelled for two targets; a quarter favour the first target.
    fn records(n: usize) -> Vec<Record> {
        let mut out = Vec::new();
        for i in 0..n {
            let label = if i % 4 == 0 { "favor" } else { "against" };
            for (target, label) in [("nato", label), ("climate", "none")] {
                let text = format!("sentence {i}");
                out.push(Record { id: Some(format!("s{i}")), text, target: target.into(), label: label.into() });
            }
        }
        out
    }

    fn texts(records: &[Record], indices: &[usize]) -> HashSet<String> {
        indices.iter().map(|&i| records[i].text.clone()).collect()
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let data = records(200);
        let a = split_grouped(&data, 0.15, 0.1, 42).unwrap();
        assert_eq!(a, split_grouped(&data, 0.15, 0.1, 42).unwrap());
        assert_ne!(a, split_grouped(&data, 0.15, 0.1, 43).unwrap());
    }

    #[test]
    fn input_order_does_not_change_the_split() {
        let data = records(50);
        let mut reversed = data.clone();
        reversed.reverse();
        let ids = |records: &[Record], idx: &[usize]| -> HashSet<String> {
            idx.iter().map(|&i| records[i].id.clone().unwrap()).collect()
        };
        let (a, b) = (split_grouped(&data, 0.2, 0.0, 1).unwrap(), split_grouped(&reversed, 0.2, 0.0, 1).unwrap());
        assert_eq!(ids(&data, &a.dev), ids(&reversed, &b.dev));
    }

    #[test]
    fn sentences_stay_in_one_part_and_every_record_is_used() {
        let data = records(101);
        let parts = split_grouped(&data, 0.15, 0.15, 7).unwrap();
        let (train, dev, test) = (texts(&data, &parts.train), texts(&data, &parts.dev), texts(&data, &parts.test));
        assert!(train.is_disjoint(&dev) && train.is_disjoint(&test) && dev.is_disjoint(&test));
        assert_eq!(parts.train.len() + parts.dev.len() + parts.test.len(), data.len());
        assert_eq!(parts.dev.len() % 2, 0, "both records of a sentence move together");
    }

    #[test]
    fn parts_have_the_requested_size_and_label_mix() {
        let data = records(400);
        let parts = split_grouped(&data, 0.25, 0.1, 3).unwrap();
        let sentences = |idx: &[usize]| texts(&data, idx).len();
        assert!((99..=101).contains(&sentences(&parts.dev)), "{}", sentences(&parts.dev));
        assert!((39..=41).contains(&sentences(&parts.test)), "{}", sentences(&parts.test));
        let favor = |idx: &[usize]| idx.iter().filter(|&&i| data[i].label == "favor").count();
        // A quarter of the sentences favour: stratification keeps that in each part, to within one.
        assert!((24..=26).contains(&favor(&parts.dev)), "{}", favor(&parts.dev));
        assert!((9..=11).contains(&favor(&parts.test)), "{}", favor(&parts.test));
    }

    #[test]
    fn rejects_bad_fractions() {
        let data = records(10);
        assert!(split_grouped(&data, 0.6, 0.4, 0).is_err());
        assert!(split_grouped(&data, -0.1, 0.0, 0).is_err());
        assert!(split_grouped(&data, f64::NAN, 0.0, 0).is_err());
    }

    #[test]
    fn kfold_puts_every_sentence_in_exactly_one_test_fold() {
        let data = records(53);
        let folds = kfold_grouped(&data, 5, 9).unwrap();
        let mut tested: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        tested.sort_unstable();
        assert_eq!(tested, (0..data.len()).collect::<Vec<_>>());
        for fold in &folds {
            assert!(texts(&data, &fold.train).is_disjoint(&texts(&data, &fold.test)));
            assert_eq!(fold.train.len() + fold.test.len(), data.len());
            let n = texts(&data, &fold.test).len();
            assert!((10..=11).contains(&n), "{n}");
        }
        assert_eq!(folds, kfold_grouped(&data, 5, 9).unwrap());
        assert!(kfold_grouped(&data, 1, 9).is_err());
        assert!(kfold_grouped(&data, 54, 9).is_err());
    }
}
