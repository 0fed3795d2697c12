//! Copies of strided views in row-major order, a contiguous run of
//! elements at a time: the common run finder behind `standard_slice`, `cat`
//! and the elementwise kernels.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{team, PAR_MIN};
use crate::dtype::Float;

/// The elements of `a` in row-major order: borrowed when `a` is already
/// contiguous, else copied run by run, a run being the longest contiguous
/// suffix of dims (a channel slice of an NCHW tensor, as the backward pass
/// of `cat` hands to each Inception branch, copies whole `C*H*W` blocks).
/// ndarray's `as_standard_layout` copies element by element through an
/// iterator: 11% of a GoogLeNet training step went there.
pub(crate) fn standard_slice<'a, T: Float>(a: &'a ArrayViewD<'a, T>) -> Cow<'a, [T]> {
    if let Some(s) = a.as_slice() {
        return Cow::Borrowed(s);
    }
    // Run by run (see `collect_runs`), or element by element when runs are short.
    let copied = collect_runs(&[a], |x, o| {
        for (o, &v) in o.iter_mut().zip(x[0]) {
            o.write(v);
        }
    });
    Cow::Owned(match copied {
        Some(arr) => arr.into_raw_vec_and_offset().0,
        None => a.iter().copied().collect(),
    })
}

/// Joins arrays (equal shapes except along `axis`) along `axis` into a new
/// row-major array: per index of the axes before `axis`, each input's
/// contiguous block in turn, those rows split over the threads. ndarray's
/// `concatenate` puts `axis` outermost in memory, so an Inception block's
/// `[N, C, H, W]` output came out as `[C, N, H, W]` and every consumer had
/// to copy it back (element by element on 2x2 planes).
pub(crate) fn cat<T: Float>(views: &[ArrayViewD<'_, T>], axis: usize) -> ArrayD<T> {
    let mut shape = views[0].shape().to_vec();
    shape[axis] = views.iter().map(|v| v.shape()[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let parts: Vec<Cow<'_, [T]>> = views.iter().map(standard_slice).collect();
    let blocks: Vec<usize> = views.iter().map(|v| v.shape()[axis] * inner).collect();
    let row: usize = blocks.iter().sum();
    let mut out = Vec::<T>::with_capacity(outer * row);
    let fill = |o: usize, dst: &mut [MaybeUninit<T>]| {
        let mut at = 0;
        for (p, &b) in parts.iter().zip(&blocks) {
            let src = &p[o * b..(o + 1) * b];
            // SAFETY: `dst[at..at + b]` is inside `dst`; T is Copy.
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().add(at) as *mut T, b)
            };
            at += b;
        }
    };
    let spare = &mut out.spare_capacity_mut()[..outer * row];
    if outer >= 2 && outer * row >= PAR_MIN {
        team::for_chunks(spare, row, fill);
    } else {
        spare
            .chunks_mut(row.max(1))
            .enumerate()
            .for_each(|(o, d)| fill(o, d));
    }
    // SAFETY: every row was filled with its blocks, which add up to `row`.
    unsafe { out.set_len(outer * row) };
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("sizes add up")
}

/// The trailing dims that every view (all of one shape) stores densely, as
/// one run of elements, and each view's offsets of those runs in row-major
/// order of the other (outer) dims.
fn common_runs<T>(views: &[&ArrayViewD<'_, T>]) -> (usize, Vec<Vec<isize>>) {
    let shape = views[0].shape();
    let mut outer_dims = 0;
    for v in views {
        let (mut d, mut run) = (shape.len(), 1usize);
        while d > 0 && (shape[d - 1] == 1 || v.strides()[d - 1] == run as isize) {
            run *= shape[d - 1];
            d -= 1;
        }
        outer_dims = outer_dims.max(d);
    }
    let (outer, run) = (&shape[..outer_dims], shape[outer_dims..].iter().product());
    let blocks: usize = outer.iter().product();
    let offsets = views
        .iter()
        .map(|v| {
            let st = &v.strides()[..outer_dims];
            let (mut idx, mut off) = (vec![0usize; outer_dims], 0isize);
            let mut offs = Vec::with_capacity(blocks);
            for _ in 0..blocks {
                offs.push(off);
                // Odometer step over the outer dims.
                for ax in (0..outer_dims).rev() {
                    idx[ax] += 1;
                    off += st[ax];
                    if idx[ax] < outer[ax] {
                        break;
                    }
                    off -= st[ax] * outer[ax] as isize;
                    idx[ax] = 0;
                }
            }
            offs
        })
        .collect();
    (run, offsets)
}

/// A new array of the views' common shape, written by `f(inputs, out)` on
/// aligned pieces: `inputs[i]` the elements of `views[i]` under `out`, in
/// row-major order. Views with contiguous runs of at least 8 elements (a
/// channel slice from `cat`'s backward, a transpose's untouched inner dims)
/// are read run by run, not element by element through ndarray's indexing;
/// big results are split over the threads. `None` when the runs are shorter.
pub(super) fn collect_runs<T: Float>(
    views: &[&ArrayViewD<'_, T>],
    f: impl Fn(&[&[T]], &mut [MaybeUninit<T>]) + Sync,
) -> Option<ArrayD<T>> {
    let total = views[0].len();
    if total == 0 {
        return None;
    }
    let (run, offsets) = common_runs(views);
    if run < 8 {
        return None;
    }
    // Addresses as integers: the closure runs on the team's threads.
    let bases: Vec<usize> = views.iter().map(|v| v.as_ptr() as usize).collect();
    let write = |start: usize, mut out: &mut [MaybeUninit<T>]| {
        let mut e = start;
        let mut ins: Vec<&[T]> = Vec::with_capacity(views.len());
        while !out.is_empty() {
            let (k, r) = (e / run, e % run);
            let len = (run - r).min(out.len());
            ins.clear();
            for (b, offs) in bases.iter().zip(&offsets) {
                // SAFETY: run `k` of each view is `run` contiguous elements
                // from its offset (common_runs), and `r + len <= run`.
                ins.push(unsafe {
                    std::slice::from_raw_parts((*b as *const T).offset(offs[k]).add(r), len)
                });
            }
            let (head, tail) = out.split_at_mut(len);
            f(&ins, head);
            out = tail;
            e += len;
        }
    };
    let mut v = Vec::with_capacity(total);
    let spare = &mut v.spare_capacity_mut()[..total];
    if total >= PAR_MIN {
        let per = total.div_ceil(team::threads());
        team::for_chunks(spare, per, |i, o| write(i * per, o));
    } else {
        write(0, spare);
    }
    // SAFETY: `write` gave `f` every element of the output, which writes them all.
    unsafe { v.set_len(total) };
    Some(ArrayD::from_shape_vec(IxDyn(views[0].shape()), v).expect("same size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    /// Non-contiguous views (channel slices, transposes, broadcasts, a
    /// reversed axis) come out in row-major order, as `iter` gives them.
    #[test]
    fn standard_slice_matches_the_iteration_order() {
        let a = ArrayD::from_shape_fn(IxDyn(&[3, 5, 4, 6]), |i| {
            (i[0] * 1000 + i[1] * 100 + i[2] * 10 + i[3]) as f32
        });
        let b = ArrayD::from_shape_fn(IxDyn(&[4, 1]), |i| i[0] as f32);
        let views = [
            a.view(),
            a.slice_axis(Axis(1), (1..4).into()).into_dyn(),
            a.slice_axis(Axis(3), (0..3).into()).into_dyn(),
            a.view().permuted_axes(IxDyn(&[0, 2, 1, 3])),
            a.slice_axis(Axis(2), ndarray::Slice::new(0, None, -1))
                .into_dyn(),
            a.slice_axis(Axis(1), ndarray::Slice::new(0, None, -2))
                .into_dyn(),
            b.broadcast(IxDyn(&[2, 4, 9])).unwrap(),
        ];
        for v in views {
            let want: Vec<f32> = v.iter().copied().collect();
            assert_eq!(
                standard_slice(&v).as_ref(),
                &want[..],
                "shape {:?} strides {:?}",
                v.shape(),
                v.strides()
            );
        }
    }

    /// `cat` gives ndarray's `concatenate` values, in row-major memory, for
    /// every axis, inputs that are views (a transpose, a channel slice), and
    /// sizes on both sides of the parallel split.
    #[test]
    fn cat_matches_concatenate_in_row_major_order() {
        for n in [2, 300] {
            let a = ArrayD::from_shape_fn(IxDyn(&[n, 3, 5, 7]), |i| {
                (i[0] * 1000 + i[1] * 100 + i[2] * 10 + i[3]) as f32
            });
            let b = ArrayD::from_shape_fn(IxDyn(&[n, 7, 5, 4]), |i| {
                -((i[0] * 1000 + i[1] * 100 + i[2] * 10 + i[3]) as f32)
            });
            let wide = ArrayD::from_shape_fn(IxDyn(&[n, 3, 5, 14]), |i| (i[3] * 7 + i[1]) as f32);
            for axis in 0..4 {
                let mut shape_c = vec![n, 3, 5, 7];
                shape_c[axis] = 2;
                let c = ArrayD::from_shape_fn(IxDyn(&shape_c), |i| i[axis] as f32 + 0.5);
                let bt = b.view().permuted_axes(IxDyn(&[0, 3, 2, 1]));
                let b2 = bt.slice_axis(Axis(axis), (0..1).into());
                // The transposed slice fits along axis 1 only; every
                // second column of `wide` (strided) along every axis.
                let strided = wide.slice_axis(Axis(3), ndarray::Slice::new(0, None, 2));
                let mut views = vec![a.view(), c.view(), strided];
                if axis == 1 {
                    views.push(b2.clone());
                }
                let want = ndarray::concatenate(Axis(axis), &views).unwrap();
                let got = cat(&views, axis);
                assert_eq!(got, want, "axis {axis} n {n}");
                assert!(got.is_standard_layout());
            }
        }
    }
}
