//! Per-thread scratch buffers, reused across calls (packed GEMM panels,
//! im2col columns). A small per-thread pool, so nested users (a convolution's
//! columns, then the GEMM's packed panels) each keep their own buffer.

use std::cell::RefCell;

use crate::dtype::Float;

thread_local! {
    // f64 words: aligned for both element types.
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// Spare f64 words at the front of a buffer for its alignment.
const ALIGN_WORDS: usize = 7;

/// Runs `f` with a buffer of `len` elements (contents unspecified).
pub(crate) fn with_scratch<T: Float, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    assert!(std::mem::size_of::<T>() <= 8 && std::mem::align_of::<T>() <= 8);
    // Room to start the slice on a 64-byte boundary (malloc gives 16):
    // vector rows a multiple of 64 bytes apart then never straddle two
    // cache lines.
    let words = (len * std::mem::size_of::<T>()).div_ceil(8) + ALIGN_WORDS;
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
    let skip = buf.as_ptr().align_offset(64).min(ALIGN_WORDS);
    // SAFETY: past the `skip <= ALIGN_WORDS` words the buffer holds at
    // least `len` elements of T (size and alignment checked above), any bit
    // pattern is a valid float, and the slice does not outlive `buf`.
    let slice =
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().add(skip) as *mut T, len) };
    let r = f(slice);
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 8 {
            p.push(buf);
        }
    });
    r
}

#[cfg(test)]
mod tests {
    use super::with_scratch;

    /// Every buffer starts on a 64-byte boundary, nested ones and reused
    /// ones too, and holds the length asked for.
    #[test]
    fn buffers_start_on_cache_lines() {
        for len in [1usize, 15, 16, 1000, 4097, 1 << 20] {
            with_scratch(len, |a: &mut [f32]| {
                assert_eq!((a.len(), a.as_ptr() as usize % 64), (len, 0), "f32, {len}");
                a.fill(1.0);
                with_scratch(len + 3, |b: &mut [f64]| {
                    assert_eq!((b.len(), b.as_ptr() as usize % 64), (len + 3, 0), "f64");
                    b.fill(2.0);
                });
            });
        }
    }
}
