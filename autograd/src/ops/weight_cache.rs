//! Weights rearranged for a kernel, kept between calls while gradients are
//! off. A served model sends the same weights through each layer call
//! after call; what a convolution derives from them (the live taps of a
//! kernel on a small plane: ResNet-18's last stage on a 32x32 image keeps
//! 1 tap in 9) is then computed once per weight version instead of on
//! every call, which at batch 1 read the whole weight tensor each time.
//!
//! Entries are keyed by the tensor's id (never reused) and its version
//! (bumped by every write: an optimizer step, `set_data`, a load), so a
//! changed weight is never served stale. With gradients on nothing is
//! kept: training changes the weights every step. The cache holds at most
//! [`MAX_BYTES`]: entries of dropped tensors (and older versions) are
//! removed, and once the live entries fill it, it takes no more. A model
//! whose weights exceed the bound then keeps its first layers' entries;
//! evicting the oldest instead would drop each layer's entry just before
//! its next call, every call.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::dtype::Float;
use crate::tensor::Tensor;

/// The most the cache holds.
const MAX_BYTES: usize = 32 << 20;

struct Entry {
    id: u64,
    version: u64,
    layout: [usize; 5],
    bytes: usize,
    value: Arc<dyn Any + Send + Sync>,
    /// Whether the tensor is still alive.
    alive: Box<dyn Fn() -> bool + Send + Sync>,
}

static CACHE: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

/// `w`'s version, read under its lock: read it before taking the values
/// that [`derived`] rearranges, so an entry is never older than its
/// version says (a write in between only files newer values under the
/// older version, which later calls no longer ask for).
pub(crate) fn version_before_read<T: Float>(w: &Tensor<T>) -> u64 {
    let _values = w.read();
    w.version()
}

/// `make()` (the weights `w` rearranged as `layout` names), from the cache
/// when gradients are off and `version` of `w` (from
/// [`version_before_read`]) was rearranged so before.
pub(crate) fn derived<T: Float>(
    w: &Tensor<T>,
    version: u64,
    layout: [usize; 5],
    make: impl FnOnce() -> Vec<T>,
) -> Arc<Vec<T>> {
    if crate::graph::is_grad_enabled() {
        return Arc::new(make());
    }
    let id = w.inner.id;
    let lock = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let hit = lock()
        .iter()
        .find(|e| e.id == id && e.version == version && e.layout == layout)
        .and_then(|e| Arc::clone(&e.value).downcast::<Vec<T>>().ok());
    if let Some(v) = hit {
        return v;
    }
    let v = Arc::new(make());
    let weak = Arc::downgrade(&w.inner);
    let entry = Entry {
        id,
        version,
        layout,
        bytes: v.len() * std::mem::size_of::<T>(),
        value: Arc::clone(&v) as Arc<dyn Any + Send + Sync>,
        alive: Box::new(move || weak.strong_count() > 0),
    };
    admit(&mut lock(), entry, MAX_BYTES);
    v
}

/// [`derived`], only where the result is kept: `None` when gradients are
/// on, or when `bytes` more would not fit in the cache beside its live
/// entries (so a caller can take another path than one that pays for
/// `make()` on every call).
pub(crate) fn kept<T: Float>(
    w: &Tensor<T>,
    version: u64,
    layout: [usize; 5],
    bytes: usize,
    make: impl FnOnce() -> Vec<T>,
) -> Option<Arc<Vec<T>>> {
    if crate::graph::is_grad_enabled() {
        return None;
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let room = has_room(&mut cache, w.inner.id, version, layout, bytes, MAX_BYTES);
    drop(cache);
    room.then(|| derived(w, version, layout, make))
}

/// Whether the entry `(id, version, layout)` is kept already, or `bytes`
/// more fit in `max` once the entries nobody can ask for again are gone
/// (as [`admit`] would drop them).
fn has_room(
    cache: &mut VecDeque<Entry>,
    id: u64,
    version: u64,
    layout: [usize; 5],
    bytes: usize,
    max: usize,
) -> bool {
    let hit = cache
        .iter()
        .any(|e| e.id == id && e.version == version && e.layout == layout);
    hit || {
        cache.retain(|e| (e.id != id || e.version == version) && (e.alive)());
        cache.iter().map(|e| e.bytes).sum::<usize>() + bytes <= max
    }
}

/// Files `entry` if it fits in `max` bytes once the entries nobody can ask
/// for again are gone: those of dropped tensors and older versions of its own.
fn admit(cache: &mut VecDeque<Entry>, entry: Entry, max: usize) {
    cache.retain(|e| (e.id != entry.id || e.version == entry.version) && (e.alive)());
    let total: usize = cache.iter().map(|e| e.bytes).sum();
    if total + entry.bytes <= max {
        cache.push_back(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::no_grad;
    use std::cell::Cell;

    /// Kept with gradients off, recomputed after a write (a new version)
    /// and for another layout, never kept with gradients on.
    #[test]
    fn entries_follow_the_weight_version() {
        let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
        let calls = Cell::new(0);
        let make = |w: &Tensor| {
            calls.set(calls.get() + 1);
            w.to_vec()
        };
        let get = |layout| no_grad(|| derived(&w, version_before_read(&w), layout, || make(&w)));
        assert_eq!(*get([1, 0, 0, 0, 0]), vec![1.0, 2.0, 3.0]);
        assert_eq!(*get([1, 0, 0, 0, 0]), vec![1.0, 2.0, 3.0]);
        assert_eq!(calls.get(), 1, "the second call is served from the cache");
        w.set_data(ndarray::arr1(&[4.0f32, 5.0, 6.0]).into_dyn());
        assert_eq!(
            *get([1, 0, 0, 0, 0]),
            vec![4.0, 5.0, 6.0],
            "a written weight is derived again"
        );
        assert_eq!(calls.get(), 2);
        get([2, 0, 0, 0, 0]);
        assert_eq!(calls.get(), 3, "another layout is another entry");
        derived(&w, version_before_read(&w), [1, 0, 0, 0, 0], || make(&w));
        assert_eq!(
            calls.get(),
            4,
            "with gradients on nothing is served from the cache"
        );
    }

    /// A full cache of live entries takes no more; a dropped tensor's entry
    /// makes room, as does a newer version replacing an older one.
    #[test]
    fn full_of_live_weights_it_keeps_them() {
        let entry = |w: &Tensor<f32>, version: u64| {
            let weak = Arc::downgrade(&w.inner);
            Entry {
                id: w.inner.id,
                version,
                layout: [0; 5],
                bytes: 40,
                value: Arc::new(()),
                alive: Box::new(move || weak.strong_count() > 0),
            }
        };
        let (a, b, c) = (Tensor::zeros([1]), Tensor::zeros([1]), Tensor::zeros([1]));
        let mut cache = VecDeque::new();
        let ids =
            |cache: &VecDeque<Entry>| cache.iter().map(|e| (e.id, e.version)).collect::<Vec<_>>();
        admit(&mut cache, entry(&a, 0), 100);
        admit(&mut cache, entry(&b, 0), 100);
        admit(&mut cache, entry(&c, 0), 100);
        assert_eq!(
            ids(&cache),
            [(a.id(), 0), (b.id(), 0)],
            "full: the third is not kept"
        );
        admit(&mut cache, entry(&a, 1), 100);
        assert_eq!(
            ids(&cache),
            [(b.id(), 0), (a.id(), 1)],
            "a newer version replaces"
        );
        drop(b);
        admit(&mut cache, entry(&c, 0), 100);
        assert_eq!(
            ids(&cache),
            [(a.id(), 1), (c.id(), 0)],
            "a dropped tensor's entry goes"
        );
        // Room: for a kept entry, for what fits, and once an older
        // version of the asking tensor's own entry goes.
        let d = Tensor::<f32>::zeros([1]);
        assert!(has_room(&mut cache, c.inner.id, 0, [0; 5], 40, 100), "kept");
        assert!(has_room(&mut cache, d.inner.id, 0, [0; 5], 20, 100), "fits");
        assert!(
            !has_room(&mut cache, d.inner.id, 0, [0; 5], 21, 100),
            "full"
        );
        assert!(
            has_room(&mut cache, a.inner.id, 2, [0; 5], 60, 100),
            "replaces"
        );
        assert_eq!(ids(&cache), [(c.id(), 0)], "the older version went");
    }

    /// [`kept`] serves nothing with gradients on, and nothing that cannot
    /// fit.
    #[test]
    fn kept_only_where_it_fits() {
        let w = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
        let v = version_before_read(&w);
        assert!(kept(&w, v, [2, 0, 0, 0, 0], 8, || w.to_vec()).is_none());
        let too_big = no_grad(|| kept(&w, v, [2, 0, 0, 0, 0], MAX_BYTES + 1, || w.to_vec()));
        assert!(too_big.is_none());
        let served = no_grad(|| kept(&w, v, [2, 0, 0, 0, 0], 8, || w.to_vec()));
        assert_eq!(served.as_deref(), Some(&vec![1.0, 2.0]));
    }
}
