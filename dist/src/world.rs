//! [`World`]: this process's place among the processes of one job (its rank
//! and their number) and the collectives on tensors, slices and scalars.

use std::fmt::Display;
use std::sync::{Arc, Mutex, Weak};

use autograd::{Float, Tensor};
use models::data::DistributedSampler;

use crate::comm::{self, Comm, Element, ReduceOp, Universe};
use crate::error::{DistError, Result};
use crate::launcher::launched_size;

/// The processes of this job, seen from one of them. Cheap to clone (a
/// shared handle); MPI is finalised when the last clone is dropped.
///
/// Every collective must be called by every rank, in the same order, with
/// buffers of the same length (as in MPI). Tensor collectives work in place,
/// as `torch.distributed`'s.
///
/// ```
/// use autograd::Tensor;
/// use dist::ReduceOp;
/// let world = dist::init().unwrap(); // size 1 under `cargo test`
/// let t = Tensor::<f32>::from_vec(vec![1.0, 2.0], [2]);
/// world.all_reduce(&t, ReduceOp::Sum);
/// assert_eq!(t.to_vec(), vec![1.0 * world.size() as f32, 2.0 * world.size() as f32]);
/// assert_eq!(world.all_reduce_scalar(3.0, ReduceOp::Mean), 3.0);
/// ```
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order is drop order: the communicator before MPI's finalisation.
    comm: Comm,
    rank: usize,
    size: usize,
    threads_ok: bool,
    _universe: Universe,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish()
    }
}

static WORLD: Mutex<Option<Weak<Inner>>> = Mutex::new(None);

/// Joins the job: MPI is initialised (with the `mpi` feature), and with
/// several ranks a panic anywhere in this process aborts the whole job
/// (`MPI_Abort`) after printing its message, so that no rank waits forever
/// in a collective for one that died. Calling it again returns the same
/// world while a handle to it lives.
///
/// Without the `mpi` feature: a world of size 1, unless an MPI launcher
/// started this process as one of several, which is
/// [`DistError::BuiltWithoutMpi`] (saying how to build with MPI).
pub fn init() -> Result<World> {
    let mut slot = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(inner) = slot.as_ref().and_then(Weak::upgrade) {
        return Ok(World { inner });
    }
    if !cfg!(feature = "mpi") {
        if let Some((var, size)) = launched_size() {
            return Err(DistError::BuiltWithoutMpi { size, var });
        }
    }
    let (universe, comm, threads_ok) = comm::init().map_err(DistError::Init)?;
    let (rank, size) = (comm.rank(), comm.size());
    if size > 1 {
        abort_on_panic();
    }
    let inner = Arc::new(Inner {
        comm,
        rank,
        size,
        threads_ok,
        _universe: universe,
    });
    *slot = Some(Arc::downgrade(&inner));
    Ok(World { inner })
}

/// Chains a panic hook that, after the usual message, ends the job.
fn abort_on_panic() {
    #[cfg(feature = "mpi")]
    {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("aborting every rank of the job (a rank panicked)");
            comm::abort_world(101);
        }));
    }
}

impl World {
    /// This process's rank, `0..size()`.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Whether this is rank 0, the one that prints, writes files and whose
    /// parameters the others receive.
    pub fn is_root(&self) -> bool {
        self.inner.rank == 0
    }

    /// Whether collectives may run on a second thread while this one works
    /// (MPI_THREAD_MULTIPLE granted, or no MPI).
    pub(crate) fn threads_ok(&self) -> bool {
        self.inner.threads_ok
    }

    pub(crate) fn comm(&self) -> &Comm {
        &self.inner.comm
    }

    /// Waits until every rank has called it.
    pub fn barrier(&self) {
        self.inner.comm.barrier();
    }

    /// The sampler that gives this rank its share of each epoch (padded; see
    /// [`DistributedSampler`] for the alternatives).
    pub fn sampler(&self) -> DistributedSampler {
        DistributedSampler::new(self.rank(), self.size())
    }

    // -- slices --------------------------------------------------------------

    /// Combines `buf` over the ranks, in place on every rank.
    pub fn all_reduce_slice<E: Element>(&self, buf: &mut [E], op: ReduceOp) {
        self.inner.comm.all_reduce(buf, op);
        if op == ReduceOp::Mean && self.size() > 1 {
            divide(buf, self.size());
        }
    }

    /// Rank `root`'s `buf` into every rank's `buf`.
    ///
    /// # Panics
    /// If `root` is not a rank; see [`try_broadcast_slice`](Self::try_broadcast_slice).
    #[track_caller]
    pub fn broadcast_slice<E: Element>(&self, buf: &mut [E], root: usize) {
        ok(self.try_broadcast_slice(buf, root))
    }

    /// Fallible form of [`broadcast_slice`](Self::broadcast_slice).
    pub fn try_broadcast_slice<E: Element>(&self, buf: &mut [E], root: usize) -> Result<()> {
        self.check_root("broadcast", root)?;
        self.inner.comm.broadcast(buf, root);
        Ok(())
    }

    /// Every rank's `send`, in rank order (`size() × send.len()` values;
    /// every rank must send the same number).
    pub fn all_gather_slice<E: Element>(&self, send: &[E]) -> Vec<E> {
        let mut recv = vec![E::default(); send.len() * self.size()];
        self.inner.comm.all_gather(send, &mut recv);
        recv
    }

    // -- tensors -------------------------------------------------------------

    /// Combines `tensor` over the ranks, in place (`torch.distributed.all_reduce`).
    pub fn all_reduce<T: Float>(&self, tensor: &Tensor<T>, op: ReduceOp) {
        with_slice_mut(tensor, |s| match as_f32_mut(s) {
            Ok(s) => self.all_reduce_slice(s, op),
            Err(s) => self.all_reduce_slice(as_f64_mut(s), op),
        })
    }

    /// Rank `root`'s values into `tensor` on every rank, in place; the
    /// shape must be the same everywhere.
    ///
    /// # Panics
    /// If `root` is not a rank; see [`try_broadcast`](Self::try_broadcast).
    #[track_caller]
    pub fn broadcast<T: Float>(&self, tensor: &Tensor<T>, root: usize) {
        ok(self.try_broadcast(tensor, root))
    }

    /// Fallible form of [`broadcast`](Self::broadcast).
    pub fn try_broadcast<T: Float>(&self, tensor: &Tensor<T>, root: usize) -> Result<()> {
        self.check_root("broadcast", root)?;
        with_slice_mut(tensor, |s| match as_f32_mut(s) {
            Ok(s) => self.inner.comm.broadcast(s, root),
            Err(s) => self.inner.comm.broadcast(as_f64_mut(s), root),
        });
        Ok(())
    }

    /// Every rank's `tensor` stacked along a new first dimension:
    /// `[size, ...shape]`, rank order (for metrics and checks).
    pub fn all_gather<T: Float>(&self, tensor: &Tensor<T>) -> Tensor<T> {
        let mut shape = vec![self.size()];
        shape.extend(tensor.shape());
        let mine = tensor.to_vec();
        let all = match as_f32(&mine) {
            Ok(s) => from_f32(self.all_gather_slice(s)),
            Err(s) => from_f64(self.all_gather_slice(as_f64(s))),
        };
        Tensor::from_vec(all, shape)
    }

    // -- scalars and bytes (metrics, checkpoints) -------------------------------

    /// One number combined over the ranks (an epoch's loss sum, a count).
    pub fn all_reduce_scalar(&self, value: f64, op: ReduceOp) -> f64 {
        let mut v = [value];
        self.all_reduce_slice(&mut v, op);
        v[0]
    }

    /// One number from every rank, in rank order.
    pub fn all_gather_scalar(&self, value: f64) -> Vec<f64> {
        self.all_gather_slice(&[value])
    }

    /// Rank `root`'s bytes on every rank (the others' `bytes` are ignored;
    /// any length).
    ///
    /// # Panics
    /// If `root` is not a rank.
    #[track_caller]
    pub fn broadcast_bytes(&self, bytes: Vec<u8>, root: usize) -> Vec<u8> {
        ok(self.check_root("broadcast_bytes", root));
        let mut len = [bytes.len() as u64];
        self.inner.comm.broadcast(&mut len, root);
        let mut buf = if self.rank() == root {
            bytes
        } else {
            vec![0u8; len[0] as usize]
        };
        self.inner.comm.broadcast(&mut buf, root);
        buf
    }

    /// Every rank's bytes (of any length), in rank order.
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let lens = self.all_gather_slice(&[bytes.len() as u64]);
        let max = lens.iter().copied().max().unwrap_or(0) as usize;
        let mut padded = bytes.to_vec();
        padded.resize(max, 0);
        let all = self.all_gather_slice(&padded);
        lens.iter()
            .enumerate()
            .map(|(r, &n)| all[r * max..r * max + n as usize].to_vec())
            .collect()
    }

    // -- failure -------------------------------------------------------------

    /// Ends every process of the job with exit code `code` (`MPI_Abort`);
    /// with one process, exits.
    pub fn abort(&self, code: i32) -> ! {
        self.inner.comm.abort(code)
    }

    /// Prints `error` (prefixed with the rank when there are several) to
    /// stderr and ends the whole job with exit code 1: what a rank does with
    /// an error it cannot recover from, so that the others do not wait for
    /// it in their next collective.
    pub fn fail(&self, error: &dyn Display) -> ! {
        if self.size() > 1 {
            eprintln!("Error (rank {} of {}): {error}", self.rank(), self.size());
            self.abort(1)
        }
        eprintln!("Error: {error}");
        std::process::exit(1)
    }

    fn check_root(&self, op: &'static str, root: usize) -> Result<()> {
        if root >= self.size() {
            return Err(DistError::InvalidArgument {
                op,
                reason: format!("root {root} is not a rank of a world of {}", self.size()),
            });
        }
        Ok(())
    }
}

#[track_caller]
fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn divide<E: Element>(buf: &mut [E], n: usize) {
    use crate::comm::Kind;
    // Each arm sees the same memory as its own type.
    match E::KIND {
        Kind::F32 => reinterpret::<E, f32>(buf)
            .iter_mut()
            .for_each(|x| *x /= n as f32),
        Kind::F64 => reinterpret::<E, f64>(buf)
            .iter_mut()
            .for_each(|x| *x /= n as f64),
        Kind::U8 => reinterpret::<E, u8>(buf)
            .iter_mut()
            .for_each(|x| *x /= n as u8),
        Kind::U64 => reinterpret::<E, u64>(buf)
            .iter_mut()
            .for_each(|x| *x /= n as u64),
    }
}

fn reinterpret<E: Element, U: Element>(buf: &mut [E]) -> &mut [U] {
    assert_eq!(E::KIND, U::KIND);
    // SAFETY: `Element` is sealed with one type per kind: equal kinds, equal types.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<U>(), buf.len()) }
}

/// `f` on the tensor's values as one contiguous slice, written back in place
/// (a strided tensor is copied out and back).
pub(crate) fn with_slice_mut<T: Float, R>(t: &Tensor<T>, f: impl FnOnce(&mut [T]) -> R) -> R {
    let mut w = t.write();
    if let Some(s) = w.as_slice_mut() {
        return f(s);
    }
    let shape = w.shape().to_vec();
    let mut v: Vec<T> = w.iter().copied().collect();
    let r = f(&mut v);
    *w = autograd::ndarray::ArrayD::from_shape_vec(shape, v)
        .expect("same length")
        .into_shared();
    r
}

// The tensor element types are exactly f32 and f64 (`Float`'s two
// implementations); these route a `[T]` to the matching `Element`.

pub(crate) fn as_f32_mut<T: Float>(s: &mut [T]) -> std::result::Result<&mut [f32], &mut [T]> {
    if T::NAME == "f32" {
        // SAFETY: T is f32.
        Ok(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
    } else {
        Err(s)
    }
}

pub(crate) fn as_f64_mut<T: Float>(s: &mut [T]) -> &mut [f64] {
    assert_eq!(T::NAME, "f64", "tensor elements are f32 or f64");
    // SAFETY: T is f64 (checked).
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f64>(), s.len()) }
}

fn as_f32<T: Float>(s: &[T]) -> std::result::Result<&[f32], &[T]> {
    if T::NAME == "f32" {
        // SAFETY: T is f32.
        Ok(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
    } else {
        Err(s)
    }
}

fn as_f64<T: Float>(s: &[T]) -> &[f64] {
    assert_eq!(T::NAME, "f64", "tensor elements are f32 or f64");
    // SAFETY: T is f64 (checked).
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f64>(), s.len()) }
}

fn from_f32<T: Float>(v: Vec<f32>) -> Vec<T> {
    v.into_iter().map(|x| T::of(x as f64)).collect()
}

fn from_f64<T: Float>(v: Vec<f64>) -> Vec<T> {
    v.into_iter().map(T::of).collect()
}
