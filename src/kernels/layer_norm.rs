//! Layer norm as one pass forward and one backward over f32 rows.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::cpu::{fused_ok, host_f32, slice, ROWS_PER_TASK};
use super::simd::{self, multiversion};

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
            normalize_row(x, w, b, eps, y);
        }
    }
}

multiversion! {
    /// [`layer_norm_rows`] of `x + r`, each row's sum made in one scratch row.
    fn add_layer_norm_rows(x: &[f32], r: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
        let h = w.len();
        let mut sum = vec![0f32; h];
        for ((x, r), y) in x.chunks_exact(h).zip(r.chunks_exact(h)).zip(y.chunks_exact_mut(h)) {
            sum.iter_mut().zip(x.iter().zip(r)).for_each(|(s, (&x, &r))| *s = x + r);
            normalize_row(&sum, w, b, eps, y);
        }
    }
}

/// One row `x` normalised into `y`; inlined into the multiversioned callers.
#[inline(always)]
fn normalize_row(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
    let h = w.len();
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

/// `layer_norm(x + residual, …)`, the closing step of a transformer block.
/// When no gradient can be wanted (nothing here is a variable or comes from
/// one: inference) on CPU f32, one pass that never makes the sum a tensor of
/// its own, with the same numbers as the add and then [`layer_norm`];
/// otherwise exactly those two.
pub fn add_layer_norm(x: &Tensor, residual: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let all = [x, residual, weight, bias];
    if !fused_ok(&all) || all.iter().any(|t| t.track_op()) || x.shape() != residual.shape() {
        return layer_norm(&(x + residual)?, weight, bias, eps);
    }
    let (x, r, w, b) = (x.contiguous()?, residual.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    let what = "add + layer norm";
    let (xs, xl) = x.storage_and_layout();
    let (rs, rl) = r.storage_and_layout();
    let (ws, wl) = w.storage_and_layout();
    let (bs, bl) = b.storage_and_layout();
    let (xv, rv) = (host_f32(&xs, xl, what)?, host_f32(&rs, rl, what)?);
    let (wv, bv) = (host_f32(&ws, wl, what)?, host_f32(&bs, bl, what)?);
    let h = wv.len();
    if x.dim(D::Minus1)? != h || bv.len() != h {
        candle_core::bail!("{what}: weight {:?} and bias {:?} do not fit {:?}", w.shape(), b.shape(), x.shape());
    }
    let mut y = vec![0f32; xv.len()];
    y.par_chunks_mut(h * ROWS_PER_TASK)
        .zip(xv.par_chunks(h * ROWS_PER_TASK).zip(rv.par_chunks(h * ROWS_PER_TASK)))
        .for_each(|(y, (x, r))| add_layer_norm_rows(x, r, wv, bv, eps as f32, y));
    Tensor::from_vec(y, x.shape(), x.device())
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_support::{assert_close, random, values, weighted_sum};
    use candle_core::{DType, Device, Var};

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

    #[test]
    fn add_layer_norm_gives_the_bits_of_the_add_then_layer_norm() {
        for (shape, h) in [(vec![3, 5, 24], 24), (vec![2, 35, 384], 384), (vec![1, 7], 7)] {
            let (x, r) = (random(&shape, 10, 2.0, 0.3), random(&shape, 11, 1.0, -0.1));
            let (w, b) = (random(&[h], 12, 0.5, 1.0), random(&[h], 13, 0.5, 0.0));
            let fused = add_layer_norm(&x, &r, &w, &b, 1e-12).unwrap();
            let separate = layer_norm(&(&x + &r).unwrap(), &w, &b, 1e-12).unwrap();
            let bits = |t: &Tensor| values(t).into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(&fused), bits(&separate), "shape {shape:?}");
        }
    }

    #[test]
    fn add_layer_norm_keeps_gradients_when_they_are_wanted() {
        let (x, r) = (Var::from_tensor(&random(&[4, 24], 14, 1.0, 0.0)).unwrap(), random(&[4, 24], 15, 1.0, 0.0));
        let (w, b) = (random(&[24], 16, 0.5, 1.0), random(&[24], 17, 0.5, 0.0));
        let loss = |y: Tensor| weighted_sum(&y, 99);
        let fused = loss(add_layer_norm(x.as_tensor(), &r, &w, &b, 1e-12).unwrap()).backward().unwrap();
        let separate = loss(layer_norm(&(x.as_tensor() + &r).unwrap(), &w, &b, 1e-12).unwrap()).backward().unwrap();
        let grad = |g: &candle_core::backprop::GradStore| g.get(x.as_tensor()).expect("a gradient for x").clone();
        assert_close("dx", &grad(&fused), &grad(&separate), 0.0);
    }

    #[test]
    fn add_layer_norm_of_two_shapes_is_an_error() {
        let (x, r) = (random(&[2, 3, 8], 18, 1.0, 0.0), random(&[2, 1, 8], 19, 1.0, 0.0));
        let (w, b) = (random(&[8], 20, 0.5, 1.0), random(&[8], 21, 0.5, 0.0));
        assert!(add_layer_norm(&x, &r, &w, &b, 1e-12).is_err());
    }
}
