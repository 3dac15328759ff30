//! Inference-only `y = x·Wᵀ + b` (optionally GELU'd) for frozen linear layers,
//! on weights packed once when the model is loaded.
//!
//! The encoder's matmuls are small and skinny (≈800 rows × 384 or 1536), where
//! gemm's general kernels reach about half of the FMA peak: it re-packs the
//! weights on every call and splits each op across threads. Here the weights
//! sit in microkernel order already, so each call only packs its block of `x`;
//! bias and GELU are applied while a tile of `y` is still in registers/L1.
//!
//! The blocking is BLIS's: a 6×16 register tile (12 ymm accumulators), a
//! KC-deep panel of Wᵀ (KC × 16, ≤ 16 KiB) reused from L1 by every 6-row
//! micro-panel of an MC × KC block of `x` held in L2. AVX2 + FMA only:
//! [`PackedLinear::new`] returns `None` elsewhere and callers keep their
//! generic path.

use rayon::prelude::*;

/// Rows of the register tile.
const MR: usize = 6;
/// Columns of the register tile: two ymm vectors.
const NR: usize = 16;
/// Deepest K block: a 16 KiB panel of Wᵀ plus the 6 KiB micro-panel of `x` fit L1.
const KC_MAX: usize = 192;
/// Rows of `x` packed at a time: MC × KC_MAX floats (96 KiB) stay in L2.
const MC: usize = 96;
/// Alignment of the packed buffers, in floats (a cache line), so that no
/// vector load straddles two lines.
const ALIGN: usize = 16;

/// A float buffer whose usable part starts on a cache line.
struct Aligned {
    data: Vec<f32>,
    start: usize,
}

impl Aligned {
    fn zeros(len: usize) -> Self {
        let data = vec![0f32; len + ALIGN];
        let start = data.as_ptr().align_offset(ALIGN * std::mem::size_of::<f32>()).min(ALIGN);
        Self { data, start }
    }

    fn as_slice(&self) -> &[f32] {
        &self.data[self.start..]
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data[self.start..]
    }
}

/// `W` [n, k] (and its bias) in the order the microkernel reads them.
pub struct PackedLinear {
    n: usize,
    k: usize,
    /// Panel p (16 output columns) holds, for each of the k inputs, the 16
    /// weights `W[16p..16p+16][kk]`; zeros past `n`.
    panels: Aligned,
    /// The bias, zero-padded to whole panels.
    bias: Vec<f32>,
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedLinear({}×{})", self.n, self.k)
    }
}

impl PackedLinear {
    /// Packs `w` [n, k] row-major and `bias` [n]; `None` where the CPU lacks AVX2 + FMA.
    pub fn new(w: &[f32], bias: &[f32], n: usize, k: usize) -> Option<Self> {
        assert_eq!((w.len(), bias.len()), (n * k, n), "packed linear: weight and bias do not fit {n}×{k}");
        if !super::simd::has_avx2() {
            return None;
        }
        let count = n.div_ceil(NR);
        let mut panels = Aligned::zeros(count * k * NR);
        let dst = panels.as_mut_slice();
        for (j, row) in w.chunks_exact(k).enumerate() {
            let (panel, col) = (j / NR, j % NR);
            for (kk, &v) in row.iter().enumerate() {
                dst[(panel * k + kk) * NR + col] = v;
            }
        }
        let mut padded = vec![0f32; count * NR];
        padded[..n].copy_from_slice(bias);
        Some(Self { n, k, panels, bias: padded })
    }

    pub fn out_dim(&self) -> usize {
        self.n
    }

    pub fn in_dim(&self) -> usize {
        self.k
    }

    /// `x·Wᵀ + b` for `x` [rows, k] row-major, GELU (erf form) applied when
    /// `gelu`; [rows, n]. Rows are split evenly across rayon's threads; each
    /// output's sum runs over K in the same order whatever the split.
    pub fn forward(&self, x: &[f32], gelu: bool) -> Vec<f32> {
        assert_eq!(x.len() % self.k, 0, "packed linear: input is not a whole number of rows");
        let rows = x.len() / self.k;
        let mut y = vec![0f32; rows * self.n];
        let per_task = rows.div_ceil(rayon::current_num_threads()).next_multiple_of(MR).max(MR);
        y.par_chunks_mut(per_task * self.n).zip(x.par_chunks(per_task * self.k)).for_each(|(y, x)| {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `new` only builds a PackedLinear where the CPU has AVX2 + FMA.
            unsafe {
                avx2::rows(self, x, y, gelu)
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("PackedLinear exists only on x86-64 CPUs with AVX2 + FMA: {x:?} {y:?}")
        });
        y
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Aligned, PackedLinear, KC_MAX, MC, MR, NR};

    /// What a tile of `y` starts from: the bias (first K block) or its partial sums.
    #[derive(Clone, Copy)]
    enum Start {
        Bias(*const f32),
        Partial,
    }

    /// Where a tile goes: `y` itself or, at the ragged edges, a 6×16 scratch tile.
    struct Tile {
        ptr: *mut f32,
        stride: usize,
    }

    /// All of `y` [rows, n] from `x` [rows, k].
    ///
    /// # Safety
    /// The CPU has AVX2 + FMA; `x` and `y` hold whole rows of `packed`'s shape.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(packed: &PackedLinear, x: &[f32], y: &mut [f32], gelu: bool) {
        let (n, k) = (packed.n, packed.k);
        let rows = y.len() / n;
        // Equal K blocks: the last is not a sliver.
        let kc_size = k.div_ceil(k.div_ceil(KC_MAX));
        let mut a = Aligned::zeros(MC.next_multiple_of(MR) * kc_size);
        for r0 in (0..rows).step_by(MC) {
            let mc = MC.min(rows - r0);
            for k0 in (0..k).step_by(kc_size) {
                let kc = kc_size.min(k - k0);
                pack_rows(&x[r0 * k..(r0 + mc) * k], k, k0, kc, a.as_mut_slice());
                let last = k0 + kc == k;
                for p in 0..n.div_ceil(NR) {
                    let b = packed.panels.as_slice()[(p * k + k0) * NR..].as_ptr();
                    let start = if k0 == 0 { Start::Bias(packed.bias[p * NR..].as_ptr()) } else { Start::Partial };
                    let cols = NR.min(n - p * NR);
                    for i in (0..mc).step_by(MR) {
                        let dst = y[(r0 + i) * n + p * NR..].as_mut_ptr();
                        prefetch_tile(dst, n);
                        let acc = microkernel(kc, a.as_slice()[i * kc..].as_ptr(), b);
                        finish(acc, Tile { ptr: dst, stride: n }, (MR.min(mc - i), cols), start, gelu && last);
                    }
                }
            }
        }
    }

    /// Packs columns k0..k0+kc of `x`'s rows into 6-row micro-panels, k-major
    /// (`dst[panel][kk][row]`), with zero rows past the end.
    #[inline(always)]
    fn pack_rows(x: &[f32], k: usize, k0: usize, kc: usize, dst: &mut [f32]) {
        let rows = x.len() / k;
        for (panel, out) in dst.chunks_exact_mut(kc * MR).take(rows.div_ceil(MR)).enumerate() {
            for r in 0..MR {
                let row = panel * MR + r;
                if row < rows {
                    let src = &x[row * k + k0..row * k + k0 + kc];
                    for (kk, &v) in src.iter().enumerate() {
                        out[kk * MR + r] = v;
                    }
                } else {
                    for kk in 0..kc {
                        out[kk * MR + r] = 0.0;
                    }
                }
            }
        }
    }

    /// Asks for the tile's lines of `y` (its partial sums, or lines about to
    /// be written) while the microkernel runs: a later K block's tile is far
    /// out of L1 by then.
    #[inline(always)]
    unsafe fn prefetch_tile(dst: *const f32, stride: usize) {
        for r in 0..MR {
            let row = dst.wrapping_add(r * stride);
            _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR - 1) as *const i8);
        }
    }

    /// Σ over kc of a (6 × kc, k-major) times b (kc × 16): 12 accumulators.
    #[inline(always)]
    unsafe fn microkernel(kc: usize, a: *const f32, b: *const f32) -> [[__m256; 2]; MR] {
        let mut c = [[_mm256_setzero_ps(); 2]; MR];
        for kk in 0..kc {
            if kk % 4 == 0 {
                _mm_prefetch::<_MM_HINT_T0>(a.add(kk * MR + 96) as *const i8);
            }
            let b0 = _mm256_load_ps(b.add(kk * NR));
            let b1 = _mm256_load_ps(b.add(kk * NR + 8));
            for (r, c) in c.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*a.add(kk * MR + r));
                c[0] = _mm256_fmadd_ps(a, b0, c[0]);
                c[1] = _mm256_fmadd_ps(a, b1, c[1]);
            }
        }
        c
    }

    /// Adds the tile's start, applies GELU when asked, and stores `rows × cols` of it.
    #[inline(always)]
    unsafe fn finish(acc: [[__m256; 2]; MR], tile: Tile, (rows, cols): (usize, usize), start: Start, gelu: bool) {
        if rows == MR && cols == NR {
            return store(acc, &tile, start, gelu);
        }
        let mut scratch = [0f32; MR * NR];
        let edge = Tile { ptr: scratch.as_mut_ptr(), stride: NR };
        if let Start::Partial = start {
            for r in 0..rows {
                std::ptr::copy_nonoverlapping(tile.ptr.add(r * tile.stride), edge.ptr.add(r * NR), cols);
            }
        }
        store(acc, &edge, start, gelu);
        for r in 0..rows {
            std::ptr::copy_nonoverlapping(edge.ptr.add(r * NR), tile.ptr.add(r * tile.stride), cols);
        }
    }

    #[inline(always)]
    unsafe fn store(acc: [[__m256; 2]; MR], tile: &Tile, start: Start, gelu: bool) {
        for (r, acc) in acc.iter().enumerate() {
            let dst = tile.ptr.add(r * tile.stride);
            let (s0, s1) = match start {
                Start::Bias(b) => (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8))),
                Start::Partial => (_mm256_loadu_ps(dst), _mm256_loadu_ps(dst.add(8))),
            };
            _mm256_storeu_ps(dst, _mm256_add_ps(acc[0], s0));
            _mm256_storeu_ps(dst.add(8), _mm256_add_ps(acc[1], s1));
            if gelu {
                // Vectorised by LLVM: the row is 16 floats, in L1.
                for v in &mut *(dst as *mut [f32; NR]) {
                    *v = crate::model::fast_ops::gelu(*v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0) * 0.7).collect()
    }

    /// x·Wᵀ + b in f64, the plain triple loop.
    fn naive(x: &[f32], w: &[f32], b: &[f32], n: usize, k: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut y = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let dot: f64 = (0..k).map(|kk| x[r * k + kk] as f64 * w[j * k + kk] as f64).sum();
                y[r * n + j] = (dot + b[j] as f64) as f32;
            }
        }
        y
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn matches_a_naive_matmul_on_ragged_shapes() {
        if !crate::model::simd::has_avx2() {
            assert!(PackedLinear::new(&[0.0; 6], &[0.0; 2], 2, 3).is_none());
            return;
        }
        // Rows, outputs and inputs off the 6×16 tile, K off and over the K block (two blocks of 150, of 257).
        for (rows, n, k) in [(1, 1, 1), (5, 17, 3), (13, 33, 300), (97, 16, 257), (7, 50, 514), (103, 48, 64)] {
            let (x, w, b) = (values(rows * k, 1), values(n * k, 2), values(n, 3));
            let packed = PackedLinear::new(&w, &b, n, k).unwrap();
            assert_eq!((packed.out_dim(), packed.in_dim()), (n, k));
            let want = naive(&x, &w, &b, n, k);
            let got = packed.forward(&x, false);
            assert!(max_diff(&got, &want) < 1e-5 * (k as f32).sqrt(), "{rows}×{n}×{k}: {}", max_diff(&got, &want));
            let mut gelu = vec![0f32; want.len()];
            crate::model::fast_ops::gelu_slice(&want, &mut gelu);
            let got = packed.forward(&x, true);
            assert!(max_diff(&got, &gelu) < 1e-5 * (k as f32).sqrt(), "{rows}×{n}×{k} gelu");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !crate::model::simd::has_avx2() {
            return;
        }
        let (rows, n, k) = (61, 40, 100);
        let (x, w, b) = (values(rows * k, 4), values(n * k, 5), values(n, 6));
        let packed = PackedLinear::new(&w, &b, n, k).unwrap();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| packed.forward(&x, true))
        };
        assert_eq!(run(1), run(3));
    }
}
