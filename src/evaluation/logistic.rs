//! Multinomial logistic regression on sparse features, with the objective of
//! scikit-learn's `LogisticRegression(C=c)` (L2 penalty on the weights, not on
//! the intercepts):
//!
//! minimise  `Σᵢ −ln softmax(Wᵀxᵢ + b)[yᵢ] + ‖W‖² / (2C)`
//!
//! The objective is convex, so any optimiser that converges finds the same
//! probabilities as scikit-learn's L-BFGS. Ours is Nesterov's accelerated
//! gradient descent with adaptive restart (O'Donoghue & Candès 2015), with the
//! step 1/L from a bound on the curvature: the softmax Hessian has eigenvalues of
//! at most 1/2, so L ≤ ½ · max‖(xᵢ, 1)‖² + 1/(Cn) for the objective divided by n.
//!
//! Only the classes present in training are modelled, as in scikit-learn; the
//! others get probability 0.

use super::tfidf::SparseVec;

#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    /// The modelled classes (label indices), in increasing order.
    pub classes: Vec<usize>,
    /// Row-major [feature, class].
    pub weights: Vec<f64>,
    pub intercepts: Vec<f64>,
}

/// When to stop: the largest gradient component of the mean objective.
const TOLERANCE: f64 = 1e-8;
const MAX_ITERATIONS: usize = 20_000;

/// The problem: data and penalty, with classes re-indexed to 0..k.
struct Problem<'a> {
    x: &'a [SparseVec],
    y: Vec<usize>,
    k: usize,
    n_features: usize,
    /// Penalty on the mean objective: 1 / (C n).
    lambda: f64,
}

impl Problem<'_> {
    fn logits(&self, theta: &[f64], row: &SparseVec) -> Vec<f64> {
        let (w, b) = theta.split_at(self.n_features * self.k);
        let mut z = b.to_vec();
        for &(j, v) in row {
            let wj = &w[j as usize * self.k..][..self.k];
            z.iter_mut().zip(wj).for_each(|(z, w)| *z += v * w);
        }
        z
    }

    /// The mean objective and its gradient at `theta` = (W row-major, b).
    fn value_and_gradient(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let (k, nw) = (self.k, self.n_features * self.k);
        let n = self.x.len() as f64;
        let mut grad = vec![0.0; theta.len()];
        let mut loss = 0.0;
        for (row, &y) in self.x.iter().zip(&self.y) {
            let p = softmax(&self.logits(theta, row));
            loss -= p[y].max(f64::MIN_POSITIVE).ln();
            let residual: Vec<f64> = (0..k).map(|c| p[c] - f64::from(u8::from(c == y))).collect();
            for &(j, v) in row {
                let gj = &mut grad[j as usize * k..][..k];
                gj.iter_mut().zip(&residual).for_each(|(g, r)| *g += v * r);
            }
            grad[nw..].iter_mut().zip(&residual).for_each(|(g, r)| *g += r);
        }
        grad.iter_mut().for_each(|g| *g /= n);
        let penalty: f64 = theta[..nw].iter().map(|w| w * w).sum();
        grad[..nw].iter_mut().zip(&theta[..nw]).for_each(|(g, w)| *g += self.lambda * w);
        (loss / n + 0.5 * self.lambda * penalty, grad)
    }

    fn lipschitz(&self) -> f64 {
        let max_sq = self.x.iter().map(|r| r.iter().map(|(_, v)| v * v).sum::<f64>()).fold(0.0, f64::max);
        0.5 * (max_sq + 1.0) + self.lambda
    }
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let mut p = z.to_vec();
    crate::kernels::softmax::softmax_f64(&mut p);
    p
}

impl LogisticRegression {
    /// Fits on rows `x` (features below `n_features`) with label indices `y`.
    pub fn fit(x: &[SparseVec], y: &[usize], n_features: usize, c: f64) -> Self {
        let mut classes: Vec<usize> = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let k = classes.len();
        if k < 2 {
            // One class (or none): nothing to learn; it is always predicted.
            return Self { classes, weights: Vec::new(), intercepts: vec![0.0; k] };
        }
        let y = y.iter().map(|l| classes.binary_search(l).expect("every label is a class")).collect();
        let problem = Problem { x, y, k, n_features, lambda: 1.0 / (c * x.len() as f64) };
        let theta = minimise(&problem);
        let (w, b) = theta.split_at(n_features * k);
        Self { classes, weights: w.to_vec(), intercepts: b.to_vec() }
    }

    /// Probabilities over `n_labels` labels (0 for classes not seen in training).
    pub fn predict_proba(&self, row: &SparseVec, n_labels: usize) -> Vec<f64> {
        let k = self.classes.len();
        let mut z = self.intercepts.clone();
        if !self.weights.is_empty() {
            let n_features = self.weights.len() / k;
            for &(j, v) in row.iter().filter(|(j, _)| (*j as usize) < n_features) {
                z.iter_mut().zip(&self.weights[j as usize * k..][..k]).for_each(|(z, w)| *z += v * w);
            }
        }
        let mut out = vec![0.0; n_labels];
        for (&class, p) in self.classes.iter().zip(softmax(&z)) {
            out[class] = p;
        }
        out
    }
}

/// Accelerated gradient descent with gradient-based restart, from zero.
fn minimise(problem: &Problem) -> Vec<f64> {
    let step = 1.0 / problem.lipschitz();
    let dim = problem.n_features * problem.k + problem.k;
    let mut x = vec![0.0; dim];
    let mut y = x.clone();
    let mut t = 1.0f64;
    for _ in 0..MAX_ITERATIONS {
        let (_, g) = problem.value_and_gradient(&y);
        if g.iter().all(|v| v.abs() < TOLERANCE) {
            return y;
        }
        let next: Vec<f64> = y.iter().zip(&g).map(|(y, g)| y - step * g).collect();
        // Momentum that points uphill is dropped (the "gradient restart").
        let uphill = g.iter().zip(next.iter().zip(&x)).map(|(g, (n, x))| g * (n - x)).sum::<f64>() > 0.0;
        let t_next = if uphill { 1.0 } else { (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0 };
        let beta = if uphill { 0.0 } else { (t - 1.0) / t_next };
        y = next.iter().zip(&x).map(|(n, x)| n + beta * (n - x)).collect();
        x = next;
        t = t_next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(dense: &[&[f64]]) -> Vec<SparseVec> {
        dense.iter().map(|r| r.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect()).collect()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = rows(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0], &[0.3, -0.2]]);
        let problem = Problem { x: &x, y: vec![0, 1, 2, 1], k: 3, n_features: 2, lambda: 0.3 };
        let theta: Vec<f64> = (0..9).map(|i| (i as f64 * 0.37).sin()).collect();
        let (_, g) = problem.value_and_gradient(&theta);
        for i in 0..theta.len() {
            let mut up = theta.clone();
            up[i] += 1e-6;
            let mut down = theta.clone();
            down[i] -= 1e-6;
            let numeric = (problem.value_and_gradient(&up).0 - problem.value_and_gradient(&down).0) / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-7, "component {i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn separable_classes_are_learned_and_absent_ones_get_zero() {
        let x = rows(&[&[1.0, 0.0], &[0.9, 0.1], &[0.0, 1.0], &[0.1, 0.9]]);
        let model = LogisticRegression::fit(&x, &[0, 0, 2, 2], 2, 10.0);
        assert_eq!(model.classes, vec![0, 2]);
        let p = model.predict_proba(&vec![(0, 1.0)], 3);
        assert!(p[0] > 0.8 && p[1] == 0.0, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_class_is_always_predicted() {
        let model = LogisticRegression::fit(&rows(&[&[1.0]]), &[1], 1, 1.0);
        assert_eq!(model.predict_proba(&vec![(0, 1.0)], 3), vec![0.0, 1.0, 0.0]);
    }
}
