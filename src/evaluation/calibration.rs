//! Calibration: does a system's confidence match how often it is right?
//!
//! Confidence is the probability the system gave its predicted label. Records
//! are put in equal-width confidence bins; a bin's gap is |accuracy − mean
//! confidence|, and the expected calibration error (ECE) is the mean gap
//! weighted by the bins' record counts (Guo et al. 2017, "On Calibration of
//! Modern Neural Networks"). The Brier score (the mean squared distance between
//! the probability vector and the one-hot gold label, summed over labels) is
//! given beside it because ECE alone depends on the binning, and the log loss
//! (mean negative log-likelihood of the gold label, scikit-learn's `log_loss`),
//! which temperature scaling minimises (`crate::training::temperature`).

use serde::{Deserialize, Serialize};

/// One confidence bin of the reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Bin edges: the bin holds confidences in (low, high], the first one also 0.
    pub low: f64,
    pub high: f64,
    pub count: u64,
    /// Mean confidence of the bin's records (0 when empty).
    pub confidence: f64,
    /// Share of the bin's records predicted right (0 when empty).
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub ece: f64,
    /// Largest gap of a non-empty bin.
    pub mce: f64,
    pub brier: f64,
    /// Mean −ln of the gold label's probability, clipped at f64's epsilon as
    /// scikit-learn's `log_loss` clips; `None` in files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    pub bins: Vec<Bin>,
}

/// Calibration of predictions `pred` (label indices) with probability rows
/// `probs` against `gold`, in `n_bins` equal-width bins.
pub fn calibration(gold: &[usize], pred: &[usize], probs: &[Vec<f64>], n_bins: usize) -> Calibration {
    let n_bins = n_bins.max(1);
    let mut count = vec![0u64; n_bins];
    let mut conf_sum = vec![0.0; n_bins];
    let mut right = vec![0u64; n_bins];
    let mut brier = 0.0;
    let mut log_loss = 0.0;
    for ((&g, &p), row) in gold.iter().zip(pred).zip(probs) {
        log_loss -= row[g].max(f64::EPSILON).ln();
        let confidence = row[p];
        let b = bin_of(confidence, n_bins);
        count[b] += 1;
        conf_sum[b] += confidence;
        right[b] += u64::from(g == p);
        brier += row.iter().enumerate().map(|(c, &q)| (q - f64::from(u8::from(c == g))).powi(2)).sum::<f64>();
    }
    let n = gold.len().max(1) as f64;
    let bins: Vec<Bin> = (0..n_bins)
        .map(|b| {
            let k = count[b].max(1) as f64;
            Bin {
                low: b as f64 / n_bins as f64,
                high: (b + 1) as f64 / n_bins as f64,
                count: count[b],
                confidence: conf_sum[b] / k,
                accuracy: right[b] as f64 / k,
            }
        })
        .collect();
    let gaps = bins.iter().filter(|b| b.count > 0).map(|b| (b.count as f64, (b.accuracy - b.confidence).abs()));
    let (ece, mce) = gaps.fold((0.0, 0.0f64), |(e, m), (k, gap)| (e + k / n * gap, m.max(gap)));
    Calibration { ece, mce, brier: brier / n, log_loss: Some(log_loss / n), bins }
}

/// The bin of a confidence: how many inner edges lie strictly below it, as
/// numpy's `searchsorted(linspace(0, 1, n + 1)[1:-1], c)` (edges are i · (1/n),
/// so 0.7 falls in (0.6, 0.7] although 7 · 0.1 rounds above 0.7).
fn bin_of(confidence: f64, n_bins: usize) -> usize {
    let step = 1.0 / n_bins as f64;
    (1..n_bins).filter(|&i| i as f64 * step < confidence).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four records, two bins:
    /// - [0, 0.5): confidences 0.4 (right) → accuracy 1, confidence 0.4, gap 0.6
    /// - [0.5, 1]: 0.9 (right), 0.7 (wrong), 1.0 (right) → accuracy 2/3, confidence 0.8667, gap 0.2
    ///
    /// ECE = 1/4 · 0.6 + 3/4 · 0.2 = 0.3; MCE = 0.6.
    #[test]
    fn hand_computed_bins() {
        let gold = [0, 1, 0, 1];
        let pred = [0, 1, 1, 1];
        let probs = vec![vec![0.4, 0.3, 0.3], vec![0.05, 0.9, 0.05], vec![0.2, 0.7, 0.1], vec![0.0, 1.0, 0.0]];
        let c = calibration(&gold, &pred, &probs, 2);
        assert_eq!(c.bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![1, 3]);
        assert!((c.bins[1].confidence - 2.6 / 3.0).abs() < 1e-12);
        assert!((c.bins[1].accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.ece - 0.3).abs() < 1e-12, "{}", c.ece);
        assert!((c.mce - 0.6).abs() < 1e-12);
        // Brier: (0.36+0.09+0.09) + (0.0025+0.01+0.0025) + (0.64+0.49+0.01) + 0 = 1.695, / 4
        assert!((c.brier - 1.695 / 4.0).abs() < 1e-12, "{}", c.brier);
    }

    #[test]
    fn perfect_confident_predictions_are_calibrated() {
        let c = calibration(&[0, 2], &[0, 2], &[vec![1.0, 0.0, 0.0], vec![0.0, 0.0, 1.0]], 10);
        assert_eq!((c.ece, c.brier), (0.0, 0.0));
        assert_eq!(c.bins[9].count, 2, "confidence 1 falls in the last bin");
    }

    #[test]
    fn edges_belong_to_the_lower_bin() {
        assert_eq!([0.0, 0.05, 0.1, 0.1000001, 0.7, 1.0].map(|c| bin_of(c, 10)), [0, 0, 0, 1, 6, 9]);
    }
}
