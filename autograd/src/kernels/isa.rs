//! Which x86 vector extension the convolution kernels use: AVX-512 where
//! the CPU has it, else AVX2 + FMA. `AUTOGRAD_ISA=avx2` keeps AVX2 on an
//! AVX-512 CPU (for comparisons); [`set_avx512`] switches at run time (tests
//! and benches compare the two in one process).

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// 0: not yet read; 1: AVX2; 2: AVX-512.
static STATE: AtomicU8 = AtomicU8::new(0);

fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the kernels that have an AVX-512 form use it.
pub(crate) fn avx512() -> bool {
    match STATE.load(Relaxed) {
        0 => {
            let on =
                cpu_has_avx512() && std::env::var("AUTOGRAD_ISA").map_or(true, |v| v != "avx2");
            STATE.store(if on { 2 } else { 1 }, Relaxed);
            on
        }
        s => s == 2,
    }
}

/// Turns the AVX-512 kernels on or off; returns whether they are on (never
/// on a CPU without AVX-512F).
pub(crate) fn set_avx512(on: bool) -> bool {
    let on = on && cpu_has_avx512();
    STATE.store(if on { 2 } else { 1 }, Relaxed);
    on
}
