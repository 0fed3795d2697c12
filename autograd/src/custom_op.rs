//! Ops defined outside the crate, with their own backward pass (PyTorch's
//! `torch.autograd.Function`, candle's `CustomOp`).
//!
//! A [`CustomOp`] computes its output from the inputs' values and says how
//! an output gradient maps to input gradients. Applied with
//! [`Tensor::apply_op`] (one input) or [`Tensor::apply_op_n`] (several), it
//! is recorded on the tape like a built-in op: its name is the output's
//! `grad_fn`, anomaly mode names it, [`to_dot`](crate::to_dot) draws it. The
//! backward pass is written with differentiable ops and gets the inputs and
//! the output as they are in the graph, so gradients of gradients
//! (`create_graph`, [`gradgradcheck`](crate::gradgradcheck())) work.
//!
//! ```
//! use autograd::{gradcheck, gradgradcheck, CustomOp, Float, Result, Tensor};
//!
//! /// `swish(x) = x * sigmoid(x)`.
//! struct Swish;
//!
//! impl<T: Float> CustomOp<T> for Swish {
//!     fn name(&self) -> &'static str {
//!         "swish"
//!     }
//!
//!     fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
//!         x[0].try_mul(&x[0].sigmoid())
//!     }
//!
//!     fn backward(
//!         &self,
//!         x: &[&Tensor<T>],
//!         _y: &Tensor<T>,
//!         gy: &Tensor<T>,
//!     ) -> Result<Vec<Option<Tensor<T>>>> {
//!         // d/dx x s(x) = s + x s (1 - s)
//!         let s = x[0].sigmoid();
//!         let d = s.try_add(&x[0].try_mul(&s)?.try_mul(&s.rsub_scalar(1.0))?)?;
//!         Ok(vec![Some(gy.try_mul(&d)?)])
//!     }
//! }
//!
//! let x = Tensor::<f64>::randn([2, 5]).requires_grad_();
//! let f = |t: &[Tensor<f64>]| t[0].apply_op(Swish);
//! gradcheck(f, &[x.clone()]).unwrap();
//! gradgradcheck(f, &[x.clone()]).unwrap();
//!
//! let y = Tensor::<f32>::from_vec(vec![0.0, 1.0], [2]).requires_grad_().apply_op(Swish);
//! assert_eq!(y.grad_fn(), Some("swish"));
//! ```

use std::sync::Arc;

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::graph::{detect_anomaly, is_anomaly_enabled, no_grad};
use crate::saved::Saved;
use crate::tensor::Tensor;

/// An op written outside the crate: a forward computation and its backward.
///
/// `T` is the element type the op serves; implement it for every
/// `T: Float` (as in the module example) to use one op in f32 and f64.
pub trait CustomOp<T: Float = f32>: Send + Sync {
    /// The op's name on the tape: the output's `grad_fn`, anomaly-mode and
    /// error messages, graph exports.
    fn name(&self) -> &'static str;

    /// The output from the inputs' values. It runs without recording (as
    /// under [`no_grad`]), so any tensor op may be used;
    /// only the returned values are kept.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// One gradient per input (the same shape as that input) from `grad`,
    /// the gradient of the output, or `None` for an input that gets none
    /// (not differentiable, or a constant). `inputs` and `output` are the
    /// tensors of the graph: written with differentiable ops on them, the
    /// gradient is itself differentiable (`create_graph`).
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Result<Vec<Option<Tensor<T>>>>;
}

/// A shared op (for example `Arc<dyn CustomOp<T>>`) is an op.
impl<T: Float, O: CustomOp<T> + ?Sized> CustomOp<T> for Arc<O> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        (**self).forward(inputs)
    }

    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        (**self).backward(inputs, output, grad)
    }
}

/// The gradients `op.backward` returned, checked against the inputs: one
/// per input, each of its input's shape.
fn checked<T: Float>(
    name: &'static str,
    inputs: &[&Tensor<T>],
    grads: Vec<Option<Tensor<T>>>,
) -> Result<Vec<Option<Tensor<T>>>> {
    if grads.len() != inputs.len() {
        return Err(Error::InvalidArgument {
            op: name,
            shape: inputs.first().map_or_else(Vec::new, |t| t.shape()),
            reason: format!(
                "backward returned {} gradients for {} inputs",
                grads.len(),
                inputs.len()
            ),
        });
    }
    for (i, (x, g)) in inputs.iter().zip(&grads).enumerate() {
        if let Some(g) = g {
            if g.shape() != x.shape() {
                return Err(Error::ShapeMismatch {
                    op: name,
                    lhs: x.shape(),
                    rhs: g.shape(),
                    reason: format!("(input {i} and the gradient backward returned for it) differ"),
                });
            }
        }
    }
    Ok(grads)
}

impl<T: Float> Tensor<T> {
    /// Applies a one-input [`CustomOp`] to this tensor; see [`try_apply_op`](Self::try_apply_op).
    ///
    /// # Panics
    /// If the op's forward fails (the message is its error's).
    #[track_caller]
    pub fn apply_op<O: CustomOp<T> + 'static>(&self, op: O) -> Tensor<T> {
        ok(self.try_apply_op(op))
    }

    /// Applies a one-input [`CustomOp`] to this tensor, recording it when
    /// this tensor requires grad.
    ///
    /// Errors here are the forward pass's. The backward pass runs later,
    /// inside [`try_backward`](Self::try_backward) or [`try_grad`](crate::try_grad),
    /// which return its errors; there a gradient of the wrong shape, or a
    /// wrong number of gradients, is an error naming the op and the shapes.
    pub fn try_apply_op<O: CustomOp<T> + 'static>(&self, op: O) -> Result<Tensor<T>> {
        Tensor::try_apply_op_n(op, &[self])
    }

    /// Applies a [`CustomOp`] to several inputs; see [`try_apply_op_n`](Self::try_apply_op_n).
    ///
    /// # Panics
    /// If the op's forward fails (the message is its error's).
    #[track_caller]
    pub fn apply_op_n<O: CustomOp<T> + 'static>(op: O, inputs: &[&Tensor<T>]) -> Tensor<T> {
        ok(Tensor::try_apply_op_n(op, inputs))
    }

    /// Applies a [`CustomOp`] to several inputs (in the order its `forward`
    /// and `backward` read them), recording it when any input requires grad.
    /// Errors as [`try_apply_op`](Self::try_apply_op).
    pub fn try_apply_op_n<O: CustomOp<T> + 'static>(
        op: O,
        inputs: &[&Tensor<T>],
    ) -> Result<Tensor<T>> {
        let name = op.name();
        let out = {
            // Anomaly mode checks the output below and names this op, not
            // one of the ops its forward is made of.
            let _quiet = is_anomaly_enabled().then(|| detect_anomaly(false));
            no_grad(|| op.forward(inputs))?
        };
        // Every input, not only those needing a gradient: a backward reads
        // them all (the other factor of a product). So all of them, and the
        // output, count as saved: an in-place write to any between forward
        // and backward is an error.
        let saved: Vec<Saved<T>> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| Saved::input(name, i, t))
            .collect();
        Ok(Tensor::from_op(out.array(), name, inputs, move |ctx| {
            let refs = saved.iter().map(Saved::get).collect::<Result<Vec<_>>>()?;
            let grads = op.backward(&refs, ctx.saved_output()?, ctx.grad)?;
            checked(name, &refs, grads)
        }))
    }
}
