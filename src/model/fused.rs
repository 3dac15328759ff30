//! Fused CPU kernels with hand-written backward passes: linear layers, layer
//! norm and the attention softmax (scale, padding mask and softmax in one op).
//!
//! The composite versions (`candle_nn::ops::layer_norm_slow`, `softmax`) are
//! differentiable but cost a dozen tensor ops each, and every one of them costs
//! again in the backward pass (candle's autograd allocates a zero gradient,
//! adds, reduces broadcasts, and even differentiates with respect to the
//! constant mask). Here each is one pass forward and one pass backward over f32
//! slices. Other devices and dtypes take the composite path, so CUDA is
//! unaffected. The maths is the composite's; the tests below check values and
//! gradients against it, and the gradients against finite differences.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Tensor, D};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::int8::Int8Linear;
use super::ops::Dropout;
use crate::kernels::simd::{self, multiversion};

/// Rows of one parallel task in the row-wise kernels: enough work per task to
/// amortise scheduling, and a fixed split so results do not depend on the
/// number of threads.
const ROWS_PER_TASK: usize = 32;

fn fused_ok(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let all = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&all[a..b]),
        None => candle_core::bail!("{what}: the input must be contiguous"),
    }
}

// -------------------------------------------------------------------- linear

/// `C = A·B` (or `C += A·B` with `accumulate`) for row-major-described f32
/// matrices given as pointers with row and column strides, on gemm (the
/// crate candle's CPU matmul runs on).
///
/// # Safety
/// Every pointer must be valid for the m×k, k×n and m×n elements its strides
/// reach, and `dst` must not overlap the inputs.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    parallel: bool,
) {
    // Asked only when wanted: without RAYON_NUM_THREADS set, candle re-derives it each time.
    let threads = if parallel { candle_core::utils::get_num_threads() } else { 1 };
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    gemm::gemm(
        m,
        n,
        k,
        dst.0,
        dst.2 as isize,
        dst.1 as isize,
        accumulate,
        lhs.0,
        lhs.2 as isize,
        lhs.1 as isize,
        rhs.0,
        rhs.2 as isize,
        rhs.1 as isize,
        if accumulate { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        parallelism,
    )
}

/// `torch.nn.Linear`: `y = x·Wᵀ + b` over the last dimension. On CPU in f32
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
    pub fn quantize(&mut self, kernel: crate::kernels::int8::Kernel, store: &super::ParamStore) -> Result<()> {
        let residual = super::int8::residual_weights(&self.name);
        let weights = match store.take_quantized(&self.name) {
            Some(q) => q,
            None => std::sync::Arc::new(super::int8::quantize_tensor(&self.weight, kernel, residual)?),
        };
        let made = (weights.outputs(), weights.inputs(), weights.kernel(), weights.residual());
        if made != (self.weight.dim(0)?, self.weight.dim(1)?, kernel, residual) {
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

    /// Several int8 layers over one input, quantized once (attention's query,
    /// key and value); `None` unless every layer runs in int8.
    pub fn forward_shared(layers: &[&Linear], x: &Tensor) -> Result<Option<Vec<Tensor>>> {
        let int8: Option<Vec<(&Int8Linear, bool)>> =
            layers.iter().map(|l| l.int8.as_ref().map(|q| (q, false))).collect();
        int8.map(|layers| Int8Linear::forward_shared(&layers, x)).transpose()
    }
}

/// As `candle_nn::linear`: weight [out, in] and bias [out] under `vb`.
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
            return super::fast_ops::gelu_erf(&self.forward(x)?);
        }
        self.forward_with(x, Epilogue::Gelu(std::sync::Mutex::new(Vec::new())))
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
            Some(b) if self.fuses(x) => {
                let (out, inp) = self.weight.dims2()?;
                if x.dim(D::Minus1)? != inp || b.dims1()? != out {
                    candle_core::bail!("linear: input {:?} does not fit weight {:?}", x.shape(), self.weight.shape());
                }
                x.contiguous()?.apply_op3(&self.weight.contiguous()?, &b.contiguous()?, LinearOp(epilogue))
            }
            _ => candle_nn::Linear::new(self.weight.clone(), self.bias.clone()).forward(x),
        }
    }
}

/// What the linear op applies to `x·Wᵀ + b` before returning it.
enum Epilogue {
    None,
    /// Multiply by constant factors (a dropout mask), one per output element.
    Scale(Vec<f32>),
    /// GELU (erf); the pre-activation is kept here for the backward pass.
    Gelu(std::sync::Mutex<Vec<f32>>),
}

struct LinearOp(Epilogue);

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "stancekit-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let (out, inp) = l2.shape().dims2()?;
        let rows = x.len() / inp;
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        // SAFETY: y is rows×out, x rows×inp and w out×inp, all row-major; wᵀ is read through strides.
        unsafe {
            sgemm((rows, out, inp), (y.as_mut_ptr(), out, 1), true, (x.as_ptr(), inp, 1), (w.as_ptr(), 1, inp), true)
        };
        let y = match &self.0 {
            Epilogue::None => y,
            Epilogue::Scale(factors) => {
                if factors.len() != y.len() {
                    candle_core::bail!("linear: {} dropout factors for {} outputs", factors.len(), y.len());
                }
                scale_in_place(&mut y, factors);
                y
            }
            Epilogue::Gelu(keep) => {
                let mut act = vec![0f32; y.len()];
                act.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(a, h)| super::fast_ops::gelu_slice(h, a));
                *keep.lock().unwrap_or_else(|e| e.into_inner()) = y;
                act
            }
        };
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("rank >= 2") = out;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = w.dims2()?;
        let rows = x.elem_count() / inp;
        let (x2, w) = (x.detach().reshape((rows, inp))?, w.detach());
        let grad = grad.contiguous()?;
        // The gradient with respect to x·Wᵀ + b: through the epilogue first.
        let pre = match &self.0 {
            Epilogue::None => None,
            Epilogue::Scale(factors) => {
                let (storage, layout) = grad.storage_and_layout();
                let mut g = host_f32(&storage, layout, self.name())?.to_vec();
                scale_in_place(&mut g, factors);
                Some(g)
            }
            Epilogue::Gelu(keep) => {
                let h = keep.lock().unwrap_or_else(|e| e.into_inner());
                let (storage, layout) = grad.storage_and_layout();
                let g = host_f32(&storage, layout, self.name())?;
                let mut dh = vec![0f32; g.len()];
                dh.par_chunks_mut(CHUNK)
                    .zip(h.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
                    .for_each(|(d, (h, g))| super::fast_ops::gelu_grad_slice(h, g, d));
                Some(dh)
            }
        };
        let g = match pre {
            Some(g) => Tensor::from_vec(g, (rows, out), x.device())?,
            None => grad.reshape((rows, out))?,
        };
        let dx = g.matmul(&w)?.reshape(x.shape())?;
        let dw = g.t()?.matmul(&x2)?;
        let db = Tensor::ones((1, rows), DType::F32, x.device())?.matmul(&g)?.reshape(out)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

// ---------------------------------------------------------------- layer norm

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension, as
/// `torch.nn.LayerNorm` (biased variance), with gradients for all three inputs.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !fused_ok(&[x, weight, bias]) {
        return candle_nn::ops::layer_norm_slow(x, weight, bias, eps as f32);
    }
    let h = x.dim(D::Minus1)?;
    if weight.dims1()? != h || bias.dims1()? != h {
        candle_core::bail!(
            "layer norm: weight {:?} and bias {:?} do not fit {:?}",
            weight.shape(),
            bias.shape(),
            x.shape()
        );
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormOp { eps: eps as f32 })
}

struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "stancekit-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        let eps = self.eps;
        y.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(x.par_chunks(h * ROWS_PER_TASK))
            .for_each(|(y, x)| layer_norm_rows(x, w, b, eps, y));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = weight.elem_count();
        let n = x.elem_count();
        // One kernel computes all three gradients, packed as [dx | dweight | dbias].
        let packed = x.apply_op3_no_bwd(weight, &grad.contiguous()?, &LayerNormBwd { eps: self.eps })?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = packed.narrow(0, n, h)?;
        let db = packed.narrow(0, n + h, h)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

multiversion! {
    fn layer_norm_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
        let h = w.len();
        for (x, y) in x.chunks_exact(h).zip(y.chunks_exact_mut(h)) {
            let mean = simd::sum(x) / h as f32;
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x - mean;
            }
            let var = simd::dot(y, y) / h as f32;
            let std = (var + eps).sqrt();
            for ((y, &w), &b) in y.iter_mut().zip(w).zip(b) {
                *y = *y / std * w + b;
            }
        }
    }
}

/// The backward pass: `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))` with
/// `ĝ = g ⊙ weight`, `dweight = Σ g ⊙ x̂`, `dbias = Σ g` over the rows.
struct LayerNormBwd {
    eps: f32,
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "stancekit-layer-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let (h, n) = (w.len(), x.len());
        let mut out = vec![0f32; n + 2 * h];
        let (dx, dwb) = out.split_at_mut(n);
        let eps = self.eps;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(h * ROWS_PER_TASK)
            .zip(x.par_chunks(h * ROWS_PER_TASK).zip(g.par_chunks(h * ROWS_PER_TASK)))
            .map(|(dx, (x, g))| {
                let mut dwb = vec![0f32; 2 * h];
                layer_norm_bwd_rows(x, w, g, eps, dx, &mut dwb);
                dwb
            })
            .collect();
        for p in &partials {
            for (acc, v) in dwb.iter_mut().zip(p) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(n + 2 * h)))
    }
}

multiversion! {
    fn layer_norm_bwd_rows(x: &[f32], w: &[f32], g: &[f32], eps: f32, dx: &mut [f32], dwb: &mut [f32]) {
        let h = w.len();
        let (dw, db) = dwb.split_at_mut(h);
        for ((x, g), dx) in x.chunks_exact(h).zip(g.chunks_exact(h)).zip(dx.chunks_exact_mut(h)) {
            let mean = simd::sum(x) / h as f32;
            // dx first holds x̂, then the gradient.
            for (d, &x) in dx.iter_mut().zip(x) {
                *d = x - mean;
            }
            let var = simd::dot(dx, dx) / h as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            let (mut sum_gw, mut sum_gwx) = (0f32, 0f32);
            for (((d, &g), &w), (dw, db)) in dx.iter_mut().zip(g).zip(w).zip(dw.iter_mut().zip(db.iter_mut())) {
                let xhat = *d * rstd;
                *d = xhat;
                *dw += g * xhat;
                *db += g;
                sum_gw += g * w;
                sum_gwx += g * w * xhat;
            }
            let (a, c) = (sum_gw / h as f32, sum_gwx / h as f32);
            for ((d, &g), &w) in dx.iter_mut().zip(g).zip(w) {
                *d = rstd * (g * w - a - *d * c);
            }
        }
    }
}

// ---------------------------------------------------------- attention softmax

/// `softmax(scores · scale + mask_bias)` over the last dimension, for
/// attention scores [batch, heads, queries, keys] and an additive mask
/// [batch, 1, 1, keys]. The mask is a constant: it gets no gradient.
pub fn attention_softmax(scores: &Tensor, mask_bias: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, _, _, k) = scores.dims4()?;
    if !fused_ok(&[scores, mask_bias]) || mask_bias.dims4()? != (b, 1, 1, k) {
        return candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(mask_bias)?, D::Minus1);
    }
    scores.contiguous()?.apply_op2(&mask_bias.contiguous()?, AttentionSoftmax { scale: scale as f32 })
}

struct AttentionSoftmax {
    scale: f32,
}

impl CustomOp2 for AttentionSoftmax {
    fn name(&self) -> &'static str {
        "stancekit-attention-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (scores, mask) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (_, h, q, k) = l1.shape().dims4()?;
        let per_batch = h * q * k;
        let mut y = vec![0f32; scores.len()];
        let scale = self.scale;
        y.par_chunks_mut(k * ROWS_PER_TASK).zip(scores.par_chunks(k * ROWS_PER_TASK)).enumerate().for_each(
            |(task, (y, s))| {
                let first = task * ROWS_PER_TASK * k;
                softmax_rows(s, mask, k, first, per_batch, scale, y)
            },
        );
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _scores: &Tensor,
        _mask: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBwd { scale: self.scale })?;
        Ok((Some(dx), None))
    }
}

multiversion! {
    /// Rows of length `k` of `s`, the first at flat element `first`; each takes the
    /// mask row of its batch item (`per_batch` elements per item).
    fn softmax_rows(s: &[f32], mask: &[f32], k: usize, first: usize, per_batch: usize, scale: f32, y: &mut [f32]) {
        for (r, (s, y)) in s.chunks_exact(k).zip(y.chunks_exact_mut(k)).enumerate() {
            let item = (first + r * k) / per_batch;
            y.copy_from_slice(s);
            softmax_row(y, &mask[item * k..(item + 1) * k], scale);
        }
    }
}

/// In place: `y ← softmax(y · scale + mask)`.
#[inline(always)]
fn softmax_row(y: &mut [f32], mask: &[f32], scale: f32) {
    for (y, &m) in y.iter_mut().zip(mask) {
        *y = *y * scale + m;
    }
    let max = simd::max(y);
    for y in y.iter_mut() {
        *y = simd::exp(*y - max);
    }
    let sum = simd::sum(y);
    for y in y.iter_mut() {
        *y /= sum;
    }
}

/// `dx = scale · y ⊙ (g − Σ g ⊙ y)`, row by row.
struct SoftmaxBwd {
    scale: f32,
}

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "stancekit-softmax-bwd"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let k = l1.dims()[l1.dims().len() - 1];
        let mut dx = vec![0f32; y.len()];
        let scale = self.scale;
        dx.par_chunks_mut(k * ROWS_PER_TASK)
            .zip(y.par_chunks(k * ROWS_PER_TASK).zip(g.par_chunks(k * ROWS_PER_TASK)))
            .for_each(|(dx, (y, g))| softmax_bwd_rows(y, g, k, scale, dx));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

multiversion! {
    fn softmax_bwd_rows(y: &[f32], g: &[f32], k: usize, scale: f32, dx: &mut [f32]) {
        for ((y, g), dx) in y.chunks_exact(k).zip(g.chunks_exact(k)).zip(dx.chunks_exact_mut(k)) {
            let s = simd::dot(g, y);
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                *d = y * (g - s) * scale;
            }
        }
    }
}

// ------------------------------------------------------------------- dropout

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

/// Elements per parallel task of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// `y ← y ⊙ factors`, in parallel chunks.
fn scale_in_place(y: &mut [f32], factors: &[f32]) {
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

// ------------------------------------------------------------ attention core

/// Multi-head scaled dot-product attention on the projections q, k, v
/// [batch, seq, hidden] with an additive mask [batch, 1, 1, seq] and an
/// optional additive position bias [heads, seq, seq] (MPNet's):
/// `dropout(softmax(q·kᵀ · scale + position + mask)) · v` per head, returned as
/// [batch, seq, hidden] (heads side by side, as `BertSelfAttention` returns
/// them). On CPU in f32 one op that reads each head through strides, so there
/// are no head transposes or copies, forward or backward; the backward pass
/// recomputes the probabilities (cheaper than keeping them) and gives q, k, v
/// their gradients with four small matmuls per head. The dropout mask is drawn
/// from `dropout` exactly as the composite path draws it. The op reads the
/// position bias as a constant; when the bias is being trained, its gradient
/// (the score gradient summed over the batch, which the backward pass computes
/// anyway) leaves through [`PositionTap`] on q. Elsewhere: the composite ops.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: &Tensor,
    position: Option<&Tensor>,
    heads: usize,
    dropout: &Dropout,
    train: bool,
) -> Result<Tensor> {
    let (b, l, hidden) = q.dims3()?;
    if hidden % heads != 0 {
        candle_core::bail!("attention: hidden size {hidden} is not a multiple of {heads} heads");
    }
    let scale = 1.0 / ((hidden / heads) as f64).sqrt();
    let fits = k.dims3()? == (b, l, hidden) && v.dims3()? == (b, l, hidden) && mask_bias.dims4()? == (b, 1, 1, l);
    let position_fits = match position {
        Some(p) => fused_ok(&[p]) && p.dims3()? == (heads, l, l),
        None => true,
    };
    if !fused_ok(&[q, k, v, mask_bias]) || !fits || !position_fits {
        return attention_composite(q, k, v, (mask_bias, position), heads, scale, dropout, train);
    }
    let trained = position.filter(|p| p.track_op());
    let position_grad = trained.map(|_| PositionGrad::default());
    let op = AttentionOp {
        heads,
        scale: scale as f32,
        mask: mask_bias.flatten_all()?.to_vec1::<f32>()?,
        position: position.map(|p| p.flatten_all()?.to_vec1::<f32>()).transpose()?,
        dropout: dropout.draw_mask(b * heads * l * l, train),
        position_grad: position_grad.clone(),
    };
    let q = match (trained, position_grad) {
        (Some(p), Some(slot)) => q.contiguous()?.apply_op2(p, PositionTap(slot))?,
        _ => q.contiguous()?,
    };
    q.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

#[allow(clippy::too_many_arguments)]
fn attention_composite(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    (mask_bias, position): (&Tensor, Option<&Tensor>),
    heads: usize,
    scale: f64,
    dropout: &Dropout,
    train: bool,
) -> Result<Tensor> {
    let split = |x: &Tensor| -> Result<Tensor> {
        let (b, l, hidden) = x.dims3()?;
        x.reshape((b, l, heads, hidden / heads))?.transpose(1, 2)?.contiguous()
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = q.matmul(&k.t()?)?;
    let probs = match position {
        Some(p) => attention_softmax(&(scores * scale)?.broadcast_add(p)?, mask_bias, 1.0)?,
        None => attention_softmax(&scores, mask_bias, scale)?,
    };
    let probs = dropout.forward_t(&probs, train)?;
    probs.matmul(&v)?.transpose(1, 2)?.flatten_from(D::Minus2)
}

struct AttentionOp {
    heads: usize,
    scale: f32,
    /// The additive mask, [batch, seq].
    mask: Vec<f32>,
    /// The additive position bias, [heads, seq, seq], a constant.
    position: Option<Vec<f32>>,
    /// Keep-and-scale factors [batch, heads, seq, seq], when dropout is on.
    dropout: Option<Vec<f32>>,
    /// Where the backward pass leaves the position bias's gradient, when it is trained.
    position_grad: Option<PositionGrad>,
}

/// The gradient of a trained position bias, [heads, seq, seq]: written by
/// [`AttentionOp`]'s backward pass, read by [`PositionTap`]'s, which candle
/// runs after it (the tap's output is the attention's input).
#[derive(Clone, Default)]
struct PositionGrad(std::sync::Arc<std::sync::Mutex<Option<Vec<f32>>>>);

/// `q` unchanged, with the position bias as a second input: the way the bias
/// gets its gradient from the fused attention, whose three inputs are q, k, v.
struct PositionTap(PositionGrad);

impl CustomOp2 for PositionTap {
    fn name(&self) -> &'static str {
        "stancekit-position-tap"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, _s2: &CpuStorage, _l2: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(slice(s1, l1, self.name())?.to_vec()), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _q: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let taken = self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(values) = taken else {
            candle_core::bail!("{}: the attention's backward pass left no gradient", self.name())
        };
        Ok((Some(grad.clone()), Some(Tensor::from_vec(values, bias.shape(), bias.device())?)))
    }
}

/// A raw pointer that rayon tasks may share: each task writes its own disjoint
/// part of the buffer.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: only used for disjoint writes from parallel tasks (see the call sites).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

impl AttentionOp {
    /// The probabilities of head `bh` (batch-major) into `p`, and with dropout
    /// applied into `pd` when there is dropout.
    ///
    /// # Safety
    /// `q` and `k` hold [batch, seq, hidden] and `p`, `pd` are seq×seq.
    unsafe fn probabilities(
        &self,
        q: &[f32],
        k: &[f32],
        dims: (usize, usize),
        bh: usize,
        p: &mut [f32],
        pd: &mut [f32],
    ) {
        let (l, hidden) = dims;
        let hd = hidden / self.heads;
        let (bi, hi) = (bh / self.heads, bh % self.heads);
        let base = bi * l * hidden + hi * hd;
        sgemm(
            (l, l, hd),
            (p.as_mut_ptr(), l, 1),
            false,
            (q[base..].as_ptr(), hidden, 1),
            (k[base..].as_ptr(), 1, hidden),
            false,
        );
        let position = self.position.as_ref().map(|p| &p[hi * l * l..(hi + 1) * l * l]);
        softmax_block(p, &self.mask[bi * l..(bi + 1) * l], position, self.scale);
        if let Some(d) = &self.dropout {
            for ((pd, &p), &d) in pd.iter_mut().zip(p.iter()).zip(&d[bh * l * l..(bh + 1) * l * l]) {
                *pd = p * d;
            }
        }
    }
}

multiversion! {
    /// Every row of `p` through [`softmax_row`]; with a position bias, each row
    /// first becomes `p · scale + position` (then scaled by 1, exactly).
    fn softmax_block(p: &mut [f32], mask: &[f32], position: Option<&[f32]>, scale: f32) {
        let l = mask.len();
        for (r, row) in p.chunks_exact_mut(l).enumerate() {
            match position {
                Some(bias) => {
                    for (y, &b) in row.iter_mut().zip(&bias[r * l..(r + 1) * l]) {
                        *y = *y * scale + b;
                    }
                    softmax_row(row, mask, 1.0);
                }
                None => softmax_row(row, mask, scale),
            }
        }
    }
}

multiversion! {
    /// `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))` in place of dP.
    fn softmax_block_bwd(p: &[f32], dp: &mut [f32], l: usize, scale: f32) {
        for (p, dp) in p.chunks_exact(l).zip(dp.chunks_exact_mut(l)) {
            let s = simd::dot(p, dp);
            for (d, &p) in dp.iter_mut().zip(p) {
                *d = p * (*d - s) * scale;
            }
        }
    }
}

fn host_f32<'a>(storage: &'a candle_core::Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{what}: expected a contiguous f32 CPU tensor"),
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "stancekit-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let (b, l, hidden) = l1.shape().dims3()?;
        let hd = hidden / self.heads;
        let mut out = vec![0f32; q.len()];
        let dst = SharedMut(out.as_mut_ptr());
        (0..b * self.heads).into_par_iter().for_each_init(
            || (vec![0f32; l * l], vec![0f32; if self.dropout.is_some() { l * l } else { 0 }]),
            |(p, pd), bh| {
                let base = (bh / self.heads) * l * hidden + (bh % self.heads) * hd;
                // SAFETY: q, k, v, out are [b, l, hidden]; head bh reads and writes the
                // columns base..base+hd of its item's rows only, so tasks write disjoint elements.
                unsafe {
                    self.probabilities(q, k, (l, hidden), bh, p, pd);
                    let probs = if self.dropout.is_some() { &pd[..] } else { &p[..] };
                    sgemm(
                        (l, hd, l),
                        (dst.at(base), hidden, 1),
                        false,
                        (probs.as_ptr(), l, 1),
                        (v[base..].as_ptr(), hidden, 1),
                        false,
                    );
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, l, hidden) = q.dims3()?;
        let hd = hidden / self.heads;
        let grad = grad.contiguous()?;
        let (sq, lq) = q.storage_and_layout();
        let (sk, lk) = k.storage_and_layout();
        let (sv, lv) = v.storage_and_layout();
        let (sg, lg) = grad.storage_and_layout();
        let name = self.name();
        let (q_, k_, v_, g_) =
            (host_f32(&sq, lq, name)?, host_f32(&sk, lk, name)?, host_f32(&sv, lv, name)?, host_f32(&sg, lg, name)?);
        let n = q_.len();
        let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let (dq_, dk_, dv_) = (SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr()));
        // The score gradient of every head, kept when the position bias needs it.
        let mut ds = vec![0f32; if self.position_grad.is_some() { b * self.heads * l * l } else { 0 }];
        let ds_ = SharedMut(ds.as_mut_ptr());
        (0..b * self.heads).into_par_iter().for_each_init(
            || (vec![0f32; l * l], vec![0f32; if self.dropout.is_some() { l * l } else { 0 }], vec![0f32; l * l]),
            |(p, pd, dp), bh| {
                let base = (bh / self.heads) * l * hidden + (bh % self.heads) * hd;
                // SAFETY: as in the forward pass; each head writes only its own columns of dq, dk, dv.
                unsafe {
                    self.probabilities(q_, k_, (l, hidden), bh, p, pd);
                    let probs = if self.dropout.is_some() { &pd[..] } else { &p[..] };
                    let g = g_[base..].as_ptr();
                    // dV = P'ᵀ·dO
                    sgemm((l, hd, l), (dv_.at(base), hidden, 1), false, (probs.as_ptr(), 1, l), (g, hidden, 1), false);
                    // dP' = dO·Vᵀ, then through the dropout and the softmax
                    sgemm(
                        (l, l, hd),
                        (dp.as_mut_ptr(), l, 1),
                        false,
                        (g, hidden, 1),
                        (v_[base..].as_ptr(), 1, hidden),
                        false,
                    );
                    if let Some(d) = &self.dropout {
                        for (dp, &d) in dp.iter_mut().zip(&d[bh * l * l..(bh + 1) * l * l]) {
                            *dp *= d;
                        }
                    }
                    softmax_block_bwd(p, dp, l, self.scale);
                    if self.position_grad.is_some() {
                        // dp is scale · ∂loss/∂(biased scores): the bias enters unscaled.
                        let out = std::slice::from_raw_parts_mut(ds_.at(bh * l * l), l * l);
                        out.iter_mut().zip(dp.iter()).for_each(|(o, &d)| *o = d / self.scale);
                    }
                    // dQ = dS·K, dK = dSᵀ·Q
                    sgemm(
                        (l, hd, l),
                        (dq_.at(base), hidden, 1),
                        false,
                        (dp.as_ptr(), l, 1),
                        (k_[base..].as_ptr(), hidden, 1),
                        false,
                    );
                    sgemm(
                        (l, hd, l),
                        (dk_.at(base), hidden, 1),
                        false,
                        (dp.as_ptr(), 1, l),
                        (q_[base..].as_ptr(), hidden, 1),
                        false,
                    );
                }
            },
        );
        if let Some(slot) = &self.position_grad {
            // Summed over the batch in item order: the same sum whatever the threads did.
            let per_head = self.heads * l * l;
            let mut sum = ds[..per_head].to_vec();
            for item in ds.chunks_exact(per_head).skip(1) {
                sum.iter_mut().zip(item).for_each(|(s, &d)| *s += d);
            }
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sum);
        }
        let t = |x: Vec<f32>| Tensor::from_vec(x, (b, l, hidden), q.device());
        Ok((Some(t(dq)?), Some(t(dk)?), Some(t(dv)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    fn random(shape: &[usize], seed: u64, scale: f32, offset: f32) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn assert_close(what: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
        let (got, want) = (values(got), values(want));
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(1f32, |m, w| m.max(w.abs()));
        let diff = got.iter().zip(&want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
        assert!(diff <= tolerance * scale, "{what}: max difference {diff} (scale {scale})");
    }

    /// Σ y ⊙ r for a fixed random r: a loss whose gradient reaches every output.
    fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
        (y * random(y.dims(), seed, 1.0, 0.0)).unwrap().sum_all().unwrap()
    }

    /// Output and gradients (x, weight, bias) of a linear layer, fused or candle-nn's.
    fn linear_run(fused: bool, x: &Tensor, w: &Tensor, b: &Tensor) -> (Tensor, [Tensor; 3]) {
        let (x, w, b) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap());
        let (wt, bt) = (w.as_tensor().clone(), Some(b.as_tensor().clone()));
        let y = if fused {
            Linear::new(wt, bt).forward(&x).unwrap()
        } else {
            candle_nn::Linear::new(wt, bt).forward(&x).unwrap()
        };
        let grads = weighted_sum(&y, 7).backward().unwrap();
        let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        (y, [g(&x), g(&w), g(&b)])
    }

    #[test]
    fn linear_matches_candle_nn_values_and_gradients() {
        for (x_shape, out) in [(vec![3, 5, 24], 17), (vec![2, 64, 384], 384), (vec![4, 7], 3)] {
            let inp = *x_shape.last().unwrap();
            let x = random(&x_shape, 21, 1.0, 0.1);
            let (w, b) = (random(&[out, inp], 22, 0.3, 0.0), random(&[out], 23, 0.5, 0.0));
            let (y, grads) = linear_run(true, &x, &w, &b);
            let (want, want_grads) = linear_run(false, &x, &w, &b);
            assert_eq!(y.dims(), want.dims());
            assert_close("y", &y, &want, 1e-5);
            for (name, (g, w)) in ["dx", "dweight", "dbias"].iter().zip(grads.iter().zip(&want_grads)) {
                assert_eq!(g.dims(), w.dims(), "{name}");
                assert_close(name, g, w, 1e-5);
            }
        }
    }

    /// Output and gradients of a linear layer followed by dropout or GELU: fused
    /// epilogue against the separate ops (dropout masks from equal seeds).
    fn epilogue_run(fused: bool, gelu: bool, x: &Tensor, w: &Tensor, b: &Tensor) -> (Tensor, [Tensor; 3]) {
        let (x, w, b) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap());
        let layer = Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()));
        let dropout = Dropout::new(0.25, &super::super::ops::DropoutRng::new(9));
        let y = match (fused, gelu) {
            (true, true) => layer.forward_gelu(&x).unwrap(),
            (true, false) => layer.forward_dropout(&x, &dropout, true).unwrap(),
            (false, true) => super::super::fast_ops::gelu_erf(&layer.forward(&x).unwrap()).unwrap(),
            (false, false) => dropout.forward_t(&layer.forward(&x).unwrap(), true).unwrap(),
        };
        let grads = weighted_sum(&y, 7).backward().unwrap();
        let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        (y, [g(&x), g(&w), g(&b)])
    }

    #[test]
    fn linear_epilogues_match_the_separate_ops() {
        let x = random(&[2, 9, 24], 27, 1.5, 0.1);
        let (w, b) = (random(&[40, 24], 28, 0.4, 0.0), random(&[40], 29, 0.5, 0.0));
        for gelu in [false, true] {
            let (y, grads) = epilogue_run(true, gelu, &x, &w, &b);
            let (want, want_grads) = epilogue_run(false, gelu, &x, &w, &b);
            assert_close(if gelu { "gelu" } else { "dropout" }, &y, &want, 1e-6);
            for (name, (g, w)) in ["dx", "dweight", "dbias"].iter().zip(grads.iter().zip(&want_grads)) {
                assert_close(name, g, w, 1e-5);
            }
        }
        // In eval mode the dropout epilogue is the identity.
        let layer = Linear::new(w.clone(), Some(b.clone()));
        let dropout = Dropout::new(0.25, &super::super::ops::DropoutRng::new(9));
        assert_eq!(values(&layer.forward_dropout(&x, &dropout, false).unwrap()), values(&layer.forward(&x).unwrap()));
    }

    #[test]
    fn linear_gradients_agree_with_finite_differences() {
        let x = random(&[2, 3, 10], 24, 1.0, 0.0);
        let (w, b) = (random(&[6, 10], 25, 0.5, 0.0), random(&[6], 26, 0.5, 0.0));
        let (_, grads) = linear_run(true, &x, &w, &b);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| {
            let y = Linear::new(w.clone(), Some(b.clone())).forward(x).unwrap();
            weighted_sum(&y, 7).to_scalar::<f32>().unwrap() as f64
        };
        let bump = |t: &Tensor, i: usize, d: f32| {
            let mut v = values(t);
            v[i] += d;
            Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
        };
        let eps = 1e-2;
        for (arg, i) in [(0, 0), (0, 41), (1, 0), (1, 59), (2, 5)] {
            let up = |d| match arg {
                0 => loss(&bump(&x, i, d), &w, &b),
                1 => loss(&x, &bump(&w, i, d), &b),
                _ => loss(&x, &w, &bump(&b, i, d)),
            };
            let numeric = (up(eps) - up(-eps)) / (2.0 * eps as f64);
            let analytic = values(&grads[arg])[i] as f64;
            assert!(
                (numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(),
                "input {arg}[{i}]: {analytic} vs {numeric}"
            );
        }
    }

    type LnFn = fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;

    fn fused_ln(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        layer_norm(x, w, b, 1e-12)
    }

    fn composite_ln(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, w, b, 1e-12)
    }

    /// Output and gradients (x, weight, bias) of `f` on the given inputs.
    fn ln_run(f: LnFn, x: &Tensor, w: &Tensor, b: &Tensor) -> (Tensor, [Tensor; 3]) {
        let (x, w, b) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap());
        let y = f(&x, &w, &b).unwrap();
        let grads = weighted_sum(&y, 99).backward().unwrap();
        let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        (y, [g(&x), g(&w), g(&b)])
    }

    #[test]
    fn layer_norm_matches_the_composite_values_and_gradients() {
        // 24: not a multiple of the vector width; 384 × 70 rows: several parallel tasks.
        for (shape, h) in [(vec![3, 5, 24], 24), (vec![2, 35, 384], 384), (vec![1, 7], 7)] {
            let x = random(&shape, 1, 2.0, 0.3);
            let (w, b) = (random(&[h], 2, 0.5, 1.0), random(&[h], 3, 0.5, 0.0));
            let (y, grads) = ln_run(fused_ln, &x, &w, &b);
            let (want, want_grads) = ln_run(composite_ln, &x, &w, &b);
            assert_close("y", &y, &want, 1e-5);
            for (name, (g, w)) in ["dx", "dweight", "dbias"].iter().zip(grads.iter().zip(&want_grads)) {
                assert_close(name, g, w, 1e-5);
            }
        }
    }

    #[test]
    fn layer_norm_gradients_agree_with_finite_differences() {
        let x = random(&[4, 6, 24], 4, 1.5, -0.2);
        let (w, b) = (random(&[24], 5, 0.5, 1.0), random(&[24], 6, 0.5, 0.0));
        let (_, grads) = ln_run(fused_ln, &x, &w, &b);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| {
            weighted_sum(&fused_ln(x, w, b).unwrap(), 99).to_scalar::<f32>().unwrap() as f64
        };
        let bump = |t: &Tensor, i: usize, d: f32| {
            let mut v = values(t);
            v[i] += d;
            Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
        };
        let eps = 1e-2;
        for (arg, i) in [(0, 0), (0, 77), (0, 575), (1, 3), (1, 23), (2, 0), (2, 11)] {
            let up = |d| match arg {
                0 => loss(&bump(&x, i, d), &w, &b),
                1 => loss(&x, &bump(&w, i, d), &b),
                _ => loss(&x, &w, &bump(&b, i, d)),
            };
            let numeric = (up(eps) - up(-eps)) / (2.0 * eps as f64);
            let analytic = values(&grads[arg])[i] as f64;
            assert!(
                (numeric - analytic).abs() < 2e-3 + 1e-2 * analytic.abs(),
                "input {arg}[{i}]: autograd {analytic}, finite difference {numeric}"
            );
        }
    }

    #[test]
    fn layer_norm_takes_strided_inputs_and_falls_back_for_other_dtypes() {
        let x = random(&[6, 24], 7, 1.0, 0.0).t().unwrap();
        let (w, b) = (random(&[6], 8, 0.5, 1.0), random(&[6], 9, 0.5, 0.0));
        assert_close("strided", &fused_ln(&x, &w, &b).unwrap(), &composite_ln(&x, &w, &b).unwrap(), 1e-5);
        let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let y = fused_ln(&f64s(&x), &f64s(&w), &f64s(&b)).unwrap();
        assert_eq!(y.dtype(), DType::F64);
        assert_close("f64", &y.to_dtype(DType::F32).unwrap(), &composite_ln(&x, &w, &b).unwrap(), 1e-5);
    }

    fn mask(batch: usize, keys: usize) -> Tensor {
        // Item i keeps its first keys − i positions, as right padding does.
        let v: Vec<f32> =
            (0..batch).flat_map(|i| (0..keys).map(move |k| if k + i < keys { 0.0 } else { -10_000.0 })).collect();
        Tensor::from_vec(v, (batch, 1, 1, keys), &Device::Cpu).unwrap()
    }

    fn composite_softmax(s: &Tensor, m: &Tensor, scale: f64) -> Result<Tensor> {
        candle_nn::ops::softmax(&(s * scale)?.broadcast_add(m)?, D::Minus1)
    }

    fn softmax_run(fused: bool, s: &Tensor, m: &Tensor, scale: f64) -> (Tensor, Tensor) {
        let s = Var::from_tensor(s).unwrap();
        let y = if fused { attention_softmax(&s, m, scale) } else { composite_softmax(&s, m, scale) }.unwrap();
        let grads = weighted_sum(&y, 42).backward().unwrap();
        (y, grads.get(s.as_tensor()).unwrap().clone())
    }

    #[test]
    fn attention_softmax_matches_the_composite_values_and_gradients() {
        for (b, h, q, k) in [(3, 2, 5, 5), (2, 3, 40, 64), (1, 1, 1, 19)] {
            let s = random(&[b, h, q, k], 10, 6.0, 0.0);
            let m = mask(b, k);
            let (y, g) = softmax_run(true, &s, &m, 0.125);
            let (want, want_g) = softmax_run(false, &s, &m, 0.125);
            assert_close("probabilities", &y, &want, 1e-6);
            assert_close("gradient", &g, &want_g, 1e-5);
            let masked = values(&y)
                .iter()
                .zip(values(&m.broadcast_as(y.shape()).unwrap().contiguous().unwrap()))
                .all(|(p, m)| m == 0.0 || *p == 0.0);
            assert!(masked, "masked positions must get exactly 0");
        }
    }

    #[test]
    fn attention_softmax_gradients_agree_with_finite_differences() {
        let s = random(&[2, 2, 3, 8], 11, 3.0, 0.0);
        let m = mask(2, 8);
        let (_, g) = softmax_run(true, &s, &m, 0.5);
        let loss = |s: &Tensor| weighted_sum(&attention_softmax(s, &m, 0.5).unwrap(), 42).to_scalar::<f32>().unwrap();
        let eps = 1e-2f32;
        for i in [0, 5, 17, 40, 95] {
            let mut v = values(&s);
            v[i] += eps;
            let up = loss(&Tensor::from_vec(v.clone(), s.dims(), &Device::Cpu).unwrap());
            v[i] -= 2.0 * eps;
            let down = loss(&Tensor::from_vec(v, s.dims(), &Device::Cpu).unwrap());
            let numeric = (up - down) / (2.0 * eps);
            let analytic = values(&g)[i];
            assert!((numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(), "[{i}]: {analytic} vs {numeric}");
        }
    }

    /// Output and gradients (q, k, v) of multi-head attention, fused or composite,
    /// with dropout drawn from a generator seeded `seed` when `p` > 0.
    fn attention_run(
        fused: bool,
        qkv: &[Tensor; 3],
        (mask, position): (&Tensor, Option<&Tensor>),
        heads: usize,
        p: f64,
    ) -> (Tensor, Vec<Tensor>) {
        let vars: Vec<Var> = qkv.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let (q, k, v) = (vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
        let dropout = Dropout::new(p, &super::super::ops::DropoutRng::new(5));
        let train = p > 0.0;
        let y = if fused {
            attention(q, k, v, mask, position, heads, &dropout, train).unwrap()
        } else {
            let scale = 1.0 / ((q.dim(2).unwrap() / heads) as f64).sqrt();
            attention_composite(q, k, v, (mask, position), heads, scale, &dropout, train).unwrap()
        };
        let grads = weighted_sum(&y, 3).backward().unwrap();
        (y, vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect())
    }

    #[test]
    fn attention_matches_the_composite_values_and_gradients() {
        for ((b, l, hidden, heads), p) in [((2, 5, 12, 3), 0.0), ((3, 64, 384, 12), 0.0), ((2, 9, 16, 2), 0.3)] {
            let qkv = [0, 1, 2].map(|i| random(&[b, l, hidden], 30 + i, 1.5, 0.0));
            let m = mask(b, l);
            // MPNet's relative-position bias, a constant here (the fused op's case).
            let position = random(&[heads, l, l], 33, 2.0, 0.0);
            for position in [None, Some(&position)] {
                let (y, grads) = attention_run(true, &qkv, (&m, position), heads, p);
                let (want, want_grads) = attention_run(false, &qkv, (&m, position), heads, p);
                assert_eq!(y.dims(), want.dims());
                assert_close("context", &y, &want, 1e-5);
                for (name, (g, w)) in ["dq", "dk", "dv"].iter().zip(grads.iter().zip(&want_grads)) {
                    assert_close(name, g, w, 1e-5);
                }
            }
        }
    }

    /// A trained position bias gets the composite path's gradient from the fused op.
    #[test]
    fn a_trained_position_bias_gets_the_composite_gradient() {
        for ((b, l, hidden, heads), p) in [((2, 5, 12, 3), 0.0), ((3, 17, 24, 2), 0.2)] {
            let qkv = [0, 1, 2].map(|i| random(&[b, l, hidden], 80 + i, 1.5, 0.0));
            let m = mask(b, l);
            let run = |fused: bool| {
                let bias = Var::from_tensor(&random(&[heads, l, l], 84, 2.0, 0.0)).unwrap();
                let vars: Vec<Var> = qkv.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
                let dropout = Dropout::new(p, &super::super::ops::DropoutRng::new(5));
                let (q, k, v) = (vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
                let position = Some(bias.as_tensor());
                let y = if fused {
                    attention(q, k, v, &m, position, heads, &dropout, p > 0.0).unwrap()
                } else {
                    let scale = 1.0 / ((hidden / heads) as f64).sqrt();
                    attention_composite(q, k, v, (&m, position), heads, scale, &dropout, p > 0.0).unwrap()
                };
                let grads = weighted_sum(&y, 3).backward().unwrap();
                let mut out: Vec<Tensor> = vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect();
                out.push(grads.get(bias.as_tensor()).unwrap().clone());
                (y, out)
            };
            let ((y, grads), (want, want_grads)) = (run(true), run(false));
            assert_close("context", &y, &want, 1e-5);
            for (name, (g, w)) in ["dq", "dk", "dv", "dposition"].iter().zip(grads.iter().zip(&want_grads)) {
                assert_close(name, g, w, 1e-5);
            }
        }
    }

    #[test]
    fn a_trained_position_bias_gets_its_gradient() {
        let qkv = [0, 1, 2].map(|i| random(&[2, 4, 6], 70 + i, 1.0, 0.0));
        let (m, bias) = (mask(2, 4), Var::from_tensor(&random(&[2, 4, 4], 73, 1.0, 0.0)).unwrap());
        let dropout = Dropout::new(0.0, &super::super::ops::DropoutRng::new(5));
        let loss = |b: &Tensor| {
            let y = attention(&qkv[0], &qkv[1], &qkv[2], &m, Some(b), 2, &dropout, false).unwrap();
            weighted_sum(&y, 3)
        };
        let grad = loss(bias.as_tensor()).backward().unwrap().get(bias.as_tensor()).unwrap().clone();
        let eps = 1e-2f32;
        for i in [0, 5, 18, 31] {
            let mut vals = values(bias.as_tensor());
            vals[i] += eps;
            let up =
                loss(&Tensor::from_vec(vals.clone(), (2, 4, 4), &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            vals[i] -= 2.0 * eps;
            let down = loss(&Tensor::from_vec(vals, (2, 4, 4), &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap();
            let (numeric, analytic) = ((up - down) / (2.0 * eps), values(&grad)[i]);
            assert!((numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(), "[{i}]: {analytic} vs {numeric}");
        }
    }

    #[test]
    fn attention_gradients_agree_with_finite_differences() {
        let qkv = [0, 1, 2].map(|i| random(&[2, 4, 6], 40 + i, 1.0, 0.0));
        let m = mask(2, 4);
        let (_, grads) = attention_run(true, &qkv, (&m, None), 2, 0.0);
        let dropout = Dropout::new(0.0, &super::super::ops::DropoutRng::new(5));
        let loss = |t: &[Tensor; 3]| {
            let y = attention(&t[0], &t[1], &t[2], &m, None, 2, &dropout, false).unwrap();
            weighted_sum(&y, 3).to_scalar::<f32>().unwrap()
        };
        let eps = 1e-2f32;
        for (arg, i) in [(0, 0), (0, 13), (1, 7), (1, 40), (2, 3), (2, 47)] {
            let mut t = qkv.clone();
            let mut vals = values(&t[arg]);
            vals[i] += eps;
            t[arg] = Tensor::from_vec(vals.clone(), (2, 4, 6), &Device::Cpu).unwrap();
            let up = loss(&t);
            vals[i] -= 2.0 * eps;
            t[arg] = Tensor::from_vec(vals, (2, 4, 6), &Device::Cpu).unwrap();
            let down = loss(&t);
            let numeric = (up - down) / (2.0 * eps);
            let analytic = values(&grads[arg])[i];
            assert!(
                (numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(),
                "input {arg}[{i}]: {analytic} vs {numeric}"
            );
        }
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
            let dropout = Dropout::new(0.2, &super::super::ops::DropoutRng::new(3));
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
