//! Random inputs, a loss that reaches every output and a tolerance check,
//! for the kernels' tests and the model layers' tests built on them.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

pub(crate) fn random(shape: &[usize], seed: u64, scale: f32, offset: f32) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

pub(crate) fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

pub(crate) fn assert_close(what: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
    let (got, want) = (values(got), values(want));
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(1f32, |m, w| m.max(w.abs()));
    let diff = got.iter().zip(&want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(diff <= tolerance * scale, "{what}: max difference {diff} (scale {scale})");
}

/// Σ y ⊙ r for a fixed random r: a loss whose gradient reaches every output.
pub(crate) fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
    (y * random(y.dims(), seed, 1.0, 0.0)).unwrap().sum_all().unwrap()
}

pub(crate) fn mask(batch: usize, keys: usize) -> Tensor {
    // Item i keeps its first keys − i positions, as right padding does.
    let v: Vec<f32> =
        (0..batch).flat_map(|i| (0..keys).map(move |k| if k + i < keys { 0.0 } else { -10_000.0 })).collect();
    Tensor::from_vec(v, (batch, 1, 1, keys), &Device::Cpu).unwrap()
}
