//! Matrix products on ndarray views: batched `matmul`, `linear` (bias
//! rows plus a product), and the 2-D GEMM call both go through.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};

use super::team;
use crate::dtype::Float;

/// The shortest reduction of a linear layer's forward product that
/// `narrow` and `few_cols` take.
const LINEAR_MIN_K: usize = 512;

/// Multiply-adds (`m * k * n`) from which one product is split over the threads.
const GEMM_SPLIT_MIN: usize = 1 << 17;

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
        // A few rows (batch 1 to 4) or outputs: the weights are read in
        // place (`narrow`); else the GEMM. Linear layers go there from
        // reductions of 512 (the kernels take convolutions' from 128, where
        // that was measured): smaller ones keep the GEMM's sums.
        let (sx, sw) = (x.strides(), wt.strides());
        // SAFETY: x is n x k, wt is k x o (views with their strides), out is
        // a new contiguous n x o array, its rows the bias when beta is 1.
        let narrow = k >= LINEAR_MIN_K
            && unsafe {
                super::narrow::try_forward(
                    n,
                    k,
                    o,
                    x.as_ptr(),
                    sx[0],
                    sx[1],
                    wt.as_ptr(),
                    sw[0],
                    sw[1],
                    beta,
                    out.as_mut_ptr() as *mut T,
                    o as isize,
                    threads,
                )
            };
        // SAFETY: with a bias (beta 1) every row was written just above.
        if !narrow {
            unsafe { gemm_into(x, &wt, beta, &mut out.view_mut(), threads) };
        }
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
mod tests {
    use super::*;

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
