//! Step 7 — ensembles: several networks vote better than one.
//!
//! Trains `--models` DeepConvNets that differ only in their seed (initial
//! weights, shuffling, dropout), then averages their predicted class
//! probabilities on the MNIST test images. Each network makes its own
//! mistakes, so the average makes fewer: printed and in `ensemble.csv`, each
//! model's test accuracy and that of the ensemble of the first k models,
//! drawn in `ensemble.png`.
//!
//! ```text
//! cargo run --release --example 07_ensemble
//! cargo run --release --example 07_ensemble -- --models 10 --epochs 20
//! ```
//!
//! Options: `--models N` (5) `--epochs N` (5) `--train-subset N` (60,000)
//! `--test-subset N` (10,000) `--seed S` (first seed; model k uses S + k)
//! `--out DIR` (runs/ensemble) `--quick` (3 models, 1 epoch on 300 training
//! and 200 test images).

use std::path::PathBuf;
use std::sync::Arc;

use autograd::manual_seed;
use dlfs::tools::{
    argmax, plot_series_png, predict, train_epoch, Args, Curve, Failure, MetricsCsv,
};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Dtype, Module};
use optim::{Adam, AdamConfig};

/// Percent of rows of `probs` whose largest probability is at the label.
fn accuracy(probs: &[Vec<f32>], labels: &[usize]) -> f64 {
    let correct = probs
        .iter()
        .zip(labels)
        .filter(|(p, &l)| argmax(p) == l)
        .count();
    100.0 * correct as f64 / labels.len().max(1) as f64
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let n_models: usize = args.get("--models", if quick { 3 } else { 5 });
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 5 });
    let train_n: usize = args.get("--train-subset", if quick { 300 } else { 60_000 });
    let test_n: usize = args.get("--test-subset", if quick { 200 } else { 10_000 });
    let seed: u64 = args.get("--seed", 0);
    let out = PathBuf::from(args.get("--out", "runs/ensemble".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    if n_models == 0 {
        return Err(Failure::msg("--models: an ensemble needs at least 1 model"));
    }
    std::fs::create_dir_all(&out)?;

    let train: Arc<dyn ImageDataset> =
        Arc::new(Subset::first(Arc::new(Mnist::load_default(true)?), train_n));
    let test: Arc<dyn ImageDataset> =
        Arc::new(Subset::first(Arc::new(Mnist::load_default(false)?), test_n));
    let test_loader = DataLoader::new(test.clone(), 500);
    println!(
        "{n_models} DeepConvNets, {epochs} epoch(s) each on {} images; tested on {} images",
        train.len(),
        test.len()
    );

    let mut csv = MetricsCsv::new(
        out.join("ensemble.csv"),
        &["model", "seed", "model_test_acc", "ensemble_test_acc"],
    );
    let mut summed: Vec<Vec<f32>> = Vec::new(); // the sum of the members' probabilities
    let mut labels = Vec::new();
    for k in 1..=n_models {
        // A member: its own seed for weights, dropout and shuffling.
        let member_seed = seed + k as u64 - 1;
        manual_seed(member_seed);
        let model = DeepConvNet::new(DeepConvNetConfig::default());
        let mut opt = Adam::new(model.parameters(), AdamConfig::default());
        let loader = DataLoader::new(train.clone(), 100)
            .shuffle(true)
            .seed(member_seed)
            .drop_last(true);
        for epoch in 1..=epochs {
            let fit = train_epoch(&model, &mut opt, &loader, epoch, epochs);
            println!("model {k} (seed {member_seed})  epoch {epoch}/{epochs}  train loss {:.4} acc {:.2}%", fit.mean_loss(), fit.accuracy());
        }
        model.save(&out.join(format!("model_{k}.safetensors")), Dtype::F32)?;

        // Its probabilities, added to the ensemble's.
        let (probs, y) = predict(&model, &test_loader);
        if summed.is_empty() {
            summed = vec![vec![0.0; probs[0].len()]; probs.len()];
            labels = y;
        }
        for (total, p) in summed.iter_mut().zip(&probs) {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        let (single, ensemble) = (accuracy(&probs, &labels), accuracy(&summed, &labels));
        println!(
            "model {k}: test accuracy {single:.2}%; ensemble of models 1..={k}: {ensemble:.2}%"
        );
        csv.push(&[k as f64, member_seed as f64, single, ensemble])?;
    }
    let singles = csv.column("model_test_acc");
    let mean = singles.iter().sum::<f64>() / singles.len().max(1) as f64;
    let ensemble = csv
        .column("ensemble_test_acc")
        .last()
        .copied()
        .unwrap_or(0.0);
    println!("mean single-model accuracy {mean:.2}%, ensemble of {n_models}: {ensemble:.2}% ({:+.2} points)", ensemble - mean);
    let points = |column: &str| -> Vec<(f64, f64)> {
        csv.column("model")
            .into_iter()
            .zip(csv.column(column))
            .collect()
    };
    plot_series_png(
        &out.join("ensemble.png"),
        "MNIST: members and their ensemble",
        "k (members)",
        &[(
            "test accuracy (%)",
            vec![
                Curve::new("member k alone", points("model_test_acc")),
                Curve::new("ensemble of members 1..k", points("ensemble_test_acc")),
            ],
        )],
    )?;
    println!(
        "wrote {}/{{ensemble.csv, ensemble.png, model_1..{n_models}.safetensors}}",
        out.display()
    );
    Ok(())
}
