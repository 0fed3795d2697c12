//! Winograd F(2x2, 3x3) and F(4x4, 3x3) (`set_conv_algorithm` with
//! `ConvAlgorithm::Winograd` and `Winograd4`, and `Fastest`'s choice of
//! kernels): f32 convolutions, their
//! input gradients and their weight gradients against the same in f64, at
//! random shapes, paddings and value ranges.
//!
//! The bound is on the magnitude of the sums computed: `|y32 - y64| <=
//! bound * max(|x| ⊛ |w| + |b|)`, the largest element of the same
//! convolution of the absolute values (so a cancelling sum is not held to
//! its small result), likewise for the gradients. F(2x2, 3x3)'s transforms
//! only add, subtract and halve (bound 4e-6); F(4x4, 3x3)'s multiply by up
//! to 8 and divide by up to 24 (bound 4e-5). The largest error seen over
//! these cases is printed with `--nocapture`.
//!
//! One test function: the setting is global, and every case here must run
//! with it on.

use autograd::{grad, set_conv_algorithm, ConvAlgorithm, ConvOptions, GradOptions, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Largest `|got - want|` over the elements, over the largest magnitude.
/// Per tensor, not per element: a tile's outputs are sums of products that
/// also carry its neighbours' terms (they cancel exactly, not in floating
/// point), so an output by the padding, with few terms of its own, carries
/// the rounding of the larger sums beside it.
fn worst(got: &Tensor<f32>, want: &Tensor<f64>, magnitude: &Tensor<f64>) -> f64 {
    assert_eq!(got.shape(), want.shape());
    let scale = magnitude.to_vec().into_iter().fold(1e-30, f64::max);
    got.to_vec()
        .iter()
        .zip(want.to_vec())
        .map(|(&g, w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

/// The gradient of `sum(gy * conv2d(x, w))` with respect to `w`.
fn weight_grad<T: autograd::Float>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    gy: &Tensor<T>,
    opts: ConvOptions,
) -> Tensor<T> {
    let w = w.detach().requires_grad_();
    let y = x.conv2d(&w, None, opts);
    let g = grad(
        &[y],
        std::slice::from_ref(&w),
        GradOptions {
            grad_outputs: Some(vec![gy.clone()]),
            ..Default::default()
        },
    );
    g.into_iter().next().flatten().expect("a weight gradient")
}

/// Forward, input gradient and weight gradient of one convolution: the
/// three worst ratios.
fn check(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: &Tensor<f64>,
    gy: &Tensor<f64>,
    p: [usize; 2],
) -> (f64, f64, f64) {
    let opts = ConvOptions::new().padding(p);
    let (x32, w32, b32, gy32) = (
        x.cast::<f32>(),
        w.cast::<f32>(),
        b.cast::<f32>(),
        gy.cast::<f32>(),
    );
    // The f32 inputs, widened back: the reference sees exactly what f32 got.
    let (x, w, b, gy) = (
        x32.cast::<f64>(),
        w32.cast::<f64>(),
        b32.cast::<f64>(),
        gy32.cast::<f64>(),
    );
    let y = x.conv2d(&w, Some(&b), opts);
    let y_mag = x.abs().conv2d(&w.abs(), Some(&b.abs()), opts);
    let fwd = worst(&x32.conv2d(&w32, Some(&b32), opts), &y, &y_mag);
    let dx = gy.conv_transpose2d(&w, None, opts);
    let dx_mag = gy.abs().conv_transpose2d(&w.abs(), None, opts);
    let bwd = worst(&gy32.conv_transpose2d(&w32, None, opts), &dx, &dx_mag);
    let dw = weight_grad(&x, &w, &gy, opts);
    let dw_mag = weight_grad(&x.abs(), &w, &gy.abs(), opts);
    let wgrad = worst(&weight_grad(&x32, &w32, &gy32, opts), &dw, &dw_mag);
    (fwd, bwd, wgrad)
}

/// The variants and their bounds: F(2x2, 3x3)'s transforms only add,
/// subtract and halve; F(4x4, 3x3)'s multiply by up to 8 and divide by up
/// to 24, so its rounding is larger.
const VARIANTS: [(ConvAlgorithm, f64); 3] = [
    (ConvAlgorithm::Winograd, 4e-6),
    (ConvAlgorithm::Winograd4, F4_BOUND),
    // F(4x4, 3x3) where it pays, the direct kernels from 9 taps (one
    // input channel) and the default kernels for the rest.
    (ConvAlgorithm::Fastest, F4_BOUND),
];
const F4_BOUND: f64 = 4e-5;

#[test]
fn winograd_matches_f64_within_its_bound() {
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        eprintln!("no AVX2 + FMA on this CPU: Winograd does not run here");
        return;
    }
    for (algorithm, bound) in VARIANTS {
        variant_matches_f64(algorithm, bound);
        // An empty batch: an empty output and gradients, a zero weight
        // gradient (no tiles to split into blocks).
        let x = Tensor::<f32>::zeros([0, 32, 8, 8]);
        let w = Tensor::<f32>::randn([32, 32, 3, 3]);
        let gy = Tensor::<f32>::zeros([0, 32, 8, 8]);
        let opts = ConvOptions::new().padding(1);
        assert_eq!(x.conv2d(&w, None, opts).shape(), &[0, 32, 8, 8]);
        assert_eq!(gy.conv_transpose2d(&w, None, opts).shape(), &[0, 32, 8, 8]);
        let dw = weight_grad(&x, &w, &gy, opts);
        assert!(
            dw.to_vec().iter().all(|&v| v == 0.0),
            "{algorithm:?}: empty batch"
        );
    }
    set_conv_algorithm(ConvAlgorithm::Auto);
}

fn variant_matches_f64(algorithm: ConvAlgorithm, bound: f64) {
    autograd::manual_seed(11);

    // The setting takes effect: on a layer of DeepConvNet's size the two
    // kernels sum in different orders, so some outputs differ in their
    // last bits, and both are within the bound. `Fastest` takes F(4x4,
    // 3x3) for 16 channels only with AVX-512, so it is checked on 32,
    // which it takes on every CPU with AVX2.
    let c = if algorithm == ConvAlgorithm::Fastest {
        32
    } else {
        16
    };
    let x = Tensor::<f64>::randn([4, c, 28, 28]);
    let w = Tensor::<f64>::randn([c, c, 3, 3]).mul_scalar(0.1);
    let b = Tensor::<f64>::randn([c]);
    let opts = ConvOptions::new().padding(1);
    let (x32, w32, b32) = (x.cast::<f32>(), w.cast::<f32>(), b.cast::<f32>());
    set_conv_algorithm(ConvAlgorithm::Auto);
    let auto = x32.conv2d(&w32, Some(&b32), opts).to_vec();
    set_conv_algorithm(algorithm);
    let wino = x32.conv2d(&w32, Some(&b32), opts).to_vec();
    assert_ne!(
        auto, wino,
        "{algorithm:?}'s sums should differ from the direct kernel's in some bits"
    );

    let largest = std::cell::Cell::new((0.0f64, 0.0f64, 0.0f64));
    // Shapes past the random ones' reach: many blocks of tiles (the
    // weight gradient's too, over both threads, with a part panel of
    // output channels), one block whose output channels the threads split
    // (with a part panel at the end), 4x4 planes of many samples, and more
    // channels than the weight gradient keeps per thread, and more than
    // the transformed weights keep in cache.
    for (n, c, o, hw, p) in [
        (8, 33, 37, 30, 2),
        (2, 40, 70, 9, 1),
        (32, 48, 64, 4, 1),
        (3, 64, 64, 8, 1),
        // More than 128 channels: the weight gradient's other way (its
        // tiles in one pass, then in two).
        (2, 136, 130, 9, 1),
        (4, 136, 130, 64, 1),
        // Transformed weights past 8 MiB: stored past the caches.
        (16, 256, 240, 4, 1),
        // One input channel (DeepConvNet's conv1): direct with `Fastest`.
        (3, 1, 16, 28, 1),
        // DeepConvNet's conv2 (16 output channels: with AVX-512 `Fastest`
        // takes the weight gradient here too) and conv3 (14x14 outputs:
        // edge tiles keep two columns and two rows).
        (4, 16, 16, 28, 1),
        (4, 16, 32, 14, 1),
    ] {
        let x = Tensor::<f64>::randn([n, c, hw, hw]);
        let wt = Tensor::<f64>::randn([o, c, 3, 3]);
        let b = Tensor::<f64>::randn([o]);
        let out = hw + 2 * p - 2;
        let gy = Tensor::<f64>::randn([n, o, out, out]);
        let (fwd, bwd, wgrad) = check(&x, &wt, &b, &gy, [p, p]);
        let l = largest.get();
        largest.set((l.0.max(fwd), l.1.max(bwd), l.2.max(wgrad)));
        assert!(
            fwd <= bound && bwd <= bound && wgrad <= bound,
            "{algorithm:?}: errors {fwd:e}, {bwd:e}, {wgrad:e} of the magnitude, {n}x{c}x{hw}x{hw} -> {o}, padding {p}"
        );
    }
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let shapes = (
        1usize..=3,
        1usize..=20,
        1usize..=20,
        1usize..=19,
        1usize..=19,
        0usize..=2,
        0usize..=2,
        prop_oneof![Just(1.0f64), Just(100.0), Just(1e-3)],
    );
    runner
        .run(&shapes, |(n, c, o, h, w, ph, pw, scale)| {
            let (oh, ow) = (h + 2 * ph, w + 2 * pw);
            prop_assume!(oh >= 3 && ow >= 3);
            let x = Tensor::<f64>::randn([n, c, h, w]).mul_scalar(scale);
            let wt = Tensor::<f64>::randn([o, c, 3, 3]);
            let b = Tensor::<f64>::randn([o]);
            let gy = Tensor::<f64>::randn([n, o, oh - 2, ow - 2]);
            let (fwd, bwd, wgrad) = check(&x, &wt, &b, &gy, [ph, pw]);
            let l = largest.get();
            largest.set((l.0.max(fwd), l.1.max(bwd), l.2.max(wgrad)));
            prop_assert!(fwd <= bound, "{algorithm:?} forward: error {fwd:e} of the magnitude, {n}x{c}x{h}x{w} -> {o}, padding [{ph}, {pw}], scale {scale}");
            prop_assert!(bwd <= bound, "{algorithm:?} input gradient: error {bwd:e} of the magnitude, {n}x{c}x{h}x{w} -> {o}, padding [{ph}, {pw}]");
            prop_assert!(wgrad <= bound, "{algorithm:?} weight gradient: error {wgrad:e} of the magnitude, {n}x{c}x{h}x{w} -> {o}, padding [{ph}, {pw}]");
            Ok(())
        })
        .unwrap();
    let (fwd, bwd, wgrad) = largest.get();
    println!("{algorithm:?}: largest error / magnitude: forward {fwd:e}, input gradient {bwd:e}, weight gradient {wgrad:e}");
}
