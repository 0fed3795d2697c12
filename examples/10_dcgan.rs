//! Step 10 — image generation: a DCGAN (Radford, Metz and Chintala 2016)
//! learns to draw digits from noise.
//!
//! The generator maps 100 numbers drawn from N(0, 1) to a 28×28 image:
//! `ConvTranspose2d` 100 → 2w at 7×7, then 2w → w at 14×14 and w → 1 at
//! 28×28 (kernel 4, stride 2), with `BatchNorm2d` and ReLU between and tanh
//! at the end. The discriminator mirrors it with strided `Conv2d`s,
//! LeakyReLU(0.2) and `BatchNorm2d` (none on its first layer) down to one
//! logit. Both start from N(0, 0.02) weights and learn with Adam (lr 2e-4,
//! β1 0.5) and the binary cross-entropy of the logits: the discriminator
//! tells the training images (target 1) from generated ones (target 0),
//! the generator makes the discriminator say 1 (the non-saturating loss).
//!
//! After every epoch it draws the same 64 noise vectors (`samples_epoch_NN.png`);
//! at the end it writes the loss curves (`losses.png`, `losses.csv`), the
//! generator's weights, and measures the images: a trained DeepConvNet
//! classifies 10,000 generated digits (the class histogram, the
//! Inception-style score exp(E[KL(p(y|x) ‖ p(y))]), 10 at best) and the
//! Fréchet distance between its 50-wide hidden features of generated and
//! of real test images, beside the same figures for real images
//! (`quality.csv`).
//!
//! ```text
//! cargo run --release --example 02_deep_convnet_mnist   # the classifier (or one is trained here)
//! cargo run --release --example 10_dcgan
//! cargo run --release --example 10_dcgan -- --dataset fashion
//! ```
//!
//! Options: `--dataset mnist|fashion` `--epochs N` (3) `--width W` (32)
//! `--batch N` (128) `--classifier PATH` (02's weights for MNIST; else one
//! is trained for `--classifier-epochs` (2) and saved) `--samples N`
//! (10,000) `--seed S` `--threads N` `--out DIR` (runs/dcgan) `--quick`
//! (one epoch on 512 images, width 16, 256 samples measured).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use autograd::{manual_seed, no_grad, Tensor};
use dlfs::tools::gan_metrics::{
    class_histogram, deep_convnet_features, frechet_distance, inception_score,
};
use dlfs::tools::{
    fashion_mnist, image_grid_png, plot_curves_png, train_epoch, Args, Curve, Failure, GridImage,
    MetricsCsv,
};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{
    init, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d,
    ConvTranspose2dConfig, Dtype, Flatten, LeakyReLU, Module, ReLU, Sequential, Tanh,
};
use optim::{Adam, AdamConfig, Optimizer};

const NOISE: usize = 100;
const LOSS_HEADER: [&str; 6] = ["epoch", "iteration", "loss_d", "loss_g", "d_real", "d_fake"];

fn generator(w: usize) -> Sequential {
    let up = |i, o| {
        ConvTranspose2d::new(
            ConvTranspose2dConfig::new(i, o, 4)
                .stride(2)
                .padding(1)
                .bias(false),
        )
    };
    Sequential::new()
        .add(ConvTranspose2d::new(
            ConvTranspose2dConfig::new(NOISE, 2 * w, 7).bias(false),
        ))
        .add(BatchNorm2d::new(BatchNormConfig::new(2 * w)))
        .add(ReLU)
        .add(up(2 * w, w))
        .add(BatchNorm2d::new(BatchNormConfig::new(w)))
        .add(ReLU)
        .add(ConvTranspose2d::new(
            ConvTranspose2dConfig::new(w, 1, 4).stride(2).padding(1),
        ))
        .add(Tanh)
}

fn discriminator(w: usize) -> Sequential {
    let down = |i, o| Conv2d::new(Conv2dConfig::new(i, o, 4).stride(2).padding(1).bias(false));
    Sequential::new()
        .add(down(1, w))
        .add(LeakyReLU::new(0.2))
        .add(down(w, 2 * w))
        .add(BatchNorm2d::new(BatchNormConfig::new(2 * w)))
        .add(LeakyReLU::new(0.2))
        .add(Conv2d::new(Conv2dConfig::new(2 * w, 1, 7)))
        .add(Flatten::default())
}

/// Radford et al.'s initialisation: convolution weights N(0, 0.02),
/// batch-norm scales N(1, 0.02), every bias 0.
fn dcgan_init(m: &Sequential) {
    for (name, p) in m.named_parameters() {
        if name.ends_with("bias") {
            init::zeros_(&p);
        } else if p.shape().len() == 1 {
            init::normal_(&p, 1.0, 0.02);
        } else {
            init::normal_(&p, 0.0, 0.02);
        }
    }
}

/// Images in [-1, 1] (the generator's tanh range) back to [0, 1].
fn to_unit(x: &Tensor) -> Tensor {
    (x + 1.0) * 0.5
}

/// `n` generated images in [0, 1], in evaluation mode (batch norm's running
/// statistics), from noise drawn with the global generator.
fn generate(g: &Sequential, n: usize) -> Tensor {
    g.eval();
    let parts: Vec<Tensor> = no_grad(|| {
        (0..n)
            .step_by(500)
            .map(|s| to_unit(&g.forward(&Tensor::randn([500.min(n - s), NOISE, 1, 1]))))
            .collect()
    });
    g.train();
    Tensor::cat(&parts, 0)
}

/// The first `n` images of a dataset as one tensor.
fn images(ds: Arc<dyn ImageDataset>, n: usize) -> Tensor {
    let n = n.min(ds.len());
    let batch = DataLoader::new(Arc::new(Subset::first(ds, n)), n)
        .epoch(0)
        .next()
        .expect("one batch");
    batch.data.0
}

fn sample_grid(path: &Path, title: &str, x: &Tensor) -> Result<(), Failure> {
    let cells: Vec<GridImage> = x
        .to_vec()
        .chunks(28 * 28)
        .map(|v| GridImage {
            values: v.to_vec(),
            channels: 1,
            height: 28,
            width: 28,
            caption: String::new(),
        })
        .collect();
    image_grid_png(path, title, &cells, 8, 2)?;
    Ok(())
}

/// The classifier the images are measured with: `path` if it exists, else
/// a DeepConvNet trained here on `train` for `epochs` (and saved in `out`).
fn classifier(
    path: Option<PathBuf>,
    train: Arc<dyn ImageDataset>,
    epochs: usize,
    out: &Path,
) -> Result<DeepConvNet, Failure> {
    let model = DeepConvNet::new(DeepConvNetConfig::default());
    if let Some(p) = path.filter(|p| p.exists()) {
        model.load(&p, true)?;
        println!("classifier: loaded {}", p.display());
        return Ok(model);
    }
    println!(
        "classifier: training a DeepConvNet on {} images for {epochs} epochs",
        train.len()
    );
    let loader = DataLoader::new(train, 100).shuffle(true).drop_last(true);
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    for epoch in 1..=epochs {
        train_epoch(&model, &mut opt, &loader, epoch, epochs);
    }
    model.save(&out.join("classifier.safetensors"), Dtype::F32)?;
    Ok(model)
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let dataset: String = args.get("--dataset", "mnist".to_string());
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 3 });
    let width: usize = args.get("--width", if quick { 16 } else { 32 });
    let batch: usize = args.get("--batch", if quick { 64 } else { 128 });
    let classifier_path: Option<PathBuf> = args.opt("--classifier");
    let classifier_epochs: usize = args.get("--classifier-epochs", if quick { 1 } else { 2 });
    let samples: usize = args.get("--samples", if quick { 256 } else { 10_000 });
    let seed: u64 = args.get("--seed", 0);
    let out = PathBuf::from(args.get("--out", "runs/dcgan".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    std::fs::create_dir_all(&out)?;

    let (train, test): (Arc<dyn ImageDataset>, Arc<dyn ImageDataset>) = match dataset.as_str() {
        "mnist" => (
            Arc::new(Mnist::load_default(true)?),
            Arc::new(Mnist::load_default(false)?),
        ),
        "fashion" => {
            let (a, b) = fashion_mnist(quick)?;
            (Arc::new(a), Arc::new(b))
        }
        other => {
            return Err(Failure::msg(format!(
                "unknown dataset '{other}' (mnist or fashion)"
            )))
        }
    };
    let train: Arc<dyn ImageDataset> = if quick {
        Arc::new(Subset::first(train, 512))
    } else {
        train
    };
    let loader = DataLoader::new(train.clone(), batch)
        .shuffle(true)
        .seed(seed)
        .drop_last(true);

    manual_seed(seed);
    let (g, d) = (generator(width), discriminator(width));
    dcgan_init(&g);
    dcgan_init(&d);
    let adam = AdamConfig {
        lr: 2e-4,
        betas: (0.5, 0.999),
        ..Default::default()
    };
    let (mut opt_g, mut opt_d) = (
        Adam::new(g.parameters(), adam),
        Adam::new(d.parameters(), adam),
    );
    let fixed_noise = Tensor::randn([64, NOISE, 1, 1]);
    println!(
        "DCGAN on {dataset}: {} training images, batch {batch}, width {width}, {epochs} epochs; \
         generator {} parameters, discriminator {}",
        train.len(),
        g.num_parameters(),
        d.num_parameters()
    );

    let mut csv = MetricsCsv::new(out.join("losses.csv"), &LOSS_HEADER);
    let (mut curve_d, mut curve_g) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let per_epoch = loader.len();
    let report_every = (per_epoch / 10).max(1);
    let mut iteration = 0usize;
    for epoch in 1..=epochs {
        let mut window = [0.0f64; 4];
        let mut in_window = 0;
        for b in loader.epoch(epoch as u64) {
            let real = b.images() * 2.0 - 1.0;
            let n = real.shape()[0];
            let (ones, zeros) = (Tensor::ones([n, 1]), Tensor::zeros([n, 1]));
            let fake = g.forward(&Tensor::randn([n, NOISE, 1, 1]));

            // The discriminator: real images are 1, generated ones 0. Its
            // loss is backpropagated before either network steps.
            let d_real = d.forward(&real);
            let d_fake = d.forward(&fake.detach());
            let loss_d = d_real.bce_with_logits(&ones) + d_fake.bce_with_logits(&zeros);
            opt_d.zero_grad();
            loss_d.backward();
            opt_d.step();

            // The generator: make the updated discriminator say 1.
            let loss_g = d.forward(&fake).bce_with_logits(&ones);
            opt_g.zero_grad();
            loss_g.backward();
            opt_g.step();

            iteration += 1;
            let probs = |t: &Tensor| f64::from(t.sigmoid().mean().item());
            let row = [
                f64::from(loss_d.item()),
                f64::from(loss_g.item()),
                probs(&d_real),
                probs(&d_fake),
            ];
            for (w, v) in window.iter_mut().zip(row) {
                *w += v;
            }
            in_window += 1;
            if iteration.is_multiple_of(report_every) || iteration.is_multiple_of(per_epoch) {
                let m = window.map(|v| v / in_window as f64);
                let x = iteration as f64 / per_epoch as f64;
                csv.push(&[epoch as f64, iteration as f64, m[0], m[1], m[2], m[3]])?;
                curve_d.push((x, m[0]));
                curve_g.push((x, m[1]));
                println!(
                    "epoch {epoch}/{epochs}  iteration {iteration:5}  loss D {:.4}  G {:.4}  D(real) {:.3}  D(fake) {:.3}  {:.0} s",
                    m[0], m[1], m[2], m[3],
                    start.elapsed().as_secs_f64()
                );
                window = [0.0; 4];
                in_window = 0;
            }
        }
        g.eval();
        let grid = no_grad(|| to_unit(&g.forward(&fixed_noise)));
        g.train();
        sample_grid(
            &out.join(format!("samples_epoch_{epoch:02}.png")),
            &format!("DCGAN on {dataset}, the same noise after epoch {epoch}"),
            &grid,
        )?;
        if epoch == epochs {
            sample_grid(
                &out.join("samples.png"),
                &format!("DCGAN on {dataset}: 64 samples after {epochs} epochs"),
                &grid,
            )?;
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();
    println!("trained in {train_seconds:.0} s");
    g.save(&out.join("generator.safetensors"), Dtype::F32)?;
    plot_curves_png(
        &out.join("losses.png"),
        &format!("DCGAN on {dataset}: losses (x: epochs)"),
        &[(
            "binary cross-entropy",
            vec![
                Curve::new("discriminator", curve_d),
                Curve::new("generator", curve_g),
            ],
        )],
    )?;

    // Quality: what a classifier makes of the generated images.
    let default_path =
        (dataset == "mnist").then(|| PathBuf::from("runs/deep_convnet/deep_convnet.safetensors"));
    let clf = classifier(
        classifier_path.or(default_path),
        train.clone(),
        classifier_epochs,
        &out,
    )?;
    let fake = generate(&g, samples);
    let real_test = images(test.clone(), samples);
    let real_train = images(train.clone(), samples);
    let (p_fake, f_fake) = deep_convnet_features(&clf, &fake, 500);
    let (p_test, f_test) = deep_convnet_features(&clf, &real_test, 500);
    let (_, f_train) = deep_convnet_features(&clf, &real_train, 500);
    let hist_fake = class_histogram(&p_fake);
    let hist_test = class_histogram(&p_test);
    let (is_fake, is_test) = (inception_score(&p_fake), inception_score(&p_test));
    let fd_fake = frechet_distance(&f_fake, &f_test);
    let fd_train = frechet_distance(&f_train, &f_test);

    let mut header = vec!["generated", "images", "inception_score", "frechet_distance"];
    let classes: Vec<String> = (0..hist_fake.len()).map(|c| format!("class{c}")).collect();
    header.extend(classes.iter().map(String::as_str));
    let mut quality = MetricsCsv::new(out.join("quality.csv"), &header);
    for (generated, n, is, fd, hist) in [
        (1.0, fake.shape()[0], is_fake, fd_fake, &hist_fake),
        (0.0, real_test.shape()[0], is_test, fd_train, &hist_test),
    ] {
        let mut row = vec![generated, n as f64, is, fd];
        row.extend(hist.iter().map(|&c| c as f64));
        quality.push(&row)?;
    }
    println!(
        "classes of {} generated images: {hist_fake:?}",
        fake.shape()[0]
    );
    println!(
        "classes of {} real test images:  {hist_test:?}",
        real_test.shape()[0]
    );
    println!("inception score: generated {is_fake:.2}, real test images {is_test:.2} (10 at most)");
    println!(
        "Fréchet distance to the test images' features: generated {fd_fake:.2}, \
         real training images {fd_train:.2} (the floor)"
    );
    println!(
        "wrote {}/{{samples_epoch_NN.png, samples.png, losses.png, losses.csv, quality.csv, generator.safetensors}}",
        out.display()
    );
    Ok(())
}
