//! The compute threads: one rayon pool that the calling thread joins.
//!
//! ```
//! // Once, at the start of `main`, from the thread that runs the training loop
//! // (like `torch.set_num_threads`); 0 means `RAYON_NUM_THREADS` or every core.
//! // Err if a pool of another size already exists (as in this doctest's harness).
//! autograd::set_num_threads(2).ok();
//! assert!(autograd::num_threads() >= 1);
//! ```
//!
//! Why: without it, every parallel op (GEMM, convolution, large elementwise
//! ops) is handed from the calling thread to rayon's workers while the caller
//! sleeps, so N workers plus the caller share N cores and each op pays a
//! sleep/wake round trip. Measured on a 2-core machine, the MLP benchmark
//! went from 1,180 to 1,580 steps/s with the caller in the pool. It also
//! primes the allocator ([`prime_malloc`]).
//!
//! The tensor kernels themselves (GEMM row blocks, convolutions, pooling,
//! batch norm, large elementwise ops) run their short parallel sections on a
//! team of the same size whose idle threads spin briefly before sleeping
//! (see `kernels/team.rs`); rayon's pool serves everything else. A panic in
//! one thread's part of a section (a bad shape in one chunk) is resumed on
//! the calling thread with its payload, and the team keeps working.

use crate::error::{Error, Result};

/// Builds the global compute pool with `n` threads, the calling thread being
/// one of them (`n = 0`: `RAYON_NUM_THREADS`, else the number of cores).
/// Call it once, before any tensor op, from the thread that will run the
/// model; ops called from other threads still work, handing their work to
/// the pool.
///
/// The pool's size is fixed once it is built, whoever built it: this
/// function, the first parallel op (with the default size), or the program
/// through rayon. Afterwards:
/// - asking for the size it has (for `n = 0`, the default size) is `Ok` and
///   changes nothing (the calling thread does not join the pool);
/// - asking for another size is an error naming both sizes;
/// - calls racing from several threads are serialized by rayon: one builds
///   the pool, the others get one of the two answers above. None blocks for
///   longer than the build.
///
/// Also an error: a pool whose threads cannot be spawned (the I/O error is
/// in the message).
pub fn set_num_threads(n: usize) -> Result<()> {
    prime_malloc();
    let err = |reason: String| Error::InvalidArgument {
        op: "set_num_threads",
        reason,
        shape: vec![],
    };
    let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .use_current_thread()
        .build_global()
    else {
        return Ok(());
    };
    if std::error::Error::source(&e).is_some() {
        return Err(err(format!("cannot build the compute pool: {e}")));
    }
    // The global pool exists: built by another call or by a parallel op.
    let (have, want) = (rayon::current_num_threads(), effective(n));
    if have == want {
        Ok(())
    } else {
        Err(err(format!(
            "the compute pool already runs {have} threads and cannot be resized to {want} \
             (it is built once, by the first set_num_threads or the first parallel op: \
             call set_num_threads once, at the start of main, before any tensor op)"
        )))
    }
}

/// The pool size `n` stands for: `n`, or for 0 rayon's default
/// (`RAYON_NUM_THREADS` if a positive number, else the number of cores).
fn effective(n: usize) -> usize {
    if n > 0 {
        return n;
    }
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&k| k > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |k| k.get()))
}

/// Runs `f(i, items[i])` for every item, all at once on the compute threads
/// (the caller runs item 0): the kernels' own fork-join team, whose helpers
/// spin briefly between sections instead of sleeping. For short
/// data-parallel sections outside this crate, such as an optimizer step over
/// a large tensor; give at most [`num_threads`] items (more run one after
/// another on the caller), and nested calls run serially.
///
/// A panic in any item reaches the caller as that panic (its payload, so
/// its message, unchanged; the calling thread's own first), once every
/// other item has finished; the threads serve later calls as before.
pub fn parallel_for_each<I: Send>(items: Vec<I>, f: impl Fn(usize, I) + Sync) {
    crate::kernels::team::for_each(items, f)
}

/// Threads that parallel ops use (the pool's size).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// Puts glibc malloc in its steady state (the PyTorch benchmark script does
/// the same): blocks above a dynamic threshold (128 KiB at start) are served
/// by fresh `mmap`s, page-faulted in on every use, until a block that large
/// has been freed once; freeing one 30 MiB block raises the threshold to
/// 30 MiB (and the heap trim threshold to twice that), so activations and
/// gradients are recycled. Measured: 13 page faults per MLP step before, 0.3
/// after, and 1.6x the steps/s. Harmless with other allocators: the block is
/// never touched. `black_box` keeps the compiler from eliding the pair.
pub fn prime_malloc() {
    drop(std::hint::black_box(vec![0u8; 30 << 20]));
}
