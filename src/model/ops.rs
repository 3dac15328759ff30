//! Differentiable building blocks that candle-nn lacks or gets wrong for training.

use std::sync::{Arc, Mutex};

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
        if xs.device().is_cpu() && xs.dtype() == candle_core::DType::F32 {
            return super::fused::scale_by(xs, mask);
        }
        let mask = Tensor::from_vec(mask, xs.shape(), &candle_core::Device::Cpu)?
            .to_device(xs.device())?
            .to_dtype(xs.dtype())?;
        xs * mask
    }
}

/// Layer norm with a backward pass. candle-nn's `LayerNorm` takes a fused path
/// that records no gradient (candle #3011), which silently freezes the encoder;
/// this one is fused with a hand-written backward on CPU and composed of
/// differentiable ops elsewhere (see [`super::fused::layer_norm`]).
#[derive(Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps })
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        super::fused::layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
}
