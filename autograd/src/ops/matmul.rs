//! Matrix products with PyTorch's `matmul` semantics: 1-D vectors, 2-D
//! matrices, and batches whose leading dims broadcast.

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels;
use crate::ops::need;
use crate::saved::Saved;
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// Matrix product (`self @ other`), as `torch.matmul`.
    pub fn try_matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (sa, sb) = (self.shape(), other.shape());
        let mismatch = |reason: &str| Error::ShapeMismatch {
            op: "matmul",
            lhs: sa.clone(),
            rhs: sb.clone(),
            reason: reason.into(),
        };
        match (sa.len(), sb.len()) {
            (0, _) | (_, 0) => Err(mismatch("(matmul needs at least one dim on each side)")),
            (1, 1) => {
                if sa != sb {
                    return Err(mismatch("(vectors of different lengths)"));
                }
                self.try_mul(other)?.try_sum_dim(0, false)
            }
            (1, _) => self
                .try_unsqueeze(0)?
                .try_matmul(other)?
                .try_squeeze_dim(-2),
            (_, 1) => self
                .try_matmul(&other.try_unsqueeze(-1)?)?
                .try_squeeze_dim(-1),
            _ => {
                let (k1, k2) = (sa[sa.len() - 1], sb[sb.len() - 2]);
                if k1 != k2 {
                    return Err(mismatch(&format!(
                        "cannot be multiplied ({}x{k1} and {k2}x{})",
                        sa[sa.len() - 2],
                        sb[sb.len() - 1]
                    )));
                }
                let batch =
                    kernels::broadcast_shapes("matmul", &sa[..sa.len() - 2], &sb[..sb.len() - 2])
                        .map_err(|_| mismatch("(batch dims do not broadcast)"))?;
                let (a, b) = (self.array(), other.array());
                let out = kernels::matmul_batched(&a.view(), &b.view(), &batch);
                let (x, y) = (
                    Saved::input("matmul", 0, self),
                    Saved::input("matmul", 1, other),
                );
                Ok(Tensor::from_op(out, "matmul", &[self, other], move |c| {
                    Ok(vec![
                        need(c.needs[0], || {
                            c.grad
                                .try_matmul(&y.get()?.try_transpose(-1, -2)?)?
                                .try_sum_to(&sa)
                        })?,
                        need(c.needs[1], || {
                            x.get()?
                                .try_transpose(-1, -2)?
                                .try_matmul(c.grad)?
                                .try_sum_to(&sb)
                        })?,
                    ])
                }))
            }
        }
    }

    /// `self @ weight^T + bias`, as `torch.nn.functional.linear`: `self` is
    /// `[*, in]`, `weight` `[out, in]`, `bias` `[out]`; the result `[*, out]`.
    /// One op instead of a transpose, a product and a broadcast add: the
    /// product adds onto rows that start as the bias, and the backward pass
    /// is two products and a sum, not a chain of nodes.
    pub fn try_linear(&self, weight: &Tensor<T>, bias: Option<&Tensor<T>>) -> Result<Tensor<T>> {
        let (sx, sw) = (self.shape(), weight.shape());
        let mismatch = |rhs: Vec<usize>, reason: String| Error::ShapeMismatch {
            op: "linear",
            lhs: sx.clone(),
            rhs,
            reason,
        };
        if sw.len() != 2 || sx.is_empty() || sx[sx.len() - 1] != sw[1] {
            return Err(mismatch(
                sw.clone(),
                "(input [*, in] and weight [out, in] needed)".into(),
            ));
        }
        let (k, o) = (sw[1], sw[0]);
        if let Some(b) = bias {
            if b.shape() != [o] {
                return Err(mismatch(b.shape(), format!("(bias of shape [{o}] needed)")));
            }
        }
        if sx.len() != 2 {
            // Leading dims folded into rows, and back.
            let mut out_shape = sx[..sx.len() - 1].to_vec();
            out_shape.push(o);
            let rows = sx[..sx.len() - 1].iter().product::<usize>();
            return self
                .try_reshape([rows, k])?
                .try_linear(weight, bias)?
                .try_reshape(out_shape);
        }
        let out = {
            let (x, w) = (self.array(), weight.array());
            let b = bias.map(|b| b.array());
            kernels::linear(&x.view(), &w.view(), b.as_ref().map(|b| b.view()).as_ref())
        };
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let (x, w) = (
            Saved::input("linear", 0, self),
            Saved::input("linear", 1, weight),
        );
        Ok(Tensor::from_op(out, "linear", &inputs, move |c| {
            let mut grads = vec![
                need(c.needs[0], || c.grad.try_matmul(w.get()?))?,
                need(c.needs[1], || {
                    c.grad.try_transpose(0, 1)?.try_matmul(x.get()?)
                })?,
            ];
            if c.needs.len() > 2 {
                grads.push(need(c.needs[2], || c.grad.try_sum_dim(0, false))?);
            }
            Ok(grads)
        }))
    }

    /// `self @ weight^T + bias`, as `torch.nn.functional.linear`.
    ///
    /// # Panics
    /// If the shapes do not fit; the message names them.
    #[track_caller]
    pub fn linear(&self, weight: &Tensor<T>, bias: Option<&Tensor<T>>) -> Tensor<T> {
        ok(self.try_linear(weight, bias))
    }

    /// Matrix product (`self @ other`), as `torch.matmul`.
    ///
    /// # Panics
    /// If the inner dims differ or batch dims do not broadcast; the message names both shapes.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        ok(self.try_matmul(other))
    }
}
