//! Array kernels behind the ops: no autograd here, only numbers.

pub(crate) mod conv;
pub(crate) mod gemm;
pub(crate) mod im2col;
pub(crate) mod pool;
pub(crate) mod scratch;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::dtype::Float;
use crate::error::{Error, Result};

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

/// `f(x)` for every element.
pub(crate) fn map<T: Float>(a: &ArrayViewD<'_, T>, f: impl Fn(T) -> T + Sync + Send) -> ArrayD<T> {
    if a.len() >= PAR_MIN {
        Zip::from(a).par_map_collect(|&x| f(x))
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
        if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
            if a.len() < PAR_MIN {
                let v = x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect();
                return Ok(ArrayD::from_shape_vec(IxDyn(a.shape()), v).expect("same size"));
            }
        }
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    let z = Zip::from(&av).and(&bv);
    Ok(if av.len() >= PAR_MIN {
        z.par_map_collect(|&x, &y| f(x, y))
    } else {
        z.map_collect(|&x, &y| f(x, y))
    })
}

/// `f(x, y, z)` elementwise with broadcasting to the shape of `a`.
pub(crate) fn zip3<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    c: &ArrayViewD<'_, T>,
    f: impl Fn(T, T, T) -> T + Sync + Send,
) -> ArrayD<T> {
    let shape = a.raw_dim();
    let bv = b.broadcast(shape.clone()).expect("broadcastable");
    let cv = c.broadcast(shape).expect("broadcastable");
    let z = Zip::from(a).and(&bv).and(&cv);
    if a.len() >= PAR_MIN {
        z.par_map_collect(|&x, &y, &w| f(x, y, w))
    } else {
        z.map_collect(|&x, &y, &w| f(x, y, w))
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
    let mut out = ArrayD::<T>::zeros(IxDyn(&out_shape));
    if m == 0 || n == 0 || k == 0 || nb == 0 {
        return out;
    }
    // One 2-D view per batch entry: any strides (transposed, broadcast) work.
    let (mut am, mut bm) = (Vec::with_capacity(nb), Vec::with_capacity(nb));
    matrices(av, &mut am);
    matrices(bv, &mut bm);
    let mut ov = out
        .view_mut()
        .into_shape_with_order(IxDyn(&[nb, m, n]))
        .expect("contiguous");
    let threads = rayon::current_num_threads();
    let work = m * n * k;
    if nb >= threads && nb > 1 && work * nb >= 1 << 16 {
        use rayon::prelude::*;
        let cs: Vec<_> = ov.outer_iter_mut().collect();
        cs.into_par_iter()
            .zip(am.par_iter().zip(bm.par_iter()))
            .for_each(|(mut c, (a, b))| {
                gemm_into(a, b, &mut c.view_mut(), 1);
            });
    } else {
        let split = if work >= 1 << 17 { threads } else { 1 };
        for (mut c, (a, b)) in ov.outer_iter_mut().zip(am.iter().zip(&bm)) {
            gemm_into(a, b, &mut c.view_mut(), split);
        }
    }
    out
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

/// `c = a @ b` for 2-D views, on up to `threads` threads.
pub(crate) fn gemm_into<T: Float>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    c: &mut ndarray::ArrayViewMutD<'_, T>,
    threads: usize,
) {
    let (m, k) = (a.shape()[0], a.shape()[1]);
    let n = b.shape()[1];
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: the views describe valid m x k, k x n and m x n matrices, and
    // `c` is a distinct, uniquely borrowed array.
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
            T::zero(),
            c.as_mut_ptr(),
            sc[0],
            sc[1],
            threads,
        );
    }
}
