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
//! [`MAX_BYTES`]; the oldest entries go first.

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
    let bytes = v.len() * std::mem::size_of::<T>();
    if bytes <= MAX_BYTES {
        let mut cache = lock();
        // Older versions of this tensor will not be asked for again.
        cache.retain(|e| e.id != id || e.version == version);
        cache.push_back(Entry {
            id,
            version,
            layout,
            bytes,
            value: Arc::clone(&v) as Arc<dyn Any + Send + Sync>,
        });
        let mut total: usize = cache.iter().map(|e| e.bytes).sum();
        while total > MAX_BYTES {
            let old = cache.pop_front().expect("entries while over the bound");
            total -= old.bytes;
        }
    }
    v
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
}
