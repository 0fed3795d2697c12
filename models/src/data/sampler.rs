//! [`DistributedSampler`]: each of `num_replicas` processes takes a disjoint
//! share of every epoch's order, as PyTorch's
//! `torch.utils.data.distributed.DistributedSampler`.
//!
//! Every process shuffles with the same seed, so all of them hold the same
//! permutation of the epoch; process `rank` then takes every
//! `num_replicas`-th index of it, starting at `rank`. With a loader of batch
//! `B` on each of `P` processes, batch `b` of the `P` processes together is
//! exactly batch `b` of one process with batch `P·B` over the same
//! permutation (positions `P·B·b .. P·B·(b+1)`).
//!
//! When the length `N` does not divide by `P`, the shares are made equal
//! (collectives need every process to run the same number of steps):
//!
//! - [`Tail::Pad`] (the default, PyTorch's `drop_last=False`): the order is
//!   extended by repeating its start until it divides, so `N mod P`
//!   examples are seen twice per epoch; each share has `ceil(N / P)`.
//! - [`Tail::Drop`] (PyTorch's `drop_last=True`): the last `N mod P` of the
//!   permutation are left out this epoch; each share has `floor(N / P)`.
//! - [`Tail::Uneven`]: no padding, no dropping; shares differ by at most
//!   one and every example is seen exactly once. For evaluation, where no
//!   process waits on another per batch; not for training with collectives.
//!
//! Augmentation is seeded per example (see
//! [`seed::sample_rng`](super::seed::sample_rng)), not per process, so the
//! union of what the processes see in an epoch is what one process sees.
//!
//! ```
//! use models::data::{DistributedSampler, Tail};
//! let order: Vec<usize> = (0..10).collect();
//! let shards: Vec<Vec<usize>> = (0..3).map(|r| DistributedSampler::new(r, 3).shard(&order)).collect();
//! assert_eq!(shards, [vec![0, 3, 6, 9], vec![1, 4, 7, 0], vec![2, 5, 8, 1]]); // padded with 0, 1
//! let dropped = DistributedSampler::new(2, 3).tail(Tail::Drop).shard(&order);
//! assert_eq!(dropped, [2, 5, 8]);
//! ```

use super::error::{DataError, Result};

/// What a [`DistributedSampler`] does when the epoch does not divide evenly;
/// see the [module documentation](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tail {
    /// Repeat the permutation's start so that every share has `ceil(N / P)`.
    #[default]
    Pad,
    /// Leave out the last `N mod P`; every share has `floor(N / P)`.
    Drop,
    /// Shares of `floor` or `ceil(N / P)`: every example exactly once.
    Uneven,
}

/// Process `rank`'s share of each epoch among `num_replicas`; see the
/// [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistributedSampler {
    rank: usize,
    num_replicas: usize,
    tail: Tail,
}

impl DistributedSampler {
    /// Share `rank` of `num_replicas`, padded ([`Tail::Pad`]).
    ///
    /// # Panics
    /// If `rank >= num_replicas`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(rank: usize, num_replicas: usize) -> Self {
        match Self::try_new(rank, num_replicas) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Share `rank` of `num_replicas`, or an error if `rank` is not below
    /// `num_replicas`.
    pub fn try_new(rank: usize, num_replicas: usize) -> Result<Self> {
        if rank >= num_replicas {
            return Err(DataError::Invalid(format!(
                "DistributedSampler: rank {rank} is not below num_replicas {num_replicas}"
            )));
        }
        Ok(DistributedSampler {
            rank,
            num_replicas,
            tail: Tail::Pad,
        })
    }

    /// How an epoch that does not divide evenly is shared.
    pub fn tail(mut self, tail: Tail) -> Self {
        self.tail = tail;
        self
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes sharing the data.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// The tail policy.
    pub fn tail_policy(&self) -> Tail {
        self.tail
    }

    /// How many examples this share holds for a dataset of `len`.
    pub fn num_samples(&self, len: usize) -> usize {
        let p = self.num_replicas;
        match self.tail {
            Tail::Pad => len.div_ceil(p),
            Tail::Drop => len / p,
            Tail::Uneven => len / p + usize::from(self.rank < len % p),
        }
    }

    /// This process's share of an epoch's `order` (the full permutation,
    /// the same on every process).
    pub fn shard(&self, order: &[usize]) -> Vec<usize> {
        let (n, p) = (order.len(), self.num_replicas);
        match self.tail {
            Tail::Uneven => order.iter().skip(self.rank).step_by(p).copied().collect(),
            Tail::Drop => order[..(n / p) * p]
                .iter()
                .skip(self.rank)
                .step_by(p)
                .copied()
                .collect(),
            Tail::Pad => {
                if n == 0 {
                    return Vec::new();
                }
                let total = n.div_ceil(p) * p;
                // Position i of the padded order is order[i mod n]: the
                // start repeats, as many times as needed (n < p included).
                (self.rank..total)
                    .step_by(p)
                    .map(|i| order[i % n])
                    .collect()
            }
        }
    }
}
