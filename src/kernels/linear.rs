//! `x·Wᵀ + b` in one op on CPU, with an optional epilogue (a dropout mask or
//! GELU) applied in the same pass, and a hand-written backward pass.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::cpu::{host_f32, sgemm, slice, CHUNK};
use super::dropout::scale_in_place;

/// `torch.nn.Linear`'s `y = x·Wᵀ + b` over the last dimension of a CPU f32
/// `x`, then `epilogue`, in one op: the bias is the gemm's starting value, and
/// the backward pass gives dx = g·W, dW = gᵀ·x (one matmul each, no transposed
/// copies) and db = Σ g over the rows. Callers check [`super::fused_ok`] first.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, epilogue: Epilogue) -> Result<Tensor> {
    let (out, inp) = weight.dims2()?;
    if x.rank() < 2 || x.dim(D::Minus1)? != inp || bias.dims1()? != out {
        candle_core::bail!("linear: input {:?} does not fit weight {:?}", x.shape(), weight.shape());
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LinearOp(epilogue))
}

/// What the linear op applies to `x·Wᵀ + b` before returning it.
pub enum Epilogue {
    None,
    /// Multiply by constant factors (a dropout mask), one per output element.
    Scale(Vec<f32>),
    /// GELU (erf); the pre-activation is kept here for the backward pass.
    Gelu(std::sync::Mutex<Vec<f32>>),
}

impl Epilogue {
    pub fn gelu() -> Self {
        Epilogue::Gelu(std::sync::Mutex::new(Vec::new()))
    }
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
                act.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(a, h)| super::gelu::gelu_slice(h, a));
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
                    .for_each(|(d, (h, g))| super::gelu::gelu_grad_slice(h, g, d));
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dropout::{Dropout, DropoutRng};
    use crate::kernels::test_support::{assert_close, random, values, weighted_sum};
    use candle_core::{Device, Module, Var};

    /// Output and gradients (x, weight, bias) of a linear layer, fused or candle-nn's.
    fn linear_run(fused: bool, x: &Tensor, w: &Tensor, b: &Tensor) -> (Tensor, [Tensor; 3]) {
        let (x, w, b) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap());
        let (wt, bt) = (w.as_tensor().clone(), Some(b.as_tensor().clone()));
        let y = if fused {
            linear(&x, &wt, bt.as_ref().unwrap(), Epilogue::None).unwrap()
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
        let layer = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()));
        let dropout = Dropout::new(0.25, &DropoutRng::new(9));
        let outputs = x.elem_count() / x.dim(D::Minus1).unwrap() * w.dim(0).unwrap();
        let y = match (fused, gelu) {
            (true, true) => linear(&x, &w, &b, Epilogue::gelu()).unwrap(),
            (true, false) => linear(&x, &w, &b, Epilogue::Scale(dropout.draw_mask(outputs, true).unwrap())).unwrap(),
            (false, true) => super::super::gelu::gelu_erf(&layer.forward(&x).unwrap()).unwrap(),
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
    }

    #[test]
    fn linear_gradients_agree_with_finite_differences() {
        let x = random(&[2, 3, 10], 24, 1.0, 0.0);
        let (w, b) = (random(&[6, 10], 25, 0.5, 0.0), random(&[6], 26, 0.5, 0.0));
        let (_, grads) = linear_run(true, &x, &w, &b);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| {
            let y = linear(x, w, b, Epilogue::None).unwrap();
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
}
