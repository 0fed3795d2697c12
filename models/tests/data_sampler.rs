//! The distributed sampler: shards disjoint and covering, equal lengths, and
//! the union of per-rank loader batches equal to one process's batches.

use std::collections::HashSet;
use std::sync::Arc;

use models::data::{DataLoader, DistributedSampler, InMemory, Tail};

/// A permutation of 0..n that is not the identity (so strides are checked
/// against positions, not values).
fn perm(n: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7 + 3) % n.max(1)).collect::<Vec<_>>()
}

#[test]
fn shards_are_disjoint_and_cover_for_sizes_1_to_4() {
    for p in 1..=4 {
        for n in [0, 1, 2, 3, 5, 7, 10, 11, 13, 64, 97] {
            let order: Vec<usize> = if n == 0 { vec![] } else { perm(n) };
            let order: Vec<usize> = if n > 0 && order.iter().collect::<HashSet<_>>().len() != n {
                (0..n).rev().collect()
            } else {
                order
            };
            // Uneven: a partition of the order (each example once).
            let shards: Vec<Vec<usize>> = (0..p)
                .map(|r| {
                    DistributedSampler::new(r, p)
                        .tail(Tail::Uneven)
                        .shard(&order)
                })
                .collect();
            let mut all: Vec<usize> = shards.concat();
            all.sort_unstable();
            let mut want = order.clone();
            want.sort_unstable();
            assert_eq!(all, want, "uneven p={p} n={n}");
            for (r, s) in shards.iter().enumerate() {
                let sampler = DistributedSampler::new(r, p).tail(Tail::Uneven);
                assert_eq!(
                    s.len(),
                    sampler.num_samples(n),
                    "uneven len p={p} n={n} r={r}"
                );
            }

            // Pad: equal lengths ceil(n/p); the shards together are the
            // order followed by its first (total - n) entries, interleaved.
            let pad: Vec<Vec<usize>> = (0..p)
                .map(|r| DistributedSampler::new(r, p).shard(&order))
                .collect();
            let per = n.div_ceil(p);
            for (r, s) in pad.iter().enumerate() {
                assert_eq!(s.len(), per, "pad len p={p} n={n} r={r}");
                assert_eq!(DistributedSampler::new(r, p).num_samples(n), per);
            }
            let interleaved: Vec<usize> = (0..per * p).map(|i| pad[i % p][i / p]).collect();
            let padded: Vec<usize> = (0..per * p).map(|i| order[i % n.max(1)]).collect();
            assert_eq!(interleaved, padded, "pad p={p} n={n}");
            // Disjoint apart from the padding: the first n positions are distinct.
            let first: HashSet<usize> = interleaved.iter().take(n).copied().collect();
            assert_eq!(first.len(), n, "pad covers p={p} n={n}");

            // Drop: equal lengths floor(n/p), disjoint, a prefix of the order.
            let drop: Vec<Vec<usize>> = (0..p)
                .map(|r| DistributedSampler::new(r, p).tail(Tail::Drop).shard(&order))
                .collect();
            let keep = (n / p) * p;
            let mut got: Vec<usize> = drop.concat();
            assert!(
                drop.iter().all(|s| s.len() == n / p),
                "drop len p={p} n={n}"
            );
            got.sort_unstable();
            let mut want: Vec<usize> = order[..keep].to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "drop p={p} n={n}");
        }
    }
}

#[test]
fn a_bad_rank_is_an_error() {
    let e = DistributedSampler::try_new(2, 2).unwrap_err().to_string();
    assert!(e.contains("rank 2") && e.contains("num_replicas 2"), "{e}");
}

#[test]
fn rank_batches_together_are_the_single_process_batches() {
    // 23 one-pixel images whose value is their index.
    let n = 23;
    let data =
        Arc::new(InMemory::new((0..n).map(|i| i as f32).collect(), [1, 1, 1], vec![0; n]).unwrap());
    let global = 6;
    for p in [1, 2, 3] {
        let single = DataLoader::new(data.clone(), global)
            .shuffle(true)
            .seed(5)
            .drop_last(true);
        let ranks: Vec<DataLoader> = (0..p)
            .map(|r| {
                DataLoader::new(data.clone(), global / p)
                    .shuffle(true)
                    .seed(5)
                    .drop_last(true)
                    .distributed(DistributedSampler::new(r, p))
                    .num_workers(0)
            })
            .collect();
        for epoch in 0..2 {
            let whole: Vec<Vec<usize>> = single.epoch(epoch).map(|b| sorted(&b.indices)).collect();
            let parts: Vec<Vec<Vec<usize>>> = ranks
                .iter()
                .map(|l| l.epoch(epoch).map(|b| b.indices.clone()).collect())
                .collect();
            // With padding every rank has the same number of batches.
            assert!(parts.iter().all(|b| b.len() == parts[0].len()));
            for (b, want) in whole.iter().enumerate().take(parts[0].len()) {
                let got = sorted(&parts.iter().flat_map(|r| r[b].clone()).collect::<Vec<_>>());
                assert_eq!(&got, want, "p={p} epoch {epoch} batch {b}");
            }
        }
    }
}

fn sorted(v: &[usize]) -> Vec<usize> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}
