//! [`DataLoader`]: batches of a dataset, shuffled each epoch from a seed,
//! optionally augmented, prepared on background threads while the model
//! trains (as `torch.utils.data.DataLoader`).
//!
//! Any [`Dataset`] whose items [`Collate`] can be batched: labelled images
//! (the default, `DataLoader<(Image, usize)>`, whose batches are
//! `(images, labels)`), an image and its mask, regression pairs, ...
//!
//! Reproducibility does not depend on threads: epoch `e`'s order comes from
//! a generator seeded with `(seed, e)` and example `i`'s augmentation in
//! that epoch from one seeded with `(seed, e, i)` (see [`super::seed`]), so
//! any number of workers, or none, yields the same batches bit for bit.
//!
//! Workers: worker `k` of `n` builds batches `k, k + n, k + 2n, ...` into
//! its own bounded channel (`prefetch` batches deep) and the iterator reads
//! the channels in turn, so batches arrive in order. Dropping the iterator
//! early closes the channels and raises a stop flag; each worker notices
//! within one sample and exits, and the drop joins it: nothing hangs and no
//! thread outlives the epoch. A panic in a worker (a transform given an
//! image it cannot handle) is re-raised on the training thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use autograd::rng::Generator;
use autograd::Tensor;
use rand::seq::SliceRandom;

use super::collate::Collate;
use super::dataset::Dataset;
use super::image::Image;
use super::sampler::DistributedSampler;
use super::seed::{sample_rng, shuffle_rng};
use super::transforms::Transform;

/// One batch: the collated items and which examples of the dataset they
/// are (for showing misclassified images). For labelled images `data` is
/// `([N, C, H, W] images, labels)`, also at hand as
/// [`images`](Batch::images) and [`labels`](Batch::labels).
#[derive(Debug, Clone)]
pub struct Batch<B = (Tensor, Vec<usize>)> {
    /// The items, stacked by their [`Collate`] implementation.
    pub data: B,
    /// The dataset index of each item.
    pub indices: Vec<usize>,
}

impl<B> Batch<B> {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch is empty (never, for a loader's batches).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

impl Batch {
    /// The images, `[N, C, H, W]`.
    pub fn images(&self) -> &Tensor {
        &self.data.0
    }

    /// The label of each image.
    pub fn labels(&self) -> &[usize] {
        &self.data.1
    }
}

/// A function applied to each item with the item's own generator.
type Augment<I> = Arc<dyn Fn(I, &mut Generator) -> I + Send + Sync>;

/// Batches a dataset; see the [module documentation](self).
///
/// ```no_run
/// use std::sync::Arc;
/// use models::data::transforms::RandomAffine;
/// use models::data::{DataLoader, Mnist};
///
/// let train = Arc::new(Mnist::load_default(true)?);
/// let loader = DataLoader::new(train, 100)
///     .shuffle(true)
///     .seed(42)
///     .transform(RandomAffine::new(10.0).translate(0.1, 0.1).scale(0.9, 1.1));
/// for epoch in 0..20 {
///     for batch in loader.epoch(epoch) {
///         assert_eq!(batch.images().shape(), vec![100, 1, 28, 28]);
///         // forward, loss on batch.labels(), backward, step ...
///     }
/// }
/// # Ok::<(), models::data::DataError>(())
/// ```
pub struct DataLoader<I = (Image, usize)> {
    dataset: Arc<dyn Dataset<Item = I>>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    augment: Option<Augment<I>>,
    num_workers: usize,
    prefetch: usize,
    sampler: Option<DistributedSampler>,
    next_epoch: AtomicU64,
}

impl<I> fmt::Debug for DataLoader<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataLoader")
            .field("examples", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("drop_last", &self.drop_last)
            .field("seed", &self.seed)
            .field("augment", &self.augment.is_some())
            .field("num_workers", &self.num_workers)
            .field("prefetch", &self.prefetch)
            .field("sampler", &self.sampler)
            .finish()
    }
}

impl<I: Collate + 'static> DataLoader<I> {
    /// Batches of `batch_size` examples in dataset order, no transform, one
    /// background worker two batches ahead, seed 0; change with the
    /// builder methods.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn new(dataset: Arc<dyn Dataset<Item = I>>, batch_size: usize) -> DataLoader<I> {
        assert!(batch_size > 0, "DataLoader: batch_size must be at least 1");
        DataLoader {
            dataset,
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: 0,
            augment: None,
            num_workers: 1,
            prefetch: 2,
            sampler: None,
            next_epoch: AtomicU64::new(0),
        }
    }

    /// Whether each epoch visits the examples in a fresh random order.
    pub fn shuffle(mut self, shuffle: bool) -> DataLoader<I> {
        self.shuffle = shuffle;
        self
    }

    /// The seed of every shuffle and augmentation.
    pub fn seed(mut self, seed: u64) -> DataLoader<I> {
        self.seed = seed;
        self
    }

    /// Whether to drop the last batch when it would be smaller than the rest.
    pub fn drop_last(mut self, drop_last: bool) -> DataLoader<I> {
        self.drop_last = drop_last;
        self
    }

    /// `f(item, rng)` replaces each item, `rng` being the item's own
    /// generator in this epoch (see [`sample`](Self::sample)): random
    /// augmentation of any item type, such as one flip of an image and its
    /// mask. Replaces any earlier [`augment`](Self::augment) or
    /// [`transform`](DataLoader::transform).
    pub fn augment(
        mut self,
        f: impl Fn(I, &mut Generator) -> I + Send + Sync + 'static,
    ) -> DataLoader<I> {
        self.augment = Some(Arc::new(f));
        self
    }

    /// Background threads building batches; 0 builds each batch on the
    /// calling thread when it is asked for.
    pub fn num_workers(mut self, workers: usize) -> DataLoader<I> {
        self.num_workers = workers;
        self
    }

    /// Batches each worker keeps ready ahead of the training loop (at least 1).
    pub fn prefetch(mut self, batches: usize) -> DataLoader<I> {
        self.prefetch = batches.max(1);
        self
    }

    /// Serves only this process's share of each epoch (data-parallel
    /// training): the epoch's permutation, the same on every process with
    /// the same seed, cut by `sampler`; batches, [`len`](Self::len) and
    /// [`order`](Self::order) are then the share's. See
    /// [`DistributedSampler`] for the uneven tail.
    pub fn distributed(mut self, sampler: DistributedSampler) -> DataLoader<I> {
        self.sampler = Some(sampler);
        self
    }

    /// The share this loader serves, if it is one.
    pub fn sampler(&self) -> Option<&DistributedSampler> {
        self.sampler.as_ref()
    }

    /// Makes the next [`iter`](Self::iter) run epoch `epoch` (to resume training).
    pub fn set_epoch(&self, epoch: u64) {
        self.next_epoch.store(epoch, Ordering::Relaxed);
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset<Item = I>> {
        &self.dataset
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        let n = match &self.sampler {
            Some(s) => s.num_samples(self.dataset.len()),
            None => self.dataset.len(),
        };
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset indices of epoch `epoch`, in the order they are served.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            order.shuffle(&mut shuffle_rng(self.seed, epoch));
        }
        match &self.sampler {
            Some(s) => s.shard(&order),
            None => order,
        }
    }

    /// Example `index` as epoch `epoch` serves it: augmented with the same
    /// random numbers (to show augmented samples, or to check them).
    pub fn sample(&self, epoch: u64, index: usize) -> I {
        let item = self.dataset.get(index);
        match &self.augment {
            Some(f) => f(item, &mut sample_rng(self.seed, epoch, index)),
            None => item,
        }
    }

    /// The batches of epoch `epoch`; workers start at once.
    pub fn epoch(&self, epoch: u64) -> Batches<I> {
        let plan = Arc::new(Plan {
            dataset: Arc::clone(&self.dataset),
            augment: self.augment.clone(),
            order: self.order(epoch),
            batch_size: self.batch_size,
            num_batches: self.len(),
            seed: self.seed,
            epoch,
        });
        Batches::start(plan, self.num_workers, self.prefetch)
    }

    /// The batches of the next epoch: 0 first, then 1, 2, ... (see
    /// [`set_epoch`](Self::set_epoch)).
    pub fn iter(&self) -> Batches<I> {
        self.epoch(self.next_epoch.fetch_add(1, Ordering::Relaxed))
    }
}

impl DataLoader {
    /// The transform applied to each image (use
    /// [`Compose`](super::transforms::Compose) for several); the labels
    /// pass unchanged. Replaces any earlier transform or
    /// [`augment`](DataLoader::augment).
    pub fn transform(self, transform: impl Transform + 'static) -> DataLoader {
        self.augment(move |(image, label), rng| (transform.apply(image, rng), label))
    }
}

impl<I: Collate + 'static> IntoIterator for &DataLoader<I> {
    type Item = Batch<I::Batch>;
    type IntoIter = Batches<I>;

    fn into_iter(self) -> Batches<I> {
        self.iter()
    }
}

/// Everything needed to build any batch of one epoch; shared with workers.
struct Plan<I> {
    dataset: Arc<dyn Dataset<Item = I>>,
    augment: Option<Augment<I>>,
    order: Vec<usize>,
    batch_size: usize,
    num_batches: usize,
    seed: u64,
    epoch: u64,
}

/// A batch before it is finished (built off the training thread).
struct RawBatch<I: Collate> {
    stack: I::Stack,
    indices: Vec<usize>,
}

impl<I: Collate> Plan<I> {
    /// Builds batch `b`, or `None` when `stop` is raised midway.
    fn build(&self, b: usize, stop: &AtomicBool) -> Option<RawBatch<I>> {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let indices = self.order[start..end].to_vec();
        let mut stack = I::stack(indices.len());
        for &i in &indices {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let mut item = self.dataset.get(i);
            if let Some(f) = &self.augment {
                item = f(item, &mut sample_rng(self.seed, self.epoch, i));
            }
            if let Err(e) = I::add(&mut stack, item) {
                panic!("DataLoader: example {i} (after any transform): {e}");
            }
        }
        Some(RawBatch { stack, indices })
    }
}

impl<I: Collate> RawBatch<I> {
    fn into_batch(self) -> Batch<I::Batch> {
        Batch {
            data: I::finish(self.stack),
            indices: self.indices,
        }
    }
}

/// The batches of one epoch, in order; see [`DataLoader::epoch`].
pub struct Batches<I: Collate = (Image, usize)> {
    plan: Arc<Plan<I>>,
    next: usize,
    stop: Arc<AtomicBool>,
    receivers: Vec<Receiver<RawBatch<I>>>,
    workers: Vec<Option<JoinHandle<()>>>,
}

impl<I: Collate + 'static> Batches<I> {
    fn start(plan: Arc<Plan<I>>, num_workers: usize, prefetch: usize) -> Batches<I> {
        let stop = Arc::new(AtomicBool::new(false));
        let workers_needed = num_workers.min(plan.num_batches);
        let mut receivers = Vec::with_capacity(workers_needed);
        let mut workers = Vec::with_capacity(workers_needed);
        for k in 0..workers_needed {
            let (tx, rx) = sync_channel(prefetch);
            let (plan, stop) = (Arc::clone(&plan), Arc::clone(&stop));
            let handle = std::thread::Builder::new()
                .name(format!("dataloader-{k}"))
                .spawn(move || {
                    for b in (k..plan.num_batches).step_by(workers_needed) {
                        let Some(batch) = plan.build(b, &stop) else {
                            return;
                        };
                        // An error means the iterator was dropped: stop quietly.
                        if tx.send(batch).is_err() {
                            return;
                        }
                    }
                })
                .expect("DataLoader: cannot start a worker thread");
            receivers.push(rx);
            workers.push(Some(handle));
        }
        Batches {
            plan,
            next: 0,
            stop,
            receivers,
            workers,
        }
    }
}

impl<I: Collate> Batches<I> {
    /// The epoch these batches belong to.
    pub fn epoch(&self) -> u64 {
        self.plan.epoch
    }
}

impl<I: Collate> Iterator for Batches<I> {
    type Item = Batch<I::Batch>;

    fn next(&mut self) -> Option<Batch<I::Batch>> {
        if self.next >= self.plan.num_batches {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.receivers.is_empty() {
            let never = AtomicBool::new(false);
            return self.plan.build(b, &never).map(RawBatch::into_batch);
        }
        let k = b % self.receivers.len();
        match self.receivers[k].recv() {
            Ok(raw) => Some(raw.into_batch()),
            Err(_) => {
                // The worker ended without sending: it panicked. Re-raise
                // its panic here, where the user can see it.
                self.next = self.plan.num_batches;
                match self.workers[k].take().map(JoinHandle::join) {
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    _ => panic!("DataLoader: worker {k} stopped before batch {b}"),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.num_batches - self.next;
        (left, Some(left))
    }
}

impl<I: Collate> ExactSizeIterator for Batches<I> {}

impl<I: Collate> Drop for Batches<I> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the channels wakes any worker blocked on a full one.
        self.receivers.clear();
        for handle in self.workers.iter_mut().filter_map(Option::take) {
            // A worker's panic was either re-raised by `next` or belongs to
            // batches nobody asked for: dropping must not panic again.
            let _ = handle.join();
        }
    }
}
