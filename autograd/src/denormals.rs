//! Flushing denormal floats to zero (x86's FTZ and DAZ bits), on the calling
//! thread and on every compute thread (each applies the setting before its
//! next piece of work).
//!
//! Arithmetic on denormals (magnitudes below ~1.2e-38 in f32) takes a slow
//! microcode path on many CPUs; weights and gradients that decay towards
//! zero late in training can produce them. Off by default, as in PyTorch
//! (`torch.set_flush_denormal`); results differ only where a value would
//! have been denormal.
//!
//! ```
//! let supported = autograd::set_flush_denormals(true);
//! assert_eq!(autograd::flush_denormals(), supported);
//! autograd::set_flush_denormals(false);
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::*};

/// `generation << 1 | on`: compute threads compare it with what they last applied.
static STATE: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static APPLIED: Cell<u32> = const { Cell::new(0) };
}

/// Turns flushing of denormals to zero on or off for this thread and the
/// compute threads; returns whether this CPU supports it (x86-64: always).
pub fn set_flush_denormals(on: bool) -> bool {
    let prev = STATE.load(Acquire);
    STATE.store(((prev >> 1) + 1) << 1 | on as u32, Release);
    sync_flush_denormals();
    cfg!(target_arch = "x86_64")
}

/// Whether denormals are flushed (as last set).
pub fn flush_denormals() -> bool {
    cfg!(target_arch = "x86_64") && STATE.load(Acquire) & 1 == 1
}

/// Brings this thread's floating-point mode in line with the setting: the
/// kernels' team and softmax's rayon lanes call it before each piece of
/// work (one atomic load); code running its own worker threads (optim's
/// gradient clipping on rayon) calls it the same way.
pub fn sync_flush_denormals() {
    let state = STATE.load(Acquire);
    APPLIED.with(|applied| {
        if applied.get() != state {
            set_mode(state & 1 == 1);
            applied.set(state);
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)] // _mm_getcsr/_mm_setcsr: the documented way to reach MXCSR
fn set_mode(on: bool) {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    // FTZ (bit 15): denormal results become zero; DAZ (bit 6): denormal inputs read as zero.
    const BITS: u32 = 1 << 15 | 1 << 6;
    // SAFETY: only the FTZ and DAZ bits change; both are valid in MXCSR on every x86-64 CPU.
    unsafe {
        let csr = _mm_getcsr();
        _mm_setcsr(if on { csr | BITS } else { csr & !BITS });
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn set_mode(_on: bool) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_denormal_results_and_restores() {
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        let half = std::hint::black_box(0.5f32);
        assert!(tiny * half > 0.0, "denormal result without flushing");
        if set_flush_denormals(true) {
            assert_eq!(std::hint::black_box(tiny * half), 0.0);
            assert!(flush_denormals());
        }
        set_flush_denormals(false);
        assert!(tiny * half > 0.0);
        assert!(!flush_denormals());
    }
}
