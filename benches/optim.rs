//! Optimizer-step benchmark, the Rust side of `../shared/bench`'s `optim`
//! case: 62 tensors with the shapes of torchvision's `resnet18()` parameters
//! (11,689,512 values), N(0, 0.05²) values and fixed N(0, 0.001²) gradients.
//! The timed region is one `step()`: Adam (lr 1e-3, betas (0.9, 0.999),
//! eps 1e-8) and SGD (lr 0.01, momentum 0.9). Median of the timed steps after
//! the warm-up. The step is memory-bound (Adam reads four and writes three
//! 47 MB arrays).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench optim` (options: `--warmup N --iters N`).
//! PyTorch: `PY=$(bash ../shared/bench/setup.sh); $PY ../shared/bench/torch_reference.py --case optim`.

mod common;
use common::*;

use autograd::{manual_seed, Tensor};
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

/// The parameter shapes of torchvision's `resnet18()`, in `parameters()` order.
fn resnet18_shapes() -> Vec<Vec<usize>> {
    let mut s: Vec<Vec<usize>> = vec![vec![64, 3, 7, 7], vec![64], vec![64]];
    let mut cin = 64;
    for (layer, cout) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let c_in = if block == 0 { cin } else { cout };
            s.extend([vec![cout, c_in, 3, 3], vec![cout], vec![cout]]);
            s.extend([vec![cout, cout, 3, 3], vec![cout], vec![cout]]);
            if block == 0 && layer > 0 {
                s.extend([vec![cout, cin, 1, 1], vec![cout], vec![cout]]); // downsample
            }
        }
        cin = cout;
    }
    s.extend([vec![1000, 512], vec![1000]]);
    s
}

/// Fresh parameters with their fixed gradients (the same values every call).
fn parameters(shapes: &[Vec<usize>]) -> Vec<Tensor> {
    manual_seed(0);
    let values: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(s.clone()) * 0.05)
        .collect();
    let grads: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(s.clone()) * 1e-3)
        .collect();
    values
        .into_iter()
        .zip(grads)
        .map(|(v, g)| {
            let p = v.detach().requires_grad_();
            p.set_grad(Some(g));
            p
        })
        .collect()
}

fn main() {
    // RAYON_NUM_THREADS threads, this one among them; malloc primed as in
    // the PyTorch script (see ../shared/bench/README.md).
    autograd::set_num_threads(0).expect("compute pool");
    let (warmup, iters) = (arg("--warmup", 5), arg("--iters", 30));
    let shapes = resnet18_shapes();
    let numel: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    assert_eq!(
        (shapes.len(), numel),
        (62, 11_689_512),
        "resnet18's parameters"
    );
    println!(
        "threads {}, {} tensors, {numel} values",
        rayon::current_num_threads(),
        shapes.len()
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9}",
        "case", "median ms", "min", "max"
    );

    let params = parameters(&shapes);
    let mut adam = Adam::new(
        params,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let (med, min, max) = time_ms(warmup, iters, || adam.step());
    println!("{:<36} {med:>9.2} {min:>9.2} {max:>9.2}", "Adam lr 1e-3");
    drop(adam);

    let params = parameters(&shapes);
    let mut sgd = Sgd::new(
        params,
        SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            ..Default::default()
        },
    );
    let (med, min, max) = time_ms(warmup, iters, || sgd.step());
    println!(
        "{:<36} {med:>9.2} {min:>9.2} {max:>9.2}",
        "SGD lr 0.01 momentum 0.9"
    );
}
