//! Property tests: the shape ops (reshape, view, flatten, permute, transpose,
//! t, (un)squeeze, slice, narrow, index_select, cat, stack, split, chunk,
//! pad) pass the first- and second-order gradient checks at random shapes.
//!
//! They are linear, so each is checked as it is and squared (see
//! `check_also_squared`): the squared form makes the second-order check run
//! each op's backward on a recorded gradient, and the backward of that.

mod gradcheck_util;

use autograd::Tensor;
use gradcheck_util::*;
use proptest::prelude::*;

/// A tensor of up to 3 dims (sizes up to 4) with values in `[-2, 2)`.
fn tensor() -> impl Strategy<Value = Operand> {
    filled1(shape(1, 3, 4), any_values)
}

/// A tensor and one of its dims (possibly negative).
fn tensor_and_dim() -> impl Strategy<Value = (Operand, isize)> {
    tensor().prop_flat_map(|op| {
        let r = op.0.len();
        (Just(op), one_dim(r))
    })
}

/// `d` written as a negative dim of a rank-`rank` tensor when `neg`.
fn signed(d: usize, rank: usize, neg: bool) -> isize {
    if neg {
        d as isize - rank as isize
    } else {
        d as isize
    }
}

/// A tensor and a target shape for `reshape`: its sizes shuffled, maybe the
/// first two merged, maybe a 1 appended, one of them written `-1`.
fn reshape_case() -> impl Strategy<Value = (Operand, Vec<isize>)> {
    tensor()
        .prop_flat_map(|op| {
            let sizes: Vec<isize> = op.0.iter().map(|&s| s as isize).collect();
            (
                Just(op),
                Just(sizes).prop_shuffle(),
                any::<bool>(),
                any::<bool>(),
                0usize..4,
            )
        })
        .prop_map(|(op, mut target, merge, unit, minus)| {
            if merge && target.len() >= 2 {
                let first = target.remove(0);
                target[0] *= first;
            }
            if unit {
                target.push(1);
            }
            let m = minus % target.len();
            target[m] = -1;
            (op, target)
        })
}

/// Pieces of one tensor joined back (each scaled by its position, so pieces
/// that land in the wrong place, or twice, change the result).
fn rejoin(pieces: &[Tensor<f64>], dim: isize) -> Tensor<f64> {
    let scaled: Vec<Tensor<f64>> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| p.mul_scalar(i as f64 + 1.0))
        .collect();
    Tensor::cat(&scaled, dim)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn reshape_and_view((op, target) in reshape_case(), strided in any::<bool>()) {
        let x = [leaf(&op)];
        check_also_squared(|t| t[0].reshape(target.clone()), &x);
        check_also_squared(|t| t[0].view(target.clone()), &x);
        // A strided input is copied, not viewed.
        check_also_squared(|t| reversed(&t[0], strided).reshape(target.clone()), &x);
    }

    #[test]
    fn flatten((op, a, b, na, nb) in tensor().prop_flat_map(|op| {
        let r = op.0.len();
        (Just(op), 0..r, 0..r, any::<bool>(), any::<bool>())
    })) {
        let r = op.0.len();
        let (start, end) = (a.min(b), a.max(b));
        let (start, end) = (signed(start, r, na), signed(end, r, nb));
        check_also_squared(|t| t[0].flatten(start, end), &[leaf(&op)]);
    }

    #[test]
    fn permute((op, perm, neg) in tensor().prop_flat_map(|op| {
        let r = op.0.len();
        let perm = Just((0..r).collect::<Vec<usize>>()).prop_shuffle();
        (Just(op), perm, prop::collection::vec(any::<bool>(), r))
    })) {
        let r = op.0.len();
        let dims: Vec<isize> = perm.iter().zip(&neg).map(|(&d, &n)| signed(d, r, n)).collect();
        check_also_squared(|t| t[0].permute(dims.clone()), &[leaf(&op)]);
    }

    #[test]
    fn transpose((op, d0, d1) in tensor().prop_flat_map(|op| {
        let r = op.0.len();
        (Just(op), one_dim(r), one_dim(r))
    })) {
        check_also_squared(|t| t[0].transpose(d0, d1), &[leaf(&op)]);
    }

    #[test]
    fn t(op in filled1(shape(1, 2, 4), any_values)) {
        check_also_squared(|t| t[0].t(), &[leaf(&op)]);
    }

    #[test]
    fn unsqueeze((op, dim) in tensor().prop_flat_map(|op| {
        let r = op.0.len() as isize;
        (Just(op), -(r + 1)..=r)
    })) {
        check_also_squared(|t| t[0].unsqueeze(dim), &[leaf(&op)]);
    }

    #[test]
    fn squeeze_dim((op, d, neg) in shape(0, 2, 4).prop_flat_map(|s| {
        (Just(s.clone()), 0..=s.len(), any::<bool>())
    }).prop_flat_map(|(mut s, d, neg)| {
        s.insert(d, 1);
        let n = numel(&s);
        ((Just(s), any_values(n)), Just(d), Just(neg))
    })) {
        let dim = signed(d, op.0.len(), neg);
        check_also_squared(|t| t[0].squeeze_dim(dim), &[leaf(&op)]);
    }

    #[test]
    fn squeeze(op in filled1(
        prop::collection::vec(prop_oneof![Just(1usize), 1usize..=3], 1..=4),
        any_values,
    )) {
        check_also_squared(|t| t[0].squeeze(), &[leaf(&op)]);
    }

    #[test]
    fn slice(((op, dim), start, end, step) in tensor_and_dim().prop_flat_map(|(op, dim)| {
        let n = op.0[(dim + op.0.len() as isize) as usize % op.0.len()] as isize;
        // Bounds past either end are clamped; negative ones count from the end.
        (Just((op, dim)), -n - 1..=n + 1, -n - 1..=n + 1, 1usize..=3)
    })) {
        check_also_squared(|t| t[0].slice(dim, start, end, step), &[leaf(&op)]);
    }

    #[test]
    fn narrow(((op, dim), start, len) in tensor_and_dim().prop_flat_map(|(op, dim)| {
        let n = op.0[(dim + op.0.len() as isize) as usize % op.0.len()];
        (Just((op, dim)), 0..n).prop_flat_map(move |(c, start)| (Just(c), Just(start), 1..=n - start))
    })) {
        check_also_squared(|t| t[0].narrow(dim, start, len), &[leaf(&op)]);
    }

    #[test]
    fn index_select(((op, dim), indices) in tensor_and_dim().prop_flat_map(|(op, dim)| {
        let n = op.0[(dim + op.0.len() as isize) as usize % op.0.len()];
        // Repeats allowed: their gradients add up.
        (Just((op, dim)), prop::collection::vec(0..n, 1..=5))
    })) {
        check_also_squared(|t| t[0].index_select(dim, &indices), &[leaf(&op)]);
    }
}

/// `k` shapes equal but in dim `d`, and `d` (possibly negative).
fn cat_case() -> impl Strategy<Value = (Vec<Operand>, isize)> {
    (shape(1, 3, 3), 1usize..=3)
        .prop_flat_map(|(s, k)| {
            let r = s.len();
            (
                Just(s),
                prop::collection::vec(1usize..=3, k),
                0..r,
                any::<bool>(),
            )
        })
        .prop_flat_map(|(s, sizes, d, neg)| {
            let shapes: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&n| {
                    let mut t = s.clone();
                    t[d] = n;
                    t
                })
                .collect();
            let r = s.len();
            (
                filled(Just(shapes), |_, n| any_values(n)),
                Just(signed(d, r, neg)),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn cat((ops, dim) in cat_case()) {
        let x = leaves(&ops);
        check_also_squared(|t| Tensor::cat(t, dim), &x);
        // The first operand a constant: its slot gets no gradient.
        let mut mixed = x.clone();
        mixed[0] = constant(&ops[0]);
        check_also_squared(|t| Tensor::cat(t, dim), &mixed);
    }

    #[test]
    fn stack((ops, dim) in (shape(0, 3, 3), 1usize..=3).prop_flat_map(|(s, k)| {
        let r = s.len() as isize;
        (filled(Just(vec![s; k]), |_, n| any_values(n)), -(r + 1)..=r)
    })) {
        check_also_squared(|t| Tensor::stack(t, dim), &leaves(&ops));
    }

    #[test]
    fn split_and_chunk(((op, dim), size, chunks) in tensor_and_dim().prop_flat_map(|(op, dim)| {
        let n = op.0[(dim + op.0.len() as isize) as usize % op.0.len()];
        (Just((op, dim)), 1..=n + 1, 1..=n + 1)
    })) {
        let x = [leaf(&op)];
        check_also_squared(|t| rejoin(&t[0].split(size, dim), dim), &x);
        check_also_squared(|t| rejoin(&t[0].chunk(chunks, dim), dim), &x);
    }

    #[test]
    fn split_sizes(((op, dim), cuts) in tensor_and_dim().prop_flat_map(|(op, dim)| {
        let n = op.0[(dim + op.0.len() as isize) as usize % op.0.len()];
        // A cut or not after each of the first n - 1 entries.
        (Just((op, dim)), prop::collection::vec(any::<bool>(), n - 1))
    })) {
        let mut sizes = vec![1usize];
        for &cut in &cuts {
            if cut {
                sizes.push(1);
            } else {
                *sizes.last_mut().unwrap() += 1;
            }
        }
        check_also_squared(|t| rejoin(&t[0].try_split_sizes(&sizes, dim).unwrap(), dim), &[leaf(&op)]);
    }

    #[test]
    fn pad((op, pads, value) in tensor().prop_flat_map(|op| {
        let r = op.0.len();
        // (before, after) pairs for the last 1..=r dims.
        (Just(op), (1..=r).prop_flat_map(|k| prop::collection::vec(0usize..=2, 2 * k)), -1.0f64..1.0)
    })) {
        check_also_squared(|t| t[0].pad(&pads, value), &[leaf(&op)]);
    }
}
