//! The linear layer of every encoder: f32 through [`crate::kernels::linear`]
//! on CPU (candle-nn's elsewhere), or int8 after [`Linear::quantize`].

use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::int8::Int8Linear;
use crate::kernels::dropout::Dropout;
use crate::kernels::fused_ok;
use crate::kernels::linear::Epilogue;

/// one op: the bias is the gemm's starting value, and the backward pass
/// gives dx = g·W, dW = gᵀ·x (one matmul each, no transposed copies) and
/// db = Σ g over the rows. Elsewhere candle-nn's `Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    /// Set by [`Linear::quantize`]: then this runs every forward pass.
    int8: Option<Int8Linear>,
    /// The weight's name in the parameter store (empty for a layer made by [`Linear::new`]).
    name: String,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias, int8: None, name: String::new() }
    }

    /// Runs in int8 from now on (inference only), on the weights `store`
    /// quantized at load when it has them, else on this layer's f32 weight
    /// quantized now. The f32 weight is replaced, here and in `store`, by a
    /// stand-in of its shape that holds no memory, so that it is freed.
    /// A layer that `plan` keeps in f32 stays as it is.
    pub(crate) fn quantize(&mut self, plan: super::int8::Int8Plan, store: &super::ParamStore) -> Result<()> {
        if !plan.arithmetic.quantizes(&self.name) {
            return Ok(());
        }
        let (kernel, residual, columns) = plan.for_weight(&self.name);
        let weights = match store.take_quantized(&self.name) {
            Some(q) => q,
            None => std::sync::Arc::new(super::int8::quantize_tensor(&self.weight, &self.name, plan)?),
        };
        let made = (weights.outputs(), weights.inputs(), weights.kernel(), weights.residual(), weights.f32_columns());
        if made != (self.weight.dim(0)?, self.weight.dim(1)?, kernel, residual, &columns[..]) {
            candle_core::bail!(
                "`{}`: quantized as {}×{} for {}, the layer is {:?}",
                self.name,
                weights.outputs(),
                weights.inputs(),
                weights.kernel().name(),
                self.weight.dims()
            );
        }
        self.int8 = Some(Int8Linear::new(weights, self.bias.as_ref())?);
        self.weight = super::int8::stand_in(self.weight.shape())?;
        store.replace_constant(&self.name, self.weight.clone());
        Ok(())
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The weight's name in the parameter store.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What runs the layer in int8, after [`Linear::quantize`].
    pub(crate) fn int8_mut(&mut self) -> Option<&mut Int8Linear> {
        self.int8.as_mut()
    }

    /// Whether the layer runs in int8 ([`Linear::quantize`]).
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// Several int8 layers over one input, quantized once (attention's query,
    /// key and value); `None` unless every layer runs in int8.
    pub fn forward_shared(layers: &[&Linear], x: &Tensor) -> Result<Option<Vec<Tensor>>> {
        let int8: Option<Vec<(&Int8Linear, bool)>> =
            layers.iter().map(|l| l.int8.as_ref().map(|q| (q, false))).collect();
        int8.map(|layers| Int8Linear::forward_shared(&layers, x)).transpose()
    }
}

/// As `candle_nn::linear`: weight `[out, in]` and bias `[out]` under `vb`.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
    let bound = 1. / (in_dim as f64).sqrt();
    let bias = vb.get_with_hints(out_dim, "bias", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
    Ok(Linear { name: format!("{}.weight", vb.prefix()), ..Linear::new(weight, Some(bias)) })
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, Epilogue::None)
    }
}

impl Linear {
    /// `dropout(x·Wᵀ + b)` with the dropout in the same op on CPU: its backward
    /// scales the gradient once instead of a separate node doing so and
    /// allocating a zero gradient and an add. Draws the mask as `dropout` would.
    pub fn forward_dropout(&self, x: &Tensor, dropout: &Dropout, train: bool) -> Result<Tensor> {
        if !self.fuses(x) {
            return dropout.forward_t(&self.forward(x)?, train);
        }
        let out = self.weight.dim(0)?;
        match dropout.draw_mask(x.elem_count() / x.dim(D::Minus1)? * out, train) {
            Some(mask) => self.forward_with(x, Epilogue::Scale(mask)),
            None => self.forward(x),
        }
    }

    /// `gelu_erf(x·Wᵀ + b)` (the exact, erf form) with the GELU in the same op on CPU.
    pub fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        if !self.fuses(x) {
            return crate::kernels::gelu::gelu_erf(&self.forward(x)?);
        }
        self.forward_with(x, Epilogue::gelu())
    }

    fn fuses(&self, x: &Tensor) -> bool {
        matches!(&self.bias, Some(b) if fused_ok(&[x, &self.weight, b]) && x.rank() >= 2)
    }

    fn forward_with(&self, x: &Tensor, epilogue: Epilogue) -> Result<Tensor> {
        if let Some(int8) = &self.int8 {
            return match epilogue {
                Epilogue::None => int8.forward(x, false),
                Epilogue::Gelu(_) => int8.forward(x, true),
                Epilogue::Scale(_) => candle_core::bail!("linear: an int8 layer runs inference only, without dropout"),
            };
        }
        match &self.bias {
            Some(b) if self.fuses(x) => crate::kernels::linear::linear(x, &self.weight, b, epilogue),
            _ => candle_nn::Linear::new(self.weight.clone(), self.bias.clone()).forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention::attention;
    use crate::kernels::dropout::DropoutRng;
    use crate::kernels::layer_norm::layer_norm;
    use crate::kernels::test_support::{assert_close, mask, random, values};
    use candle_core::{DType, Var};

    #[test]
    fn the_dropout_epilogue_is_the_identity_in_eval_mode() {
        let x = random(&[2, 9, 24], 27, 1.5, 0.1);
        let layer = Linear::new(random(&[40, 24], 28, 0.4, 0.0), Some(random(&[40], 29, 0.5, 0.0)));
        let dropout = Dropout::new(0.25, &DropoutRng::new(9));
        assert_eq!(values(&layer.forward_dropout(&x, &dropout, false).unwrap()), values(&layer.forward(&x).unwrap()));
    }

    /// Other devices and dtypes take the composite paths (what CUDA runs): with
    /// f64 inputs every op here must give the fused f32 result and gradients.
    #[test]
    fn composite_fallbacks_match_the_fused_ops() {
        let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let (b, l, h, heads) = (2, 5, 12, 3);
        let x = random(&[b, l, h], 60, 1.0, 0.0);
        let (w, bias) = (random(&[h, h], 61, 0.4, 0.0), random(&[h], 62, 0.3, 0.0));
        let m = mask(b, l);
        // The whole chain of fused ops, as one encoder layer strings them together.
        let run = |dtype: DType| {
            let cast = |t: &Tensor| if dtype == DType::F64 { f64s(t) } else { t.clone() };
            let xv = Var::from_tensor(&cast(&x)).unwrap();
            let wv = Var::from_tensor(&cast(&w)).unwrap();
            let bv = Var::from_tensor(&cast(&bias)).unwrap();
            let layer = Linear::new(wv.as_tensor().clone(), Some(bv.as_tensor().clone()));
            let dropout = Dropout::new(0.2, &DropoutRng::new(3));
            let q = layer.forward(&xv).unwrap();
            let k = layer.forward_gelu(&xv).unwrap();
            let v = layer.forward_dropout(&xv, &dropout, true).unwrap();
            let ctx = attention(&q, &k, &v, &cast(&m), None, heads, &dropout, true).unwrap();
            let y = layer_norm(&(ctx + xv.as_tensor()).unwrap(), wv.as_tensor().get(0).unwrap().as_ref(), &bv, 1e-12)
                .unwrap();
            let y = dropout.forward_t(&y, true).unwrap();
            let loss = (f32s(&y) * random(&[b, l, h], 63, 1.0, 0.0)).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let g = |v: &Var| f32s(grads.get(v.as_tensor()).unwrap());
            (f32s(&y), [g(&xv), g(&wv), g(&bv)])
        };
        let (y, grads) = run(DType::F32);
        let (want, want_grads) = run(DType::F64);
        assert_close("y", &y, &want, 1e-5);
        for (name, (g, w)) in ["dx", "dweight", "dbias"].iter().zip(grads.iter().zip(&want_grads)) {
            assert_close(name, g, w, 1e-4);
        }
    }
}
