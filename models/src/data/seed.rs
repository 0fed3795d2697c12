//! Deriving independent seeds from one user seed.
//!
//! Reproducibility "regardless of thread timing" means no random stream may
//! be shared between samples: each epoch's shuffle and each sample's
//! augmentation gets its own generator, seeded from `(seed, stream, epoch,
//! index)` by a strong integer mixer, so the result depends only on those
//! numbers — not on batch size, worker count or the order in which
//! background threads happen to run.

use autograd::rng::{generator, Generator};

/// SplitMix64's finaliser: a bijection on `u64` with full avalanche, so
/// nearby inputs (epoch 3 and 4, index 17 and 18) give unrelated outputs.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that depends on `seed` and every one of `parts`, in order.
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(mix64(seed), |acc, &p| mix64(acc ^ mix64(p)))
}

/// Stream of the per-epoch shuffle.
pub(crate) const SHUFFLE_STREAM: u64 = 0x5_4ff1e;
/// Stream of the per-sample augmentation.
pub(crate) const AUGMENT_STREAM: u64 = 0xa_0c3e;

/// The generator that shuffles epoch `epoch` of a loader seeded with `seed`.
pub fn shuffle_rng(seed: u64, epoch: u64) -> Generator {
    generator(derive_seed(seed, &[SHUFFLE_STREAM, epoch]))
}

/// The generator that augments example `index` in epoch `epoch` of a loader
/// seeded with `seed`: what [`DataLoader`](super::DataLoader) hands the
/// transform, so a sample's augmentation can be reproduced on its own.
pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> Generator {
    generator(derive_seed(seed, &[AUGMENT_STREAM, epoch, index as u64]))
}
