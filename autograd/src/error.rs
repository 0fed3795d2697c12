//! The one error type of the crate.
//!
//! Policy (see README): every fallible op has a `try_*` form returning
//! [`Result`]; the plain form and the operators panic with the same message,
//! which names the op and the shapes involved.

use thiserror::Error;

/// What went wrong in an op or in the backward pass.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// Two operands whose shapes do not fit together.
    #[error("{op}: shapes {lhs:?} and {rhs:?} {reason}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        reason: String,
    },
    /// An axis index outside `-ndim..ndim`.
    #[error("{op}: dim {dim} is out of range for a tensor of shape {shape:?}")]
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        shape: Vec<usize>,
    },
    /// An argument that is wrong for this input.
    #[error("{op}: {reason} (input shape {shape:?})")]
    InvalidArgument {
        op: &'static str,
        shape: Vec<usize>,
        reason: String,
    },
    /// `backward()` without an output gradient on a non-scalar.
    #[error("backward: the output has shape {shape:?}; backward() without an output gradient needs a single-element tensor (use backward_with to pass a gradient)")]
    NonScalarBackward { shape: Vec<usize> },
    /// `backward()` on a tensor that no gradient can flow through.
    #[error("backward: the tensor does not require grad and has no grad_fn (mark a leaf with requires_grad_(), and do not compute under no_grad)")]
    NoGradFn,
    /// A second backward through a graph freed by the first.
    #[error("backward: the graph through '{op}' was already freed by an earlier backward(); pass retain_graph to backward through it again")]
    GraphFreed { op: &'static str },
    /// `grad(outputs, inputs)` where an input took no part in the outputs.
    #[error("grad: input {index} was not used to compute the outputs (set allow_unused)")]
    UnusedInput { index: usize },
    /// Anomaly mode found a NaN or infinity.
    #[error("anomaly: the {phase} of '{op}' produced a non-finite value (NaN or Inf) in a tensor of shape {shape:?}")]
    Anomaly {
        op: &'static str,
        phase: &'static str,
        shape: Vec<usize>,
    },
}

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Unwraps a `try_*` result for the panicking convenience form.
#[track_caller]
pub(crate) fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
