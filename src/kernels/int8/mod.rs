//! Int8 matrix multiplication for inference (`--precision int8`).
//!
//! `y = x·Wᵀ + b` as ONNX Runtime's and PyTorch's dynamic quantization do it:
//! the weights are quantized once, symmetrically per output channel, to
//! i8 in [-127, 127]; each input row is quantized when it arrives,
//! asymmetrically to u8 with its own scale and zero point; products are summed
//! exactly in i32, and the output step applies both scales, the zero-point
//! correction, the bias and an optional activation (GELU) while the tile is
//! still in cache.
//!
//! Every kernel computes the same i32 sums and the same f32 output step, so
//! all of them give bit-identical results (the tests hold each one the CPU
//! runs to a scalar reference):
//!
//! - `amx`: Intel's tile unit (`tdpbusd`, 16 × 16 sums over 64 bytes of depth
//!   per instruction), 32 rows × 32 columns per block, through `asm!`;
//! - `avx512-vnni`: `vpdpbusd` on 512-bit registers, 6 rows × 64 columns;
//! - `avx-vnni`: the same instruction on 256-bit registers, 6 × 16;
//! - `avx2`: no u8·i8 dot product without saturation (`vpmaddubsw` adds two
//!   products into an i16 and saturates at 255·127·2), so both sides are
//!   widened to i16 (activations when quantized, the i8 weights as they are
//!   loaded) and `vpmaddwd` sums pairs exactly into i32, 6 × 16;
//! - `scalar`: portable, for other architectures and as the reference.

#[cfg(test)]
mod tests;
mod tiles;

use rayon::prelude::*;

use super::simd::multiversion;
use tiles::{Geometry, LineBytes, TileFn};

/// Which instruction set runs the int8 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Amx,
    Avx512Vnni,
    AvxVnni,
    Avx2,
    Scalar,
}

/// Overrides the automatic choice (benchmarks, and measuring the AVX2 path on a VNNI machine).
pub const KERNEL_ENV: &str = "STANCEKIT_INT8_KERNEL";

impl Kernel {
    pub const ALL: [Kernel; 5] = [Kernel::Amx, Kernel::Avx512Vnni, Kernel::AvxVnni, Kernel::Avx2, Kernel::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "amx",
            Kernel::Avx512Vnni => "avx512-vnni",
            Kernel::AvxVnni => "avx-vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Scalar => "scalar",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this CPU can run the kernel.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Amx => has!("avx512f") && has!("avx512bw") && amx_permitted(),
                Kernel::Avx512Vnni => has!("avx512f") && has!("avx512bw") && has!("avx512vnni"),
                Kernel::AvxVnni => has!("avx2") && has!("avxvnni"),
                Kernel::Avx2 => has!("avx2"),
                Kernel::Scalar => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Scalar
        }
    }

    /// The kernels this CPU runs, fastest first.
    pub fn available() -> Vec<Kernel> {
        Self::ALL.into_iter().filter(|k| k.supported()).collect()
    }

    /// The kernel to use: [`KERNEL_ENV`] when set (and not empty), else the
    /// fastest this CPU runs. On x86-64 without AVX2 this is an error rather
    /// than a scalar crawl: f32 is faster there.
    pub fn select() -> Result<Kernel, String> {
        if let Some(name) = std::env::var(KERNEL_ENV).ok().filter(|n| !n.is_empty()) {
            let kernel = Kernel::parse(&name).ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                format!("{KERNEL_ENV}={name:?} is not one of {}", names.join(", "))
            })?;
            return if kernel.supported() {
                Ok(kernel)
            } else {
                Err(format!("{KERNEL_ENV}={name}: this CPU lacks the instructions that kernel needs"))
            };
        }
        match Self::available().first() {
            Some(Kernel::Scalar) if cfg!(target_arch = "x86_64") => {
                Err("--precision int8 needs a CPU with AVX2; this one has none, use --precision f32".into())
            }
            Some(&k) => Ok(k),
            None => Err("no int8 kernel runs on this CPU".into()),
        }
    }

    fn geometry(self) -> Geometry {
        tiles::geometry(self)
    }
}

#[cfg(test)]
impl Kernel {
    /// The kernels tests run: those this CPU runs, and `amx` on a model of
    /// the tile unit where it has none (`tiles::TileUnitModel`).
    pub fn tested() -> Vec<Kernel> {
        let mut kernels = Self::available();
        if !kernels.contains(&Kernel::Amx) {
            kernels.insert(0, Kernel::Amx);
        }
        kernels
    }
}

/// Whether the CPU has AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and
/// 25) and Linux lets this process use the tile registers (asked once, with
/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`).
#[cfg(target_arch = "x86_64")]
fn amx_permitted() -> bool {
    static PERMITTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PERMITTED.get_or_init(|| {
        // CPUID leaf 7 exists on every CPU with AVX-512, checked before this is called.
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        let cpu = edx & (1 << 24) != 0 && edx & (1 << 25) != 0;
        #[cfg(target_os = "linux")]
        {
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: a plain system call with integer arguments.
            cpu && unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } == 0
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = cpu;
            false
        }
    })
}

/// An input column and its f32 weights, one per output ([`QuantizedWeights::set_f32_columns`]).
pub type ColumnWeights = (usize, Vec<f32>);

/// A weight matrix [out, in] quantized per output channel and packed for one kernel.
pub struct QuantizedWeights {
    kernel: Kernel,
    /// Output features (rows of the torch weight).
    outputs: usize,
    /// Input features.
    inputs: usize,
    /// Two packed channels per output channel (see [`QuantizedWeights::with_residual`]).
    residual: bool,
    /// Per packed channel (one per output, two with `residual`): the value
    /// of one step of its i8 grid.
    scales: Vec<f32>,
    /// Per packed channel: Σ of its i8 weights, for the zero-point correction.
    sums: Vec<i32>,
    /// Column panels of `nr` outputs, in the kernel's layout (see [`tiles`]).
    packed: LineBytes,
    /// Input columns multiplied in f32 ([`QuantizedWeights::with_f32_columns`]).
    f32_columns: Option<F32Columns>,
}

/// Input columns that stay out of the rows' u8 range: the activations' few
/// large columns (the same ones in every layer of an encoder that reads a
/// layer norm's output: see `scripts/int8-error-sim.py`) would otherwise set
/// each row's step, which rounds every other column to it. As LLM.int8()
/// does, their products run in f32 beside the integer ones.
#[derive(Debug, Clone)]
struct F32Columns {
    columns: Vec<usize>,
    /// `[column][output]`: the f32 weights.
    weights: Vec<f32>,
}

impl QuantizedWeights {
    /// Quantizes a row-major [outputs, inputs] f32 matrix (a torch `Linear.weight`).
    pub fn new(weight: &[f32], outputs: usize, inputs: usize, kernel: Kernel) -> Self {
        Self::with_residual(weight, outputs, inputs, kernel, false)
    }

    /// [`QuantizedWeights::new`]; with `residual`, each channel is kept twice:
    /// rounded to i8, then what that rounding left (at most half a step)
    /// rounded to i8 on a scale of its own, some 250 times finer. Products run
    /// over both and the output step adds them: weights good to about 15 bits,
    /// for twice the work in that layer.
    pub fn with_residual(weight: &[f32], outputs: usize, inputs: usize, kernel: Kernel, residual: bool) -> Self {
        assert_eq!(weight.len(), outputs * inputs, "weight is not {outputs}×{inputs}");
        let width = inputs.max(1);
        let (mut q, mut scales) = quantize_channels(weight, inputs);
        if residual {
            let mut left = vec![0f32; weight.len()];
            left.par_chunks_mut(width).zip(weight.par_chunks(width)).zip(q.par_chunks(width)).zip(&scales).for_each(
                |(((left, w), q), &s)| left.iter_mut().zip(w).zip(q).for_each(|((l, &w), &v)| *l = w - v as f32 * s),
            );
            let (q2, s2) = quantize_channels(&left, inputs);
            // Each panel of NR packed channels holds NR/2 outputs: their first
            // parts, then their residuals, so that the output step adds two
            // runs of contiguous sums (vectors) rather than neighbours.
            let half = kernel.geometry().nr / 2;
            let mut both = vec![0i8; 2 * q.len()];
            both.par_chunks_mut(2 * half * width)
                .zip(q.par_chunks(half * width))
                .zip(q2.par_chunks(half * width))
                .for_each(|((d, a), b)| {
                    let (first, second) = d.split_at_mut(a.len());
                    first.copy_from_slice(a);
                    second.copy_from_slice(b);
                });
            q = both;
            scales = scales.chunks(half).zip(s2.chunks(half)).flat_map(|(a, b)| a.iter().chain(b)).copied().collect();
        }
        let sums = q.par_chunks(width).map(channel_sum).collect();
        let packed = tiles::pack(&q, scales.len(), inputs, kernel.geometry());
        Self { kernel, outputs, inputs, residual, scales, sums, packed, f32_columns: None }
    }

    /// The same weights, with the input `columns` multiplied in f32: each
    /// input row is quantized as if those columns were 0, and the output step
    /// adds their values times `weight`'s columns, unrounded (`weight`: the
    /// row-major [outputs, inputs] matrix these weights were quantized from).
    /// Indices past the inputs and repeats are dropped.
    pub fn with_f32_columns(mut self, columns: &[usize], weight: &[f32]) -> Self {
        assert_eq!(weight.len(), self.outputs * self.inputs, "weight is not {}×{}", self.outputs, self.inputs);
        let columns: Vec<usize> = columns.iter().copied().filter(|&c| c < self.inputs).collect();
        let column = |c: usize| weight.iter().skip(c).step_by(self.inputs).copied().collect();
        self.set_f32_columns(columns.iter().map(|&c| (c, column(c))).collect()).expect("columns inside the weight");
        self
    }

    /// [`QuantizedWeights::with_f32_columns`] in place, from (column, its
    /// `outputs` f32 weights) pairs; none clears them. Repeats are dropped;
    /// a column past the inputs, or weights not one per output, are an error.
    pub fn set_f32_columns(&mut self, mut columns: Vec<ColumnWeights>) -> Result<(), String> {
        if let Some((c, w)) = columns.iter().find(|(c, w)| *c >= self.inputs || w.len() != self.outputs) {
            return Err(format!(
                "f32 column {c} with {} weights: the layer has {}×{}",
                w.len(),
                self.outputs,
                self.inputs
            ));
        }
        columns.sort_by_key(|(c, _)| *c);
        columns.dedup_by_key(|(c, _)| *c);
        self.f32_columns = (!columns.is_empty()).then(|| F32Columns {
            columns: columns.iter().map(|(c, _)| *c).collect(),
            weights: columns.into_iter().flat_map(|(_, w)| w).collect(),
        });
        Ok(())
    }

    /// The input columns multiplied in f32, in order.
    pub fn f32_columns(&self) -> &[usize] {
        self.f32_columns.as_ref().map_or(&[], |f| &f.columns)
    }

    /// Whether each channel is kept twice ([`QuantizedWeights::with_residual`]).
    pub fn residual(&self) -> bool {
        self.residual
    }

    /// Packed channels per output channel.
    fn parts(&self) -> usize {
        1 + self.residual as usize
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// `finish(x·Wᵀ + bias)` for `x` row-major [rows, inputs]; `finish` runs on
    /// each output row's slice of a tile (an activation such as GELU), in place.
    pub fn matmul(&self, x: &[f32], bias: Option<&[f32]>, finish: &(dyn Fn(&mut [f32]) + Sync)) -> Vec<f32> {
        self.matmul_quantized(&self.quantize_input(x), bias, finish)
    }

    /// `x` quantized as [`QuantizedWeights::matmul`] reads it: once for
    /// several products over the same input (attention's query, key and value).
    pub fn quantize_input(&self, x: &[f32]) -> QuantizedInput {
        let rows = x.len().checked_div(self.inputs).unwrap_or(0);
        assert_eq!(x.len(), rows * self.inputs, "input is not [rows, {}]", self.inputs);
        let columns = self.f32_columns();
        QuantizedInput {
            kernel: self.kernel,
            inputs: self.inputs,
            acts: QuantizedRows::new(x, self.inputs, self.kernel.geometry(), columns),
            f32_columns: columns.to_vec(),
            f32_values: x.chunks(self.inputs.max(1)).flat_map(|row| columns.iter().map(|&c| row[c])).collect(),
        }
    }

    /// [`QuantizedWeights::matmul`] of an input quantized for weights of this kernel and depth.
    pub fn matmul_quantized(
        &self,
        input: &QuantizedInput,
        bias: Option<&[f32]>,
        finish: &(dyn Fn(&mut [f32]) + Sync),
    ) -> Vec<f32> {
        assert!(input.kernel == self.kernel && input.inputs == self.inputs, "input quantized for other weights");
        assert!(input.f32_columns == self.f32_columns(), "input split at other f32 columns");
        let acts = &input.acts;
        let rows = acts.scales.len();
        let zeros;
        let bias = match bias {
            Some(b) => b,
            None => {
                zeros = vec![0f32; self.outputs];
                &zeros
            }
        };
        assert_eq!(bias.len(), self.outputs, "bias is not [{}]", self.outputs);
        let geometry = self.kernel.geometry();
        // Every element is written by exactly one tile: no need to zero it first.
        let mut out: Vec<std::mem::MaybeUninit<f32>> = Vec::with_capacity(rows * self.outputs);
        // SAFETY: MaybeUninit needs no initialisation.
        unsafe { out.set_len(rows * self.outputs) };
        let f32_values = &input.f32_values;
        let job =
            Job { acts, weights: self, bias, f32_values, finish, out: OutPtr(out.as_mut_ptr().cast()), rows, geometry };
        let tile_fn: TileFn = tiles::tile_fn(self.kernel);
        let tiles = job.row_tiles() * job.col_tiles();
        // SAFETY: the kernel is supported (checked when the weights were made
        // for it by `Kernel::select` or by the caller), and tiles write disjoint
        // parts of `out`, which outlives the loop.
        (0..tiles).into_par_iter().for_each(|t| unsafe { tile_fn(&job, t) });
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: the tiles cover [0, rows) × [0, outputs): every element is initialised.
        unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) }
    }
}

/// An input quantized per row for one kernel and depth ([`QuantizedWeights::quantize_input`]).
pub struct QuantizedInput {
    kernel: Kernel,
    inputs: usize,
    acts: QuantizedRows,
    /// The columns kept in f32 ([`QuantizedWeights::with_f32_columns`]) and
    /// their values, [row][column].
    f32_columns: Vec<usize>,
    f32_values: Vec<f32>,
}

impl F32Columns {
    /// `out[c] += Σ_i values[i] · weights[i][first + c]`, 16 outputs at a
    /// time: over fixed-size arrays the sum stays in one register over the
    /// columns (over slices of a run-time length it went through the stack,
    /// and these products cost MPNet's int8 about 9 % of its time), and `out`
    /// is read and written once. The last, partial run adds the same
    /// products in the same order.
    #[inline(always)]
    fn add_products(&self, values: &[f32], first: usize, out: &mut [f32]) {
        let outputs = self.weights.len() / self.columns.len();
        let weights = |i: usize, at: usize| &self.weights[i * outputs + at..];
        let mut chunks = out.chunks_exact_mut(16);
        let mut start = first;
        for out in &mut chunks {
            let mut sum = [0f32; 16];
            for (i, &v) in values.iter().enumerate() {
                let w: &[f32; 16] = weights(i, start)[..16].try_into().expect("16 weights");
                sum.iter_mut().zip(w).for_each(|(s, &w)| *s += v * w);
            }
            out.iter_mut().zip(sum).for_each(|(o, s)| *o += s);
            start += 16;
        }
        for (j, o) in chunks.into_remainder().iter_mut().enumerate() {
            *o += values.iter().enumerate().fold(0f32, |s, (i, &v)| s + v * weights(i, start)[j]);
        }
    }
}

/// Symmetric per-row quantization to [-127, 127]: (values, scale per row).
fn quantize_channels(weight: &[f32], inputs: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; weight.len()];
    let mut scales = vec![0f32; weight.len() / inputs.max(1)];
    q.par_chunks_mut(inputs.max(1))
        .zip(weight.par_chunks(inputs.max(1)))
        .zip(scales.par_iter_mut())
        .for_each(|((q, row), scale)| *scale = quantize_channel(row, q));
    (q, scales)
}

multiversion! {
    /// Σ of one channel's i8 weights.
    fn channel_sum(q: &[i8]) -> i32 {
        q.iter().map(|&v| v as i32).sum()
    }
}

multiversion! {
    /// One channel of [`quantize_channels`]; returns its scale.
    #[allow(clippy::manual_clamp)] // clamp keeps NaN, and NaN must not reach the unchecked conversion
    fn quantize_channel(row: &[f32], q: &mut [i8]) -> f32 {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = max / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (q, &v) in q.iter_mut().zip(row) {
            // SAFETY: max/min bring every value, NaN included, into [-127, 127].
            *q = unsafe { (v * inv).round_ties_even().max(-127.0).min(127.0).to_int_unchecked::<i32>() as i8 };
        }
        scale
    }
}

/// Input rows quantized to u8 (u16 for the AVX2 kernel), zero-padded to the packed depth.
struct QuantizedRows {
    data: LineBytes,
    /// Elements per row (the packed depth).
    stride: usize,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

impl QuantizedRows {
    /// `x`'s rows, each quantized as if its `columns` (kept in f32) were 0.
    fn new(x: &[f32], inputs: usize, g: Geometry, columns: &[usize]) -> Self {
        let stride = g.depth(inputs);
        let rows = x.len().checked_div(inputs).unwrap_or(0);
        let padded_rows = rows.div_ceil(g.row_align) * g.row_align;
        // SAFETY: every byte is written below before it is read: the padding
        // rows here, the rest by `quantize_row` (values, then zero padding).
        let mut data = unsafe { LineBytes::uninit(padded_rows * stride * g.a_bytes) };
        data[rows * stride * g.a_bytes..].fill(0);
        let mut params = vec![(0f32, 0i32); rows];
        data.par_chunks_mut((stride * g.a_bytes).max(1))
            .zip(x.par_chunks(inputs.max(1)))
            .zip(params.par_iter_mut())
            .for_each_init(Vec::new, |masked, ((dst, row), p)| {
                // A row with its f32 columns zeroed, in a buffer each thread reuses.
                let row = if columns.is_empty() {
                    row
                } else {
                    masked.clear();
                    masked.extend_from_slice(row);
                    columns.iter().for_each(|&c| masked[c] = 0.0);
                    &masked[..]
                };
                *p = quantize_row(row, dst, g.a_bytes)
            });
        let (scales, zeros) = params.into_iter().unzip();
        Self { data, stride, scales, zeros }
    }
}

multiversion! {
    /// Asymmetric u8 quantization of one row (the range always holds 0, so that
    /// zero padding stays exact): writes the values as `a_bytes`-wide
    /// little-endian integers, then zeros up to the end of `dst`, and returns
    /// (scale, zero point).
    #[allow(clippy::manual_clamp)] // clamp keeps NaN, and NaN must not reach the unchecked conversion
    fn quantize_row(row: &[f32], dst: &mut [u8], a_bytes: usize) -> (f32, i32) {
        let (dst, padding) = dst.split_at_mut(row.len() * a_bytes);
        padding.fill(0);
        // NaN is skipped by both; the range always holds 0.
        let (lo, hi) = (-super::simd::max_neg(row).max(0.0), super::simd::max(row).max(0.0));
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let inv = 1.0 / scale;
        let zero = (-lo * inv).round_ties_even().clamp(0.0, 255.0);
        // max/min (not clamp) also send NaN into range, so the unchecked conversion is sound.
        // SAFETY: the value is in [0, 255].
        let q = |v: f32| unsafe { ((v * inv).round_ties_even() + zero).max(0.0).min(255.0).to_int_unchecked::<i32>() as u8 };
        if a_bytes == 1 {
            dst.iter_mut().zip(row).for_each(|(d, &v)| *d = q(v));
        } else {
            dst.chunks_exact_mut(2).zip(row).for_each(|(d, &v)| d.copy_from_slice(&(q(v) as u16).to_le_bytes()));
        }
        (scale, zero as i32)
    }
}

/// The output, written by tiles that never overlap.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each tile writes only its own rows × columns of the buffer.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// One matrix product, split into tiles of rows × column panels.
struct Job<'a> {
    acts: &'a QuantizedRows,
    weights: &'a QuantizedWeights,
    bias: &'a [f32],
    /// [row][column] of the weights' f32 columns.
    f32_values: &'a [f32],
    finish: &'a (dyn Fn(&mut [f32]) + Sync),
    out: OutPtr,
    rows: usize,
    geometry: Geometry,
}

impl Job<'_> {
    fn row_tiles(&self) -> usize {
        self.rows.div_ceil(self.geometry.tile_rows())
    }

    fn col_tiles(&self) -> usize {
        self.weights.scales.len().div_ceil(self.geometry.tile_cols())
    }

    /// Writes the output step of one MR × NR block: scales, zero-point
    /// correction and bias, for `rows` from `row0` and the panel whose first
    /// packed channel is `col0` (with residual weights, a panel holds whole
    /// outputs: its first half the first parts, its second their residuals).
    #[inline(always)]
    fn store(&self, acc: &[i32], row0: usize, rows: usize, col0: usize) {
        let (g, w) = (self.geometry, self.weights);
        let (parts, cols) = (w.parts(), g.nr.min(w.scales.len() - col0));
        let (first, outs) = (col0 / parts, cols / parts);
        let (sums, scales, bias) =
            (&w.sums[col0..col0 + cols], &w.scales[col0..col0 + cols], &self.bias[first..first + outs]);
        for r in 0..rows {
            let row = row0 + r;
            let (sa, zero) = (self.acts.scales[row], self.acts.zeros[row]);
            // SAFETY: row < self.rows and first + outs ≤ outputs: inside `out`, in this tile's part.
            let out = unsafe { std::slice::from_raw_parts_mut(self.out.0.add(row * w.outputs + first), outs) };
            let acc = &acc[r * g.nr..r * g.nr + cols];
            let term = |(&acc, (&sum, &scale)): (&i32, (&i32, &f32))| (acc - zero * sum) as f32 * (sa * scale);
            // Zipped slices, no indexing: LLVM then vectorises both loops.
            let first = acc.iter().zip(sums.iter().zip(scales));
            if parts == 1 {
                out.iter_mut().zip(first.zip(bias)).for_each(|(o, (t, &b))| *o = term(t) + b);
            } else {
                // The panel's first parts, then their residuals ([`QuantizedWeights::with_residual`]).
                let second = acc[outs..].iter().zip(sums[outs..].iter().zip(&scales[outs..]));
                out.iter_mut()
                    .zip(first.zip(second).zip(bias))
                    .for_each(|(o, ((t, u), &b))| *o = term(t) + term(u) + b);
            }
        }
    }

    /// Completes `rows` from `row0` of a tile's part (`col0`, `cols`: packed
    /// channels) once every panel of them is stored: the f32 columns'
    /// products, then `finish`. Not in `store`: there each panel's outputs
    /// were read back as soon as written, and on a Zen 5 core 9 % of MiniLM's
    /// int8 tile time sat on those reads.
    #[inline(always)]
    fn complete(&self, row0: usize, rows: usize, col0: usize, cols: usize) {
        self.add_f32_columns(row0, rows, col0, cols);
        self.finish(row0, rows, col0, cols);
    }

    /// Adds the f32 columns' products to each of `rows` from `row0` (`col0`,
    /// `cols`: packed channels).
    #[inline(always)]
    fn add_f32_columns(&self, row0: usize, rows: usize, col0: usize, cols: usize) {
        let (w, parts) = (self.weights, self.weights.parts());
        let Some(f) = &w.f32_columns else { return };
        let k = f.columns.len();
        for row in row0..row0 + rows {
            let start = row * w.outputs + col0 / parts;
            // SAFETY: as in `store`.
            let out = unsafe { std::slice::from_raw_parts_mut(self.out.0.add(start), cols / parts) };
            f.add_products(&self.f32_values[row * k..(row + 1) * k], col0 / parts, out);
        }
    }

    /// Runs `finish` over this tile's part of each of its rows (`col0`,
    /// `cols`: packed channels).
    fn finish(&self, row0: usize, rows: usize, col0: usize, cols: usize) {
        let parts = self.weights.parts();
        for row in row0..row0 + rows {
            let start = row * self.weights.outputs + col0 / parts;
            // SAFETY: as in `store`.
            let out = unsafe { std::slice::from_raw_parts_mut(self.out.0.add(start), cols / parts) };
            (self.finish)(out);
        }
    }
}
