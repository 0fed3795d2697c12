//! Helpers shared by the gradcheck property tests (`tests/gradcheck_ops.rs`,
//! `tests/gradcheck_shape_ops.rs`): strategies for shapes and values, and
//! `check`, which runs the first- and second-order gradient checks.
#![allow(dead_code)]

use autograd::gradcheck::{gradcheck_with, gradgradcheck_with, GradcheckOptions};
use autograd::rng::generator;
use autograd::{no_grad, Tensor};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

pub type T = Tensor<f64>;

/// A shape and its row-major values.
pub type Operand = (Vec<usize>, Vec<f64>);

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A leaf that requires grad.
pub fn leaf(op: &Operand) -> T {
    constant(op).requires_grad_()
}

/// A tensor that does not require grad.
pub fn constant((shape, values): &Operand) -> T {
    Tensor::from_vec(values.clone(), shape)
}

/// Leaves (requiring grad) for every operand.
pub fn leaves(ops: &[Operand]) -> Vec<T> {
    ops.iter().map(leaf).collect()
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

/// Gradient-checks `f` at `inputs`, first and second order, with the default
/// tolerances (eps 1e-6, atol 1e-5, rtol 1e-3); panics with the checker's
/// message (which names the input and the element) and the inputs.
///
/// It checks `f`, then `f(x) * w` with `w` one more leaf (random, the shape
/// of the output). The checker projects the output on a constant `v`, so each
/// backward of `f` receives a constant gradient and the second-order check of
/// `f` alone never differentiates a backward with respect to its incoming
/// gradient. With `w`, the gradient reaching `f`'s output is `v * w`, and the
/// mixed second derivatives `d2/dx dw` are exactly that derivative (for
/// `relu`: the mask applied by the backward of `relu`'s backward).
pub fn check(f: impl Fn(&[T]) -> T, inputs: &[T]) {
    check_with(f, inputs, &GradcheckOptions::default())
}

/// [`check`] with explicit tolerances.
pub fn check_with(f: impl Fn(&[T]) -> T, inputs: &[T], opts: &GradcheckOptions) {
    both_orders("f(x)", &f, inputs, opts);
    let n = inputs.len();
    let out_shape = no_grad(|| f(inputs).shape());
    let w = Tensor::randn_with(out_shape, &mut generator(0x5eed_0001)).requires_grad_();
    let mut with_w = inputs.to_vec();
    with_w.push(w);
    let what = format!("f(x) * w, input {n} being w");
    both_orders(&what, |t| f(&t[..n]).mul(&t[n]), &with_w, opts);
}

fn both_orders(what: &str, f: impl Fn(&[T]) -> T, inputs: &[T], opts: &GradcheckOptions) {
    if let Err(e) = gradcheck_with(&f, inputs, opts) {
        panic!(
            "{e}
  checking {what} at
{}",
            describe(inputs)
        );
    }
    if let Err(e) = gradgradcheck_with(&f, inputs, opts) {
        panic!(
            "{e}
  checking {what} at
{}",
            describe(inputs)
        );
    }
}

/// Checks `f`, and `f` squared, for ops whose derivative does not depend on
/// the input values: linear ops (add, sum, reshape, slice, ...) and piecewise
/// linear ones (relu, abs, clamp, max, ...).
///
/// For those the gradient `d/dx sum(v * f(x))` does not depend on `x`, so
/// the second-order check of `f` finds zero, as it should, without much
/// exercise. Squaring the output makes the incoming gradient depend on the
/// inputs: the second-order check then differentiates the op's backward
/// along a path that goes through the op's forward again.
pub fn check_also_squared(f: impl Fn(&[T]) -> T, inputs: &[T]) {
    check(&f, inputs);
    check(|t| f(t).square(), inputs);
}

/// `x` with its dims reversed when `on`: a strided (non-contiguous) view, so
/// that ops also meet inputs that are not in row-major order.
pub fn reversed(x: &T, on: bool) -> T {
    if on {
        x.permute((0..x.ndim() as isize).rev().collect::<Vec<_>>())
    } else {
        x.clone()
    }
}

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

/// Shapes of `min_rank..=max_rank` dims with sizes `1..=max_size`.
pub fn shape(
    min_rank: usize,
    max_rank: usize,
    max_size: usize,
) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=max_size, min_rank..=max_rank)
}

/// Shapes of `min_rank..=max_rank` dims with sizes in `sizes`.
pub fn shape_sized(
    min_rank: usize,
    max_rank: usize,
    lo: usize,
    hi: usize,
) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(lo..=hi, min_rank..=max_rank)
}

/// `k` shapes that broadcast together: from a random shape of 1 to 3 dims,
/// each operand drops some leading dims (possibly all: a 0-dim tensor) and
/// turns some sizes into 1.
pub fn broadcast_shapes(k: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
    shape(1, 3, 4)
        .prop_flat_map(move |out| {
            let r = out.len();
            let one = (0..=r, prop::collection::vec(any::<bool>(), r));
            (Just(out), prop::collection::vec(one, k))
        })
        .prop_map(|(out, picks)| {
            picks
                .into_iter()
                .map(|(drop, ones)| {
                    out.iter()
                        .zip(&ones)
                        .skip(drop)
                        .map(|(&s, &one)| if one { 1 } else { s })
                        .collect()
                })
                .collect()
        })
}

/// Two shapes that broadcast together: the fixed cases every broadcasting
/// rule must get right, or random ones.
pub fn broadcast_pair() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop_oneof![
        1 => Just(vec![vec![2, 3], vec![3]]),
        1 => Just(vec![vec![2, 1], vec![1, 4]]),
        1 => Just(vec![vec![4], vec![2, 1, 4]]),
        1 => Just(vec![vec![3, 1, 2], vec![]]),
        6 => broadcast_shapes(2),
    ]
}

/// A subset of the dims of a rank-`rank` tensor, some written negative
/// (an empty list means every dim to the reductions).
pub fn dims_subset(rank: usize) -> impl Strategy<Value = Vec<isize>> {
    (
        prop::collection::vec(any::<bool>(), rank),
        prop::collection::vec(any::<bool>(), rank),
    )
        .prop_map(move |(pick, neg)| {
            (0..rank)
                .filter(|&d| pick[d])
                .map(|d| {
                    if neg[d] {
                        d as isize - rank as isize
                    } else {
                        d as isize
                    }
                })
                .collect()
        })
}

/// One dim of a rank-`rank` tensor, possibly written negative.
pub fn one_dim(rank: usize) -> impl Strategy<Value = isize> {
    -(rank as isize)..rank as isize
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A value strategy for `n` elements.
pub type Values = BoxedStrategy<Vec<f64>>;

/// Uniform in `[lo, hi)`.
pub fn uniform(n: usize, lo: f64, hi: f64) -> Values {
    prop::collection::vec(lo..hi, n).boxed()
}

/// Uniform in `[-2, 2)`.
pub fn any_values(n: usize) -> Values {
    uniform(n, -2.0, 2.0)
}

/// Magnitude in `[min_abs, max_abs)`, either sign: away from 0 (denominators).
pub fn nonzero(n: usize, min_abs: f64, max_abs: f64) -> Values {
    prop::collection::vec((any::<bool>(), min_abs..max_abs), n)
        .prop_map(|v| {
            v.into_iter()
                .map(|(neg, m)| if neg { -m } else { m })
                .collect()
        })
        .boxed()
}

/// A constant 0/1 mask.
pub fn mask(n: usize) -> Values {
    prop::collection::vec(any::<bool>(), n)
        .prop_map(|v| v.into_iter().map(|b| if b { 1.0 } else { 0.0 }).collect())
        .boxed()
}

/// A scalar with magnitude in `[0.5, 2)`, either sign.
pub fn nonzero_scalar() -> impl Strategy<Value = f64> {
    (any::<bool>(), 0.5f64..2.0).prop_map(|(neg, m)| if neg { -m } else { m })
}

/// How far values stay from a kink (where a derivative jumps): far more than
/// the finite-difference step, so no difference straddles it.
pub const KINK_MARGIN: f64 = 0.05;

/// Uniform in `[lo, hi)`, pushed at least [`KINK_MARGIN`] away from each kink.
pub fn away_from(n: usize, lo: f64, hi: f64, kinks: &'static [f64]) -> Values {
    prop::collection::vec(lo..hi, n)
        .prop_map(move |v| {
            v.into_iter()
                .map(|mut x| {
                    for &k in kinks {
                        if (x - k).abs() < KINK_MARGIN {
                            x = if x >= k {
                                k + KINK_MARGIN
                            } else {
                                k - KINK_MARGIN
                            };
                        }
                    }
                    x
                })
                .collect()
        })
        .boxed()
}

/// `n` distinct values (a shuffled grid of step 0.1 plus noise below 0.01):
/// no ties for max/min, and a spread that keeps a variance well above 0.
pub fn distinct(n: usize) -> Values {
    (
        Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec(0.0..0.01, n),
    )
        .prop_map(move |(perm, noise)| {
            perm.iter()
                .zip(noise)
                .map(|(&i, e)| (i as f64 - n as f64 / 2.0) * 0.1 + e)
                .collect()
        })
        .boxed()
}

/// Shapes filled with values: `gen(operand index, element count)`.
pub fn filled<S, G>(shapes: S, gen: G) -> impl Strategy<Value = Vec<Operand>>
where
    S: Strategy<Value = Vec<Vec<usize>>>,
    G: Fn(usize, usize) -> Values,
{
    shapes.prop_flat_map(move |ss| {
        ss.into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n = numel(&s);
                (Just(s), gen(i, n))
            })
            .collect::<Vec<_>>()
    })
}

/// One shape filled with values.
pub fn filled1<S, G>(shapes: S, gen: G) -> impl Strategy<Value = Operand>
where
    S: Strategy<Value = Vec<usize>>,
    G: Fn(usize) -> Values,
{
    shapes.prop_flat_map(move |s| {
        let n = numel(&s);
        (Just(s), gen(n))
    })
}
