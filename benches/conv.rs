//! Convolution and pooling benchmark, the Rust side of `../shared/bench`'s
//! `conv` case: per call, `y = conv2d(x, w, b)` then the gradients of x, w and b
//! for a fixed random upstream gradient. GFLOP/s = 2 * MACs * 3 / time.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench conv` (options: `--warmup N --iters N --only NAME-PREFIX`).

mod common;
use common::*;

use autograd::{grad, manual_seed, ConvOptions, GradOptions, PoolOptions, Tensor};

fn main() {
    // RAYON_NUM_THREADS threads, this one among them; malloc primed as in
    // the PyTorch script (see ../shared/bench/README.md).
    autograd::set_num_threads(0).expect("compute pool");
    let (warmup, iters) = (arg("--warmup", 5), arg("--iters", 30));
    manual_seed(0);
    println!("threads {}", rayon::current_num_threads());
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "case", "median ms", "min", "max", "GFLOP/s"
    );
    // (name, batch, cin, cout, size, kernel, pad)
    let cases = [
        ("conv1 b100 1->16 28x28 k3 p1", 100, 1, 16, 28, 3, 1),
        ("conv2 b100 16->16 28x28 k3 p1", 100, 16, 16, 28, 3, 1),
        ("conv3 b100 16->32 14x14 k3 p1", 100, 16, 32, 14, 3, 1),
        ("conv4 b100 32->32 14x14 k3 p2", 100, 32, 32, 14, 3, 2),
        ("conv5 b100 32->64 8x8 k3 p1", 100, 32, 64, 8, 3, 1),
        ("conv6 b100 64->64 8x8 k3 p1", 100, 64, 64, 8, 3, 1),
        ("resnet18 3x3 b8 64->64 56x56 k3 p1", 8, 64, 64, 56, 3, 1),
        ("1x1 b8 256->64 56x56 k1 p0", 8, 256, 64, 56, 1, 0),
    ];
    let only = arg_str("--only");
    for (name, b, cin, cout, size, k, pad) in cases {
        if !name.starts_with(&only) {
            continue;
        }
        let x = Tensor::<f32>::randn([b, cin, size, size]).requires_grad_();
        let w = (Tensor::<f32>::randn([cout, cin, k, k]) * 0.1).requires_grad_();
        let bias = Tensor::<f32>::randn([cout]).requires_grad_();
        let opts = ConvOptions::new().padding(pad);
        let out = size + 2 * pad - k + 1;
        let gy = Tensor::<f32>::randn([b, cout, out, out]);
        let (med, min, max) = time_ms(warmup, iters, || {
            let y = x.conv2d(&w, Some(&bias), opts);
            let g = grad(
                &[y],
                &[x.clone(), w.clone(), bias.clone()],
                GradOptions {
                    grad_outputs: Some(vec![gy.clone()]),
                    ..Default::default()
                },
            );
            assert!(g.iter().all(Option::is_some));
        });
        let macs = (b * cout * out * out * cin * k * k) as f64;
        let gflops = 2.0 * macs * 3.0 / (med * 1e-3) / 1e9;
        println!("{name:<44} {med:>9.2} {min:>9.2} {max:>9.2} {gflops:>9.1}");
    }
    let x = Tensor::<f32>::randn([100, 16, 28, 28]).requires_grad_();
    let gy = Tensor::<f32>::randn([100, 16, 14, 14]);
    let (med, min, max) = time_ms(warmup, iters, || {
        let y = x.max_pool2d(PoolOptions::new(2));
        let g = grad(
            &[y],
            &[x.clone()],
            GradOptions {
                grad_outputs: Some(vec![gy.clone()]),
                ..Default::default()
            },
        );
        assert!(g[0].is_some());
    });
    println!(
        "{:<44} {med:>9.2} {min:>9.2} {max:>9.2} {:>9}",
        "max_pool2d 2x2/2 100x16x28x28 fwd+bwd", "-"
    );
}
