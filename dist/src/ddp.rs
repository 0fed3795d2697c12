//! [`DistributedDataParallel`]: any [`Module`] trained on several processes
//! as one, PyTorch's `DistributedDataParallel` semantics.
//!
//! - At construction every rank checks that its parameters and buffers have
//!   the names and shapes of rank 0's (a mismatch is an error on every rank,
//!   naming the rank and the tensor), then takes rank 0's values, so ranks
//!   seeded differently start identical.
//! - Each forward pass with grad enabled first broadcasts the buffers from
//!   rank 0 (batch-norm running statistics; `broadcast_buffers`, on by
//!   default as in PyTorch), then arms the reducer: during the following
//!   `backward()` the gradients are summed across ranks in buckets and
//!   divided by the number of ranks (see [`reducer`](crate::reducer)).
//!   After `backward()` returns every rank holds the same, averaged
//!   gradients, so identical optimizer steps keep the replicas identical.
//! - [`no_sync`](DistributedDataParallel::no_sync): gradient accumulation
//!   without communication; the first synchronised backward after it
//!   averages the accumulated gradients.
//!
//! **Weighting.** The average is uniform over ranks. With each rank's loss
//! a mean over its local batch of `n_r` examples, the result is the
//! gradient of the mean over the global batch when every `n_r` is equal
//! (the [`DistributedSampler`](models::data::DistributedSampler) makes them
//! so). With uneven local batches, scale each rank's loss by
//! [`loss_weight`](DistributedDataParallel::loss_weight)`(n_r)` =
//! `n_r · size / N` to get the global mean exactly.
//!
//! Names and the state dict are those of the wrapped module (PyTorch would
//! prefix `module.`): a checkpoint saved from the wrapper loads into the
//! plain model and back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use autograd::{is_grad_enabled, Float, GradHookHandle, Tensor};
use nn::{Module, ModuleFields, NamedTensor, TensorKind};

use crate::error::{DistError, Result};
use crate::reducer::{hook_for, CommStats, Reducer};
use crate::world::{as_f32_mut, as_f64_mut, with_slice_mut, World};

/// Options of [`DistributedDataParallel`].
#[derive(Clone, Debug, PartialEq)]
pub struct DdpConfig {
    /// Upper bound of a gradient bucket in bytes (one all-reduce each); a
    /// parameter larger than this gets a bucket of its own. Default 4 MiB.
    pub bucket_bytes: usize,
    /// Broadcast the buffers from rank 0 before each forward pass with grad
    /// enabled (PyTorch's `broadcast_buffers=True`). Default true.
    pub broadcast_buffers: bool,
    /// Reduce a bucket on a communication thread as soon as it is ready,
    /// while the backward pass goes on; false reduces every bucket at the
    /// end of the pass (for measuring what the overlap gains). Default true.
    pub overlap: bool,
}

impl Default for DdpConfig {
    fn default() -> Self {
        DdpConfig {
            bucket_bytes: 4 << 20,
            broadcast_buffers: true,
            overlap: true,
        }
    }
}

/// A module replicated on every rank, its gradients averaged across ranks
/// after each `backward()`; see the [module documentation](self).
///
/// ```
/// use autograd::Tensor;
/// use dist::DistributedDataParallel;
/// use nn::{Linear, LinearConfig, Module};
///
/// let world = dist::init().unwrap();
/// let model = DistributedDataParallel::new(Linear::new(LinearConfig::new(4, 2)), &world);
/// let loss = model.forward(&Tensor::randn([8, 4])).cross_entropy(&[0, 1, 0, 1, 0, 1, 0, 1]);
/// loss.backward(); // gradients averaged over the ranks here
/// assert!(model.parameters().iter().all(|p| p.grad().is_some()));
/// ```
pub struct DistributedDataParallel<M, T: Float = f32> {
    module: M,
    world: World,
    config: DdpConfig,
    reducer: Arc<Reducer<T>>,
    _hooks: HookSet,
    buffers: Vec<Tensor<T>>,
    sync: AtomicBool,
}

impl<T: Float, M: Module<T>> DistributedDataParallel<M, T> {
    /// Wraps `module` with the default [`DdpConfig`].
    ///
    /// # Panics
    /// If the ranks' models differ; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(module: M, world: &World) -> Self {
        Self::try_with_config(module, world, DdpConfig::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wraps `module`: checks that every rank's model has rank 0's
    /// parameter and buffer names and shapes, then copies rank 0's values
    /// to every rank. A collective: every rank must call it.
    pub fn try_new(module: M, world: &World) -> Result<Self> {
        Self::try_with_config(module, world, DdpConfig::default())
    }

    /// [`try_new`](Self::try_new) with options.
    pub fn try_with_config(module: M, world: &World, config: DdpConfig) -> Result<Self> {
        if config.bucket_bytes == 0 {
            return Err(DistError::InvalidArgument {
                op: "DistributedDataParallel",
                reason: "bucket_bytes must be at least 1".into(),
            });
        }
        let named = module.named_tensors();
        check_same_model(world, &named)?;
        // Rank 0's values everywhere: parameters and buffers, one broadcast.
        let all: Vec<Tensor<T>> = named.iter().map(|(_, t)| t.tensor.clone()).collect();
        broadcast_flat(world, &all);
        let params: Vec<(String, Tensor<T>)> = named
            .iter()
            .filter(|(_, t)| t.kind == TensorKind::Parameter && t.tensor.requires_grad())
            .map(|(n, t)| (n.clone(), t.tensor.clone()))
            .collect();
        let buffers = named
            .iter()
            .filter(|(_, t)| t.kind == TensorKind::Buffer)
            .map(|(_, t)| t.tensor.clone())
            .collect();
        let reducer = Arc::new(Reducer::new(
            world,
            params,
            config.bucket_bytes,
            config.overlap,
        ));
        let hooks = reducer
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| p.register_post_accumulate_grad_hook(hook_for(&reducer, i)))
            .collect();
        let hooks = HookSet(hooks);
        Ok(DistributedDataParallel {
            module,
            world: world.clone(),
            config,
            reducer,
            _hooks: hooks,
            buffers,
            sync: AtomicBool::new(true),
        })
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped module, unwrapped (the hooks are removed).
    pub fn into_inner(self) -> M {
        self.module
    }

    /// The world the replicas live in.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The options.
    pub fn config(&self) -> &DdpConfig {
        &self.config
    }

    /// Elements per gradient bucket, in the order they are reduced (the last
    /// parameters first).
    pub fn bucket_numels(&self) -> Vec<usize> {
        self.reducer.bucket_numels()
    }

    /// Whether buckets are reduced on a communication thread during the
    /// backward pass (asked for, several ranks, and MPI_THREAD_MULTIPLE).
    pub fn overlapping(&self) -> bool {
        self.reducer.overlapping()
    }

    /// What the gradient synchronisation has cost since construction (or
    /// the last [`reset_comm_stats`](Self::reset_comm_stats)).
    pub fn comm_stats(&self) -> CommStats {
        self.reducer.stats()
    }

    /// Zeroes [`comm_stats`](Self::comm_stats).
    pub fn reset_comm_stats(&self) {
        self.reducer.reset_stats()
    }

    /// The factor by which a rank whose local batch has `local` of the
    /// global batch's examples scales its mean loss, so that the averaged
    /// gradient is the global batch's mean: `local · size / global`, where
    /// `global` is the sum of `local` over the ranks (a collective).
    pub fn loss_weight(&self, local: usize) -> f64 {
        let global = self
            .world
            .all_reduce_scalar(local as f64, crate::ReduceOp::Sum);
        local as f64 * self.world.size() as f64 / global
    }

    /// Gradient accumulation: until the guard is dropped, forward passes do
    /// not arm the reducer, so their backward passes only accumulate local
    /// gradients. The first synchronised backward afterwards averages the
    /// sum.
    pub fn no_sync(&self) -> NoSync<'_> {
        let prev = self.sync.swap(false, Ordering::Relaxed);
        NoSync {
            flag: &self.sync,
            prev,
        }
    }

    /// Copies rank 0's buffers to every rank now (a collective).
    pub fn sync_buffers(&self) {
        broadcast_flat(&self.world, &self.buffers);
    }
}

/// Re-enables gradient synchronisation when dropped; see
/// [`DistributedDataParallel::no_sync`].
#[must_use = "synchronisation resumes when the guard is dropped"]
pub struct NoSync<'a> {
    flag: &'a AtomicBool,
    prev: bool,
}

impl Drop for NoSync<'_> {
    fn drop(&mut self) {
        self.flag.store(self.prev, Ordering::Relaxed);
    }
}

/// The wrapper's gradient hooks, removed when it goes.
struct HookSet(Vec<GradHookHandle>);

impl Drop for HookSet {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            h.remove();
        }
    }
}

// The wrapper is transparent: the wrapped module's tensors and children,
// under their own names.
impl<T: Float, M: Module<T>> ModuleFields<T> for DistributedDataParallel<M, T> {
    fn own_tensors(&self) -> Vec<NamedTensor<T>> {
        self.module.own_tensors()
    }

    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        self.module.children()
    }
}

impl<T: Float, M: Module<T> + 'static> Module<T> for DistributedDataParallel<M, T> {
    fn forward_impl(&self, input: &Tensor<T>) -> Tensor<T> {
        self.module.forward_impl(input)
    }

    /// Broadcasts the buffers and arms the gradient reducer when grad is
    /// enabled (a training step), then runs the wrapped module's `forward`.
    /// Without grad (evaluation) it is the wrapped module's `forward` alone,
    /// so ranks may evaluate different numbers of batches.
    fn forward(&self, input: &Tensor<T>) -> Tensor<T> {
        if is_grad_enabled() {
            if self.config.broadcast_buffers && self.world.size() > 1 {
                self.sync_buffers();
            }
            if self.sync.load(Ordering::Relaxed) {
                self.reducer.arm();
            }
        }
        self.module.forward(input)
    }

    fn set_own_training(&self, training: bool) {
        self.module.set_own_training(training)
    }

    fn describe(&self) -> String {
        self.module.describe()
    }
}

/// Rank 0's values of `tensors` into every rank's, in one collective.
fn broadcast_flat<T: Float>(world: &World, tensors: &[Tensor<T>]) {
    if world.size() == 1 || tensors.is_empty() {
        return;
    }
    let mut flat: Vec<T> = Vec::with_capacity(tensors.iter().map(Tensor::numel).sum());
    for t in tensors {
        flat.extend(t.read().iter().copied());
    }
    match as_f32_mut(&mut flat) {
        Ok(s) => world.comm().broadcast(s, 0),
        Err(s) => world.comm().broadcast(as_f64_mut(s), 0),
    }
    let mut off = 0;
    for t in tensors {
        with_slice_mut(t, |s| {
            s.copy_from_slice(&flat[off..off + s.len()]);
            off += s.len();
        });
    }
}

/// One line per tensor: kind, name, dtype, shape.
fn describe<T: Float>(named: &[(String, NamedTensor<T>)]) -> Vec<String> {
    named
        .iter()
        .map(|(n, t)| {
            let kind = match t.kind {
                TensorKind::Parameter => "parameter",
                TensorKind::Buffer => "buffer",
            };
            format!("{kind} '{n}' {} {:?}", T::NAME, t.tensor.shape())
        })
        .collect()
}

/// Every rank compares its model with rank 0's; every rank gets the same
/// error naming the first rank that differs and how.
fn check_same_model<T: Float>(world: &World, named: &[(String, NamedTensor<T>)]) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    let mine = describe(named);
    let root = world.broadcast_bytes(mine.join("\n").into_bytes(), 0);
    let root: Vec<String> = String::from_utf8_lossy(&root)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let rank = world.rank();
    let mut detail = String::new();
    if let Some(i) = (0..mine.len().min(root.len())).find(|&i| mine[i] != root[i]) {
        detail = format!(
            "{} on rank 0, {} on rank {rank} (tensor {i})",
            root[i], mine[i]
        );
    } else if mine.len() != root.len() {
        let (more, extra) = if mine.len() > root.len() {
            (rank, &mine[root.len()])
        } else {
            (0, &root[mine.len()])
        };
        detail = format!(
            "{} tensors on rank 0, {} on rank {rank}; rank {more} also has {extra}",
            root.len(),
            mine.len()
        );
    }
    let all = world.all_gather_bytes(detail.as_bytes());
    match all.iter().position(|d| !d.is_empty()) {
        Some(r) => Err(DistError::ModelMismatch {
            rank: r,
            detail: String::from_utf8_lossy(&all[r]).into_owned(),
        }),
        None => Ok(()),
    }
}
