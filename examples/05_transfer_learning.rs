//! Step 5 — transfer learning: what a network learned on one dataset helps
//! on another that has few labels.
//!
//! A DeepConvNet trained on MNIST digits has learned edge and stroke
//! detectors in its convolutions. Here they start a network for
//! Fashion-MNIST (clothes, the same 28x28 format) of which only a few images
//! are labelled (`--labels`, 100 and 1,000: 10 and 100 per class): the six
//! MNIST convolutions are loaded, the two fully connected layers are left
//! freshly initialised (`fc2` for the new classes, and `fc1`, whose 50
//! MNIST summaries are specific to digits), and the whole network is trained
//! at Adam's usual rate. The same network trained from scratch on the same
//! images for the same steps is the baseline. Every case runs with several
//! seeds (`--seeds`; the seed draws the labelled images, the new weights and
//! the order), and both are tested on the 10,000 Fashion-MNIST test images:
//! per run in `results.csv`, mean and spread printed; the last fine-tuned
//! network is saved as `transfer_fashion.safetensors`.
//!
//! What decides whether the MNIST features help — which layers are reused
//! (`--reuse`) and which of them stay frozen (`--freeze`), the reused
//! layers' rate (`--backbone-lr`), the number of steps (`--steps`) and how
//! long the source network trained (`--pretrain-epochs`) — is measured in
//! `docs/experiments.md` (`scripts/transfer_ablation.sh`).
//!
//! ```text
//! cargo run --release --example 05_transfer_learning
//! cargo run --release --example 05_transfer_learning -- --reuse 7 --freeze 6   # MNIST's fc1 too, convolutions frozen
//! ```
//!
//! The source weights are example 02's if given (`--pretrained PATH`);
//! otherwise DeepConvNet is first trained on MNIST here (`--pretrain-epochs`)
//! and saved in the output folder, where the next run finds it. Fashion-MNIST
//! comes from Debian's `dataset-fashion-mnist`
//! (`/usr/share/datasets/fashion-mnist`); without it, `--quick` runs on the
//! 200-image sample in `examples/data/fashion-mnist-sample/` and a full run
//! stops, naming the package.
//!
//! Options: `--pretrained PATH` `--pretrain-epochs N` (2) `--labels LIST`
//! (100,1000) `--seeds N` (3) `--seed S` (the first seed) `--steps N` (300
//! Adam steps) `--batch N` (100) `--lr F` (the new layers', 0.001)
//! `--backbone-lr F` (the reused layers', 0.001; 0 freezes them)
//! `--reuse N` (layers taken from MNIST, from conv1: 6 = the convolutions,
//! 7 = also fc1) `--freeze N` (convolutions frozen from conv1, 0)
//! `--only both|transfer|scratch`
//! `--test-subset N` `--out DIR` (runs/transfer) `--quick` (pre-training on
//! 600 images, 100 labels, 1 seed, 5 steps, 200 test images).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use autograd::manual_seed;
use dlfs::tools::{evaluate, metrics, plot_series_png, Args, Curve, Failure, MetricsCsv};
use models::data::{DataLoader, Dataset, FashionMnist, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Dtype, Module, StateDict};
use optim::{Adam, AdamConfig, GroupSpec, Optimizer};

/// What one training run starts from and how it is trained.
struct Recipe {
    steps: usize,
    batch: usize,
    lr: f64,
    backbone_lr: f64,
    freeze: usize,
    reuse: usize,
}

/// DeepConvNet's layers in order, each but the last one reusable from MNIST.
const LAYERS: [&str; 8] = [
    "conv1.", "conv2.", "conv3.", "conv4.", "conv5.", "conv6.", "fc1.", "fc2.",
];

/// The layers a transfer model takes fresh, not from MNIST: all after the
/// first `reuse` (`fc2`, the classes, always).
fn new_layer_names(reuse: usize) -> &'static [&'static str] {
    &LAYERS[reuse.min(LAYERS.len() - 1)..]
}

/// A DeepConvNet with `source`'s MNIST weights in its first `recipe.reuse`
/// layers, the first `recipe.freeze` convolutions frozen.
fn transfer_model(source: &Path, recipe: &Recipe) -> Result<DeepConvNet, Failure> {
    let model = DeepConvNet::new(DeepConvNetConfig::default());
    let fresh = new_layer_names(recipe.reuse);
    let mut weights = StateDict::load(source)?;
    let names: Vec<String> = weights.keys().cloned().collect();
    for name in names
        .iter()
        .filter(|n| fresh.iter().any(|f| n.starts_with(f)))
    {
        weights.remove(name);
    }
    let report = model.load_state_dict(&weights, false)?; // not strict: the new layers are missing on purpose
    if report
        .missing
        .iter()
        .any(|k| !fresh.iter().any(|f| k.starts_with(f)))
        || !report.mismatched.is_empty()
    {
        return Err(Failure::msg(format!(
            "{}: not the weights of a DeepConvNet (missing {:?}, mismatched {:?})",
            source.display(),
            report.missing,
            report.mismatched
        )));
    }
    let convs = [
        &model.conv1,
        &model.conv2,
        &model.conv3,
        &model.conv4,
        &model.conv5,
        &model.conv6,
    ];
    for conv in convs.into_iter().take(recipe.freeze) {
        conv.freeze(); // no gradient: the optimizer leaves it as MNIST made it
    }
    Ok(model)
}

/// Trains `model` for `recipe.steps` Adam steps on `loader` and returns its
/// test accuracy. `transfer`: the reused layers get `backbone_lr` (frozen at
/// 0), the new ones `lr`; otherwise every layer gets `lr`.
fn train_and_test(
    model: &DeepConvNet,
    transfer: bool,
    recipe: &Recipe,
    loader: &DataLoader,
    test_loader: &DataLoader,
) -> Result<f64, Failure> {
    let fresh = new_layer_names(recipe.reuse);
    let (mut head, mut body) = (Vec::new(), Vec::new());
    for (name, p) in model.named_parameters() {
        if !transfer || fresh.iter().any(|f| name.starts_with(f)) {
            head.push(p);
        } else if recipe.backbone_lr > 0.0 {
            body.push(p);
        } else {
            p.set_requires_grad(false)?;
        }
    }
    let mut groups = vec![GroupSpec::new(head)];
    if !body.is_empty() {
        groups.push(GroupSpec::new(body).lr(recipe.backbone_lr));
    }
    let mut opt = Adam::with_groups(
        groups,
        AdamConfig {
            lr: recipe.lr,
            ..Default::default()
        },
    );
    model.train();
    let mut step = 0;
    'epochs: for epoch in 1.. {
        for b in loader.epoch(epoch) {
            opt.zero_grad();
            model
                .forward(b.images())
                .cross_entropy(b.labels())
                .backward();
            opt.step();
            step += 1;
            if step == recipe.steps {
                break 'epochs;
            }
        }
    }
    Ok(evaluate(model, test_loader, false).accuracy)
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let pretrained: Option<PathBuf> = args.value("--pretrained").map(PathBuf::from);
    let pretrain_epochs: usize = args.get("--pretrain-epochs", if quick { 1 } else { 2 });
    let labels: String = args.get(
        "--labels",
        if quick { "100" } else { "100,1000" }.to_string(),
    );
    let n_seeds: u64 = args.get("--seeds", if quick { 1 } else { 3 });
    let first_seed: u64 = args.get("--seed", 0);
    let recipe = Recipe {
        steps: args.get("--steps", if quick { 5 } else { 300 }),
        batch: args.get("--batch", 100),
        lr: args.get("--lr", 1e-3),
        backbone_lr: args.get("--backbone-lr", 1e-3),
        freeze: args.get("--freeze", 0),
        reuse: args.get("--reuse", 6),
    };
    let only: String = args.get("--only", "both".to_string());
    let test_n: usize = args.get("--test-subset", if quick { 200 } else { 10_000 });
    let out = PathBuf::from(args.get("--out", "runs/transfer".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    let label_counts: Vec<usize> = labels
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .ok()
        .filter(|v: &Vec<usize>| !v.is_empty() && v.iter().all(|&n| n >= 10))
        .ok_or_else(|| {
            Failure::msg(format!(
                "--labels: '{labels}' is not a list of numbers of at least 10 (one per class), as 100,1000"
            ))
        })?;
    let (run_transfer, run_scratch) = match only.as_str() {
        "both" => (true, true),
        "transfer" => (true, false),
        "scratch" => (false, true),
        other => {
            return Err(Failure::msg(format!(
                "--only: '{other}' is not both, transfer or scratch"
            )))
        }
    };
    if recipe.steps == 0 || recipe.batch == 0 || n_seeds == 0 {
        return Err(Failure::msg(
            "--steps, --batch and --seeds must be at least 1",
        ));
    }
    if recipe.reuse > 7 || recipe.freeze > recipe.reuse.min(6) {
        return Err(Failure::msg(format!(
            "--reuse {} --freeze {}: at most 7 layers reused (conv1..conv6, fc1), and only reused convolutions frozen",
            recipe.reuse, recipe.freeze
        )));
    }
    std::fs::create_dir_all(&out)?;

    // 1. The source task: MNIST weights, given or trained here (once).
    let source = match pretrained {
        Some(path) => {
            println!("source weights: {} (MNIST)", path.display());
            path
        }
        None => {
            let path = out.join(format!(
                "pretrained_mnist_{pretrain_epochs}ep{}.safetensors",
                if quick { "_quick" } else { "" }
            ));
            if path.exists() {
                println!(
                    "source weights: {} (MNIST, from an earlier run)",
                    path.display()
                );
            } else if run_transfer {
                pretrain(&path, pretrain_epochs, quick, first_seed)?;
            } // scratch alone needs no source network
            path
        }
    };

    // 2. The target task: Fashion-MNIST, a few labels per class.
    let (fashion, fashion_test) = dlfs::tools::fashion_mnist(quick)?;
    let fashion: Arc<FashionMnist> = Arc::new(fashion);
    let test: Arc<dyn ImageDataset> = Arc::new(Subset::first(Arc::new(fashion_test), test_n));
    let test_loader = DataLoader::new(test.clone(), 500);
    println!(
        "Fashion-MNIST: {label_counts:?} labelled training images, {} test images; {} Adam steps of {} images, new layers {:?} at lr {}, reused layers' lr {}, {} of 6 convolutions frozen",
        test.len(),
        recipe.steps,
        recipe.batch,
        new_layer_names(recipe.reuse),
        recipe.lr,
        recipe.backbone_lr,
        recipe.freeze
    );

    // 3. For each number of labels and each seed: transfer and from scratch.
    let mut results = MetricsCsv::new(
        out.join("results.csv"),
        &["labelled_images", "seed", "transfer", "test_acc"],
    );
    let (mut transfer_points, mut scratch_points) = (Vec::new(), Vec::new());
    for &n in &label_counts {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for seed in first_seed..first_seed + n_seeds {
            let few: Arc<dyn ImageDataset> =
                Arc::new(Subset::per_class(fashion.clone(), n / 10, seed));
            let loader = DataLoader::new(few.clone(), recipe.batch.min(few.len()))
                .shuffle(true)
                .seed(seed);
            let mut line = format!("{} labels, seed {seed}:", few.len());
            if run_transfer {
                manual_seed(seed); // the new head's weights, dropout
                let model = transfer_model(&source, &recipe)?;
                let acc = train_and_test(&model, true, &recipe, &loader, &test_loader)?;
                model.save(&out.join("transfer_fashion.safetensors"), Dtype::F32)?; // the last one stays
                results.push(&[few.len() as f64, seed as f64, 1.0, acc])?;
                line += &format!("  transfer {acc:.2}%");
                with.push(acc);
            }
            if run_scratch {
                manual_seed(seed);
                let model = DeepConvNet::new(DeepConvNetConfig::default());
                let acc = train_and_test(&model, false, &recipe, &loader, &test_loader)?;
                results.push(&[few.len() as f64, seed as f64, 0.0, acc])?;
                line += &format!("  from scratch {acc:.2}%");
                without.push(acc);
            }
            println!("{line}");
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut summary = format!("with {n} labels over {n_seeds} seed(s):");
        if run_transfer {
            summary += &format!("  transfer {}", metrics::spread(&with));
        }
        if run_scratch {
            summary += &format!("  from scratch {}", metrics::spread(&without));
        }
        if run_transfer && run_scratch {
            summary += &format!("  gain {:+.2} points", mean(&with) - mean(&without));
        }
        println!("{summary}");
        if run_transfer {
            transfer_points.push((n as f64, mean(&with)));
        }
        if run_scratch {
            scratch_points.push((n as f64, mean(&without)));
        }
    }
    let mut curves = Vec::new();
    if run_transfer {
        curves.push(Curve::new("from MNIST's convolutions", transfer_points));
    }
    if run_scratch {
        curves.push(Curve::new("from scratch", scratch_points));
    }
    plot_series_png(
        &out.join("transfer.png"),
        "Fashion-MNIST: MNIST transfer vs scratch",
        "labelled training images",
        &[("test accuracy (%)", curves)],
    )?;
    println!(
        "wrote {}/{{results.csv, transfer.png{}}}",
        out.display(),
        if run_transfer {
            ", transfer_fashion.safetensors"
        } else {
            ""
        }
    );
    Ok(())
}

/// Trains DeepConvNet on MNIST (the book's recipe: Adam 0.001, batches of
/// 100) for `epochs` epochs and saves it at `path`.
fn pretrain(path: &Path, epochs: usize, quick: bool, seed: u64) -> Result<(), Failure> {
    println!(
        "pre-training DeepConvNet on MNIST for {epochs} epoch(s), saved to {}",
        path.display()
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
    for epoch in 1..=epochs {
        let fit = dlfs::tools::train_epoch(&model, &mut opt, &loader, epoch, epochs);
        println!(
            "  MNIST epoch {epoch}/{epochs}  train loss {:.4} acc {:.2}%",
            fit.mean_loss(),
            fit.accuracy()
        );
    }
    model.save(path, Dtype::F32)?;
    Ok(())
}
