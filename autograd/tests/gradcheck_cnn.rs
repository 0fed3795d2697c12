//! Property tests of the CNN ops: conv2d, conv_transpose2d, max/avg/adaptive
//! pooling, batch_norm and dropout pass the first- and second-order gradient
//! checks (f64, central differences, PyTorch's default tolerances) at random
//! geometries and values.
//!
//! Second-order checks run on the squared output (`sum(v * f(x)^2)`), so the
//! gradient's own backward is exercised through the upstream gradient as well
//! as through the other inputs (pooling and dropout are linear: without the
//! square their second derivative would be identically zero).
//!
//! Also here: the fused batch_norm backward (used when not recording) agrees
//! with the recorded one (used under `create_graph`); max pooling routes the
//! gradient of tied values to the first maximum of each window in row-major
//! order (as PyTorch); and the error messages of bad arguments name the op
//! and the shapes.
//!
//! Max-pooling inputs are distinct (a shuffled grid with spacing >= 0.008),
//! so that the finite-difference step (1e-6) never changes an argmax.

use autograd::gradcheck::{gradcheck_with, gradgradcheck_with, GradcheckOptions};
use autograd::ops::conv::ConvOptions;
use autograd::ops::pool::PoolOptions;
use autograd::rng::generator;
use autograd::BatchNormArgs;
use autograd::{grad, GradOptions, Tensor};
use proptest::array::uniform2;
use proptest::prelude::*;

type T = Tensor<f64>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Uniform values in `[low, high)` from a seeded generator.
fn values(shape: &[usize], seed: u64, low: f64, high: f64) -> T {
    Tensor::uniform_with(shape, low, high, &mut generator(seed))
}

/// A random permutation of an evenly spaced grid over `[-2, 2]`: distinct
/// values at least `4 / numel` apart.
fn distinct(shape: &[usize], seed: u64) -> T {
    let r = values(shape, seed, 0.0, 1.0).to_vec();
    let mut order: Vec<usize> = (0..r.len()).collect();
    order.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
    let n = r.len() as f64;
    let mut v = vec![0.0; r.len()];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = (rank as f64 + 0.5) / n * 4.0 - 2.0;
    }
    Tensor::from_vec(v, shape)
}

fn describe(inputs: &[T]) -> String {
    inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "  input {i}: shape {:?}, values {:?}",
                t.shape(),
                t.to_vec()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// First-order check of `f` and second-order check of `sum(v * f^2)`.
fn check(f: impl Fn(&[T]) -> T, inputs: &[T]) -> Result<(), TestCaseError> {
    check_orders(&f, |t: &[T]| f(t).square(), inputs)
}

/// First-order check of `first`, second-order check of `second`.
fn check_orders(
    first: impl Fn(&[T]) -> T,
    second: impl Fn(&[T]) -> T,
    inputs: &[T],
) -> Result<(), TestCaseError> {
    let opts = GradcheckOptions::default();
    if let Err(e) = gradcheck_with(&first, inputs, &opts) {
        return Err(TestCaseError::fail(format!("{e}\n{}", describe(inputs))));
    }
    if let Err(e) = gradgradcheck_with(&second, inputs, &opts) {
        return Err(TestCaseError::fail(format!("{e}\n{}", describe(inputs))));
    }
    Ok(())
}

/// The kernel's span `d * (k - 1) + 1`.
fn span(k: usize, d: usize) -> usize {
    d * (k - 1) + 1
}

/// PyTorch's pooling output size (`pooling_output_shape`).
fn pooled_size(size: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let num = size + 2 * p - span(k, d);
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    if ceil && (out - 1) * s >= size + p {
        out -= 1;
    }
    out
}

/// The input positions of each output window along one axis (sliding).
fn sliding_windows(
    size: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ceil: bool,
) -> Vec<Vec<usize>> {
    (0..pooled_size(size, k, s, p, d, ceil))
        .map(|o| {
            (0..k)
                .map(|j| (o * s + j * d) as isize - p as isize)
                .filter(|&i| i >= 0 && i < size as isize)
                .map(|i| i as usize)
                .collect()
        })
        .collect()
}

/// The input positions of each output window along one axis (adaptive).
fn adaptive_windows(size: usize, out: usize) -> Vec<Vec<usize>> {
    (0..out)
        .map(|i| (i * size / out..((i + 1) * size).div_ceil(out)).collect())
        .collect()
}

/// The smallest size >= `start` whose windows are all non-empty (with
/// dilation and padding a window can fall between the taps otherwise).
fn fit_size(start: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let mut size = start.max(span(k, d).saturating_sub(2 * p)).max(1);
    while sliding_windows(size, k, s, p, d, ceil)
        .iter()
        .any(|w| w.is_empty())
    {
        size += 1;
    }
    size
}

/// Reference max pooling: for each output, the first maximum of its window
/// in row-major order, as a flat index into the input.
fn reference_argmax(
    x: &[f64],
    planes: usize,
    h: usize,
    w: usize,
    wh: &[Vec<usize>],
    ww: &[Vec<usize>],
) -> Vec<usize> {
    let mut at = Vec::new();
    for p in 0..planes {
        for rows in wh {
            for cols in ww {
                let mut best = (f64::NEG_INFINITY, usize::MAX);
                for &i in rows {
                    for &j in cols {
                        let k = p * h * w + i * w + j;
                        if x[k] > best.0 {
                            best = (x[k], k);
                        }
                    }
                }
                at.push(best.1);
            }
        }
    }
    at
}

/// Checks `y = pool(x)` and its gradient against the reference argmax: the
/// values, and each output gradient landing on exactly its window's first maximum.
fn check_max_routing(x: &T, y: &T, argmax: &[usize], seed: u64) -> Result<(), TestCaseError> {
    let xv = x.to_vec();
    let want: Vec<f64> = argmax.iter().map(|&k| xv[k]).collect();
    prop_assert_eq!(y.to_vec(), want, "max values");
    let gy = values(&y.shape(), seed ^ 7, 0.5, 1.5);
    let g = grad(
        std::slice::from_ref(y),
        std::slice::from_ref(x),
        GradOptions {
            grad_outputs: Some(vec![gy.clone()]),
            ..Default::default()
        },
    )
    .remove(0)
    .expect("gradient");
    let mut want = vec![0.0; xv.len()];
    for (&k, &gv) in argmax.iter().zip(&gy.to_vec()) {
        want[k] += gv;
    }
    for (i, (a, b)) in g.to_vec().iter().zip(&want).enumerate() {
        prop_assert!(
            (a - b).abs() <= 1e-12,
            "gradient at {}: {} vs reference {}",
            i,
            a,
            b
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Groups and channels: `(groups, in channels, out channels)` for plain,
/// grouped (2) and depthwise (groups = channels, multiplier 1 or 2).
fn channels() -> impl Strategy<Value = (usize, usize, usize)> {
    (0..3usize, 1..=3usize, 1..=3usize).prop_map(|(kind, a, b)| match kind {
        0 => (1, a, b),
        1 => (2, 2 * a.min(2), 2 * b.min(2)),
        _ => {
            let c = a.max(2);
            (c, c, c * b.min(2))
        }
    })
}

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    groups: usize,
    cin: usize,
    cout: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    output_padding: [usize; 2],
    size: [usize; 2],
    bias: bool,
    seed: u64,
}

impl ConvCase {
    fn opts(&self) -> ConvOptions {
        ConvOptions::new()
            .stride(self.stride)
            .padding(self.padding)
            .dilation(self.dilation)
            .groups(self.groups)
            .output_padding(self.output_padding)
    }
}

/// conv2d: batch 1-2, kernel 1-3, stride 1-3, padding 0-2, dilation 1-2 per
/// axis, any groups, sizes just large enough plus 0-3 (odd ones included).
fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        1..=2usize,
        channels(),
        uniform2(1..=3usize),
        uniform2(1..=3usize),
        uniform2(0..=2usize),
        uniform2(1..=2usize),
        uniform2(0..=3usize),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n, (groups, cin, cout), kernel, stride, padding, dilation, extra, bias, seed)| {
                let size = [0, 1].map(|a| {
                    span(kernel[a], dilation[a])
                        .saturating_sub(2 * padding[a])
                        .max(1)
                        + extra[a]
                });
                ConvCase {
                    n,
                    groups,
                    cin,
                    cout,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    output_padding: [0, 0],
                    size,
                    bias,
                    seed,
                }
            },
        )
}

/// conv_transpose2d: as conv2d, with output_padding below max(stride, dilation)
/// and input sizes 1-3 (raised until the output is non-empty).
fn conv_transpose_case() -> impl Strategy<Value = ConvCase> {
    (
        1..=2usize,
        channels(),
        uniform2(1..=3usize),
        uniform2(1..=3usize),
        uniform2(0..=2usize),
        uniform2(1..=2usize),
        uniform2(0..=2usize),
        uniform2(1..=3usize),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n, (groups, cin, cout), kernel, stride, padding, dilation, op, size, bias, seed)| {
                let output_padding = [0, 1].map(|a| op[a] % stride[a].max(dilation[a]));
                let out = |a: usize, h: usize| {
                    ((h - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + output_padding[a] + 1)
                        as isize
                        - 2 * padding[a] as isize
                };
                let mut size = size;
                #[allow(clippy::needless_range_loop)] // `a` is the axis, used by `out` too
                for a in 0..2 {
                    while out(a, size[a]) <= 0 {
                        size[a] += 1;
                    }
                }
                ConvCase {
                    n,
                    groups,
                    cin,
                    cout,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    output_padding,
                    size,
                    bias,
                    seed,
                }
            },
        )
}

#[derive(Clone, Debug)]
struct PoolCase {
    shape: Vec<usize>,
    opts: PoolOptions,
    seed: u64,
}

/// Sliding pooling: `[N, C, H, W]` or `[C, H, W]`, kernel 1-3, stride 1-3,
/// padding up to half the kernel, dilation 1-2 (max only), ceil mode, and
/// count_include_pad (average only).
fn pool_case(dilated: bool) -> impl Strategy<Value = PoolCase> {
    (
        any::<bool>(),
        1..=2usize,
        1..=2usize,
        uniform2(1..=3usize),
        uniform2(1..=3usize),
        uniform2(0..=1usize),
        uniform2(1..=if dilated { 2usize } else { 1 }),
        uniform2(0..=3usize),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batched, n, c, kernel, stride, padding, dilation, extra, ceil, count_pad, seed)| {
                let padding = [0, 1].map(|a| padding[a].min(kernel[a] / 2));
                let size = [0, 1].map(|a| {
                    fit_size(
                        extra[a] + 1,
                        kernel[a],
                        stride[a],
                        padding[a],
                        dilation[a],
                        ceil,
                    )
                });
                let mut shape = if batched { vec![n, c] } else { vec![c] };
                shape.extend(size);
                let opts = PoolOptions::new(kernel)
                    .stride(stride)
                    .padding(padding)
                    .dilation(dilation)
                    .ceil_mode(ceil)
                    .count_include_pad(count_pad);
                PoolCase { shape, opts, seed }
            },
        )
}

/// Adaptive pooling: sizes 1-7, output sizes 1-5 (dividing the input or not,
/// smaller or larger).
fn adaptive_case() -> impl Strategy<Value = (Vec<usize>, [usize; 2], u64)> {
    (
        any::<bool>(),
        1..=2usize,
        1..=2usize,
        uniform2(1..=7usize),
        uniform2(1..=5usize),
        any::<u64>(),
    )
        .prop_map(|(batched, n, c, size, out, seed)| {
            let mut shape = if batched { vec![n, c] } else { vec![c] };
            shape.extend(size);
            (shape, out, seed)
        })
}

#[derive(Clone, Debug)]
struct BnCase {
    shape: Vec<usize>,
    training: bool,
    weight: bool,
    bias: bool,
    running: bool,
    momentum: f64,
    seed: u64,
}

/// batch_norm: `[N, C]` (N 2-5), `[N, C, L]` or `[N, C, H, W]`, at least two
/// values per channel; training or evaluation, optional affine parameters,
/// optional running statistics in training (evaluation needs them).
fn bn_case() -> impl Strategy<Value = BnCase> {
    (
        0..3usize,
        1..=3usize,
        1..=3usize,
        uniform2(1..=3usize),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0.1, 0.5, 1.0]),
        any::<u64>(),
    )
        .prop_map(
            |(kind, n, c, hw, training, weight, bias, running, momentum, seed)| {
                let shape = match kind {
                    0 => vec![n + 1, c],
                    1 => vec![n, c, hw[0] + 1],
                    _ => vec![n, c, hw[0], hw[1] + 1],
                };
                BnCase {
                    shape,
                    training,
                    weight,
                    bias,
                    running: running || !training,
                    momentum,
                    seed,
                }
            },
        )
}

impl BnCase {
    fn c(&self) -> usize {
        self.shape[1]
    }

    fn args(&self) -> BatchNormArgs<'static, f64> {
        BatchNormArgs::new()
            .training(self.training)
            .momentum(self.momentum)
            .eps(1e-5)
    }

    /// x (per-channel offsets, spread 0.5-1.5), then weight and bias if present.
    fn inputs(&self) -> Vec<T> {
        let c = self.c();
        let mut bshape = vec![1; self.shape.len()];
        bshape[1] = c;
        let x = values(&self.shape, self.seed, -1.5, 1.5)
            .mul(&values(&bshape, self.seed ^ 1, 0.5, 1.5))
            .add(&values(&bshape, self.seed ^ 2, -1.0, 1.0));
        let mut out = vec![Tensor::from_array(x.to_array()).requires_grad_()];
        if self.weight {
            out.push(values(&[c], self.seed ^ 3, 0.5, 1.5).requires_grad_());
        }
        if self.bias {
            out.push(values(&[c], self.seed ^ 4, -1.0, 1.0).requires_grad_());
        }
        out
    }

    /// Running statistics, fresh on each call: training updates them in
    /// place, and every evaluation of the checked function must see the same.
    fn running(&self) -> Option<(T, T)> {
        self.running.then(|| {
            let c = self.c();
            (
                values(&[c], self.seed ^ 5, -0.5, 0.5),
                values(&[c], self.seed ^ 6, 0.5, 1.5),
            )
        })
    }

    fn apply(&self, t: &[T]) -> T {
        let mut i = 1;
        let mut next = |on: bool| {
            on.then(|| {
                i += 1;
                t[i - 1].clone()
            })
        };
        let (w, b) = (next(self.weight), next(self.bias));
        let rs = self.running();
        let (rm, rv) = (rs.as_ref().map(|r| &r.0), rs.as_ref().map(|r| &r.1));
        t[0].batch_norm(BatchNormArgs {
            running_mean: rm,
            running_var: rv,
            weight: w.as_ref(),
            bias: b.as_ref(),
            ..self.args()
        })
    }
}

// ---------------------------------------------------------------------------
// Gradient checks
// ---------------------------------------------------------------------------

/// The input, weight and (if `c.bias`) bias of conv2d at `c`, all requiring grad.
fn conv2d_inputs(c: &ConvCase) -> Vec<T> {
    let x = values(&[c.n, c.cin, c.size[0], c.size[1]], c.seed, -1.0, 1.0).requires_grad_();
    let w = values(
        &[c.cout, c.cin / c.groups, c.kernel[0], c.kernel[1]],
        c.seed ^ 1,
        -1.0,
        1.0,
    )
    .requires_grad_();
    let mut inputs = vec![x, w];
    if c.bias {
        inputs.push(values(&[c.cout], c.seed ^ 2, -1.0, 1.0).requires_grad_());
    }
    inputs
}

/// Checks conv2d at `c`: the output size is PyTorch's, then the gradients
/// with respect to input, weight and bias (first and second order).
fn check_conv2d(c: &ConvCase) -> Result<(), TestCaseError> {
    let inputs = conv2d_inputs(c);
    let opts = c.opts();
    let f = |t: &[T]| t[0].conv2d(&t[1], t.get(2), opts);
    let y = f(&inputs);
    let want: Vec<usize> = (0..2)
        .map(|a| {
            (c.size[a] + 2 * c.padding[a] - span(c.kernel[a], c.dilation[a])) / c.stride[a] + 1
        })
        .collect();
    prop_assert_eq!(y.shape(), vec![c.n, c.cout, want[0], want[1]]);
    check(f, &inputs)
}

/// Checks the fused `conv2d_relu` at `c`: values and first- and
/// second-order gradients equal those of `conv2d(..).relu()` (to rounding),
/// and the gradient checks pass unless an output lies within 1e-4 of the
/// ReLU's kink (where finite differences straddle it).
fn check_conv2d_relu(c: &ConvCase) -> Result<(), TestCaseError> {
    let inputs = conv2d_inputs(c);
    let opts = c.opts();
    let fused = |t: &[T]| t[0].conv2d_relu(&t[1], t.get(2), opts);
    let unfused = |t: &[T]| t[0].conv2d(&t[1], t.get(2), opts).relu();
    let (y, y_ref) = (fused(&inputs), unfused(&inputs));
    prop_assert_eq!(y.to_vec(), y_ref.to_vec(), "values");
    // Gradients of sum(v * f^2) with the graph kept, then their own
    // gradients: first and second order against the unfused ops.
    let v = values(&y.shape(), c.seed ^ 3, -1.0, 1.0);
    let grads = |f: &dyn Fn(&[T]) -> T| {
        let loss = f(&inputs).square().mul(&v).sum();
        let g1 = grad(
            &[loss],
            &inputs,
            GradOptions {
                create_graph: true,
                ..Default::default()
            },
        );
        let g1: Vec<T> = g1.into_iter().map(|g| g.expect("gradient")).collect();
        let total = g1.iter().map(|g| g.square().sum()).reduce(|a, b| a.add(&b));
        let g2 = grad(&[total.expect("inputs")], &inputs, GradOptions::default());
        let mut all: Vec<Vec<f64>> = g1.iter().map(|g| g.to_vec()).collect();
        all.extend(g2.into_iter().map(|g| g.expect("gradient").to_vec()));
        all
    };
    for (i, (a, b)) in grads(&fused).iter().zip(grads(&unfused).iter()).enumerate() {
        for (u, w) in a.iter().zip(b) {
            prop_assert!(
                (u - w).abs() <= 1e-12 * (1.0 + w.abs()),
                "gradient {}: {} vs unfused {}",
                i,
                u,
                w
            );
        }
    }
    let pre = inputs[0].conv2d(&inputs[1], inputs.get(2), opts);
    if pre.to_vec().iter().all(|v| v.abs() > 1e-4) {
        check(fused, &inputs)?;
    }
    Ok(())
}

/// Checks conv_transpose2d at `c` as [`check_conv2d`] does conv2d.
fn check_conv_transpose2d(c: &ConvCase) -> Result<(), TestCaseError> {
    let x = values(&[c.n, c.cin, c.size[0], c.size[1]], c.seed, -1.0, 1.0).requires_grad_();
    let w = values(
        &[c.cin, c.cout / c.groups, c.kernel[0], c.kernel[1]],
        c.seed ^ 1,
        -1.0,
        1.0,
    )
    .requires_grad_();
    let mut inputs = vec![x, w];
    if c.bias {
        inputs.push(values(&[c.cout], c.seed ^ 2, -1.0, 1.0).requires_grad_());
    }
    let opts = c.opts();
    let f = |t: &[T]| t[0].conv_transpose2d(&t[1], t.get(2), opts);
    let y = f(&inputs);
    let want: Vec<usize> = (0..2)
        .map(|a| {
            (c.size[a] - 1) * c.stride[a]
                + c.dilation[a] * (c.kernel[a] - 1)
                + c.output_padding[a]
                + 1
                - 2 * c.padding[a]
        })
        .collect();
    prop_assert_eq!(y.shape(), vec![c.n, c.cout, want[0], want[1]]);
    check(f, &inputs)
}

/// Geometries worth checking every run, not only when drawn.
fn fixed_conv_cases() -> Vec<ConvCase> {
    let base = ConvCase {
        n: 2,
        groups: 1,
        cin: 3,
        cout: 2,
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        output_padding: [0, 0],
        size: [3, 4],
        bias: true,
        seed: 11,
    };
    vec![
        // 1x1, stride 1, no padding: the input is its own column matrix.
        base.clone(),
        // 1x1 with padding 2 (more than the kernel) and stride 2.
        ConvCase {
            padding: [2, 1],
            stride: [2, 2],
            ..base.clone()
        },
        // Depthwise with a channel multiplier, stride 3, dilation 2.
        ConvCase {
            groups: 3,
            cout: 6,
            kernel: [3, 2],
            stride: [3, 1],
            dilation: [2, 2],
            padding: [1, 2],
            size: [6, 5],
            ..base.clone()
        },
        // Grouped, asymmetric everything, no bias.
        ConvCase {
            groups: 2,
            cin: 4,
            cout: 4,
            kernel: [2, 3],
            stride: [2, 1],
            padding: [0, 2],
            dilation: [1, 2],
            size: [5, 3],
            bias: false,
            ..base
        },
    ]
}

#[test]
fn conv2d_gradients_fixed_cases() {
    for c in fixed_conv_cases() {
        check_conv2d(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
}

#[test]
fn conv_transpose2d_gradients_fixed_cases() {
    let mut cases = fixed_conv_cases();
    // output_padding of 1 and 2 may exceed the stride (1) when below the
    // dilation (2, 3), as PyTorch allows.
    cases.push(ConvCase {
        cin: 2,
        cout: 2,
        kernel: [3, 2],
        dilation: [2, 3],
        output_padding: [1, 2],
        padding: [1, 0],
        size: [3, 3],
        ..cases[0].clone()
    });
    // Stride 2, padding 1, output_padding 1 (the usual upsampling).
    cases.push(ConvCase {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        output_padding: [1, 1],
        ..cases[0].clone()
    });
    for c in cases {
        check_conv_transpose2d(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn conv2d_gradients(case in conv_case()) {
        check_conv2d(&case)?;
    }

    #[test]
    fn conv2d_relu_gradients(case in conv_case()) {
        check_conv2d_relu(&case)?;
    }

    #[test]
    fn conv_transpose2d_gradients(case in conv_transpose_case()) {
        check_conv_transpose2d(&case)?;
    }

    #[test]
    fn max_pool2d_gradients(case in pool_case(true)) {
        let x = distinct(&case.shape, case.seed).requires_grad_();
        let opts = case.opts;
        check(|t: &[T]| t[0].max_pool2d(opts), &[x])?;
    }

    #[test]
    fn avg_pool2d_gradients(case in pool_case(false)) {
        let x = values(&case.shape, case.seed, -1.0, 1.0).requires_grad_();
        let opts = case.opts;
        let y = x.avg_pool2d(opts);
        // Reference values: window sums over the divisor (padded window
        // clipped at size + padding, or only the positions inside).
        let r = case.shape.len();
        let (h, w) = (case.shape[r - 2], case.shape[r - 1]);
        let planes: usize = case.shape[..r - 2].iter().product();
        let o = opts;
        let wins = [(h, 0), (w, 1)].map(|(size, a)| sliding_windows(size, o.kernel[a], o.stride[a], o.padding[a], 1, o.ceil_mode));
        let padded = |size: usize, a: usize, i: usize| {
            let start = (i * o.stride[a]) as isize - o.padding[a] as isize;
            let end = (start + o.kernel[a] as isize).min((size + o.padding[a]) as isize);
            (end - start) as usize
        };
        let xv = x.to_vec();
        let xv = &xv;
        let mut want = Vec::new();
        for p in 0..planes {
            for (i, rows) in wins[0].iter().enumerate() {
                for (j, cols) in wins[1].iter().enumerate() {
                    let s: f64 = rows.iter().flat_map(|&a| cols.iter().map(move |&b| xv[p * h * w + a * w + b])).sum();
                    let div = if o.count_include_pad { padded(h, 0, i) * padded(w, 1, j) } else { rows.len() * cols.len() };
                    want.push(s / div as f64);
                }
            }
        }
        for (a, b) in y.to_vec().iter().zip(&want) {
            prop_assert!((a - b).abs() <= 1e-12, "{} vs reference {}", a, b);
        }
        prop_assert_eq!(y.numel(), want.len());
        check(|t: &[T]| t[0].avg_pool2d(opts), &[x])?;
    }

    #[test]
    fn adaptive_avg_pool2d_gradients((shape, out, seed) in adaptive_case()) {
        let x = values(&shape, seed, -1.0, 1.0).requires_grad_();
        let y = x.adaptive_avg_pool2d(out);
        let mut want = shape.clone();
        let r = want.len();
        want[r - 2..].copy_from_slice(&out);
        prop_assert_eq!(y.shape(), want);
        check(|t: &[T]| t[0].adaptive_avg_pool2d(out), &[x])?;
    }

    #[test]
    fn adaptive_max_pool2d_gradients((shape, out, seed) in adaptive_case()) {
        let x = distinct(&shape, seed).requires_grad_();
        check(|t: &[T]| t[0].adaptive_max_pool2d(out), &[x])?;
    }

    #[test]
    fn global_avg_pool2d_gradients((shape, _, seed) in adaptive_case()) {
        let x = values(&shape, seed, -1.0, 1.0).requires_grad_();
        let y = x.global_avg_pool2d();
        let r = shape.len();
        let hw = (shape[r - 2] * shape[r - 1]) as f64;
        let xv = x.to_vec();
        for (p, v) in y.to_vec().iter().enumerate() {
            let plane = &xv[p * hw as usize..(p + 1) * hw as usize];
            prop_assert!((v - plane.iter().sum::<f64>() / hw).abs() <= 1e-12);
        }
        check(|t: &[T]| t[0].global_avg_pool2d(), &[x])?;
    }

    #[test]
    fn batch_norm_gradients(case in bn_case()) {
        let inputs = case.inputs();
        // Nonlinear already: the second-order check runs on the output itself.
        check_orders(|t: &[T]| case.apply(t), |t: &[T]| case.apply(t), &inputs)?;
    }

    #[test]
    fn dropout_gradients(
        shape in prop::collection::vec(1..=5usize, 1..=3),
        p in prop::sample::select(vec![0.0, 0.2, 0.5, 0.9, 1.0]),
        seed in any::<u64>(),
    ) {
        let x = values(&shape, seed, -1.0, 1.0).requires_grad_();
        // A fresh generator with the same seed in every evaluation: the same mask.
        let f = |t: &[T]| t[0].try_dropout_with(p, true, &mut generator(seed ^ 9)).unwrap();
        let y = f(std::slice::from_ref(&x));
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        for (a, b) in y.to_vec().iter().zip(&x.to_vec()) {
            prop_assert!(*a == 0.0 || (a - b * scale).abs() <= 1e-12);
        }
        check(f, &[x.clone()])?;
        // Evaluation mode is the identity, gradient included.
        check(|t: &[T]| t[0].try_dropout_with(p, false, &mut generator(seed)).unwrap(), &[x])?;
    }
}

// ---------------------------------------------------------------------------
// Fused versus recorded batch_norm backward
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Without `create_graph` the backward is one fused kernel; with it the
    /// same formulas run as recorded ops. Both must agree to rounding.
    #[test]
    fn batch_norm_fused_backward_matches_recorded(case in bn_case()) {
        let inputs = case.inputs();
        let y = case.apply(&inputs);
        let gy = values(&y.shape(), case.seed ^ 8, -1.0, 1.0);
        let run = |create_graph: bool| {
            grad(
                std::slice::from_ref(&y),
                &inputs,
                GradOptions {
                    grad_outputs: Some(vec![gy.clone()]),
                    retain_graph: true,
                    create_graph,
                    ..Default::default()
                },
            )
        };
        let fused = run(false);
        let recorded = run(true);
        // The two paths really differ: only the recorded one is differentiable
        // (its input gradient depends on x, or on the weight, unless it is
        // the constant `gy * invstd` of evaluation without a weight).
        let dx = recorded[0].as_ref().expect("recorded grad");
        prop_assert_eq!(dx.requires_grad(), case.training || case.weight);
        for (i, (a, b)) in fused.iter().zip(&recorded).enumerate() {
            let (a, b) = (a.as_ref().expect("fused grad"), b.as_ref().expect("recorded grad"));
            prop_assert!(!a.requires_grad(), "input {}", i);
            let (a, b) = (a.to_vec(), b.to_vec());
            let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (j, (u, v)) in a.iter().zip(&b).enumerate() {
                prop_assert!((u - v).abs() <= 1e-10 * scale, "input {} element {}: fused {} vs recorded {}", i, j, u, v);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Max pooling with ties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Small integers (many ties, sometimes all negative so that padding
    /// cannot pass for a maximum): each output's gradient goes to exactly one
    /// input, the first maximum of its window in row-major order.
    #[test]
    fn max_pool2d_ties_route_to_first_maximum(case in pool_case(true), negative in any::<bool>()) {
        let raw = values(&case.shape, case.seed, 0.0, 3.0).to_vec();
        let shift = if negative { -3.0 } else { 0.0 };
        let x = Tensor::from_vec(raw.iter().map(|v| v.floor() + shift).collect(), &case.shape).requires_grad_();
        let y = x.max_pool2d(case.opts);
        let o = case.opts;
        let r = case.shape.len();
        let (h, w) = (case.shape[r - 2], case.shape[r - 1]);
        let planes = case.shape[..r - 2].iter().product();
        let wh = sliding_windows(h, o.kernel[0], o.stride[0], o.padding[0], o.dilation[0], o.ceil_mode);
        let ww = sliding_windows(w, o.kernel[1], o.stride[1], o.padding[1], o.dilation[1], o.ceil_mode);
        let argmax = reference_argmax(&x.to_vec(), planes, h, w, &wh, &ww);
        let mut want = case.shape.clone();
        want[r - 2..].copy_from_slice(&[wh.len(), ww.len()]);
        prop_assert_eq!(y.shape(), want);
        check_max_routing(&x, &y, &argmax, case.seed)?;
    }

    #[test]
    fn adaptive_max_pool2d_ties_route_to_first_maximum((shape, out, seed) in adaptive_case()) {
        let raw = values(&shape, seed, 0.0, 2.0).to_vec();
        let x = Tensor::from_vec(raw.iter().map(|v| v.floor()).collect(), &shape).requires_grad_();
        let y = x.adaptive_max_pool2d(out);
        let r = shape.len();
        let (h, w) = (shape[r - 2], shape[r - 1]);
        let planes = shape[..r - 2].iter().product();
        let argmax = reference_argmax(&x.to_vec(), planes, h, w, &adaptive_windows(h, out[0]), &adaptive_windows(w, out[1]));
        check_max_routing(&x, &y, &argmax, seed)?;
    }
}

#[test]
fn max_pool2d_constant_input_routes_to_window_corners() {
    // 2x2 windows, stride 2, on a constant plane: the top-left of each window.
    let x = Tensor::<f64>::full([1, 1, 4, 4], 1.5).requires_grad_();
    x.max_pool2d(PoolOptions::new(2)).sum().backward();
    #[rustfmt::skip]
    let want = vec![
        1.0, 0.0, 1.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        1.0, 0.0, 1.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(x.grad().unwrap().to_vec(), want);

    // Overlapping 3x3 windows with padding 1: window (i, j) starts at
    // (i - 1, j - 1), so its first maximum is (max(i - 1, 0), max(j - 1, 0)).
    let x = Tensor::<f64>::zeros([1, 1, 3, 3]).requires_grad_();
    x.max_pool2d(PoolOptions::new(3).stride(1).padding(1))
        .sum()
        .backward();
    #[rustfmt::skip]
    let want = vec![
        4.0, 2.0, 0.0,
        2.0, 1.0, 0.0,
        0.0, 0.0, 0.0,
    ];
    assert_eq!(x.grad().unwrap().to_vec(), want);
}

/// Inputs of 36864 values take the kernels' parallel paths (one plane per
/// task): the results equal the reference (max) and the plane-by-plane
/// sequential results (average).
#[test]
fn pooling_large_inputs_match_small_ones() {
    let shape = [2, 8, 48, 48];
    let x = distinct(&shape, 3).requires_grad_();
    let y = x.max_pool2d(PoolOptions::new(2).stride(1));
    let wins = sliding_windows(48, 2, 1, 0, 1, false);
    let argmax = reference_argmax(&x.to_vec(), 16, 48, 48, &wins, &wins);
    check_max_routing(&x, &y, &argmax, 3).unwrap();

    let x = values(&[16, 48, 48], 4, -1.0, 1.0).requires_grad_();
    let opts = PoolOptions::new(3)
        .stride(1)
        .padding(1)
        .count_include_pad(false);
    let gy = values(&[16, 48, 48], 5, -1.0, 1.0);
    let y = x.avg_pool2d(opts);
    let gx = grad(
        std::slice::from_ref(&y),
        std::slice::from_ref(&x),
        GradOptions {
            grad_outputs: Some(vec![gy.clone()]),
            ..Default::default()
        },
    )
    .remove(0)
    .unwrap();
    for p in 0..16 {
        let xp = x.detach().narrow(0, p, 1).requires_grad_();
        let yp = xp.avg_pool2d(opts);
        let gp = grad(
            std::slice::from_ref(&yp),
            std::slice::from_ref(&xp),
            GradOptions {
                grad_outputs: Some(vec![gy.narrow(0, p, 1)]),
                ..Default::default()
            },
        )
        .remove(0)
        .unwrap();
        assert_eq!(y.narrow(0, p, 1).to_vec(), yp.to_vec(), "plane {p}: values");
        assert_eq!(
            gx.narrow(0, p, 1).to_vec(),
            gp.to_vec(),
            "plane {p}: gradient"
        );
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The error's message, which must contain every one of `parts`.
#[track_caller]
fn assert_message<V: std::fmt::Debug>(r: autograd::Result<V>, parts: &[&str]) {
    let msg = r.expect_err("expected an error").to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn conv_errors_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros([1, 3, 5, 5]);
    // Mismatched channels.
    assert_message(
        x.try_conv2d(&Tensor::zeros([4, 2, 3, 3]), None, ConvOptions::new()),
        &[
            "conv2d",
            "[1, 3, 5, 5]",
            "[4, 2, 3, 3]",
            "expects 2 input channels",
            "the input has 3",
        ],
    );
    // Groups that do not divide the input or the output channels.
    assert_message(
        Tensor::<f32>::zeros([1, 4, 5, 5]).try_conv2d(
            &Tensor::zeros([6, 2, 3, 3]),
            None,
            ConvOptions::new().groups(3),
        ),
        &[
            "conv2d",
            "[1, 4, 5, 5]",
            "[6, 2, 3, 3]",
            "groups 3 must divide the input channels 4",
        ],
    );
    assert_message(
        Tensor::<f32>::zeros([1, 4, 5, 5]).try_conv2d(
            &Tensor::zeros([3, 2, 3, 3]),
            None,
            ConvOptions::new().groups(2),
        ),
        &[
            "conv2d",
            "[3, 2, 3, 3]",
            "groups 2 must divide",
            "output channels 3",
        ],
    );
    // A kernel larger than the padded input (dilation counts).
    assert_message(
        Tensor::<f32>::zeros([1, 1, 3, 3]).try_conv2d(
            &Tensor::zeros([1, 1, 5, 5]),
            None,
            ConvOptions::new(),
        ),
        &[
            "conv2d",
            "[1, 1, 3, 3]",
            "[1, 1, 5, 5]",
            "input of size 3 padded by 0 is smaller than the kernel's span 5",
        ],
    );
    assert_message(
        Tensor::<f32>::zeros([1, 1, 6, 4]).try_conv2d(
            &Tensor::zeros([1, 1, 3, 3]),
            None,
            ConvOptions::new().dilation(2),
        ),
        &[
            "conv2d",
            "[1, 1, 6, 4]",
            "input of size 4 padded by 0 is smaller than the kernel's span 5",
        ],
    );
    // Bias of the wrong size.
    assert_message(
        x.try_conv2d(
            &Tensor::zeros([4, 3, 3, 3]),
            Some(&Tensor::zeros([3])),
            ConvOptions::new(),
        ),
        &["conv2d", "[3]", "bias must be [4]"],
    );
    // Not 4-D.
    assert_message(
        Tensor::<f32>::zeros([3, 5, 5]).try_conv2d(
            &Tensor::zeros([4, 3, 3, 3]),
            None,
            ConvOptions::new(),
        ),
        &["conv2d", "[3, 5, 5]", "[N, C, H, W]"],
    );
    // The panicking form says the same.
    let panic = std::panic::catch_unwind(|| {
        Tensor::<f32>::zeros([1, 3, 5, 5]).conv2d(
            &Tensor::zeros([4, 2, 3, 3]),
            None,
            ConvOptions::new(),
        )
    })
    .expect_err("conv2d should panic");
    let msg = panic.downcast_ref::<String>().expect("message");
    assert!(
        msg.contains("conv2d") && msg.contains("[4, 2, 3, 3]"),
        "{msg}"
    );

    // conv_transpose2d: channels, groups, output_padding, empty output.
    let x = Tensor::<f32>::zeros([1, 3, 4, 4]);
    assert_message(
        x.try_conv_transpose2d(&Tensor::zeros([2, 2, 3, 3]), None, ConvOptions::new()),
        &[
            "conv_transpose2d",
            "[1, 3, 4, 4]",
            "[2, 2, 3, 3]",
            "the input has 3",
        ],
    );
    assert_message(
        x.try_conv_transpose2d(
            &Tensor::zeros([3, 2, 3, 3]),
            None,
            ConvOptions::new().groups(2),
        ),
        &["conv_transpose2d", "[3, 2, 3, 3]", "in 2 groups"],
    );
    assert_message(
        x.try_conv_transpose2d(
            &Tensor::zeros([3, 2, 3, 3]),
            None,
            ConvOptions::new().stride(2).output_padding(2),
        ),
        &[
            "conv_transpose2d",
            "[1, 3, 4, 4]",
            "output_padding [2, 2] must be smaller than stride or dilation",
        ],
    );
    assert_message(
        Tensor::<f32>::zeros([1, 2, 1, 1]).try_conv_transpose2d(
            &Tensor::zeros([2, 1, 1, 1]),
            None,
            ConvOptions::new().padding(1),
        ),
        &[
            "conv_transpose2d",
            "[1, 2, 1, 1]",
            "[2, 1, 1, 1]",
            "the output would have size -1 along dim 2",
        ],
    );
}

#[test]
fn pool_errors_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros([1, 1, 2, 2]);
    assert_message(
        x.try_max_pool2d(PoolOptions::new(3)),
        &[
            "max_pool2d",
            "kernel [3, 3]",
            "larger than the padded input",
            "[1, 1, 2, 2]",
        ],
    );
    assert_message(
        x.try_avg_pool2d(PoolOptions::new([1, 3])),
        &[
            "avg_pool2d",
            "kernel [1, 3]",
            "larger than the padded input",
            "[1, 1, 2, 2]",
        ],
    );
    // Padding counts, and so does dilation.
    assert_message(
        Tensor::<f32>::zeros([2, 1, 1]).try_max_pool2d(PoolOptions::new(2).padding(1).dilation(3)),
        &[
            "max_pool2d",
            "dilation [3, 3]",
            "larger than the padded input",
            "[2, 1, 1]",
        ],
    );
    assert_message(
        x.try_max_pool2d(PoolOptions::new(3).padding(2)),
        &[
            "max_pool2d",
            "padding [2, 2] must be at most half the kernel [3, 3]",
        ],
    );
    assert_message(
        x.try_avg_pool2d(PoolOptions::new(1).dilation(2)),
        &["avg_pool2d", "no dilation"],
    );
    assert_message(
        Tensor::<f32>::zeros([4, 4]).try_max_pool2d(PoolOptions::new(2)),
        &["max_pool2d", "[N, C, H, W] or [C, H, W]", "[4, 4]"],
    );
    // Empty outputs and inputs of adaptive pooling.
    assert_message(
        x.try_adaptive_avg_pool2d([0, 2]),
        &["adaptive_avg_pool2d", "output size [0, 2]", "[1, 1, 2, 2]"],
    );
    assert_message(
        Tensor::<f32>::zeros([1, 1, 0, 3]).try_adaptive_max_pool2d(1),
        &["adaptive_max_pool2d", "must be positive", "[1, 1, 0, 3]"],
    );
}

#[test]
fn batch_norm_and_dropout_errors_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros([2, 3, 4, 4]);
    let train = BatchNormArgs::new();
    let eval = train.training(false);
    let (c3, c2) = (Tensor::zeros([3]), Tensor::ones([2]));
    assert_message(
        x.try_batch_norm(BatchNormArgs::new().weight(&Tensor::ones([4]))),
        &[
            "batch_norm",
            "weight has shape [4], expected [3]",
            "[2, 3, 4, 4]",
        ],
    );
    assert_message(
        x.try_batch_norm(train.running_mean(&c3).running_var(&c2)),
        &["batch_norm", "running_var has shape [2], expected [3]"],
    );
    assert_message(
        x.try_batch_norm(train.running_mean(&c3)),
        &["batch_norm", "both running_mean and running_var"],
    );
    assert_message(
        x.try_batch_norm(eval),
        &["batch_norm", "evaluation mode needs running_mean"],
    );
    assert_message(
        Tensor::<f32>::zeros([1, 3]).try_batch_norm(train),
        &[
            "batch_norm",
            "more than one value per channel, got 1",
            "[1, 3]",
        ],
    );
    assert_message(
        Tensor::<f32>::zeros([3]).try_batch_norm(train),
        &["batch_norm", "[N, C, ...]", "[3]"],
    );
    assert_message(
        x.try_dropout_with(1.5, true, &mut generator(0)),
        &[
            "dropout",
            "probability 1.5 is outside [0, 1]",
            "[2, 3, 4, 4]",
        ],
    );
}
