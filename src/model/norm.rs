//! Layer norm as a module of the encoders, on the fused kernel.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::layer_norm::add_layer_norm;

/// Layer norm with a backward pass. candle-nn's `LayerNorm` takes a fused path
/// that records no gradient (candle #3011), which silently freezes the encoder;
/// this one is fused with a hand-written backward on CPU and composed of
/// differentiable ops elsewhere (see [`crate::kernels::layer_norm::layer_norm`]).
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

    /// `forward(x + residual)`, in one pass at inference ([`add_layer_norm`]).
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        add_layer_norm(x, residual, &self.weight, &self.bias, self.eps)
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        crate::kernels::layer_norm::layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}
