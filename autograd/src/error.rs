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
        /// The op that failed (e.g. `"matmul"`).
        op: &'static str,
        /// Shape of the left (first) operand.
        lhs: Vec<usize>,
        /// Shape of the right (second) operand.
        rhs: Vec<usize>,
        /// Why the shapes do not fit, completing the message.
        reason: String,
    },
    /// An axis index outside `-ndim..ndim`.
    #[error("{op}: dim {dim} is out of range for a tensor of shape {shape:?}")]
    DimOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The axis given (negative counts from the end).
        dim: isize,
        /// Shape of the input tensor.
        shape: Vec<usize>,
    },
    /// An argument that is wrong for this input.
    #[error("{op}: {reason} (input shape {shape:?})")]
    InvalidArgument {
        /// The op that failed.
        op: &'static str,
        /// Shape of the input tensor.
        shape: Vec<usize>,
        /// What is wrong with the argument.
        reason: String,
    },
    /// `backward()` without an output gradient on a non-scalar.
    #[error("backward: the output has shape {shape:?}; backward() without an output gradient needs a single-element tensor (use backward_with to pass a gradient)")]
    NonScalarBackward {
        /// Shape of the tensor `backward()` was called on.
        shape: Vec<usize>,
    },
    /// `backward()` on a tensor that no gradient can flow through.
    #[error("backward: the tensor does not require grad and has no grad_fn (mark a leaf with requires_grad_(), and do not compute under no_grad)")]
    NoGradFn,
    /// A second backward through a graph freed by the first.
    #[error("backward: the graph through '{op}' was already freed by an earlier backward(); pass retain_graph to backward through it again")]
    GraphFreed {
        /// Name of the op whose saved graph was already freed.
        op: &'static str,
    },
    /// `grad(outputs, inputs)` where an input took no part in the outputs.
    #[error("grad: input {index} was not used to compute the outputs (set allow_unused)")]
    UnusedInput {
        /// Position of the unused tensor in `inputs`.
        index: usize,
    },
    /// Anomaly mode found a NaN or infinity.
    #[error("anomaly: the {phase} of '{op}' produced a non-finite value (NaN or Inf) in a tensor of shape {shape:?}")]
    Anomaly {
        /// Name of the op that produced the value.
        op: &'static str,
        /// `"forward"` or `"backward"`: which pass produced it.
        phase: &'static str,
        /// Shape of the offending tensor.
        shape: Vec<usize>,
    },
    /// A tensor an op saved for its backward pass was written in place
    /// ([`Tensor::write`](crate::Tensor::write), `set_data`, an optimizer
    /// step) after the op read it and before the backward pass used it.
    #[error("backward: one of the tensors needed for gradient computation has been modified by an inplace operation: the {what} of '{op}', a tensor of shape {shape:?}, is at version {current}; expected version {saved} instead (it was written after the forward pass: step optimizers and update weights after backward(), or compute again after the write)")]
    InplaceModified {
        /// Name of the op whose backward needs the tensor.
        op: &'static str,
        /// Which tensor of the op: `"input 0"`, `"input 1"`, ..., or `"output"`.
        what: &'static str,
        /// Shape of the tensor now.
        shape: Vec<usize>,
        /// The version the op saw (see [`Tensor::version`](crate::Tensor::version)).
        saved: u64,
        /// The version at backward.
        current: u64,
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
