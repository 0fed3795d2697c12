//! The tensor type: an n-dimensional array plus its place in the autograd graph.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ndarray::{ArcArray, ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::dims::IntoShape;
use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::graph::{self, BackwardCtx, Node};
use crate::rng;

/// Storage of a tensor: shared, copy-on-write, any strides.
///
/// Sharing makes `reshape`, `permute` and `detach` free; copy-on-write keeps
/// such a view (and any storage handle taken with [`Tensor::array`]) intact
/// when the tensor is later updated in place, so views never alias: a write
/// changes only the tensor written to. Ops save their input tensors, not
/// storage snapshots, so each in-place write bumps the tensor's
/// [`version`](Tensor::version) and the backward pass refuses a saved tensor
/// whose version moved ([`Error::InplaceModified`], PyTorch's "modified by an
/// inplace operation") instead of computing a gradient from the new values.
pub type Storage<T> = ArcArray<T, IxDyn>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An n-dimensional array of `T` (f32 unless stated) that records the ops
/// applied to it, so that [`backward`](Tensor::backward) can compute gradients.
///
/// Cloning a `Tensor` is cheap and gives a handle to the same tensor (as a
/// Python reference does): the same data, the same `.grad()`.
pub struct Tensor<T: Float = f32> {
    pub(crate) inner: Arc<Inner<T>>,
}

pub(crate) struct Inner<T: Float> {
    pub(crate) id: u64,
    pub(crate) data: RwLock<Storage<T>>,
    pub(crate) grad: Mutex<Option<Tensor<T>>>,
    /// Only meaningful for leaves; an op's output requires grad iff it has a node.
    pub(crate) requires_grad: AtomicBool,
    pub(crate) retains_grad: AtomicBool,
    /// Bumped by every in-place write; ops record it when they save the
    /// tensor for backward. Per tensor, not per buffer: views are
    /// copy-on-write, so a write never reaches another tensor's values.
    pub(crate) version: AtomicU64,
    pub(crate) node: Option<Node<T>>,
}

impl<T: Float> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Float> Drop for Inner<T> {
    // Dropping a long chain of ops one by one would recurse as deep as the
    // graph; unlink it iteratively instead.
    fn drop(&mut self) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let mut stack: Vec<Tensor<T>> = node.take_inputs();
        while let Some(t) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(t.inner) {
                if let Some(node) = inner.node.as_mut() {
                    stack.extend(node.take_inputs());
                }
            }
        }
    }
}

/// Options of [`Tensor::backward_opts`].
#[derive(Clone, Debug, Default)]
pub struct BackwardOptions<T: Float = f32> {
    /// The gradient of some scalar with respect to this tensor (default: 1 for a scalar).
    pub grad: Option<Tensor<T>>,
    /// Keep the graph so that backward can run through it again.
    pub retain_graph: bool,
    /// Record the backward pass itself, so gradients can be differentiated again.
    /// Implies `retain_graph`.
    pub create_graph: bool,
}

// ---------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------

impl<T: Float> Tensor<T> {
    pub(crate) fn make(data: Storage<T>, node: Option<Node<T>>) -> Self {
        Tensor {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                data: RwLock::new(data),
                grad: Mutex::new(None),
                requires_grad: AtomicBool::new(false),
                retains_grad: AtomicBool::new(false),
                version: AtomicU64::new(0),
                node,
            }),
        }
    }

    /// The output of an op: records a node when grad mode is on and an input
    /// requires grad. `backward` maps the output gradient to one gradient per
    /// input (or `None`); it is written with differentiable ops, so higher-order
    /// gradients come for free.
    pub(crate) fn from_op<F>(
        data: impl Into<Storage<T>>,
        op: &'static str,
        inputs: &[&Tensor<T>],
        backward: F,
    ) -> Tensor<T>
    where
        F: Fn(&BackwardCtx<'_, T>) -> Result<Vec<Option<Tensor<T>>>> + Send + Sync + 'static,
    {
        let data = data.into();
        if graph::is_anomaly_enabled() && !data.iter().all(|x| x.is_finite()) {
            panic!(
                "{}",
                Error::Anomaly {
                    op,
                    phase: "forward",
                    shape: data.shape().to_vec(),
                }
            );
        }
        if graph::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad()) {
            let edges = inputs
                .iter()
                .map(|t| t.requires_grad().then(|| (*t).clone()))
                .collect();
            Tensor::make(data, Some(Node::new(op, edges, Arc::new(backward))))
        } else {
            Tensor::make(data, None)
        }
    }

    /// A tensor holding `array` (any dimensionality), not requiring grad.
    pub fn from_array<D: ndarray::Dimension>(array: ndarray::Array<T, D>) -> Self {
        Tensor::make(array.into_dyn().into_shared(), None)
    }

    /// A tensor on shared storage (no copy).
    pub fn from_storage(data: Storage<T>) -> Self {
        Tensor::make(data, None)
    }

    /// A tensor of the given shape from row-major values.
    ///
    /// # Panics
    /// If `values.len()` is not the product of the shape; see [`try_from_vec`](Self::try_from_vec).
    #[track_caller]
    pub fn from_vec(values: Vec<T>, shape: impl IntoShape) -> Self {
        ok(Self::try_from_vec(values, shape))
    }

    /// A tensor of the given shape from row-major values.
    pub fn try_from_vec(values: Vec<T>, shape: impl IntoShape) -> Result<Self> {
        // `to_sizes` refuses shapes whose element count overflows.
        let shape = shape.to_sizes("from_vec")?;
        let n: usize = shape.iter().product();
        if n != values.len() {
            return Err(Error::InvalidArgument {
                op: "from_vec",
                shape: shape.clone(),
                reason: format!(
                    "{} values cannot fill shape {:?} ({n} elements)",
                    values.len(),
                    shape
                ),
            });
        }
        Ok(Self::from_array(
            ArrayD::from_shape_vec(IxDyn(&shape), values).expect("checked length"),
        ))
    }

    /// A 0-dimensional tensor holding `value`.
    pub fn scalar(value: T) -> Self {
        Self::from_array(ndarray::arr0(value))
    }

    /// A tensor filled with `value`.
    #[track_caller]
    pub fn full(shape: impl IntoShape, value: T) -> Self {
        let shape = ok(shape.to_sizes("full"));
        Self::from_array(ArrayD::from_elem(IxDyn(&shape), value))
    }

    /// A tensor of zeros.
    #[track_caller]
    pub fn zeros(shape: impl IntoShape) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    #[track_caller]
    pub fn ones(shape: impl IntoShape) -> Self {
        Self::full(shape, T::one())
    }

    /// Zeros of the same shape as `self`.
    pub fn zeros_like(&self) -> Self {
        Self::zeros(self.shape())
    }

    /// Ones of the same shape as `self`.
    pub fn ones_like(&self) -> Self {
        Self::ones(self.shape())
    }

    /// `start, start + step, ...` up to (not including) `end`, as a 1-D tensor.
    #[track_caller]
    pub fn arange(start: T, end: T, step: T) -> Self {
        assert!(
            step != T::zero(),
            "arange: step must be non-zero (start {start}, end {end})"
        );
        let n = ((end - start) / step).ceil().as_f64().max(0.0) as usize;
        let values = (0..n).map(|i| start + step * T::of(i as f64)).collect();
        Self::from_vec(values, [n])
    }

    /// Standard-normal values from the thread's seeded generator ([`manual_seed`](crate::manual_seed)).
    #[track_caller]
    pub fn randn(shape: impl IntoShape) -> Self {
        rng::with_rng(|r| Self::randn_with(shape, r))
    }

    /// Standard-normal values from the given generator.
    #[track_caller]
    pub fn randn_with<R: Rng + ?Sized>(shape: impl IntoShape, rng: &mut R) -> Self {
        let shape = ok(shape.to_sizes("randn"));
        let a = ArrayD::from_shape_simple_fn(IxDyn(&shape), || T::of(StandardNormal.sample(rng)));
        Self::from_array(a)
    }

    /// Uniform values in `[low, high)` from the thread's seeded generator.
    #[track_caller]
    pub fn uniform(shape: impl IntoShape, low: T, high: T) -> Self {
        rng::with_rng(|r| Self::uniform_with(shape, low, high, r))
    }

    /// Uniform values in `[low, high)` from the given generator.
    #[track_caller]
    pub fn uniform_with<R: Rng + ?Sized>(
        shape: impl IntoShape,
        low: T,
        high: T,
        rng: &mut R,
    ) -> Self {
        let shape = ok(shape.to_sizes("uniform"));
        assert!(low < high, "uniform: need low < high, got [{low}, {high})");
        let dist = Uniform::new(low.as_f64(), high.as_f64()).expect("low < high");
        let a = ArrayD::from_shape_simple_fn(IxDyn(&shape), || T::of(dist.sample(rng)));
        Self::from_array(a)
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

impl<T: Float> Tensor<T> {
    /// A process-unique id (used by the engine and in graph dumps).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The sizes of each dimension.
    pub fn shape(&self) -> Vec<usize> {
        self.read().shape().to_vec()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.read().ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.read().len()
    }

    /// The size of dimension `dim` (negative counts from the end).
    #[track_caller]
    pub fn size(&self, dim: isize) -> usize {
        let shape = self.shape();
        shape[ok(crate::dims::norm_dim("size", dim, &shape))]
    }

    /// The storage (a cheap shared handle; no copy).
    pub fn array(&self) -> Storage<T> {
        self.read().clone()
    }

    /// A read lock on the storage, for zero-copy access: `t.read().view()`.
    pub fn read(&self) -> RwLockReadGuard<'_, Storage<T>> {
        self.inner.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A write lock on the storage: changes the values in place, not
    /// recorded by autograd. Optimizers use this. Writing copies the buffer
    /// first if a view or a storage handle shares it.
    ///
    /// Each call bumps the tensor's [`version`](Self::version): a graph that
    /// saved this tensor before the write refuses to run backward through it
    /// ([`Error::InplaceModified`]), as its gradient would use the new values.
    /// Writes after `backward()` (an optimizer step) or to a tensor no
    /// recorded op saved are unaffected.
    pub fn write(&self) -> RwLockWriteGuard<'_, Storage<T>> {
        let guard = self.inner.data.write().unwrap_or_else(|e| e.into_inner());
        self.inner.version.fetch_add(1, Ordering::Relaxed);
        guard
    }

    /// How many in-place writes ([`write`](Self::write), `set_data`,
    /// optimizer steps) this tensor has had; shared by its clones, which are
    /// handles to the same tensor (PyTorch's `_version`).
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Relaxed)
    }

    /// Replaces the values in place (a write: bumps [`version`](Self::version)).
    ///
    /// # Panics
    /// If the shape differs; see [`try_set_data`](Self::try_set_data).
    #[track_caller]
    pub fn set_data(&self, data: impl Into<Storage<T>>) {
        ok(self.try_set_data(data))
    }

    /// Replaces the values in place; the shape must stay the same.
    pub fn try_set_data(&self, data: impl Into<Storage<T>>) -> Result<()> {
        let data = data.into();
        // Not `write()`: a refused replacement leaves the version alone.
        let mut w = self.inner.data.write().unwrap_or_else(|e| e.into_inner());
        if w.shape() != data.shape() {
            return Err(Error::ShapeMismatch {
                op: "set_data",
                lhs: w.shape().to_vec(),
                rhs: data.shape().to_vec(),
                reason: "differ".into(),
            });
        }
        *w = data;
        self.inner.version.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// An owned copy of the values.
    pub fn to_array(&self) -> ArrayD<T> {
        self.read().to_owned()
    }

    /// The values in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        self.read().iter().copied().collect()
    }

    /// The value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor has more than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        ok(self.try_item())
    }

    /// The value of a one-element tensor.
    pub fn try_item(&self) -> Result<T> {
        let r = self.read();
        if r.len() != 1 {
            return Err(Error::InvalidArgument {
                op: "item",
                shape: r.shape().to_vec(),
                reason: "only a one-element tensor has an item".into(),
            });
        }
        Ok(*r.iter().next().expect("one element"))
    }

    /// The same values in another precision (not recorded: a new leaf).
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor::from_array(self.read().mapv(|x| U::of(x.as_f64())))
    }

    /// Whether all values are finite.
    pub fn all_finite(&self) -> bool {
        self.read().iter().all(|x| x.is_finite())
    }
}

// ---------------------------------------------------------------------------
// Autograd state
// ---------------------------------------------------------------------------

impl<T: Float> Tensor<T> {
    /// Whether gradients flow to (or through) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.inner.node.is_some() || self.inner.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as requiring grad, and returns it: `Tensor::randn([3]).requires_grad_()`.
    ///
    /// # Panics
    /// On a tensor computed by an op (see [`set_requires_grad`](Self::set_requires_grad)).
    #[track_caller]
    pub fn requires_grad_(self) -> Self {
        ok(self.set_requires_grad(true));
        self
    }

    /// Turns gradient tracking of a leaf on or off (freezing a parameter).
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        if let Some(node) = &self.inner.node {
            return Err(Error::InvalidArgument {
                op: "set_requires_grad",
                shape: self.shape(),
                reason: format!(
                    "only a leaf's flag can be set; this tensor is the output of '{}' (use detach())",
                    node.name
                ),
            });
        }
        self.inner.requires_grad.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// True for tensors made by the user rather than by an op.
    pub fn is_leaf(&self) -> bool {
        self.inner.node.is_none()
    }

    /// Also keep `.grad()` for this non-leaf tensor after backward.
    pub fn retain_grad(&self) {
        self.inner.retains_grad.store(true, Ordering::Relaxed);
    }

    pub(crate) fn retains_grad(&self) -> bool {
        self.inner.retains_grad.load(Ordering::Relaxed)
    }

    /// The name of the op that made this tensor, if recorded.
    pub fn grad_fn(&self) -> Option<&'static str> {
        self.inner.node.as_ref().map(|n| n.name)
    }

    /// The accumulated gradient, if any backward reached this tensor.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.inner
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the gradient (optimizers and gradient clipping use this).
    pub fn set_grad(&self, grad: Option<Tensor<T>>) {
        *self.inner.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
    }

    /// Forgets the gradient (as PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// A new leaf on the same storage, cut from the graph.
    pub fn detach(&self) -> Tensor<T> {
        Tensor::make(self.array(), None)
    }

    /// Backpropagates from this single-element tensor: every leaf that
    /// requires grad gets `d self / d leaf` added to its `.grad()`. The graph
    /// is freed afterwards.
    ///
    /// # Panics
    /// See [`try_backward`](Self::try_backward).
    #[track_caller]
    pub fn backward(&self) {
        ok(self.try_backward())
    }

    /// Backpropagates from this single-element tensor.
    pub fn try_backward(&self) -> Result<()> {
        self.try_backward_opts(BackwardOptions::default())
    }

    /// Backpropagates `grad` (the gradient of some scalar with respect to this tensor).
    #[track_caller]
    pub fn backward_with(&self, grad: &Tensor<T>) {
        ok(self.try_backward_opts(BackwardOptions {
            grad: Some(grad.clone()),
            ..Default::default()
        }))
    }

    /// Backpropagates with options (output gradient, retain_graph, create_graph).
    #[track_caller]
    pub fn backward_opts(&self, opts: BackwardOptions<T>) {
        ok(self.try_backward_opts(opts))
    }

    /// Backpropagates with options.
    pub fn try_backward_opts(&self, opts: BackwardOptions<T>) -> Result<()> {
        let grad = graph::root_grad(self, opts.grad)?;
        graph::run_backward(
            std::slice::from_ref(self),
            vec![grad],
            None,
            opts.retain_graph || opts.create_graph,
            opts.create_graph,
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

impl<T: Float> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor({}", *self.read())?;
        if let Some(name) = self.grad_fn() {
            write!(f, ", grad_fn=<{name}>")?;
        } else if self.requires_grad() {
            write!(f, ", requires_grad=true")?;
        }
        write!(f, ")")
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape())
            .field("dtype", &T::NAME)
            .field("requires_grad", &self.requires_grad())
            .field("grad_fn", &self.grad_fn())
            .field("data", &*self.read())
            .finish()
    }
}

impl<T: Float, D: ndarray::Dimension> From<ndarray::Array<T, D>> for Tensor<T> {
    fn from(a: ndarray::Array<T, D>) -> Self {
        Tensor::from_array(a)
    }
}
