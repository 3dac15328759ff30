//! The inner loops: weight packing, and one micro-kernel per instruction set
//! that sums an MR × NR block of i32 products over the whole depth.
//!
//! Packed layout, for every kernel: the output channels in panels of NR;
//! within a panel, the depth in groups of G values (4 bytes: what one
//! `vpdpbusd` lane sums, or 2 i16: one `vpmaddwd` lane), and within a group
//! the NR channels side by side, each with its G values together. One group of
//! a panel is then exactly the vectors a micro-kernel multiplies by the G
//! inputs of each row, broadcast. Missing channels and depth are zero.

use rayon::prelude::*;

use super::{Job, Kernel};

/// Rows and accumulators of the largest micro-kernel.
const MAX_MR: usize = 8;
const MAX_ACC: usize = 8 * 32;

/// The shape of a kernel's blocks and of its inputs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub mr: usize,
    pub nr: usize,
    /// Depth values one lane sums per step.
    pub group: usize,
    /// Bytes per activation (1: u8; 2: u8 widened to u16).
    pub a_bytes: usize,
    /// Bytes per packed weight (1: i8; 2: i16).
    pub b_bytes: usize,
}

impl Geometry {
    /// The depth rounded up to whole 4-byte groups, which every kernel reads.
    pub fn depth(self, inputs: usize) -> usize {
        inputs.div_ceil(4) * 4
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
    let (mr, nr, group, a_bytes, b_bytes) = match kernel {
        Kernel::Avx512Vnni => (8, 32, 4, 1, 1),
        Kernel::AvxVnni => (6, 16, 4, 1, 1),
        Kernel::Avx2 => (4, 16, 2, 2, 2),
        Kernel::Scalar => (4, 16, 4, 1, 1),
    };
    Geometry { mr, nr, group, a_bytes, b_bytes }
}

/// Packs row-major [outputs, inputs] i8 weights (see the module docs).
pub(super) fn pack(q: &[i8], outputs: usize, inputs: usize, g: Geometry) -> Vec<u8> {
    let panel_bytes = g.depth(inputs) * g.nr * g.b_bytes;
    let mut out = vec![0u8; outputs.div_ceil(g.nr) * panel_bytes];
    let panel = match (g.group, g.b_bytes) {
        (4, 1) => pack_panel::<4, 1>,
        (2, 2) => pack_panel::<2, 2>,
        other => unreachable!("no kernel packs groups of {other:?}"),
    };
    out.par_chunks_mut(panel_bytes.max(1)).enumerate().for_each(|(p, dst)| panel(q, (outputs, inputs), g.nr, p, dst));
    out
}

/// One panel, written in order: G values (B bytes each) of each of its NR channels, group after group.
fn pack_panel<const G: usize, const B: usize>(q: &[i8], (outputs, inputs): (usize, usize), nr: usize, p: usize, dst: &mut [u8]) {
    let groups = dst.len() / (nr * G * B);
    let mut at = dst.chunks_exact_mut(B);
    for gi in 0..groups {
        for row in p * nr..(p + 1) * nr {
            for col in gi * G..(gi + 1) * G {
                let v = if row < outputs && col < inputs { q[row * inputs + col] } else { 0 };
                let bytes = (v as i16).to_le_bytes();
                at.next().expect("the panel holds depth × NR values").copy_from_slice(&bytes[..B]);
            }
        }
    }
}

/// Computes tile `t` of a job.
pub(super) type TileFn = unsafe fn(&Job, usize);

pub(super) fn tile_fn(kernel: Kernel) -> TileFn {
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
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
    /// `rows` point to MR rows of at least `groups` groups of activations,
    /// `b` to one packed panel of that depth, and the CPU runs the kernel.
    unsafe fn run(rows: &[*const u8; MAX_MR], b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]);
}

/// One tile: its MR-row blocks in turn, each against every panel of the tile,
/// then the output step and `finish`.
///
/// # Safety
/// The CPU runs `M`, and the job's buffers match the geometry of `M`'s kernel.
#[inline(always)]
unsafe fn tile<M: Micro>(job: &Job, t: usize) {
    let g = job.geometry;
    let (rt, ct) = (t / job.col_tiles(), t % job.col_tiles());
    let (row_start, col_start) = (rt * g.tile_rows(), ct * g.tile_cols());
    let row_end = (row_start + g.tile_rows()).min(job.rows);
    let col_end = (col_start + g.tile_cols()).min(job.weights.outputs);
    let depth = job.acts.stride;
    let (a, row_bytes) = (job.acts.data.as_ptr(), depth * g.a_bytes);
    let panel_bytes = depth * g.nr * g.b_bytes;
    let mut acc = [0i32; MAX_ACC];
    let mut row0 = row_start;
    while row0 < row_end {
        let rows = M::MR.min(row_end - row0);
        // Rows past the end repeat the last one; their sums are not stored.
        let ptrs: [*const u8; MAX_MR] = std::array::from_fn(|r| a.add((row0 + r.min(rows - 1)) * row_bytes));
        for col0 in (col_start..col_end).step_by(g.nr) {
            let panel = job.weights.packed.as_ptr().add(col0 / g.nr * panel_bytes);
            M::run(&ptrs, panel, depth / g.group, &mut acc);
            job.store(&acc, row0, rows, col0);
        }
        job.finish(row0, rows, col_start, col_end - col_start);
        row0 += rows;
    }
}

struct Scalar;

impl Micro for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn run(rows: &[*const u8; MAX_MR], b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]) {
        acc[..Self::MR * Self::NR].fill(0);
        for gi in 0..groups {
            let w = std::slice::from_raw_parts(b.add(gi * Self::NR * 4), Self::NR * 4);
            for (r, &row) in rows.iter().take(Self::MR).enumerate() {
                let x = std::slice::from_raw_parts(row.add(gi * 4), 4);
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::mem::size_of;

    use super::{tile, Job, Micro, MAX_ACC, MAX_MR};

    /// A micro-kernel over SIMD vectors: MR rows × VECS vectors of i32 sums;
    /// each step broadcasts 4 bytes of a row (4 u8, or 2 u16) against one
    /// group of the panel.
    macro_rules! micro {
        ($kernel:ident, $tile:ident, $features:literal, $mr:literal, $vecs:literal, $vec:ty,
         $zero:ident, $set1:ident, $load:ident, $store:ident, |$acc:ident, $a:ident, $b:ident| $step:expr) => {
            struct $kernel;

            impl $kernel {
                #[target_feature(enable = $features)]
                #[inline]
                unsafe fn sums(rows: &[*const u8; MAX_MR], b: *const u8, groups: usize, out: &mut [i32; MAX_ACC]) {
                    const LANES: usize = size_of::<$vec>() / 4;
                    let mut sums = [[$zero(); $vecs]; $mr];
                    for gi in 0..groups {
                        let group = b.add(gi * $vecs * size_of::<$vec>());
                        let w: [$vec; $vecs] = std::array::from_fn(|v| $load(group.add(v * size_of::<$vec>()).cast()));
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
                unsafe fn run(rows: &[*const u8; MAX_MR], b: *const u8, groups: usize, acc: &mut [i32; MAX_ACC]) {
                    Self::sums(rows, b, groups, acc)
                }
            }

            #[target_feature(enable = $features)]
            pub(super) unsafe fn $tile(job: &Job, t: usize) {
                tile::<$kernel>(job, t)
            }
        };
    }

    micro!(Avx512Vnni, tile_avx512_vnni, "avx512f,avx512bw,avx512vnni", 8, 2, __m512i,
        _mm512_setzero_si512, _mm512_set1_epi32, _mm512_loadu_si512, _mm512_storeu_si512,
        |acc, a, b| _mm512_dpbusd_epi32(acc, a, b));
    micro!(AvxVnni, tile_avx_vnni, "avx2,avxvnni", 6, 2, __m256i,
        _mm256_setzero_si256, _mm256_set1_epi32, _mm256_loadu_si256, _mm256_storeu_si256,
        |acc, a, b| _mm256_dpbusd_avx_epi32(acc, a, b));
    micro!(Avx2, tile_avx2, "avx2", 4, 2, __m256i,
        _mm256_setzero_si256, _mm256_set1_epi32, _mm256_loadu_si256, _mm256_storeu_si256,
        |acc, a, b| _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)));
}
