//! The DataLoader over datasets that are not (image, label): an image and
//! its mask, regression pairs, triples. Items must stay paired through
//! shuffling, background workers and joint augmentation, every index must
//! appear once per epoch, and the batches must not depend on the threads.

use std::sync::Arc;

use autograd::rng::Generator;
use models::data::transforms::hflip;
use models::data::{Collate, DataLoader, Dataset, Image, TensorStack};
use rand::RngExt;

/// Image `i` is `[1, 3, 4]` with pixel `p` (row-major) = `100 i + p`; its
/// mask has `100 i + p + 0.5` there, so an image and a mask that belong
/// together differ by exactly 0.5 at every pixel, and a flip shows.
struct Segmentation {
    n: usize,
}

impl Dataset for Segmentation {
    type Item = (Image, Image);

    fn len(&self) -> usize {
        self.n
    }

    fn get(&self, index: usize) -> (Image, Image) {
        let image: Vec<f32> = (0..12).map(|p| (100 * index + p) as f32).collect();
        let mask = image.iter().map(|v| v + 0.5).collect();
        (Image::new(image, [1, 3, 4]), Image::new(mask, [1, 3, 4]))
    }
}

/// One random horizontal flip of the image and its mask together.
fn joint_flip((image, mask): (Image, Image), rng: &mut Generator) -> (Image, Image) {
    if rng.random::<f32>() < 0.5 {
        (hflip(image), hflip(mask))
    } else {
        (image, mask)
    }
}

type Values = Vec<(Vec<usize>, Vec<f32>, Vec<f32>)>;

fn segmentation_epoch(loader: &DataLoader<(Image, Image)>, epoch: u64) -> Values {
    loader
        .epoch(epoch)
        .map(|b| {
            let (images, masks) = b.data;
            (b.indices, images.to_vec(), masks.to_vec())
        })
        .collect()
}

#[test]
fn images_and_masks_stay_paired_through_workers_and_flips() {
    let make = |workers| {
        DataLoader::new(Arc::new(Segmentation { n: 37 }), 5)
            .shuffle(true)
            .seed(8)
            .num_workers(workers)
            .prefetch(2)
            .augment(joint_flip)
    };
    let loader = make(3);
    assert_eq!(loader.len(), 8);
    let (mut flipped, mut kept) = (0, 0);
    for epoch in 0..3 {
        let mut seen = Vec::new();
        for b in loader.epoch(epoch) {
            let (images, masks) = &b.data;
            assert_eq!(images.shape(), vec![b.len(), 1, 3, 4]);
            assert_eq!(masks.shape(), vec![b.len(), 1, 3, 4]);
            let (x, m) = (images.to_vec(), masks.to_vec());
            for (k, &i) in b.indices.iter().enumerate() {
                let (x, m) = (&x[k * 12..(k + 1) * 12], &m[k * 12..(k + 1) * 12]);
                assert!(
                    x.iter().zip(m).all(|(x, m)| m - x == 0.5),
                    "example {i}: the mask is not its image's: {x:?} {m:?}"
                );
                let first = x[0] as usize;
                assert_eq!(first / 100, i, "batch slot {k} holds another example");
                match first % 100 {
                    0 => kept += 1,
                    3 => flipped += 1, // row 0 reversed: pixel 3 comes first
                    other => panic!("example {i}: first pixel {other}"),
                }
                // The loader's own record of the sample agrees.
                let (image, mask) = loader.sample(epoch, i);
                assert_eq!((image.data(), mask.data()), (x, m));
            }
            seen.extend_from_slice(&b.indices);
        }
        assert_eq!(seen, loader.order(epoch));
        assert_ne!(seen, (0..37).collect::<Vec<_>>(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..37).collect::<Vec<_>>(), "every index once");
    }
    assert!(flipped > 20 && kept > 20, "{flipped} flipped, {kept} kept");
    // The same batches with no worker thread or with many.
    let reference = segmentation_epoch(&make(0), 1);
    assert_eq!(segmentation_epoch(&make(1), 1), reference);
    assert_eq!(segmentation_epoch(&make(5), 1), reference);
    assert_ne!(segmentation_epoch(&make(0), 2), reference);
}

/// Noiseless `y = 3 x0 - x1 + 1` at `x = (i, i / 2)`, with `i % 4` as a
/// group label in the triple version.
struct Regression {
    n: usize,
}

impl Regression {
    fn x(i: usize) -> Vec<f32> {
        vec![i as f32, i as f32 / 2.0]
    }
    fn y(x: &[f32]) -> f32 {
        3.0 * x[0] - x[1] + 1.0
    }
}

impl Dataset for Regression {
    type Item = (Vec<f32>, f32);

    fn len(&self) -> usize {
        self.n
    }

    fn get(&self, index: usize) -> (Vec<f32>, f32) {
        let x = Regression::x(index);
        let y = Regression::y(&x);
        (x, y)
    }
}

/// The same data as triples: inputs, target, group.
struct Grouped(Regression);

impl Dataset for Grouped {
    type Item = (Vec<f32>, f32, usize);

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, index: usize) -> (Vec<f32>, f32, usize) {
        let (x, y) = self.0.get(index);
        (x, y, index % 4)
    }
}

#[test]
fn regression_pairs_and_triples_batch_into_tensors() {
    let loader = DataLoader::new(Arc::new(Regression { n: 50 }), 16)
        .shuffle(true)
        .seed(2)
        .num_workers(2)
        .augment(|(x, y): (Vec<f32>, f32), rng: &mut Generator| {
            // Noise on the input only: y must still be the clean target of the clean x.
            let noisy = x.iter().map(|v| v + rng.random::<f32>() * 1e-3).collect();
            (noisy, y)
        });
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    for b in loader.epoch(4) {
        let (x, y) = &b.data;
        assert_eq!((x.shape(), y.shape()), (vec![b.len(), 2], vec![b.len()]));
        let (x, y) = (x.to_vec(), y.to_vec());
        for (k, &i) in b.indices.iter().enumerate() {
            let clean = Regression::x(i);
            assert!((x[2 * k] - clean[0]).abs() < 1e-2 && x[2 * k] != clean[0]);
            assert_eq!(y[k], Regression::y(&clean), "target of example {i}");
        }
        sizes.push(b.len());
        seen.extend_from_slice(&b.indices);
    }
    assert_eq!(sizes, [16, 16, 16, 2]);
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());

    let triples = DataLoader::new(Arc::new(Grouped(Regression { n: 10 })), 4)
        .shuffle(true)
        .num_workers(0);
    for b in triples.epoch(0) {
        let n = b.len();
        let (x, y, groups) = b.data;
        assert_eq!((x.shape(), y.shape()), (vec![n, 2], vec![n]));
        let expected: Vec<usize> = b.indices.iter().map(|i| i % 4).collect();
        assert_eq!(groups, expected);
        let x = x.to_vec();
        for (k, &i) in b.indices.iter().enumerate() {
            assert_eq!(x[2 * k], i as f32);
        }
    }
}

/// Rows of varying length: refused with both shapes and the example named.
struct Ragged;

impl Dataset for Ragged {
    type Item = Vec<f32>;

    fn len(&self) -> usize {
        4
    }

    fn get(&self, index: usize) -> Vec<f32> {
        vec![0.0; if index == 2 { 3 } else { 2 }]
    }
}

#[test]
fn items_of_different_shapes_are_refused() {
    let loader = DataLoader::new(Arc::new(Ragged), 4).num_workers(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader.epoch(0).count()));
    let payload = result.unwrap_err();
    let msg = payload.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("example 2") && msg.contains("[3]") && msg.contains("[2]"),
        "{msg}"
    );
    // The stack on its own: an error, then it carries on with the good rows.
    let mut stack = <Vec<f32>>::stack(2);
    <Vec<f32>>::add(&mut stack, vec![1.0, 2.0]).unwrap();
    let err = <Vec<f32>>::add(&mut stack, vec![1.0]).unwrap_err();
    assert!(err.to_string().contains("must all have one shape"), "{err}");
    <Vec<f32>>::add(&mut stack, vec![3.0, 4.0]).unwrap();
    let batch = <Vec<f32>>::finish(stack);
    assert_eq!(
        (batch.shape(), batch.to_vec()),
        (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])
    );
    // A value count that does not fill the shape.
    let mut raw = TensorStack::new(1);
    assert!(raw.push(&[2, 2], &[0.0; 3]).is_err());
    assert!(raw.is_empty());
    assert_eq!(raw.into_tensor().shape(), vec![0]);
}
