//! Per-thread scratch buffers, reused across calls (im2col columns and the like).

use std::cell::RefCell;

use crate::dtype::Float;

thread_local! {
    // f64 words: aligned for both element types.
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of `len` elements (contents unspecified). The
/// buffer is taken out while in use, so a nested call gets a fresh one.
pub(crate) fn with_scratch<T: Float, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    assert!(std::mem::size_of::<T>() <= 8 && std::mem::align_of::<T>() <= 8);
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if buf.len() < words {
        buf.resize(words, 0.0);
    }
    // SAFETY: the buffer holds at least `len` elements of T (size and
    // alignment checked above), any bit pattern is a valid float, and the
    // slice does not outlive `buf`.
    let slice = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut T, len) };
    let r = f(slice);
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < buf.len() {
            *s = buf;
        }
    });
    r
}
