//! The convolutions' AVX-512 kernels against their AVX2 forms: the same
//! bits. Each output sums its taps in the same order on both (only the
//! vector width and the rows a call covers differ), so the forward pass,
//! the input gradient (direct and Winograd) and the weight gradient must
//! agree exactly, at random
//! shapes, kernel sizes, paddings, dilations and channel counts (1 to 30
//! output channels: every row count of the 12-row kernel).
//!
//! On a CPU without AVX-512F there is nothing to compare and the test says
//! so. One test function: the switch is global to the process.

use autograd::bench_api::set_avx512;
use autograd::{grad, set_conv_algorithm, ConvAlgorithm, ConvOptions, GradOptions, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Forward, input gradient and weight gradient of one convolution, as bits.
fn run(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    b: &Tensor<f32>,
    gy: &Tensor<f32>,
    opts: ConvOptions,
) -> [Vec<u32>; 3] {
    let bits = |t: Tensor<f32>| t.to_vec().into_iter().map(f32::to_bits).collect();
    let w_var = w.detach().requires_grad_();
    let y = x.conv2d(&w_var, Some(b), opts);
    let dw = grad(
        &[y.clone()],
        &[w_var],
        GradOptions {
            grad_outputs: Some(vec![gy.clone()]),
            ..Default::default()
        },
    );
    [
        bits(y.detach()),
        bits(gy.conv_transpose2d(w, None, opts)),
        bits(dw.into_iter().next().flatten().expect("a weight gradient")),
    ]
}

/// Both kernel families on one convolution: the same bits, or an error naming the case.
fn same_bits(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    b: &Tensor<f32>,
    gy: &Tensor<f32>,
    opts: ConvOptions,
    case: &str,
) -> Result<(), TestCaseError> {
    assert!(!set_avx512(false));
    let avx2 = run(x, w, b, gy, opts);
    assert!(set_avx512(true));
    let avx512 = run(x, w, b, gy, opts);
    for (part, name) in ["forward", "input gradient", "weight gradient"]
        .iter()
        .enumerate()
    {
        prop_assert!(avx2[part] == avx512[part], "{name} differs: {case}");
    }
    Ok(())
}

#[test]
fn avx512_kernels_give_the_avx2_bits() {
    if !std::is_x86_feature_detected!("avx512f") {
        eprintln!("no AVX-512F on this CPU: nothing to compare");
        return;
    }
    autograd::manual_seed(5);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let shapes = (
        (
            1usize..=3,
            1usize..=20,
            1usize..=30,
            1usize..=20,
            1usize..=20,
        ),
        (1usize..=5, 1usize..=5, 0usize..=2, 0usize..=2, 1usize..=2),
        any::<bool>(),
    );
    runner
        .run(&shapes, |((n, c, o, h, w), (kh, kw, ph, pw, dil), winograd)| {
            let (oh, ow) = (h + 2 * ph, w + 2 * pw);
            prop_assume!(oh > dil * (kh - 1) && ow > dil * (kw - 1));
            let (oh, ow) = (oh - dil * (kh - 1), ow - dil * (kw - 1));
            let x = Tensor::<f32>::randn([n, c, h, w]);
            let wt = Tensor::<f32>::randn([o, c, kh, kw]);
            let b = Tensor::<f32>::randn([o]);
            let gy = Tensor::<f32>::randn([n, o, oh, ow]);
            let opts = ConvOptions::new().padding([ph, pw]).dilation(dil);
            set_conv_algorithm(if winograd { ConvAlgorithm::Winograd } else { ConvAlgorithm::Auto });
            let case = format!("{n}x{c}x{h}x{w} -> {o}, kernel {kh}x{kw}, padding [{ph}, {pw}], dilation {dil}, winograd {winograd}");
            same_bits(&x, &wt, &b, &gy, opts, &case)
        })
        .unwrap();

    // Layers of DeepConvNet and ResNet's sizes, both algorithms: rows of
    // 28 (tiles along the padded width), of 16 and of 8 (a tile per row).
    for (c, o, hw) in [
        (16, 16, 28),
        (32, 32, 16),
        (64, 64, 8),
        (16, 32, 14),
        (32, 32, 14),
        (32, 64, 7),
        (64, 64, 14),
        (64, 64, 56),
    ] {
        for algorithm in [
            ConvAlgorithm::Auto,
            ConvAlgorithm::Winograd,
            ConvAlgorithm::Winograd4,
        ] {
            set_conv_algorithm(algorithm);
            let x = Tensor::<f32>::randn([2, c, hw, hw]);
            let wt = Tensor::<f32>::randn([o, c, 3, 3]).mul_scalar(0.1);
            let b = Tensor::<f32>::randn([o]);
            let gy = Tensor::<f32>::randn([2, o, hw, hw]);
            let case = format!("{c} -> {o} on {hw}x{hw}, {algorithm:?}");
            same_bits(&x, &wt, &b, &gy, ConvOptions::new().padding(1), &case).unwrap();
        }
    }
    set_conv_algorithm(ConvAlgorithm::Auto);
}
