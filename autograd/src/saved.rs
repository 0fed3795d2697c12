//! What an op keeps for its backward pass: a tensor and the version it had
//! when the op read it (PyTorch's `SavedVariable`).
//!
//! Every in-place write bumps a tensor's version ([`Tensor::write`]); a
//! backward closure reads a saved tensor through [`Saved::get`], which
//! refuses it if the version moved since the forward pass. The check is one
//! atomic load per saved tensor used, and only where the backward reads the
//! values: an op that needs only shapes saves no tensor.

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A tensor saved by op `op` for its backward pass, with its version then.
pub(crate) struct Saved<T: Float> {
    tensor: Tensor<T>,
    version: u64,
    op: &'static str,
    what: &'static str,
}

/// Names of the inputs in error messages (static, so an error costs nothing
/// until it happens).
const INPUTS: [&str; 4] = ["input 0", "input 1", "input 2", "input 3"];

impl<T: Float> Saved<T> {
    /// Saves input `index` of `op`.
    pub(crate) fn input(op: &'static str, index: usize, t: &Tensor<T>) -> Self {
        Saved {
            tensor: t.clone(),
            version: t.version(),
            op,
            what: INPUTS.get(index).copied().unwrap_or("input"),
        }
    }

    /// The tensor, if no in-place write changed it since it was saved.
    pub(crate) fn get(&self) -> Result<&Tensor<T>> {
        check(self.op, self.what, &self.tensor, self.version)?;
        Ok(&self.tensor)
    }

    /// The shape, for the backward pass that needs no values (not checked).
    pub(crate) fn shape(&self) -> Vec<usize> {
        self.tensor.shape()
    }
}

/// `Ok` if `t` is still at version `saved`, else the error naming `op`.
#[inline]
pub(crate) fn check<T: Float>(
    op: &'static str,
    what: &'static str,
    t: &Tensor<T>,
    saved: u64,
) -> Result<()> {
    let current = t.version();
    if current == saved {
        Ok(())
    } else {
        Err(modified(op, what, t, saved, current))
    }
}

#[cold]
fn modified<T: Float>(
    op: &'static str,
    what: &'static str,
    t: &Tensor<T>,
    saved: u64,
    current: u64,
) -> Error {
    Error::InplaceModified {
        op,
        what,
        shape: t.shape(),
        saved,
        current,
    }
}
