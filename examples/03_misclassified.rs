//! Step 3 — what the trained DeepConvNet still gets wrong: the book's figure
//! of misclassified test digits.
//!
//! Loads the weights example 02 wrote, evaluates them on the 10,000 MNIST
//! test images, prints the accuracy, and draws every misclassified digit
//! (up to `--max`) in a PNG grid, each captioned `true → predicted` with the
//! model's confidence. Most of them are digits a person would hesitate over.
//!
//! ```text
//! cargo run --release --example 02_deep_convnet_mnist    # trains, writes runs/deep_convnet/deep_convnet.safetensors
//! cargo run --release --example 03_misclassified         # writes runs/misclassified/misclassified.png
//! ```
//!
//! Options: `--weights PATH` (runs/deep_convnet/deep_convnet.safetensors)
//! `--max N` (images in the grid, 100) `--out DIR` (runs/misclassified)
//! `--quick` (500 test images; without a weights file it first trains a
//! throw-away model on 600 images, so it runs on its own).

use std::path::PathBuf;
use std::sync::Arc;

use dlfs::tools::{
    argmax, image_grid_png, predict, trained_deep_convnet, Args, Failure, GridImage,
};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let weights = PathBuf::from(args.get(
        "--weights",
        "runs/deep_convnet/deep_convnet.safetensors".to_string(),
    ));
    let max_shown: usize = args.get("--max", 100);
    let out = PathBuf::from(args.get("--out", "runs/misclassified".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    std::fs::create_dir_all(&out)?;

    // The test set (a part of it in a quick run).
    let test: Arc<dyn ImageDataset> = Arc::new(Mnist::load_default(false)?);
    let test: Arc<dyn ImageDataset> = if quick {
        Arc::new(Subset::first(test, 500))
    } else {
        test
    };
    let test_loader = DataLoader::new(test.clone(), 500);

    // The trained network: strict loading, every name and shape must match.
    let model = trained_deep_convnet(&weights, quick)?;

    // Softmax probabilities of every test image, in dataset order.
    let (probs, labels) = predict(&model, &test_loader);
    let mut wrong = Vec::new(); // (dataset index, true label, predicted label, confidence)
    for (i, (p, &label)) in probs.iter().zip(&labels).enumerate() {
        let pred = argmax(p);
        let conf = p[pred];
        if pred != label {
            wrong.push((i, label, pred, conf));
        }
    }
    let accuracy = 100.0 * (1.0 - wrong.len() as f64 / labels.len() as f64);
    println!(
        "test accuracy {accuracy:.2}%: {} of {} test images misclassified",
        wrong.len(),
        labels.len()
    );

    // The grid: each misclassified digit with "true → predicted (confidence)".
    let shown: Vec<GridImage> = wrong
        .iter()
        .take(max_shown)
        .map(|&(i, label, pred, conf)| {
            GridImage::from_image(
                test.get(i).0,
                format!("{label} → {pred} ({:.0}%)", 100.0 * conf),
            )
        })
        .collect();
    let title = format!(
        "misclassified test digits: true → predicted (accuracy {accuracy:.2}%, {} wrong)",
        wrong.len()
    );
    image_grid_png(&out.join("misclassified.png"), &title, &shown, 10, 3)?;

    // The same list as CSV, for a closer look.
    let mut csv = String::from("index,label,predicted,confidence\n");
    for &(i, label, pred, conf) in &wrong {
        csv += &format!("{i},{label},{pred},{conf}\n");
    }
    std::fs::write(out.join("misclassified.csv"), csv)?;
    println!(
        "wrote {}/{{misclassified.png, misclassified.csv}} ({} digits drawn)",
        out.display(),
        shown.len()
    );
    Ok(())
}
