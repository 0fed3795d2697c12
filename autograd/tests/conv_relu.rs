//! `conv2d_relu` in f32 through every kernel path (direct, Winograd,
//! im2col + GEMM, several samples per GEMM, narrow products, pruned taps
//! packed and transformed weights kept with gradients off): the same bits as
//! `conv2d(..).relu()`, forward and backward, with gradients on and off. (The f64 gradient checks are in `gradcheck_cnn.rs`; these
//! paths are f32 only.)
//!
//! One test function: the kernel setting is global.

use autograd::{no_grad, set_conv_algorithm, ConvAlgorithm, ConvOptions, Tensor};

/// `(n, c, o, h, w, k, stride, padding, groups)`.
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const CASES: &[Case] = &[
    // DeepConvNet's layers (direct kernels; Winograd on 14x14 and 8x8).
    (3, 1, 16, 28, 28, 3, 1, 1, 1),
    (2, 16, 32, 14, 14, 3, 1, 1, 1),
    (2, 64, 64, 8, 8, 3, 1, 1, 1),
    // Stride 2 and a 7x7 stem (im2col + GEMM), a 1x1 (pointwise).
    (2, 3, 8, 17, 15, 3, 2, 1, 1),
    (1, 3, 16, 32, 32, 7, 2, 3, 1),
    (2, 32, 16, 9, 9, 1, 1, 0, 1),
    // Small planes: several samples per GEMM; batch 1: a few-column product
    // (4x4 outputs, reduction 576), narrow ones (2x2 outputs, reduction
    // 576; 1x1, pruned to the centre tap: reduction 640) and a 1x1 output
    // with too few channels for them (a GEMM).
    (8, 16, 16, 4, 4, 3, 1, 1, 1),
    (1, 64, 24, 2, 2, 3, 1, 1, 1),
    (1, 64, 24, 4, 4, 3, 1, 1, 1),
    (1, 640, 24, 1, 1, 3, 1, 1, 1),
    (1, 128, 10, 1, 1, 3, 1, 1, 1),
    // Groups, an odd plane.
    (2, 8, 12, 11, 7, 3, 1, 1, 4),
];

fn values(shape: &[usize], seed: u64) -> Tensor<f32> {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| {
            let h = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            ((h >> 40) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape)
}

fn check(case: Case, bias: bool, algorithm: ConvAlgorithm) {
    let (n, c, o, h, w, k, stride, padding, groups) = case;
    let opts = ConvOptions::new()
        .stride(stride)
        .padding(padding)
        .groups(groups);
    let x = values(&[n, c, h, w], 1).requires_grad_();
    let wt = values(&[o, c / groups, k, k], 2).requires_grad_();
    let b = bias.then(|| values(&[o], 3).requires_grad_());
    let what = format!("{case:?} bias {bias}");

    // Gradients off (pruned weights and the direct kernels' panels from the
    // cache), twice; checked against the recorded forward pass below.
    let mut kept = vec![];
    for _ in 0..2 {
        let (fused, unfused) = no_grad(|| {
            (
                x.conv2d_relu(&wt, b.as_ref(), opts),
                x.conv2d(&wt, b.as_ref(), opts).relu(),
            )
        });
        assert_eq!(fused.to_vec(), unfused.to_vec(), "{what}, no grad");
        assert!(fused.to_vec().contains(&0.0), "{what}: no ReLU at work");
        kept.push(fused.to_vec());
    }

    // Forward and backward, recorded.
    let gy = |y: &Tensor<f32>| values(&y.shape(), 4);
    let run = |fused: bool| {
        for t in [Some(&x), Some(&wt), b.as_ref()].into_iter().flatten() {
            t.set_grad(None);
        }
        let y = if fused {
            x.conv2d_relu(&wt, b.as_ref(), opts)
        } else {
            x.conv2d(&wt, b.as_ref(), opts).relu()
        };
        y.backward_with(&gy(&y));
        let mut out = vec![
            y.to_vec(),
            x.grad().unwrap().to_vec(),
            wt.grad().unwrap().to_vec(),
        ];
        if let Some(b) = &b {
            out.push(b.grad().unwrap().to_vec());
        }
        out
    };
    let (fused, unfused) = (run(true), run(false));
    // `Fastest` with gradients off may take F(4x4, 3x3) with kept
    // transformed weights where the recorded pass runs another kernel: its
    // results are then those F(4x4, 3x3) records.
    let winograd4 = || {
        set_conv_algorithm(ConvAlgorithm::Winograd4);
        let y = run(true).swap_remove(0);
        set_conv_algorithm(algorithm);
        y
    };
    for y in &kept {
        let recorded = y == &fused[0] || (algorithm == ConvAlgorithm::Fastest && y == &winograd4());
        assert!(recorded, "{what}: no grad against recorded");
    }
    for (i, (a, r)) in fused.iter().zip(&unfused).enumerate() {
        assert_eq!(a, r, "{what}: output/gradient {i}");
    }
}

/// One weight used with gradients off in two geometries whose direct
/// kernels pack it differently (1 group of 8 rows, then 2 groups of 4):
/// each call gets the panels of its own geometry from the cache.
fn kept_weights_follow_the_geometry() {
    let w = values(&[8, 4, 3, 3], 5);
    for (c, groups) in [(4, 1), (8, 2), (4, 1)] {
        let x = values(&[1, c, 16, 16], 6);
        let opts = ConvOptions::new().padding(1).groups(groups);
        let kept = no_grad(|| x.conv2d(&w, None, opts));
        let fresh = x.conv2d(&w.detach().requires_grad_(), None, opts);
        assert_eq!(kept.to_vec(), fresh.to_vec(), "groups {groups}");
    }
}

#[test]
fn conv2d_relu_matches_conv2d_then_relu_on_every_path() {
    for algorithm in [
        ConvAlgorithm::Auto,
        ConvAlgorithm::Winograd,
        ConvAlgorithm::Winograd4,
        ConvAlgorithm::Fastest,
    ] {
        let before = set_conv_algorithm(algorithm);
        for &case in CASES {
            for bias in [true, false] {
                check(case, bias, algorithm);
            }
        }
        set_conv_algorithm(before);
    }
    kept_weights_follow_the_geometry();
    served_layer_keeps_its_winograd_weights();
}

/// With gradients off `Fastest` runs a batch-1 layer on 16x16 outputs
/// (16 tiles) through F(4x4, 3x3) with its transformed weights kept: the
/// bits F(4x4, 3x3) records, not the direct kernels' (which the recorded
/// pass takes at this batch), and after a write to the weight those of
/// the new weight.
fn served_layer_keeps_its_winograd_weights() {
    // F(4x4, 3x3) runs on AVX2 + FMA only.
    #[cfg(target_arch = "x86_64")]
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    return;
    let x = values(&[1, 64, 16, 16], 7);
    let w = values(&[32, 64, 3, 3], 8).requires_grad_();
    let opts = ConvOptions::new().padding(1);
    let recorded = |algorithm| {
        let before = set_conv_algorithm(algorithm);
        let y = x.conv2d(&w, None, opts).to_vec();
        set_conv_algorithm(before);
        y
    };
    let before = set_conv_algorithm(ConvAlgorithm::Fastest);
    for round in 0..2 {
        let served = no_grad(|| x.conv2d(&w, None, opts)).to_vec();
        assert_eq!(served, no_grad(|| x.conv2d(&w, None, opts)).to_vec());
        assert_eq!(served, recorded(ConvAlgorithm::Winograd4), "round {round}");
        assert_ne!(
            served,
            recorded(ConvAlgorithm::Fastest),
            "round {round}: direct kernels"
        );
        // A new version of the weight: transformed again.
        w.set_data(values(&[32, 64, 3, 3], 9 + round).to_array());
    }
    set_conv_algorithm(before);
}
