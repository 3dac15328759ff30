//! Cross-entropy with class weights and label smoothing, defined as
//! `torch.nn.CrossEntropyLoss(weight=w, label_smoothing=ε)` with mean reduction:
//!
//! `loss = [(1 − ε) Σᵢ w[yᵢ]·(−log pᵢ[yᵢ]) + (ε / C) Σᵢ Σ_c w[c]·(−log pᵢ[c])] / Σᵢ w[yᵢ]`

use candle_core::{DType, Result, Tensor, D};

/// Mean cross-entropy of `logits` `[batch, classes]` against `labels` `[batch]` (u32).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, weights: Option<&Tensor>, smoothing: f64) -> Result<Tensor> {
    let classes = logits.dim(1)?;
    let neg_log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?.neg()?;
    let weights = match weights {
        Some(w) => w.to_dtype(logits.dtype())?,
        None => Tensor::ones(classes, logits.dtype(), logits.device())?,
    };
    let picked = neg_log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let label_weights = weights.gather(labels, 0)?;
    let denominator = label_weights.sum_all()?;
    let nll = (picked * &label_weights)?.sum_all()?;
    let total = if smoothing > 0.0 {
        let smooth = neg_log_p.broadcast_mul(&weights.unsqueeze(0)?)?.sum_all()?;
        ((nll * (1.0 - smoothing))? + (smooth * (smoothing / classes as f64))?)?
    } else {
        nll
    };
    // A batch whose labels all weigh 0 (`--class-weights 0,0,1` and no `none` in it)
    // adds nothing, where torch divides 0 by 0 and the run ends in NaN.
    let empty = denominator.eq(&denominator.zeros_like()?)?.to_dtype(logits.dtype())?;
    (total * empty.affine(-1.0, 1.0)?)?.broadcast_div(&(denominator + empty)?)
}

/// scikit-learn's `class_weight="balanced"`: n_samples / (n_classes · count(c)),
/// where n_classes counts the classes present, as `LogisticRegression` passes
/// `np.unique(y)` to `compute_class_weight` ([sklearn/linear_model/_logistic.py]).
/// A class absent from the data gets weight 1 (it weighs no sample).
///
/// [sklearn/linear_model/_logistic.py]: https://github.com/scikit-learn/scikit-learn/blob/1.9.1/sklearn/linear_model/_logistic.py#L430
pub fn balanced_weights(labels: &[u32], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count();
    counts.iter().map(|&c| if c == 0 { 1.0 } else { labels.len() as f32 / (present * c) as f32 }).collect()
}

/// Class weights as a tensor on the logits' device.
pub fn weights_tensor(weights: &[f32], like: &Tensor) -> Result<Tensor> {
    Tensor::new(weights, like.device())?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn setup() -> (Tensor, Tensor) {
        let logits = Tensor::new(&[[2.0f32, 0.5, -1.0], [0.1, 0.2, 0.3]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        (logits, labels)
    }

    fn log_softmax(row: &[f64]) -> Vec<f64> {
        let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
        row.iter().map(|x| x - lse).collect()
    }

    /// The same formula in plain f64 arithmetic.
    fn by_hand(weights: [f64; 3], eps: f64) -> f64 {
        let rows = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]];
        let labels = [0usize, 2];
        let (mut num, mut den) = (0.0, 0.0);
        for (row, &y) in rows.iter().zip(&labels) {
            let lp = log_softmax(row);
            num += (1.0 - eps) * weights[y] * -lp[y];
            num += eps / 3.0 * (0..3).map(|c| weights[c] * -lp[c]).sum::<f64>();
            den += weights[y];
        }
        num / den
    }

    #[test]
    fn matches_the_pytorch_definition() {
        let (logits, labels) = setup();
        for (weights, eps) in
            [([1.0, 1.0, 1.0], 0.0), ([0.5, 1.0, 3.0], 0.0), ([1.0, 1.0, 1.0], 0.1), ([0.5, 1.0, 3.0], 0.2)]
        {
            let w: Vec<f32> = weights.iter().map(|&x| x as f32).collect();
            let w = weights_tensor(&w, &logits).unwrap();
            let got = cross_entropy(&logits, &labels, Some(&w), eps).unwrap().to_scalar::<f32>().unwrap();
            assert!((got as f64 - by_hand(weights, eps)).abs() < 1e-6, "{weights:?} {eps}: {got}");
        }
        let plain = cross_entropy(&logits, &labels, None, 0.0).unwrap().to_scalar::<f32>().unwrap();
        let candle = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().to_scalar::<f32>().unwrap();
        assert!((plain - candle).abs() < 1e-6);
    }

    /// torch gives NaN (0/0); a run would stop on it at the first such batch.
    #[test]
    fn a_batch_whose_labels_all_weigh_nothing_adds_nothing() {
        let (logits, labels) = setup();
        for eps in [0.0, 0.1] {
            let w = weights_tensor(&[0.0, 1.0, 0.0], &logits).unwrap();
            // The two pairs' labels are 0 and 2 (setup), both weighing nothing.
            let loss = cross_entropy(&logits, &labels, Some(&w), eps).unwrap();
            assert_eq!(loss.to_scalar::<f32>().unwrap(), 0.0);
            let var = candle_core::Var::from_tensor(&logits).unwrap();
            let grads = cross_entropy(var.as_tensor(), &labels, Some(&w), eps).unwrap().backward().unwrap();
            let grad = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(grad.iter().all(|g| *g == 0.0), "{grad:?}");
        }
    }

    #[test]
    fn balanced_weights_follow_scikit_learn() {
        // sklearn (as LogisticRegression calls it, on the classes present):
        // compute_class_weight("balanced", classes=np.unique(y), y=[0,0,0,1]) → [0.667, 2.0]
        let w = balanced_weights(&[0, 0, 0, 1], 3);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6 && w[2] == 1.0, "{w:?}");
        // Every class present: [0, 0, 1, 2] → [0.667, 1.333, 1.333].
        let w = balanced_weights(&[0, 0, 1, 2], 3);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-6 && (w[1] - 4.0 / 3.0).abs() < 1e-6 && (w[2] - 4.0 / 3.0).abs() < 1e-6);
    }
}
