//! Training-step throughput of the chapter's networks, the Rust side of
//! `../shared/bench`'s `models` case: one step (zero_grad, forward,
//! cross-entropy, backward, optimizer step) on a fixed N(0,1) batch with
//! random labels; images/s = batch / median step time.
//!
//! - DeepConvNet, 1x28x28, batch 100, Adam lr 1e-3 (and inference, eval mode, batch 100)
//! - ResNet-18 (ImageNet stem), 3x32x32, batch 64, SGD lr 0.01 momentum 0.9
//! - VGG-16-BN with a 1x1 average pool and Linear(512, 10), 3x32x32, batch 32, SGD
//! - GoogLeNet without auxiliary heads, 3x64x64, batch 16, SGD
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench models` (options: `--warmup N --iters N --only NAME`).

mod common;
use common::*;

use autograd::{manual_seed, no_grad, Tensor};
use models::{
    resnet, vgg, DeepConvNet, DeepConvNetConfig, GoogLeNet, GoogLeNetConfig, ResNetConfig,
    ResNetKind, VggConfig, VggKind,
};
use nn::Module;
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn report(name: &str, batch: usize, (med, min, max): (f64, f64, f64)) {
    let ips = |ms: f64| batch as f64 / (ms / 1e3);
    println!(
        "{name:<44} {:>9.1} {:>9.1} {:>9.1} img/s   ({med:.1} ms/step)",
        ips(med),
        ips(max),
        ips(min)
    );
}

fn train_case(
    name: &str,
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    shape: [usize; 4],
    warmup: usize,
    iters: usize,
) {
    let x = Tensor::randn(shape);
    let labels: Vec<usize> = (0..shape[0]).map(|i| (i * 7 + 3) % 10).collect();
    model.train();
    let t = time_ms(warmup, iters, || {
        opt.zero_grad();
        let loss = model.forward(&x).cross_entropy(&labels);
        loss.backward();
        opt.step();
    });
    report(name, shape[0], t);
}

fn main() {
    // RAYON_NUM_THREADS threads, this one among them; malloc primed as in
    // the PyTorch script (see ../shared/bench/README.md).
    autograd::set_num_threads(0).expect("compute pool");
    let (warmup, iters) = (arg("--warmup", 5), arg("--iters", 20));
    let only = arg_str("--only");
    manual_seed(0);
    println!("threads {}", rayon::current_num_threads());
    println!("{:<44} {:>9} {:>9} {:>9}", "case", "median", "min", "max");
    if only.is_empty() || only == "deepconvnet" {
        let net = DeepConvNet::new(DeepConvNetConfig::default());
        let mut opt = Adam::new(
            net.parameters(),
            AdamConfig {
                lr: 1e-3,
                ..Default::default()
            },
        );
        train_case(
            "DeepConvNet train 1x28x28 b100 Adam",
            &net,
            &mut opt,
            [100, 1, 28, 28],
            warmup,
            iters,
        );
        net.eval();
        let x = Tensor::randn([100, 1, 28, 28]);
        let t = time_ms(warmup, iters, || {
            no_grad(|| net.forward(&x));
        });
        report("DeepConvNet inference 1x28x28 b100", 100, t);
    }
    let sgd = |params| {
        Sgd::new(
            params,
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            },
        )
    };
    if only.is_empty() || only == "resnet18" {
        let net = resnet(ResNetConfig::new(ResNetKind::ResNet18).num_classes(10));
        let mut opt = sgd(net.parameters());
        train_case(
            "ResNet-18 train 3x32x32 b64 SGD",
            &net,
            &mut opt,
            [64, 3, 32, 32],
            warmup,
            iters,
        );
    }
    if only.is_empty() || only == "vgg16bn" {
        let net = vgg(VggConfig::new(VggKind::Vgg16, true)
            .num_classes(10)
            .compact_head());
        let mut opt = sgd(net.parameters());
        train_case(
            "VGG-16-BN train 3x32x32 b32 SGD",
            &net,
            &mut opt,
            [32, 3, 32, 32],
            warmup,
            iters,
        );
    }
    if only.is_empty() || only == "googlenet" {
        let net = GoogLeNet::new(GoogLeNetConfig::default().num_classes(10).aux_logits(false));
        let mut opt = sgd(net.parameters());
        train_case(
            "GoogLeNet train 3x64x64 b16 SGD",
            &net,
            &mut opt,
            [16, 3, 64, 64],
            warmup,
            iters,
        );
    }
}
