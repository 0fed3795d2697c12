//! Batch-1 inference latency: one image through the network in eval mode
//! under `no_grad`, as a served model answers one request. Per network,
//! the median and the 99th percentile over `--iters` calls (1,000) after
//! `--warmup` (50), in milliseconds.
//!
//! - DeepConvNet, 1x1x28x28
//! - ResNet-18 (ImageNet stem), 1x3x32x32
//! - GoogLeNet without auxiliary heads, 1x3x64x64
//!
//! Run: `cargo bench --bench latency` (options: `--warmup N --iters N --only NAME`).

mod common;
use common::*;

use std::time::Instant;

use autograd::{manual_seed, no_grad, Tensor};
use models::{
    resnet, DeepConvNet, DeepConvNetConfig, GoogLeNet, GoogLeNetConfig, ResNetConfig, ResNetKind,
};
use nn::Module;

/// Times `iters` single forward passes of `model` on one `shape` image.
fn latency_case(name: &str, model: &dyn Module, shape: [usize; 4], warmup: usize, iters: usize) {
    model.eval();
    let x = Tensor::randn(shape);
    for _ in 0..warmup {
        no_grad(|| model.forward(&x));
    }
    let mut ms: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            no_grad(|| model.forward(&x));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<36} {:>9.3} {:>9.3} {:>9.3} ms",
        at(0.5),
        at(0.99),
        ms[0]
    );
}

fn main() {
    autograd::set_num_threads(0).expect("compute pool");
    let (warmup, iters) = (arg("--warmup", 50), arg("--iters", 1000).max(1));
    let only = arg_str("--only");
    manual_seed(0);
    println!(
        "threads {}, {iters} calls per case",
        rayon::current_num_threads()
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9}",
        "case (batch 1)", "median", "p99", "min"
    );
    if only.is_empty() || only == "deepconvnet" {
        let net = DeepConvNet::new(DeepConvNetConfig::default());
        latency_case("DeepConvNet 1x28x28", &net, [1, 1, 28, 28], warmup, iters);
    }
    if only.is_empty() || only == "resnet18" {
        let net = resnet(ResNetConfig::new(ResNetKind::ResNet18).num_classes(10));
        latency_case("ResNet-18 3x32x32", &net, [1, 3, 32, 32], warmup, iters);
    }
    if only.is_empty() || only == "googlenet" {
        let net = GoogLeNet::new(GoogLeNetConfig::default().num_classes(10).aux_logits(false));
        latency_case("GoogLeNet 3x64x64", &net, [1, 3, 64, 64], warmup, iters);
    }
}
