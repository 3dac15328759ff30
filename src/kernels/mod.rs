//! CPU kernels that know nothing of models: plain slices in, slices out.
//!
//! - [`int8`]: int8 matrix multiplication for quantized inference, with one
//!   kernel per instruction set (AMX, AVX512-VNNI, AVX-VNNI, AVX2, portable),
//!   chosen at run time.
//! - [`simd`]: f32 helpers written for LLVM to vectorise, and `multiversion!`,
//!   which compiles a function for AVX2 + FMA beside the baseline.

pub mod int8;
pub(crate) mod simd;
