//! Bootstrap over sentences: confidence intervals and paired tests.
//!
//! The unit of resampling is the sentence, not the record: the records of one
//! sentence (one per target) share its wording, so their errors are not
//! independent, and resampling records would give intervals that are too narrow.
//! A resample draws as many sentences as there are, with replacement; a record
//! counts as often as its sentence was drawn.

use std::collections::HashMap;
use std::hash::Hash;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How to resample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSettings {
    pub resamples: usize,
    pub seed: u64,
    /// Central coverage of an interval, such as 0.95.
    pub confidence: f64,
}

/// A percentile confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The items of each sentence: `keys[i]` is item i's sentence, and groups come
/// in order of first appearance.
pub fn group_by<K: Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<Vec<usize>> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Evaluates `stat` on `settings.resamples` resamples of `groups` and returns
/// one row of statistics per resample. `stat` gets each item's weight: how many
/// times its sentence was drawn. The same seed gives the same resamples, so two
/// systems scored with one seed are compared on identical draws.
pub fn samples(
    groups: &[Vec<usize>],
    settings: &BootstrapSettings,
    mut stat: impl FnMut(&[u32]) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    let n_items = groups.iter().flatten().max().map_or(0, |&m| m + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut weights = vec![0u32; n_items];
    (0..settings.resamples)
        .map(|_| {
            weights.fill(0);
            for _ in 0..groups.len() {
                for &i in &groups[rng.random_range(0..groups.len())] {
                    weights[i] += 1;
                }
            }
            stat(&weights)
        })
        .collect()
}

/// The percentile interval of column `column` of `samples`.
pub fn interval(samples: &[Vec<f64>], column: usize, confidence: f64) -> Interval {
    interval_of(samples.iter().map(|row| row[column]).collect(), confidence)
}

/// The central percentile interval of `values` covering `confidence`; NaN
/// values (resamples without the records a statistic needs) are left out.
pub fn interval_of(mut values: Vec<f64>, confidence: f64) -> Interval {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Interval { low: percentile(&values, tail), high: percentile(&values, 1.0 - tail) }
}

/// numpy's default (linear) percentile of sorted values, `q` in [0, 1].
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Two-sided paired-bootstrap p-value for an observed difference between two
/// systems: twice the share of resampled differences that do not have the
/// observed sign (zero counts as a flip), capped at 1. A difference of exactly
/// zero has p = 1.
pub fn flip_p_value(observed: f64, resampled: &[f64]) -> f64 {
    let resampled: Vec<f64> = resampled.iter().copied().filter(|d| !d.is_nan()).collect();
    if observed == 0.0 || resampled.is_empty() {
        return 1.0;
    }
    let flips = resampled.iter().filter(|&&d| d * observed.signum() <= 0.0).count();
    (2.0 * flips as f64 / resampled.len() as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(resamples: usize) -> BootstrapSettings {
        BootstrapSettings { resamples, seed: 7, confidence: 0.95 }
    }

    #[test]
    fn groups_keep_first_appearance_order() {
        assert_eq!(group_by(["b", "a", "b", "c", "a"]), vec![vec![0, 2], vec![1, 4], vec![3]]);
    }

    #[test]
    fn records_of_a_sentence_are_drawn_together() {
        let groups = vec![vec![0, 1, 2], vec![3], vec![4, 5]];
        let rows = samples(&groups, &settings(200), |w| {
            assert_eq!(w[0], w[1]);
            assert_eq!(w[1], w[2]);
            assert_eq!(w[4], w[5]);
            // Three sentences are drawn each time.
            assert_eq!(w[0] + w[3] + w[4], 3);
            vec![w[0] as f64]
        });
        assert_eq!(rows.len(), 200);
        let mean = rows.iter().map(|r| r[0]).sum::<f64>() / 200.0;
        assert!((mean - 1.0).abs() < 0.2, "each sentence is drawn once on average, got {mean}");
    }

    #[test]
    fn same_seed_same_resamples() {
        let groups: Vec<Vec<usize>> = (0..10).map(|i| vec![i]).collect();
        let a = samples(&groups, &settings(5), |w| w.iter().map(|&x| x as f64).collect());
        let b = samples(&groups, &settings(5), |w| w.iter().map(|&x| x as f64).collect());
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        // np.percentile([1, 2, 3, 4], [2.5, 50, 97.5]) → [1.075, 2.5, 3.925]
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile(&v, 0.025) - 1.075).abs() < 1e-12);
        assert!((percentile(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((percentile(&v, 0.975) - 3.925).abs() < 1e-12);
        let rows: Vec<Vec<f64>> = (0..=100).rev().map(|i| vec![i as f64]).collect();
        let ci = interval(&rows, 0, 0.9);
        assert!((ci.low - 5.0).abs() < 1e-9 && (ci.high - 95.0).abs() < 1e-9, "{ci:?}");
    }

    #[test]
    fn interval_of_a_mean_covers_it() {
        // Accuracy of 60 right and 40 wrong: the 95 % interval is about ±0.096.
        let groups: Vec<Vec<usize>> = (0..100).map(|i| vec![i]).collect();
        let correct: Vec<f64> = (0..100).map(|i| if i < 60 { 1.0 } else { 0.0 }).collect();
        let rows = samples(&groups, &settings(2000), |w| {
            let n: u32 = w.iter().sum();
            vec![w.iter().zip(&correct).map(|(&w, c)| w as f64 * c).sum::<f64>() / n as f64]
        });
        let ci = interval(&rows, 0, 0.95);
        assert!(ci.low < 0.6 && ci.high > 0.6);
        assert!((ci.high - ci.low - 0.192).abs() < 0.03, "{ci:?}");
    }

    #[test]
    fn p_value_counts_sign_flips_on_both_sides() {
        assert_eq!(flip_p_value(0.1, &[0.2, 0.1, -0.1, 0.0]), 1.0);
        assert_eq!(flip_p_value(0.1, &[0.2, 0.1, 0.3, -0.1]), 0.5);
        // A resample without the records a statistic needs (NaN) counts neither way.
        assert_eq!(flip_p_value(0.1, &[f64::NAN, 0.2, 0.1, 0.3, -0.1]), 0.5);
        let interval = interval_of(vec![f64::NAN, 1.0, 2.0, f64::NAN, 3.0], 0.5);
        assert_eq!((interval.low, interval.high), (1.5, 2.5), "NaN left out, not sorted in");
        assert_eq!(flip_p_value(-0.1, &[-0.2, -0.1, -0.3, -0.1]), 0.0);
        assert_eq!(flip_p_value(0.0, &[0.2]), 1.0);
    }
}
