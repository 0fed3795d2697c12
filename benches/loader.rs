//! Data-loader benchmark: images/s of loading and augmenting MNIST batches
//! of 100 through the `DataLoader` with ONE background worker, while the
//! calling thread only takes the batches (as a training loop would, minus
//! the training). The target is at least 50,000 images/s, so that loading
//! is never the bottleneck of DeepConvNet training.
//!
//! Also prints the time to load (gunzip, parse, checksum) the training set.
//!
//! Run: `cargo bench --bench loader` (options: `--images N` per
//! configuration, default 60,000 = one epoch; `--workers N`, default 1).

mod common;
use common::*;

use std::sync::Arc;
use std::time::Instant;

use autograd::rng::Generator;
use models::data::transforms::{
    Compose, Normalize, Pad, RandomAffine, RandomCrop, RandomShift, Transform,
};
use models::data::{DataLoader, Dataset, Mnist};

fn main() {
    let (images, workers) = (arg("--images", 60_000), arg("--workers", 1));
    let start = Instant::now();
    let train = Arc::new(Mnist::load_default(true).expect("MNIST ships with the repository"));
    println!(
        "load MNIST train (gunzip + parse + SHA-256): {:.0} ms, {} images",
        start.elapsed().as_secs_f64() * 1e3,
        train.len()
    );

    let configs: Vec<(&str, Option<Box<dyn Transform>>)> = vec![
        ("no transform", None),
        (
            "RandomCrop(28, padding 2) + Normalize",
            Some(Box::new(
                Compose::new()
                    .then(RandomCrop::new(28, 2))
                    .then(Normalize::mnist()),
            )),
        ),
        ("RandomShift(2)", Some(Box::new(RandomShift::new(2)))),
        (
            "RandomAffine(10 deg, translate 0.1, scale 0.9-1.1), bilinear",
            Some(Box::new(
                RandomAffine::new(10.0).translate(0.1, 0.1).scale(0.9, 1.1),
            )),
        ),
        (
            "Pad(2) to 32x32 + RandomAffine(10 deg) + Normalize",
            Some(Box::new(
                Compose::new()
                    .then(Pad::new(2))
                    .then(RandomAffine::new(10.0))
                    .then(Normalize::mnist()),
            )),
        ),
    ];
    println!("batches of 100, shuffled, {workers} background worker(s), {images} images per line");
    for (name, transform) in configs {
        let mut loader = DataLoader::new(train.clone(), 100)
            .shuffle(true)
            .seed(0)
            .num_workers(workers);
        if let Some(t) = transform {
            loader = loader.transform(move |img, rng: &mut Generator| t.apply(img, rng));
        }
        let (mut seen, mut checksum, mut epoch) = (0usize, 0f64, 0);
        let start = Instant::now();
        while seen < images {
            for batch in loader.epoch(epoch) {
                // Touch the batch, as the first layer would.
                checksum += f64::from(batch.images().read().iter().next().copied().unwrap_or(0.0));
                seen += batch.len();
                if seen >= images {
                    break;
                }
            }
            epoch += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<60} {:>9.0} images/s  ({seen} in {:.2} s; {checksum:.1})",
            seen as f64 / secs,
            secs
        );
    }
}
