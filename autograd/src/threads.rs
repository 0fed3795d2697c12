//! The compute threads: one rayon pool that the calling thread joins.
//!
//! ```
//! // Once, at the start of `main`, from the thread that runs the training loop
//! // (like `torch.set_num_threads`); 0 means `RAYON_NUM_THREADS` or every core.
//! autograd::set_num_threads(2).ok(); // Err if a pool already exists (as in this doctest's harness)
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
//! (see `kernels/team.rs`); rayon's pool serves everything else.

use crate::error::{Error, Result};

/// Builds the global compute pool with `n` threads, the calling thread being
/// one of them (`n = 0`: `RAYON_NUM_THREADS`, else the number of cores).
/// Call it once, before any tensor op, from the thread that will run the
/// model; ops called from other threads still work, handing their work to
/// the pool. Fails if a pool was already built (by an earlier call, by a
/// parallel op that ran before, or by the program itself).
pub fn set_num_threads(n: usize) -> Result<()> {
    prime_malloc();
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .use_current_thread()
        .build_global()
        .map_err(|e| Error::InvalidArgument {
            op: "set_num_threads",
            reason: format!(
                "cannot build the compute pool: {e} (call it once, before any tensor op)"
            ),
            shape: vec![],
        })
}

/// Runs `f(i, items[i])` for every item, all at once on the compute threads
/// (the caller runs item 0): the kernels' own fork-join team, whose helpers
/// spin briefly between sections instead of sleeping. For short
/// data-parallel sections outside this crate, such as an optimizer step over
/// a large tensor; give at most [`num_threads`] items (more run one after
/// another on the caller), and nested calls run serially.
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
