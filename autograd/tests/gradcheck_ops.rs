//! Property tests: every differentiable op (arithmetic with broadcasting,
//! elementwise functions, matmul, reductions, softmax, losses) passes the
//! first- and second-order gradient checks at random shapes and values.
//!
//! The shape ops (reshape, slice, cat, pad, ...) are in
//! `gradcheck_shape_ops.rs`; the helpers in `gradcheck_util/`. The last tests
//! show that the checker does fail on a wrong gradient.
//!
//! Values stay at least `KINK_MARGIN` (0.05) away from kinks (0 for relu,
//! abs, ...; the clamp bounds) and singularities (0 for div, log, ...), and
//! the inputs of max/min are distinct, so the finite differences are exact
//! up to rounding and the default tolerances hold everywhere.

mod gradcheck_util;

use autograd::gradcheck::{gradcheck_with, gradgradcheck_with, GradcheckError, GradcheckOptions};
use autograd::rng::generator;
use autograd::{Reduction, Tensor};
use gradcheck_util::*;
use proptest::prelude::*;

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

/// A shape, a shape that broadcasts to it, and the target shape as written
/// for `expand`: some dims kept with `-1`.
fn broadcast_source() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<isize>)> {
    shape(1, 3, 4)
        .prop_flat_map(|out| {
            let r = out.len();
            (
                Just(out),
                0..=r,
                prop::collection::vec(any::<bool>(), r),
                prop::collection::vec(any::<bool>(), r),
            )
        })
        .prop_map(|(out, lead, ones, keep)| {
            let src: Vec<usize> = out
                .iter()
                .zip(&ones)
                .skip(lead)
                .map(|(&s, &one)| if one { 1 } else { s })
                .collect();
            // -1 keeps the source's size, so the output is that size there.
            let raw: Vec<isize> = (0..out.len())
                .map(|i| {
                    if i >= lead && keep[i] {
                        -1
                    } else {
                        out[i] as isize
                    }
                })
                .collect();
            let out: Vec<usize> = (0..out.len())
                .map(|i| if raw[i] == -1 { src[i - lead] } else { out[i] })
                .collect();
            (out, src, raw)
        })
}

/// A tensor of up to 3 dims, dims to reduce over, and `keepdim`.
fn reduce_case(
    min_size: usize,
    gen: fn(usize) -> Values,
) -> impl Strategy<Value = (Operand, Vec<isize>, bool)> {
    shape_sized(1, 3, min_size, 4).prop_flat_map(move |s| {
        let (r, n) = (s.len(), numel(&s));
        ((Just(s), gen(n)), dims_subset(r), any::<bool>())
    })
}

/// A tensor of up to 3 dims and one of its dims.
fn dim_case(gen: fn(usize) -> Values) -> impl Strategy<Value = (Operand, isize)> {
    shape(1, 3, 4).prop_flat_map(move |s| {
        let (r, n) = (s.len(), numel(&s));
        ((Just(s), gen(n)), one_dim(r))
    })
}

fn wide(n: usize) -> Values {
    uniform(n, -3.0, 3.0)
}

fn positive(n: usize) -> Values {
    uniform(n, 0.2, 3.0)
}

/// Any numerator, a denominator at least 0.5 away from 0.
fn numerator_denominator(i: usize, n: usize) -> Values {
    if i == 0 {
        any_values(n)
    } else {
        nonzero(n, 0.5, 2.0)
    }
}

/// A positive base (the gradient wrt the exponent is `x^y ln x`), any exponent.
fn base_exponent(i: usize, n: usize) -> Values {
    if i == 0 {
        uniform(n, 0.3, 2.0)
    } else {
        any_values(n)
    }
}

/// A constant 0/1 condition, then the two branches.
fn condition_branches(i: usize, n: usize) -> Values {
    if i == 0 {
        mask(n)
    } else {
        any_values(n)
    }
}

// ---------------------------------------------------------------------------
// Arithmetic and broadcasting
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn add_sub_broadcast(ops in filled(broadcast_pair(), |_, n| any_values(n))) {
        let x = leaves(&ops);
        check_also_squared(|t| t[0].add(&t[1]), &x);
        check_also_squared(|t| t[0].sub(&t[1]), &x);
        // Only one operand requiring grad.
        check_also_squared(|t| t[0].sub(&t[1]), &[constant(&ops[0]), x[1].clone()]);
    }

    #[test]
    fn mul_broadcast(ops in filled(broadcast_pair(), |_, n| any_values(n))) {
        let x = leaves(&ops);
        check(|t| t[0].mul(&t[1]), &x);
        check(|t| t[0].mul(&t[1]), &[x[0].clone(), constant(&ops[1])]);
        // One tensor on both sides: the two gradients add up.
        check(|t| t[0].mul(&t[0]), &x[..1]);
    }

    #[test]
    fn div_broadcast(ops in filled(broadcast_pair(), numerator_denominator)) {
        let x = leaves(&ops);
        check(|t| t[0].div(&t[1]), &x);
        check(|t| t[0].div(&t[1]), &[constant(&ops[0]), x[1].clone()]);
    }

    #[test]
    fn pow_broadcast(ops in filled(broadcast_pair(), base_exponent)) {
        check(|t| t[0].pow(&t[1]), &leaves(&ops));
    }

    #[test]
    fn neg_and_scalar_ops(op in filled1(shape(0, 3, 4), any_values),
                          s in -2.0f64..2.0, d in nonzero_scalar()) {
        let x = [leaf(&op)];
        check_also_squared(|t| t[0].neg(), &x);
        check_also_squared(|t| t[0].add_scalar(s), &x);
        check_also_squared(|t| t[0].mul_scalar(s), &x);
        check_also_squared(|t| t[0].div_scalar(d), &x);
        check_also_squared(|t| t[0].rsub_scalar(s), &x);
        check(|t| t[0].square(), &x);
    }

    #[test]
    fn rdiv_scalar_and_reciprocal(op in filled1(shape(0, 3, 4), |n| nonzero(n, 0.5, 2.0)),
                                   s in -2.0f64..2.0) {
        let x = [leaf(&op)];
        check(|t| t[0].rdiv_scalar(s), &x);
        check(|t| t[0].reciprocal(), &x);
    }

    #[test]
    fn powf(op in filled1(shape(1, 3, 4), |n| uniform(n, 0.3, 2.0)),
            p in prop::sample::select(vec![-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])) {
        check(|t| t[0].powf(p), &[leaf(&op)]);
    }

    #[test]
    fn powf_integer_negative_base(op in filled1(shape(1, 3, 4), any_values),
                                  p in prop::sample::select(vec![1.0, 2.0, 3.0])) {
        check(|t| t[0].powf(p), &[leaf(&op)]);
    }

    #[test]
    fn expand_and_broadcast_to(((out, src, raw), values) in broadcast_source().prop_flat_map(|c| {
        let n = numel(&c.1);
        (Just(c), any_values(n))
    })) {
        let x = [leaf(&(src, values))];
        check_also_squared(|t| t[0].expand(raw.clone()), &x);
        check_also_squared(|t| t[0].broadcast_to(out.clone()), &x);
    }

    #[test]
    fn sum_to(((out, src, _), values) in broadcast_source().prop_flat_map(|c| {
        let n = numel(&c.0);
        (Just(c), any_values(n))
    })) {
        check_also_squared(|t| t[0].sum_to(&src), &[leaf(&(out, values))]);
    }

    #[test]
    fn where_constant_mask(ops in filled(broadcast_shapes(3), condition_branches)) {
        let x = [constant(&ops[0]), leaf(&ops[1]), leaf(&ops[2])];
        check_also_squared(|t| Tensor::where_(&t[0], &t[1], &t[2]), &x);
    }
}

// ---------------------------------------------------------------------------
// Elementwise functions
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn relu_leaky_relu_elu_abs(op in filled1(shape(1, 3, 4), |n| away_from(n, -2.0, 2.0, &[0.0])),
                               slope in 0.01f64..0.5, alpha in 0.5f64..2.0) {
        let x = [leaf(&op)];
        check_also_squared(|t| t[0].relu(), &x);
        check_also_squared(|t| t[0].leaky_relu(slope), &x);
        check_also_squared(|t| t[0].abs(), &x);
        // Smooth on each side but curved for x < 0.
        check(|t| t[0].elu(alpha), &x);
    }

    #[test]
    fn sigmoid_tanh_exp(op in filled1(shape(1, 3, 4), wide), strided in any::<bool>()) {
        let x = [leaf(&op)];
        check(|t| reversed(&t[0], strided).sigmoid(), &x);
        check(|t| reversed(&t[0], strided).tanh(), &x);
        check(|t| reversed(&t[0], strided).exp(), &x);
    }

    #[test]
    fn log_sqrt(op in filled1(shape(1, 3, 4), positive)) {
        let x = [leaf(&op)];
        check(|t| t[0].log(), &x);
        check(|t| t[0].sqrt(), &x);
    }

    #[test]
    fn clamp(op in filled1(shape(1, 3, 4), |n| away_from(n, -2.0, 2.0, &[-0.5, 0.7, 0.3, -0.2]))) {
        let x = [leaf(&op)];
        check_also_squared(|t| t[0].clamp(Some(-0.5), Some(0.7)), &x);
        check_also_squared(|t| t[0].clamp(None, Some(0.3)), &x);
        check_also_squared(|t| t[0].clamp(Some(-0.2), None), &x);
    }
}

// ---------------------------------------------------------------------------
// Matrix products
// ---------------------------------------------------------------------------

/// The operand shapes of every `matmul` layout: vector, matrix, batches
/// whose leading dims broadcast.
fn matmul_shapes(m: usize, k: usize, n: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    vec![
        (vec![k], vec![k]),
        (vec![k], vec![k, n]),
        (vec![m, k], vec![k]),
        (vec![m, k], vec![k, n]),
        (vec![2, m, k], vec![k, n]),
        (vec![1, m, k], vec![2, k, n]),
        (vec![m, k], vec![2, k, n]),
        (vec![2, 1, m, k], vec![3, k, n]),
        (vec![k], vec![2, k, n]),
        (vec![2, m, k], vec![k]),
        (vec![2, m, k], vec![2, k, n]),
    ]
}

/// `shape` with its last two dims swapped when `on` (and it has two).
fn swap_last(mut shape: Vec<usize>, on: bool) -> Vec<usize> {
    let r = shape.len();
    if on && r >= 2 {
        shape.swap(r - 1, r - 2);
    }
    shape
}

/// The first `numel(shape)` of `values`, as a leaf.
fn leaf_prefix(shape: Vec<usize>, values: &[f64]) -> T {
    let n = numel(&shape);
    leaf(&(shape, values[..n].to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Every layout, each operand as it is and as a transposed (strided)
    /// view: stored with the last two dims swapped, then `transpose(-1, -2)`.
    #[test]
    fn matmul(m in 1usize..=3, k in 1usize..=3, n in 1usize..=3,
              va in prop::collection::vec(-2.0f64..2.0, 18),
              vb in prop::collection::vec(-2.0f64..2.0, 27)) {
        for (sa, sb) in matmul_shapes(m, k, n) {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (ta, tb) = (ta && sa.len() >= 2, tb && sb.len() >= 2);
                let a = leaf_prefix(swap_last(sa.clone(), ta), &va);
                let b = leaf_prefix(swap_last(sb.clone(), tb), &vb);
                let view = |x: &T, t: bool| if t { x.transpose(-1, -2) } else { x.clone() };
                let f = |t: &[T]| view(&t[0], ta).matmul(&view(&t[1], tb));
                check(f, &[a.clone(), b.clone()]);
                // Only the left operand requiring grad.
                check(f, &[a, b.detach()]);
            }
        }
    }

    /// `linear` over inputs of 1 to 3 dims, with and without bias, the
    /// weight contiguous or a transposed view; it also equals the composite
    /// `x @ w^T + b` it replaces.
    #[test]
    fn linear(lead in prop::collection::vec(1usize..=3, 0..=2), k in 1usize..=3, o in 1usize..=3,
              vx in prop::collection::vec(-2.0f64..2.0, 27),
              vw in prop::collection::vec(-2.0f64..2.0, 9),
              vb in prop::collection::vec(-2.0f64..2.0, 3),
              strided in any::<bool>()) {
        let mut sx = lead.clone();
        sx.push(k);
        let x = leaf_prefix(sx, &vx);
        let w = if strided {
            leaf_prefix(vec![k, o], &vw)
        } else {
            leaf_prefix(vec![o, k], &vw)
        };
        let b = leaf_prefix(vec![o], &vb);
        let weight = |t: &T| if strided { t.t() } else { t.clone() };
        check(|t| t[0].linear(&weight(&t[1]), Some(&t[2])), &[x.clone(), w.clone(), b.clone()]);
        check(|t| t[0].linear(&weight(&t[1]), None), &[x.clone(), w.clone()]);
        // Only the input requiring grad, as in a frozen layer.
        check(|t| t[0].linear(&weight(&w).detach(), Some(&b.detach())), &[x.clone()]);
        let fused = x.linear(&weight(&w), Some(&b));
        let composite = x.matmul(&weight(&w).t()) + &b;
        prop_assert_eq!(fused.shape(), composite.shape());
        for (p, q) in fused.to_vec().iter().zip(composite.to_vec()) {
            prop_assert!((p - q).abs() < 1e-12, "{} vs {}", p, q);
        }
    }

    #[test]
    fn matmul_t(ops in filled(
        (1usize..=3, 1usize..=3, 1usize..=3).prop_map(|(m, k, n)| vec![vec![m, k], vec![n, k]]),
        |_, n| any_values(n),
    )) {
        // a @ b^T with t(): a transposed, non-contiguous right operand.
        check(|t| t[0].matmul(&t[1].t()), &leaves(&ops));
    }
}

// ---------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sum_and_mean((op, dims, keepdim) in reduce_case(1, any_values), strided in any::<bool>()) {
        let x = [leaf(&op)];
        let r = move |t: &[T]| reversed(&t[0], strided);
        check_also_squared(|t| r(t).sum(), &x);
        check_also_squared(|t| r(t).mean(), &x);
        check_also_squared(|t| r(t).sum_dim(dims.clone(), keepdim), &x);
        check_also_squared(|t| r(t).mean_dim(dims.clone(), keepdim), &x);
    }

    #[test]
    fn max_and_min((op, dims, keepdim) in reduce_case(1, distinct), strided in any::<bool>()) {
        let x = [leaf(&op)];
        let r = move |t: &[T]| reversed(&t[0], strided);
        check_also_squared(|t| r(t).max(), &x);
        check_also_squared(|t| r(t).min(), &x);
        check_also_squared(|t| r(t).max_dim(dims.clone(), keepdim), &x);
        check_also_squared(|t| r(t).min_dim(dims.clone(), keepdim), &x);
    }

    #[test]
    fn var_and_std((op, dims, keepdim) in reduce_case(2, distinct), strided in any::<bool>()) {
        // Sizes >= 2, so n - correction > 0; distinct values keep the
        // variance (under the square root of std) well away from 0.
        let x = [leaf(&op)];
        let r = move |t: &[T]| reversed(&t[0], strided);
        for correction in [0, 1] {
            check(|t| r(t).var_dim(dims.clone(), correction, keepdim), &x);
            check(|t| r(t).std_dim(dims.clone(), correction, keepdim), &x);
        }
    }

    #[test]
    fn var_any_values((op, dims, keepdim) in reduce_case(2, any_values)) {
        let x = [leaf(&op)];
        for correction in [0, 1] {
            check(|t| t[0].var_dim(dims.clone(), correction, keepdim), &x);
        }
        check(|t| t[0].var(), &x);
    }

    #[test]
    fn logsumexp((op, dims, keepdim) in reduce_case(1, wide), strided in any::<bool>()) {
        check(|t| reversed(&t[0], strided).logsumexp(dims.clone(), keepdim), &[leaf(&op)]);
    }

    #[test]
    fn softmax_and_log_softmax((op, dim) in dim_case(wide), strided in any::<bool>()) {
        let x = [leaf(&op)];
        check(|t| reversed(&t[0], strided).softmax(dim), &x);
        check(|t| reversed(&t[0], strided).log_softmax(dim), &x);
    }
}

// ---------------------------------------------------------------------------
// Losses
// ---------------------------------------------------------------------------

/// Logits `[N, C]` or `[N, C, H, W]`, one class index per prediction, and
/// whether the logits are stored with their dims reversed (then `reversed`
/// gives a strided view of the right shape).
fn cross_entropy_case() -> impl Strategy<Value = (Operand, Vec<usize>, bool)> {
    (
        prop_oneof![
            (1usize..=4, 2usize..=5).prop_map(|(n, c)| vec![n, c]),
            (1usize..=2, 2usize..=3, 1usize..=2, 1usize..=3)
                .prop_map(|(n, c, h, w)| vec![n, c, h, w]),
        ],
        any::<bool>(),
    )
        .prop_flat_map(|(s, strided)| {
            let (n, c) = (numel(&s), s[1]);
            let stored: Vec<usize> = if strided {
                s.iter().rev().copied().collect()
            } else {
                s
            };
            (
                (Just(stored), wide(n)),
                prop::collection::vec(0..c, n / c),
                Just(strided),
            )
        })
}

/// Two operands of one shape (input and target).
fn same_shape_pair() -> impl Strategy<Value = Vec<Vec<usize>>> {
    shape(1, 3, 4).prop_map(|s| vec![s.clone(), s])
}

/// Logits in `[-3, 3)`, targets in `[0, 1)`.
fn logits_targets(i: usize, n: usize) -> Values {
    if i == 0 {
        wide(n)
    } else {
        uniform(n, 0.0, 1.0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn cross_entropy((op, targets, strided) in cross_entropy_case()) {
        let x = [leaf(&op)];
        let logits = move |t: &[T]| reversed(&t[0], strided);
        for reduction in REDUCTIONS {
            for smoothing in [0.0, 0.1] {
                check(|t| logits(t).cross_entropy_with(&targets, reduction, smoothing), &x);
            }
        }
        if op.0.len() == 2 {
            check(|t| logits(t).cross_entropy(&targets), &x);
        }
    }

    #[test]
    fn mse_loss(ops in filled(same_shape_pair(), |_, n| any_values(n))) {
        let x = leaves(&ops);
        let target_constant = [x[0].clone(), constant(&ops[1])];
        check(|t| t[0].mse_loss(&t[1]), &x);
        for reduction in REDUCTIONS {
            check(|t| t[0].try_mse_loss(&t[1], reduction).unwrap(), &x);
            check(|t| t[0].try_mse_loss(&t[1], reduction).unwrap(), &target_constant);
        }
    }

    #[test]
    fn bce_with_logits(ops in filled(same_shape_pair(), logits_targets)) {
        // Gradients wrt both the logits and the targets.
        let x = leaves(&ops);
        let target_constant = [x[0].clone(), constant(&ops[1])];
        check(|t| t[0].bce_with_logits(&t[1]), &x);
        for reduction in REDUCTIONS {
            check(|t| t[0].try_bce_with_logits(&t[1], reduction).unwrap(), &x);
            check(|t| t[0].try_bce_with_logits(&t[1], reduction).unwrap(), &target_constant);
        }
    }
}

/// The thresholds the robust losses are checked at, and their kinks
/// (`|input - target| = beta`, and 0 for the L1 case `beta = 0`).
const ROBUST_THRESHOLDS: [f64; 2] = [0.5, 1.0];
const ROBUST_KINKS: &[f64] = &[-1.0, -0.5, 0.0, 0.5, 1.0];

/// `[input, target]` whose difference stays away from every kink, on both
/// sides of each threshold: operand 0 holds `target + d`.
fn robust_case() -> impl Strategy<Value = Vec<Operand>> {
    filled(same_shape_pair(), |i, n| {
        if i == 0 {
            away_from(n, -2.5, 2.5, ROBUST_KINKS)
        } else {
            any_values(n)
        }
    })
    .prop_map(|mut ops| {
        let target = ops[1].1.clone();
        for (x, y) in ops[0].1.iter_mut().zip(target) {
            *x += y;
        }
        ops
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn smooth_l1_loss(ops in robust_case()) {
        let x = leaves(&ops);
        let target_constant = [x[0].clone(), constant(&ops[1])];
        check(|t| t[0].smooth_l1_loss(&t[1], 1.0), &x);
        for reduction in REDUCTIONS {
            for beta in [0.0, ROBUST_THRESHOLDS[0], ROBUST_THRESHOLDS[1]] {
                check(|t| t[0].try_smooth_l1_loss(&t[1], reduction, beta).unwrap(), &x);
                check(
                    |t| t[0].try_smooth_l1_loss(&t[1], reduction, beta).unwrap(),
                    &target_constant,
                );
            }
        }
    }

    #[test]
    fn huber_loss(ops in robust_case()) {
        let x = leaves(&ops);
        let target_constant = [x[0].clone(), constant(&ops[1])];
        check(|t| t[0].huber_loss(&t[1], 1.0), &x);
        for reduction in REDUCTIONS {
            for delta in ROBUST_THRESHOLDS {
                check(|t| t[0].try_huber_loss(&t[1], reduction, delta).unwrap(), &x);
                check(
                    |t| t[0].try_huber_loss(&t[1], reduction, delta).unwrap(),
                    &target_constant,
                );
            }
        }
    }
}

/// Hand-computed values on both sides of the threshold, and the refused
/// arguments.
#[test]
fn robust_losses_values_and_errors() {
    let x = Tensor::<f64>::from_vec(vec![0.2, -3.0, 1.5], [3]);
    let y = Tensor::<f64>::from_vec(vec![0.0, 0.0, 0.5], [3]);
    // d = 0.2, -3, 1 with delta = beta = 2: 0.02, 2*(3-1) = 4, 0.5.
    let h = x.try_huber_loss(&y, Reduction::None, 2.0).unwrap().to_vec();
    for (g, w) in h.iter().zip([0.02, 4.0, 0.5]) {
        assert!((g - w).abs() < 1e-12, "huber {h:?}");
    }
    let s = x
        .try_smooth_l1_loss(&y, Reduction::Sum, 2.0)
        .unwrap()
        .to_vec();
    assert!((s[0] - 4.52 / 2.0).abs() < 1e-12, "smooth_l1 {s:?}");
    let l1 = x
        .try_smooth_l1_loss(&y, Reduction::Mean, 0.0)
        .unwrap()
        .to_vec();
    assert!((l1[0] - 4.2 / 3.0).abs() < 1e-12, "l1 {l1:?}");

    let err = x
        .try_huber_loss(&y, Reduction::Mean, 0.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huber_loss") && err.contains("delta 0"),
        "{err}"
    );
    let err = x
        .try_smooth_l1_loss(&y, Reduction::Mean, -1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("smooth_l1_loss") && err.contains("beta -1"),
        "{err}"
    );
    let short = Tensor::<f64>::from_vec(vec![0.0, 0.0], [2]);
    let err = x
        .try_huber_loss(&short, Reduction::Mean, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huber_loss") && err.contains("[3]") && err.contains("[2]"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The checker fails on wrong gradients
// ---------------------------------------------------------------------------

/// The checker's random projection `v` of an output of `shape` (seed 0).
fn projection(shape: &[usize]) -> Vec<f64> {
    Tensor::<f64>::randn_with(shape, &mut generator(GradcheckOptions::default().seed)).to_vec()
}

/// `x * x.detach()` has the value `x^2` but the gradient `x` (the detached
/// factor passes none): half the true `2x`. The checker must report the
/// first element where the difference exceeds the tolerance, by input index
/// and element index.
#[test]
fn gradcheck_catches_a_dropped_gradient() {
    let shape = [2, 3];
    let values: Vec<f64> = (1..=6).map(|i| i as f64 * 0.5).collect();
    let x = Tensor::from_vec(values.clone(), shape).requires_grad_();
    let opts = GradcheckOptions::default();
    let err = gradcheck_with(|t| t[0].mul(&t[0].detach()), &[x], &opts).unwrap_err();

    // d/dx sum(v * x^2) = 2 x v; the analytic gradient says x v.
    let v = projection(&shape);
    let first = (0..6)
        .find(|&j| {
            (values[j] * v[j]).abs() > opts.atol + opts.rtol * (2.0 * values[j] * v[j]).abs()
        })
        .expect("some element differs");
    let GradcheckError::Mismatch {
        order,
        input,
        index,
        analytic,
        numeric,
        ..
    } = err.clone()
    else {
        panic!("expected a mismatch, got {err:?}");
    };
    assert_eq!(order, "first order");
    assert_eq!(input, 0);
    assert_eq!(index, vec![first / 3, first % 3]);
    assert!((analytic - values[first] * v[first]).abs() < 1e-9, "{err}");
    assert!(
        (numeric - 2.0 * values[first] * v[first]).abs() < 1e-6,
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("input 0"), "{msg}");
    assert!(
        msg.contains(&format!("element [{}, {}]", first / 3, first % 3)),
        "{msg}"
    );
}

/// The wrong input is named: the first input's gradient is right, the
/// second's is not.
#[test]
fn gradcheck_names_the_wrong_input() {
    let a = Tensor::from_vec(vec![0.5, -1.0, 1.5], [3]).requires_grad_();
    let b = Tensor::from_vec(vec![1.0, 2.0, -0.5], [3]).requires_grad_();
    let f = |t: &[T]| t[0].mul(&t[0]).add(&t[1].mul(&t[1].detach()));
    let err = gradcheck_with(f, &[a, b], &GradcheckOptions::default()).unwrap_err();
    match &err {
        GradcheckError::Mismatch {
            order,
            input,
            index,
            ..
        } => {
            assert_eq!((*order, *input), ("first order", 1), "{err}");
            assert_eq!(index.len(), 1, "{err}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("input 1"), "{err}");
}

/// `x.detach()^2 + (x - x.detach()) * 2 x.detach()` has the value `x^2` and
/// the right first derivative `2x`, but that gradient is a constant to the
/// graph: its derivative comes out 0 instead of 2. Only the second-order
/// check can see it.
#[test]
fn gradgradcheck_catches_a_constant_gradient() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 1.5, 2.0], [2, 2]).requires_grad_();
    let f = |t: &[T]| {
        let c = t[0].detach();
        c.square().add(&t[0].sub(&c).mul(&c.mul_scalar(2.0)))
    };
    let opts = GradcheckOptions::default();
    gradcheck_with(f, &[x.clone()], &opts).expect("the first derivative is right");
    let err = gradgradcheck_with(f, &[x], &opts).unwrap_err();
    match &err {
        GradcheckError::Mismatch {
            order,
            input,
            index,
            analytic,
            ..
        } => {
            assert_eq!((*order, *input), ("second order", 0), "{err}");
            assert_eq!(index.len(), 2, "{err}");
            assert_eq!(*analytic, 0.0, "{err}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("second order"), "{err}");
}

/// The checks pass on the correct version of both functions above, so the
/// failures come from the dropped gradients and not from the setup.
#[test]
fn checker_accepts_the_correct_functions() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 1.5, 2.0], [2, 2]).requires_grad_();
    check(|t| t[0].mul(&t[0]), &[x]);
}

/// `linear`'s errors name the op and both shapes.
#[test]
fn linear_errors_name_the_op_and_shapes() {
    let x = Tensor::<f64>::zeros([4, 3]);
    let msg = x
        .try_linear(&Tensor::zeros([5, 2]), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("linear") && msg.contains("[4, 3]") && msg.contains("[5, 2]"),
        "{msg}"
    );
    let msg = x
        .try_linear(&Tensor::zeros([5, 3]), Some(&Tensor::zeros([4])))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("linear") && msg.contains("[4]") && msg.contains("[5]"),
        "{msg}"
    );
    // A 1-D input is one row, as in PyTorch.
    let y = Tensor::<f64>::ones([3]).linear(&Tensor::ones([5, 3]), Some(&Tensor::ones([5])));
    assert_eq!(y.shape(), vec![5]);
    assert_eq!(y.to_vec(), vec![4.0; 5]);
}
