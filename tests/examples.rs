//! Every numbered example, run as a user runs it (`cargo run --release
//! --example NAME -- --quick --out DIR`), one at a time, and what it writes
//! checked: CSV headers and numeric rows, valid PNGs, and weights that load
//! back (strictly) and give the same predictions.
//!
//! The examples run through the same `cargo` that runs this test (so the
//! same target directory, profile and flags); their outputs go under
//! `CARGO_TARGET_TMPDIR`. A lock runs them in sequence even when the test
//! harness runs these tests on several threads.

use std::path::{Path, PathBuf};
mod common;
use common::*;

use std::process::Command;
use std::sync::{Arc, OnceLock};

use autograd::no_grad;
use models::data::{DataLoader, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Linear, LinearConfig, LoadReport, Module};

/// The columns of example 02's `metrics.csv`.
const EX02_HEADER: [&str; 9] = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "epoch_seconds",
    "images_per_second",
    "wall_seconds",
];

/// Example 02's quick run, made once and shared by the examples that read its weights.
fn ex02() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = out_dir("02_deep_convnet_mnist");
        let stdout = run_quick("02_deep_convnet_mnist", &out, &[]);
        assert!(
            stdout.contains("final test accuracy"),
            "02 printed:\n{stdout}"
        );
        out
    })
}

/// The first `n` MNIST test images as one `[n, 1, 28, 28]` batch.
fn mnist_test_images(n: usize) -> autograd::Tensor {
    let test: Arc<dyn ImageDataset> =
        Arc::new(Mnist::load_default(false).expect("the repository's MNIST"));
    let batch = DataLoader::new(Arc::new(Subset::first(test, n)), n)
        .epoch(0)
        .next()
        .expect("one batch");
    batch.data.0
}

/// Evaluation-mode outputs of `model` on `x`.
fn outputs(model: &dyn Module, x: &autograd::Tensor) -> Vec<f32> {
    model.eval();
    no_grad(|| model.forward(x).to_vec())
}

/// Loads `path` strictly (every name and shape must match, nothing skipped)
/// into two fresh networks made by `make`, and checks that both give the
/// same outputs on a few test digits; returns the first.
fn loads_back<M: Module>(path: &Path, make: impl Fn() -> M) -> M {
    let (a, b) = (make(), make());
    for m in [&a, &b] {
        let report = m
            .load(path, true)
            .unwrap_or_else(|e| panic!("strict load of {}: {e}", path.display()));
        assert_eq!(
            report,
            LoadReport::default(),
            "{}: a strict load skipped something",
            path.display()
        );
    }
    let x = mnist_test_images(8);
    let (ya, yb) = (outputs(&a, &x), outputs(&b, &x));
    assert!(
        ya.iter().all(|v| v.is_finite()),
        "{}: non-finite outputs",
        path.display()
    );
    assert_eq!(
        ya,
        yb,
        "{}: two loads of the same weights disagree",
        path.display()
    );
    a
}

fn deep_convnet() -> DeepConvNet {
    DeepConvNet::new(DeepConvNetConfig::default())
}

#[test]
fn ex01_two_layer_mnist() {
    let out = out_dir("01_two_layer_mnist");
    let stdout = run_quick("01_two_layer_mnist", &out, &[]);
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let header = ["epoch", "train_loss", "test_loss", "test_acc"];
    let rows = csv_rows(&out.join("metrics.csv"), &header);
    assert_eq!(column(&rows, &header, "epoch"), vec![1.0]);
    assert!(column(&rows, &header, "test_acc")
        .iter()
        .all(|a| (0.0..=100.0).contains(a)));
    // The example's network, as a user who copied it would load the weights.
    #[derive(Module)]
    struct TwoLayerNet {
        fc1: Linear,
        fc2: Linear,
    }
    impl Module for TwoLayerNet {
        fn forward_impl(&self, x: &autograd::Tensor) -> autograd::Tensor {
            self.fc2
                .forward(&self.fc1.forward(&x.flatten(1, -1)).relu())
        }
    }
    loads_back(&out.join("two_layer_net.safetensors"), || TwoLayerNet {
        fc1: Linear::new(LinearConfig::new(784, 50)),
        fc2: Linear::new(LinearConfig::new(50, 10)),
    });
}

#[test]
fn ex02_deep_convnet_mnist() {
    let out = ex02();
    let header = EX02_HEADER;
    let rows = csv_rows(&out.join("metrics.csv"), &header);
    assert_eq!(column(&rows, &header, "epoch"), vec![1.0]);
    check_png(&out.join("curves.png"));
    // The trained weights: strict loads into fresh networks agree, and are not a fresh network.
    let trained = loads_back(&out.join("deep_convnet.safetensors"), deep_convnet);
    let x = mnist_test_images(8);
    assert_ne!(
        outputs(&trained, &x),
        outputs(&deep_convnet(), &x),
        "the saved weights are those of an untrained network"
    );
}

#[test]
fn ex02_fast_recipe() {
    let out = out_dir("02_fast_recipe");
    let stdout = run_quick("02_deep_convnet_mnist", &out, &["--recipe", "fast"]);
    for expected in [
        "recipe fast: Adam",
        "schedule onecycle",
        "dropout 0,",
        "label smoothing 0.1,",
        "convolutions fastest",
        "99.3% test accuracy",
    ] {
        assert!(stdout.contains(expected), "no '{expected}' in:\n{stdout}");
    }
    assert!(!stdout.contains("augmented"), "{stdout}");
    let rows = csv_rows(&out.join("metrics.csv"), &EX02_HEADER);
    assert_eq!(rows.len(), 1, "--quick: one epoch");
    // The ten-minute recipe: the fast one, augmented, timed to 99.6% as well.
    let stdout = run_quick("02_deep_convnet_mnist", &out, &["--recipe", "fast10"]);
    for expected in [
        "recipe fast10: AdamW (weight decay 0.05) lr",
        "label smoothing 0.1,",
        "moving average (decay 0.999)",
        "augmented",
        "99.3% test accuracy",
        "99.6% test accuracy",
    ] {
        assert!(stdout.contains(expected), "no '{expected}' in:\n{stdout}");
    }
    // Decoupled weight decay: AdamW in Adam's place.
    let stdout = run_quick(
        "02_deep_convnet_mnist",
        &out,
        &["--recipe", "fast", "--weight-decay", "0.05"],
    );
    assert!(
        stdout.contains("recipe fast: AdamW (weight decay 0.05) lr"),
        "{stdout}"
    );
    let out_arg = out.to_str().expect("UTF-8");
    for (option, value, message) in [
        (
            "--recipe",
            "slow",
            "unknown recipe 'slow' (book, fast or fast10)",
        ),
        (
            "--label-smoothing",
            "1.5",
            "--label-smoothing: 1.5 is not in [0, 1]",
        ),
        (
            "--weight-decay",
            "-0.1",
            "--weight-decay: -0.1 is not a non-negative number",
        ),
        ("--ema", "1", "--ema: 1 is not in [0, 1)"),
    ] {
        let args = [option, value, "--quick", "--out", out_arg];
        assert_user_error("02_deep_convnet_mnist", &args, message);
    }
}

/// `--weight-decay` reaches the optimizer (the weights differ from Adam's),
/// and its AdamW state goes through the checkpoint: one epoch, then a
/// resumed second one, ends with the weights of two epochs in one run. A
/// checkpoint of a decayed run refuses to continue without the decay.
#[test]
fn ex02_weight_decay_decays_and_resumes_exactly() {
    let (whole, plain, cut) = (
        out_dir("02_wd_whole"),
        out_dir("02_wd_adam"),
        out_dir("02_wd_cut"),
    );
    let weights = |d: &Path| std::fs::read(d.join("deep_convnet.safetensors")).unwrap();
    let decayed = ["--epochs", "2", "--weight-decay", "0.05"];
    let stdout = run_quick("02_deep_convnet_mnist", &whole, &decayed);
    assert!(stdout.contains("AdamW (weight decay 0.05)"), "{stdout}");
    run_quick("02_deep_convnet_mnist", &plain, &["--epochs", "2"]);
    assert!(
        weights(&whole) != weights(&plain),
        "weight decay 0.05 trained the same weights as Adam without it"
    );

    run_quick(
        "02_deep_convnet_mnist",
        &cut,
        &["--epochs", "1", "--weight-decay", "0.05"],
    );
    let stdout = run_quick(
        "02_deep_convnet_mnist",
        &cut,
        &["--epochs", "2", "--weight-decay", "0.05", "--resume"],
    );
    assert!(stdout.contains("resumed from"), "{stdout}");
    assert!(
        weights(&whole) == weights(&cut),
        "one epoch and a resumed second one end with other weights than two in one run"
    );

    let cut_arg = cut.to_str().expect("UTF-8");
    assert_user_error(
        "02_deep_convnet_mnist",
        &["--quick", "--out", cut_arg, "--epochs", "3", "--resume"],
        "weight_decay=0.05",
    );
}

/// `--ema` evaluates and saves the weights' moving average (the weights
/// and the test figures differ from the run without it), and the averages
/// go through the checkpoint: one epoch, then a resumed second one, ends
/// with the two-epoch run's weights. A checkpoint of an averaged run
/// refuses to continue without the average.
#[test]
fn ex02_ema_evaluates_the_average_and_resumes_exactly() {
    let (whole, plain, cut) = (
        out_dir("02_ema_whole"),
        out_dir("02_ema_plain"),
        out_dir("02_ema_cut"),
    );
    let weights = |d: &Path| std::fs::read(d.join("deep_convnet.safetensors")).unwrap();
    let metrics = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    // A constant rate: a run of one epoch is the first epoch of two.
    let averaged = ["--epochs", "2", "--schedule", "none", "--ema", "0.9"];
    let stdout = run_quick("02_deep_convnet_mnist", &whole, &averaged);
    assert!(stdout.contains("moving average (decay 0.9)"), "{stdout}");
    run_quick(
        "02_deep_convnet_mnist",
        &plain,
        &["--epochs", "2", "--schedule", "none"],
    );
    assert!(
        weights(&whole) != weights(&plain),
        "--ema saved the weights as trained"
    );
    // The training figures are the same run's; the test ones are the average's.
    let test_loss = |d: &Path| -> Vec<String> {
        metrics(d)
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(3).unwrap().to_string())
            .collect()
    };
    let train_loss = |d: &Path| -> Vec<String> {
        metrics(d)
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(train_loss(&whole), train_loss(&plain));
    assert!(
        test_loss(&whole) != test_loss(&plain),
        "--ema evaluated the weights as trained"
    );

    run_quick(
        "02_deep_convnet_mnist",
        &cut,
        &["--epochs", "1", "--schedule", "none", "--ema", "0.9"],
    );
    let resumed = [
        "--epochs",
        "2",
        "--schedule",
        "none",
        "--ema",
        "0.9",
        "--resume",
    ];
    let stdout = run_quick("02_deep_convnet_mnist", &cut, &resumed);
    assert!(stdout.contains("resumed from"), "{stdout}");
    assert!(
        weights(&whole) == weights(&cut),
        "one epoch and a resumed second one end with other averages than two in one run"
    );

    let cut_arg = cut.to_str().expect("UTF-8");
    assert_user_error(
        "02_deep_convnet_mnist",
        &[
            "--quick",
            "--out",
            cut_arg,
            "--epochs",
            "3",
            "--schedule",
            "none",
            "--resume",
        ],
        "ema=0.9",
    );
}

#[test]
fn ex03_misclassified() {
    let weights = ex02().join("deep_convnet.safetensors");
    let out = out_dir("03_misclassified");
    let stdout = run_quick(
        "03_misclassified",
        &out,
        &["--weights", weights.to_str().expect("UTF-8")],
    );
    // "test accuracy 23.20%: 384 of 500 test images misclassified"
    let line = stdout
        .lines()
        .find(|l| l.starts_with("test accuracy"))
        .unwrap_or_else(|| panic!("no accuracy line:\n{stdout}"));
    let wrong: usize = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("the number misclassified");
    let header = ["index", "label", "predicted", "confidence"];
    let (found, rows) = read_csv(&out.join("misclassified.csv"));
    assert_eq!(found, header);
    assert_eq!(rows.len(), wrong, "one CSV row per misclassified digit");
    for r in &rows {
        assert!(
            r[0] < 500.0 && r[1] != r[2] && (0.0..=1.0).contains(&r[3]),
            "row {r:?}"
        );
    }
    check_png(&out.join("misclassified.png"));
}

#[test]
fn missing_weights_are_a_clear_error() {
    let out = out_dir("03_missing_weights");
    let args = [
        "--weights",
        "/nonexistent/deep_convnet.safetensors",
        "--out",
        out.to_str().expect("UTF-8"),
    ];
    assert_user_error("03_misclassified", &args, "--example 02_deep_convnet_mnist");
    assert_user_error(
        "06_reduced_precision",
        &args,
        "--example 02_deep_convnet_mnist",
    );
}

#[test]
fn ex04_augmentation() {
    let out = out_dir("04_augmentation");
    let stdout = run_quick("04_augmentation", &out, &[]);
    assert!(
        stdout.contains("test accuracy with augmentation"),
        "{stdout}"
    );
    let (w, h) = check_png(&out.join("augmented.png"));
    assert!(
        w > 8 * 28 && h > 8 * 28,
        "augmented.png is {w}x{h}: too small for 8 rows of 8 digits"
    );
    assert!(
        stdout.contains("augmentation changed the final test accuracy by"),
        "{stdout}"
    );
    let header = [
        "seed",
        "augmented",
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
    ];
    let rows = csv_rows(&out.join("metrics.csv"), &header);
    assert_eq!(column(&rows, &header, "seed"), vec![0.0, 0.0], "one seed");
    assert_eq!(
        column(&rows, &header, "augmented"),
        vec![0.0, 1.0],
        "one epoch without, then one with augmentation"
    );
    check_png(&out.join("curves.png"));
}

#[test]
fn ex05_transfer_learning() {
    let pretrained = ex02().join("deep_convnet.safetensors");
    let out = out_dir("05_transfer_learning");
    // Convolutions frozen, fc1 fine-tuned, fc2 new.
    let stdout = run_quick(
        "05_transfer_learning",
        &out,
        &[
            "--pretrained",
            pretrained.to_str().expect("UTF-8"),
            "--reuse",
            "7",
            "--freeze",
            "6",
            "--backbone-lr",
            "1e-3",
        ],
    );
    assert!(
        stdout.contains(r#"new layers ["fc2."] at lr 0.001"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("with 100 labels over 1 seed(s):"),
        "{stdout}"
    );
    let header = ["labelled_images", "seed", "transfer", "test_acc"];
    let rows = csv_rows(&out.join("results.csv"), &header);
    assert_eq!(column(&rows, &header, "transfer"), vec![1.0, 0.0]);
    assert_eq!(
        column(&rows, &header, "labelled_images"),
        vec![100.0, 100.0]
    );
    assert!(column(&rows, &header, "test_acc")
        .iter()
        .all(|a| (0.0..=100.0).contains(a)));
    // Frozen convolutions are still MNIST's; the new head is not.
    let tuned = loads_back(&out.join("transfer_fashion.safetensors"), deep_convnet);
    let source = deep_convnet();
    source.load(&pretrained, true).expect("02's weights");
    assert_eq!(
        tuned.conv1.weight.to_vec(),
        source.conv1.weight.to_vec(),
        "conv1 changed although frozen"
    );
    assert_eq!(
        tuned.conv6.weight.to_vec(),
        source.conv6.weight.to_vec(),
        "conv6 changed although frozen"
    );
    assert_ne!(
        tuned.fc1.weight.to_vec(),
        source.fc1.weight.to_vec(),
        "fc1 is fine-tuned"
    );
    assert_ne!(
        tuned.fc2.weight.to_vec(),
        source.fc2.weight.to_vec(),
        "fc2 should be a new head"
    );
    // Scratch alone: no source network is trained, one row per seed.
    let out = out_dir("05_transfer_learning_scratch");
    let stdout = run_quick(
        "05_transfer_learning",
        &out,
        &["--only", "scratch", "--labels", "20,100"],
    );
    assert!(!stdout.contains("pre-training"), "{stdout}");
    let rows = csv_rows(&out.join("results.csv"), &header);
    assert_eq!(column(&rows, &header, "transfer"), vec![0.0, 0.0]);
    assert_eq!(column(&rows, &header, "labelled_images"), vec![20.0, 100.0]);
    assert_user_error(
        "05_transfer_learning",
        &["--quick", "--labels", "100,x"],
        "--labels: '100,x' is not a list",
    );
}

#[test]
fn ex06_reduced_precision() {
    // Without weights, quick mode trains a throw-away model: the example runs on its own.
    let out = out_dir("06_reduced_precision");
    let stdout = run_quick(
        "06_reduced_precision",
        &out,
        &["--weights", "/nonexistent/deep_convnet.safetensors"],
    );
    assert!(stdout.contains("throw-away"), "{stdout}");
    let header = [
        "bits",
        "exponent_bits",
        "mantissa_bits",
        "file_bytes",
        "test_acc",
        "max_weight_error",
        "predictions_changed",
    ];
    let rows = csv_rows(&out.join("precision.csv"), &header);
    assert_eq!(column(&rows, &header, "bits"), vec![32.0, 16.0, 16.0]);
    let bytes = column(&rows, &header, "file_bytes");
    for (b, name) in bytes[1..].iter().zip(["f16", "bf16"]) {
        assert!(
            *b < 0.55 * bytes[0],
            "{name} file of {b} bytes is not about half of f32's {}",
            bytes[0]
        );
    }
    let errors = column(&rows, &header, "max_weight_error");
    assert!(
        errors[0] == 0.0 && errors[1] < 1e-2 && errors[2] < 5e-2,
        "weight errors {errors:?}"
    );
    for (name, size) in ["f32", "f16", "bf16"].into_iter().zip(&bytes) {
        let path = out.join(format!("deep_convnet_{name}.safetensors"));
        assert_eq!(
            std::fs::metadata(&path).expect("the weights file").len() as f64,
            *size,
            "{name}: size in the CSV"
        );
        loads_back(&path, deep_convnet);
    }
}

#[test]
fn ex07_ensemble() {
    let out = out_dir("07_ensemble");
    let stdout = run_quick("07_ensemble", &out, &[]);
    assert!(stdout.contains("ensemble of 3"), "{stdout}");
    let header = ["model", "seed", "model_test_acc", "ensemble_test_acc"];
    let rows = csv_rows(&out.join("ensemble.csv"), &header);
    assert_eq!(column(&rows, &header, "model"), vec![1.0, 2.0, 3.0]);
    assert_eq!(column(&rows, &header, "seed"), vec![0.0, 1.0, 2.0]);
    assert_eq!(rows[0][2], rows[0][3], "an ensemble of one is that model");
    for k in 1..=3 {
        loads_back(&out.join(format!("model_{k}.safetensors")), deep_convnet);
    }
}

#[test]
fn ex08_resnet_vgg_googlenet() {
    let out = out_dir("08_resnet_vgg_googlenet");
    let stdout = run_quick("08_resnet_vgg_googlenet", &out, &[]);
    let header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "epoch_seconds",
        "images_per_second",
    ];
    for name in ["resnet20", "vgg11", "googlenet"] {
        let logged = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{name} epoch 1 batch")))
            .count();
        assert!(
            logged >= 2,
            "{name}: the loss should be printed every few batches:\n{stdout}"
        );
        let rows = csv_rows(&out.join(format!("{name}.csv")), &header);
        assert!(
            column(&rows, &header, "train_loss")
                .iter()
                .all(|l| l.is_finite()),
            "{name}: loss {rows:?}"
        );
    }
    check_png(&out.join("curves.png"));
    assert_user_error(
        "08_resnet_vgg_googlenet",
        &["--quick", "--model", "alexnet"],
        "unknown network 'alexnet' (resnet20, vgg11, googlenet, resnet32, resnet44, resnet56 or all)",
    );
    assert_user_error(
        "08_resnet_vgg_googlenet",
        &["--quick", "--augment", "crop,blur"],
        "unknown augmentation 'blur'",
    );
    assert_user_error(
        "08_resnet_vgg_googlenet",
        &["--quick", "--conv", "quickest"],
        "--conv: unknown convolution algorithm 'quickest'",
    );
    // `--conv fastest` (VGG-11's last block on 2x2 planes at batch 16 runs as
    // one dense product, its other 3x3 layers on Winograd): the loss of the
    // first batch (the forward pass) and of the second (after one step on
    // the first's gradients) as with the default kernels, to rounding.
    let vgg_losses = |stdout: &str| -> Vec<f64> {
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("vgg11 epoch 1 batch"))
            .filter_map(|l| l.split("loss").nth(1)?.trim().parse().ok())
            .collect()
    };
    let fast_out = out_dir("08_resnet_vgg_googlenet_fastest");
    let fast = run_quick(
        "08_resnet_vgg_googlenet",
        &fast_out,
        &["--model", "vgg11", "--conv", "fastest"],
    );
    let (want, got) = (vgg_losses(&stdout), vgg_losses(&fast));
    assert!(want.len() >= 2 && got.len() >= 2, "{want:?} {got:?}");
    for (w, g) in want.iter().zip(&got).take(2) {
        assert!(
            (w - g).abs() <= 1e-3 * w.abs(),
            "losses {want:?} against {got:?}"
        );
    }
    // Random erasing, Adam and a warm-up epoch, on the smallest network.
    let out = out_dir("08_resnet_vgg_googlenet_erase");
    let stdout = run_quick(
        "08_resnet_vgg_googlenet",
        &out,
        &[
            "--model",
            "resnet20",
            "--augment",
            "crop,flip,erase",
            "--optimizer",
            "adam",
            "--epochs",
            "2",
            "--warmup",
            "1",
        ],
    );
    assert!(
        stdout.contains(
            "adam lr 0.001 weight decay 0, schedule cosine (warm-up 1 epochs), augmentation crop,flip,erase"
        ),
        "{stdout}"
    );
    let rows = csv_rows(&out.join("resnet20.csv"), &header);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.iter().all(|v| v.is_finite())),
        "{rows:?}"
    );
    // The saved weights, evaluated alone: the accuracy of the run that saved
    // them, and the score with the mirrored images averaged in.
    let weights = out.join("resnet20.safetensors");
    let weights = weights.to_str().expect("a UTF-8 temporary path");
    let eval_out = out_dir("08_resnet_vgg_googlenet_eval");
    let stdout = run_quick(
        "08_resnet_vgg_googlenet",
        &eval_out,
        &[
            "--model",
            "resnet20",
            "--epochs",
            "0",
            "--weights",
            weights,
            "--tta",
        ],
    );
    let trained = *column(&rows, &header, "test_acc")
        .last()
        .expect("two epochs");
    assert!(
        stdout.contains(&format!(
            "resnet20: test accuracy {trained:.2}%, with flip test-time augmentation "
        )),
        "the loaded weights should score the trained {trained:.2}%:\n{stdout}"
    );
    assert_user_error(
        "08_resnet_vgg_googlenet",
        &["--quick", "--epochs", "0", "--weights", weights],
        "name the one network",
    );
    // A deeper CIFAR ResNet by name: 6n + 2 layers, n = 5 (ResNet-32). Its
    // parameters, counted by hand: stem 3x3 conv 1->16 + BN (176), five
    // blocks a stage of two 3x3 convs + BNs (16: 23,360; 32: 88,192 with the
    // first block's 16->32 conv; 64: 351,488 with its 32->64 conv), the two
    // 1x1 projection shortcuts + BNs (576 + 2,176), the 64->10 classifier
    // (650): 466,618 (ResNet-20 has 272,186).
    let out = out_dir("08_resnet_vgg_googlenet_r32");
    let stdout = run_quick("08_resnet_vgg_googlenet", &out, &["--model", "resnet32"]);
    assert!(stdout.contains("resnet32: 466618 parameters"), "{stdout}");
    let rows = csv_rows(&out.join("resnet32.csv"), &header);
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[test]
fn ex09_data_parallel() {
    // One process (no MPI here): the same script, a world of size 1.
    let out = out_dir("09_data_parallel");
    let stdout = run_quick("09_data_parallel", &out, &[]);
    assert!(stdout.contains("1 rank(s)"), "09 printed:\n{stdout}");
    let header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "epoch_seconds",
        "images_per_second",
        "comm_wait_seconds",
        "wall_seconds",
    ];
    let rows = csv_rows(&out.join("metrics.csv"), &header);
    assert_eq!(column(&rows, &header, "epoch"), vec![1.0]);
    check_png(&out.join("curves.png"));
    let trained = loads_back(&out.join("deep_convnet.safetensors"), deep_convnet);
    let x = mnist_test_images(8);
    assert_ne!(outputs(&trained, &x), outputs(&deep_convnet(), &x));
    // A global batch that does not divide among the ranks is refused.
    assert_user_error(
        "09_data_parallel",
        &["--quick", "--batch", "0"],
        "--batch 0",
    );

    // Started by mpirun as two ranks but built without the `mpi` feature:
    // a message saying how to build with MPI, not two one-process runs.
    let mpirun = Command::new("mpirun").arg("--version").output();
    if mpirun.is_ok_and(|o| o.status.success()) {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let exe = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(target_dir())
            .join("release/examples/09_data_parallel");
        let out = Command::new("mpirun")
            .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
            .arg(&exe)
            .args(["--quick", "--out"])
            .arg(out_dir("09_under_mpirun"))
            .output()
            .expect("mpirun");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("--features mpi"), "{text}");
        assert!(!text.contains("final test accuracy"), "{text}");
    }
}

/// The target directory that `cargo run` used (CARGO_TARGET_DIR or ./target).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// Both decoders of example 11: the loss falls below chance (ln 11) within
/// the one quick epoch, the metrics are percentages, the pictures and the
/// weights are written; an unknown decoder is refused.
#[test]
fn ex11_fcn_segmentation() {
    let header = [
        "epoch",
        "train_loss",
        "train_pixel_acc",
        "test_loss",
        "test_pixel_acc",
        "test_miou",
    ];
    for decoder in ["fcn", "unpool"] {
        let out = out_dir(&format!("11_fcn_segmentation_{decoder}"));
        let stdout = run_quick("11_fcn_segmentation", &out, &["--decoder", decoder]);
        assert!(
            stdout.contains("final test pixel accuracy") && stdout.contains("IoU per class"),
            "{decoder}: {stdout}"
        );
        let rows = csv_rows(&out.join("metrics.csv"), &header);
        assert_eq!(rows.len(), 1, "{decoder}: one quick epoch");
        let chance = 11f64.ln();
        for name in ["train_loss", "test_loss"] {
            let loss = column(&rows, &header, name)[0];
            assert!(
                loss.is_finite() && loss < chance,
                "{decoder}: {name} {loss}"
            );
        }
        assert!(
            column(&rows, &header, "test_loss")[0] < 0.9 * chance,
            "{decoder}: {rows:?}"
        );
        for name in ["train_pixel_acc", "test_pixel_acc", "test_miou"] {
            let v = column(&rows, &header, name)[0];
            assert!(
                (0.0..=100.0).contains(&v) && v > 0.0,
                "{decoder}: {name} {v}"
            );
        }
        let (w, h) = check_png(&out.join("segmentation.png"));
        assert!(
            w > 3 * 64 * 3 && h > 6 * 64 * 3,
            "segmentation.png is {w}x{h}: 6 rows of 3 expected"
        );
        check_png(&out.join("curves.png"));
        let weights = std::fs::metadata(out.join(format!("{decoder}.safetensors")))
            .unwrap_or_else(|e| panic!("{decoder}: no weights: {e}"));
        assert!(
            weights.len() > 4 * 80_000,
            "{decoder}: {} bytes of weights",
            weights.len()
        );
    }
    assert_user_error(
        "11_fcn_segmentation",
        &["--quick", "--decoder", "unet"],
        "expected fcn or unpool",
    );
}

/// `--help` lists every example's options; a misspelt option stops it before
/// any work (it used to be ignored: `--help` started a 20-epoch run).
#[test]
fn examples_answer_help_and_refuse_unknown_options() {
    for name in [
        "01_two_layer_mnist",
        "02_deep_convnet_mnist",
        "03_misclassified",
        "04_augmentation",
        "05_transfer_learning",
        "06_reduced_precision",
        "07_ensemble",
        "08_resnet_vgg_googlenet",
        "09_data_parallel",
        "11_fcn_segmentation",
    ] {
        let help = cargo_run(name, &["--help"]);
        let stdout = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{name} --help:\n{stdout}");
        assert!(
            stdout.contains("--quick") && stdout.contains("--out"),
            "{name} --help:\n{stdout}"
        );
        let typo = cargo_run(name, &["--quick", "--epoch", "3"]);
        let stderr = String::from_utf8_lossy(&typo.stderr);
        assert_eq!(typo.status.code(), Some(2), "{name} --epoch:\n{stderr}");
        assert!(
            stderr.contains("unknown option --epoch"),
            "{name} --epoch:\n{stderr}"
        );
    }
}

/// Example 02's binary, built by the `cargo` that runs these tests, to be
/// run (and signalled) directly rather than through `cargo run`.
fn ex02_binary() -> PathBuf {
    let built = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--quiet",
            "--example",
            "02_deep_convnet_mnist",
        ])
        .status()
        .expect("cargo build");
    assert!(built.success());
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    target.join("release/examples/02_deep_convnet_mnist")
}

#[test]
fn ex02_a_nan_loss_stops_at_the_step_and_keeps_the_last_good_checkpoint() {
    let name = "02_deep_convnet_mnist";
    let out = out_dir("02_nan");
    run_quick(name, &out, &[]); // epoch 1 of 1: a good checkpoint
    let ckpt = out.join("checkpoint.safetensors");
    let good = std::fs::read(&ckpt).unwrap();
    // Adam moves each weight by about lr per step; at 1e6 the book's
    // network only dies (ReLUs off, a finite loss), at 1e38 the first
    // convolution overflows f32.
    let o = out.to_str().unwrap();
    let args = [
        "--quick", "--out", o, "--epochs", "2", "--resume", "--lr", "1e38",
    ];
    let output = cargo_run(name, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in [
        "epoch 2, step ",
        "of 6",
        "anomaly",
        "the forward of '",
        "is kept",
        "--resume",
    ] {
        assert!(stderr.contains(needle), "no '{needle}' in:\n{stderr}");
    }
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        good,
        "the last good checkpoint changed"
    );
    // Resumed from it with the run's own learning rate, it finishes.
    let stdout = run_quick(name, &out, &["--epochs", "2", "--resume"]);
    assert!(stdout.contains("resumed from"), "{stdout}");
    let header = [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
    ];
    let rows = read_csv(&out.join("metrics.csv")).1;
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), [1.0, 2.0]);
    assert!(rows
        .iter()
        .all(|r| r[..header.len()].iter().all(|v| v.is_finite())));
}

/// Starts example 02, waits for a line of its output containing `wait_for`
/// and `delay` more, sends `signal`; returns its exit code and stderr.
fn interrupt_ex02(
    bin: &Path,
    args: &[&str],
    wait_for: &str,
    signal: &str,
) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("example 02 starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains(wait_for) {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no '{wait_for}' line"
        );
    }
    // Into the epoch: 120 steps of 50 images take seconds.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-s", signal, &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn ex02_sigint_and_sigterm_then_resume_give_the_uninterrupted_weights() {
    let bin = ex02_binary();
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (whole, cut) = (out_dir("02_whole"), out_dir("02_interrupted"));
    let common = [
        "--quick",
        "--epochs",
        "2",
        // 120 steps an epoch: the signal, 1.5 s after the start, lands
        // inside training even on a fast idle machine.
        "--train-subset",
        "6000",
        "--batch",
        "50",
        // The weights' moving average too: it goes through the checkpoint
        // written at the signal, mid-epoch, and is what the runs save.
        "--ema",
        "0.99",
    ];
    let with = |out: &Path, resume: bool| {
        let mut a: Vec<&str> = common.to_vec();
        a.extend(["--out", out.to_str().unwrap()].iter().copied());
        if resume {
            a.push("--resume");
        }
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |args: &[String]| {
        let o = Command::new(&bin).args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&with(&whole, false));

    let args = with(&cut, false);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = interrupt_ex02(&bin, &refs, "DeepConvNet:", "INT");
    assert_eq!(code, Some(130), "SIGINT: {stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT") && stderr.contains("resume with:"),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    eprintln!("{stderr}");

    let args = with(&cut, true);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = interrupt_ex02(&bin, &refs, "resumed from", "TERM");
    assert_eq!(code, Some(143), "SIGTERM: {stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    eprintln!("{stderr}");

    let stdout = run(&with(&cut, true));
    assert!(stdout.contains("resumed from"), "{stdout}");
    let weights = |d: &Path| std::fs::read(d.join("deep_convnet.safetensors")).unwrap();
    assert!(
        weights(&whole) == weights(&cut),
        "the interrupted and resumed run ends with other weights than the uninterrupted one"
    );
    // The per-epoch training figures are the same too (not the timings).
    let figures = |d: &Path| -> Vec<Vec<f64>> {
        let rows = read_csv(&d.join("metrics.csv")).1;
        rows.into_iter().map(|r| r[..6].to_vec()).collect()
    };
    assert_eq!(figures(&whole), figures(&cut));
}
