//! Pooling: `max_pool2d` (kernel, stride, padding, dilation, ceil_mode; the
//! argmax is kept for backward, and returned by the `_with_indices` forms),
//! `avg_pool2d` (count_include_pad), `adaptive_avg_pool2d`,
//! `adaptive_max_pool2d`, `global_avg_pool2d`.
//! Each is linear in the gradient, so its backward is a scatter whose own
//! backward is the matching gather (or the pooling itself).

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels::pool::{
    avg_pool, avg_pool_adjoint, gather_max, max_pool, scatter_max, Windows,
};
use crate::ops::conv::{with_slice, Pair};
use crate::ops::unpool::PoolIndices;
use crate::tensor::Tensor;

/// Options of [`Tensor::max_pool2d`] and [`Tensor::avg_pool2d`], PyTorch's
/// defaults: stride = kernel, padding 0, dilation 1, floor mode,
/// `count_include_pad` true.
///
/// ```
/// use autograd::{ops::pool::PoolOptions, Tensor};
/// let x = Tensor::<f32>::randn([1, 1, 4, 4]);
/// let y = x.max_pool2d(PoolOptions::new(2));
/// assert_eq!(y.shape(), vec![1, 1, 2, 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Window size, `[h, w]`.
    pub kernel: [usize; 2],
    /// Step between windows, `[h, w]` (default: the kernel size).
    pub stride: [usize; 2],
    /// Implicit padding on both sides, `[h, w]` (-inf for max, zeros for average; default `[0, 0]`).
    pub padding: [usize; 2],
    /// Spacing between taps, `[h, w]`, max pooling only (default `[1, 1]`).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down (default false).
    pub ceil_mode: bool,
    /// Whether averages count the padded elements (default true).
    pub count_include_pad: bool,
}

impl PoolOptions {
    /// A `kernel` window with stride equal to the kernel.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        let k = kernel.into().0;
        PoolOptions {
            kernel: k,
            stride: k,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// Step between windows.
    pub fn stride(mut self, s: impl Into<Pair>) -> Self {
        self.stride = s.into().0;
        self
    }
    /// Implicit padding (-inf for max, zeros for average) on both sides.
    pub fn padding(mut self, p: impl Into<Pair>) -> Self {
        self.padding = p.into().0;
        self
    }
    /// Spacing between taps (max pooling only).
    pub fn dilation(mut self, d: impl Into<Pair>) -> Self {
        self.dilation = d.into().0;
        self
    }
    /// Round the output size up instead of down.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Whether averages count the padding.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}

/// The geometry of a pooling: planes and the windows along each axis.
#[derive(Clone, Debug)]
struct PoolPlan {
    shape: Vec<usize>,
    planes: usize,
    wh: Windows,
    ww: Windows,
}

impl PoolPlan {
    fn out_shape(&self) -> Vec<usize> {
        let mut s = self.shape[..self.shape.len() - 2].to_vec();
        s.extend([self.wh.len(), self.ww.len()]);
        s
    }
    fn hw(&self) -> (usize, usize) {
        let n = self.shape.len();
        (self.shape[n - 2], self.shape[n - 1])
    }
}

fn bad(op: &'static str, shape: &[usize], reason: String) -> Error {
    Error::InvalidArgument {
        op,
        shape: shape.to_vec(),
        reason,
    }
}

/// PyTorch's pooling output size, with the ceil-mode rule that the last
/// window must start inside the input or its left padding.
fn pooled_size(size: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span = d * (k - 1) + 1;
    let avail = (size + 2 * p).checked_sub(span)?;
    let mut out = if ceil { avail.div_ceil(s) } else { avail / s } + 1;
    if ceil && (out - 1) * s >= size + p {
        out -= 1;
    }
    Some(out)
}

fn sliding_plan(
    op: &'static str,
    shape: &[usize],
    o: &PoolOptions,
    count_pad: bool,
) -> Result<PoolPlan> {
    if shape.len() != 3 && shape.len() != 4 {
        return Err(bad(
            op,
            shape,
            "input must be [N, C, H, W] or [C, H, W]".into(),
        ));
    }
    if o.kernel.contains(&0) || o.stride.contains(&0) || o.dilation.contains(&0) {
        return Err(bad(
            op,
            shape,
            format!(
                "kernel {:?}, stride {:?} and dilation {:?} must be positive",
                o.kernel, o.stride, o.dilation
            ),
        ));
    }
    for a in 0..2 {
        if o.padding[a] > o.kernel[a] / 2 {
            return Err(bad(
                op,
                shape,
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    o.padding, o.kernel
                ),
            ));
        }
    }
    let n = shape.len();
    let mut wins = Vec::new();
    for a in 0..2 {
        let size = shape[n - 2 + a];
        let out = pooled_size(
            size,
            o.kernel[a],
            o.stride[a],
            o.padding[a],
            o.dilation[a],
            o.ceil_mode,
        )
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            bad(
                op,
                shape,
                format!(
                    "kernel {:?} (dilation {:?}) is larger than the padded input",
                    o.kernel, o.dilation
                ),
            )
        })?;
        wins.push(Windows::sliding(
            size,
            o.kernel[a],
            o.stride[a],
            o.padding[a],
            o.dilation[a],
            out,
            count_pad,
        ));
    }
    let ww = wins.pop().expect("two axes");
    let wh = wins.pop().expect("two axes");
    Ok(PoolPlan {
        shape: shape.to_vec(),
        planes: shape[..n - 2].iter().product(),
        wh,
        ww,
    })
}

fn adaptive_plan(op: &'static str, shape: &[usize], out: [usize; 2]) -> Result<PoolPlan> {
    if shape.len() != 3 && shape.len() != 4 {
        return Err(bad(
            op,
            shape,
            "input must be [N, C, H, W] or [C, H, W]".into(),
        ));
    }
    let n = shape.len();
    if out.contains(&0) || shape[n - 2] == 0 || shape[n - 1] == 0 {
        return Err(bad(
            op,
            shape,
            format!("output size {out:?} and input size must be positive"),
        ));
    }
    Ok(PoolPlan {
        shape: shape.to_vec(),
        planes: shape[..n - 2].iter().product(),
        wh: Windows::adaptive(shape[n - 2], out[0]),
        ww: Windows::adaptive(shape[n - 1], out[1]),
    })
}

impl<T: Float> Tensor<T> {
    /// Max pooling over `[N, C, H, W]` (or `[C, H, W]`).
    pub fn try_max_pool2d(&self, opts: PoolOptions) -> Result<Tensor<T>> {
        let plan = sliding_plan("max_pool2d", &self.shape(), &opts, false)?;
        Ok(max_pool_op(self, plan, "max_pool2d"))
    }

    /// Max pooling; see [`try_max_pool2d`](Self::try_max_pool2d).
    #[track_caller]
    pub fn max_pool2d(&self, opts: PoolOptions) -> Tensor<T> {
        ok(self.try_max_pool2d(opts))
    }

    /// Max pooling that also returns where each maximum came from
    /// (PyTorch's `return_indices=True`): for every output element, the
    /// index of its window's first maximum in row-major order (NaN wins) in
    /// the flattened `H * W` plane of its `(n, c)`. The indices feed
    /// [`max_unpool2d`](Self::max_unpool2d).
    ///
    /// ```
    /// use autograd::{PoolOptions, Tensor};
    /// let x = Tensor::<f32>::from_vec((0..16).map(|v| v as f32).collect(), [1, 1, 4, 4]);
    /// let (y, idx) = x.max_pool2d_with_indices(PoolOptions::new(2));
    /// assert_eq!(y.to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// assert_eq!(idx.to_vec(), vec![5, 7, 13, 15]);
    /// ```
    pub fn try_max_pool2d_with_indices(
        &self,
        opts: PoolOptions,
    ) -> Result<(Tensor<T>, PoolIndices)> {
        let plan = sliding_plan("max_pool2d", &self.shape(), &opts, false)?;
        Ok(max_pool_indices_op(self, plan, "max_pool2d"))
    }

    /// Max pooling with the argmax indices; see
    /// [`try_max_pool2d_with_indices`](Self::try_max_pool2d_with_indices).
    #[track_caller]
    pub fn max_pool2d_with_indices(&self, opts: PoolOptions) -> (Tensor<T>, PoolIndices) {
        ok(self.try_max_pool2d_with_indices(opts))
    }

    /// Average pooling over `[N, C, H, W]` (or `[C, H, W]`); no dilation.
    pub fn try_avg_pool2d(&self, opts: PoolOptions) -> Result<Tensor<T>> {
        if opts.dilation != [1, 1] {
            return Err(bad(
                "avg_pool2d",
                &self.shape(),
                "average pooling has no dilation".into(),
            ));
        }
        let plan = sliding_plan("avg_pool2d", &self.shape(), &opts, opts.count_include_pad)?;
        Ok(avg_pool_op(self, Arc::new(plan), "avg_pool2d"))
    }

    /// Average pooling; see [`try_avg_pool2d`](Self::try_avg_pool2d).
    #[track_caller]
    pub fn avg_pool2d(&self, opts: PoolOptions) -> Tensor<T> {
        ok(self.try_avg_pool2d(opts))
    }

    /// Average pooling to a fixed output size (PyTorch's adaptive windows).
    pub fn try_adaptive_avg_pool2d(&self, out: impl Into<Pair>) -> Result<Tensor<T>> {
        let plan = adaptive_plan("adaptive_avg_pool2d", &self.shape(), out.into().0)?;
        Ok(avg_pool_op(self, Arc::new(plan), "adaptive_avg_pool2d"))
    }

    /// Average pooling to a fixed output size.
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, out: impl Into<Pair>) -> Tensor<T> {
        ok(self.try_adaptive_avg_pool2d(out))
    }

    /// Max pooling to a fixed output size.
    pub fn try_adaptive_max_pool2d(&self, out: impl Into<Pair>) -> Result<Tensor<T>> {
        let plan = adaptive_plan("adaptive_max_pool2d", &self.shape(), out.into().0)?;
        Ok(max_pool_op(self, plan, "adaptive_max_pool2d"))
    }

    /// Max pooling to a fixed output size.
    #[track_caller]
    pub fn adaptive_max_pool2d(&self, out: impl Into<Pair>) -> Tensor<T> {
        ok(self.try_adaptive_max_pool2d(out))
    }

    /// Max pooling to a fixed output size, with the argmax indices as
    /// [`try_max_pool2d_with_indices`](Self::try_max_pool2d_with_indices).
    pub fn try_adaptive_max_pool2d_with_indices(
        &self,
        out: impl Into<Pair>,
    ) -> Result<(Tensor<T>, PoolIndices)> {
        let plan = adaptive_plan("adaptive_max_pool2d", &self.shape(), out.into().0)?;
        Ok(max_pool_indices_op(self, plan, "adaptive_max_pool2d"))
    }

    /// Max pooling to a fixed output size, with the argmax indices.
    #[track_caller]
    pub fn adaptive_max_pool2d_with_indices(
        &self,
        out: impl Into<Pair>,
    ) -> (Tensor<T>, PoolIndices) {
        ok(self.try_adaptive_max_pool2d_with_indices(out))
    }

    /// The mean of each channel's plane, keeping `[N, C, 1, 1]`.
    #[track_caller]
    pub fn global_avg_pool2d(&self) -> Tensor<T> {
        self.adaptive_avg_pool2d(1)
    }
}

fn max_pool_op<T: Float>(x: &Tensor<T>, plan: PoolPlan, name: &'static str) -> Tensor<T> {
    if crate::graph::is_grad_enabled() && x.requires_grad() {
        return max_pool_indices_op(x, plan, name).0;
    }
    // Nothing recorded: no backward needs the indices.
    let (h, w) = plan.hw();
    let y = with_slice(x, |xs| {
        max_pool::<T, false>(xs, plan.planes, h, w, &plan.wh, &plan.ww).0
    });
    let y = ArrayD::from_shape_vec(IxDyn(&plan.out_shape()), y).expect("pool size");
    // Recorded only if another thread marked `x` as requiring gradients
    // since the check above: an error then, not a wrong gradient.
    let shape = plan.shape.clone();
    Tensor::from_op(y, name, &[x], move |_| {
        Err(Error::InvalidArgument {
            op: name,
            shape: shape.clone(),
            reason: "its input began to require gradients while it ran unrecorded; run it again"
                .into(),
        })
    })
}

fn max_pool_indices_op<T: Float>(
    x: &Tensor<T>,
    plan: PoolPlan,
    name: &'static str,
) -> (Tensor<T>, PoolIndices) {
    let (h, w) = plan.hw();
    let (y, idx) = with_slice(x, |xs| {
        max_pool::<T, true>(xs, plan.planes, h, w, &plan.wh, &plan.ww)
    });
    let out_shape = plan.out_shape();
    let y = ArrayD::from_shape_vec(IxDyn(&out_shape), y).expect("pool size");
    let idx = Arc::new(idx);
    let indices = PoolIndices::from_kernel(idx.clone(), out_shape, [h, w]);
    let (shape, planes) = (plan.shape.clone(), plan.planes);
    let y = Tensor::from_op(y, name, &[x], move |c| {
        Ok(vec![Some(max_scatter_op(
            c.grad,
            idx.clone(),
            shape.clone(),
            planes,
        ))])
    });
    (y, indices)
}

/// Gradient of max pooling: each output gradient goes to its argmax.
pub(crate) fn max_scatter_op<T: Float>(
    g: &Tensor<T>,
    idx: Arc<Vec<u32>>,
    shape: Vec<usize>,
    planes: usize,
) -> Tensor<T> {
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let dx = with_slice(g, |gs| scatter_max(gs, &idx, planes, h * w));
    let dx = ArrayD::from_shape_vec(IxDyn(&shape), dx).expect("input size");
    let out_shape = g.shape();
    // Linear with a fixed routing: its gradient is the gather, and the
    // gather's is this scatter again.
    Tensor::from_op(dx, "max_pool2d_backward", &[g], move |c| {
        Ok(vec![Some(max_gather_op(
            c.grad,
            idx.clone(),
            out_shape.clone(),
            planes,
            h * w,
        ))])
    })
}

pub(crate) fn max_gather_op<T: Float>(
    g: &Tensor<T>,
    idx: Arc<Vec<u32>>,
    out_shape: Vec<usize>,
    planes: usize,
    plane_in: usize,
) -> Tensor<T> {
    let y = with_slice(g, |gs| gather_max(gs, &idx, planes, plane_in));
    let y = ArrayD::from_shape_vec(IxDyn(&out_shape), y).expect("output size");
    let in_shape = g.shape();
    Tensor::from_op(y, "max_pool2d_gather", &[g], move |c| {
        Ok(vec![Some(max_scatter_op(
            c.grad,
            idx.clone(),
            in_shape.clone(),
            planes,
        ))])
    })
}

fn avg_pool_op<T: Float>(x: &Tensor<T>, plan: Arc<PoolPlan>, name: &'static str) -> Tensor<T> {
    let (h, w) = plan.hw();
    let y = with_slice(x, |xs| avg_pool(xs, plan.planes, h, w, &plan.wh, &plan.ww));
    let y = ArrayD::from_shape_vec(IxDyn(&plan.out_shape()), y).expect("pool size");
    Tensor::from_op(y, name, &[x], move |c| {
        Ok(vec![Some(avg_adjoint_op(c.grad, plan.clone()))])
    })
}

/// Gradient of average pooling; its own gradient is the pooling again.
fn avg_adjoint_op<T: Float>(g: &Tensor<T>, plan: Arc<PoolPlan>) -> Tensor<T> {
    let (h, w) = plan.hw();
    let dx = with_slice(g, |gs| {
        avg_pool_adjoint(gs, plan.planes, h, w, &plan.wh, &plan.ww)
    });
    let dx = ArrayD::from_shape_vec(IxDyn(&plan.shape), dx).expect("input size");
    Tensor::from_op(dx, "avg_pool2d_backward", &[g], move |c| {
        Ok(vec![Some(avg_pool_op(c.grad, plan.clone(), "avg_pool2d"))])
    })
}
