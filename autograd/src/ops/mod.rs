//! The differentiable ops, one file per family; each op's forward and
//! backward sit side by side. Backward closures are written with ops, so the
//! backward pass can itself be recorded (higher-order gradients).

pub mod arith;
pub mod compare;
pub mod conv;
pub mod dropout;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;
pub mod unpool;
mod weight_cache;

use crate::dtype::Float;
use crate::error::Result;
use crate::tensor::Tensor;

/// `Some(f())` when the gradient is needed.
pub(crate) fn need<T: Float>(
    needed: bool,
    f: impl FnOnce() -> Result<Tensor<T>>,
) -> Result<Option<Tensor<T>>> {
    if needed {
        f().map(Some)
    } else {
        Ok(None)
    }
}
