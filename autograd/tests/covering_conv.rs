//! Convolutions whose live taps cover the whole input plane (one output
//! pixel, every pixel read by one tap: ResNet-18's last stage on 32x32
//! images), which run as three plain GEMMs from a batch of 16
//! (`kernels/conv/covering.rs`), and those where one tap reads pixel 0 of
//! a larger plane: at random shapes, conv2d, the fused
//! conv2d_relu and conv_transpose2d give in f64 what the same op gives
//! sample by sample (a batch of 1 takes the im2col path), and pass the
//! first- and second-order gradient checks.

mod gradcheck_util;

use autograd::rng::generator;
use autograd::{grad, ConvOptions, GradOptions, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use gradcheck_util::T;

#[derive(Clone, Debug)]
struct Case {
    n: usize,
    cin: usize,
    cout: usize,
    /// Plane, kernel, stride, padding, dilation.
    geom: ([usize; 2], usize, usize, usize, usize),
    bias: bool,
    seed: u64,
}

/// Planes the live taps cover: a 3x3 kernel's centre on 1x1 (padding 1,
/// or 2 with dilation 2), its 2x2 corner from 2x2 at stride 2, a kernel the
/// plane's size, a 5x5 kernel's middle 3x3 on 3x3 at stride 3; and a
/// single tap reading pixel 0 of a larger plane (1x1 at stride 2 from 2x2,
/// a 3x3 kernel's corner at stride 5).
fn case() -> impl Strategy<Value = Case> {
    let geoms = prop_oneof![
        Just(([1, 1], 3, 1, 1, 1)),
        Just(([1, 1], 3, 1, 2, 2)),
        Just(([2, 2], 3, 2, 1, 1)),
        Just(([2, 1], 3, 2, 1, 1)),
        Just(([2, 2], 2, 1, 0, 1)),
        Just(([1, 1], 1, 1, 0, 1)),
        Just(([3, 3], 5, 3, 1, 1)),
        Just(([2, 2], 1, 2, 0, 1)),
        Just(([3, 2], 3, 5, 2, 1)),
    ];
    (
        16..=18usize,
        1..=5usize,
        1..=5usize,
        geoms,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(n, cin, cout, geom, bias, seed)| Case {
            n,
            cin,
            cout,
            geom,
            bias,
            seed,
        })
}

fn values(shape: &[usize], seed: u64) -> T {
    Tensor::uniform_with(shape, -1.0, 1.0, &mut generator(seed))
}

fn opts(c: &Case) -> ConvOptions {
    let (_, _, s, p, d) = c.geom;
    ConvOptions::new().stride(s).padding(p).dilation(d)
}

/// conv2d's input, weight and (if `c.bias`) bias, or conv_transpose2d's
/// (its weight `[Cin, Cout, K, K]`; its input is the convolution's output, 1x1).
fn inputs(c: &Case, transposed: bool) -> Vec<T> {
    let (plane, k, ..) = c.geom;
    let (x, w) = if transposed {
        ([c.n, c.cin, 1, 1], [c.cin, c.cout, k, k])
    } else {
        ([c.n, c.cin, plane[0], plane[1]], [c.cout, c.cin, k, k])
    };
    let mut v = vec![
        values(&x, c.seed).requires_grad_(),
        values(&w, c.seed ^ 1).requires_grad_(),
    ];
    if c.bias {
        v.push(values(&[c.cout], c.seed ^ 2).requires_grad_());
    }
    v
}

/// The value and the gradients of `sum(gy * op(inputs))`.
fn value_and_grads(op: &impl Fn(&[T]) -> T, v: &[T], gy: &T) -> Vec<T> {
    let y = op(v);
    let opts = GradOptions {
        grad_outputs: Some(vec![gy.clone()]),
        ..Default::default()
    };
    let mut out = vec![y.detach()];
    out.extend(
        grad(&[y], v, opts)
            .into_iter()
            .map(|g| g.expect("a gradient")),
    );
    out
}

/// `op` on the whole batch against `op` sample by sample (values, input
/// gradients concatenated, weight and bias gradients summed), then the
/// gradient checks.
fn check(
    c: &Case,
    transposed: bool,
    gradchecks: bool,
    op: impl Fn(&[T]) -> T,
) -> Result<(), TestCaseError> {
    let v = inputs(c, transposed);
    let y = op(&v);
    let gy = values(&y.shape(), c.seed ^ 3);
    let got = value_and_grads(&op, &v, &gy);
    let mut want: Vec<Vec<f64>> = vec![vec![]; got.len()];
    for i in 0..c.n {
        let mut vi = vec![v[0].narrow(0, i, 1).detach().requires_grad_()];
        vi.extend(v[1..].iter().cloned());
        let parts = value_and_grads(&op, &vi, &gy.narrow(0, i, 1));
        for (j, part) in parts.iter().enumerate() {
            let part = part.to_vec();
            if j < 2 {
                want[j].extend(part);
            } else if want[j].is_empty() {
                want[j] = part;
            } else {
                want[j].iter_mut().zip(part).for_each(|(a, b)| *a += b);
            }
        }
    }
    let what = [
        "value",
        "input gradient",
        "weight gradient",
        "bias gradient",
    ];
    for ((what, g), w) in what.iter().zip(&got).zip(&want) {
        let g = g.to_vec();
        prop_assert_eq!(g.len(), w.len(), "{} at {:?}", what, c);
        let scale = w.iter().fold(1.0f64, |m, &u| m.max(u.abs()));
        for (a, b) in g.iter().zip(w) {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "{what} {a} vs {b} at {c:?}");
        }
    }
    // Gradients off (served weights: the live taps from the weight cache,
    // then the same products on the pruned geometry): the same values.
    let served = autograd::no_grad(|| op(&v)).to_vec();
    prop_assert_eq!(served.len(), want[0].len());
    let scale = want[0].iter().fold(1.0f64, |m, &u| m.max(u.abs()));
    for (a, b) in served.iter().zip(&want[0]) {
        prop_assert!((a - b).abs() <= 1e-12 * scale, "served {a} vs {b} at {c:?}");
    }
    if gradchecks {
        gradcheck_util::check(&op, &v);
    }
    Ok(())
}

#[test]
fn covering_kernels_match_sample_by_sample_and_pass_gradcheck() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        let o = opts(&c);
        check(&c, false, true, |t| t[0].conv2d(&t[1], t.get(2), o))?;
        // The ReLU's gradients are checked unless an output lies within
        // 1e-4 of its kink, where finite differences straddle it.
        let v = inputs(&c, false);
        let clear = v[0]
            .conv2d(&v[1], v.get(2), o)
            .to_vec()
            .iter()
            .all(|y| y.abs() > 1e-4);
        check(&c, false, clear, |t| t[0].conv2d_relu(&t[1], t.get(2), o))?;
        // conv_transpose2d from 1x1, where that has an output.
        let (_, k, _, p, d) = c.geom;
        if d * (k - 1) < 2 * p {
            return Ok(());
        }
        check(&c, true, true, |t| {
            t[0].conv_transpose2d(&t[1], t.get(2), o)
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Channel counts past one 256-kernel chunk of the live taps' gather and
/// spread (no gradient checks: the values and gradients against sample by
/// sample).
#[test]
fn covering_kernels_span_several_chunks() {
    for geom in [
        ([1, 1], 3, 1, 1, 1),
        ([2, 2], 3, 2, 1, 1),
        ([2, 2], 1, 2, 0, 1),
    ] {
        let c = Case {
            n: 16,
            cin: 24,
            cout: 13,
            geom,
            bias: true,
            seed: 7,
        };
        let o = opts(&c);
        if let Err(e) = check(&c, false, false, |t| t[0].conv2d(&t[1], t.get(2), o)) {
            panic!("{e}");
        }
    }
}
