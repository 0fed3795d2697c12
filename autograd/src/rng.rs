//! The seeded random generator behind `Tensor::randn`, `Tensor::uniform`,
//! initialisers and dropout: one seed fixes them all.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::SeedableRng;

/// The generator every random op uses unless given one.
pub type Generator = StdRng;

/// Seed used before any call to [`manual_seed`].
pub const DEFAULT_SEED: u64 = 0x5eed;

thread_local! {
    static RNG: RefCell<Generator> = RefCell::new(Generator::seed_from_u64(DEFAULT_SEED));
}

/// Reseeds this thread's generator (as `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Generator::seed_from_u64(seed));
}

/// Runs `f` with this thread's generator.
pub fn with_rng<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// A new generator seeded from `seed` (for components that own their randomness).
pub fn generator(seed: u64) -> Generator {
    Generator::seed_from_u64(seed)
}
