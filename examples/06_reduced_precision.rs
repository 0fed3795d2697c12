//! Step 6 — reduced precision: 16-bit weights lose no accuracy.
//!
//! The book notes that deep learning needs few bits: 16-bit floats are
//! enough for the weights. Here the trained DeepConvNet is stored three
//! ways — f32, IEEE f16 (5 exponent bits, 10 mantissa bits) and bfloat16
//! (f32's 8 exponent bits, 7 mantissa bits) — each file is loaded back into
//! a fresh network (the values become f32 again) and tested on the 10,000
//! MNIST test images. The 16-bit files are half the size; the accuracy is
//! the same, and few if any of the 10,000 predictions change (printed and in
//! `precision.csv`).
//!
//! ```text
//! cargo run --release --example 02_deep_convnet_mnist    # trains, writes runs/deep_convnet/deep_convnet.safetensors
//! cargo run --release --example 06_reduced_precision
//! ```
//!
//! Options: `--weights PATH` (runs/deep_convnet/deep_convnet.safetensors)
//! `--out DIR` (runs/reduced_precision) `--quick` (500 test images; without a
//! weights file it first trains a throw-away model on 600 images).

use std::path::PathBuf;
use std::sync::Arc;

use dlfs::tools::{argmax, predict, trained_deep_convnet, Args, Failure, MetricsCsv};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Dtype, Module};

/// The predicted class of each row of probabilities.
fn classes(probs: &[Vec<f32>]) -> Vec<usize> {
    probs.iter().map(|p| argmax(p)).collect()
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let weights = PathBuf::from(args.get(
        "--weights",
        "runs/deep_convnet/deep_convnet.safetensors".to_string(),
    ));
    let out = PathBuf::from(args.get("--out", "runs/reduced_precision".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    std::fs::create_dir_all(&out)?;
    let test: Arc<dyn ImageDataset> = Arc::new(Mnist::load_default(false)?);
    let test: Arc<dyn ImageDataset> = if quick {
        Arc::new(Subset::first(test, 500))
    } else {
        test
    };
    let test_loader = DataLoader::new(test.clone(), 500);

    // The trained f32 network.
    let trained = trained_deep_convnet(&weights, quick)?;
    let (probs, labels) = predict(&trained, &test_loader);
    let reference_predictions = classes(&probs);

    // Store, reload and test at each precision.
    let mut csv = MetricsCsv::new(
        out.join("precision.csv"),
        &[
            "bits",
            "exponent_bits",
            "mantissa_bits",
            "file_bytes",
            "test_acc",
            "max_weight_error",
            "predictions_changed",
        ],
    );
    println!("{} test images", test.len());
    println!(
        "precision  file size (bytes)  test accuracy  largest weight error  predictions changed"
    );
    for (name, dtype, bits, exponent, mantissa) in [
        ("f32", Dtype::F32, 32, 8, 23),
        ("f16", Dtype::F16, 16, 5, 10),
        ("bf16", Dtype::BF16, 16, 8, 7),
    ] {
        let path = out.join(format!("deep_convnet_{name}.safetensors"));
        trained.save(&path, dtype)?;
        let bytes = std::fs::metadata(&path)?.len();

        let model = DeepConvNet::new(DeepConvNetConfig::default());
        model.load(&path, true)?; // 16-bit values widen to f32 on loading
        let mut max_error = 0.0f32; // the largest rounding error of any weight
        for (stored, exact) in model.parameters().iter().zip(trained.parameters()) {
            for (x, y) in stored.to_vec().into_iter().zip(exact.to_vec()) {
                max_error = max_error.max((x - y).abs());
            }
        }
        let predictions = classes(&predict(&model, &test_loader).0);
        let correct = predictions
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        let accuracy = 100.0 * correct as f64 / labels.len() as f64;
        let changed = predictions
            .iter()
            .zip(&reference_predictions)
            .filter(|(a, b)| a != b)
            .count();
        println!("{name:>9}  {bytes:>17}  {accuracy:>12.2}%  {max_error:>20.2e}  {changed:>19}");
        csv.push(&[
            bits as f64,
            exponent as f64,
            mantissa as f64,
            bytes as f64,
            accuracy,
            max_error as f64,
            changed as f64,
        ])?;
    }
    println!("wrote {}/{{precision.csv, deep_convnet_f32.safetensors, deep_convnet_f16.safetensors, deep_convnet_bf16.safetensors}}", out.display());
    Ok(())
}
