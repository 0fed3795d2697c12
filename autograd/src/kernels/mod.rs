//! Array kernels behind the ops: no autograd here, only numbers.
//!
//! One concern per module; the ops call the functions re-exported here.
//! Code for one instruction set lives under its architecture's module
//! (`x86`), called from the portable kernels after a run-time feature check.

mod broadcast;
pub(crate) mod channels;
pub(crate) mod conv;
mod elementwise;
mod few_cols;
pub(crate) mod gemm;
pub(crate) mod isa;
mod matmul;
mod narrow;
pub(crate) mod pool;
mod reduce;
mod runs;
pub(crate) mod scratch;
pub(crate) mod team;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use broadcast::{broadcast_shapes, sum_to_shape};
pub(crate) use elementwise::{map, zip2, zip3};
pub(crate) use matmul::{linear, matmul_batched};
pub(crate) use reduce::{fold_axes_keepdim, sum_axes};
pub(crate) use runs::{cat, standard_slice};

/// Element counts above which elementwise kernels split work across threads.
pub(crate) const PAR_MIN: usize = 1 << 16;
