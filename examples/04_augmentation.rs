//! Step 4 — data augmentation: more training images from the ones we have.
//!
//! Small random rotations (up to 10 degrees), shifts (up to 10%) and zooms
//! (0.9 to 1.1) leave a digit the same digit, so each epoch the network sees
//! slightly different images. First `augmented.png` shows what that means:
//! each row is one training digit, the original and then the versions the
//! data loader hands out in successive epochs. Then DeepConvNet is trained
//! twice on the same images — same seed, same epochs — without and with
//! augmentation, for each of `--seeds` seeds, and the test accuracies are
//! reported: per seed and as mean and spread (printed and in `metrics.csv`,
//! curves in `curves.png`). The fewer the training images, the larger the
//! gain.
//!
//! ```text
//! cargo run --release --example 04_augmentation
//! cargo run --release --example 04_augmentation -- --train-subset 60000 --epochs 20
//! ```
//!
//! Both runs use Adam (0.001) annealed on a cosine to 0 over the epochs
//! (`--schedule none` keeps it constant, as the book).
//!
//! Options: `--epochs N` (20) `--schedule cosine|none` (cosine)
//! `--train-subset N` (10,000) `--test-subset N` (10,000) `--seeds N` (3)
//! `--seed S` (the first seed) `--show N` (digits drawn, 8) `--out DIR`
//! (runs/augmentation) `--quick` (1 epoch on 300 training and 200 test
//! images, 1 seed).

use std::path::PathBuf;
use std::sync::Arc;

use autograd::manual_seed;
use dlfs::tools::{
    evaluate, image_grid_png, metrics, plot_curves_png, Args, Curve, EpochEnd, Failure, Fit,
    GridImage, MetricsCsv, Position,
};
use models::data::transforms::RandomAffine;
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::Module;
use optim::lr_scheduler::cosine::{CosineAnnealingLr, CosineAnnealingLrConfig};
use optim::{Adam, AdamConfig};

const HEADER: [&str; 7] = [
    "seed",
    "augmented",
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
];

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 20 });
    let schedule: String = args.get("--schedule", "cosine".to_string());
    if !["cosine", "none"].contains(&schedule.as_str()) {
        return Err(Failure::msg(format!(
            "--schedule: unknown schedule '{schedule}' (cosine or none)"
        )));
    }
    let train_n: usize = args.get("--train-subset", if quick { 300 } else { 10_000 });
    let test_n: usize = args.get("--test-subset", if quick { 200 } else { 10_000 });
    let seed: u64 = args.get("--seed", 0);
    let n_seeds: u64 = args.get("--seeds", if quick { 1 } else { 3 });
    let show: usize = args.get("--show", 8);
    let out = PathBuf::from(args.get("--out", "runs/augmentation".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    if n_seeds == 0 {
        return Err(Failure::msg("--seeds: at least 1"));
    }
    std::fs::create_dir_all(&out)?;

    let train: Arc<dyn ImageDataset> =
        Arc::new(Subset::first(Arc::new(Mnist::load_default(true)?), train_n));
    let test: Arc<dyn ImageDataset> =
        Arc::new(Subset::first(Arc::new(Mnist::load_default(false)?), test_n));
    let test_loader = DataLoader::new(test.clone(), 500);

    // The augmentation, as torchvision's RandomAffine; the loader applies it
    // on its background threads, with random numbers drawn from (seed, epoch, image).
    let augment = RandomAffine::new(10.0).translate(0.1, 0.1).scale(0.9, 1.1);
    let loader = |seed: u64, augmented: bool| {
        let plain = DataLoader::new(train.clone(), 100)
            .shuffle(true)
            .seed(seed)
            .drop_last(true);
        if augmented {
            plain.transform(augment)
        } else {
            plain
        }
    };
    let augmented_loader = loader(seed, true);

    // 1. The picture: per row, one digit and what epochs 1..7 make of it.
    let versions: u64 = 7;
    let mut cells = Vec::new();
    for i in 0..show.min(train.len()) {
        let (original, label) = train.get(i);
        cells.push(GridImage::from_image(original, format!("original {label}")));
        for epoch in 1..=versions {
            cells.push(GridImage::from_image(
                augmented_loader.sample(epoch, i).0,
                format!("epoch {epoch}"),
            ));
        }
    }
    image_grid_png(
        &out.join("augmented.png"),
        "RandomAffine: ±10°, ±10% shift, 0.9-1.1 zoom",
        &cells,
        versions as usize + 1,
        3,
    )?;
    println!(
        "drew {} digits with {versions} augmented versions each in {}",
        show.min(train.len()),
        out.join("augmented.png").display()
    );

    // 2. The experiment: the same training without and with augmentation, per seed.
    println!(
        "training DeepConvNet on {} images for {epochs} epochs (schedule {schedule}), tested on {} images, seeds {seed}..={}",
        train.len(),
        test.len(),
        seed + n_seeds - 1
    );
    let mut metrics = MetricsCsv::new(out.join("metrics.csv"), &HEADER);
    let mut finals: [Vec<f64>; 2] = [Vec::new(), Vec::new()]; // without, with
    for run_seed in seed..seed + n_seeds {
        for augmented in [false, true] {
            manual_seed(run_seed); // the same initial weights and dropout masks for both runs
            let model = DeepConvNet::new(DeepConvNetConfig::default());
            let mut opt = Adam::new(model.parameters(), AdamConfig::default());
            let train_loader = loader(run_seed, augmented);
            // Adam's rate annealed on a cosine to 0 over the run (stepped every batch),
            // so that the last epoch's accuracy is not one noisy step's.
            let mut sched = (schedule == "cosine").then(|| {
                CosineAnnealingLr::new(
                    &mut opt,
                    CosineAnnealingLrConfig::new(epochs * train_loader.len()),
                )
            });
            let name = if augmented {
                "with augmentation"
            } else {
                "without augmentation"
            };
            let mut accuracies = Vec::new();
            for epoch in 1..=epochs {
                let mut fit = Fit::new(&model, &mut opt, &train_loader, epochs);
                if let Some(s) = sched.as_mut() {
                    fit = fit.scheduler(s);
                }
                let EpochEnd::Finished(fit) = fit.try_epoch(&Position::start(epoch))? else {
                    unreachable!("no interrupt was given")
                };
                let ev = evaluate(&model, &test_loader, true);
                println!(
                    "seed {run_seed}  {name:>21}  epoch {epoch:2}/{epochs}  train loss {:.4} acc {:.2}%  test acc {:.2}%",
                    fit.mean_loss(),
                    fit.accuracy(),
                    ev.accuracy
                );
                let row = [
                    run_seed as f64,
                    f64::from(u8::from(augmented)),
                    epoch as f64,
                    fit.mean_loss(),
                    fit.accuracy(),
                    ev.loss,
                    ev.accuracy,
                ];
                metrics.push(&row)?;
                accuracies.push(ev.accuracy);
            }
            finals[usize::from(augmented)].push(accuracies.last().copied().unwrap_or(0.0));
        }
    }
    // The curves: per epoch, the mean over the seeds of each condition; test
    // accuracy from epoch 2, where the conditions' differences are visible.
    let (mut loss_curves, mut acc_curves) = (Vec::new(), Vec::new());
    for (augmented, name) in [(0.0, "without augmentation"), (1.0, "with augmentation")] {
        let mean_of = |column: usize, from: usize| -> Vec<(f64, f64)> {
            (from..=epochs)
                .map(|e| {
                    let rows: Vec<&Vec<f64>> = metrics
                        .rows()
                        .iter()
                        .filter(|r| r[1] == augmented && r[2] == e as f64)
                        .collect();
                    let sum: f64 = rows.iter().map(|r| r[column]).sum();
                    (e as f64, sum / rows.len().max(1) as f64)
                })
                .collect()
        };
        loss_curves.push(Curve::new(name, mean_of(3, 1)));
        acc_curves.push(Curve::new(name, mean_of(6, 2.min(epochs))));
    }
    plot_curves_png(
        &out.join("curves.png"),
        &format!("DeepConvNet on MNIST without and with augmentation, mean of {n_seeds} seed(s)"),
        &[
            ("train loss", loss_curves),
            ("test accuracy (%)", acc_curves),
        ],
    )?;
    for (name, accs) in ["without augmentation", "with augmentation"]
        .iter()
        .zip(&finals)
    {
        println!("test accuracy {name}: {}", metrics::spread(accs));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "augmentation changed the final test accuracy by {:+.2} points (mean over {n_seeds} seed(s))",
        mean(&finals[1]) - mean(&finals[0])
    );
    println!(
        "wrote {}/{{augmented.png, metrics.csv, curves.png}}",
        out.display()
    );
    Ok(())
}
