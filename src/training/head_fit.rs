//! The frozen-encoder recipe (`train --freeze-encoder`): the encoder reads
//! every training sentence once, the vector the classifier reads is cached,
//! and the classifier is fitted on the cache as a multinomial logistic
//! regression, a convex problem with one answer, found in seconds. Training
//! the head by gradient steps at the encoder's learning rate learns nothing
//! in a few epochs (it answered `none` for every pair); this needs no rate.
//!
//! Objective (scikit-learn's `LogisticRegression(C)` with sample weights, on
//! standardised features): minimise Σᵢ sᵢ·(−ln softmax(W zᵢ + b)[yᵢ]) + ‖W‖²/(2C),
//! zᵢ = (xᵢ − μ)/σ per feature. Standardising makes one C fit encoders whose
//! features differ in scale; it folds back into the linear layer
//! (W' = W/σ, b' = b − W'μ), so the saved head reads raw pooled vectors.
//! Solver: L-BFGS with a backtracking line search, in f64, single-threaded
//! (the same data gives the same weights).

use candle_core::{Tensor, Var};

use super::trainer::Example;
use crate::model::Classifier;
use crate::{Error, Result};

/// Stop when the largest gradient component of the (weight-normalised) objective is below this.
const TOLERANCE: f64 = 1e-6;
const MAX_ITERATIONS: usize = 2_000;
/// L-BFGS history length.
const MEMORY: usize = 10;
/// The logit of a label absent from training: its probability is exactly 0 in f32.
const ABSENT_LOGIT: f64 = -1e4;

/// The vector the classifier reads for every example, from a frozen copy of the
/// model (constants: no graph, and the fused kernels).
pub fn head_inputs(classifier: &Classifier, examples: &[Example], batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let frozen = classifier.inference_model()?;
    let encoded: Vec<_> = examples.iter().map(|e| e.encoded.clone()).collect();
    crate::inference::run_sorted(&encoded, batch_size, classifier.tokenizer.pad_id(), &classifier.device, |batch| {
        let hidden = frozen.encoder.forward_t(batch, false)?;
        Ok(frozen.head.pool(&hidden, &batch.attention_mask)?)
    })
}

/// A fitted linear layer: `weight` [labels, features] row-major, `bias` [labels].
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
}

impl LinearFit {
    /// Mean cross-entropy (unweighted) on rows `x` with labels `y`.
    pub fn mean_loss(&self, x: &[Vec<f32>], y: &[usize]) -> f64 {
        let d = x.first().map_or(0, Vec::len);
        let total: f64 = x
            .iter()
            .zip(y)
            .map(|(row, &label)| {
                let logits: Vec<f64> = self
                    .bias
                    .iter()
                    .enumerate()
                    .map(|(c, b)| {
                        b + self.weight[c * d..(c + 1) * d].iter().zip(row).map(|(w, &v)| w * v as f64).sum::<f64>()
                    })
                    .collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                max + logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln() - logits[label]
            })
            .sum();
        total / x.len().max(1) as f64
    }

    /// Writes the fit into the classifier's `classifier.weight` / `classifier.bias`.
    pub fn install(&self, classifier: &Classifier) -> Result<()> {
        let vars: std::collections::BTreeMap<String, Var> = classifier.model.params.vars().into_iter().collect();
        for (name, values) in [("classifier.weight", &self.weight), ("classifier.bias", &self.bias)] {
            let var = vars.get(name).ok_or_else(|| Error::Model(format!("the head has no `{name}`")))?;
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}

/// Fits the classifier on `x` (one row per example) and label indices `y` below
/// `labels`; `class_weights` weigh each example by its label (none: all 1).
pub fn fit(x: &[Vec<f32>], y: &[usize], labels: usize, c: f64, class_weights: Option<&[f32]>) -> LinearFit {
    let d = x.first().map_or(0, Vec::len);
    let mut present: Vec<usize> = y.to_vec();
    present.sort_unstable();
    present.dedup();
    let mut fit = LinearFit { weight: vec![0.0; labels * d], bias: vec![ABSENT_LOGIT; labels] };
    if present.len() < 2 {
        // Nothing to separate: the one label seen is always the answer.
        present.iter().for_each(|&l| fit.bias[l] = 0.0);
        return fit;
    }
    let (mean, scale) = standardisation(x, d);
    let problem = Problem::new(x, y, &present, (&mean, &scale), c, class_weights);
    let theta = lbfgs(&problem);
    // Fold the standardisation back: logit_k = Σ_j W_kj (x_j − μ_j)/σ_j + b_k.
    let k = present.len();
    for (slot, &label) in present.iter().enumerate() {
        let mut bias = theta[k * d + slot];
        for j in 0..d {
            let w = theta[slot * d + j] / scale[j];
            fit.weight[label * d + j] = w;
            bias -= w * mean[j];
        }
        fit.bias[label] = bias;
    }
    fit
}

/// Per-feature mean and standard deviation (1 where a feature is constant).
fn standardisation(x: &[Vec<f32>], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() as f64;
    let mut mean = vec![0.0; d];
    x.iter().for_each(|r| mean.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64 / n));
    let mut var = vec![0.0; d];
    x.iter().for_each(|r| {
        var.iter_mut().zip(r.iter().zip(&mean)).for_each(|(s, (&v, m))| *s += (v as f64 - m).powi(2) / n)
    });
    let scale = var.into_iter().map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 }).collect();
    (mean, scale)
}

/// The standardised data, the labels re-indexed over the present ones, and the
/// weights normalised to sum to 1 (so the tolerance does not depend on n).
struct Problem {
    z: Vec<f64>,
    y: Vec<usize>,
    weight: Vec<f64>,
    d: usize,
    k: usize,
    /// The penalty on the normalised objective: 1 / (C Σ sᵢ).
    lambda: f64,
}

impl Problem {
    fn new(
        x: &[Vec<f32>],
        y: &[usize],
        present: &[usize],
        (mean, scale): (&[f64], &[f64]),
        c: f64,
        class_weights: Option<&[f32]>,
    ) -> Self {
        let d = mean.len();
        let z = x.iter().flat_map(|r| r.iter().enumerate().map(|(j, &v)| (v as f64 - mean[j]) / scale[j])).collect();
        let raw: Vec<f64> = y.iter().map(|&l| class_weights.map_or(1.0, |w| w[l] as f64)).collect();
        let total: f64 = raw.iter().sum();
        let y = y.iter().map(|l| present.binary_search(l).expect("every label is present")).collect();
        let weight = raw.iter().map(|w| w / total).collect();
        Self { z, y, weight, d, k: present.len(), lambda: 1.0 / (c * total) }
    }

    /// The objective and its gradient at theta = (W row-major [k, d], b [k]).
    fn value_and_gradient(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let (d, k) = (self.d, self.k);
        let (w, b) = theta.split_at(k * d);
        let mut grad = vec![0.0; theta.len()];
        let mut loss = 0.0;
        let mut logits = vec![0.0; k];
        for (i, row) in self.z.chunks_exact(d).enumerate() {
            for (c, z) in logits.iter_mut().enumerate() {
                *z = b[c] + dot(&w[c * d..(c + 1) * d], row);
            }
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
            let s = self.weight[i];
            loss += s * (max + sum.ln() - logits[self.y[i]]);
            for c in 0..k {
                let residual = s * ((logits[c] - max).exp() / sum - f64::from(u8::from(c == self.y[i])));
                grad[c * d..(c + 1) * d].iter_mut().zip(row).for_each(|(g, z)| *g += residual * z);
                grad[k * d + c] += residual;
            }
        }
        let penalty = dot(w, w);
        grad[..k * d].iter_mut().zip(w).for_each(|(g, w)| *g += self.lambda * w);
        (loss + 0.5 * self.lambda * penalty, grad)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Limited-memory BFGS (Nocedal & Wright, Algorithm 7.4) from zero, with an
/// Armijo backtracking line search.
fn lbfgs(problem: &Problem) -> Vec<f64> {
    let dim = (problem.d + 1) * problem.k;
    let mut x = vec![0.0; dim];
    let (mut f, mut g) = problem.value_and_gradient(&x);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    for _ in 0..MAX_ITERATIONS {
        if g.iter().all(|v| v.abs() < TOLERANCE) {
            break;
        }
        let direction = two_loop(&g, &history);
        let slope = dot(&g, &direction);
        let mut step = 1.0;
        let (x_new, f_new, g_new) = loop {
            let x_new: Vec<f64> = x.iter().zip(&direction).map(|(x, p)| x + step * p).collect();
            let (f_new, g_new) = problem.value_and_gradient(&x_new);
            if f_new <= f + 1e-4 * step * slope || step < 1e-12 {
                break (x_new, f_new, g_new);
            }
            step *= 0.5;
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let stalled = f - f_new <= f64::EPSILON * f.abs().max(1.0);
        (x, f, g) = (x_new, f_new, g_new);
        if stalled {
            break;
        }
    }
    x
}

/// −H·g through the stored pairs; before any pair, the scaled steepest descent.
fn two_loop(g: &[f64], history: &std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let alpha = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
        alphas.push(alpha);
    }
    let gamma = match history.back() {
        Some((s, y, _)) => dot(s, y) / dot(y, y),
        None => 1.0 / dot(g, g).sqrt().max(1.0),
    };
    q.iter_mut().for_each(|q| *q *= gamma);
    for ((s, y, rho), alpha) in history.iter().zip(alphas.into_iter().rev()) {
        let beta = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(q, s)| *q += (alpha - beta) * s);
    }
    q.iter_mut().for_each(|q| *q = -*q);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(x: &[Vec<f32>], y: &[usize], weights: Option<&[f32]>) -> Problem {
        let (mean, scale) = standardisation(x, x[0].len());
        Problem::new(x, y, &[0, 1, 2], (&mean, &scale), 0.7, weights)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<Vec<f32>> = (0..7).map(|i| (0..4).map(|j| ((i * 4 + j) as f32 * 0.7).sin()).collect()).collect();
        let y = [0, 1, 2, 1, 0, 2, 2];
        let p = problem(&x, &y, Some(&[1.0, 2.0, 0.5]));
        let theta: Vec<f64> = (0..15).map(|i| (i as f64 * 0.37).cos()).collect();
        let (_, g) = p.value_and_gradient(&theta);
        for i in 0..theta.len() {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (p.value_and_gradient(&up).0 - p.value_and_gradient(&down).0) / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-7, "component {i}: {numeric} vs {}", g[i]);
        }
    }

    /// At the optimum the gradient vanishes, and the folded weights on raw
    /// features give the standardised model's logits.
    #[test]
    fn the_fit_is_the_optimum_and_reads_raw_features() {
        let x: Vec<Vec<f32>> = (0..30)
            .map(|i| vec![10.0 + (i as f32 * 0.9).sin() * 3.0, (i % 3) as f32 * 0.01 + (i as f32).cos() * 0.005])
            .collect();
        let y: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let fit = fit(&x, &y, 3, 0.7, None);
        let p = problem(&x, &y, None);
        let theta = lbfgs(&p);
        let (_, g) = p.value_and_gradient(&theta);
        assert!(g.iter().all(|v| v.abs() < TOLERANCE), "{g:?}");
        let (mean, scale) = standardisation(&x, 2);
        for row in &x {
            for c in 0..3 {
                let raw = fit.bias[c] + (0..2).map(|j| fit.weight[c * 2 + j] * row[j] as f64).sum::<f64>();
                let standard =
                    theta[6 + c] + (0..2).map(|j| theta[c * 2 + j] * (row[j] as f64 - mean[j]) / scale[j]).sum::<f64>();
                assert!((raw - standard).abs() < 1e-9, "{raw} vs {standard}");
            }
        }
        // The tiny second feature decides the label: standardising lets it count.
        let correct = x.iter().zip(&y).filter(|(row, &label)| {
            let logits: Vec<f64> = (0..3)
                .map(|c| fit.bias[c] + fit.weight[c * 2] * row[0] as f64 + fit.weight[c * 2 + 1] * row[1] as f64)
                .collect();
            crate::training::trainer::argmax(&logits.iter().map(|&v| v as f32).collect::<Vec<_>>()) == label
        });
        assert!(correct.count() >= 27);
    }

    #[test]
    fn absent_labels_get_no_probability_and_one_label_is_always_answered() {
        let x = vec![vec![0.0f32, 1.0], vec![1.0, 0.0], vec![0.9, 0.2]];
        let fit2 = fit(&x, &[0, 2, 2], 3, 1.0, None);
        assert_eq!(fit2.bias[1], ABSENT_LOGIT);
        assert!(fit2.weight[2..4].iter().all(|&w| w == 0.0));
        let one = fit(&x, &[1, 1, 1], 3, 1.0, None);
        assert_eq!(one.bias, vec![ABSENT_LOGIT, 0.0, ABSENT_LOGIT]);
    }
}
