//! The real datasets: MNIST from the repository (checksums verified on
//! load) and Fashion-MNIST from Debian's `dataset-fashion-mnist`, which CI
//! installs (`.ci/run`).

use std::path::Path;
use std::sync::OnceLock;

use models::data::io::{read_file, sha256_hex};
use models::data::{Dataset, FashionMnist, Mnist};

fn mnist(train: bool) -> &'static Mnist {
    static TRAIN: OnceLock<Mnist> = OnceLock::new();
    static TEST: OnceLock<Mnist> = OnceLock::new();
    let cell = if train { &TRAIN } else { &TEST };
    cell.get_or_init(|| Mnist::load_default(train).unwrap_or_else(|e| panic!("{e}")))
}

fn histogram(ds: &dyn Dataset) -> Vec<usize> {
    let mut h = vec![0; ds.num_classes()];
    for i in 0..ds.len() {
        h[ds.label(i)] += 1;
    }
    h
}

/// Checks what every split of an MNIST-format dataset must satisfy.
fn check_split(
    ds: &dyn Dataset,
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

fn fashion(train: bool) -> FashionMnist {
    let dir = Path::new(FashionMnist::DEFAULT_DIR);
    assert!(
        dir.is_dir(),
        "Fashion-MNIST is not installed in {}: run `apt-get install -y dataset-fashion-mnist` \
         (CI's .ci/run installs it before the tests)",
        dir.display()
    );
    FashionMnist::load_default(train).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fashion_mnist_loads_from_debian_package() {
    // Balanced classes: 6,000 per class in training, 1,000 in test; the
    // first image of each split is an ankle boot (9).
    let train = fashion(true);
    check_split(&train, 60_000, 9, 6_000..=6_000);
    let test = fashion(false);
    check_split(&test, 10_000, 9, 1_000..=1_000);
    assert_eq!(FashionMnist::CLASSES[9], "Ankle boot");
    // A different dataset from MNIST, of course.
    assert_ne!(
        &test.images().pixels()[..784 * 10],
        &mnist(false).images().pixels()[..784 * 10]
    );
}
