//! Step 5 — transfer learning: what a network learned on one dataset helps
//! on another that has few labels.
//!
//! The convolution layers of a DeepConvNet trained on MNIST digits have
//! learned edge and stroke detectors. Here they are reused for Fashion-MNIST
//! (clothes, same 28x28 format) where only 1,000 labelled images are given
//! (100 per class): the MNIST weights are loaded into a new network, its
//! output layer `fc2` is left freshly initialised (a new head for new
//! classes), the six convolution layers are frozen, and only `fc1` and `fc2`
//! are trained (`--freeze N` freezes only the first N convolutions). The
//! same network trained from scratch on the same 1,000 images is the
//! baseline; both are tested on the 10,000 Fashion-MNIST test images
//! (printed and in `results.csv`).
//!
//! Whether the MNIST features win depends on how many labels there are, on
//! how long the source network trained (its last layers grow specific to
//! digits) and on which layers stay frozen: `--labels`, `--pretrain-epochs`
//! and `--freeze` measure each.
//!
//! ```text
//! cargo run --release --example 02_deep_convnet_mnist     # optional: the MNIST weights it reuses
//! cargo run --release --example 05_transfer_learning
//! ```
//!
//! Without example 02's weights it first pre-trains on MNIST itself
//! (`--pretrain-epochs`, 2). Fashion-MNIST comes from Debian's
//! `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`); without
//! it, `--quick` runs on the 200-image sample in
//! `examples/data/fashion-mnist-sample/` and a full run stops, naming the
//! package.
//!
//! Options: `--pretrained PATH` (runs/deep_convnet/deep_convnet.safetensors)
//! `--pretrain-epochs N` (2) `--labels N` (1,000) `--epochs N` (30)
//! `--freeze N` (convolutions frozen, from conv1: 6; 0 fine-tunes all) `--seed S`
//! `--test-subset N` `--out DIR` (runs/transfer) `--quick` (pre-training on
//! 600 images, 100 labels, 1 epoch, 200 test images).

use std::path::PathBuf;
use std::sync::Arc;

use autograd::manual_seed;
use dlfs::tools::{evaluate, train_epoch, Args, Failure, MetricsCsv};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Dtype, Module, StateDict};
use optim::{Adam, AdamConfig};

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let pretrained = PathBuf::from(args.get(
        "--pretrained",
        "runs/deep_convnet/deep_convnet.safetensors".to_string(),
    ));
    let pretrain_epochs: usize = args.get("--pretrain-epochs", if quick { 1 } else { 2 });
    let labels: usize = args.get("--labels", if quick { 100 } else { 1000 });
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 30 });
    let test_n: usize = args.get("--test-subset", if quick { 200 } else { 10_000 });
    let freeze: usize = args.get("--freeze", 6);
    let seed: u64 = args.get("--seed", 0);
    let out = PathBuf::from(args.get("--out", "runs/transfer".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    std::fs::create_dir_all(&out)?;

    // 1. The source task: MNIST weights, from example 02 or trained here.
    let source = if pretrained.exists() {
        println!("source weights: {} (MNIST)", pretrained.display());
        pretrained
    } else {
        println!(
            "{} not found: pre-training DeepConvNet on MNIST for {pretrain_epochs} epoch(s)",
            pretrained.display()
        );
        let mnist: Arc<dyn ImageDataset> = Arc::new(Mnist::load_default(true)?);
        let mnist: Arc<dyn ImageDataset> = if quick {
            Arc::new(Subset::first(mnist, 600))
        } else {
            mnist
        };
        manual_seed(seed);
        let model = DeepConvNet::new(DeepConvNetConfig::default());
        let mut opt = Adam::new(model.parameters(), AdamConfig::default());
        let loader = DataLoader::new(mnist, 100)
            .shuffle(true)
            .seed(seed)
            .drop_last(true);
        for epoch in 1..=pretrain_epochs {
            let fit = train_epoch(&model, &mut opt, &loader, epoch, pretrain_epochs);
            println!(
                "  MNIST epoch {epoch}/{pretrain_epochs}  train loss {:.4} acc {:.2}%",
                fit.mean_loss(),
                fit.accuracy()
            );
        }
        let path = out.join("pretrained_mnist.safetensors");
        model.save(&path, Dtype::F32)?;
        path
    };

    // 2. The target task: a few labelled Fashion-MNIST images, balanced over the classes.
    let (fashion, fashion_test) = dlfs::tools::fashion_mnist(quick)?;
    let few: Arc<dyn ImageDataset> =
        Arc::new(Subset::per_class(Arc::new(fashion), labels / 10, seed));
    let test: Arc<dyn ImageDataset> = Arc::new(Subset::first(Arc::new(fashion_test), test_n));
    let train_loader = DataLoader::new(few.clone(), 100).shuffle(true).seed(seed);
    let test_loader = DataLoader::new(test.clone(), 500);
    println!(
        "Fashion-MNIST: {} labelled training images, {} test images",
        few.len(),
        test.len()
    );

    // 3a. Transfer: MNIST weights without the old head, convolutions frozen.
    manual_seed(seed);
    let transfer = DeepConvNet::new(DeepConvNetConfig::default());
    let mut weights = StateDict::load(&source)?;
    weights.remove("fc2.weight");
    weights.remove("fc2.bias");
    let report = transfer.load_state_dict(&weights, false)?; // not strict: fc2 is missing on purpose
    if report.missing.iter().any(|k| !k.starts_with("fc2.")) || !report.mismatched.is_empty() {
        return Err(Failure::msg(format!(
            "{}: not the weights of a DeepConvNet (missing {:?}, mismatched {:?})",
            source.display(),
            report.missing,
            report.mismatched
        )));
    }
    println!(
        "transfer: loaded {} tensors from {}; kept freshly initialised: {:?}",
        weights.len() - report.unexpected.len(),
        source.display(),
        report.missing
    );
    let convs = [
        &transfer.conv1,
        &transfer.conv2,
        &transfer.conv3,
        &transfer.conv4,
        &transfer.conv5,
        &transfer.conv6,
    ];
    for conv in convs.into_iter().take(freeze) {
        conv.freeze(); // no gradient: the optimizer leaves it as MNIST made it
    }

    // 3b. The baseline: the same network from scratch, everything trainable.
    manual_seed(seed);
    let scratch = DeepConvNet::new(DeepConvNetConfig::default());

    // 4. Train both on the same images for the same epochs, then test.
    let mut metrics = MetricsCsv::new(
        out.join("metrics.csv"),
        &["transfer", "epoch", "train_loss", "train_acc"],
    );
    let mut results = MetricsCsv::new(
        out.join("results.csv"),
        &[
            "transfer",
            "labelled_images",
            "trainable_parameters",
            "test_loss",
            "test_acc",
        ],
    );
    let mut accuracies = Vec::new();
    for (is_transfer, model) in [(true, &transfer), (false, &scratch)] {
        let name = if is_transfer {
            format!("transfer ({freeze} of 6 convolutions frozen)")
        } else {
            "from scratch".to_string()
        };
        let trainable = model.num_trainable_parameters();
        println!(
            "{name}: {trainable} of {} parameters trainable",
            model.num_parameters()
        );
        let mut opt = Adam::new(model.parameters(), AdamConfig::default()); // frozen ones are skipped
        for epoch in 1..=epochs {
            let fit = train_epoch(model, &mut opt, &train_loader, epoch, epochs);
            if epoch == 1 || epoch % 10 == 0 || epoch == epochs {
                println!(
                    "  epoch {epoch:2}/{epochs}  train loss {:.4} acc {:.2}%",
                    fit.mean_loss(),
                    fit.accuracy()
                );
            }
            metrics.push(&[
                f64::from(u8::from(is_transfer)),
                epoch as f64,
                fit.mean_loss(),
                fit.accuracy(),
            ])?;
        }
        let ev = evaluate(model, &test_loader, false);
        println!("  test accuracy {:.2}% (loss {:.4})", ev.accuracy, ev.loss);
        results.push(&[
            f64::from(u8::from(is_transfer)),
            few.len() as f64,
            trainable as f64,
            ev.loss,
            ev.accuracy,
        ])?;
        accuracies.push(ev.accuracy);
    }
    transfer.save(&out.join("transfer_fashion.safetensors"), Dtype::F32)?;
    println!(
        "with {} labels: transfer {:.2}%, from scratch {:.2}% ({:+.2} points)",
        few.len(),
        accuracies[0],
        accuracies[1],
        accuracies[0] - accuracies[1]
    );
    println!(
        "wrote {}/{{results.csv, metrics.csv, transfer_fashion.safetensors}}",
        out.display()
    );
    Ok(())
}
