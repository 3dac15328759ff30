//! The inner loops: weight packing, and one micro-kernel per instruction set
//! that sums an MR × NR block of i32 products over the whole depth.
//!
//! Packed layout, for every kernel: the output channels in panels of NR, as
//! i8; within a panel, the depth in groups of G values (4: what one
//! `vpdpbusd` lane sums, or 2: one `vpmaddwd` lane once widened to i16), and
//! within a group the NR channels side by side, each with its G values
//! together. One group of a panel is then exactly the vectors a micro-kernel
//! multiplies by the G inputs of each row, broadcast. Missing channels and
//! depth are zero.

use rayon::prelude::*;

use super::{Job, Kernel};

/// Rows and accumulators of the largest micro-kernel (AMX: 32 × 32).
const MAX_ACC: usize = 32 * 32;

/// Bytes that start on a cache line, for what the kernels load: the packed
/// weights and the quantized rows. Every row they read then starts a line
/// (depths and panels are multiples of 64 bytes), where one from `Vec<u8>`
/// (16-byte aligned) straddles two: on the tile unit that cost 1.4× the time
/// (`tileloadd` of both operands 16 bytes off a line, one thread, 256 rows ×
/// 128 columns, depths 384–3072). The buffer is a plain `Vec<u8>` 63 bytes
/// longer, used from its first line boundary: an allocation aligned by the
/// allocator (`memalign`) instead left gaps in glibc's heap that raised
/// int8 `predict`'s peak memory by about 7 MiB on MiniLM.
pub(super) struct LineBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl LineBytes {
    pub fn zeroed(len: usize) -> Self {
        Self::place(vec![0; len + 63], len)
    }

    /// # Safety
    /// Every byte must be written before it is read.
    #[allow(clippy::uninit_vec)]
    pub unsafe fn uninit(len: usize) -> Self {
        let mut buf = Vec::with_capacity(len + 63);
        // SAFETY: u8s have no invalid values; the caller writes before reading.
        unsafe { buf.set_len(len + 63) };
        Self::place(buf, len)
    }

    fn place(buf: Vec<u8>, len: usize) -> Self {
        // (`align_offset` may answer usize::MAX; the arithmetic cannot.)
        let start = (64 - buf.as_ptr() as usize % 64) % 64;
        Self { buf, start, len }
    }
}

impl std::ops::Deref for LineBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for LineBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// The accumulators of one block, on a cache line for `tilestored`.
#[repr(C, align(64))]
struct Acc([i32; MAX_ACC]);

/// The shape of a kernel's blocks and of its inputs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub mr: usize,
    pub nr: usize,
    /// Depth values one lane sums per step.
    pub group: usize,
    /// Bytes per activation (1: u8; 2: u8 widened to u16).
    pub a_bytes: usize,
    /// The depth is padded to a multiple of this (AMX reads 64 bytes a row).
    pub depth_align: usize,
    /// The input rows are padded to a multiple of this with zero rows (AMX
    /// loads 16-row tiles whole).
    pub row_align: usize,
    /// Whether each MR-row block's outputs get their f32 columns and
    /// `finish` as soon as the block is stored, rather than the whole tile's
    /// at its end ([`tile`]).
    pub complete_blocks: bool,
}

impl Geometry {
    /// The depth rounded up to what the kernel reads at a time.
    pub fn depth(self, inputs: usize) -> usize {
        inputs.div_ceil(self.depth_align) * self.depth_align
    }

    /// Rows per parallel task: the MR-row blocks that reuse one tile of weights from L2.
    pub fn tile_rows(self) -> usize {
        self.mr * 8
    }

    /// Output columns per parallel task (whole panels).
    pub fn tile_cols(self) -> usize {
        self.nr * (128 / self.nr).max(1)
    }
}

pub(super) fn geometry(kernel: Kernel) -> Geometry {
    let (mr, nr, group, a_bytes) = match kernel {
        Kernel::Amx => (32, 32, 4, 1),
        Kernel::Avx512Vnni => (6, 64, 4, 1),
        Kernel::AvxVnni => (6, 16, 4, 1),
        Kernel::Avx2 => (6, 16, 2, 2),
        Kernel::Scalar => (4, 16, 4, 1),
    };
    let amx = kernel == Kernel::Amx;
    let (depth_align, row_align) = if amx { (64, 32) } else { (4, 1) };
    // AMX's tiles are 256 rows: 128 KiB of outputs, past L1, where its 32-row
    // blocks (16 KiB) stay in it. The vector kernels' whole tiles (16–24 KiB)
    // fit, and completing them at once measured faster on a Zen 5 core than
    // block by block, one block behind the stores (MPNet's int8 `predict`
    // 0.975× the rate, MiniLM's 1.01×).
    Geometry { mr, nr, group, a_bytes, depth_align, row_align, complete_blocks: amx }
}

/// Packs row-major [outputs, inputs] i8 weights (see the module docs).
pub(super) fn pack(q: &[i8], outputs: usize, inputs: usize, g: Geometry) -> LineBytes {
    let panel_bytes = g.depth(inputs) * g.nr;
    let mut out = LineBytes::zeroed(outputs.div_ceil(g.nr) * panel_bytes);
    out.par_chunks_mut(panel_bytes.max(1))
        .enumerate()
        .for_each(|(p, dst)| pack_panel(q, (outputs, inputs), g.nr, g.group, p, dst));
    out
}

/// One panel, written in order: `group` values of each of its NR channels, group after group.
fn pack_panel(q: &[i8], (outputs, inputs): (usize, usize), nr: usize, group: usize, p: usize, dst: &mut [u8]) {
    // Channel by channel, each written at its stride in the panel; the
    // destination starts zeroed, so missing channels and depth stay 0.
    let stride = nr * group;
    for c in 0..nr.min(outputs.saturating_sub(p * nr)) {
        let row = &q[(p * nr + c) * inputs..][..inputs];
        for (gi, values) in row.chunks(group).enumerate() {
            let at = gi * stride + c * group;
            dst[at..at + values.len()].iter_mut().zip(values).for_each(|(d, &v)| *d = v as u8);
        }
    }
}

/// Computes tile `t` of a job.
pub(super) type TileFn = unsafe fn(&Job, usize);

pub(super) fn tile_fn(kernel: Kernel) -> TileFn {
    // Tests run the AMX geometry on a model of the tile unit where there is none.
    #[cfg(test)]
    if kernel == Kernel::Amx && !kernel.supported() {
        return tile::<TileUnitModel>;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
            Kernel::Amx => x86::tile_amx,
            Kernel::Avx512Vnni => x86::tile_avx512_vnni,
            Kernel::AvxVnni => x86::tile_avx_vnni,
            Kernel::Avx2 => x86::tile_avx2,
            Kernel::Scalar => tile_scalar,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kernel;
        tile_scalar
    }
}

/// An MR × NR block: `acc[r·NR + c] = Σ_k a[r][k]·b[c][k]` over `groups` groups.
trait Micro {
    const MR: usize;
    const NR: usize;
    /// # Safety
    /// `a` points to `rows` (≤ MR) rows of `row_bytes` bytes, at least `groups`
    /// groups of activations each (kernels that pad rows may read all MR),
    /// `b` to one packed panel of that depth, and the CPU runs the kernel.
    unsafe fn run(a: *const u8, row_bytes: usize, rows: usize, b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]);
}

/// One tile: its MR-row blocks in turn, each against every panel of the tile
/// with the output step; then the f32 columns and `finish`, block by block or
/// over the whole tile ([`Geometry::complete_blocks`]).
///
/// # Safety
/// The CPU runs `M`, and the job's buffers match the geometry of `M`'s kernel.
#[inline(always)]
unsafe fn tile<M: Micro>(job: &Job, t: usize) {
    let g = job.geometry;
    let (rt, ct) = (t / job.col_tiles(), t % job.col_tiles());
    let (row_start, col_start) = (rt * g.tile_rows(), ct * g.tile_cols());
    let row_end = (row_start + g.tile_rows()).min(job.rows);
    let col_end = (col_start + g.tile_cols()).min(job.weights.scales.len());
    let depth = job.acts.stride;
    let (a, row_bytes) = (job.acts.data.as_ptr(), depth * g.a_bytes);
    let panel_bytes = depth * g.nr;
    let mut acc = Acc([0; MAX_ACC]);
    let acc = &mut acc.0;
    let cols = col_end - col_start;
    let mut row0 = row_start;
    while row0 < row_end {
        let rows = M::MR.min(row_end - row0);
        // A kernel that reads whole MR-row blocks (AMX) relies on the zero rows
        // that pad the input to `row_align`.
        debug_assert!(
            g.row_align == 1 || (row0 + M::MR) * row_bytes <= job.acts.data.len(),
            "row {row0}: past the padding"
        );
        for col0 in (col_start..col_end).step_by(g.nr) {
            let panel = job.weights.packed.as_ptr().add(col0 / g.nr * panel_bytes);
            M::run(a.add(row0 * row_bytes), row_bytes, rows, panel, depth / g.group, acc);
            job.store(acc, row0, rows, col0);
        }
        if g.complete_blocks {
            job.complete(row0, rows, col_start, cols);
        }
        row0 += rows;
    }
    if !g.complete_blocks {
        job.complete(row_start, row_end - row_start, col_start, cols);
    }
}

struct Scalar;

impl Micro for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn run(a: *const u8, row_bytes: usize, rows: usize, b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]) {
        acc[..Self::MR * Self::NR].fill(0);
        for gi in 0..groups {
            let w = std::slice::from_raw_parts(b.add(gi * Self::NR * 4), Self::NR * 4);
            for r in 0..rows {
                let x = std::slice::from_raw_parts(a.add(r * row_bytes + gi * 4), 4);
                for c in 0..Self::NR {
                    let dot: i32 = (0..4).map(|e| x[e] as i32 * w[c * 4 + e] as i8 as i32).sum();
                    acc[r * Self::NR + c] += dot;
                }
            }
        }
    }
}

unsafe fn tile_scalar(job: &Job, t: usize) {
    tile::<Scalar>(job, t)
}

/// Bytes between the rows of an AMX weight tile, of its accumulator tiles
/// as stored, and of a 32-channel panel's groups: 32 channels × 4 bytes.
const AMX_ROW: usize = 128;

/// Where the AMX block stores its four 16 × 16 accumulator tiles in `acc`
/// (bytes, rows [`AMX_ROW`] apart): rows 0–15 and 16–31 × columns 0–15 and 16–31.
const AMX_ACC_AT: [usize; 4] = [0, 64, 16 * AMX_ROW, 16 * AMX_ROW + 64];

/// The tiles the AMX block loads for its `kb`-th 64 bytes of depth: rows
/// 0–15 and 16–31 of the activations (`row_bytes` apart), and the weights of
/// channels 0–15 and 16–31 over those 16 groups ([`AMX_ROW`] apart). Shared
/// by the `asm!` and, in tests, by `TileUnitModel`, so that the model
/// checks the addresses the tile unit is given.
#[inline(always)]
unsafe fn amx_operands(a: *const u8, row_bytes: usize, b: *const u8, kb: usize) -> ([*const u8; 2], [*const u8; 2]) {
    let (a0, b0) = (a.add(kb * 64), b.add(kb * 16 * AMX_ROW));
    ([a0, a0.add(16 * row_bytes)], [b0, b0.add(64)])
}

/// The AMX block in plain Rust, for tests on CPUs without the tile unit:
/// the same addresses as its `asm!` ([`amx_operands`], [`AMX_ACC_AT`]) and
/// `tdpbusd` as Intel's manual defines it. Through [`tile`] it runs the AMX
/// geometry (32 × 32 blocks, rows padded to 32, depth to 64, 256-row tiles
/// completed block by block), which no vector kernel does, so that changes
/// to that path are tested where they are made.
#[cfg(test)]
struct TileUnitModel;

#[cfg(test)]
impl TileUnitModel {
    /// `tdpbusd`: `c[m][n] += Σ_k Σ_e a[m][4k + e] · b[k][4n + e]`, u8 by
    /// i8, over a 16-row tile of 64 bytes a row and a 16 × 64-byte one.
    unsafe fn tdpbusd(c: &mut [[i32; 16]; 16], a: *const u8, a_stride: usize, b: *const u8) {
        for (m, row) in c.iter_mut().enumerate() {
            for (n, sum) in row.iter_mut().enumerate() {
                for k in 0..16 {
                    for e in 0..4 {
                        *sum += *a.add(m * a_stride + 4 * k + e) as i32 * *b.add(k * AMX_ROW + 4 * n + e) as i8 as i32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
impl Micro for TileUnitModel {
    const MR: usize = 32;
    const NR: usize = 32;

    unsafe fn run(a: *const u8, row_bytes: usize, _rows: usize, b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]) {
        let mut c = [[[0i32; 16]; 16]; 4];
        for kb in 0..groups / 16 {
            let ([a0, a1], [b0, b1]) = amx_operands(a, row_bytes, b, kb);
            Self::tdpbusd(&mut c[0], a0, row_bytes, b0);
            Self::tdpbusd(&mut c[1], a0, row_bytes, b1);
            Self::tdpbusd(&mut c[2], a1, row_bytes, b0);
            Self::tdpbusd(&mut c[3], a1, row_bytes, b1);
        }
        let out = acc.as_mut_ptr().cast::<u8>();
        for (tile, at) in c.iter().zip(AMX_ACC_AT) {
            for (m, row) in tile.iter().enumerate() {
                for (n, &sum) in row.iter().enumerate() {
                    out.add(at + m * AMX_ROW + 4 * n).cast::<i32>().write(sum);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::mem::size_of;

    use super::{amx_operands, tile, Job, Micro, AMX_ACC_AT, AMX_ROW, MAX_ACC};

    /// A micro-kernel over SIMD vectors: MR rows × VECS vectors of i32 sums;
    /// each step broadcasts 4 bytes of a row (4 u8, or 2 u16) against one
    /// group of the panel.
    macro_rules! micro {
        ($kernel:ident, $tile:ident, $features:literal, $mr:literal, $vecs:literal, $vec:ty, $wbytes:expr,
         $zero:ident, $set1:ident, $load:ident, $store:ident, |$acc:ident, $a:ident, $b:ident| $step:expr) => {
            struct $kernel;

            impl $kernel {
                #[target_feature(enable = $features)]
                #[inline]
                unsafe fn sums(
                    a: *const u8,
                    row_bytes: usize,
                    rows: usize,
                    b: *const u8,
                    groups: usize,
                    out: &mut [i32; MAX_ACC],
                ) {
                    const LANES: usize = size_of::<$vec>() / 4;
                    // Rows past the end repeat the last one; their sums are not stored.
                    let rows: [*const u8; $mr] = std::array::from_fn(|r| a.add(r.min(rows - 1) * row_bytes));
                    let mut sums = [[$zero(); $vecs]; $mr];
                    for gi in 0..groups {
                        let group = b.add(gi * $vecs * $wbytes);
                        let w: [$vec; $vecs] = std::array::from_fn(|v| $load(group.add(v * $wbytes).cast()));
                        for r in 0..$mr {
                            let $a = $set1(rows[r].add(gi * 4).cast::<i32>().read_unaligned());
                            for v in 0..$vecs {
                                let ($acc, $b) = (sums[r][v], w[v]);
                                sums[r][v] = $step;
                            }
                        }
                    }
                    for r in 0..$mr {
                        for v in 0..$vecs {
                            $store(out.as_mut_ptr().add((r * $vecs + v) * LANES).cast(), sums[r][v]);
                        }
                    }
                }
            }

            impl Micro for $kernel {
                const MR: usize = $mr;
                const NR: usize = $vecs * size_of::<$vec>() / 4;

                #[inline(always)]
                unsafe fn run(
                    a: *const u8,
                    row_bytes: usize,
                    rows: usize,
                    b: *const u8,
                    groups: usize,
                    acc: &mut [i32; MAX_ACC],
                ) {
                    Self::sums(a, row_bytes, rows, b, groups, acc)
                }
            }

            #[target_feature(enable = $features)]
            pub(super) unsafe fn $tile(job: &Job, t: usize) {
                tile::<$kernel>(job, t)
            }
        };
    }

    // 24 accumulators of the 32 registers, 4 weight vectors and a broadcast:
    // 10 loads for 24 `vpdpbusd` (8 × 2 made 10 for 16). On a Zen 5 core,
    // which issues two `vpdpbusd` a cycle, `bench_int8_gemm` (800 rows, one
    // thread) ran the six layer shapes 1.06–1.15× faster than 8 × 2; 8 × 3,
    // 4 × 6 and 12 × 2 were within a few % of 6 × 4.
    micro!(
        Avx512Vnni,
        tile_avx512_vnni,
        "avx512f,avx512bw,avx512vnni",
        6,
        4,
        __m512i,
        size_of::<__m512i>(),
        _mm512_setzero_si512,
        _mm512_set1_epi32,
        _mm512_loadu_si512,
        _mm512_storeu_si512,
        |acc, a, b| _mm512_dpbusd_epi32(acc, a, b)
    );
    micro!(
        AvxVnni,
        tile_avx_vnni,
        "avx2,avxvnni",
        6,
        2,
        __m256i,
        size_of::<__m256i>(),
        _mm256_setzero_si256,
        _mm256_set1_epi32,
        _mm256_loadu_si256,
        _mm256_storeu_si256,
        |acc, a, b| _mm256_dpbusd_avx_epi32(acc, a, b)
    );
    micro!(
        Avx2,
        tile_avx2,
        "avx2",
        6,
        2,
        __m256i,
        16,
        _mm256_setzero_si256,
        _mm256_set1_epi32,
        load_i8_as_i16,
        _mm256_storeu_si256,
        |acc, a, b| _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
    );

    /// 16 packed i8 weights widened to i16 as they are loaded (`vpmovsxbw`):
    /// the `avx2` kernel's weights stay half the bytes that i16 would take.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load_i8_as_i16(p: *const __m256i) -> __m256i {
        _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()))
    }

    /// AMX: four 16 × 16 i32 accumulator tiles (tmm0–3) over two 16-row
    /// tiles of activations (tmm4–5) and two 16-column tiles of weights
    /// (tmm6–7), 64 bytes of depth at a time. The packed layout above, with 32
    /// columns to a panel, is what `tdpbusd` reads for its second operand,
    /// 128 bytes between its rows. Stable Rust has no AMX intrinsics: `asm!`.
    struct Amx;

    impl Micro for Amx {
        const MR: usize = 32;
        const NR: usize = 32;

        #[inline(always)]
        unsafe fn run(
            a: *const u8,
            row_bytes: usize,
            _rows: usize,
            b: *const u8,
            groups: usize,
            acc: &mut [i32; MAX_ACC],
        ) {
            std::arch::asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack));
            for kb in 0..groups / 16 {
                let ([a0, a1], [b0, b1]) = amx_operands(a, row_bytes, b, kb);
                std::arch::asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    b0 = in(reg) b0,
                    b1 = in(reg) b1,
                    sa = in(reg) row_bytes,
                    sb = in(reg) AMX_ROW,
                    options(nostack, readonly),
                );
            }
            let c = acc.as_mut_ptr().cast::<u8>();
            let [c00, c01, c10, c11] = AMX_ACC_AT.map(|at| c.add(at));
            std::arch::asm!(
                "tilestored [{c00} + {s}*1], tmm0",
                "tilestored [{c01} + {s}*1], tmm1",
                "tilestored [{c10} + {s}*1], tmm2",
                "tilestored [{c11} + {s}*1], tmm3",
                c00 = in(reg) c00,
                c01 = in(reg) c01,
                c10 = in(reg) c10,
                c11 = in(reg) c11,
                s = in(reg) AMX_ROW,
                options(nostack),
            );
        }
    }

    /// Eight tiles of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const TILE_CONFIG: TileConfig = {
        let mut c = [0u8; 64];
        c[0] = 1; // palette 1
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = 64; // bytes per row
            c[48 + t] = 16; // rows
            t += 1;
        }
        TileConfig(c)
    };

    /// # Safety
    /// The CPU has AMX-INT8 and AVX-512 and the process may use AMX state
    /// ([`super::super::amx_permitted`]); the job's rows are padded to 32.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn tile_amx(job: &Job, t: usize) {
        // Tile configuration is per thread: set it for this task, release it after.
        std::arch::asm!("ldtilecfg [{0}]", in(reg) TILE_CONFIG.0.as_ptr(), options(nostack, readonly));
        tile::<Amx>(job, t);
        std::arch::asm!("tilerelease", options(nostack, nomem));
    }
}
