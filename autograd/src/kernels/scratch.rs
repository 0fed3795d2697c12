//! Per-thread scratch buffers, reused across calls (packed GEMM panels,
//! im2col columns). A small per-thread pool, so nested users (a convolution's
//! columns, then the GEMM's packed panels) each keep their own buffer.

use std::cell::RefCell;

use crate::dtype::Float;

thread_local! {
    // f64 words: aligned for both element types.
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of `len` elements (contents unspecified).
pub(crate) fn with_scratch<T: Float, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    assert!(std::mem::size_of::<T>() <= 8 && std::mem::align_of::<T>() <= 8);
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    let mut buf = POOL.with(|p| {
        let mut p = p.borrow_mut();
        // The smallest buffer that fits, else the largest (grown below).
        let pick = p
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= words)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i)
            .or_else(|| (0..p.len()).max_by_key(|&i| p[i].len()));
        pick.map(|i| p.swap_remove(i)).unwrap_or_default()
    });
    if buf.len() < words {
        buf.resize(words, 0.0);
    }
    // SAFETY: the buffer holds at least `len` elements of T (size and
    // alignment checked above), any bit pattern is a valid float, and the
    // slice does not outlive `buf`.
    let slice = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut T, len) };
    let r = f(slice);
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 8 {
            p.push(buf);
        }
    });
    r
}
