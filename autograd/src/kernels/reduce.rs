//! Reductions over axes: sums (per-channel lanes for all axes but one) and
//! folds that keep the reduced axes.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use super::channels;
use crate::dtype::Float;

/// Sums over `axes` (sorted, distinct); the axes are removed.
pub(crate) fn sum_axes<T: Float>(a: &ArrayViewD<'_, T>, axes: &[usize]) -> ArrayD<T> {
    if axes.is_empty() {
        return a.to_owned();
    }
    if axes.len() == a.ndim() {
        let s = match a.as_slice_memory_order() {
            Some(s) => s.iter().fold(T::zero(), |acc, &x| acc + x),
            None => a.iter().fold(T::zero(), |acc, &x| acc + x),
        };
        return ndarray::arr0(s).into_dyn();
    }
    // All axes but one, of a contiguous array (a convolution's bias
    // gradient: [N, C, H, W] over N, H, W): per-channel sums in 8 lanes, the
    // channels split over the threads (ndarray's sum_axis ran serially).
    if let (Some(x), [keep]) = (
        a.as_slice(),
        &(0..a.ndim())
            .filter(|d| !axes.contains(d))
            .collect::<Vec<_>>()[..],
    ) {
        let shape = a.shape();
        let (n, s): (usize, usize) = (
            shape[..*keep].iter().product(),
            shape[keep + 1..].iter().product(),
        );
        // Planes of a few values (a linear layer's [N, F] bias gradient:
        // one) stay with ndarray's row-by-row sums.
        if s >= 8 {
            let sums = channels::channel_sums(x, n, shape[*keep], s, |_| |v| v);
            return ArrayD::from_shape_vec(IxDyn(&[shape[*keep]]), sums).expect("one per channel");
        }
    }
    // Reduce the last axes first, so earlier indices stay valid.
    let mut out = a.sum_axis(Axis(axes[axes.len() - 1]));
    for &ax in axes[..axes.len() - 1].iter().rev() {
        out = out.sum_axis(Axis(ax));
    }
    out
}

/// Folds `f` over `axes`, keeping those axes with size 1.
pub(crate) fn fold_axes_keepdim<T: Float>(
    a: &ArrayViewD<'_, T>,
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T + Copy,
) -> ArrayD<T> {
    let mut out = a.to_owned();
    for &ax in axes {
        out = out
            .fold_axis(Axis(ax), init, |&acc, &x| f(acc, x))
            .insert_axis(Axis(ax));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum_axes` over all axes but one (per-channel sums, split over the
    /// threads when big) gives ndarray's sums, for the kept axis first,
    /// inner or last, planes of 1 to 49 values, small and large arrays.
    #[test]
    fn sum_over_all_axes_but_one_matches_ndarray() {
        for shape in [
            vec![3, 4, 5, 5],
            vec![40, 16, 7, 7],
            vec![2, 6, 9],
            vec![100, 32],
            vec![64, 3, 16, 16],
        ] {
            let a = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
                (0..shape.len())
                    .map(|d| ((i[d] * (d + 3)) % 7) as f64 - 2.5)
                    .sum::<f64>()
            });
            for keep in 0..shape.len() {
                let axes: Vec<usize> = (0..shape.len()).filter(|&d| d != keep).collect();
                let mut want = a.clone();
                for &ax in axes.iter().rev() {
                    want = want.sum_axis(Axis(ax));
                }
                let got = sum_axes(&a.view(), &axes);
                assert_eq!(got.shape(), want.shape());
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (g - w).abs() < 1e-9 * (1.0 + w.abs()),
                        "{shape:?} keep {keep}"
                    );
                }
            }
        }
    }
}
