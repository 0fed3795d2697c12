//! The [`Dataset`] trait (as `torch.utils.data.Dataset`: a length and
//! indexed access) and the two in-memory stores behind every dataset here:
//! [`ByteImages`] (bytes as the files hold them, decoded per sample) and
//! [`InMemory`] (`f32` values from vectors, for synthetic data and tests).

use std::sync::Arc;

use super::error::{DataError, Result};
use super::image::Image;

/// A labelled image dataset with random access.
///
/// `Send + Sync` so that a [`DataLoader`](super::DataLoader) can read it
/// from its background threads through an `Arc<dyn Dataset>`.
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `index`: its `[C, H, W]` image (values in `[0, 1]` for the
    /// datasets read from files) and its label.
    ///
    /// # Panics
    /// If `index >= len()`, as slice indexing does.
    fn get(&self, index: usize) -> (Image, usize);

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
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> (Image, usize) {
        (**self).get(index)
    }
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

/// Implements [`Dataset`] for a wrapper type by forwarding to one field.
macro_rules! delegate_dataset {
    ($ty:ty, $field:ident) => {
        impl $crate::data::Dataset for $ty {
            fn len(&self) -> usize {
                self.$field.len()
            }
            fn get(&self, index: usize) -> ($crate::data::Image, usize) {
                self.$field.get(index)
            }
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
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> (Image, usize) {
        (
            Image::from_u8(self.image_bytes(index), self.shape),
            self.label(index),
        )
    }

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
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> (Image, usize) {
        let size = self.shape.iter().product::<usize>();
        let values = self.values[index * size..(index + 1) * size].to_vec();
        (Image::new(values, self.shape), self.labels[index])
    }

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
