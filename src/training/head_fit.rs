//! The frozen-encoder recipe (`train --freeze-encoder`): the encoder reads
//! every training sentence once, alone (not paired with a target), its
//! sentence-transformers embedding (masked mean, L2-normalised; with
//! `--feature-layers N`, the last N layers' so, concatenated) is cached, and
//! each target gets its own classifier fitted on the cache as a multinomial
//! logistic regression: a convex problem with one answer, found in seconds.
//!
//! Why this layout: measured with `scripts/probe_frozen.py` on the project's
//! data, TweetEval and UKP, the sentence alone with a classifier per target
//! beat the pooled (target, sentence) pair with one classifier for all on
//! every set and encoder (by 16–25 points of macro-F1 on the project's data,
//! 8–12 on TweetEval, 0.5–2.3 on UKP): a frozen sentence encoder was never
//! trained on pairs, and whether a sentence is for or against depends on the
//! target in a way one linear layer over the pair cannot express. Training a
//! head by gradient steps at the encoder's learning rate learned nothing in a
//! few epochs (it answered `none` for every pair); this needs no rate.
//!
//! Objective per target (scikit-learn's `LogisticRegression(C)` with sample
//! weights): minimise `Σᵢ sᵢ·(−ln softmax(W xᵢ + b)[yᵢ]) + ‖W‖²/(2C)`.
//! Solver: L-BFGS with a backtracking line search, in f64, single-threaded
//! (the same data gives the same weights).

use std::collections::HashMap;

use candle_core::{Tensor, Var};

use crate::inference::embed::Embedder;
use crate::kernels::softmax::softmax_f64;
use crate::model::Classifier;
use crate::tokenization::Encoded;
use crate::{Error, Result};

/// Stop when the largest gradient component of the (weight-normalised) objective is below this.
const TOLERANCE: f64 = 1e-6;
const MAX_ITERATIONS: usize = 2_000;
/// L-BFGS history length.
const MEMORY: usize = 10;
/// The logit of a label absent from a target's training data: its probability is exactly 0 in f32.
const ABSENT_LOGIT: f64 = -1e4;

/// The vector the classifier reads for every example, from a frozen copy of the
/// model (constants: no graph, and the fused kernels), or from `int8`, the same
/// base model with its linear layers in int8. Each distinct input is encoded
/// once: a sentence labelled for three targets costs one pass. `stop` is asked
/// before each batch (Ctrl-C): the pass ends with an error, as it keeps nothing
/// to resume from.
pub fn head_inputs<'a>(
    classifier: &Classifier,
    examples: impl IntoIterator<Item = &'a Encoded>,
    batch_size: usize,
    int8: Option<&Embedder>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Vec<f32>>> {
    let go_on = || match stop() {
        true => {
            Err(crate::Error::Other("interrupted while encoding; a frozen encoder's run has nothing to resume".into()))
        }
        false => Ok(()),
    };
    let mut index: HashMap<&[u32], usize> = HashMap::new();
    let mut unique = Vec::new();
    let slots: Vec<usize> = examples
        .into_iter()
        .map(|e| {
            *index.entry(&e.ids).or_insert_with(|| {
                unique.push(e.clone());
                unique.len() - 1
            })
        })
        .collect();
    let rows = match int8 {
        // The per-target head pools without parameters, so the model's own head
        // serves and no f32 copy of the encoder is built.
        Some(embedder) => {
            let head = &classifier.model.head;
            embedder.encode_with(&unique, batch_size, head.encoder_output(), |hidden, mask| {
                go_on()?;
                Ok(head.pool(hidden, mask)?)
            })?
        }
        None => {
            let frozen = classifier.inference_model()?;
            crate::tokenization::run_sorted(
                &unique,
                batch_size,
                classifier.tokenizer.pad_id(),
                &classifier.device,
                |batch| {
                    go_on()?;
                    let hidden = frozen.encoder.forward_output_t(batch, false, frozen.head.encoder_output())?;
                    Ok(frozen.head.pool(&hidden, &batch.attention_mask)?)
                },
            )?
        }
    };
    Ok(slots.into_iter().map(|i| rows[i].clone()).collect())
}

/// How each target's examples are weighed by their label.
pub enum ClassWeights<'a> {
    /// n / (labels · count) within the target's examples, as scikit-learn's `balanced`.
    Balanced,
    /// One weight per label.
    Fixed(&'a [f32]),
}

/// A fitted linear layer: `weight` `[outputs, features]` row-major, `bias` `[outputs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
}

impl LinearFit {
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

    /// The logits of `row` read by block `block` (its target's `labels` outputs).
    pub fn logits(&self, row: &[f32], block: usize, labels: usize) -> Vec<f64> {
        let d = row.len();
        (block * labels..(block + 1) * labels)
            .map(|o| {
                self.bias[o] + self.weight[o * d..(o + 1) * d].iter().zip(row).map(|(w, &v)| w * v as f64).sum::<f64>()
            })
            .collect()
    }

    /// The probabilities of `row` read by block `block`.
    pub fn proba(&self, row: &[f32], block: usize, labels: usize) -> Vec<f64> {
        let mut p = self.logits(row, block, labels);
        softmax_f64(&mut p);
        p
    }

    /// Mean cross-entropy (unweighted) of rows `x` with labels `y`, each read by
    /// the block of `labels` outputs of its target.
    pub fn mean_loss(&self, x: &[Vec<f32>], y: &[usize], targets: &[usize], labels: usize) -> f64 {
        let total: f64 = x
            .iter()
            .zip(y.iter().zip(targets))
            .map(|(row, (&label, &t))| {
                let mut logits = self.logits(row, t, labels);
                let picked = logits[label];
                softmax_f64(&mut logits) - picked
            })
            .sum();
        total / x.len().max(1) as f64
    }
}

/// One classifier per target: target `t`'s [labels, features] block is fitted on
/// the rows whose target is `t` (a target without rows gets zeros: uniform answers).
pub fn fit_per_target(
    x: &[Vec<f32>],
    (y, targets): (&[usize], &[usize]),
    (labels, blocks): (usize, usize),
    c: f64,
    weights: ClassWeights,
) -> LinearFit {
    let d = x.first().map_or(0, Vec::len);
    let mut out = LinearFit { weight: vec![0.0; blocks * labels * d], bias: vec![0.0; blocks * labels] };
    for t in 0..blocks {
        let rows: Vec<usize> = (0..x.len()).filter(|&i| targets[i] == t).collect();
        if rows.is_empty() {
            continue;
        }
        let xt: Vec<Vec<f32>> = rows.iter().map(|&i| x[i].clone()).collect();
        let yt: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        let balanced;
        let w = match weights {
            ClassWeights::Fixed(w) => w,
            ClassWeights::Balanced => {
                balanced = super::loss::balanced_weights(&yt.iter().map(|&l| l as u32).collect::<Vec<_>>(), labels);
                &balanced[..]
            }
        };
        let block = fit(&xt, &yt, labels, c, Some(w));
        out.weight[t * labels * d..(t + 1) * labels * d].copy_from_slice(&block.weight);
        out.bias[t * labels..(t + 1) * labels].copy_from_slice(&block.bias);
    }
    out
}

/// Fits one classifier [labels, features] on `x` (one row per example) and
/// label indices `y` below `labels`; `class_weights` weigh each example by its
/// label (none: all 1).
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
    let problem = Problem::new(x, y, &present, c, class_weights);
    let theta = lbfgs(&problem);
    let k = present.len();
    for (slot, &label) in present.iter().enumerate() {
        fit.weight[label * d..(label + 1) * d].copy_from_slice(&theta[slot * d..(slot + 1) * d]);
        fit.bias[label] = theta[k * d + slot];
    }
    fit
}

/// The data, the labels re-indexed over the present ones, and the weights
/// normalised to sum to 1 (so the tolerance does not depend on n).
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
    fn new(x: &[Vec<f32>], y: &[usize], present: &[usize], c: f64, class_weights: Option<&[f32]>) -> Self {
        let d = x.first().map_or(0, Vec::len);
        let z = x.iter().flat_map(|r| r.iter().map(|&v| v as f64)).collect();
        let raw: Vec<f64> = y.iter().map(|&l| class_weights.map_or(1.0, |w| w[l] as f64)).collect();
        let total: f64 = raw.iter().sum();
        let y = y.iter().map(|l| present.binary_search(l).expect("every label is present")).collect();
        let weight = raw.iter().map(|w| w / total).collect();
        Self { z, y, weight, d, k: present.len(), lambda: 1.0 / (c * total) }
    }

    /// The objective and its gradient at theta = (W row-major `[k, d]`, b `[k]`).
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
            let s = self.weight[i];
            let picked = logits[self.y[i]];
            loss += s * (softmax_f64(&mut logits) - picked);
            for c in 0..k {
                let residual = s * (logits[c] - f64::from(u8::from(c == self.y[i])));
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
        Problem::new(x, y, &[0, 1, 2], 0.7, weights)
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

    /// Rows of a target whose label follows from one of two directions, the
    /// other target's from the opposite: one classifier over both could not fit them.
    fn two_targets() -> (Vec<Vec<f32>>, Vec<usize>, Vec<usize>) {
        let mut x = Vec::new();
        let (mut y, mut t) = (Vec::new(), Vec::new());
        for i in 0..40 {
            let a = (i as f32 * 0.37).sin();
            let label = if a > 0.3 {
                0
            } else if a < -0.3 {
                1
            } else {
                2
            };
            let target = i % 2;
            let sign = if target == 0 { 1.0 } else { -1.0 };
            x.push(vec![sign * a, (i as f32 * 1.3).cos() * 0.1]);
            y.push(label);
            t.push(target);
        }
        (x, y, t)
    }

    #[test]
    fn each_target_gets_the_optimum_of_its_own_rows() {
        let (x, y, t) = two_targets();
        let both = fit_per_target(&x, (&y, &t), (3, 3), 4.0, ClassWeights::Fixed(&[1.0, 1.0, 1.0]));
        for target in 0..2 {
            let rows: Vec<usize> = (0..x.len()).filter(|&i| t[i] == target).collect();
            let xt: Vec<Vec<f32>> = rows.iter().map(|&i| x[i].clone()).collect();
            let yt: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
            let alone = fit(&xt, &yt, 3, 4.0, Some(&[1.0, 1.0, 1.0]));
            assert_eq!(&both.weight[target * 6..(target + 1) * 6], &alone.weight[..]);
            let p = problem(&xt, &yt, Some(&[1.0, 1.0, 1.0]));
            let theta: Vec<f64> = alone.weight.iter().chain(&alone.bias).copied().collect();
            let mut p4 = p;
            p4.lambda = 1.0 / (4.0 * yt.len() as f64);
            assert!(p4.value_and_gradient(&theta).1.iter().all(|g| g.abs() < TOLERANCE));
        }
        // Target 2 has no rows: all zeros, so every label is equally likely.
        assert!(both.weight[12..].iter().chain(&both.bias[6..]).all(|&v| v == 0.0));
        let correct = (0..x.len()).filter(|&i| {
            let o = t[i] * 3;
            let logit = |c: usize| {
                both.bias[o + c]
                    + both.weight[(o + c) * 2] * x[i][0] as f64
                    + both.weight[(o + c) * 2 + 1] * x[i][1] as f64
            };
            (0..3).max_by(|&a, &b| logit(a).total_cmp(&logit(b))).unwrap() == y[i]
        });
        assert!(correct.count() >= 34, "the per-target fits do not separate their rows");
        assert!(both.mean_loss(&x, &y, &t, 3) < 0.7);
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
