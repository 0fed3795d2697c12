//! Elementwise maps of one, two (broadcasting) and three arrays: run by run
//! when the operands have contiguous runs, rows split over the threads when
//! the result is big.

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};

use super::broadcast::broadcast_shapes;
use super::runs::collect_runs;
use super::{team, PAR_MIN};
use crate::dtype::Float;
use crate::error::Result;

/// A new array of `shape` (at least 1-D, first dim >= 2) whose rows along
/// dim 0 are written in parallel: `fill(rows, out)` must write every element
/// of `out`, the view of those rows.
fn par_collect<T: Float>(
    shape: &[usize],
    fill: impl Fn(Range<usize>, ArrayViewMutD<'_, MaybeUninit<T>>) + Sync,
) -> ArrayD<T> {
    let mut out = ArrayD::<T>::uninit(IxDyn(shape));
    let each = shape[0].div_ceil(team::threads().min(shape[0]));
    team::for_each(out.axis_chunks_iter_mut(Axis(0), each).collect(), |t, v| {
        let r0 = t * each;
        fill(r0..r0 + v.len_of(Axis(0)), v);
    });
    // SAFETY: every row was written by `fill` (a panic there propagates
    // through `team::run` before this point).
    unsafe { out.assume_init() }
}

/// Whether an elementwise result of `shape` is worth splitting over threads.
fn parallel(shape: &[usize]) -> bool {
    shape.iter().product::<usize>() >= PAR_MIN && shape.first().is_some_and(|&n| n >= 2)
}

/// `f(x)` for every element.
pub(crate) fn map<T: Float>(a: &ArrayViewD<'_, T>, f: impl Fn(T) -> T + Sync + Send) -> ArrayD<T> {
    let by_runs = collect_runs(&[a], |x, o| {
        for (o, &x) in o.iter_mut().zip(x[0]) {
            o.write(f(x));
        }
    });
    if let Some(out) = by_runs {
        return out;
    }
    if parallel(a.shape()) {
        par_collect(a.shape(), |r, mut o| {
            Zip::from(&mut o)
                .and(a.slice_axis(Axis(0), r.into()))
                .for_each(|o, &x| {
                    o.write(f(x));
                })
        })
    } else if let Some(s) = a.as_slice() {
        // Contiguous: a plain loop the compiler vectorises.
        ArrayD::from_shape_vec(IxDyn(a.shape()), s.iter().map(|&x| f(x)).collect())
            .expect("same size")
    } else {
        Zip::from(a).map_collect(|&x| f(x))
    }
}

/// `f(x, y)` elementwise with broadcasting.
pub(crate) fn zip2<T: Float>(
    op: &'static str,
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<ArrayD<T>> {
    if a.shape() == b.shape() {
        let by_runs = collect_runs(&[a, b], |xy, o| {
            for ((o, &x), &y) in o.iter_mut().zip(xy[0]).zip(xy[1]) {
                o.write(f(x, y));
            }
        });
        if let Some(out) = by_runs {
            return Ok(out);
        }
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    Ok(if parallel(&shape) {
        par_collect(&shape, |r, mut o| {
            Zip::from(&mut o)
                .and(av.slice_axis(Axis(0), r.clone().into()))
                .and(bv.slice_axis(Axis(0), r.into()))
                .for_each(|o, &x, &y| {
                    o.write(f(x, y));
                })
        })
    } else {
        Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
    })
}

/// `f(x, y, z)` elementwise with broadcasting to the shape of `a`.
pub(crate) fn zip3<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    c: &ArrayViewD<'_, T>,
    f: impl Fn(T, T, T) -> T + Sync + Send,
) -> ArrayD<T> {
    if a.shape() == b.shape() && a.shape() == c.shape() {
        let by_runs = collect_runs(&[a, b, c], |xyz, o| {
            for (((o, &x), &y), &z) in o.iter_mut().zip(xyz[0]).zip(xyz[1]).zip(xyz[2]) {
                o.write(f(x, y, z));
            }
        });
        if let Some(out) = by_runs {
            return out;
        }
    }
    let shape = a.raw_dim();
    let bv = b.broadcast(shape.clone()).expect("broadcastable");
    let cv = c.broadcast(shape).expect("broadcastable");
    if parallel(a.shape()) {
        par_collect(a.shape(), |r, mut o| {
            Zip::from(&mut o)
                .and(a.slice_axis(Axis(0), r.clone().into()))
                .and(bv.slice_axis(Axis(0), r.clone().into()))
                .and(cv.slice_axis(Axis(0), r.into()))
                .for_each(|o, &x, &y, &w| {
                    o.write(f(x, y, w));
                })
        })
    } else {
        Zip::from(a)
            .and(&bv)
            .and(&cv)
            .map_collect(|&x, &y, &w| f(x, y, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `map`, `zip2` and `zip3` on views read run by run (a channel slice,
    /// a transpose of the outer dims, a reversed outer axis, mixed with
    /// contiguous operands), small and big enough to split over the threads,
    /// give ndarray's element-by-element results; runs shorter than 8 (a
    /// transposed inner dim) take ndarray's path and agree too.
    #[test]
    fn elementwise_kernels_on_views_match_element_by_element() {
        for n in [2, 40] {
            let big = ArrayD::from_shape_fn(IxDyn(&[n, 12, 9, 31]), |i| {
                (i[0] * 5 + i[1] * 3 + i[2] * 7 + i[3]) as f32 * 0.25 - 40.0
            });
            let other = ArrayD::from_shape_fn(IxDyn(&[12, n, 9, 31]), |i| {
                (i[0] + 2 * i[1] + i[2] + 3 * i[3]) as f32
            });
            let slice = big.slice_axis(Axis(1), (2..8).into()).into_dyn();
            let t = other.view().permuted_axes(IxDyn(&[1, 0, 2, 3]));
            let t = t.slice_axis(Axis(1), (4..10).into());
            let rev = big
                .slice_axis(Axis(1), ndarray::Slice::new(3, Some(9), -1))
                .into_dyn();
            let dense = slice.to_owned();
            let tr = ArrayD::from_shape_fn(IxDyn(&[n, 6, 31, 9]), |i| (i[2] * 9 + i[3]) as f32);
            let short = tr.view().permuted_axes(IxDyn(&[0, 1, 3, 2]));
            let views = [slice.view(), t.view(), rev.view(), dense.view()];
            let f2 = |x: f32, y: f32| x * 3.0 - y;
            let f3 = |x: f32, y: f32, z: f32| x - y * z;
            for (i, a) in views.iter().enumerate() {
                let b = &views[(i + 1) % views.len()];
                let c = &views[(i + 2) % views.len()];
                let want2 = Zip::from(a).and(b).map_collect(|&x, &y| f2(x, y));
                let want3 = Zip::from(a)
                    .and(b)
                    .and(c)
                    .map_collect(|&x, &y, &z| f3(x, y, z));
                assert_eq!(map(a, |x| x * 2.0 + 1.0), a.map(|&x| x * 2.0 + 1.0));
                assert_eq!(zip2("t", a, b, f2).unwrap(), want2, "view {i} n {n}");
                assert_eq!(zip3(a, b, c, f3), want3, "view {i} n {n}");
                assert!(collect_runs(&[a, b], |_, _| {}).is_some() || a.is_empty());
            }
            assert!(collect_runs(&[&short.view()], |_, _| {}).is_none());
            let want = Zip::from(&short).and(&slice).map_collect(|&x, &y| f2(x, y));
            assert_eq!(zip2("t", &short, &slice, f2).unwrap(), want);
        }
    }

    /// Results big enough to be written in parallel (rows dealt to the
    /// threads), with broadcasting, equal the element-by-element values.
    #[test]
    fn parallel_elementwise_kernels_match_element_by_element() {
        let (d0, d1, d2) = (3, 170, 131);
        assert!(d0 * d1 * d2 >= PAR_MIN);
        let a = ArrayD::from_shape_fn(IxDyn(&[d0, d1, d2]), |i| {
            (i[0] * 7 + i[1] * 3 + i[2]) as f32
        });
        let b = ArrayD::from_shape_fn(IxDyn(&[d1, 1]), |i| i[0] as f32 * 0.5);
        let c = ArrayD::from_shape_fn(IxDyn(&[d2]), |i| i[0] as f32);
        let m = map(&a.view(), |x| x * 2.0);
        let z2 = zip2("add", &a.view(), &b.view(), |x, y| x + y).unwrap();
        let z3 = zip3(&a.view(), &b.view(), &c.view(), |x, y, w| x - y * w);
        for (i, &x) in a.indexed_iter() {
            let (y, w) = (i[1] as f32 * 0.5, i[2] as f32);
            assert_eq!(m[&i], x * 2.0);
            assert_eq!(z2[&i], x + y, "at {i:?}");
            assert_eq!(z3[&i], x - y * w, "at {i:?}");
        }
        // A broadcast *left* operand, so the result is bigger than `a`.
        let z = zip2("mul", &b.view(), &a.view(), |y, x| y * x).unwrap();
        assert_eq!(z.shape(), a.shape());
        assert!(z
            .indexed_iter()
            .all(|(i, &v)| v == a[&i] * (i[1] as f32 * 0.5)));
    }
}
