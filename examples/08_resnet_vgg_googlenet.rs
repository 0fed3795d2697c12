//! Step 8 — the famous networks of the chapter: ResNet, VGG and GoogLeNet.
//!
//! The three architectures the book presents after DeepConvNet, built with
//! torchvision's layouts and trained on Fashion-MNIST, whose 28x28 images
//! are padded to the 32x32 these networks are usually given on small data
//! (CIFAR): a CIFAR ResNet-20 (residual blocks, 0.27 M parameters), VGG-11
//! with batch norm and a compact one-layer head (9 M parameters), and
//! GoogLeNet (Inception blocks, no auxiliary heads, 6 M parameters), each with
//! one input channel. It prints the training loss falling every few batches
//! and the test accuracy after each epoch; per model `<model>.csv` and the
//! trained weights `<model>.safetensors`, and `curves.png` with all of them.
//!
//! The recipe is the CIFAR one: SGD with momentum 0.9 and weight decay
//! 5e-4, the learning rate annealed on a cosine from `--lr` to 0 over the
//! run, batches of 128, and augmentation: a random 32x32 crop of the image
//! padded by 4 pixels and a left-right flip (clothes are symmetric; digits
//! would not be), after normalising with Fashion-MNIST's mean and deviation.
//! `--augment crop,flip,erase` adds random erasing of a rectangle.
//! `--warmup N` first raises the rate linearly from a tenth of `--lr` over N
//! epochs (VGG-11-BN at 0.1 from the first step learns slowly), then
//! anneals it on the cosine over the remaining epochs.
//!
//! `--tta` also scores the trained network with test-time augmentation: its
//! probabilities for each test image averaged with those for the mirrored
//! image (the flip it was trained with), one network, two forward passes.
//! `--weights FILE` starts from saved weights; with `--epochs 0` it only
//! evaluates them.
//!
//! These are far bigger than DeepConvNet: on a laptop CPU expect minutes per
//! epoch per network at the default sizes.
//!
//! Fashion-MNIST comes from Debian's `dataset-fashion-mnist`
//! (`/usr/share/datasets/fashion-mnist`); without it, `--quick` runs on the
//! 200-image sample in `examples/data/fashion-mnist-sample/` and a full run
//! stops, naming the package.
//!
//! ```text
//! cargo run --release --example 08_resnet_vgg_googlenet
//! cargo run --release --example 08_resnet_vgg_googlenet -- --model resnet20 --epochs 30 --augment crop,flip,erase
//! cargo run --release --example 08_resnet_vgg_googlenet -- --model resnet20 --epochs 0 --weights runs/famous_networks/resnet20.safetensors --tta
//! ```
//!
//! Options: `--model resnet20|vgg11|googlenet|all` (all; also resnet32|resnet44|resnet56) `--epochs N` (12)
//! `--train-subset N` (60,000) `--test-subset N` (10,000) `--batch N` (128)
//! `--optimizer sgd|adam` (sgd) `--lr F` (0.1 for SGD, 0.001 for Adam)
//! `--weight-decay F` (5e-4 for SGD, 0 for Adam) `--schedule cosine|none`
//! (cosine) `--warmup N` (0 epochs) `--augment LIST` (crop,flip; erase also; or none) `--seed S` `--out DIR`
//! (runs/famous_networks) `--tta` `--weights FILE` (one network) `--conv
//! auto|fastest|winograd|winograd4` (auto; `fastest`: Winograd F(4x4, 3x3)
//! and the 2x2 planes as one dense product,
//! `autograd::ConvAlgorithm::Fastest`; the accuracies in the README were
//! measured with `auto`) `--quick` (1 epoch on 64 training and 32 test
//! images, batches of 16).

use std::path::PathBuf;
use std::sync::Arc;

use autograd::manual_seed;
use dlfs::tools::{
    argmax, evaluate, plot_curves_png, predict, train::count_correct, Args, Curve, EpochProgress,
    Failure, MetricsCsv,
};
use models::data::transforms::{
    Compose, Normalize, Pad, RandomCrop, RandomErasing, RandomHorizontalFlip,
};
use models::data::{DataLoader, Dataset, ImageDataset, Subset};
use models::{cifar_resnet, vgg, GoogLeNet, GoogLeNetConfig, VggConfig, VggKind};
use nn::{Dtype, Module};
use optim::lr_scheduler::cosine::{CosineAnnealingLr, CosineAnnealingLrConfig};
use optim::lr_scheduler::LrScheduler;
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use optim::{LinearLr, LinearLrConfig, SequentialLr};

const MODELS: [&str; 3] = ["resnet20", "vgg11", "googlenet"];

/// Deeper CIFAR ResNets (6n + 2 layers), chosen by name only: `all` stays the three above.
const DEEPER_RESNETS: [&str; 3] = ["resnet32", "resnet44", "resnet56"];

/// Epochs of a full run.
const EPOCHS: usize = 12;

/// Fashion-MNIST's pixel mean and standard deviation (training set, values in [0, 1]).
const FASHION_MEAN: f32 = 0.2860;
const FASHION_STD: f32 = 0.3530;

/// The network `name` (one of [`MODELS`] or [`DEEPER_RESNETS`]), for 1-channel
/// 32x32 images and 10 classes.
fn build(name: &str) -> Box<dyn Module> {
    match name {
        resnet if resnet.starts_with("resnet") => {
            let depth = resnet["resnet".len()..].parse().expect("a listed depth");
            Box::new(cifar_resnet(depth, 10, 1))
        }
        "vgg11" => Box::new(vgg(VggConfig::new(VggKind::Vgg11, true)
            .num_classes(10)
            .in_channels(1)
            .compact_head())),
        _ => Box::new(GoogLeNet::new(
            GoogLeNetConfig::default()
                .num_classes(10)
                .in_channels(1)
                .aux_logits(false),
        )),
    }
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let which: String = args.get("--model", "all".to_string());
    let epochs: usize = args.get("--epochs", if quick { 1 } else { EPOCHS });
    let train_n: usize = args.get("--train-subset", if quick { 64 } else { 60_000 });
    let test_n: usize = args.get("--test-subset", if quick { 32 } else { 10_000 });
    let batch: usize = args.get("--batch", if quick { 16 } else { 128 });
    let optimizer: String = args.get("--optimizer", "sgd".to_string());
    let sgd = match optimizer.as_str() {
        "sgd" => true,
        "adam" => false,
        other => {
            return Err(Failure::msg(format!(
                "--optimizer: unknown optimizer '{other}' (sgd or adam)"
            )))
        }
    };
    let lr: f64 = args.get("--lr", if sgd { 0.1 } else { 1e-3 });
    let weight_decay: f64 = args.get("--weight-decay", if sgd { 5e-4 } else { 0.0 });
    let schedule: String = args.get("--schedule", "cosine".to_string());
    if !["cosine", "none"].contains(&schedule.as_str()) {
        return Err(Failure::msg(format!(
            "--schedule: unknown schedule '{schedule}' (cosine or none)"
        )));
    }
    let warmup: usize = args.get("--warmup", 0);
    let augment: String = args.get("--augment", "crop,flip".to_string());
    let seed: u64 = args.get("--seed", 0);
    let tta = args.flag("--tta");
    let weights: Option<PathBuf> = args.opt("--weights");
    let out = PathBuf::from(args.get("--out", "runs/famous_networks".to_string()));
    let conv: String = args.get("--conv", "auto".to_string());
    args.finish(); // --help, or an unknown option: say so before any work
    let conv: autograd::ConvAlgorithm = conv
        .parse()
        .map_err(|e| Failure::msg(format!("--conv: {e}")))?;
    autograd::set_conv_algorithm(conv);
    let names: Vec<&str> = match which.as_str() {
        "all" => MODELS.to_vec(),
        one if MODELS.contains(&one) || DEEPER_RESNETS.contains(&one) => vec![one],
        other => {
            let known: Vec<&str> = MODELS.iter().chain(&DEEPER_RESNETS).copied().collect();
            return Err(Failure::msg(format!(
                "--model: unknown network '{other}' ({} or all)",
                known.join(", ")
            )));
        }
    };
    if weights.is_some() && names.len() != 1 {
        return Err(Failure::msg(
            "--weights: name the one network they belong to with --model",
        ));
    }
    std::fs::create_dir_all(&out)?;

    // Fashion-MNIST, padded with 2 black pixels on each side (1x32x32), then
    // the training images augmented and all of them normalised.
    let (fashion, fashion_test) = dlfs::tools::fashion_mnist(quick)?;
    let train: Arc<dyn ImageDataset> = Arc::new(Subset::first(Arc::new(fashion), train_n));
    let test: Arc<dyn ImageDataset> = Arc::new(Subset::first(Arc::new(fashion_test), test_n));
    let normalize = || Normalize::new([FASHION_MEAN], [FASHION_STD]);
    let mut train_transform = Compose::new().then(Pad::new(2));
    for step in augment.split(',').filter(|s| *s != "none") {
        train_transform = match step {
            "crop" => train_transform.then(RandomCrop::new(32, 4)),
            "flip" => train_transform.then(RandomHorizontalFlip::new(0.5)),
            "erase" => train_transform,
            other => {
                return Err(Failure::msg(format!(
                    "--augment: unknown augmentation '{other}' (crop, flip, erase, or none)"
                )))
            }
        };
    }
    train_transform = train_transform.then(normalize());
    if augment.split(',').any(|s| s == "erase") {
        // After normalising, as torchvision's recipes: the erased block is the mean.
        train_transform = train_transform.then(RandomErasing::new(0.5));
    }
    let train_loader = DataLoader::new(train.clone(), batch)
        .shuffle(true)
        .seed(seed)
        .drop_last(true)
        .transform(train_transform);
    let test_loader = DataLoader::new(test.clone(), 200)
        .transform(Compose::new().then(Pad::new(2)).then(normalize()));
    let mirrored_test_loader = DataLoader::new(test.clone(), 200).transform(
        Compose::new()
            .then(Pad::new(2))
            .then(RandomHorizontalFlip::new(1.0))
            .then(normalize()),
    );
    let steps = train_loader.len();
    let log_every = (steps / 10).max(1);
    println!("Fashion-MNIST padded to 32x32: {} training images ({steps} batches of {batch}), {} test images", train.len(), test.len());

    let header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "epoch_seconds",
        "images_per_second",
    ];
    let (mut loss_curves, mut acc_curves) = (Vec::new(), Vec::new());
    let trained = names.clone();
    for name in names {
        manual_seed(seed);
        let model = build(name);
        if let Some(path) = &weights {
            model.load(path, true)?;
            println!("{name}: weights from {}", path.display());
        }
        let mut opt: Box<dyn Optimizer> = if sgd {
            Box::new(Sgd::new(
                model.parameters(),
                SgdConfig {
                    lr,
                    momentum: 0.9,
                    weight_decay,
                    ..Default::default()
                },
            ))
        } else {
            Box::new(Adam::new(
                model.parameters(),
                AdamConfig {
                    lr,
                    weight_decay,
                    ..Default::default()
                },
            ))
        };
        // The learning rate follows a cosine from `lr` to 0, stepped every
        // batch, after an optional linear warm-up from lr / 10.
        let mut sched: Option<Box<dyn LrScheduler>> =
            (schedule == "cosine" && epochs > 0).then(|| {
                let warm = warmup.min(epochs - 1) * steps;
                if warm == 0 {
                    let cosine = CosineAnnealingLrConfig::new(epochs * steps);
                    return Box::new(CosineAnnealingLr::new(opt.as_mut(), cosine))
                        as Box<dyn LrScheduler>;
                }
                let ramp = LinearLrConfig {
                    start_factor: 0.1,
                    total_iters: warm,
                    ..Default::default()
                };
                let ramp = LinearLr::new(opt.as_mut(), ramp);
                let cosine = CosineAnnealingLrConfig::new(epochs * steps - warm);
                let cosine = CosineAnnealingLr::new(opt.as_mut(), cosine);
                Box::new(SequentialLr::new(
                    opt.as_mut(),
                    vec![Box::new(ramp), Box::new(cosine)],
                    vec![warm],
                ))
            });
        println!(
            "\n{name}: {} parameters, {optimizer} lr {lr} weight decay {weight_decay}, schedule {schedule} (warm-up {warmup} epochs), augmentation {augment}",
            model.num_parameters()
        );
        let mut metrics = MetricsCsv::new(out.join(format!("{name}.csv")), &header);
        let mut loss_points = Vec::new(); // (epoch as a fraction, mean loss of the last batches)
        for epoch in 1..=epochs {
            model.train();
            let mut bar = EpochProgress::new(epoch, epochs, steps);
            let mut recent = Vec::new();
            for (i, b) in train_loader.epoch(epoch as u64).enumerate() {
                opt.zero_grad();
                let logits = model.forward(b.images());
                let loss = logits.cross_entropy(b.labels());
                loss.backward();
                opt.step();
                if let Some(sched) = sched.as_mut() {
                    sched.step(opt.as_mut());
                }
                bar.batch(
                    loss.item() as f64,
                    count_correct(&logits, b.labels()),
                    b.labels().len(),
                );
                recent.push(loss.item() as f64);
                if (i + 1) % log_every == 0 || i + 1 == steps {
                    let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                    let at = epoch as f64 - 1.0 + (i + 1) as f64 / steps as f64;
                    bar.println(format!(
                        "  {name} epoch {epoch} batch {:4}/{steps}  loss {mean:.4}",
                        i + 1
                    ));
                    loss_points.push((at, mean));
                    recent.clear();
                }
            }
            bar.finish();
            let ev = evaluate(model.as_ref(), &test_loader, true);
            println!(
                "{name} epoch {epoch}/{epochs}: train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  ({:.0} s, {:.0} img/s)",
                bar.mean_loss(),
                bar.accuracy(),
                ev.loss,
                ev.accuracy,
                bar.seconds(),
                bar.images_per_second()
            );
            metrics.push(&[
                epoch as f64,
                bar.mean_loss(),
                bar.accuracy(),
                ev.loss,
                ev.accuracy,
                bar.seconds(),
                bar.images_per_second(),
            ])?;
        }
        if tta || epochs == 0 {
            let ev = evaluate(model.as_ref(), &test_loader, false);
            print!("{name}: test accuracy {:.2}%", ev.accuracy);
            if tta {
                // One network, two views of each image: its probabilities averaged.
                let (plain, labels) = predict(model.as_ref(), &test_loader);
                let (mirrored, _) = predict(model.as_ref(), &mirrored_test_loader);
                let correct = plain
                    .iter()
                    .zip(&mirrored)
                    .zip(&labels)
                    .filter(|((p, m), &label)| {
                        let mean: Vec<f32> = p.iter().zip(*m).map(|(a, b)| 0.5 * (a + b)).collect();
                        argmax(&mean) == label
                    })
                    .count();
                print!(
                    ", with flip test-time augmentation {:.2}%",
                    100.0 * correct as f64 / labels.len().max(1) as f64
                );
            }
            println!();
        }
        if epochs == 0 {
            continue;
        }
        model.save(&out.join(format!("{name}.safetensors")), Dtype::F32)?;
        loss_curves.push(Curve::new(name, loss_points));
        acc_curves.push(Curve::new(
            name,
            metrics
                .column("epoch")
                .into_iter()
                .zip(metrics.column("test_acc"))
                .collect(),
        ));
    }
    if epochs == 0 {
        return Ok(());
    }
    plot_curves_png(
        &out.join("curves.png"),
        &format!("{} on Fashion-MNIST (32x32)", trained.join(", ")),
        &[
            ("train loss", loss_curves),
            ("test accuracy (%)", acc_curves),
        ],
    )?;
    println!(
        "wrote {}/{{<model>.csv, <model>.safetensors, curves.png}}",
        out.display()
    );
    Ok(())
}
