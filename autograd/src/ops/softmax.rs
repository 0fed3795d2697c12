//! softmax and log_softmax along one dim, computed stably (max subtracted).

use ndarray::{ArrayD, ArrayViewD, Axis, Zip};

use crate::dims::norm_dim;
use crate::dtype::Float;
use crate::error::{ok, Result};
use crate::kernels::PAR_MIN;
use crate::tensor::Tensor;

/// Applies `f(input lane, output lane)` to every lane along `dim`.
pub(crate) fn along_lanes<T: Float>(
    x: &ArrayViewD<'_, T>,
    d: usize,
    f: impl Fn(ndarray::ArrayView1<'_, T>, ndarray::ArrayViewMut1<'_, T>) + Sync + Send,
) -> ArrayD<T> {
    let mut out = ArrayD::<T>::zeros(x.raw_dim());
    let z = Zip::from(x.lanes(Axis(d))).and(out.lanes_mut(Axis(d)));
    if x.len() >= PAR_MIN {
        z.par_for_each(|a, b| {
            crate::denormals::sync_flush_denormals();
            f(a, b)
        });
    } else {
        z.for_each(f);
    }
    out
}

impl<T: Float> Tensor<T> {
    /// `exp(x) / sum(exp(x))` along `dim`.
    pub fn try_softmax(&self, dim: isize) -> Result<Tensor<T>> {
        let d = norm_dim("softmax", dim, &self.shape())?;
        let x = self.array();
        let out = along_lanes(&x.view(), d, |xs, mut ys| {
            let m = xs.fold(T::neg_infinity(), |a, &b| a.max(b));
            let mut s = T::zero();
            for (y, &v) in ys.iter_mut().zip(xs.iter()) {
                *y = (v - m).exp();
                s += *y;
            }
            ys.mapv_inplace(|y| y / s);
        });
        Ok(Tensor::from_op(out, "softmax", &[self], move |c| {
            // y * (g - sum(g * y))
            let y = c.saved_output()?;
            let dot = c.grad.try_mul(y)?.try_sum_dim(d, true)?;
            Ok(vec![Some(y.try_mul(&c.grad.try_sub(&dot)?)?)])
        }))
    }

    /// `exp(x) / sum(exp(x))` along `dim`.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor<T> {
        ok(self.try_softmax(dim))
    }

    /// `x - log(sum(exp(x)))` along `dim`.
    pub fn try_log_softmax(&self, dim: isize) -> Result<Tensor<T>> {
        let d = norm_dim("log_softmax", dim, &self.shape())?;
        let x = self.array();
        let out = along_lanes(&x.view(), d, |xs, mut ys| {
            let m = xs.fold(T::neg_infinity(), |a, &b| a.max(b));
            let s = xs.fold(T::zero(), |a, &v| a + (v - m).exp());
            let lse = m + s.ln();
            Zip::from(&mut ys).and(&xs).for_each(|y, &v| *y = v - lse);
        });
        Ok(Tensor::from_op(out, "log_softmax", &[self], move |c| {
            // g - softmax * sum(g)
            let p = c.saved_output()?.exp();
            let s = c.grad.try_sum_dim(d, true)?;
            Ok(vec![Some(c.grad.try_sub(&p.try_mul(&s)?)?)])
        }))
    }

    /// `x - log(sum(exp(x)))` along `dim`.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor<T> {
        ok(self.try_log_softmax(dim))
    }
}
