//! Small f32 helpers for the fused kernels, written so that LLVM vectorises
//! them, and a macro that compiles a kernel three times (baseline x86-64,
//! AVX2 + FMA, AVX-512) and picks the widest build the CPU runs.

/// Defines `fn $name(..)` whose body is compiled for AVX-512 and for AVX2 +
/// FMA as well as for the baseline target, choosing at run time. The maths is
/// the same in each (Rust never fuses a multiply and an add on its own, and
/// the helpers below sum in a fixed order of 16 lanes), so results do not
/// depend on which build runs.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                if $crate::kernels::simd::has_avx512() {
                    // SAFETY: the CPU supports the features `avx512` was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::kernels::simd::has_avx2() {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Whether this CPU runs AVX2 + FMA code (checked once, then cached by std).
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs AVX-512 (F and BW) code.
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2() && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

const LANES: usize = 16;

multiversion! {
    /// Σ x², vectorised.
    pub fn sum_squares(xs: &[f32]) -> f32 {
        dot(xs, xs)
    }
}

#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    let mut s = rest.iter().sum::<f32>();
    for a in acc {
        s += a;
    }
    s
}

#[inline(always)]
pub fn dot(xs: &[f32], ys: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (cx, cy) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
    let mut s: f32 = cx.remainder().iter().zip(cy.remainder()).map(|(x, y)| x * y).sum();
    for (a, b) in cx.zip(cy) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    for a in acc {
        s += a;
    }
    s
}

/// max over `-xs`, that is −min (−∞ when empty), vectorised.
#[inline(always)]
pub fn max_neg(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if -x > m { -x } else { m });
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if -c[i] > acc[i] { -c[i] } else { acc[i] };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// max over `xs` (−∞ when empty), vectorised.
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// `e^x` for x ≤ 88 in f32 (Cephes' `expf`: within 2 ulp of the exact value),
/// branch-free so that loops over it vectorise; 0 below −87.3, where f32 `exp`
/// underflows to subnormals.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LO: f32 = -87.33654;
    const HI: f32 = 88.0;
    // 1.5 · 2²³: adding it rounds to an integer that sits in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(LO, HI);
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ: n + 127 in the exponent field (t's low bits hold n as an integer).
    let pow2n = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    if x < LO {
        0.0
    } else {
        e * pow2n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let ulp = f32::EPSILON as f64 * want;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e4), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn reductions_match_plain_loops() {
        let xs: Vec<f32> = (0..203).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.5 - 1.0).collect();
        let plain_sum: f64 = xs.iter().map(|&x| x as f64).sum();
        assert!((sum(&xs) as f64 - plain_sum).abs() < 1e-3);
        let plain_dot: f64 = xs.iter().zip(&ys).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!((dot(&xs, &ys) as f64 - plain_dot).abs() < 1e-2);
        assert_eq!(max(&xs), xs.iter().copied().fold(f32::MIN, f32::max));
        assert_eq!(max(&xs[..5]), xs[..5].iter().copied().fold(f32::MIN, f32::max));
    }
}
