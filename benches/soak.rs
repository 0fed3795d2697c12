//! Soak test: resident memory (RSS) over long runs, sampled from
//! `/proc/self/statm`, for three loops that a real training job runs for
//! hours:
//!
//! 1. training steps of a small CNN (conv, batch norm, ReLU, max pool,
//!    linear; Adam), 100,000 by default;
//! 2. evaluation of the same CNN under `no_grad`, as many steps;
//! 3. the `DataLoader` with background workers and augmentation over
//!    MNIST's training set, 50 epochs.
//!
//! For each it prints the RSS after the warm-up (the first tenth), the
//! minimum and maximum after it, and the least-squares slope after it (KiB
//! per 10,000 steps or per 10 epochs): flat memory means no leak in the
//! graph, the optimizer state, the kernels' scratch buffers or the loader.
//! Memory, not time: the machine's load does not change the figures.
//!
//! Run: `cargo bench --bench soak` (Linux; options `--steps N`,
//! `--epochs N`, `--workers N`).

mod common;
use common::*;

use std::sync::Arc;

use autograd::{live_nodes, no_grad, Tensor};
use models::data::transforms::{Compose, Normalize, RandomCrop};
use models::data::{DataLoader, Dataset, Mnist};
use nn::{
    BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Flatten, Linear, LinearConfig, MaxPool2d,
    Module, PoolConfig, ReLU, Sequential,
};
use optim::{Adam, AdamConfig, Optimizer};

/// Resident set size in KiB: `/proc/self/statm`'s second field, in pages.
fn rss_kib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's resident field");
    pages * page_kib()
}

/// The page size in KiB, from the `KernelPageSize` of `/proc/self/smaps`
/// (4 on x86-64).
fn page_kib() -> f64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("KernelPageSize:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(4.0)
}

/// RSS samples `(step, KiB)` of one loop, and its summary line.
struct Samples {
    name: &'static str,
    unit: (&'static str, f64),
    points: Vec<(f64, f64)>,
}

impl Samples {
    fn new(name: &'static str, unit: (&'static str, f64)) -> Self {
        Samples {
            name,
            unit,
            points: Vec::new(),
        }
    }

    fn sample(&mut self, at: usize) {
        self.points.push((at as f64, rss_kib()));
    }

    /// RSS after warm-up (the first tenth of the run), min and max after,
    /// least-squares slope after (KiB per `unit`).
    fn report(&self) {
        let total = self.points.last().map_or(0.0, |p| p.0);
        let after: Vec<(f64, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|p| p.0 >= total / 10.0)
            .collect();
        let mib = |k: f64| k / 1024.0;
        let warm = after.first().map_or(0.0, |p| p.1);
        let (lo, hi) = after
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let n = after.len() as f64;
        let (mx, my) = (
            after.iter().map(|p| p.0).sum::<f64>() / n,
            after.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = after.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = after.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        println!(
            "{:<34} start {:6.1} MiB, after warm-up {:6.1} MiB, then min {:6.1} / max {:6.1} MiB, \
             slope {:+7.1} KiB per {} ({} samples); live graph nodes {}",
            self.name,
            mib(self.points.first().map_or(0.0, |p| p.1)),
            mib(warm),
            mib(lo),
            mib(hi),
            slope * self.unit.1,
            self.unit.0,
            after.len(),
            live_nodes(),
        );
    }
}

/// conv(1->8, 3x3, pad 1) BN ReLU maxpool(2) conv(8->16, 3x3) ReLU
/// maxpool(2) flatten linear(16*2*2 -> 10), for 12x12 inputs.
fn small_cnn() -> Sequential {
    Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(1, 8, 3).padding(1)))
        .add(BatchNorm2d::new(BatchNormConfig::new(8)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Conv2d::new(Conv2dConfig::new(8, 16, 3)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Flatten::new(1, -1))
        .add(Linear::new(LinearConfig::new(16 * 2 * 2, 10)))
}

fn main() {
    let (steps, epochs, workers) = (
        arg("--steps", 100_000),
        arg("--epochs", 50),
        arg("--workers", 2),
    );
    autograd::manual_seed(0);
    let every = (steps / 200).max(1);

    // A few fixed batches, cycled: the loop, not the data, is under test.
    let batches: Vec<(Tensor, Vec<usize>)> = (0..8)
        .map(|b| {
            let x = Tensor::randn([16, 1, 12, 12]);
            let y = (0..16).map(|i| (i * 7 + b) % 10).collect();
            (x, y)
        })
        .collect();
    let model = small_cnn();
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());

    let mut train = Samples::new("train (forward, backward, Adam)", ("10k steps", 1e4));
    train.sample(0);
    let mut loss_sum = 0.0;
    for step in 1..=steps {
        let (x, y) = &batches[step % batches.len()];
        opt.zero_grad();
        let loss = model.forward(x).cross_entropy(y);
        loss.backward();
        opt.step();
        loss_sum += f64::from(loss.item());
        if step % every == 0 {
            train.sample(step);
        }
    }
    train.report();
    println!("  mean loss {:.4}", loss_sum / steps as f64);

    model.eval();
    let mut eval = Samples::new("evaluate (no_grad)", ("10k steps", 1e4));
    eval.sample(0);
    let mut correct = 0usize;
    for step in 1..=steps {
        let (x, y) = &batches[step % batches.len()];
        let logits = no_grad(|| model.forward(x));
        let pred = logits.argmax(1, false);
        correct += pred.iter().zip(y).filter(|(p, t)| p == t).count();
        if step % every == 0 {
            eval.sample(step);
        }
    }
    eval.report();
    println!(
        "  accuracy on the cycled batches {:.1}%",
        100.0 * correct as f64 / (steps * 16) as f64
    );

    let data = Arc::new(Mnist::load_default(true).expect("MNIST ships with the repository"));
    let augment = Compose::new()
        .then(RandomCrop::new(28, 2))
        .then(Normalize::mnist());
    let loader = DataLoader::new(data.clone(), 100)
        .shuffle(true)
        .seed(0)
        .num_workers(workers)
        .transform(augment);
    let mut load = Samples::new("DataLoader (workers, augment)", ("10 epochs", 10.0));
    load.sample(0);
    let mut checksum = 0.0f64;
    for epoch in 1..=epochs {
        for batch in loader.epoch(epoch as u64) {
            checksum += f64::from(batch.images().read().iter().next().copied().unwrap_or(0.0));
        }
        load.sample(epoch);
    }
    load.report();
    println!(
        "  {} images per epoch, {workers} workers, checksum {checksum:.1}",
        data.len()
    );
}
