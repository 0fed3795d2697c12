//! [`Subset`]: a view of some examples of another dataset (as
//! `torch.utils.data.Subset`), and [`random_split`].
//!
//! Transfer learning with few labels ("fine-tune on 1,000 labelled
//! images") and validation splits both need a dataset that is a part of
//! another, without copying any item.

use std::sync::Arc;

use rand::seq::SliceRandom;

use super::dataset::{Dataset, ImageDataset};
use super::error::{DataError, Result};
use super::seed::derive_seed;

/// Stream tags, so that the permutations drawn here never coincide with the
/// loader's shuffles for the same user seed.
const SPLIT_STREAM: u64 = 0x5b11_7000;
const PER_CLASS_STREAM: u64 = 0xc1a5_5000;

/// The examples `indices` of a dataset `D`, in that order: a [`Dataset`]
/// with `D`'s items, and an [`ImageDataset`] when `D` is one.
pub struct Subset<D: ?Sized = dyn ImageDataset> {
    dataset: Arc<D>,
    indices: Vec<usize>,
}

impl<D: ?Sized> Clone for Subset<D> {
    fn clone(&self) -> Self {
        Subset {
            dataset: Arc::clone(&self.dataset),
            indices: self.indices.clone(),
        }
    }
}

impl<D: Dataset + ?Sized> std::fmt::Debug for Subset<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("len", &self.indices.len())
            .field("of", &self.dataset.len())
            .finish()
    }
}

impl<D: Dataset + ?Sized> Subset<D> {
    /// The examples `indices` of `dataset` (repetitions allowed).
    pub fn new(dataset: Arc<D>, indices: Vec<usize>) -> Result<Subset<D>> {
        let n = dataset.len();
        if let Some((k, &i)) = indices.iter().enumerate().find(|(_, &i)| i >= n) {
            return Err(DataError::Invalid(format!(
                "Subset: index {i} (position {k}) is out of range for a dataset of {n} examples"
            )));
        }
        Ok(Subset { dataset, indices })
    }

    /// The first `n` examples of `dataset` (all of them if it has fewer).
    pub fn first(dataset: Arc<D>, n: usize) -> Subset<D> {
        let indices = (0..n.min(dataset.len())).collect();
        Subset { dataset, indices }
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The underlying dataset.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }
}

impl<D: ImageDataset + ?Sized> Subset<D> {
    /// `per_class` examples of each class, drawn at random from `seed`, in
    /// the dataset's order — a balanced labelled subset (100 per class =
    /// 1,000 MNIST images). A class with fewer examples gives all it has.
    pub fn per_class(dataset: Arc<D>, per_class: usize, seed: u64) -> Subset<D> {
        let mut by_class = vec![Vec::new(); dataset.num_classes()];
        for i in 0..dataset.len() {
            let l = dataset.label(i);
            if l >= by_class.len() {
                by_class.resize(l + 1, Vec::new());
            }
            by_class[l].push(i);
        }
        let mut rng = autograd::rng::generator(derive_seed(seed, &[PER_CLASS_STREAM]));
        let mut indices = Vec::with_capacity(per_class * by_class.len());
        for mut members in by_class {
            members.shuffle(&mut rng);
            members.truncate(per_class);
            indices.extend(members);
        }
        indices.sort_unstable();
        Subset { dataset, indices }
    }
}

impl<D: Dataset + ?Sized> Dataset for Subset<D> {
    type Item = D::Item;

    fn len(&self) -> usize {
        self.indices.len()
    }

    fn get(&self, index: usize) -> D::Item {
        self.dataset.get(self.indices[index])
    }
}

impl<D: ImageDataset + ?Sized> ImageDataset for Subset<D> {
    fn label(&self, index: usize) -> usize {
        self.dataset.label(self.indices[index])
    }

    fn image_shape(&self) -> [usize; 3] {
        self.dataset.image_shape()
    }

    fn num_classes(&self) -> usize {
        self.dataset.num_classes()
    }
}

/// Splits `dataset` at random (from `seed`) into disjoint subsets of the
/// given lengths, which must add up to its length (as
/// `torch.utils.data.random_split`).
pub fn random_split<D: Dataset + ?Sized>(
    dataset: Arc<D>,
    lengths: &[usize],
    seed: u64,
) -> Result<Vec<Subset<D>>> {
    let total: usize = lengths.iter().sum();
    if total != dataset.len() {
        return Err(DataError::Invalid(format!(
            "random_split: lengths {lengths:?} add up to {total}, the dataset has {} examples",
            dataset.len()
        )));
    }
    let mut order: Vec<usize> = (0..total).collect();
    order.shuffle(&mut autograd::rng::generator(derive_seed(
        seed,
        &[SPLIT_STREAM],
    )));
    let mut start = 0;
    Ok(lengths
        .iter()
        .map(|&len| {
            let indices = order[start..start + len].to_vec();
            start += len;
            Subset {
                dataset: Arc::clone(&dataset),
                indices,
            }
        })
        .collect())
}
