//! Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural
//! Networks", §4.2): one number T > 0 divides every logit, chosen to minimise
//! the negative log-likelihood of held-out labels. Dividing by T changes no
//! argmax, so no label and no F1; it makes a confidence of 0.9 mean right 9
//! times in 10. Fine-tuned encoders grow overconfident as their training loss
//! falls (T > 1); the frozen recipe's logistic regressions are close to
//! calibrated on a large set but underconfident on a few hundred pairs per
//! target, where C = 1 holds their weights small (T < 1). The README's
//! "Calibrated probabilities" measures both.
//!
//! T is folded into the classifier's output layer ([`Classifier::divide_logits`]),
//! so that the folder gives the same probabilities wherever it is loaded.

use std::path::Path;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::Example;
use crate::model::Classifier;
use crate::resolve::ModelDir;
use crate::Result;

/// The temperatures searched. A held-out set the model gets all right would
/// push T towards 0 (ever sharper probabilities), which no new text bears out;
/// a bound keeps such a set from making the model surer than 4× its logits.
const TEMPERATURES: (f64, f64) = (0.25, 20.0);

/// A fitted temperature and what it did to the held-out set's mean NLL.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperatureFit {
    pub temperature: f64,
    /// The temperature in all once this one is applied: a classifier
    /// calibrated before carries its own ([`crate::model::StanceSpec::temperature`]).
    pub total: f64,
    /// Mean negative log-likelihood of the held-out labels before and after.
    pub nll_before: f64,
    pub nll_after: f64,
    /// Held-out examples it was fitted on.
    pub examples: usize,
    /// Held-out examples left out: their label gets no probability at any
    /// temperature in range (the frozen recipe's label that a target's
    /// training data lacks), so they would only push T to its bound.
    #[serde(default)]
    pub left_out: usize,
}

impl TemperatureFit {
    /// Whether the fit stopped at an end of [`TEMPERATURES`] (within the search's tolerance).
    pub fn at_bound(&self) -> bool {
        let (low, high) = TEMPERATURES;
        self.temperature <= low * 1.001 || self.temperature >= high * 0.999
    }
}

impl std::fmt::Display for TemperatureFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "temperature {:.3} (mean negative log-likelihood of {} held-out labels {:.4} -> {:.4})",
            self.temperature, self.examples, self.nll_before, self.nll_after
        )?;
        if self.left_out > 0 {
            write!(
                f,
                "; {} held-out labels left out: the model gives them no probability at any temperature",
                self.left_out
            )?;
        }
        if self.at_bound() {
            let (low, high) = TEMPERATURES;
            // Sharpened as far as allowed: every held-out label is already the model's answer.
            // Flattened as far as allowed: the model does little better than chance there.
            let why = if self.temperature < 1.0 {
                "the model answers nearly every held-out label right and with room to be surer, or the set is too small to place it"
            } else {
                "on the held-out set the model does little better than chance, or the set is too small to place it"
            };
            write!(f, "; at the bound of the temperatures searched ({low} to {high}): {why}")?;
        }
        Ok(())
    }
}

/// A held-out label whose log-probability stays below this at the highest
/// temperature is one the model cannot give (a logit of
/// [`crate::training::head_fit`]'s absent label): no T helps it, and its NLL,
/// thousands of nats, would outweigh every other example's.
const UNREACHABLE_LOG_PROB: f64 = -100.0;

/// The temperature that minimises the mean NLL of `gold` under `log_probs`
/// (log-softmax rows: a constant added to a row's logits changes nothing),
/// leaving out the labels no temperature in range gives a probability;
/// `None` without examples.
pub fn fit_temperature(log_probs: &[Vec<f32>], gold: &[usize]) -> Option<TemperatureFit> {
    // A NaN row stays in, so that a broken likelihood leaves T at 1 (below).
    let unreachable = |row: &[f32], g: usize| -row_nll(row, g, 1.0 / TEMPERATURES.1) < UNREACHABLE_LOG_PROB;
    let (log_probs, kept): (Vec<&Vec<f32>>, Vec<usize>) =
        log_probs.iter().zip(gold).filter(|&(row, &g)| !unreachable(row, g)).unzip();
    if kept.is_empty() {
        return None;
    }
    // NLL as a function of β = 1/T is a log-sum-exp of lines minus a line:
    // convex, so a golden-section search over β finds its minimum.
    let nll = |beta: f64| mean_nll(&log_probs, &kept, beta);
    let (low, high) = (1.0 / TEMPERATURES.1, 1.0 / TEMPERATURES.0);
    let mut beta = golden_section_min(nll, low, high);
    let nll_before = nll(1.0);
    // A flat NLL (identical or uniform rows) or a non-finite one is no reason to move.
    let improves = nll(beta) < nll_before;
    if !improves {
        beta = 1.0;
    }
    let fit = TemperatureFit {
        temperature: 1.0 / beta,
        total: 1.0 / beta,
        nll_before,
        nll_after: nll(beta),
        examples: kept.len(),
        left_out: gold.len() - kept.len(),
    };
    Some(fit)
}

fn mean_nll<R: AsRef<[f32]>>(log_probs: &[R], gold: &[usize], beta: f64) -> f64 {
    log_probs.iter().zip(gold).map(|(row, &g)| row_nll(row.as_ref(), g, beta)).sum::<f64>() / gold.len() as f64
}

/// `−ln softmax(β·row)[g]`.
fn row_nll(row: &[f32], g: usize, beta: f64) -> f64 {
    let max = row.iter().map(|&z| beta * f64::from(z)).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|&z| (beta * f64::from(z) - max).exp()).sum();
    max + sum.ln() - beta * f64::from(row[g])
}

/// The minimum of a unimodal `f` on [low, high], to within 1e-12 of the range
/// (64 golden-section steps shrink it by 0.618⁶⁴).
fn golden_section_min(f: impl Fn(f64) -> f64, mut low: f64, mut high: f64) -> f64 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (high - ratio * (high - low), low + ratio * (high - low));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..64 {
        if fc <= fd {
            (high, d, fd) = (d, c, fc);
            c = high - ratio * (high - low);
            fc = f(c);
        } else {
            (low, c, fc) = (c, d, fd);
            d = low + ratio * (high - low);
            fd = f(d);
        }
    }
    (low + high) / 2.0
}

/// Fits a temperature on `examples` for `classifier` (trainable) and divides its logits by it.
pub fn calibrate(
    classifier: &mut Classifier,
    examples: &[Example],
    batch_size: usize,
) -> Result<Option<TemperatureFit>> {
    let (log_probs, gold) = super::trainer::log_probabilities(classifier, examples, batch_size)?;
    let Some(mut fit) = fit_temperature(&log_probs, &gold) else { return Ok(None) };
    classifier.divide_logits(fit.temperature)?;
    fit.total = classifier.spec.temperature.unwrap_or(fit.temperature);
    Ok(Some(fit))
}

/// [`calibrate`] for the classifier saved in `run`, written into `out` (`run`
/// itself, or a new folder): each file is replaced whole. Without examples
/// nothing is written.
pub fn calibrate_saved(
    (run, out): (&Path, &Path),
    examples: impl FnOnce(&Classifier) -> Result<Vec<Example>>,
    batch_size: usize,
    device: &Device,
) -> Result<Option<TemperatureFit>> {
    let mut classifier = Classifier::load(&ModelDir::open(run)?, device)?;
    let examples = examples(&classifier)?;
    let fit = calibrate(&mut classifier, &examples, batch_size)?;
    if fit.is_some() {
        classifier.save(out, run)?;
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random logit rows z, with gold labels drawn from softmax(z / t): the
    /// NLL of z's rows is least near temperature `t`.
    fn sample(t: f64, n: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut state = 7u64;
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut rows = Vec::new();
        let mut gold = Vec::new();
        for _ in 0..n {
            let z: Vec<f64> = (0..3).map(|_| 8.0 * (uniform() - 0.5)).collect();
            let p: Vec<f64> = z.iter().map(|v| (v / t).exp()).collect();
            let total: f64 = p.iter().sum();
            let u = uniform() * total;
            let label = if u < p[0] {
                0
            } else if u < p[0] + p[1] {
                1
            } else {
                2
            };
            rows.push(z.iter().map(|&v| v as f32).collect());
            gold.push(label);
        }
        (rows, gold)
    }

    #[test]
    fn recovers_the_temperature_the_labels_were_drawn_at() {
        for t in [0.5, 1.0, 3.0] {
            let (rows, gold) = sample(t, 20_000);
            let fit = fit_temperature(&rows, &gold).unwrap();
            assert!((fit.temperature / t - 1.0).abs() < 0.06, "{t}: {fit:?}");
            assert!(fit.nll_after <= fit.nll_before + 1e-12, "{fit:?}");
            for other in [0.8, 1.25] {
                assert!(fit.nll_after <= mean_nll(&rows, &gold, other / fit.temperature) + 1e-12);
            }
        }
    }

    #[test]
    fn a_set_it_gets_all_right_stops_at_the_bound() {
        let rows = vec![vec![0.0, -2.0, -3.0], vec![-1.0, 0.0, -4.0]];
        let fit = fit_temperature(&rows, &[0, 1]).unwrap();
        assert!((fit.temperature - TEMPERATURES.0).abs() < 1e-6, "{fit:?}");
        assert!(fit_temperature(&[], &[]).is_none());
    }

    #[test]
    fn a_flat_or_broken_likelihood_leaves_the_logits_alone() {
        let uniform = vec![vec![-1.0986f32; 3]; 4];
        assert_eq!(fit_temperature(&uniform, &[0, 1, 2, 0]).unwrap().temperature, 1.0);
        let broken = vec![vec![f32::NAN, -1.0, -2.0], vec![-0.1, -3.0, -2.0]];
        assert_eq!(fit_temperature(&broken, &[0, 1]).unwrap().temperature, 1.0);
    }

    #[test]
    fn a_shift_of_a_row_changes_nothing() {
        let (rows, gold) = sample(2.0, 500);
        let shifted: Vec<Vec<f32>> = rows.iter().map(|r| r.iter().map(|v| v - 5.0).collect()).collect();
        let (a, b) = (fit_temperature(&rows, &gold).unwrap(), fit_temperature(&shifted, &gold).unwrap());
        assert!((a.temperature - b.temperature).abs() < 1e-4 && (a.nll_after - b.nll_after).abs() < 1e-5);
    }

    #[test]
    fn a_label_the_model_cannot_give_is_left_out_of_the_fit() {
        // The frozen recipe's label absent from a target's training data has logit −1e4.
        let (rows, gold) = sample(2.0, 500);
        let alone = fit_temperature(&rows, &gold).unwrap();
        let mut with = rows.clone();
        with.push(vec![0.0, -1e4, 1.0]);
        let fit = fit_temperature(&with, &[gold.clone(), vec![1]].concat()).unwrap();
        assert_eq!((fit.examples, fit.left_out), (500, 1), "{fit:?}");
        assert_eq!(fit.temperature, alone.temperature);
        assert!(fit.to_string().contains("1 held-out labels left out"), "{fit}");
        assert!(!fit.to_string().contains("at the bound"), "{fit}");
        let edge = TemperatureFit { temperature: TEMPERATURES.0, ..fit };
        assert!(edge.to_string().contains("at the bound of the temperatures searched (0.25 to 20)"), "{edge}");
        assert!(edge.to_string().contains("answers nearly every held-out label right"), "{edge}");
        let flat = TemperatureFit { temperature: TEMPERATURES.1, ..fit };
        assert!(flat.to_string().contains("little better than chance"), "{flat}");
        assert!(fit_temperature(&[vec![0.0, -1e4]], &[1]).is_none(), "nothing left to fit on");
    }
}
