//! The DataLoader and the dataset combinators, on small synthetic data:
//! coverage, shuffling, drop_last, reproducibility whatever the threads,
//! early drop, worker panics; Subset and random_split.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autograd::rng::Generator;
use models::data::transforms::{Compose, Pad, RandomAffine};
use models::data::{
    random_split, Batch, DataLoader, Dataset, Image, ImageDataset, InMemory, Subset,
};
use rand::RngExt;

/// `n` examples of shape `[1, 2, 3]`; every value of image `i` is `i`, its
/// label `i % 10`.
fn numbered(n: usize) -> Arc<InMemory> {
    let values = (0..n).flat_map(|i| vec![i as f32; 6]).collect();
    let labels = (0..n).map(|i| i % 10).collect();
    Arc::new(InMemory::new(values, [1, 2, 3], labels).unwrap())
}

/// Adds noise drawn from the sample's generator: any change in how
/// generators are assigned shows up in the values.
fn noise(mut image: Image, rng: &mut Generator) -> Image {
    for v in image.data_mut() {
        *v += rng.random::<f32>();
    }
    image
}

fn all_values(loader: &DataLoader, epoch: u64) -> Vec<(Vec<usize>, Vec<usize>, Vec<f32>)> {
    loader
        .epoch(epoch)
        .map(
            |Batch {
                 data: (images, labels),
                 indices,
             }| (indices, labels, images.to_vec()),
        )
        .collect()
}

#[test]
fn every_index_once_per_epoch_in_batches() {
    let ds = numbered(103);
    let loader = DataLoader::new(ds, 10).shuffle(true).seed(3);
    assert_eq!(loader.len(), 11);
    for epoch in 0..3 {
        let batches: Vec<_> = loader.epoch(epoch).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [vec![10; 10], vec![3]].concat());
        let mut seen = Vec::new();
        for b in &batches {
            assert_eq!(b.images().shape(), vec![b.len(), 1, 2, 3]);
            let values = b.images().to_vec();
            for (k, &i) in b.indices.iter().enumerate() {
                assert_eq!(b.labels()[k], i % 10);
                assert!(values[k * 6..(k + 1) * 6].iter().all(|&v| v == i as f32));
            }
            seen.extend_from_slice(&b.indices);
        }
        assert_eq!(seen, loader.order(epoch));
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
    }
}

#[test]
fn shuffle_differs_per_epoch_and_follows_the_seed() {
    let ds = numbered(50);
    let a = DataLoader::new(ds.clone(), 7).shuffle(true).seed(11);
    let b = DataLoader::new(ds.clone(), 7).shuffle(true).seed(11);
    let c = DataLoader::new(ds.clone(), 7).shuffle(true).seed(12);
    assert_ne!(a.order(0), a.order(1));
    assert_ne!(a.order(1), a.order(2));
    assert_eq!(a.order(5), b.order(5));
    assert_ne!(a.order(0), c.order(0));
    assert_ne!(a.order(0), (0..50).collect::<Vec<_>>());
    // Without shuffling: dataset order, every epoch.
    let plain = DataLoader::new(ds, 7);
    assert_eq!(plain.order(4), (0..50).collect::<Vec<_>>());
    let first: Vec<usize> = plain.epoch(0).flat_map(|b| b.indices).collect();
    assert_eq!(first, (0..50).collect::<Vec<_>>());
}

#[test]
fn drop_last_drops_the_short_batch() {
    let loader = DataLoader::new(numbered(103), 10)
        .shuffle(true)
        .drop_last(true);
    assert_eq!(loader.len(), 10);
    let mut dropped = Vec::new();
    for epoch in 0..2 {
        let batches: Vec<_> = loader.epoch(epoch).collect();
        assert_eq!(batches.len(), 10);
        assert!(batches.iter().all(|b| b.len() == 10));
        let mut seen: Vec<usize> = batches.into_iter().flat_map(|b| b.indices).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100);
        dropped.push(loader.order(epoch)[100..].to_vec());
    }
    assert_ne!(dropped[0], dropped[1], "a different remainder each epoch");
    // A dataset smaller than one batch: nothing with drop_last, one batch without.
    assert_eq!(
        DataLoader::new(numbered(5), 10)
            .drop_last(true)
            .epoch(0)
            .count(),
        0
    );
    assert_eq!(DataLoader::new(numbered(5), 10).epoch(0).count(), 1);
}

#[test]
fn same_batches_whatever_the_threads() {
    let ds = numbered(64);
    let make = |workers, prefetch| {
        DataLoader::new(ds.clone(), 6)
            .shuffle(true)
            .seed(99)
            .transform(noise)
            .num_workers(workers)
            .prefetch(prefetch)
    };
    let reference = all_values(&make(0, 1), 2);
    for (workers, prefetch) in [(1, 1), (1, 4), (3, 2), (8, 1)] {
        assert_eq!(
            all_values(&make(workers, prefetch), 2),
            reference,
            "{workers} workers"
        );
    }
    // Each sample's augmentation depends on (seed, epoch, index) only:
    // the same as `sample`, and different in another epoch.
    let loader = make(2, 2);
    let batch = loader.epoch(2).next().unwrap();
    let i = batch.indices[0];
    assert_eq!(&batch.images().to_vec()[..6], loader.sample(2, i).0.data());
    assert_ne!(loader.sample(2, i).0, loader.sample(3, i).0);
    assert_ne!(all_values(&make(1, 2), 3), reference);
    // And on the batch size not at all.
    let by_index = |loader: &DataLoader| {
        let mut v: Vec<(usize, Vec<f32>)> = loader
            .epoch(1)
            .flat_map(|b| {
                let values = b.images().to_vec();
                b.indices
                    .into_iter()
                    .enumerate()
                    .map(move |(k, i)| (i, values[k * 6..(k + 1) * 6].to_vec()))
            })
            .collect();
        v.sort_by_key(|p| p.0);
        v
    };
    let big = DataLoader::new(ds.clone(), 32)
        .shuffle(true)
        .seed(99)
        .transform(noise);
    assert_eq!(by_index(&make(1, 2)), by_index(&big));
}

#[test]
fn iter_counts_epochs() {
    let loader = DataLoader::new(numbered(20), 5).shuffle(true).seed(1);
    let it = loader.iter();
    assert_eq!((it.epoch(), it.len()), (0, 4));
    drop(it);
    let second: Vec<usize> = (&loader).into_iter().flat_map(|b| b.indices).collect();
    assert_eq!(second, loader.order(1));
    loader.set_epoch(7);
    assert_eq!(loader.iter().epoch(), 7);
    assert_eq!(loader.iter().epoch(), 8);
}

#[test]
fn transforms_that_change_the_shape() {
    let loader = DataLoader::new(numbered(10), 4).transform(
        Compose::new()
            .then(Pad::new(2))
            .then(RandomAffine::new(10.0)),
    );
    let shapes: Vec<Vec<usize>> = loader.epoch(0).map(|b| b.images().shape()).collect();
    assert_eq!(
        shapes,
        vec![vec![4, 1, 6, 7], vec![4, 1, 6, 7], vec![2, 1, 6, 7]]
    );
}

#[test]
fn dropping_early_stops_the_workers() {
    let ds = numbered(400);
    let slow = |image: Image, _: &mut Generator| {
        std::thread::sleep(Duration::from_millis(2));
        image
    };
    let loader = DataLoader::new(ds.clone(), 4)
        .transform(slow)
        .num_workers(2)
        .prefetch(3);
    for taken in [0, 1, 3] {
        let start = Instant::now();
        let batches = loader.epoch(0);
        let got = batches.take(taken).count();
        assert_eq!(got, taken);
        // `take` dropped the iterator: the workers must be gone, which
        // shows as the dataset's reference count back to ours and the loader's.
        assert_eq!(Arc::strong_count(&ds), 2, "workers still hold the dataset");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "drop took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_worker_panic_reaches_the_training_thread() {
    let bad = |image: Image, _: &mut Generator| -> Image {
        assert!(
            image.data()[0] != 13.0,
            "transform cannot handle example 13"
        );
        image
    };
    let loader = DataLoader::new(numbered(40), 5).transform(bad);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader.epoch(0).count()));
    let payload = result.unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(msg.contains("example 13"), "{msg}");
    // Mixed shapes in one batch are refused with a message, not garbled.
    let odd = |image: Image, _: &mut Generator| -> Image {
        if image.data()[0] == 1.0 {
            Image::full([1, 3, 3], 0.0)
        } else {
            image
        }
    };
    let loader = DataLoader::new(numbered(4), 4)
        .transform(odd)
        .num_workers(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader.epoch(0).count()));
    let payload = result.unwrap_err();
    let msg = payload.downcast_ref::<String>().unwrap();
    assert!(msg.contains("must all have one shape"), "{msg}");
}

#[test]
fn empty_dataset_gives_no_batches() {
    let ds = Arc::new(InMemory::new(vec![], [1, 2, 2], vec![]).unwrap());
    let loader = DataLoader::new(ds, 3).shuffle(true);
    assert!(loader.is_empty());
    assert_eq!(loader.epoch(0).count(), 0);
}

#[test]
fn subsets_and_splits() {
    let ds: Arc<dyn ImageDataset> = numbered(100);
    let first = Subset::first(ds.clone(), 30);
    assert_eq!(
        (first.len(), first.label(29), first.get(29).0.data()[0]),
        (30, 9, 29.0)
    );
    assert_eq!(Subset::first(ds.clone(), 1000).len(), 100);
    let picked = Subset::new(ds.clone(), vec![5, 5, 99]).unwrap();
    assert_eq!(
        (picked.len(), picked.label(2), picked.image_shape()),
        (3, 9, [1, 2, 3])
    );
    let err = Subset::new(ds.clone(), vec![1, 100]).unwrap_err();
    assert!(err.to_string().contains("index 100"), "{err}");

    let balanced = Subset::per_class(ds.clone(), 4, 0);
    assert_eq!(balanced.len(), 40);
    let mut counts = [0; 10];
    for i in 0..balanced.len() {
        counts[balanced.label(i)] += 1;
    }
    assert_eq!(counts, [4; 10]);
    assert_eq!(
        Subset::per_class(ds.clone(), 4, 0).indices(),
        balanced.indices()
    );
    assert_ne!(
        Subset::per_class(ds.clone(), 4, 1).indices(),
        balanced.indices()
    );

    let parts = random_split(ds.clone(), &[70, 30], 5).unwrap();
    assert_eq!((parts[0].len(), parts[1].len()), (70, 30));
    let mut all: Vec<usize> = parts.iter().flat_map(|p| p.indices().to_vec()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert!(random_split(ds.clone(), &[70, 20], 5).is_err());
    // A subset feeds a loader like any dataset.
    let loader = DataLoader::new(Arc::new(parts.into_iter().nth(1).unwrap()), 8);
    assert_eq!(loader.epoch(0).map(|b| b.len()).sum::<usize>(), 30);
}

#[test]
fn in_memory_checks_its_inputs() {
    assert!(InMemory::new(vec![0.0; 7], [1, 2, 2], vec![0, 1]).is_err());
    let a = Image::full([1, 2, 2], 1.0);
    let b = Image::full([1, 3, 2], 1.0);
    let err = InMemory::from_images(vec![a.clone(), b], vec![0, 1]).unwrap_err();
    assert!(err.to_string().contains("image 1"), "{err}");
    let ds = InMemory::from_images(vec![a.clone(), a], vec![0, 3])
        .unwrap()
        .with_num_classes(10);
    assert_eq!(
        (ds.len(), ds.num_classes(), ds.image_shape()),
        (2, 10, [1, 2, 2])
    );
}
