//! Array kernels behind the ops: no autograd here, only numbers.

pub(crate) mod channels;
pub(crate) mod conv;
pub(crate) mod dead_taps;
pub(crate) mod direct;
pub(crate) mod gemm;
pub(crate) mod im2col;
pub(crate) mod pool;
pub(crate) mod scratch;
pub(crate) mod team;

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};

use crate::dtype::Float;
use crate::error::{Error, Result};

/// Multiply-adds (`m * k * n`) from which one product is split over the threads.
const GEMM_SPLIT_MIN: usize = 1 << 17;

/// Element counts above which elementwise kernels split work across threads.
pub(crate) const PAR_MIN: usize = 1 << 16;

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
fn collect_runs<T: Float>(
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

/// Batched GEMM: `a` is `[batch.., m, k]`, `b` is `[batch.., k, n]`, batch
/// dims already broadcast to `batch`; returns `[batch.., m, n]`.
pub(crate) fn matmul_batched<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    batch: &[usize],
) -> ArrayD<T> {
    let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let n = b.shape()[b.ndim() - 1];
    let mut full_a = batch.to_vec();
    full_a.extend([m, k]);
    let mut full_b = batch.to_vec();
    full_b.extend([k, n]);
    let av = a.broadcast(IxDyn(&full_a)).expect("broadcast batch");
    let bv = b.broadcast(IxDyn(&full_b)).expect("broadcast batch");
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.to_vec();
    out_shape.extend([m, n]);
    if m == 0 || n == 0 || k == 0 || nb == 0 {
        return ArrayD::<T>::zeros(IxDyn(&out_shape));
    }
    // Written by the products with beta 0, which never read it: no zero fill.
    let mut out = ArrayD::<T>::uninit(IxDyn(&out_shape));
    // One 2-D view per batch entry: any strides (transposed, broadcast) work.
    let (mut am, mut bm) = (Vec::with_capacity(nb), Vec::with_capacity(nb));
    matrices(av, &mut am);
    matrices(bv, &mut bm);
    let threads = team::threads();
    let work = m * n * k;
    let flat = out.as_slice_mut().expect("new array, contiguous");
    let product = |i: usize, c: &mut [MaybeUninit<T>], split: usize| {
        let mut c = ArrayViewMutD::from_shape(IxDyn(&[m, n]), c).expect("m x n");
        // SAFETY: beta 0: `c` is only written.
        unsafe { gemm_into(&am[i], &bm[i], T::zero(), &mut c, split) };
    };
    if nb >= threads && nb > 1 && work * nb >= 1 << 16 {
        // Whole products per thread, claimed one at a time.
        team::for_chunks(flat, m * n, |i, c| product(i, c, 1));
    } else {
        let split = if work >= GEMM_SPLIT_MIN { threads } else { 1 };
        for (i, c) in flat.chunks_exact_mut(m * n).enumerate() {
            product(i, c, split);
        }
    }
    // SAFETY: every output matrix was written by a product.
    unsafe { out.assume_init() }
}

/// `x @ w^T + bias` (`x` `[n, k]`, `w` `[o, k]`, `bias` `[o]`): the rows
/// start as the bias and the product adds to them (PyTorch's `addmm`).
pub(crate) fn linear<T: Float>(
    x: &ArrayViewD<'_, T>,
    w: &ArrayViewD<'_, T>,
    bias: Option<&ArrayViewD<'_, T>>,
) -> ArrayD<T> {
    let (n, k, o) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let mut out = ArrayD::<T>::uninit(IxDyn(&[n, o]));
    let beta = match bias {
        Some(b) => {
            let b: Vec<MaybeUninit<T>> = b.iter().map(|&v| MaybeUninit::new(v)).collect();
            let rows = out.as_slice_mut().expect("new array, contiguous");
            for row in rows.chunks_exact_mut(o) {
                row.copy_from_slice(&b);
            }
            T::one()
        }
        None if k == 0 => return ArrayD::zeros(IxDyn(&[n, o])),
        None => T::zero(),
    };
    if n > 0 && o > 0 && k > 0 {
        let threads = if n * k * o >= GEMM_SPLIT_MIN {
            team::threads()
        } else {
            1
        };
        let wt = w.view().reversed_axes();
        // SAFETY: with a bias (beta 1) every row was written just above.
        unsafe { gemm_into(x, &wt, beta, &mut out.view_mut(), threads) };
    }
    // SAFETY: written by the bias rows, the product (beta 0), or both.
    unsafe { out.assume_init() }
}

fn matrices<'a, T: Float>(v: ArrayViewD<'a, T>, out: &mut Vec<ArrayViewD<'a, T>>) {
    if v.ndim() == 2 {
        out.push(v);
    } else {
        for i in 0..v.shape()[0] {
            matrices(v.clone().index_axis_move(Axis(0), i), out);
        }
    }
}

/// `c = a @ b + beta * c` for 2-D views, on up to `threads` threads; with
/// `beta` 0, `c` is only written.
///
/// # Safety
/// With `beta` other than 0, every element of `c` must be initialised.
pub(crate) unsafe fn gemm_into<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    beta: T,
    c: &mut ndarray::ArrayViewMutD<'_, MaybeUninit<T>>,
    threads: usize,
) {
    let (m, k) = (a.shape()[0], a.shape()[1]);
    let n = b.shape()[1];
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: the views describe valid m x k, k x n and m x n matrices, `c`
    // is a distinct, uniquely borrowed array, initialised if it is read.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.as_ptr(),
            sa[0],
            sa[1],
            b.as_ptr(),
            sb[0],
            sb[1],
            beta,
            c.as_mut_ptr() as *mut T,
            sc[0],
            sc[1],
            threads,
        );
    }
}

#[cfg(test)]
mod parallel_tests {
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

    /// A batch of products big enough to be dealt to the threads, the right
    /// operand broadcast and transposed, against a naive triple loop.
    #[test]
    fn parallel_batched_matmul_matches_a_naive_product() {
        let (nb, m, k, n) = (6, 40, 30, 50);
        assert!(nb * m * k * n >= 1 << 16);
        let a = ArrayD::from_shape_fn(IxDyn(&[nb, m, k]), |i| {
            ((i[0] * 7 + i[1] * 3 + i[2]) % 11) as f64 - 5.0
        });
        let bt =
            ArrayD::from_shape_fn(IxDyn(&[n, k]), |i| ((i[0] * 5 + i[1] * 2) % 7) as f64 - 3.0);
        let b = bt.view().reversed_axes();
        let c = matmul_batched(&a.view(), &b.view().insert_axis(Axis(0)), &[nb]);
        assert_eq!(c.shape(), &[nb, m, n]);
        for ((bi, i), j) in (0..nb)
            .flat_map(|bi| (0..m).map(move |i| (bi, i)))
            .flat_map(|p| (0..n).map(move |j| (p, j)))
        {
            let want: f64 = (0..k)
                .map(|p| a[[bi, i, p].as_ref()] * bt[[j, p].as_ref()])
                .sum();
            assert_eq!(c[[bi, i, j].as_ref()], want, "at [{bi}, {i}, {j}]");
        }
    }
}
