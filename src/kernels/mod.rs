//! CPU kernels that know nothing of models: tensors or plain slices in and out.
//!
//! - [`linear`], [`layer_norm`], [`softmax`], [`attention`], [`dropout`],
//!   [`gelu`]: f32 ops fused on CPU with hand-written backward passes. The
//!   composite versions (`candle_nn::ops::layer_norm_slow`, `softmax`) are
//!   differentiable but cost a dozen tensor ops each, and every one of them
//!   costs again in the backward pass (candle's autograd allocates a zero
//!   gradient, adds, reduces broadcasts, and even differentiates with respect
//!   to the constant mask). Here each is one pass forward and one backward over
//!   f32 slices. Other devices and dtypes take the composite path, so CUDA is
//!   unaffected. Each file's tests check values and gradients against the
//!   composite, and the gradients against finite differences.
//! - [`int8`]: int8 matrix multiplication for quantized inference, with one
//!   kernel per instruction set (AMX, AVX512-VNNI, AVX-VNNI, AVX2, portable),
//!   chosen at run time.
//! - [`simd`]: f32 helpers written for LLVM to vectorise, and `multiversion!`,
//!   which compiles a function for AVX2 + FMA (and AVX-512) beside the baseline.
//! - [`argmax()`]: the one argmax of the crate.

mod argmax;
pub mod attention;
mod cpu;
pub mod dropout;
pub mod gelu;
pub mod int8;
pub mod layer_norm;
pub mod linear;
pub(crate) mod simd;
pub mod softmax;
#[cfg(test)]
pub(crate) mod test_support;

pub use argmax::argmax;
pub use cpu::{fused_ok, fused_setting, FUSED_ENV};
