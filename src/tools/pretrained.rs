//! The DeepConvNet that example 02 trains, for the examples that build on it
//! (misclassified digits, reduced precision, ...).

use std::path::Path;
use std::sync::Arc;

use autograd::manual_seed;
use models::data::{DataLoader, ImageDataset, Mnist, Subset};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::Module;
use optim::{Adam, AdamConfig};

use crate::tools::{train_epoch, Failure};

/// The network trained by example 02, loaded strictly (every name and shape
/// must match) from `weights`. Without that file: an error that says how to
/// make it, or, in a `quick` smoke run, a throw-away model trained on 600
/// images so the example still runs on its own.
pub fn trained_deep_convnet(weights: &Path, quick: bool) -> Result<DeepConvNet, Failure> {
    let model = DeepConvNet::new(DeepConvNetConfig::default());
    if weights.exists() {
        model.load(weights, true)?;
        println!("loaded {}", weights.display());
        return Ok(model);
    }
    if !quick {
        return Err(Failure::msg(format!(
            "{}: no trained weights there. Train them first with\n    cargo run --release --example 02_deep_convnet_mnist\n\
             (it writes runs/deep_convnet/deep_convnet.safetensors), or name a file with --weights PATH",
            weights.display()
        )));
    }
    println!(
        "quick run without {}: training a throw-away model on 600 images",
        weights.display()
    );
    manual_seed(0);
    let train: Arc<dyn ImageDataset> =
        Arc::new(Subset::first(Arc::new(Mnist::load_default(true)?), 600));
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    train_epoch(
        &model,
        &mut opt,
        &DataLoader::new(train, 100).shuffle(true),
        1,
        1,
    );
    Ok(model)
}
