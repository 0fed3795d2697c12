//! Step 11 — semantic segmentation: a class for every pixel.
//!
//! The scenes are 64x64 canvases with 2 to 4 MNIST digits placed at random
//! without overlap; each pixel's label is its digit's class where the
//! digit's ink is, else background (11 classes; `models::data::DigitScenes`,
//! generated on the fly from the seed: training scenes from the training
//! digits, test scenes from the test digits). Two fully convolutional
//! networks, trained with per-pixel cross-entropy (`[N, 11, 64, 64]` logits
//! against `[N, 64, 64]` labels):
//!
//! - `--decoder fcn` (default), FCN-8s style (Long et al. 2015): a strided
//!   convolution encoder down to 1/8, class scores at 1/8, 1/4 and 1/2,
//!   upsampled by learned `ConvTranspose2d`s and added (skip connections);
//! - `--decoder unpool`, SegNet style (Badrinarayanan et al. 2017): max
//!   pools that keep their argmax indices, and a decoder that puts values
//!   back where the maxima were (`max_unpool2d`) before each convolution.
//!
//! Reported on the test scenes (1,000): pixel accuracy and mean IoU over
//! the 11 classes (per epoch in `metrics.csv`, curves in `curves.png`), and
//! `segmentation.png`: scenes, true masks and predicted masks side by side,
//! a colour per class. The weights end in `<decoder>.safetensors`.
//!
//! ```text
//! cargo run --release --example 11_fcn_segmentation
//! cargo run --release --example 11_fcn_segmentation -- --decoder unpool
//! ```
//!
//! Options: `--decoder fcn|unpool` `--epochs N` (4) `--train-scenes N`
//! (10,000) `--test-scenes N` (1,000) `--batch N` (32) `--lr F` (0.002)
//! `--seed S` `--threads T` `--background-weight F` (the background's
//! class weight in the loss, 1) `--show N` (scenes drawn, 6) `--out DIR`
//! (runs/segmentation_<decoder>) `--quick` (1 epoch on 256 training and 64
//! test scenes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use autograd::{manual_seed, no_grad, CrossEntropyOptions, PoolOptions, Tensor, UnpoolOptions};
use dlfs::tools::{
    image_grid_png, plot_curves_png, Args, Curve, EpochProgress, Failure, GridImage, MetricsCsv,
};
use models::data::{DataLoader, Dataset, DigitScenes, Image, Mnist};
use nn::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Dtype, Module};
use optim::{Adam, AdamConfig, Optimizer};

const CLASSES: usize = DigitScenes::CLASSES;
const HEADER: [&str; 6] = [
    "epoch",
    "train_loss",
    "train_pixel_acc",
    "test_loss",
    "test_pixel_acc",
    "test_miou",
];

/// A 3x3 convolution (padding 1) with the given stride.
fn conv(i: usize, o: usize, stride: usize) -> Conv2d {
    Conv2d::new(Conv2dConfig::new(i, o, 3).padding(1).stride(stride))
}

/// Learned 2x upsampling: a 4x4 transposed convolution, stride 2, padding 1.
fn up2(c: usize) -> ConvTranspose2d {
    ConvTranspose2d::new(ConvTranspose2dConfig::new(c, c, 4).stride(2).padding(1))
}

/// FCN-8s style: strided convolutions to 1/2, 1/4, 1/8 of the scene, class
/// scores at each of those, the coarsest upsampled and added to the next
/// finer one, then upsampled to full size.
#[derive(Module)]
struct Fcn {
    conv1: Conv2d,   // 1 -> 16, 64x64
    down1: Conv2d,   // 16 -> 32, 32x32 (1/2)
    down2: Conv2d,   // 32 -> 48, 16x16 (1/4)
    down3: Conv2d,   // 48 -> 64, 8x8 (1/8)
    context: Conv2d, // 64 -> 64, 8x8
    score8: Conv2d,  // 1x1 scores at 1/8
    score4: Conv2d,  // ... at 1/4
    score2: Conv2d,  // ... at 1/2
    up8: ConvTranspose2d,
    up4: ConvTranspose2d,
    up2: ConvTranspose2d,
}

impl Fcn {
    fn new() -> Self {
        let score = |i| Conv2d::new(Conv2dConfig::new(i, CLASSES, 1));
        Fcn {
            conv1: conv(1, 16, 1),
            down1: conv(16, 32, 2),
            down2: conv(32, 48, 2),
            down3: conv(48, 64, 2),
            context: conv(64, 64, 1),
            score8: score(64),
            score4: score(48),
            score2: score(32),
            up8: up2(CLASSES),
            up4: up2(CLASSES),
            up2: up2(CLASSES),
        }
    }
}

impl Module for Fcn {
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        let h1 = self.conv1.forward(x).relu();
        let s2 = self.down1.forward(&h1).relu();
        let s4 = self.down2.forward(&s2).relu();
        let s8 = self.down3.forward(&s4).relu();
        let s8 = self.context.forward(&s8).relu();
        let y = self.up8.forward(&self.score8.forward(&s8)) + self.score4.forward(&s4);
        let y = self.up4.forward(&y) + self.score2.forward(&s2);
        self.up2.forward(&y)
    }
}

/// SegNet style: 3x3 convolutions and 2x2 max pools that keep their
/// indices; the decoder unpools to the recorded positions, then convolves.
#[derive(Module)]
struct SegNet {
    enc1: Conv2d, // 1 -> 16, 64x64, pooled to 32x32
    enc2: Conv2d, // 16 -> 32, 32x32, pooled to 16x16
    enc3: Conv2d, // 32 -> 64, 16x16, pooled to 8x8
    enc4: Conv2d, // 64 -> 64, 8x8
    dec3: Conv2d, // unpooled to 16x16, 64 -> 32
    dec2: Conv2d, // unpooled to 32x32, 32 -> 16
    dec1: Conv2d, // unpooled to 64x64, 16 -> 11 class scores
}

impl SegNet {
    fn new() -> Self {
        SegNet {
            enc1: conv(1, 16, 1),
            enc2: conv(16, 32, 1),
            enc3: conv(32, 64, 1),
            enc4: conv(64, 64, 1),
            dec3: conv(64, 32, 1),
            dec2: conv(32, 16, 1),
            dec1: conv(16, CLASSES, 1),
        }
    }
}

impl Module for SegNet {
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        let pool = PoolOptions::new(2);
        let unpool = UnpoolOptions::new(2);
        let (h, i1) = self.enc1.forward(x).relu().max_pool2d_with_indices(pool);
        let (h, i2) = self.enc2.forward(&h).relu().max_pool2d_with_indices(pool);
        let (h, i3) = self.enc3.forward(&h).relu().max_pool2d_with_indices(pool);
        let h = self.enc4.forward(&h).relu();
        let h = self.dec3.forward(&h.max_unpool2d(&i3, unpool)).relu();
        let h = self.dec2.forward(&h.max_unpool2d(&i2, unpool)).relu();
        self.dec1.forward(&h.max_unpool2d(&i1, unpool))
    }
}

/// Per-pixel predictions: the class of the largest logit, `[N, C, H, W]` to `N*H*W`.
fn predict_pixels(logits: &Tensor) -> Vec<usize> {
    let s = logits.shape();
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let v = logits.to_vec();
    let mut out = Vec::with_capacity(n * hw);
    for b in 0..n {
        for p in 0..hw {
            let at = |k: usize| v[(b * c + k) * hw + p];
            out.push((0..c).fold(0, |best, k| if at(k) > at(best) { k } else { best }));
        }
    }
    out
}

/// A confusion matrix over the classes: `[truth][prediction]` pixel counts.
struct Confusion([[u64; CLASSES]; CLASSES]);

impl Confusion {
    fn add(&mut self, truth: &[usize], pred: &[usize]) {
        for (&t, &p) in truth.iter().zip(pred) {
            self.0[t][p] += 1;
        }
    }
    fn pixel_accuracy(&self) -> f64 {
        let total: u64 = self.0.iter().flatten().sum();
        let right: u64 = (0..CLASSES).map(|k| self.0[k][k]).sum();
        100.0 * right as f64 / total.max(1) as f64
    }
    /// IoU per class, `TP / (TP + FP + FN)`, `None` for a class absent from
    /// both the truth and the predictions.
    fn iou(&self) -> Vec<Option<f64>> {
        (0..CLASSES)
            .map(|k| {
                let tp = self.0[k][k];
                let fn_: u64 = self.0[k].iter().sum::<u64>() - tp;
                let fp: u64 = (0..CLASSES).map(|t| self.0[t][k]).sum::<u64>() - tp;
                let union = tp + fp + fn_;
                (union > 0).then(|| 100.0 * tp as f64 / union as f64)
            })
            .collect()
    }
    fn mean_iou(&self) -> f64 {
        let present: Vec<f64> = self.iou().into_iter().flatten().collect();
        present.iter().sum::<f64>() / present.len().max(1) as f64
    }
}

/// Mean loss and the confusion matrix on a loader's scenes (eval mode, no gradient).
fn evaluate(
    model: &dyn Module,
    loader: &DataLoader<(Image, Vec<usize>)>,
    loss_opts: &CrossEntropyOptions,
) -> (f64, Confusion) {
    model.eval();
    let (mut loss, mut batches) = (0.0, 0);
    let mut confusion = Confusion([[0; CLASSES]; CLASSES]);
    no_grad(|| {
        for batch in loader.epoch(0) {
            let (x, labels) = &batch.data;
            let logits = model.forward(x);
            loss += f64::from(logits.cross_entropy_opts(labels, loss_opts).item());
            batches += 1;
            confusion.add(labels, &predict_pixels(&logits));
        }
    });
    model.train();
    (loss / batches.max(1) as f64, confusion)
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let decoder: String = args.get("--decoder", "fcn".to_string());
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 4 });
    let train_n: usize = args.get("--train-scenes", if quick { 256 } else { 10_000 });
    let test_n: usize = args.get("--test-scenes", if quick { 64 } else { 1_000 });
    let batch: usize = args.get("--batch", 32);
    let lr: f64 = args.get("--lr", 2e-3);
    let seed: u64 = args.get("--seed", 0);
    let background_weight: f64 = args.get("--background-weight", 1.0);
    let show: usize = args.get("--show", 6);
    let out = PathBuf::from(args.get("--out", format!("runs/segmentation_{decoder}")));
    args.finish(); // --help, or an unknown option: say so before any work
    if decoder != "fcn" && decoder != "unpool" {
        return Err(Failure::msg(format!(
            "--decoder {decoder}: expected fcn or unpool"
        )));
    }
    std::fs::create_dir_all(&out)?;

    // Scenes from a seed; the test scenes use a seed of their own.
    let train = Arc::new(DigitScenes::new(
        Arc::new(Mnist::load_default(true)?),
        train_n,
        seed,
    ));
    let test = Arc::new(DigitScenes::new(
        Arc::new(Mnist::load_default(false)?),
        test_n,
        seed ^ 0x7e57,
    ));
    let train_loader = DataLoader::new(train.clone(), batch)
        .shuffle(true)
        .seed(seed)
        .drop_last(true);
    let test_loader = DataLoader::new(test.clone(), 50);

    manual_seed(seed);
    let model: Box<dyn Module> = if decoder == "fcn" {
        Box::new(Fcn::new())
    } else {
        Box::new(SegNet::new())
    };
    println!(
        "{} ({} parameters) on {} training scenes of 64x64, {} epochs; {} test scenes",
        if decoder == "fcn" {
            "FCN-8s-style network"
        } else {
            "SegNet-style network (max_unpool2d decoder)"
        },
        model.num_parameters(),
        train.len(),
        epochs,
        test.len()
    );
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr,
            ..Default::default()
        },
    );
    // Background is ~90% of the pixels: a weight below 1 makes the digits'
    // pixels count for more (the mean divides by the summed weights).
    let mut class_weights = vec![1.0; CLASSES];
    class_weights[DigitScenes::BACKGROUND] = background_weight;
    let loss_opts = CrossEntropyOptions::new().weight(class_weights);
    let mut metrics = MetricsCsv::new(out.join("metrics.csv"), &HEADER);
    let (mut losses, mut test_accs, mut mious) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    let pixels = 64 * 64;
    for epoch in 1..=epochs {
        let mut bar = EpochProgress::new(epoch, epochs, train_loader.len());
        for b in train_loader.epoch(epoch as u64) {
            let (x, labels) = &b.data;
            let logits = model.forward(x);
            let loss = logits.cross_entropy_opts(labels, &loss_opts);
            opt.zero_grad();
            loss.backward();
            opt.step();
            let pred = predict_pixels(&logits.detach());
            let right = pred.iter().zip(labels).filter(|(p, t)| p == t).count();
            bar.batch(f64::from(loss.item()), right, x.shape()[0] * pixels);
        }
        bar.finish();
        let (test_loss, confusion) = evaluate(model.as_ref(), &test_loader, &loss_opts);
        let (acc, miou) = (confusion.pixel_accuracy(), confusion.mean_iou());
        println!(
            "epoch {epoch:2}/{epochs}  train loss {:.4} pixel acc {:.2}%  test loss {test_loss:.4} pixel acc {acc:.2}% mIoU {miou:.2}%",
            bar.mean_loss(),
            bar.accuracy(),
        );
        metrics.push(&[
            epoch as f64,
            bar.mean_loss(),
            bar.accuracy(),
            test_loss,
            acc,
            miou,
        ])?;
        losses.push((epoch as f64, bar.mean_loss()));
        test_accs.push((epoch as f64, acc));
        mious.push((epoch as f64, miou));
        if epoch == epochs {
            let ious = confusion.iou();
            let per_class: Vec<String> = ious
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    let name = if k == DigitScenes::BACKGROUND {
                        "bg".to_string()
                    } else {
                        k.to_string()
                    };
                    format!("{name}: {:.1}", v.unwrap_or(f64::NAN))
                })
                .collect();
            println!("IoU per class (%): {}", per_class.join("  "));
        }
    }
    plot_curves_png(
        &out.join("curves.png"),
        &format!("segmentation of digit scenes, {decoder} decoder"),
        &[
            ("train loss", vec![Curve::new("train", losses)]),
            (
                "test (%)",
                vec![
                    Curve::new("pixel accuracy", test_accs.clone()),
                    Curve::new("mean IoU", mious.clone()),
                ],
            ),
        ],
    )?;

    // Scenes, true masks and predictions side by side.
    let mut cells = Vec::new();
    model.eval();
    for i in 0..show.min(test.len()) {
        let (image, mask) = test.get(i);
        let pred =
            no_grad(|| predict_pixels(&model.forward(&image.clone().into_tensor().unsqueeze(0))));
        let right = pred.iter().zip(&mask).filter(|(p, t)| p == t).count();
        cells.push(GridImage::from_image(image, format!("test scene {i}")));
        cells.push(GridImage::from_mask(&mask, 64, 64, "true mask"));
        cells.push(GridImage::from_mask(
            &pred,
            64,
            64,
            format!("predicted, {:.1}%", 100.0 * right as f64 / pixels as f64),
        ));
    }
    image_grid_png(
        &out.join("segmentation.png"),
        &format!("{decoder}: scene, truth, prediction (colour per digit, black = background)"),
        &cells,
        3,
        3,
    )?;
    model.save(&out.join(format!("{decoder}.safetensors")), Dtype::F32)?;
    let (acc, miou) = (
        test_accs.last().map_or(0.0, |a| a.1),
        mious.last().map_or(0.0, |a| a.1),
    );
    println!(
        "final test pixel accuracy {acc:.2}%, mean IoU {miou:.2}% ({decoder}, {} test scenes, {:.0} s)",
        test.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "wrote {}/{{metrics.csv, curves.png, segmentation.png, {decoder}.safetensors}}",
        out.display()
    );
    Ok(())
}
