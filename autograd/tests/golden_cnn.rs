//! Golden tests of the CNN ops against PyTorch: conv2d, conv_transpose2d,
//! max/avg/adaptive pooling (with the max pools' argmax indices),
//! max_unpool2d, batch_norm and per-pixel cross_entropy. `scripts/golden_cnn.py` wrote the
//! fixture: for every case its options, inputs, a random upstream gradient
//! `gy`, and PyTorch's float64 output and gradients with respect to every
//! input (input, weight, bias), plus the updated running statistics of
//! batch_norm. Every case in the fixture is run, in f64 (to 1e-10 of the
//! largest magnitude) and in f32 (to 1e-5).

use std::collections::BTreeMap;

use autograd::ops::conv::ConvOptions;
use autograd::ops::pool::PoolOptions;
use autograd::{grad, Float, GradOptions, Tensor};
use autograd::{BatchNormArgs, CrossEntropyOptions, PoolIndices, Reduction, UnpoolOptions};

struct Fixture(BTreeMap<String, (Vec<usize>, Vec<f64>)>);

impl Fixture {
    fn load() -> Fixture {
        let text = include_str!("fixtures/golden_cnn.txt");
        let mut map = BTreeMap::new();
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        while let Some(head) = lines.next() {
            let mut parts = head.split_whitespace();
            let name = parts.next().expect("name").to_string();
            let ndim: usize = parts.next().expect("ndim").parse().expect("ndim");
            let shape: Vec<usize> = parts.map(|p| p.parse().expect("dim")).collect();
            assert_eq!(shape.len(), ndim, "{name}");
            let values: Vec<f64> = lines
                .next()
                .expect("values")
                .split_whitespace()
                .map(|v| v.parse().expect("value"))
                .collect();
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
            map.insert(name, (shape, values));
        }
        Fixture(map)
    }

    /// The case prefixes `op.case` of one op, in name order.
    fn cases(&self, op: &str) -> Vec<String> {
        let head = format!("{op}.");
        self.0
            .keys()
            .filter(|k| k.starts_with(&head) && k.ends_with(".opts"))
            .map(|k| k.trim_end_matches(".opts").to_string())
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn get<T: Float>(&self, name: &str) -> Tensor<T> {
        let (shape, values) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no {name}"));
        Tensor::from_vec(values.iter().map(|&v| T::of(v)).collect(), shape)
    }

    fn leaf<T: Float>(&self, name: &str) -> Tensor<T> {
        self.get::<T>(name).requires_grad_()
    }

    fn opts(&self, prefix: &str) -> Vec<usize> {
        self.0[&format!("{prefix}.opts")]
            .1
            .iter()
            .map(|&v| v as usize)
            .collect()
    }

    fn opts_f64(&self, prefix: &str) -> Vec<f64> {
        self.0[&format!("{prefix}.opts")].1.clone()
    }

    /// A tensor of whole numbers (indices, labels) as `usize`.
    fn usizes(&self, name: &str) -> Vec<usize> {
        self.0[name].1.iter().map(|&v| v as usize).collect()
    }

    /// Checks a max pool's `(output, indices)` against `prefix.out` and `prefix.idx`.
    fn check_indices<T: Float>(&self, prefix: &str, (y, idx): (Tensor<T>, PoolIndices), rtol: f64) {
        self.assert_close(&format!("{prefix}.out"), &y, rtol);
        let want = &self.0[&format!("{prefix}.idx")];
        assert_eq!(idx.shape(), want.0.as_slice(), "{prefix}: indices shape");
        assert_eq!(
            idx.to_vec(),
            self.usizes(&format!("{prefix}.idx")),
            "{prefix}: indices"
        );
    }

    /// Compares shape and values to `rtol` of the largest magnitude (at least 1e-3).
    fn assert_close<T: Float>(&self, name: &str, got: &Tensor<T>, rtol: f64) {
        let (shape, want) = &self.0[name];
        let rtol = if T::NAME == "f32" {
            f32_tolerance(name, rtol)
        } else {
            rtol
        };
        assert_eq!(&got.shape(), shape, "{name} ({}): shape", T::NAME);
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        let got = got.to_vec();
        let (worst, at) = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g.as_f64() - w).abs())
            .enumerate()
            .fold(
                (0.0f64, 0),
                |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) },
            );
        assert!(
            worst <= rtol * scale,
            "{name} ({}): element {at}: got {} want {} (diff {worst:e} > {:e} = {rtol:e} x {scale:e})",
            T::NAME,
            got[at].as_f64(),
            want[at],
            rtol * scale
        );
    }

    /// Checks `out` against `prefix.out` and the gradients of `sum(out * gy)`
    /// with respect to `inputs` against `prefix.g<name>`.
    fn check<T: Float>(
        &self,
        prefix: &str,
        out: &Tensor<T>,
        inputs: &[(&str, Tensor<T>)],
        rtol: f64,
    ) {
        self.assert_close(&format!("{prefix}.out"), out, rtol);
        let gy = self.get::<T>(&format!("{prefix}.gy"));
        let xs: Vec<Tensor<T>> = inputs.iter().map(|(_, t)| t.clone()).collect();
        let gs = grad(
            std::slice::from_ref(out),
            &xs,
            GradOptions {
                grad_outputs: Some(vec![gy]),
                ..Default::default()
            },
        );
        for ((name, _), g) in inputs.iter().zip(gs) {
            let g = g.unwrap_or_else(|| panic!("{prefix}: no gradient for {name}"));
            self.assert_close(&format!("{prefix}.g{name}"), &g, rtol);
        }
    }
}

/// The tolerance of a fixture tensor in f32: `rtol` unless listed.
fn f32_tolerance(name: &str, rtol: f64) -> f64 {
    match name {
        // Two values per channel: xhat is +-1 up to eps, so the input
        // gradient `k * (g - mean(g) - xhat * mean(g * xhat))` is a
        // cancellation of O(1) terms down to O(eps / var) ~ 5e-5. f32 keeps
        // ~1e-7 of the terms, i.e. ~1e-3 of this tiny result (every other
        // tensor of the case, and every other case, meets 1e-5).
        "batch_norm.train2d_min_batch.gx" => 1e-3,
        _ => rtol,
    }
}

fn conv_cases<T: Float>(f: &Fixture, op: &str, rtol: f64) -> usize {
    let cases = f.cases(op);
    for p in &cases {
        let o = f.opts(p);
        let opts = ConvOptions::new()
            .stride([o[0], o[1]])
            .padding([o[2], o[3]])
            .dilation([o[4], o[5]])
            .groups(o[6])
            .output_padding([o[7], o[8]]);
        let x = f.leaf::<T>(&format!("{p}.x"));
        let w = f.leaf::<T>(&format!("{p}.w"));
        let b = (o[9] == 1).then(|| f.leaf::<T>(&format!("{p}.b")));
        let y = if op == "conv2d" {
            x.try_conv2d(&w, b.as_ref(), opts)
        } else {
            x.try_conv_transpose2d(&w, b.as_ref(), opts)
        }
        .unwrap_or_else(|e| panic!("{p}: {e}"));
        let mut inputs = vec![("x", x), ("w", w)];
        inputs.extend(b.map(|b| ("b", b)));
        f.check(p, &y, &inputs, rtol);
    }
    cases.len()
}

fn pool_cases<T: Float>(f: &Fixture, op: &str, rtol: f64) -> usize {
    let cases = f.cases(op);
    for p in &cases {
        let o = f.opts(p);
        let opts = PoolOptions::new([o[0], o[1]])
            .stride([o[2], o[3]])
            .padding([o[4], o[5]])
            .dilation([o[6], o[7]])
            .ceil_mode(o[8] == 1)
            .count_include_pad(o[9] == 1);
        let x = f.leaf::<T>(&format!("{p}.x"));
        let y = if op == "max_pool2d" {
            f.check_indices(p, x.max_pool2d_with_indices(opts), rtol);
            x.try_max_pool2d(opts)
        } else {
            x.try_avg_pool2d(opts)
        }
        .unwrap_or_else(|e| panic!("{p}: {e}"));
        f.check(p, &y, &[("x", x)], rtol);
    }
    cases.len()
}

fn adaptive_cases<T: Float>(f: &Fixture, op: &str, rtol: f64) -> usize {
    let cases = f.cases(op);
    for p in &cases {
        let o = f.opts(p);
        let x = f.leaf::<T>(&format!("{p}.x"));
        let y = if op == "adaptive_max_pool2d" {
            f.check_indices(p, x.adaptive_max_pool2d_with_indices([o[0], o[1]]), rtol);
            x.try_adaptive_max_pool2d([o[0], o[1]])
        } else if o == [1, 1] {
            Ok(x.global_avg_pool2d())
        } else {
            x.try_adaptive_avg_pool2d([o[0], o[1]])
        }
        .unwrap_or_else(|e| panic!("{p}: {e}"));
        f.check(p, &y, &[("x", x)], rtol);
    }
    cases.len()
}

fn batch_norm_cases<T: Float>(f: &Fixture, rtol: f64) -> usize {
    let cases = f.cases("batch_norm");
    for p in &cases {
        let o = f.opts_f64(p);
        let x = f.leaf::<T>(&format!("{p}.x"));
        let w = (o[1] == 1.0).then(|| f.leaf::<T>(&format!("{p}.w")));
        let b = (o[2] == 1.0).then(|| f.leaf::<T>(&format!("{p}.b")));
        let running = o[3] == 1.0;
        let rm = running.then(|| f.get::<T>(&format!("{p}.rm")));
        let rv = running.then(|| f.get::<T>(&format!("{p}.rv")));
        let y = x
            .try_batch_norm(BatchNormArgs {
                running_mean: rm.as_ref(),
                running_var: rv.as_ref(),
                weight: w.as_ref(),
                bias: b.as_ref(),
                training: o[0] == 1.0,
                momentum: o[4],
                eps: o[5],
            })
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        if running {
            // Updated in place in training, untouched in evaluation (the
            // fixture's `_after` equals the `rm`/`rv` then).
            assert!(f.has(&format!("{p}.rm_after")));
            f.assert_close(&format!("{p}.rm_after"), rm.as_ref().unwrap(), rtol);
            f.assert_close(&format!("{p}.rv_after"), rv.as_ref().unwrap(), rtol);
        }
        let mut inputs = vec![("x", x)];
        inputs.extend(w.map(|w| ("w", w)));
        inputs.extend(b.map(|b| ("b", b)));
        f.check(p, &y, &inputs, rtol);
    }
    cases.len()
}

fn unpool_cases<T: Float>(f: &Fixture, rtol: f64) -> usize {
    let cases = f.cases("max_unpool2d");
    for p in &cases {
        let o = f.opts(p);
        let mut opts = UnpoolOptions::new([o[0], o[1]])
            .stride([o[2], o[3]])
            .padding([o[4], o[5]]);
        if o[6] > 0 {
            opts = opts.output_size([o[6], o[7]]);
        }
        let x = f.leaf::<T>(&format!("{p}.x"));
        let idx = PoolIndices::new(f.usizes(&format!("{p}.idx")), x.shape(), [o[8], o[9]]);
        let y = x
            .try_max_unpool2d(&idx, opts)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        f.check(p, &y, &[("x", x)], rtol);
    }
    cases.len()
}

fn cross_entropy_cases<T: Float>(f: &Fixture, rtol: f64) -> usize {
    let cases = f.cases("cross_entropy");
    for p in &cases {
        let o = f.opts_f64(p);
        let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][o[0] as usize];
        let mut opts = CrossEntropyOptions::new()
            .reduction(reduction)
            .label_smoothing(o[1]);
        if o[2] >= 0.0 {
            opts = opts.ignore_index(o[2] as usize);
        }
        if o[3] == 1.0 {
            opts = opts.weight(f.0[&format!("{p}.w")].1.clone());
        }
        let x = f.leaf::<T>(&format!("{p}.x"));
        let y = x
            .try_cross_entropy_opts(&f.usizes(&format!("{p}.t")), &opts)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        f.check(p, &y, &[("x", x)], rtol);
    }
    cases.len()
}

fn all<T: Float>(rtol: f64) {
    let f = Fixture::load();
    // The fixture's case counts, so that a truncated fixture cannot pass.
    assert_eq!(conv_cases::<T>(&f, "conv2d", rtol), 8);
    assert_eq!(conv_cases::<T>(&f, "conv_transpose2d", rtol), 5);
    assert_eq!(pool_cases::<T>(&f, "max_pool2d", rtol), 10);
    assert_eq!(pool_cases::<T>(&f, "avg_pool2d", rtol), 7);
    assert_eq!(adaptive_cases::<T>(&f, "adaptive_avg_pool2d", rtol), 5);
    assert_eq!(adaptive_cases::<T>(&f, "adaptive_max_pool2d", rtol), 4);
    assert_eq!(batch_norm_cases::<T>(&f, rtol), 7);
    assert_eq!(unpool_cases::<T>(&f, rtol), 6);
    assert_eq!(cross_entropy_cases::<T>(&f, rtol), 8);
}

#[test]
fn cnn_ops_match_pytorch_in_f64() {
    all::<f64>(1e-10);
}

#[test]
fn cnn_ops_match_pytorch_in_f32() {
    all::<f32>(1e-5);
}
