//! Datasets, the data loader and image transforms, as `torchvision.datasets`,
//! `torch.utils.data` and `torchvision.transforms`.
//!
//! - Files: [`Mnist`] and [`FashionMnist`] (IDX, raw or gzipped, SHA-256
//!   verified; a Fashion-MNIST sample ships with the repository),
//!   [`Cifar10`] (binary batches). A bad file — missing, wrong magic
//!   number, truncated, counts that disagree, wrong checksum, bad gzip — is
//!   a [`DataError`] naming the file, never a panic.
//! - [`Dataset`]: length and indexed access to items of any type;
//!   [`ImageDataset`] for labelled `([C, H, W] image, label)` items (the
//!   datasets above); [`DigitScenes`], segmentation scenes of digits with
//!   per-pixel masks, generated from a seed; [`Subset`] and [`random_split`] take parts of one
//!   without copying.
//! - [`DataLoader`]: batches shuffled each epoch from a seed, augmented on
//!   background threads, the items stacked by [`Collate`] (labelled images
//!   into `[N, C, H, W]` tensors and label vectors).
//! - [`DistributedSampler`]: one process's disjoint share of every epoch,
//!   for data-parallel training (the `dist` crate builds it from its world).
//! - [`transforms`]: random crop, flip, shift, affine, colour jitter,
//!   normalize, pad, resize, composable.
//!
//! ```no_run
//! use std::sync::Arc;
//! use models::data::transforms::{Compose, Normalize, RandomCrop};
//! use models::data::{DataLoader, Dataset, Mnist};
//!
//! let train = Arc::new(Mnist::load_default(true)?);
//! let loader = DataLoader::new(train, 100)
//!     .shuffle(true)
//!     .seed(7)
//!     .drop_last(true)
//!     .transform(Compose::new().then(RandomCrop::new(28, 2)).then(Normalize::mnist()));
//! for batch in loader.epoch(0) {
//!     let (x, t) = (batch.images(), batch.labels()); // [100, 1, 28, 28], 100 labels
//! #   let _ = (x, t);
//! }
//! # Ok::<(), models::data::DataError>(())
//! ```

pub mod cifar;
pub mod collate;
pub mod dataset;
pub mod error;
pub mod idx;
pub mod image;
pub mod io;
pub mod loader;
pub mod mnist;
pub mod sampler;
pub mod scenes;
pub mod seed;
pub mod subset;
pub mod transforms;

pub use cifar::Cifar10;
pub use collate::{Collate, TensorStack};
pub use dataset::{ByteImages, Dataset, ImageDataset, InMemory};
pub use error::{DataError, Result};
pub use image::Image;
pub use loader::{Batch, Batches, DataLoader};
pub use mnist::{FashionMnist, Mnist};
pub use sampler::{DistributedSampler, Tail};
pub use scenes::DigitScenes;
pub use subset::{random_split, Subset};
pub use transforms::Transform;
