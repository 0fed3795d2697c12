//! Convolutions: `conv2d` and `conv_transpose2d` (PyTorch's functional API),
//! built on three bilinear primitives that are each other's gradients:
//!
//! | op | d/d first input | d/d second input |
//! |---|---|---|
//! | `conv(x, w)` | `conv_input_grad(g, w)` | `conv_weight_grad(x, g)` |
//! | `conv_input_grad(gy, w)` | `conv(g, w)` | `conv_weight_grad(g, gy)` |
//! | `conv_weight_grad(x, gy)` | `conv_input_grad(gy, g)` | `conv(x, g)` |
//!
//! so gradients of every order come from the same three kernels.

use ndarray::{ArrayD, IxDyn};

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels::conv::{
    conv2d_forward_kept, conv2d_input_grad, conv2d_weight_grad, prune, Activation, ConvGeom, Kept,
};
use crate::ops::{need, weight_cache};
use crate::saved::Saved;
use crate::tensor::Tensor;

/// A pair of sizes `[h, w]`; a single number means both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair(pub [usize; 2]);

impl From<usize> for Pair {
    fn from(v: usize) -> Self {
        Pair([v, v])
    }
}
impl From<[usize; 2]> for Pair {
    fn from(v: [usize; 2]) -> Self {
        Pair(v)
    }
}
impl From<(usize, usize)> for Pair {
    fn from(v: (usize, usize)) -> Self {
        Pair([v.0, v.1])
    }
}

/// Options of [`Tensor::conv2d`] and [`Tensor::conv_transpose2d`]; the
/// defaults are PyTorch's (stride 1, padding 0, dilation 1, groups 1).
///
/// ```
/// use autograd::ops::conv::ConvOptions;
/// let o = ConvOptions::new().stride(2).padding([1, 2]);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ([2, 2], [1, 2], [1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions {
    /// Step between windows, `[h, w]` (default `[1, 1]`).
    pub stride: [usize; 2],
    /// Implicit zeros on both sides of each axis, `[h, w]` (default `[0, 0]`).
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `[h, w]` (default `[1, 1]`).
    pub dilation: [usize; 2],
    /// Number of channel groups (default 1; equal to the channels: depthwise).
    pub groups: usize,
    /// Extra rows/columns on one side of a transposed convolution's output.
    pub output_padding: [usize; 2],
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            output_padding: [0, 0],
        }
    }
}

impl ConvOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Step between windows.
    pub fn stride(mut self, s: impl Into<Pair>) -> Self {
        self.stride = s.into().0;
        self
    }
    /// Zeros added on both sides.
    pub fn padding(mut self, p: impl Into<Pair>) -> Self {
        self.padding = p.into().0;
        self
    }
    /// Spacing between kernel taps.
    pub fn dilation(mut self, d: impl Into<Pair>) -> Self {
        self.dilation = d.into().0;
        self
    }
    /// Channel groups (`groups == channels`: depthwise).
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Output padding of a transposed convolution.
    pub fn output_padding(mut self, p: impl Into<Pair>) -> Self {
        self.output_padding = p.into().0;
        self
    }
}

/// Runs `f` on the tensor's values as a row-major slice (no copy when contiguous).
pub(crate) fn with_slice<T: Float, R>(t: &Tensor<T>, f: impl FnOnce(&[T]) -> R) -> R {
    let a = t.array();
    let v = a.view();
    f(&crate::kernels::standard_slice(&v))
}

fn conv_error(op: &'static str, x: &[usize], w: &[usize], reason: String) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: x.to_vec(),
        rhs: w.to_vec(),
        reason,
    }
}

/// Output size along one axis, or an error if the window does not fit.
#[allow(clippy::too_many_arguments)]
fn out_size(
    op: &'static str,
    x: &[usize],
    w: &[usize],
    size: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
) -> Result<usize> {
    let span = d * (k - 1) + 1;
    if size + 2 * p < span {
        return Err(conv_error(
            op,
            x,
            w,
            format!(
                "(input of size {size} padded by {p} is smaller than the kernel's span {span})"
            ),
        ));
    }
    Ok((size + 2 * p - span) / s + 1)
}

/// Checks shapes and options of `conv2d(x [N,C,H,W], w [O,C/G,KH,KW])`.
fn forward_geom(op: &'static str, xs: &[usize], ws: &[usize], o: &ConvOptions) -> Result<ConvGeom> {
    if xs.len() != 4 || ws.len() != 4 {
        return Err(conv_error(
            op,
            xs,
            ws,
            "(input must be [N, C, H, W] and weight [O, C/groups, KH, KW])".into(),
        ));
    }
    if o.stride.contains(&0) || o.dilation.contains(&0) || o.groups == 0 {
        return Err(conv_error(
            op,
            xs,
            ws,
            format!(
                "(stride {:?}, dilation {:?} and groups {} must be positive)",
                o.stride, o.dilation, o.groups
            ),
        ));
    }
    let (c, g) = (xs[1], o.groups);
    if !c.is_multiple_of(g) || !ws[0].is_multiple_of(g) {
        return Err(conv_error(
            op,
            xs,
            ws,
            format!(
                "(groups {g} must divide the input channels {c} and the output channels {})",
                ws[0]
            ),
        ));
    }
    if ws[1] * g != c {
        return Err(conv_error(op, xs, ws, format!("(the weight expects {} input channels ({} per group x {g} groups), the input has {c})", ws[1] * g, ws[1])));
    }
    if ws[2] == 0 || ws[3] == 0 {
        return Err(conv_error(op, xs, ws, "(empty kernel)".into()));
    }
    let oh = out_size(
        op,
        xs,
        ws,
        xs[2],
        ws[2],
        o.stride[0],
        o.padding[0],
        o.dilation[0],
    )?;
    let ow = out_size(
        op,
        xs,
        ws,
        xs[3],
        ws[3],
        o.stride[1],
        o.padding[1],
        o.dilation[1],
    )?;
    Ok(ConvGeom {
        n: xs[0],
        c,
        h: xs[2],
        w: xs[3],
        o: ws[0],
        kh: ws[2],
        kw: ws[3],
        oh,
        ow,
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
        groups: g,
    })
}

impl<T: Float> Tensor<T> {
    /// 2-D convolution (cross-correlation, as PyTorch) of `self` `[N, C, H, W]`
    /// with `weight` `[O, C/groups, KH, KW]`, plus an optional `bias` `[O]`.
    ///
    /// ```
    /// use autograd::{ops::conv::ConvOptions, Tensor};
    /// let x = Tensor::<f32>::randn([2, 3, 8, 8]);
    /// let w = Tensor::<f32>::randn([4, 3, 3, 3]);
    /// let y = x.conv2d(&w, None, ConvOptions::new().padding(1));
    /// assert_eq!(y.shape(), vec![2, 4, 8, 8]);
    /// ```
    pub fn try_conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Result<Tensor<T>> {
        let g = conv2d_geom("conv2d", self, weight, bias, &opts)?;
        Ok(conv_op(self, weight, bias, g, Activation::Identity))
    }

    /// `relu(conv2d(x, weight, bias))` as one op: the ReLU is applied as the
    /// convolution stores its outputs (no pass of its own, no second tensor
    /// kept for the backward pass). The same values and gradients as
    /// `x.conv2d(..).relu()`.
    ///
    /// ```
    /// use autograd::{ops::conv::ConvOptions, Tensor};
    /// let x = Tensor::<f32>::randn([2, 3, 8, 8]);
    /// let w = Tensor::<f32>::randn([4, 3, 3, 3]);
    /// let o = ConvOptions::new().padding(1);
    /// let fused = x.conv2d_relu(&w, None, o);
    /// assert_eq!(fused.to_vec(), x.conv2d(&w, None, o).relu().to_vec());
    /// ```
    pub fn try_conv2d_relu(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Result<Tensor<T>> {
        let g = conv2d_geom("conv2d_relu", self, weight, bias, &opts)?;
        Ok(conv_op(self, weight, bias, g, Activation::Relu))
    }

    /// `relu(conv2d(..))` as one op; see [`try_conv2d_relu`](Self::try_conv2d_relu).
    #[track_caller]
    pub fn conv2d_relu(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Tensor<T> {
        ok(self.try_conv2d_relu(weight, bias, opts))
    }

    /// 2-D convolution; see [`try_conv2d`](Self::try_conv2d).
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Tensor<T> {
        ok(self.try_conv2d(weight, bias, opts))
    }

    /// Transposed 2-D convolution (the gradient of `conv2d` with respect to
    /// its input) of `self` `[N, Cin, H, W]` with `weight`
    /// `[Cin, Cout/groups, KH, KW]` (PyTorch's layout), plus an optional `bias`
    /// `[Cout]`. Output size `(H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1`.
    pub fn try_conv_transpose2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Result<Tensor<T>> {
        const OP: &str = "conv_transpose2d";
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 4 || ws.len() != 4 {
            return Err(conv_error(
                OP,
                &xs,
                &ws,
                "(input must be [N, Cin, H, W] and weight [Cin, Cout/groups, KH, KW])".into(),
            ));
        }
        let gr = opts.groups.max(1);
        if xs[1] != ws[0] || ws[0] % gr != 0 {
            return Err(conv_error(
                OP,
                &xs,
                &ws,
                format!(
                    "(the weight expects {} input channels in {gr} groups, the input has {})",
                    ws[0], xs[1]
                ),
            ));
        }
        for a in 0..2 {
            if opts.output_padding[a] >= opts.stride[a].max(opts.dilation[a]) {
                return Err(conv_error(
                    OP,
                    &xs,
                    &ws,
                    format!(
                        "(output_padding {:?} must be smaller than stride or dilation)",
                        opts.output_padding
                    ),
                ));
            }
        }
        let size = |a: usize| -> Result<usize> {
            let full = (xs[2 + a] as isize - 1) * opts.stride[a] as isize
                + (opts.dilation[a] * (ws[2 + a] - 1)) as isize
                + opts.output_padding[a] as isize
                + 1;
            let s = full - 2 * opts.padding[a] as isize;
            if s <= 0 {
                return Err(conv_error(
                    OP,
                    &xs,
                    &ws,
                    format!("(the output would have size {s} along dim {})", 2 + a),
                ));
            }
            Ok(s as usize)
        };
        let (h, w) = (size(0)?, size(1)?);
        let cout = ws[1] * gr;
        // The convolution whose input gradient this is: [N, Cout, h, w] -> [N, Cin, H, W].
        let mut g = forward_geom(
            OP,
            &[xs[0], cout, h, w],
            &[ws[0], ws[1], ws[2], ws[3]],
            &ConvOptions {
                output_padding: [0, 0],
                ..opts
            },
        )?;
        // An output_padding of at least the stride (allowed below the
        // dilation) gives that convolution more output positions than the
        // input has: only the first H x W are the input's.
        debug_assert!(g.oh >= xs[2] && g.ow >= xs[3]);
        (g.oh, g.ow) = (xs[2], xs[3]);
        let y = conv_input_grad_op(self, weight, g);
        match bias {
            None => Ok(y),
            Some(b) => {
                if b.shape() != [cout] {
                    return Err(conv_error(
                        OP,
                        &ws,
                        &b.shape(),
                        format!("(bias must be [{cout}])"),
                    ));
                }
                y.try_add(&b.try_reshape([1, cout, 1, 1])?)
            }
        }
    }

    /// Transposed 2-D convolution; see [`try_conv_transpose2d`](Self::try_conv_transpose2d).
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        opts: ConvOptions,
    ) -> Tensor<T> {
        ok(self.try_conv_transpose2d(weight, bias, opts))
    }
}

/// The geometry of `conv2d(x, w, bias)`, or an error naming `op` and the shapes.
fn conv2d_geom<T: Float>(
    op: &'static str,
    x: &Tensor<T>,
    w: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    opts: &ConvOptions,
) -> Result<ConvGeom> {
    let g = forward_geom(op, &x.shape(), &w.shape(), opts)?;
    if let Some(b) = bias {
        if b.shape() != [g.o] {
            return Err(conv_error(
                op,
                &w.shape(),
                &b.shape(),
                format!("(bias must be [{}])", g.o),
            ));
        }
    }
    Ok(g)
}

/// `act(conv(x, w) + bias)` with checked geometry.
fn conv_op<T: Float>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    g: ConvGeom,
    act: Activation,
) -> Tensor<T> {
    let w_version = weight_cache::version_before_read(w);
    let y = with_slice(x, |xs| {
        with_slice(w, |ws| {
            // Gradients off: a kernel's live taps on a small plane are
            // taken from the cache (computed once per weight version).
            let pruned = (!crate::graph::is_grad_enabled())
                .then(|| prune(&g))
                .flatten();
            let kept;
            let (ws, g, key) = match &pruned {
                Some(p) => {
                    kept = weight_cache::derived(w, w_version, p.key(), || p.weights(&g, ws));
                    (kept.as_slice(), p.g, p.key())
                }
                None => (ws, g, [g.kh, g.kw, 0, 0, 0]),
            };
            // ... and so is what the kernel makes of them (the direct
            // kernels' panels, F(4x4, 3x3)'s transform), when it fits.
            let layout = (!crate::graph::is_grad_enabled())
                .then(|| Kept::for_forward::<T>(&g))
                .flatten();
            let keep = |layout: Kept| {
                // The group count and the layout are part of the key.
                let tag = 2 * g.groups + usize::from(layout == Kept::Winograd4);
                let key = [key[0], key[1], key[2], key[3], tag];
                let bytes = layout.len(&g) * std::mem::size_of::<T>();
                weight_cache::kept(w, w_version, key, bytes, || layout.rearrange(ws, &g))
                    .map(|v| (layout, v))
            };
            // Transformed weights that do not fit: the direct kernels' panels.
            let kept = layout.and_then(|layout| {
                keep(layout).or_else(|| match layout {
                    Kept::Winograd4 => Kept::fallback::<T>(&g).and_then(&keep),
                    Kept::Direct => None,
                })
            });
            let kept = kept.as_ref().map(|(layout, v)| (*layout, v.as_slice()));
            match bias {
                Some(b) => with_slice(b, |bs| conv2d_forward_kept(xs, ws, kept, Some(bs), &g, act)),
                None => conv2d_forward_kept(xs, ws, kept, None, &g, act),
            }
        })
    });
    let y = ArrayD::from_shape_vec(IxDyn(&[g.n, g.o, g.oh, g.ow]), y).expect("conv output size");
    let op = match act {
        Activation::Identity => "conv2d",
        Activation::Relu => "conv2d_relu",
    };
    let (xc, wc) = (Saved::input(op, 0, x), Saved::input(op, 1, w));
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    Tensor::from_op(y, op, &inputs, move |c| {
        // Through the ReLU first: its output is positive exactly where its input is.
        let masked;
        let gy = match act {
            Activation::Identity => c.grad,
            Activation::Relu => {
                masked = c.grad.relu_backward(c.saved_output()?);
                &masked
            }
        };
        let mut grads = vec![
            need(c.needs[0], || Ok(conv_input_grad_op(gy, wc.get()?, g)))?,
            need(c.needs[1], || Ok(conv_weight_grad_op(xc.get()?, gy, g)))?,
        ];
        if c.needs.len() == 3 {
            grads.push(need(c.needs[2], || gy.try_sum_dim([0, 2, 3], false))?);
        }
        Ok(grads)
    })
}

/// The input gradient of `conv(x, w)` for output gradient `gy` (= transposed convolution).
fn conv_input_grad_op<T: Float>(gy: &Tensor<T>, w: &Tensor<T>, g: ConvGeom) -> Tensor<T> {
    let dx = with_slice(gy, |gs| with_slice(w, |ws| conv2d_input_grad(gs, ws, &g)));
    let dx = ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).expect("conv input size");
    let gyc = Saved::input("conv_input_grad", 0, gy);
    let wc = Saved::input("conv_input_grad", 1, w);
    Tensor::from_op(dx, "conv_input_grad", &[gy, w], move |c| {
        Ok(vec![
            need(c.needs[0], || {
                Ok(conv_op(c.grad, wc.get()?, None, g, Activation::Identity))
            })?,
            need(c.needs[1], || {
                Ok(conv_weight_grad_op(c.grad, gyc.get()?, g))
            })?,
        ])
    })
}

/// The weight gradient of `conv(x, w)` for output gradient `gy`.
fn conv_weight_grad_op<T: Float>(x: &Tensor<T>, gy: &Tensor<T>, g: ConvGeom) -> Tensor<T> {
    let dw = with_slice(x, |xs| with_slice(gy, |gs| conv2d_weight_grad(xs, gs, &g)));
    let dw =
        ArrayD::from_shape_vec(IxDyn(&[g.o, g.cg(), g.kh, g.kw]), dw).expect("conv weight size");
    let xc = Saved::input("conv_weight_grad", 0, x);
    let gyc = Saved::input("conv_weight_grad", 1, gy);
    Tensor::from_op(dw, "conv_weight_grad", &[x, gy], move |c| {
        Ok(vec![
            need(c.needs[0], || Ok(conv_input_grad_op(gyc.get()?, c.grad, g)))?,
            need(c.needs[1], || {
                Ok(conv_op(xc.get()?, c.grad, None, g, Activation::Identity))
            })?,
        ])
    })
}
