//! Dropout: seeded masks (candle's CPU RNG cannot be seeded), and the mask
//! applied as one op whose backward pass only scales the gradient.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::cpu::{host_f32, slice, CHUNK};

/// The random stream behind every dropout mask of one model. candle's CPU RNG
/// cannot be seeded, so masks are drawn here and uploaded.
#[derive(Clone)]
pub struct DropoutRng(Arc<Mutex<ChaCha8Rng>>);

impl DropoutRng {
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))))
    }

    /// The full generator state, for checkpoints.
    pub fn state(&self) -> ChaCha8Rng {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn restore(&self, state: ChaCha8Rng) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    fn keep_mask(&self, n: usize, p: f64) -> Vec<f32> {
        let scale = (1.0 / (1.0 - p)) as f32;
        let threshold = (p * u32::MAX as f64) as u32;
        // One bulk fill draws the same words as n calls of `random::<u32>()`
        // (the generator's block buffer in order), several times faster.
        let mut words = vec![0u32; n];
        self.0.lock().unwrap_or_else(|e| e.into_inner()).fill(&mut words[..]);
        words.into_iter().map(|w| if w >= threshold { scale } else { 0.0 }).collect()
    }
}

/// Inverted dropout, as `torch.nn.Dropout`: zero with probability `p`, scale the rest.
#[derive(Clone)]
pub struct Dropout {
    p: f64,
    rng: DropoutRng,
}

impl Dropout {
    pub fn new(p: f64, rng: &DropoutRng) -> Self {
        Self { p, rng: rng.clone() }
    }

    /// The keep-and-scale factors for `n` elements, drawn as [`Dropout::forward_t`]
    /// draws them; `None` when dropout is off (eval, or p = 0).
    pub(crate) fn draw_mask(&self, n: usize, train: bool) -> Option<Vec<f32>> {
        (train && self.p != 0.0).then(|| self.rng.keep_mask(n, self.p))
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let Some(mask) = self.draw_mask(xs.elem_count(), train) else {
            return Ok(xs.clone());
        };
        if super::fused_ok(&[xs]) {
            return scale_by(xs, mask);
        }
        let mask = Tensor::from_vec(mask, xs.shape(), &candle_core::Device::Cpu)?
            .to_device(xs.device())?
            .to_dtype(xs.dtype())?;
        xs * mask
    }
}

/// `x ⊙ factors` for a constant factor per element (a dropout mask), on a
/// contiguous CPU f32 tensor. As one op its backward is only `g ⊙ factors`:
/// candle's product of two tensors would also differentiate with respect to
/// the constant mask (a multiply, a zero tensor and an add, all discarded).
pub fn scale_by(x: &Tensor, factors: Vec<f32>) -> Result<Tensor> {
    if factors.len() != x.elem_count() {
        candle_core::bail!("scale_by: {} factors for {} elements", factors.len(), x.elem_count());
    }
    x.contiguous()?.apply_op1(ScaleBy(factors))
}

struct ScaleBy(Vec<f32>);

impl ScaleBy {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        scale_in_place(&mut y, &self.0);
        y
    }
}

/// `y ← y ⊙ factors`, in parallel chunks.
pub(super) fn scale_in_place(y: &mut [f32], factors: &[f32]) {
    y.par_chunks_mut(CHUNK).zip(factors.par_chunks(CHUNK)).for_each(|(y, f)| {
        for (y, &f) in y.iter_mut().zip(f) {
            *y *= f;
        }
    });
}

impl CustomOp1 for ScaleBy {
    fn name(&self) -> &'static str {
        "stancekit-scale-by"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(self.apply(slice(s, l, self.name())?)), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (storage, layout) = grad.storage_and_layout();
        let g = self.apply(host_f32(&storage, layout, self.name())?);
        Ok(Some(Tensor::from_vec(g, grad.shape(), grad.device())?))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_support::{random, values, weighted_sum};
    use candle_core::{Device, Var};

    /// The bulk fill draws exactly what drawing word by word drew, so seeded
    /// runs keep their masks; and the generator ends in the same state.
    #[test]
    fn masks_are_the_word_by_word_draws() {
        let rng = DropoutRng::new(17);
        let mut reference = ChaCha8Rng::seed_from_u64(17);
        for n in [1, 63, 64, 65, 1000] {
            let threshold = (0.1 * u32::MAX as f64) as u32;
            let want: Vec<f32> =
                (0..n).map(|_| if reference.random::<u32>() >= threshold { 1.0 / 0.9 } else { 0.0 }).collect();
            assert_eq!(rng.keep_mask(n, 0.1), want, "n = {n}");
        }
        assert_eq!(rng.state().random::<u64>(), reference.random::<u64>());
    }

    #[test]
    fn dropout_is_seeded_scaled_and_off_in_eval() {
        let x = Tensor::ones((64, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let run = |seed| {
            let d = Dropout::new(0.25, &DropoutRng::new(seed));
            d.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        let zeros = a.iter().filter(|v| **v == 0.0).count() as f64 / a.len() as f64;
        assert!((zeros - 0.25).abs() < 0.03, "dropped fraction {zeros}");
        assert!(a.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
        let d = Dropout::new(0.25, &DropoutRng::new(3));
        assert_eq!(d.forward_t(&x, false).unwrap().to_vec2::<f32>().unwrap(), x.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn scale_by_multiplies_and_passes_the_gradient_through_the_factors() {
        let x = Var::from_tensor(&random(&[3, 7, 5], 50, 1.0, 0.0)).unwrap();
        let factors: Vec<f32> = (0..105).map(|i| if i % 3 == 0 { 0.0 } else { 1.25 }).collect();
        let y = scale_by(&x, factors.clone()).unwrap();
        let f = Tensor::from_vec(factors, (3, 7, 5), &Device::Cpu).unwrap();
        let want = (x.as_tensor() * &f).unwrap();
        assert_eq!(values(&y), values(&want));
        let g = weighted_sum(&y, 8).backward().unwrap().get(x.as_tensor()).unwrap().clone();
        let want_g = weighted_sum(&want, 8).backward().unwrap().get(x.as_tensor()).unwrap().clone();
        assert_eq!(values(&g), values(&want_g));
    }
}
