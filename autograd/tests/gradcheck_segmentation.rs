//! Property tests of the segmentation ops: per-pixel `cross_entropy_opts`
//! (class weights, an ignored label, label smoothing, every reduction) and
//! `max_unpool2d` pass the first- and second-order gradient checks (f64,
//! PyTorch's default tolerances) at random shapes and values; the indices
//! of `max_pool2d_with_indices` / `adaptive_max_pool2d_with_indices` are the
//! first maximum of each window in row-major order, and unpooling puts each
//! maximum back where it was. Bad arguments give errors naming the op.

mod gradcheck_util;

use autograd::rng::generator;
use autograd::{CrossEntropyOptions, PoolIndices, PoolOptions, Reduction, Tensor, UnpoolOptions};
use gradcheck_util::*;
use proptest::prelude::*;

const IGNORE: usize = 255;

/// Uniform values in `[low, high)` from a seeded generator.
fn values(shape: &[usize], seed: u64, low: f64, high: f64) -> T {
    Tensor::uniform_with(shape, low, high, &mut generator(seed))
}

/// A random permutation of an evenly spaced grid over `[-2, 2]`: distinct
/// values, so that a finite-difference step never moves an argmax.
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

#[derive(Clone, Debug)]
struct XentCase {
    shape: Vec<usize>,
    targets: Vec<usize>,
    weight: Option<Vec<f64>>,
    ignore: bool,
    smoothing: f64,
    seed: u64,
}

/// Logits `[N, C]`, `[N, C, L]` or `[N, C, H, W]`; labels with about a
/// quarter ignored (never all: the mean would be 0/0), optional weights in
/// `[0.2, 2)`, smoothing 0 or 0.15.
fn xent_case() -> impl Strategy<Value = XentCase> {
    (
        prop_oneof![
            (1usize..=3, 2usize..=4).prop_map(|(n, c)| vec![n, c]),
            (1usize..=2, 2usize..=4, 1usize..=4).prop_map(|(n, c, l)| vec![n, c, l]),
            (1usize..=2, 2usize..=3, 1usize..=3, 1usize..=3)
                .prop_map(|(n, c, h, w)| vec![n, c, h, w]),
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_flat_map(|(shape, weighted, ignore, smooth, seed)| {
            let c = shape[1];
            let rows = numel(&shape) / c;
            (
                Just(shape),
                prop::collection::vec((0..c, 0..4usize), rows),
                prop::collection::vec(0.2f64..2.0, c),
                Just((weighted, ignore, smooth, seed)),
            )
        })
        .prop_map(|(shape, labels, w, (weighted, ignore, smooth, seed))| {
            let mut targets: Vec<usize> = labels
                .iter()
                .map(|&(t, r)| if ignore && r == 0 { IGNORE } else { t })
                .collect();
            if targets.iter().all(|&t| t == IGNORE) {
                targets[0] = 0;
            }
            XentCase {
                shape,
                targets,
                weight: weighted.then_some(w),
                ignore,
                smoothing: if smooth { 0.15 } else { 0.0 },
                seed,
            }
        })
}

impl XentCase {
    fn opts(&self, reduction: Reduction) -> CrossEntropyOptions {
        let mut o = CrossEntropyOptions::new()
            .reduction(reduction)
            .label_smoothing(self.smoothing);
        if self.ignore {
            o = o.ignore_index(IGNORE);
        }
        if let Some(w) = &self.weight {
            o = o.weight(w.clone());
        }
        o
    }

    /// The loss of each prediction and the mean's divisor, written out from
    /// the definition `sum_c q_c * (lse - x_c)`.
    fn reference(&self, x: &[f64]) -> (Vec<f64>, f64) {
        let c = self.shape[1];
        let (n, inner) = (self.shape[0], numel(&self.shape[2..]));
        let w = |k: usize| self.weight.as_ref().map_or(1.0, |w| w[k]);
        let (mut losses, mut total) = (Vec::new(), 0.0);
        for b in 0..n {
            for s in 0..inner {
                let t = self.targets[b * inner + s];
                if self.ignore && t == IGNORE {
                    losses.push(0.0);
                    continue;
                }
                let xs: Vec<f64> = (0..c).map(|k| x[(b * c + k) * inner + s]).collect();
                let mx = xs.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                let lse = mx + xs.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                let eps = self.smoothing;
                let l: f64 = (0..c)
                    .map(|k| {
                        let q =
                            eps / c as f64 * w(k) + if k == t { (1.0 - eps) * w(t) } else { 0.0 };
                        q * (lse - xs[k])
                    })
                    .sum();
                losses.push(l);
                total += w(t);
            }
        }
        (losses, total)
    }
}

#[derive(Clone, Debug)]
struct UnpoolCase {
    shape: Vec<usize>,
    kernel: [usize; 2],
    stride: [usize; 2],
    seed: u64,
}

/// Pools whose windows do not overlap (stride >= kernel), so the indices are
/// distinct and unpooling is a plain scatter; `[N, C, H, W]` or `[C, H, W]`.
fn unpool_case() -> impl Strategy<Value = UnpoolCase> {
    (
        any::<bool>(),
        1..=2usize,
        1..=2usize,
        proptest::array::uniform2(1..=3usize),
        proptest::array::uniform2(0..=1usize),
        proptest::array::uniform2(0..=3usize),
        any::<u64>(),
    )
        .prop_map(|(batched, n, c, kernel, extra_stride, extra, seed)| {
            let stride = [0, 1].map(|a| kernel[a] + extra_stride[a]);
            let mut shape = if batched { vec![n, c] } else { vec![c] };
            shape.extend([0, 1].map(|a| kernel[a] + extra[a]));
            UnpoolCase {
                shape,
                kernel,
                stride,
                seed,
            }
        })
}

impl UnpoolCase {
    fn pool(&self) -> PoolOptions {
        PoolOptions::new(self.kernel).stride(self.stride)
    }
    fn unpool(&self) -> UnpoolOptions {
        let r = self.shape.len();
        UnpoolOptions::new(self.kernel)
            .stride(self.stride)
            .output_size([self.shape[r - 2], self.shape[r - 1]])
    }
}

/// The first maximum of each window in row-major order, as flat in-plane
/// indices (windows from `lo[i]..hi[i]` along each axis).
fn reference_indices(
    x: &[f64],
    planes: usize,
    hw: [usize; 2],
    rows: &[(usize, usize)],
    cols: &[(usize, usize)],
) -> Vec<usize> {
    let mut out = Vec::new();
    for p in 0..planes {
        for &(r0, r1) in rows {
            for &(c0, c1) in cols {
                let mut best = (f64::NEG_INFINITY, usize::MAX);
                for i in r0..r1 {
                    for j in c0..c1 {
                        let v = x[p * hw[0] * hw[1] + i * hw[1] + j];
                        if v > best.0 {
                            best = (v, i * hw[1] + j);
                        }
                    }
                }
                out.push(best.1);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn cross_entropy_opts_gradients(case in xent_case()) {
        let x = [values(&case.shape, case.seed, -3.0, 3.0).requires_grad_()];
        for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            let opts = case.opts(reduction);
            check(|t| t[0].cross_entropy_opts(&case.targets, &opts), &x);
        }
    }

    #[test]
    fn cross_entropy_opts_matches_the_definition(case in xent_case()) {
        let x = values(&case.shape, case.seed, -3.0, 3.0);
        let (losses, total) = case.reference(&x.to_vec());
        let none = x.cross_entropy_opts(&case.targets, &case.opts(Reduction::None));
        let mut want_shape = vec![case.shape[0]];
        want_shape.extend(&case.shape[2..]);
        prop_assert_eq!(none.shape(), want_shape);
        for (g, w) in none.to_vec().iter().zip(&losses) {
            prop_assert!((g - w).abs() < 1e-12, "{} vs {}", g, w);
        }
        let sum: f64 = losses.iter().sum();
        let got_sum = x.cross_entropy_opts(&case.targets, &case.opts(Reduction::Sum)).item();
        prop_assert!((got_sum - sum).abs() < 1e-10);
        let got_mean = x.cross_entropy_opts(&case.targets, &case.opts(Reduction::Mean)).item();
        prop_assert!((got_mean - sum / total).abs() < 1e-10, "{} vs {}", got_mean, sum / total);
    }

    #[test]
    fn max_pool2d_indices_are_the_first_maxima(case in unpool_case(), ties in any::<bool>()) {
        let x = if ties {
            let raw = values(&case.shape, case.seed, 0.0, 2.0).to_vec();
            Tensor::from_vec(raw.iter().map(|v| v.floor()).collect(), &case.shape)
        } else {
            distinct(&case.shape, case.seed)
        };
        let r = case.shape.len();
        let hw = [case.shape[r - 2], case.shape[r - 1]];
        let planes = numel(&case.shape[..r - 2]);
        let (y, idx) = x.max_pool2d_with_indices(case.pool());
        let wins = |a: usize| -> Vec<(usize, usize)> {
            let out = (hw[a] - case.kernel[a]) / case.stride[a] + 1;
            (0..out).map(|i| (i * case.stride[a], i * case.stride[a] + case.kernel[a])).collect()
        };
        let want = reference_indices(&x.to_vec(), planes, hw, &wins(0), &wins(1));
        prop_assert_eq!(idx.to_vec(), want);
        prop_assert_eq!(idx.shape().to_vec(), y.shape());
        prop_assert_eq!(idx.input_size(), hw);
        prop_assert_eq!(y.to_vec(), x.max_pool2d(case.pool()).to_vec());
        // Unpooling the maxima puts each back at its place, zeros elsewhere.
        let up = y.max_unpool2d(&idx, case.unpool());
        prop_assert_eq!(up.shape(), case.shape.clone());
        let (xv, upv) = (x.to_vec(), up.to_vec());
        let mut want = vec![0.0; xv.len()];
        let per = idx.len() / planes;
        for (k, &i) in idx.to_vec().iter().enumerate() {
            let at = (k / per) * hw[0] * hw[1] + i;
            want[at] = xv[at];
        }
        prop_assert_eq!(upv, want);
    }

    #[test]
    fn adaptive_max_pool2d_indices_are_the_first_maxima(
        size in proptest::array::uniform2(1..=6usize),
        out in proptest::array::uniform2(1..=4usize),
        seed in any::<u64>(),
    ) {
        let shape = [2, 1, size[0], size[1]];
        let raw = values(&shape, seed, 0.0, 2.0).to_vec();
        let x = Tensor::from_vec(raw.iter().map(|v| v.floor()).collect(), shape);
        let (y, idx) = x.adaptive_max_pool2d_with_indices(out);
        let wins = |a: usize| -> Vec<(usize, usize)> {
            (0..out[a]).map(|i| (i * size[a] / out[a], ((i + 1) * size[a]).div_ceil(out[a]))).collect()
        };
        prop_assert_eq!(idx.to_vec(), reference_indices(&x.to_vec(), 2, size, &wins(0), &wins(1)));
        prop_assert_eq!(y.to_vec(), x.adaptive_max_pool2d(out).to_vec());
    }

    #[test]
    fn max_unpool2d_gradients(case in unpool_case()) {
        let (_, idx) = distinct(&case.shape, case.seed).max_pool2d_with_indices(case.pool());
        let x = values(idx.shape(), case.seed ^ 9, -1.0, 1.0).requires_grad_();
        let opts = case.unpool();
        check_also_squared(|t| t[0].max_unpool2d(&idx, opts), &[x]);
    }

    /// SegNet's path: pool, then unpool with the pool's own indices.
    #[test]
    fn pool_then_unpool_gradients(case in unpool_case()) {
        let x = distinct(&case.shape, case.seed).requires_grad_();
        let (pool, unpool) = (case.pool(), case.unpool());
        check_also_squared(
            |t| {
                let (y, idx) = t[0].max_pool2d_with_indices(pool);
                y.max_unpool2d(&idx, unpool)
            },
            &[x],
        );
    }
}

fn assert_message<V: std::fmt::Debug>(r: autograd::Result<V>, parts: &[&str]) {
    let e = r.expect_err("an error").to_string();
    for p in parts {
        assert!(e.contains(p), "{e:?} lacks {p:?}");
    }
}

#[test]
fn bad_arguments_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros([2, 3, 2, 2]);
    let t = vec![0usize; 8];
    assert_message(
        x.try_cross_entropy_opts(&t, &CrossEntropyOptions::new().weight(vec![1.0; 2])),
        &[
            "cross_entropy",
            "2 class weights for 3 classes",
            "[2, 3, 2, 2]",
        ],
    );
    let mut bad = t.clone();
    bad[3] = 255;
    assert_message(
        x.try_cross_entropy_opts(&bad, &CrossEntropyOptions::new()),
        &["cross_entropy", "class 255"],
    );
    assert!(x
        .try_cross_entropy_opts(&bad, &CrossEntropyOptions::new().ignore_index(255))
        .is_ok());
    // Every label ignored: the weighted mean is 0/0, as in PyTorch.
    let all = x.cross_entropy_opts(&[7; 8], &CrossEntropyOptions::new().ignore_index(7));
    assert!(all.item().is_nan());

    let (y, idx) = Tensor::<f32>::zeros([1, 2, 5, 5]).max_pool2d_with_indices(PoolOptions::new(2));
    assert_message(
        Tensor::<f32>::zeros([1, 2, 3, 2]).try_max_unpool2d(&idx, UnpoolOptions::new(2)),
        &["max_unpool2d", "[1, 2, 3, 2]", "[1, 2, 2, 2]"],
    );
    assert_message(
        y.try_max_unpool2d(&idx, UnpoolOptions::new(2).output_size(7)),
        &["max_unpool2d", "output_size [7, 7]"],
    );
    // Size 4 (the default) holds every index of a 2x2 pool of 5x5, but one
    // pointing to row 4 needs the output size 5.
    let far = PoolIndices::new(vec![24, 0, 0, 0], [1, 1, 2, 2], [5, 5]);
    let z = Tensor::<f32>::ones([1, 1, 2, 2]);
    assert_message(
        z.try_max_unpool2d(&far, UnpoolOptions::new(2)),
        &["max_unpool2d", "index 24", "[4, 4]"],
    );
    assert_eq!(
        z.max_unpool2d(&far, UnpoolOptions::new(2).output_size(5))
            .sum()
            .item(),
        2.0,
        "three values share index 0: one is kept, not their sum"
    );
    assert_message(
        PoolIndices::try_new(vec![25], [1, 1, 1], [5, 5]),
        &["pool_indices", "index 25"],
    );
}
