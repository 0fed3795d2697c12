//! The real datasets: MNIST and the Fashion-MNIST sample from the
//! repository, checksums verified on load. Nothing here reads the full
//! Fashion-MNIST (Debian's `dataset-fashion-mnist`): the tests pass on a
//! fresh clone.

use std::path::Path;
use std::sync::OnceLock;

use models::data::io::{read_file, sha256_hex};
use models::data::{Dataset, FashionMnist, ImageDataset, Mnist};

fn mnist(train: bool) -> &'static Mnist {
    static TRAIN: OnceLock<Mnist> = OnceLock::new();
    static TEST: OnceLock<Mnist> = OnceLock::new();
    let cell = if train { &TRAIN } else { &TEST };
    cell.get_or_init(|| Mnist::load_default(train).unwrap_or_else(|e| panic!("{e}")))
}

fn histogram(ds: &dyn ImageDataset) -> Vec<usize> {
    let mut h = vec![0; ds.num_classes()];
    for i in 0..ds.len() {
        h[ds.label(i)] += 1;
    }
    h
}

/// Checks what every split of an MNIST-format dataset must satisfy.
fn check_split(
    ds: &dyn ImageDataset,
    len: usize,
    first_label: usize,
    per_class: std::ops::RangeInclusive<usize>,
) {
    assert_eq!(ds.len(), len);
    assert_eq!((ds.image_shape(), ds.num_classes()), ([1, 28, 28], 10));
    let (img, label) = ds.get(0);
    assert_eq!((img.shape(), label), ([1, 28, 28], first_label));
    assert!(img.data().iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(
        img.data().iter().cloned().fold(0.0, f32::max),
        1.0,
        "a 255 pixel is 1.0"
    );
    let h = histogram(ds);
    assert_eq!(h.iter().sum::<usize>(), len);
    assert!(
        h.iter().all(|c| per_class.contains(c)),
        "label histogram {h:?}"
    );
}

#[test]
fn mnist_train_loads_with_checksums() {
    let train = mnist(true);
    assert!(train.is_train());
    // Smallest class: 5 (5,421 images); largest: 1 (6,742).
    check_split(train, 60_000, 5, 5_421..=6_742);
    let h = histogram(train);
    assert_eq!((h[5], h[1]), (5_421, 6_742));
    // The book's preprocessing: mean pixel about 0.1307.
    let mean = train
        .images()
        .pixels()
        .iter()
        .map(|&b| f64::from(b))
        .sum::<f64>()
        / (60_000.0 * 784.0 * 255.0);
    assert!((mean - 0.1307).abs() < 1e-3, "mean {mean}");
}

#[test]
fn mnist_test_loads_with_checksums() {
    let test = mnist(false);
    assert!(!test.is_train());
    check_split(test, 10_000, 7, 892..=1_135);
}

#[test]
fn mnist_raw_copy_loads_and_checksums_hold() {
    // The raw (gunzipped) files verify against the same checksums.
    let dir = std::env::temp_dir().join(format!("dlfs-data-mnist-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let raw = read_file(Path::new(Mnist::DEFAULT_DIR).join(format!("{name}.gz"))).unwrap();
        std::fs::write(dir.join(name), &raw).unwrap();
    }
    let raw = Mnist::load(&dir, false);
    std::fs::remove_dir_all(&dir).unwrap();
    let raw = raw.unwrap();
    assert_eq!(raw.images().pixels(), mnist(false).images().pixels());
    assert_eq!(raw.images().labels(), mnist(false).images().labels());
    let labels =
        read_file(Path::new(Mnist::DEFAULT_DIR).join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        sha256_hex(&labels),
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    );
}

fn fashion_sample(train: bool) -> FashionMnist {
    FashionMnist::load_sample(train).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fashion_mnist_sample_loads_with_checksums() {
    // The first 200 images of each split; the first of each is an ankle
    // boot (9), as in the full dataset.
    let train = fashion_sample(true);
    assert!(train.is_train() && train.is_sample());
    check_split(&train, 200, 9, 16..=26);
    assert_eq!(
        histogram(&train),
        [24, 26, 18, 17, 18, 20, 21, 21, 16, 19],
        "the per-class counts the sample's README gives"
    );
    let test = fashion_sample(false);
    assert!(!test.is_train() && test.is_sample());
    check_split(&test, 200, 9, 16..=27);
    assert_eq!(histogram(&test), [20, 27, 27, 17, 21, 16, 16, 20, 18, 18]);
    assert_eq!(FashionMnist::CLASSES[9], "Ankle boot");
    assert_eq!(FashionMnist::SAMPLE_LEN, 200);
    // A different dataset from MNIST, of course.
    assert_ne!(
        &test.images().pixels()[..784 * 10],
        &mnist(false).images().pixels()[..784 * 10]
    );
    // Whatever is installed, the default directory or the fallback gives a
    // split whose first images are the sample's (the sample is a prefix).
    let either = FashionMnist::load_or_sample(FashionMnist::DEFAULT_DIR, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!([200, 10_000].contains(&either.len()), "{}", either.len());
    assert_eq!(either.is_sample(), either.len() == 200);
    assert_eq!(
        &either.images().pixels()[..784 * 200],
        test.images().pixels()
    );
}

#[test]
fn fashion_mnist_falls_back_to_the_sample_only_when_absent() {
    let dir = std::env::temp_dir().join(format!("dlfs-data-fashion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No files: the sample.
    let fallback = FashionMnist::load_or_sample(&dir, true);
    // Files that are there but wrong: their error, no silent fallback.
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        let raw =
            read_file(Path::new(FashionMnist::SAMPLE_DIR).join(format!("{name}.gz"))).unwrap();
        std::fs::write(dir.join(name), &raw).unwrap();
    }
    let corrupt = FashionMnist::load_or_sample(&dir, true);
    std::fs::remove_dir_all(&dir).unwrap();
    let fallback = fallback.unwrap_or_else(|e| panic!("{e}"));
    assert!(fallback.is_sample() && fallback.is_train());
    assert_eq!(fallback.len(), FashionMnist::SAMPLE_LEN);
    let err = corrupt.unwrap_err();
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
}
