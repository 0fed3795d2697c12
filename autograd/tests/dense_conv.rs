//! Convolutions on planes no wider than the kernel's reach (2x2 planes
//! under a 3x3 kernel, up to 3x3 under a 5x5 one), which `Fastest` runs as
//! one dense product from a batch of 16 (`kernels/conv/dense.rs`): at random
//! shapes, conv2d, the fused conv2d_relu and conv_transpose2d pass the
//! first- and second-order gradient checks in f64, give the values `Auto`
//! gives in f64, and in f32 agree with those (values and gradients) within
//! 1e-5 of the largest.
//!
//! One test function: the setting is global, and every case here must run
//! with it on.

use autograd::gradcheck::{gradcheck, gradgradcheck};
use autograd::rng::generator;
use autograd::{grad, set_conv_algorithm, ConvAlgorithm, ConvOptions, GradOptions, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

type T = Tensor<f64>;

#[derive(Clone, Debug)]
struct Case {
    n: usize,
    cin: usize,
    cout: usize,
    size: [usize; 2],
    kernel: usize,
    padding: usize,
    bias: bool,
    seed: u64,
}

/// Planes where every input pixel meets every output pixel through one
/// tap (5x5 on 2x2 has dead outer taps: pruned first, then dense).
fn case() -> impl Strategy<Value = Case> {
    let planes = prop_oneof![
        Just(([2, 2], 3, 1)),
        Just(([2, 1], 3, 1)),
        Just(([1, 2], 3, 1)),
        Just(([3, 3], 5, 2)),
        Just(([2, 3], 5, 2)),
        Just(([2, 2], 5, 2)),
    ];
    (
        16..=18usize,
        1..=5usize,
        1..=5usize,
        planes,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(n, cin, cout, (size, kernel, padding), bias, seed)| Case {
            n,
            cin,
            cout,
            size,
            kernel,
            padding,
            bias,
            seed,
        })
}

fn values(shape: &[usize], seed: u64) -> T {
    Tensor::uniform_with(shape, -1.0, 1.0, &mut generator(seed))
}

/// conv2d's input, weight and (if `c.bias`) bias, or conv_transpose2d's
/// (its weight `[Cin, Cout, K, K]`).
fn inputs(c: &Case, transposed: bool) -> Vec<T> {
    let k = c.kernel;
    let w = if transposed {
        [c.cin, c.cout, k, k]
    } else {
        [c.cout, c.cin, k, k]
    };
    let mut v = vec![
        values(&[c.n, c.cin, c.size[0], c.size[1]], c.seed).requires_grad_(),
        values(&w, c.seed ^ 1).requires_grad_(),
    ];
    if c.bias {
        v.push(values(&[c.cout], c.seed ^ 2).requires_grad_());
    }
    v
}

fn f32_of(t: &T) -> Tensor<f32> {
    Tensor::from_vec(t.to_vec().iter().map(|&v| v as f32).collect(), t.shape())
}

/// The gradients of `sum(gy * op(inputs))` with respect to every input.
fn grads<F: autograd::Float>(
    op: impl Fn(&[Tensor<F>]) -> Tensor<F>,
    v: &[Tensor<F>],
    gy: &Tensor<F>,
) -> Vec<Tensor<F>> {
    let y = op(v);
    let opts = GradOptions {
        grad_outputs: Some(vec![gy.clone()]),
        ..Default::default()
    };
    grad(&[y], v, opts)
        .into_iter()
        .map(|g| g.expect("a gradient"))
        .collect()
}

/// Largest `|a - b|` over the largest `|b|` (at least 1).
fn worst(a: &Tensor<f32>, b: &T) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.to_vec().iter().fold(1.0f64, |m, &u| m.max(u.abs()));
    a.to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(&u, w)| (u as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

/// `op` under `Fastest` against `Auto` (f64 values equal to 1e-12; f32
/// values and gradients within 1e-5 of the largest), then (if
/// `gradchecks`) the gradient checks.
fn check(
    c: &Case,
    transposed: bool,
    gradchecks: bool,
    op32: impl Fn(&[Tensor<f32>]) -> Tensor<f32>,
    op: impl Fn(&[T]) -> T,
) -> Result<(), TestCaseError> {
    let v = inputs(c, transposed);
    set_conv_algorithm(ConvAlgorithm::Auto);
    let want = op(&v);
    set_conv_algorithm(ConvAlgorithm::Fastest);
    let got = op(&v);
    prop_assert_eq!(got.shape(), want.shape());
    let scale = want.to_vec().iter().fold(1.0f64, |m, &u| m.max(u.abs()));
    for (a, b) in got.to_vec().iter().zip(want.to_vec()) {
        prop_assert!((a - b).abs() <= 1e-12 * scale, "f64 {a} vs {b} at {c:?}");
    }
    let v32: Vec<Tensor<f32>> = v.iter().map(|t| f32_of(t).requires_grad_()).collect();
    prop_assert!(worst(&op32(&v32), &want) <= 1e-5, "f32 values at {c:?}");
    let gy = values(&want.shape(), c.seed ^ 3);
    set_conv_algorithm(ConvAlgorithm::Auto);
    let want_grads = grads(&op, &v, &gy);
    set_conv_algorithm(ConvAlgorithm::Fastest);
    for (i, (g32, g)) in grads(&op32, &v32, &f32_of(&gy))
        .iter()
        .zip(&want_grads)
        .enumerate()
    {
        prop_assert!(worst(g32, g) <= 1e-5, "f32 gradient of input {i} at {c:?}");
    }
    if !gradchecks {
        return Ok(());
    }
    if let Err(e) = gradcheck(&op, &v) {
        return Err(TestCaseError::fail(format!("first order at {c:?}: {e}")));
    }
    if let Err(e) = gradgradcheck(|t: &[T]| op(t).square(), &v) {
        return Err(TestCaseError::fail(format!("second order at {c:?}: {e}")));
    }
    Ok(())
}

#[test]
fn dense_small_planes_match_auto_and_pass_gradcheck() {
    let before = set_conv_algorithm(ConvAlgorithm::Fastest);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        let opts = ConvOptions::new().padding(c.padding);
        check(
            &c,
            false,
            true,
            |t| t[0].conv2d(&t[1], t.get(2), opts),
            |t| t[0].conv2d(&t[1], t.get(2), opts),
        )?;
        // The ReLU's gradients are checked unless an output lies within
        // 1e-4 of its kink, where finite differences straddle it.
        let v = inputs(&c, false);
        let clear = v[0]
            .conv2d(&v[1], v.get(2), opts)
            .to_vec()
            .iter()
            .all(|y| y.abs() > 1e-4);
        check(
            &c,
            false,
            clear,
            |t| t[0].conv2d_relu(&t[1], t.get(2), opts),
            |t| t[0].conv2d_relu(&t[1], t.get(2), opts),
        )?;
        check(
            &c,
            true,
            true,
            |t| t[0].conv_transpose2d(&t[1], t.get(2), opts),
            |t| t[0].conv_transpose2d(&t[1], t.get(2), opts),
        )
    });
    set_conv_algorithm(before);
    result.unwrap();
}
