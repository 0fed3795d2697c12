//! Broadcasting (numpy/PyTorch rules) of two shapes, and its adjoint: a
//! broadcast result summed back to an operand's shape.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::reduce::sum_axes;
use crate::dtype::Float;
use crate::error::{Error, Result};

/// numpy/PyTorch broadcasting of two shapes.
pub(crate) fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                    reason: format!(
                        "cannot be broadcast together (dim {i} from the left: {da} vs {db})"
                    ),
                })
            }
        };
    }
    Ok(out)
}

/// Sums a broadcast result back to `target` (the shape of an operand).
pub(crate) fn sum_to_shape<T: Float>(g: &ArrayViewD<'_, T>, target: &[usize]) -> ArrayD<T> {
    let lead = g.ndim() - target.len();
    let mut axes: Vec<usize> = (0..lead).collect();
    for (i, &t) in target.iter().enumerate() {
        if t == 1 && g.shape()[lead + i] != 1 {
            axes.push(lead + i);
        }
    }
    let s = sum_axes(g, &axes);
    s.into_shape_with_order(IxDyn(target))
        .expect("same number of elements")
}
