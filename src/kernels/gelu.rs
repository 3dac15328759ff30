//! GELU (erf form), vectorised. candle's CPU `gelu_erf` calls scalar libm
//! `erff` per element (about a fifth of inference time in shared
//! notes/perf-baseline.md). Here it is a vectorisable polynomial with the same
//! maths, with a backward pass, so training uses it too.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::CHUNK;
use super::simd::multiversion;

/// GELU with the exact (erf) form, 0.5·x·(1 + erf(x/√2)).
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if super::fused_ok(&[xs]) {
        xs.contiguous()?.apply_op1(GeluErf)
    } else {
        xs.gelu_erf()
    }
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-vectorised"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(src), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
            candle_core::bail!("{}: needs a contiguous f32 tensor", self.name());
        };
        let src = &src[start..end];
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| gelu_slice(s, d));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }

    /// d/dx = 0.5·(1 + erf(x/√2)) + x·φ(x), as candle's own `gelu_erf` backward;
    /// on CPU in f32 one vectorised pass with the same erf and exp as the forward.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        if arg.dtype() == DType::F32 && arg.device().is_cpu() {
            let grad = grad_res.contiguous()?;
            let (xs, xl) = arg.storage_and_layout();
            let (gs, gl) = grad.storage_and_layout();
            if let (
                candle_core::Storage::Cpu(CpuStorage::F32(x)),
                candle_core::Storage::Cpu(CpuStorage::F32(g)),
                Some((x0, x1)),
                Some((g0, g1)),
            ) = (&*xs, &*gs, xl.contiguous_offsets(), gl.contiguous_offsets())
            {
                let (x, g) = (&x[x0..x1], &g[g0..g1]);
                let mut dx = vec![0f32; x.len()];
                dx.par_chunks_mut(CHUNK)
                    .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
                    .for_each(|(dx, (x, g))| gelu_grad_slice(x, g, dx));
                return Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?));
            }
        }
        let cdf = (((arg / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        let pdf = ((arg.sqr()? * -0.5)?.exp()? * (0.5 * std::f64::consts::FRAC_2_SQRT_PI / std::f64::consts::SQRT_2))?;
        let derivative = (cdf + (arg * pdf)?)?;
        Ok(Some(grad_res.mul(&derivative)?))
    }
}

multiversion! {
    /// `dx = g ⊙ gelu′(x)` (also used by the fused linear layer's GELU epilogue).
    pub(crate) fn gelu_grad_slice(x: &[f32], g: &[f32], dx: &mut [f32]) {
        // 1/√(2π)
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for ((d, &x), &g) in dx.iter_mut().zip(x).zip(g) {
            let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = exp_neg(-0.5 * x * x) * INV_SQRT_2PI;
            *d = g * (cdf + x * pdf);
        }
    }
}

multiversion! {
    /// `x = gelu(x)` (the int8 linear layer's output step).
    pub(crate) fn gelu_in_place(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = gelu(*v);
        }
    }
}

multiversion! {
    /// `dst = gelu(src)` (also used by the fused linear layer's GELU epilogue).
    pub(crate) fn gelu_slice(src: &[f32], dst: &mut [f32]) {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = gelu(x);
        }
    }
}

/// Branch-free, so that the loop above vectorises.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz & Stegun 7.1.28, `1 − (1 + a₁z + … + a₆z⁶)⁻¹⁶`: error
/// ≤ 3e-7 in exact arithmetic, about 1.8e-6 in f32 (the 16th power
/// multiplies the rounding of the reciprocal), so GELU stays within about
/// 9e-7 of the exact erf form on [−20, 20] (a NumPy replay in f32). It needs
/// no `exp`, unlike 7.1.26 (PyTorch's vectorised erf, used here before):
/// about 0.55× the time per element with AVX-512 on rows of 128, when GELU
/// was 9 % of int8 `predict`'s time.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const A: [f32; 6] = [0.070_523_08, 0.042_282_01, 0.009_270_527, 0.000_152_014_3, 0.000_276_567_2, 0.000_043_063_8];
    // erf(5) is 1 in f32, and so is this form there; capping z keeps the
    // 16th power clear of subnormals, which cost a microcode assist each.
    let z = x.abs().min(5.0);
    let p = 1.0 + z * (A[0] + z * (A[1] + z * (A[2] + z * (A[3] + z * (A[4] + z * A[5])))));
    let mut t = 1.0 / p;
    for _ in 0..4 {
        t *= t;
    }
    (1.0 - t).copysign(x)
}

/// e^v for v ≤ 0, as Cephes' expf: v = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6
/// polynomial for e^r, and 2^n put straight into the exponent bits. Below
/// -87 (where e^v is under f32's smallest normal) it returns about 1e-38, which
/// is 0 for every use here.
#[inline(always)]
fn exp_neg(v: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let v = v.max(-87.0);
    let n = (v * std::f32::consts::LOG2_E + 0.5).floor();
    let r = v - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // `as i32` would check for NaN and range element by element, which keeps
    // LLVM from vectorising the loop; n is a whole number in [-126, 0] here.
    // SAFETY: v ≥ -87 (max also maps NaN there), so n is finite and in range.
    let n = unsafe { n.to_int_unchecked::<i32>() };
    er * f32::from_bits(((n + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn sweep() -> Vec<f32> {
        // Dense around 0, out to where GELU is x or 0 to the last bit.
        (-20_000..=20_000).map(|i| i as f32 * 1e-3).chain([-100.0, -30.0, 30.0, 100.0, 0.0, -0.0]).collect()
    }

    #[test]
    fn gelu_matches_candles_erf_gelu() {
        let x = Tensor::new(sweep(), &Device::Cpu).unwrap();
        let fast = gelu_erf(&x).unwrap().to_vec1::<f32>().unwrap();
        let exact = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let worst = fast.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 2e-6, "max |difference| {worst}");
        // The plain loop (no AVX2) agrees with the dispatched one.
        let plain: Vec<f32> = sweep().into_iter().map(gelu).collect();
        assert_eq!(plain.iter().zip(&fast).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max), 0.0);
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulps() {
        for i in 0..=86_900 {
            let v = -(i as f32) * 1e-3;
            let (got, want) = (exp_neg(v), v.exp());
            assert!((got - want).abs() <= 4.0 * f32::EPSILON * want.max(f32::MIN_POSITIVE), "e^{v}: {got} vs {want}");
        }
    }

    #[test]
    fn gelu_gradient_matches_candles() {
        let x = Var::new(sweep(), &Device::Cpu).unwrap();
        let weights = Tensor::arange(0f32, x.dim(0).unwrap() as f32, &Device::Cpu).unwrap().cos().unwrap();
        let grad = |y: Tensor| {
            let grads = (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap()
        };
        let fast = grad(gelu_erf(x.as_tensor()).unwrap());
        let exact = grad(x.as_tensor().gelu_erf().unwrap());
        let worst = fast.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "max |gradient difference| {worst}");
    }
}
