//! x86-64 SIMD kernels (AVX2 + FMA, AVX-512), one file per kernel family.
//! Each is an `unsafe` `#[target_feature]` function; the portable module
//! named in each file checks the CPU at run time and calls it.

pub(crate) mod direct;
pub(crate) mod gemm;
pub(crate) mod narrow;
pub(crate) mod pool;
pub(crate) mod winograd;
pub(crate) mod winograd4;
