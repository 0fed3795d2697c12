//! Step 1 — the smallest complete training script: the book's two-layer
//! network (chapters 4 and 5, `TwoLayerNet`) on MNIST.
//!
//! Flatten each 28x28 digit to 784 values, then Linear(784, 50) -> ReLU ->
//! Linear(50, 10) and softmax cross-entropy, trained with plain SGD (lr 0.1,
//! batches of 100) as the book does. Every epoch it measures accuracy on the
//! 10,000 test images (about 97% after 16 epochs, the book's figure) and
//! appends to `metrics.csv`; the weights end in `two_layer_net.safetensors`.
//!
//! ```text
//! cargo run --release --example 01_two_layer_mnist
//! cargo run --release --example 01_two_layer_mnist -- --epochs 5 --hidden 100
//! ```
//!
//! Options: `--epochs N` (16) `--hidden N` (50) `--lr F` (0.1) `--batch N` (100)
//! `--seed S` `--out DIR` (runs/two_layer_net) `--quick` (a smoke run: 1
//! epoch on 1,000 training and 500 test images).

use std::path::PathBuf;
use std::sync::Arc;

use autograd::{manual_seed, Tensor};
use dlfs::tools::{evaluate, Args, Failure, MetricsCsv};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset};
use nn::{Dtype, Linear, LinearConfig, Module};
use optim::{Optimizer, Sgd, SgdConfig};

/// The book's `TwoLayerNet`. `#[derive(Module)]` reads its layers off the
/// fields: `parameters()` (what the optimizer updates) and the saved names
/// (`fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`) come from them.
#[derive(Module)]
struct TwoLayerNet {
    fc1: Linear,
    fc2: Linear,
}

impl TwoLayerNet {
    fn new(hidden: usize) -> Self {
        TwoLayerNet {
            fc1: Linear::new(LinearConfig::new(28 * 28, hidden)),
            fc2: Linear::new(LinearConfig::new(hidden, 10)),
        }
    }
}

impl Module for TwoLayerNet {
    /// 28x28 digits flattened to 784 values -> Linear -> ReLU -> Linear (logits).
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        let h = self.fc1.forward(&x.flatten(1, -1)).relu();
        self.fc2.forward(&h)
    }
}

fn main() -> Result<(), Failure> {
    let args = Args::parse();
    autograd::set_num_threads(args.get("--threads", 0))?;
    let quick = args.flag("--quick");
    let epochs: usize = args.get("--epochs", if quick { 1 } else { 16 });
    let hidden: usize = args.get("--hidden", 50);
    let lr: f64 = args.get("--lr", 0.1);
    let batch: usize = args.get("--batch", 100);
    let seed: u64 = args.get("--seed", 0);
    let out = PathBuf::from(args.get("--out", "runs/two_layer_net".to_string()));
    args.finish(); // --help, or an unknown option: say so before any work
    std::fs::create_dir_all(&out)?;

    // 1. Data: images as [N, 1, 28, 28] batches with values in [0, 1].
    let train: Arc<dyn ImageDataset> = Arc::new(Mnist::load_default(true)?);
    let test: Arc<dyn ImageDataset> = Arc::new(Mnist::load_default(false)?);
    let (train, test): (Arc<dyn ImageDataset>, Arc<dyn ImageDataset>) = if quick {
        (
            Arc::new(Subset::first(train, 1000)),
            Arc::new(Subset::first(test, 500)),
        )
    } else {
        (train, test)
    };
    let train_loader = DataLoader::new(train.clone(), batch)
        .shuffle(true)
        .seed(seed);
    let test_loader = DataLoader::new(test.clone(), 1000);

    // 2. Model: the two layers (PyTorch's default initialisation).
    manual_seed(seed);
    let model = TwoLayerNet::new(hidden);
    println!(
        "{} parameters; {} training and {} test images",
        model.num_parameters(),
        train.len(),
        test.len()
    );

    // 3. Optimizer: w <- w - lr * dL/dw.
    let mut opt = Sgd::new(
        model.parameters(),
        SgdConfig {
            lr,
            ..Default::default()
        },
    );

    // 4. Train: forward, loss, backward, step — once per batch.
    let mut metrics = MetricsCsv::new(
        out.join("metrics.csv"),
        &["epoch", "train_loss", "test_loss", "test_acc"],
    );
    for epoch in 1..=epochs {
        let mut loss_sum = 0.0;
        for b in train_loader.epoch(epoch as u64) {
            opt.zero_grad();
            let loss = model.forward(b.images()).cross_entropy(b.labels());
            loss.backward();
            opt.step();
            loss_sum += loss.item() as f64;
        }
        let train_loss = loss_sum / train_loader.len() as f64;
        let test_ev = evaluate(&model, &test_loader, true);
        println!("epoch {epoch:2}/{epochs}  train loss {train_loss:.4}  test loss {:.4}  test accuracy {:.2}%", test_ev.loss, test_ev.accuracy);
        metrics.push(&[epoch as f64, train_loss, test_ev.loss, test_ev.accuracy])?;
    }

    // 5. Save the weights (named after the fields: fc1.weight, fc1.bias, fc2.weight, fc2.bias).
    model.save(&out.join("two_layer_net.safetensors"), Dtype::F32)?;
    println!(
        "wrote {}/{{metrics.csv, two_layer_net.safetensors}}",
        out.display()
    );
    Ok(())
}
