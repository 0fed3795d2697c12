//! The gradient reducer behind [`DistributedDataParallel`](crate::DistributedDataParallel):
//! parameters grouped into buckets in reverse order, each bucket flattened
//! and all-reduced in one collective as soon as all of its gradients are
//! final (signalled by the autograd engine's post-accumulate-grad hook), on
//! a communication thread so that the reduction overlaps the rest of the
//! backward pass; the last hook waits for every bucket and writes the
//! averaged gradients back.
//!
//! Buckets are launched strictly in order (bucket 0, then 1, ...), so every
//! rank issues the same collectives in the same order whatever order its
//! hooks fire in.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use autograd::{Float, Tensor};

use crate::comm::{Comm, ReduceOp};
use crate::world::{as_f32_mut, as_f64_mut, World};

/// What the gradient synchronisation has cost so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommStats {
    /// Backward passes whose gradients were averaged.
    pub syncs: usize,
    /// All-reduce collectives issued (one per bucket per sync).
    pub collectives: usize,
    /// Bytes all-reduced (per rank).
    pub bytes: usize,
    /// Seconds spent inside the all-reduce calls (on the communication
    /// thread when overlapping).
    pub reduce_seconds: f64,
    /// Seconds the backward pass stood waiting for communication at its
    /// end: the communication not hidden behind computation. Without
    /// overlap, all of it.
    pub wait_seconds: f64,
}

type Job<T> = (usize, Vec<T>);
type Done<T> = (usize, Vec<T>, f64);

struct CommThread<T: Float> {
    tx: Option<Sender<Job<T>>>,
    rx: Mutex<Receiver<Done<T>>>,
    handle: Option<JoinHandle<()>>,
}

struct State<T: Float> {
    armed: bool,
    ready: Vec<bool>,
    /// Per bucket: gradients not final yet.
    left: Vec<usize>,
    /// The next bucket to launch.
    next: usize,
    /// Launched without a communication thread: reduced at the end.
    deferred: Vec<Job<T>>,
    in_flight: usize,
    stats: CommStats,
}

pub(crate) struct Reducer<T: Float> {
    world: World,
    params: Vec<Tensor<T>>,
    names: Vec<String>,
    buckets: Vec<Vec<usize>>,
    bucket_of: Vec<usize>,
    state: Mutex<State<T>>,
    comm: Option<CommThread<T>>,
}

impl<T: Float> Reducer<T> {
    /// Buckets of at most `bucket_bytes` (a larger parameter alone), filled
    /// from the last parameter back; a communication thread when `overlap`
    /// and the MPI library allows it.
    pub(crate) fn new(
        world: &World,
        named: Vec<(String, Tensor<T>)>,
        bucket_bytes: usize,
        overlap: bool,
    ) -> Reducer<T> {
        let (names, params): (Vec<String>, Vec<Tensor<T>>) = named.into_iter().unzip();
        let elem = std::mem::size_of::<T>();
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for i in (0..params.len()).rev() {
            let b = params[i].numel() * elem;
            match buckets.last_mut() {
                Some(cur) if bytes + b <= bucket_bytes => {
                    cur.push(i);
                    bytes += b;
                }
                _ => {
                    buckets.push(vec![i]);
                    bytes = b;
                }
            }
        }
        let mut bucket_of = vec![0; params.len()];
        for (k, bucket) in buckets.iter().enumerate() {
            for &i in bucket {
                bucket_of[i] = k;
            }
        }
        let comm = (overlap && world.size() > 1 && world.threads_ok())
            .then(|| CommThread::start(world.comm().duplicate()));
        let state = State {
            armed: false,
            ready: vec![false; params.len()],
            left: buckets.iter().map(Vec::len).collect(),
            next: 0,
            deferred: Vec::new(),
            in_flight: 0,
            stats: CommStats::default(),
        };
        Reducer {
            world: world.clone(),
            params,
            names,
            buckets,
            bucket_of,
            state: Mutex::new(state),
            comm,
        }
    }

    pub(crate) fn params(&self) -> &[Tensor<T>] {
        &self.params
    }

    pub(crate) fn bucket_numels(&self) -> Vec<usize> {
        self.buckets
            .iter()
            .map(|b| b.iter().map(|&i| self.params[i].numel()).sum())
            .collect()
    }

    pub(crate) fn overlapping(&self) -> bool {
        self.comm.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stats(&self) -> CommStats {
        self.lock().stats
    }

    pub(crate) fn reset_stats(&self) {
        self.lock().stats = CommStats::default();
    }

    /// Expects one backward pass whose gradients are to be averaged.
    ///
    /// # Panics
    /// If the previous armed pass left parameters without a gradient
    /// (the ranks' gradients would no longer be averaged alike).
    pub(crate) fn arm(&self) {
        let mut st = self.lock();
        if st.armed && st.ready.iter().any(|&r| r) {
            let missing: Vec<&str> = st
                .ready
                .iter()
                .zip(&self.names)
                .filter(|(r, _)| !**r)
                .map(|(_, n)| n.as_str())
                .take(5)
                .collect();
            panic!(
                "DistributedDataParallel: the last backward pass gave no gradient to {} (of {} parameters), so its gradients could not be averaged across ranks; \
                 freeze parameters that the loss does not use (set_requires_grad(false)) before wrapping the model",
                missing.join(", "),
                self.params.len()
            );
        }
        st.armed = !self.params.is_empty();
        st.ready.iter_mut().for_each(|r| *r = false);
        for (k, bucket) in self.buckets.iter().enumerate() {
            st.left[k] = bucket.len();
        }
        st.next = 0;
        st.deferred.clear();
        st.in_flight = 0;
    }

    /// Parameter `i`'s gradient is final (called from the autograd hook).
    pub(crate) fn ready(&self, i: usize) {
        let mut st = self.lock();
        if !st.armed || st.ready[i] {
            return;
        }
        st.ready[i] = true;
        st.left[self.bucket_of[i]] -= 1;
        while st.next < self.buckets.len() && st.left[st.next] == 0 {
            let k = st.next;
            st.next += 1;
            let flat = self.flatten(k);
            st.stats.collectives += 1;
            st.stats.bytes += flat.len() * std::mem::size_of::<T>();
            match &self.comm {
                Some(c) => {
                    c.tx.as_ref()
                        .expect("communication thread running")
                        .send((k, flat))
                        .expect("communication thread alive");
                    st.in_flight += 1;
                }
                None => st.deferred.push((k, flat)),
            }
        }
        if st.next == self.buckets.len() {
            self.finish(&mut st);
        }
    }

    fn flatten(&self, k: usize) -> Vec<T> {
        let mut flat = Vec::with_capacity(
            self.buckets[k]
                .iter()
                .map(|&i| self.params[i].numel())
                .sum(),
        );
        for &i in &self.buckets[k] {
            let g = self.params[i]
                .grad()
                .expect("a ready parameter has a gradient");
            flat.extend(g.read().iter().copied());
        }
        flat
    }

    /// Waits for every bucket, then writes the averaged gradients back.
    fn finish(&self, st: &mut State<T>) {
        let start = Instant::now();
        let mut reduced: Vec<Option<Vec<T>>> = vec![None; self.buckets.len()];
        if let Some(c) = &self.comm {
            let rx = c.rx.lock().unwrap_or_else(|e| e.into_inner());
            for _ in 0..st.in_flight {
                let (k, v, secs) = rx.recv().expect("communication thread alive");
                st.stats.reduce_seconds += secs;
                reduced[k] = Some(v);
            }
        } else {
            for (k, mut v) in std::mem::take(&mut st.deferred) {
                let t = Instant::now();
                reduce_sum(self.world.comm(), &mut v);
                st.stats.reduce_seconds += t.elapsed().as_secs_f64();
                reduced[k] = Some(v);
            }
        }
        st.stats.wait_seconds += start.elapsed().as_secs_f64();
        let scale = T::of(1.0 / self.world.size() as f64);
        for (k, v) in reduced.into_iter().enumerate() {
            let v = v.expect("every bucket reduced");
            let mut off = 0;
            for &i in &self.buckets[k] {
                let p = &self.params[i];
                let n = p.numel();
                let g: Vec<T> = v[off..off + n].iter().map(|&x| x * scale).collect();
                p.set_grad(Some(Tensor::from_vec(g, p.shape())));
                off += n;
            }
        }
        st.in_flight = 0;
        st.armed = false;
        st.stats.syncs += 1;
    }
}

fn reduce_sum<T: Float>(comm: &Comm, v: &mut [T]) {
    match as_f32_mut(v) {
        Ok(s) => comm.all_reduce(s, ReduceOp::Sum),
        Err(s) => comm.all_reduce(as_f64_mut(s), ReduceOp::Sum),
    }
}

impl<T: Float> CommThread<T> {
    fn start(comm: Comm) -> CommThread<T> {
        let (tx, jobs) = channel::<Job<T>>();
        let (done, rx) = channel::<Done<T>>();
        let handle = std::thread::Builder::new()
            .name("dist-allreduce".into())
            .spawn(move || {
                // Its own communicator: these collectives never interleave
                // with the ones the training thread issues on the world's.
                while let Ok((k, mut v)) = jobs.recv() {
                    let t = Instant::now();
                    reduce_sum(&comm, &mut v);
                    if done.send((k, v, t.elapsed().as_secs_f64())).is_err() {
                        break;
                    }
                }
            })
            .expect("DistributedDataParallel: cannot start the communication thread");
        CommThread {
            tx: Some(tx),
            rx: Mutex::new(rx),
            handle: Some(handle),
        }
    }
}

impl<T: Float> Drop for CommThread<T> {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The hook's view of the reducer (weak: dropping the wrapper frees it).
pub(crate) fn hook_for<T: Float>(
    reducer: &Arc<Reducer<T>>,
    i: usize,
) -> impl Fn(&Tensor<T>) + Send + Sync + 'static {
    let weak = Arc::downgrade(reducer);
    move |_leaf: &Tensor<T>| {
        if let Some(r) = weak.upgrade() {
            r.ready(i);
        }
    }
}
