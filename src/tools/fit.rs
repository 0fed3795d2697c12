//! One epoch of supervised training — the loop every classification example
//! repeats: forward, softmax cross-entropy, backward, optimizer step — with
//! a progress bar ([`EpochProgress`]) that also keeps the epoch's figures.
//!
//! ```
//! use std::sync::Arc;
//! use autograd::Tensor;
//! use dlfs::tools::train_epoch;
//! use models::data::{DataLoader, InMemory};
//! use nn::{Flatten, Linear, LinearConfig, Module, Sequential};
//! use optim::{Sgd, SgdConfig};
//!
//! // Eight 1x2x2 images, label = whether the first pixel is bright.
//! let values: Vec<f32> = (0..32).map(|i| ((i * 7) % 5) as f32 / 4.0).collect();
//! let labels: Vec<usize> = values.chunks(4).map(|v| usize::from(v[0] > 0.5)).collect();
//! let data = Arc::new(InMemory::new(values, [1, 2, 2], labels).unwrap());
//! let loader = DataLoader::new(data, 4);
//! let model = Sequential::new().add(Flatten::default()).add(Linear::new(LinearConfig::new(4, 2)));
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.5, ..Default::default() });
//! let first = train_epoch(&model, &mut opt, &loader, 1, 20).mean_loss();
//! let mut last = first;
//! for epoch in 2..=20 {
//!     last = train_epoch(&model, &mut opt, &loader, epoch, 20).mean_loss();
//! }
//! assert!(last < first);
//! ```

use models::data::DataLoader;
use nn::Module;
use optim::Optimizer;

use super::progress::EpochProgress;
use super::train::count_correct;

/// Trains `model` (put in training mode) for one pass over `loader`'s epoch
/// `epoch` (its shuffle and augmentation for that epoch), stepping `opt`
/// after every batch. Returns the finished bar: `mean_loss()`, `accuracy()`
/// (on the training batches, as they were seen), `seconds()` and
/// `images_per_second()` are the epoch's figures.
pub fn train_epoch(
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    loader: &DataLoader,
    epoch: usize,
    epochs: usize,
) -> EpochProgress {
    model.train();
    let mut bar = EpochProgress::new(epoch, epochs, loader.len());
    for batch in loader.epoch(epoch as u64) {
        opt.zero_grad();
        let logits = model.forward(batch.images());
        let loss = logits.cross_entropy(batch.labels());
        loss.backward();
        opt.step();
        bar.batch(
            loss.item() as f64,
            count_correct(&logits, batch.labels()),
            batch.labels().len(),
        );
    }
    bar.finish();
    bar
}
