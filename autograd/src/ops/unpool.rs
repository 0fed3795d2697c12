//! Max unpooling: [`PoolIndices`], the argmax positions a max pooling
//! returns, and `max_unpool2d`, which puts each value back at its recorded
//! position in a zero plane (SegNet's decoder upsampling). The forward is a
//! scatter; its gradient is the gather at the same positions, whose own
//! gradient is the scatter again (so second order works).

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use crate::dims::IntoShape;
use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::ops::conv::{with_slice, Pair};
use crate::ops::pool::max_gather_op;
use crate::tensor::Tensor;

/// Where the maxima of a max pooling came from, as PyTorch's
/// `return_indices=True` gives them: one index per output element (so
/// [`shape`](Self::shape) is the pooled output's shape), each the flat
/// position `y * W + x` of the maximum in the `H x W` input plane of its
/// `(n, c)`.
///
/// The engine has no integer tensors, so indices are their own type: they
/// carry no gradient, and they remember the pooled plane's size
/// ([`input_size`](Self::input_size)), which is the natural output size of
/// the [`max_unpool2d`](Tensor::max_unpool2d) that undoes the pooling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolIndices {
    indices: Arc<Vec<u32>>,
    shape: Vec<usize>,
    input_size: [usize; 2],
}

impl PoolIndices {
    /// The indices a pooling kernel computed (already in range).
    pub(crate) fn from_kernel(
        indices: Arc<Vec<u32>>,
        shape: Vec<usize>,
        input_size: [usize; 2],
    ) -> Self {
        PoolIndices {
            indices,
            shape,
            input_size,
        }
    }

    /// Indices of one's own (e.g. PyTorch's), row-major in `shape`
    /// (`[N, C, h, w]` or `[C, h, w]`), each below `H * W` of `input_size = [H, W]`.
    pub fn try_new(
        indices: Vec<usize>,
        shape: impl IntoShape,
        input_size: [usize; 2],
    ) -> Result<Self> {
        let shape = shape.to_sizes("pool_indices")?;
        let bad = |reason: String| Error::InvalidArgument {
            op: "pool_indices",
            shape: shape.clone(),
            reason,
        };
        if shape.len() != 3 && shape.len() != 4 {
            return Err(bad("indices must be [N, C, h, w] or [C, h, w]".into()));
        }
        if indices.len() != shape.iter().product::<usize>() {
            return Err(bad(format!(
                "{} indices for shape {shape:?}",
                indices.len()
            )));
        }
        let plane = input_size[0] * input_size[1];
        if plane > u32::MAX as usize {
            return Err(bad(format!("input plane {input_size:?} is too large")));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= plane) {
            return Err(bad(format!(
                "index {i} is outside the {input_size:?} plane"
            )));
        }
        let indices = Arc::new(indices.into_iter().map(|i| i as u32).collect());
        Ok(PoolIndices::from_kernel(indices, shape, input_size))
    }

    /// Indices of one's own; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(indices: Vec<usize>, shape: impl IntoShape, input_size: [usize; 2]) -> Self {
        ok(Self::try_new(indices, shape, input_size))
    }

    /// The shape of the pooled output these indices belong to.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// `[H, W]` of the plane that was pooled.
    pub fn input_size(&self) -> [usize; 2] {
        self.input_size
    }

    /// The number of indices.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The indices, row-major.
    pub fn as_slice(&self) -> &[u32] {
        &self.indices
    }

    /// The indices as `usize`, row-major.
    pub fn to_vec(&self) -> Vec<usize> {
        self.indices.iter().map(|&i| i as usize).collect()
    }
}

/// Options of [`Tensor::max_unpool2d`], as PyTorch's `max_unpool2d`: the
/// kernel, stride (default: the kernel) and padding of the pooling being
/// undone give the output size `(h - 1) * stride - 2 * padding + kernel`,
/// unless an explicit `output_size` is given (it must lie strictly within
/// one stride of that size; [`PoolIndices::input_size`] is the usual choice
/// when the pooling dropped a row or column).
///
/// ```
/// use autograd::ops::unpool::UnpoolOptions;
/// let o = UnpoolOptions::new(2).output_size([7, 7]);
/// assert_eq!((o.kernel, o.stride, o.padding, o.output_size), ([2, 2], [2, 2], [0, 0], Some([7, 7])));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpoolOptions {
    /// The pooling's window size, `[h, w]`.
    pub kernel: [usize; 2],
    /// The pooling's stride, `[h, w]` (default: the kernel size).
    pub stride: [usize; 2],
    /// The pooling's padding, `[h, w]` (default `[0, 0]`).
    pub padding: [usize; 2],
    /// The output plane `[H, W]` (default: computed from the others).
    pub output_size: Option<[usize; 2]>,
}

impl UnpoolOptions {
    /// Undoes a `kernel` pooling with stride equal to the kernel.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        let k = kernel.into().0;
        UnpoolOptions {
            kernel: k,
            stride: k,
            padding: [0, 0],
            output_size: None,
        }
    }
    /// The pooling's stride.
    pub fn stride(mut self, s: impl Into<Pair>) -> Self {
        self.stride = s.into().0;
        self
    }
    /// The pooling's padding.
    pub fn padding(mut self, p: impl Into<Pair>) -> Self {
        self.padding = p.into().0;
        self
    }
    /// An explicit output plane `[H, W]`.
    pub fn output_size(mut self, size: impl Into<Pair>) -> Self {
        self.output_size = Some(size.into().0);
        self
    }
}

impl<T: Float> Tensor<T> {
    /// Max unpooling of `[N, C, h, w]` (or `[C, h, w]`): a zero
    /// `[N, C, H, W]` with each input value written at its index in its
    /// plane, as PyTorch's `max_unpool2d` (where two values share an index,
    /// the later one in row-major order is kept, and the gradient, PyTorch's
    /// gather, reaches both).
    ///
    /// ```
    /// use autograd::{ops::unpool::UnpoolOptions, PoolOptions, Tensor};
    /// let x = Tensor::<f32>::from_vec(vec![1., 5., 2., 0., 3., 4., 8., 6., 7.], [1, 1, 3, 3]);
    /// let (y, idx) = x.max_pool2d_with_indices(PoolOptions::new(2));
    /// let up = y.max_unpool2d(&idx, UnpoolOptions::new(2).output_size(idx.input_size()));
    /// assert_eq!(up.to_vec(), vec![0., 5., 0., 0., 0., 0., 0., 0., 0.]);
    /// ```
    pub fn try_max_unpool2d(
        &self,
        indices: &PoolIndices,
        opts: UnpoolOptions,
    ) -> Result<Tensor<T>> {
        let shape = self.shape();
        let bad = |reason: String| Error::InvalidArgument {
            op: "max_unpool2d",
            shape: shape.clone(),
            reason,
        };
        if shape.len() != 3 && shape.len() != 4 {
            return Err(bad("input must be [N, C, H, W] or [C, H, W]".into()));
        }
        if indices.shape() != shape.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "max_unpool2d",
                lhs: shape.clone(),
                rhs: indices.shape().to_vec(),
                reason: "(input and indices) differ".into(),
            });
        }
        if opts.kernel.contains(&0) || opts.stride.contains(&0) {
            return Err(bad(format!(
                "kernel {:?} and stride {:?} must be positive",
                opts.kernel, opts.stride
            )));
        }
        let r = shape.len();
        let mut out = [0usize; 2];
        for a in 0..2 {
            let (h, k, s, p) = (
                shape[r - 2 + a],
                opts.kernel[a],
                opts.stride[a],
                opts.padding[a],
            );
            let default = (h.saturating_sub(1) * s + k).checked_sub(2 * p);
            out[a] = match (opts.output_size, default) {
                (None, Some(d)) if d > 0 => d,
                (None, _) => {
                    return Err(bad(format!(
                        "kernel {:?}, stride {:?} and padding {:?} give an empty output",
                        opts.kernel, opts.stride, opts.padding
                    )))
                }
                (Some(o), d) => {
                    let d = d.unwrap_or(0);
                    // PyTorch: default - stride < size < default + stride.
                    if o[a] == 0 || o[a] + s <= d || o[a] >= d + s {
                        return Err(bad(format!(
                            "output_size {o:?} is not within a stride {:?} of the default size",
                            opts.stride
                        )));
                    }
                    o[a]
                }
            };
        }
        let plane_out = out[0] * out[1];
        if let Some(&i) = indices
            .as_slice()
            .iter()
            .find(|&&i| i as usize >= plane_out)
        {
            return Err(bad(format!(
                "index {i} is outside the output plane {out:?}"
            )));
        }
        let mut out_shape = shape[..r - 2].to_vec();
        out_shape.extend(out);
        let planes: usize = shape[..r - 2].iter().product();
        Ok(unpool_op(self, indices, out_shape, planes, plane_out))
    }

    /// Max unpooling; see [`try_max_unpool2d`](Self::try_max_unpool2d).
    #[track_caller]
    pub fn max_unpool2d(&self, indices: &PoolIndices, opts: UnpoolOptions) -> Tensor<T> {
        ok(self.try_max_unpool2d(indices, opts))
    }
}

fn unpool_op<T: Float>(
    x: &Tensor<T>,
    indices: &PoolIndices,
    out_shape: Vec<usize>,
    planes: usize,
    plane_out: usize,
) -> Tensor<T> {
    let idx = indices.indices.clone();
    let y = with_slice(x, |xs| {
        let mut y = vec![T::zero(); planes * plane_out];
        let plane_in = xs.len() / planes.max(1);
        for (p, (xp, ip)) in xs
            .chunks(plane_in.max(1))
            .zip(idx.chunks(plane_in.max(1)))
            .enumerate()
        {
            let yp = &mut y[p * plane_out..(p + 1) * plane_out];
            // In order, so that the later of two equal indices is kept.
            for (&v, &i) in xp.iter().zip(ip) {
                yp[i as usize] = v;
            }
        }
        y
    });
    let y = ArrayD::from_shape_vec(IxDyn(&out_shape), y).expect("unpool size");
    let in_shape = x.shape();
    Tensor::from_op(y, "max_unpool2d", &[x], move |c| {
        Ok(vec![Some(max_gather_op(
            c.grad,
            idx.clone(),
            in_shape.clone(),
            planes,
            plane_out,
        ))])
    })
}
