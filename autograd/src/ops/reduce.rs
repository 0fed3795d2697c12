//! Reductions over dims with `keepdim`: sum, mean, max, min, var, std,
//! logsumexp; argmax/argmin (not differentiable).

use ndarray::{ArrayD, Axis, IxDyn};

use crate::dims::{norm_dim, norm_dims, Dims};
use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels;
use crate::tensor::Tensor;

/// The shape with `axes` kept as size 1.
fn keep_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| if axes.contains(&i) { 1 } else { s })
        .collect()
}

/// Resolves dims; an empty list means every dim (as PyTorch).
fn reduce_axes(op: &'static str, dims: &dyn Dims, shape: &[usize]) -> Result<Vec<usize>> {
    let raw = dims.raw_dims();
    if raw.is_empty() {
        Ok((0..shape.len()).collect())
    } else {
        norm_dims(op, &raw, shape)
    }
}

impl<T: Float> Tensor<T> {
    /// Sum over `dims` (an empty list: all dims).
    pub fn try_sum_dim(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor<T>> {
        let shape = self.shape();
        let axes = reduce_axes("sum", &dims, &shape)?;
        let kept = keep_shape(&shape, &axes);
        let mut out = kernels::sum_axes(&self.array().view(), &axes);
        if keepdim {
            out = out.into_shape_with_order(IxDyn(&kept)).expect("same size");
        }
        Ok(Tensor::from_op(out, "sum", &[self], move |c| {
            let g = if keepdim {
                c.grad.clone()
            } else {
                c.grad.try_reshape(&kept)?
            };
            Ok(vec![Some(g.try_expand(&shape)?)])
        }))
    }

    /// Sum over `dims`.
    #[track_caller]
    pub fn sum_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor<T> {
        ok(self.try_sum_dim(dims, keepdim))
    }

    /// Sum of all elements (a 0-dim tensor).
    pub fn sum(&self) -> Tensor<T> {
        ok(self.try_sum_dim(Vec::<isize>::new(), false))
    }

    /// Mean over `dims` (an empty list: all dims).
    pub fn try_mean_dim(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor<T>> {
        let shape = self.shape();
        let axes = reduce_axes("mean", &dims, &shape)?;
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        Ok(self.try_sum_dim(dims, keepdim)?.div_scalar(n as f64))
    }

    /// Mean over `dims`.
    #[track_caller]
    pub fn mean_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor<T> {
        ok(self.try_mean_dim(dims, keepdim))
    }

    /// Mean of all elements.
    pub fn mean(&self) -> Tensor<T> {
        ok(self.try_mean_dim(Vec::<isize>::new(), false))
    }

    fn extremum(
        &self,
        op: &'static str,
        dims: &dyn Dims,
        keepdim: bool,
        is_max: bool,
    ) -> Result<Tensor<T>> {
        let shape = self.shape();
        if self.numel() == 0 {
            return Err(Error::InvalidArgument {
                op,
                shape,
                reason: "cannot reduce an empty tensor".into(),
            });
        }
        let axes = reduce_axes(op, dims, &shape)?;
        let a = self.array();
        let init = if is_max {
            T::neg_infinity()
        } else {
            T::infinity()
        };
        let kept = kernels::fold_axes_keepdim(&a.view(), &axes, init, move |acc, x| {
            // NaN propagates, as in PyTorch.
            if x.is_nan() || acc.is_nan() {
                T::nan()
            } else if (is_max && x > acc) || (!is_max && x < acc) {
                x
            } else {
                acc
            }
        });
        // Ties share the gradient equally (PyTorch's amax/amin rule).
        let hit = kernels::zip2(op, &a.view(), &kept.view(), |x, m| {
            if x == m {
                T::one()
            } else {
                T::zero()
            }
        })?;
        let count = kernels::sum_to_shape(&hit.view(), kept.shape());
        let share =
            Tensor::from_array(kernels::zip2(op, &hit.view(), &count.view(), |h, n| h / n)?);
        let out = if keepdim {
            kept.clone()
        } else {
            let target: Vec<usize> = (0..shape.len())
                .filter(|i| !axes.contains(i))
                .map(|i| shape[i])
                .collect();
            kept.clone()
                .into_shape_with_order(IxDyn(&target))
                .expect("same size")
        };
        let kshape = kept.shape().to_vec();
        Ok(Tensor::from_op(out, op, &[self], move |c| {
            let g = if keepdim {
                c.grad.clone()
            } else {
                c.grad.try_reshape(&kshape)?
            };
            Ok(vec![Some(g.try_expand(&shape)?.try_mul(&share)?)])
        }))
    }

    /// Maximum over `dims` (ties share the gradient).
    pub fn try_max_dim(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor<T>> {
        self.extremum("max", &dims, keepdim, true)
    }

    /// Maximum over `dims`.
    #[track_caller]
    pub fn max_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor<T> {
        ok(self.try_max_dim(dims, keepdim))
    }

    /// Maximum of all elements.
    #[track_caller]
    pub fn max(&self) -> Tensor<T> {
        ok(self.extremum("max", &Vec::<isize>::new(), false, true))
    }

    /// Minimum over `dims` (ties share the gradient).
    pub fn try_min_dim(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor<T>> {
        self.extremum("min", &dims, keepdim, false)
    }

    /// Minimum over `dims`.
    #[track_caller]
    pub fn min_dim(&self, dims: impl Dims, keepdim: bool) -> Tensor<T> {
        ok(self.try_min_dim(dims, keepdim))
    }

    /// Minimum of all elements.
    #[track_caller]
    pub fn min(&self) -> Tensor<T> {
        ok(self.extremum("min", &Vec::<isize>::new(), false, false))
    }

    /// Variance over `dims`, dividing by `n - correction`
    /// (`correction = 1`: unbiased, PyTorch's default; `0`: biased).
    pub fn try_var_dim(
        &self,
        dims: impl Dims,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor<T>> {
        let shape = self.shape();
        let axes = reduce_axes("var", &dims, &shape)?;
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
        let mu = self.try_mean_dim(ax.clone(), true)?;
        let d = self.try_sub(&mu)?;
        let denom = n.saturating_sub(correction);
        Ok(d.try_mul(&d)?
            .try_sum_dim(ax, keepdim)?
            .div_scalar(denom as f64))
    }

    /// Variance over `dims`.
    #[track_caller]
    pub fn var_dim(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Tensor<T> {
        ok(self.try_var_dim(dims, correction, keepdim))
    }

    /// Unbiased variance of all elements.
    #[track_caller]
    pub fn var(&self) -> Tensor<T> {
        ok(self.try_var_dim(Vec::<isize>::new(), 1, false))
    }

    /// Standard deviation over `dims` (see [`var_dim`](Self::var_dim)).
    #[track_caller]
    pub fn std_dim(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Tensor<T> {
        self.var_dim(dims, correction, keepdim).sqrt()
    }

    /// `log(sum(exp(self)))` over `dims`, computed stably.
    pub fn try_logsumexp(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor<T>> {
        let shape = self.shape();
        let axes: Vec<isize> = reduce_axes("logsumexp", &dims, &shape)?
            .iter()
            .map(|&a| a as isize)
            .collect();
        // The shift is a constant: it cancels out of the gradient.
        let m = self.detach().try_max_dim(axes.clone(), true)?;
        let m = Tensor::from_array(
            m.array()
                .mapv(|v| if v.is_finite() { v } else { T::zero() }),
        );
        let s = self
            .try_sub(&m)?
            .exp()
            .try_sum_dim(axes.clone(), true)?
            .log()
            .try_add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let mut t = s;
            for &a in axes.iter().rev() {
                t = t.try_squeeze_dim(a)?;
            }
            Ok(t)
        }
    }

    /// `log(sum(exp(self)))` over `dims`.
    #[track_caller]
    pub fn logsumexp(&self, dims: impl Dims, keepdim: bool) -> Tensor<T> {
        ok(self.try_logsumexp(dims, keepdim))
    }

    fn arg_extremum(
        &self,
        op: &'static str,
        dim: isize,
        keepdim: bool,
        is_max: bool,
    ) -> Result<ArrayD<usize>> {
        let shape = self.shape();
        let d = norm_dim(op, dim, &shape)?;
        if shape[d] == 0 {
            return Err(Error::InvalidArgument {
                op,
                shape,
                reason: format!("dim {dim} is empty"),
            });
        }
        let a = self.array();
        let mut out = a.map_axis(Axis(d), |lane| {
            let mut best = 0;
            for (i, &x) in lane.iter().enumerate() {
                let b = lane[best];
                // The first extremum wins; NaN counts as the extremum.
                if !b.is_nan() && (x.is_nan() || (is_max && x > b) || (!is_max && x < b)) {
                    best = i;
                }
            }
            best
        });
        if keepdim {
            out = out.insert_axis(Axis(d));
        }
        Ok(out)
    }

    /// Index of the maximum along `dim` (the first one on ties); not differentiable.
    pub fn try_argmax(&self, dim: isize, keepdim: bool) -> Result<ArrayD<usize>> {
        self.arg_extremum("argmax", dim, keepdim, true)
    }

    /// Index of the maximum along `dim`: `logits.argmax(1, false)` gives class predictions.
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> ArrayD<usize> {
        ok(self.try_argmax(dim, keepdim))
    }

    /// Index of the minimum along `dim` (the first one on ties).
    #[track_caller]
    pub fn argmin(&self, dim: isize, keepdim: bool) -> ArrayD<usize> {
        ok(self.arg_extremum("argmin", dim, keepdim, false))
    }
}
