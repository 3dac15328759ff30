//! CPU kernels that know nothing of models: plain slices in, slices out.
//!
//! - [`int8`]: int8 matrix multiplication for quantized inference, with one
//!   kernel per instruction set (AVX512-VNNI, AVX-VNNI, AVX2, portable),
//!   chosen at run time.

pub mod int8;
