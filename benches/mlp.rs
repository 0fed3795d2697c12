//! MLP training-step benchmark, the Rust side of `../shared/bench`'s `mlp` case:
//! `nn::Linear`(784,100)-ReLU-Linear(100,100)-ReLU-Linear(100,10) (as torch.nn.Linear: weight
//! `[out, in]`, one fused `linear` op), PyTorch's default
//! init, a fixed batch of 100 N(0,1) inputs with random labels; one step is
//! zero_grad, forward, mean softmax cross-entropy, backward, `optim::Sgd` step (lr 0.1),
//! as torch.optim.SGD in the PyTorch script.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench mlp` (options: `--warmup N --iters N`).

mod common;
use common::*;

use std::time::Instant;

use autograd::{manual_seed, Tensor};
use nn::{Linear, LinearConfig, Module};
use optim::{Optimizer, Sgd, SgdConfig};

fn main() {
    // RAYON_NUM_THREADS threads, this one among them; malloc primed as in
    // the PyTorch script (see ../shared/bench/README.md).
    autograd::set_num_threads(0).expect("compute pool");
    let (warmup, iters) = (arg("--warmup", 100), arg("--iters", 500));
    manual_seed(0);
    let layers = [
        Linear::new(LinearConfig::new(784, 100)),
        Linear::new(LinearConfig::new(100, 100)),
        Linear::new(LinearConfig::new(100, 10)),
    ];
    let x = Tensor::randn([100, 784]);
    let labels: Vec<usize> = (0..100).map(|i| (i * 7 + 3) % 10).collect();
    let params = layers.iter().flat_map(|l| l.parameters()).collect();
    let mut opt = Sgd::new(
        params,
        SgdConfig {
            lr: 0.1,
            ..Default::default()
        },
    );

    let mut step = || {
        opt.zero_grad();
        let h = layers[0].forward(&x).relu();
        let h = layers[1].forward(&h).relu();
        let loss = layers[2].forward(&h).cross_entropy(&labels);
        loss.backward();
        opt.step();
        loss
    };

    for _ in 0..warmup {
        step();
    }
    let mut times = Vec::with_capacity(iters);
    let mut loss = 0.0;
    for _ in 0..iters {
        let t0 = Instant::now();
        loss = step().item();
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = times[times.len() / 2];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "threads {}  mlp 784-100-100-10 train step b100 (SGD): median {:.1} steps/s (min {:.1}, max {:.1}); {:.3} ms/step (mean {:.3}); final loss {loss:.4}",
        rayon::current_num_threads(),
        1.0 / med,
        1.0 / times[times.len() - 1],
        1.0 / times[0],
        med * 1e3,
        mean * 1e3
    );
}
