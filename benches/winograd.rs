//! Winograd F(2x2, 3x3) against the default kernels, per 3x3 layer shape:
//! the forward convolution (`fwd`; `inf`: under `no_grad`, as a served
//! model runs it), the forward convolution with its weight
//! gradient (`fwd+dw`, the input needing none), the input gradient
//! (`conv_transpose2d` of the output gradient, the kernel the backward pass
//! runs) and the layer's training step (forward, input and weight
//! gradients), each timed with
//! [`ConvAlgorithm::Auto`] and [`ConvAlgorithm::Winograd`] in alternation,
//! call by call, so both see the same phases of the machine.
//!
//! `--isa` compares instead the AVX2 kernels with the AVX-512 ones (on a CPU
//! with AVX-512F), both under the algorithm `--algorithm auto|winograd`
//! (auto) names.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench winograd` (options:
//! `--iters N` calls of each per case (40), `--only NAME-PREFIX`, `--isa`,
//! `--algorithm A`, `--vs winograd|winograd4|fastest`: the setting timed
//! against Auto, F(2x2, 3x3) by default; `--batch N`: every layer at batch
//! `N` instead of its own).

mod common;
use common::*;

use std::time::Instant;

use autograd::bench_api::set_avx512;
use autograd::{
    grad, manual_seed, no_grad, set_conv_algorithm, ConvAlgorithm, ConvOptions, GradOptions, Tensor,
};

/// Puts the process in one of the two states compared.
type Setting = Box<dyn Fn()>;

/// Median and minimum, in milliseconds.
fn stats(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(|a, b| a.total_cmp(b));
    (t[t.len() / 2], t[0])
}

/// The setting a command-line name stands for (Auto for anything else).
fn algorithm_named(name: &str) -> ConvAlgorithm {
    match name {
        "winograd" => ConvAlgorithm::Winograd,
        "winograd4" => ConvAlgorithm::Winograd4,
        "fastest" => ConvAlgorithm::Fastest,
        _ => ConvAlgorithm::Auto,
    }
}

fn main() {
    autograd::set_num_threads(0).expect("compute pool");
    let iters = arg("--iters", 40);
    let only = arg_str("--only");
    let isa = std::env::args().any(|a| a == "--isa");
    let algorithm = algorithm_named(&arg_str("--algorithm"));
    let batch = arg("--batch", 0);
    // The setting compared with Auto (B): `--vs winograd|winograd4|fastest`.
    let vs_name = match arg_str("--vs").as_str() {
        "" => "winograd".to_string(),
        other => other.to_string(),
    };
    let vs = algorithm_named(&vs_name);
    // The two settings compared, A then B: each sets the process-wide switch.
    let (names, settings): ([&str; 2], [Setting; 2]) = if isa {
        assert!(set_avx512(true), "--isa: this CPU has no AVX-512F");
        set_conv_algorithm(algorithm);
        (
            ["avx2", "avx512"],
            [
                Box::new(|| {
                    let _ = set_avx512(false);
                }),
                Box::new(|| {
                    let _ = set_avx512(true);
                }),
            ],
        )
    } else {
        (
            ["auto", vs_name.as_str()],
            [
                Box::new(|| {
                    let _ = set_conv_algorithm(ConvAlgorithm::Auto);
                }),
                Box::new(move || {
                    let _ = set_conv_algorithm(vs);
                }),
            ],
        )
    };
    manual_seed(0);
    println!(
        "threads {}; A = {}, B = {}{}",
        autograd::num_threads(),
        names[0],
        names[1],
        if isa {
            format!(", algorithm {algorithm:?}")
        } else {
            String::new()
        }
    );
    println!(
        "{:<34} {:>5} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}",
        "case (batch, in->out, size, pad)", "", "A ms", "B ms", "A/B", "A min", "B min", "A/B"
    );
    // (name, batch, cin, cout, size, pad)
    let cases = [
        ("deepconvnet conv1", 100, 1, 16, 28, 1),
        ("deepconvnet conv2", 100, 16, 16, 28, 1),
        ("deepconvnet conv3", 100, 16, 32, 14, 1),
        ("deepconvnet conv4", 100, 32, 32, 14, 2),
        ("deepconvnet conv5", 100, 32, 64, 8, 1),
        ("deepconvnet conv6", 100, 64, 64, 8, 1),
        ("resnet20 16@32", 128, 16, 16, 32, 1),
        ("resnet20 32@16", 128, 32, 32, 16, 1),
        ("resnet20 64@8", 128, 64, 64, 8, 1),
        ("resnet18 32px 64@8", 64, 64, 64, 8, 1),
        ("resnet18 32px 128@4", 64, 128, 128, 4, 1),
        ("resnet18 32px 256@2", 64, 256, 256, 2, 1),
        ("resnet18 64@56", 8, 64, 64, 56, 1),
        ("resnet18 128@28", 8, 128, 128, 28, 1),
        ("resnet18 256@14", 8, 256, 256, 14, 1),
        ("vgg 512@14", 8, 512, 512, 14, 1),
        ("vgg 32px 64@32", 32, 64, 64, 32, 1),
        ("vgg 32px 128@16", 32, 128, 128, 16, 1),
        ("vgg 32px 256@8", 32, 256, 256, 8, 1),
        ("vgg 32px 512@4", 32, 512, 512, 4, 1),
        ("vgg 32px 512@2", 32, 512, 512, 2, 1),
        ("googlenet 64px 64->192@16", 16, 64, 192, 16, 1),
        ("googlenet 64px 96->128@8", 16, 96, 128, 8, 1),
        ("googlenet 64px 128->192@8", 16, 128, 192, 8, 1),
        ("googlenet 64px 96->208@4", 16, 96, 208, 4, 1),
        ("googlenet 64px 160->320@4", 16, 160, 320, 4, 1),
        ("googlenet 64px 160->320@2", 16, 160, 320, 2, 1),
        ("googlenet 64px 192->384@2", 16, 192, 384, 2, 1),
    ];
    for (name, n, cin, cout, size, pad) in cases {
        if !name.starts_with(&only) {
            continue;
        }
        let n = if batch > 0 { batch } else { n };
        let x = Tensor::<f32>::randn([n, cin, size, size]);
        let w = Tensor::<f32>::randn([cout, cin, 3, 3]).mul_scalar(0.1);
        let b = Tensor::<f32>::randn([cout]);
        let opts = ConvOptions::new().padding(pad);
        let out = size + 2 * pad - 2;
        let gy = Tensor::<f32>::randn([n, cout, out, out]);
        let forward = || x.conv2d(&w, Some(&b), opts);
        // The forward pass as a served model runs it (kernels may keep what
        // they derive from the weights between calls).
        let inference = || no_grad(|| x.conv2d(&w, Some(&b), opts));
        let input_grad = || gy.conv_transpose2d(&w, None, opts);
        // A layer's whole training step: forward, then both gradients.
        let (xv, wv) = (x.detach().requires_grad_(), w.detach().requires_grad_());
        let step = || {
            let y = xv.conv2d(&wv, Some(&b), opts);
            let g = grad(
                &[y],
                &[xv.clone(), wv.clone()],
                GradOptions {
                    grad_outputs: Some(vec![gy.clone()]),
                    ..Default::default()
                },
            );
            g.into_iter().next().flatten().expect("an input gradient")
        };
        // The forward pass and the weight gradient (the input needs none).
        let wv2 = w.detach().requires_grad_();
        let weight_step = || {
            let y = x.conv2d(&wv2, Some(&b), opts);
            let g = grad(
                &[y],
                &[wv2.clone()],
                GradOptions {
                    grad_outputs: Some(vec![gy.clone()]),
                    ..Default::default()
                },
            );
            g.into_iter().next().flatten().expect("a weight gradient")
        };
        for (part, f) in [
            ("fwd", &forward as &dyn Fn() -> Tensor<f32>),
            ("inf", &inference),
            ("fwd+dw", &weight_step),
            ("dx", &input_grad),
            ("step", &step),
        ] {
            let (mut auto, mut wino) = (Vec::new(), Vec::new());
            for i in 0..iters + 3 {
                for (set, times) in [(&settings[0], &mut auto), (&settings[1], &mut wino)] {
                    set();
                    let t0 = Instant::now();
                    std::hint::black_box(f());
                    if i >= 3 {
                        times.push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            let ((am, amin), (wm, wmin)) = (stats(auto), stats(wino));
            println!(
                "{:<34} {part:>5} {am:>10.3} {wm:>10.3} {:>6.2}x   {amin:>10.3} {wmin:>10.3} {:>6.2}x",
                format!("{name} ({n}, {cin}->{cout}, {size}, {pad})"),
                am / wm,
                amin / wmin
            );
        }
    }
    set_conv_algorithm(ConvAlgorithm::Auto);
    set_avx512(true);
}
