//! Matrix products with PyTorch's `matmul` semantics: 1-D vectors, 2-D
//! matrices, and batches whose leading dims broadcast.

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels;
use crate::ops::need;
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
                let (x, y) = (self.clone(), other.clone());
                Ok(Tensor::from_op(out, "matmul", &[self, other], move |c| {
                    Ok(vec![
                        need(c.needs[0], || {
                            c.grad
                                .try_matmul(&y.try_transpose(-1, -2)?)?
                                .try_sum_to(&sa)
                        })?,
                        need(c.needs[1], || {
                            x.try_transpose(-1, -2)?.try_matmul(c.grad)?.try_sum_to(&sb)
                        })?,
                    ])
                }))
            }
        }
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
