//! What the fused f32 kernels share: the CPU f32 test, slices of candle's
//! storage, the gemm call, and the fixed task sizes that keep results
//! independent of the number of threads.

use std::sync::OnceLock;

use candle_core::{CpuStorage, DType, Layout, Result, Tensor};

/// Rows of one parallel task in the row-wise kernels: enough work per task to
/// amortise scheduling, and a fixed split so results do not depend on the
/// number of threads.
pub(super) const ROWS_PER_TASK: usize = 32;

/// Set to `0`, the fused CPU kernels stay off and the CPU runs candle's
/// composite ops, the ones a GPU runs: to tell a difference between a CPU and a
/// GPU run that the kernels make from one that rounding makes on either path.
pub const FUSED_ENV: &str = "STANCEKIT_FUSED_KERNELS";

/// Whether [`FUSED_ENV`] leaves the fused kernels on (read once).
fn fused_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(FUSED_ENV).as_deref() != Ok("0"))
}

/// [`FUSED_ENV`] checked: an error for a value other than 0 or 1, a warning to
/// print when it is 0.
pub fn fused_setting() -> std::result::Result<Option<String>, String> {
    match std::env::var(FUSED_ENV).as_deref() {
        Err(_) | Ok("1") => Ok(None),
        Ok("0") => {
            Ok(Some(format!("{FUSED_ENV}=0: the fused CPU kernels are off (candle's composite ops, as on a GPU)")))
        }
        Ok(other) => Err(format!("{FUSED_ENV}={other:?} is not 0 or 1")),
    }
}

/// Whether the fused CPU kernels take these tensors: all on the CPU, all f32
/// (and the kernels not turned off by [`FUSED_ENV`]).
pub fn fused_ok(ts: &[&Tensor]) -> bool {
    fused_enabled() && ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let all = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&all[a..b]),
        None => candle_core::bail!("{what}: the input must be contiguous"),
    }
}

/// `C = A·B` (or `C += A·B` with `accumulate`) for row-major-described f32
/// matrices given as pointers with row and column strides, on gemm (the
/// crate candle's CPU matmul runs on).
///
/// # Safety
/// Every pointer must be valid for the m×k, k×n and m×n elements its strides
/// reach, and `dst` must not overlap the inputs.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm(
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

/// Elements per parallel task of the elementwise kernels.
pub(super) const CHUNK: usize = 1 << 14;

/// A raw pointer that rayon tasks may share: each task writes its own disjoint
/// part of the buffer.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: only used for disjoint writes from parallel tasks (see the call sites).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub(super) fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

pub(super) fn host_f32<'a>(storage: &'a candle_core::Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{what}: expected a contiguous f32 CPU tensor"),
    }
}
