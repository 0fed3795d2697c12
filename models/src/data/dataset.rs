//! The [`Dataset`] trait (as `torch.utils.data.Dataset`: a length and
//! indexed access to items of any type), [`ImageDataset`] for labelled
//! images, and the two in-memory stores behind every image dataset here:
//! [`ByteImages`] (bytes as the files hold them, decoded per sample) and
//! [`InMemory`] (`f32` values from vectors, for synthetic data and tests).
//!
//! A dataset of one's own implements [`Dataset`]; any item type that
//! [`Collate`](super::Collate)s — images, `f32`, `Vec<f32>`, labels, and
//! tuples of them — goes through the [`DataLoader`](super::DataLoader):
//!
//! ```
//! use std::sync::Arc;
//! use models::data::{DataLoader, Dataset, Image};
//!
//! /// A segmentation toy: 2x2 images whose mask marks the pixels above 0.5.
//! struct Blobs {
//!     images: Vec<Vec<f32>>,
//! }
//!
//! impl Dataset for Blobs {
//!     type Item = (Image, Image);
//!     fn len(&self) -> usize {
//!         self.images.len()
//!     }
//!     fn get(&self, index: usize) -> (Image, Image) {
//!         let pixels = self.images[index].clone();
//!         let mask = pixels.iter().map(|&v| f32::from(u8::from(v > 0.5))).collect();
//!         (Image::new(pixels, [1, 2, 2]), Image::new(mask, [1, 2, 2]))
//!     }
//! }
//!
//! let blobs = Blobs { images: (0..10).map(|i| vec![0.1 * i as f32, 0.9, 0.0, 0.6]).collect() };
//! let loader = DataLoader::new(Arc::new(blobs), 4)
//!     .shuffle(true)
//!     .seed(3)
//!     // A random flip of the image and its mask together, from the item's own generator.
//!     .augment(|(image, mask), rng| {
//!         use models::data::transforms::hflip;
//!         use rand::RngExt;
//!         if rng.random::<f32>() < 0.5 { (hflip(image), hflip(mask)) } else { (image, mask) }
//!     });
//! let batch = loader.epoch(0).next().unwrap();
//! let (images, masks) = &batch.data;
//! assert_eq!((images.shape(), masks.shape()), (vec![4, 1, 2, 2], vec![4, 1, 2, 2]));
//! assert_eq!(batch.indices.len(), 4);
//! for (x, m) in images.to_vec().into_iter().zip(masks.to_vec()) {
//!     assert_eq!(m, f32::from(u8::from(x > 0.5)), "masks stay with their images");
//! }
//! ```

use std::sync::Arc;

use super::error::{DataError, Result};
use super::image::Image;

/// A dataset with random access: a length and the item at each index.
///
/// `Send + Sync` so that a [`DataLoader`](super::DataLoader) can read it
/// from its background threads through an `Arc<dyn Dataset<Item = ...>>`.
/// `get` takes `&self` and no generator: an item's random augmentation is
/// the loader's job ([`DataLoader::augment`](super::DataLoader::augment)),
/// which seeds it per item so batches do not depend on threads.
pub trait Dataset: Send + Sync {
    /// What one example is: `(Image, usize)` for labelled images, `(Image,
    /// Image)` for an image and its mask, `(Vec<f32>, f32)` for a
    /// regression pair, ...
    type Item;

    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `index`.
    ///
    /// # Panics
    /// If `index >= len()`, as slice indexing does.
    fn get(&self, index: usize) -> Self::Item;
}

/// A dataset of labelled images (image classification): items `([C, H, W]
/// image, label)`, with the labels and the image shape at hand without
/// decoding any image. MNIST, Fashion-MNIST, CIFAR-10, [`InMemory`] and
/// [`Subset`](super::Subset)s of them are.
pub trait ImageDataset: Dataset<Item = (Image, usize)> {
    /// The label of example `index`, without decoding its image.
    fn label(&self, index: usize) -> usize {
        self.get(index).1
    }

    /// `[C, H, W]` of every image (before any transform).
    fn image_shape(&self) -> [usize; 3];

    /// Number of classes: labels lie in `0..num_classes()`.
    fn num_classes(&self) -> usize;
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Item = D::Item;

    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> D::Item {
        (**self).get(index)
    }
}

impl<D: ImageDataset + ?Sized> ImageDataset for Arc<D> {
    fn label(&self, index: usize) -> usize {
        (**self).label(index)
    }
    fn image_shape(&self) -> [usize; 3] {
        (**self).image_shape()
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
}

/// Implements [`Dataset`] and [`ImageDataset`] for a wrapper type by
/// forwarding to one field.
macro_rules! delegate_dataset {
    ($ty:ty, $field:ident) => {
        impl $crate::data::Dataset for $ty {
            type Item = ($crate::data::Image, usize);

            fn len(&self) -> usize {
                self.$field.len()
            }
            fn get(&self, index: usize) -> ($crate::data::Image, usize) {
                self.$field.get(index)
            }
        }

        impl $crate::data::ImageDataset for $ty {
            fn label(&self, index: usize) -> usize {
                self.$field.label(index)
            }
            fn image_shape(&self) -> [usize; 3] {
                self.$field.image_shape()
            }
            fn num_classes(&self) -> usize {
                self.$field.num_classes()
            }
        }
    };
}
pub(crate) use delegate_dataset;

/// Images kept as the bytes the files hold, one byte per pixel and channel,
/// and decoded to `f32` in `[0, 1]` (divided by 255) per sample.
///
/// Four times smaller than `f32` storage: MNIST's 60,000 training images
/// are 47 MB here rather than 188 MB, and the decoding is a negligible part
/// of a batch's cost.
#[derive(Debug, Clone)]
pub struct ByteImages {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    shape: [usize; 3],
    num_classes: usize,
}

impl ByteImages {
    /// Images from `pixels` (`n` images of `shape` = `[C, H, W]`, row-major)
    /// and one label per image, each below `num_classes`.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<ByteImages> {
        let size = shape.iter().product::<usize>();
        if size == 0 || pixels.len() != labels.len() * size {
            return Err(DataError::Invalid(format!(
                "ByteImages: {} pixel bytes are not {} images of shape {shape:?}",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= num_classes)
        {
            return Err(DataError::Invalid(format!(
                "ByteImages: label {l} of example {i} is outside 0..{num_classes}"
            )));
        }
        Ok(ByteImages {
            pixels,
            labels,
            shape,
            num_classes,
        })
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The bytes of image `index`.
    pub fn image_bytes(&self, index: usize) -> &[u8] {
        let size = self.shape.iter().product::<usize>();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// How many examples carry each label (index = label).
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }
}

impl Dataset for ByteImages {
    type Item = (Image, usize);

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> (Image, usize) {
        (
            Image::from_u8(self.image_bytes(index), self.shape),
            self.label(index),
        )
    }
}

impl ImageDataset for ByteImages {
    fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}

/// A dataset of `f32` images held in memory (synthetic data, tests, or
/// features computed elsewhere).
#[derive(Debug, Clone)]
pub struct InMemory {
    values: Vec<f32>,
    labels: Vec<usize>,
    shape: [usize; 3],
    num_classes: usize,
}

impl InMemory {
    /// `labels.len()` images of `shape` from row-major `values`; the number
    /// of classes is the largest label plus one.
    pub fn new(values: Vec<f32>, shape: [usize; 3], labels: Vec<usize>) -> Result<InMemory> {
        let size = shape.iter().product::<usize>();
        if size == 0 || values.len() != labels.len() * size {
            return Err(DataError::Invalid(format!(
                "InMemory: {} values are not {} images of shape {shape:?}",
                values.len(),
                labels.len()
            )));
        }
        let num_classes = labels.iter().max().map_or(0, |&m| m + 1);
        Ok(InMemory {
            values,
            labels,
            shape,
            num_classes,
        })
    }

    /// A dataset from images that all have the same shape.
    pub fn from_images(images: Vec<Image>, labels: Vec<usize>) -> Result<InMemory> {
        if images.len() != labels.len() {
            return Err(DataError::Invalid(format!(
                "InMemory: {} images but {} labels",
                images.len(),
                labels.len()
            )));
        }
        let Some(first) = images.first() else {
            return Err(DataError::Invalid("InMemory: no images".into()));
        };
        let shape = first.shape();
        if let Some((i, im)) = images
            .iter()
            .enumerate()
            .find(|(_, im)| im.shape() != shape)
        {
            return Err(DataError::Invalid(format!(
                "InMemory: image {i} has shape {:?}, image 0 has {shape:?}",
                im.shape()
            )));
        }
        let values = images.into_iter().flat_map(Image::into_vec).collect();
        InMemory::new(values, shape, labels)
    }

    /// Declares more classes than the labels show (a subset may lack some).
    pub fn with_num_classes(mut self, num_classes: usize) -> InMemory {
        self.num_classes = self.num_classes.max(num_classes);
        self
    }
}

impl Dataset for InMemory {
    type Item = (Image, usize);

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> (Image, usize) {
        let size = self.shape.iter().product::<usize>();
        let values = self.values[index * size..(index + 1) * size].to_vec();
        (Image::new(values, self.shape), self.labels[index])
    }
}

impl ImageDataset for InMemory {
    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}
