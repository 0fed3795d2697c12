//! File readers on small files the tests write: IDX raw and gzipped, every
//! kind of bad file (each a clear error naming the file, never a panic),
//! and CIFAR-10 binary batches.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use models::data::idx::{read_idx_images, read_idx_labels, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
use models::data::io::read_file;
use models::data::{Cifar10, DataError, Dataset, FashionMnist, ImageDataset, Mnist};
use proptest::prelude::*;

/// A fresh, empty directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("dlfs-data-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `n` images of `rows` x `cols` with pixel `k` of image `i` = `(7i + k) % 256`.
fn images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let size = (rows * cols) as usize;
    let data: Vec<u8> = (0..n as usize * size)
        .map(|k| ((7 * (k / size) + k % size) % 256) as u8)
        .collect();
    idx(IDX_IMAGES_MAGIC, &[n, rows, cols], &data)
}

fn labels(values: &[u8]) -> Vec<u8> {
    idx(IDX_LABELS_MAGIC, &[values.len() as u32], values)
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// The message must name the file (by its file name) and say `what`.
#[track_caller]
fn assert_names(err: &DataError, file: &Path, what: &str) {
    let msg = err.to_string();
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "message does not name {name}: {msg}");
    assert!(msg.contains(what), "message does not say '{what}': {msg}");
}

/// A directory laid out as MNIST's test split, holding the given bytes.
fn mnist_test_dir(tmp: &TempDir, images: &[u8], labels: &[u8], gz: bool) -> (PathBuf, PathBuf) {
    let ext = if gz { ".gz" } else { "" };
    let (ip, lp) = (
        tmp.path(&format!("t10k-images-idx3-ubyte{ext}")),
        tmp.path(&format!("t10k-labels-idx1-ubyte{ext}")),
    );
    let (ib, lb) = if gz {
        (gzip(images), gzip(labels))
    } else {
        (images.to_vec(), labels.to_vec())
    };
    write(&ip, &ib);
    write(&lp, &lb);
    (ip, lp)
}

#[test]
fn idx_reads_raw_and_gzip_alike() {
    let tmp = TempDir::new("rawgz");
    let bytes = images(3, 4, 5);
    write(&tmp.path("a"), &bytes);
    write(&tmp.path("a.gz"), &gzip(&bytes));
    // gzip detected by its magic bytes even without the extension.
    write(&tmp.path("b"), &gzip(&bytes));
    let raw = read_idx_images(tmp.path("a")).unwrap();
    assert_eq!(raw.dims(), &[3, 4, 5]);
    assert_eq!(raw.data(), &bytes[16..]);
    for other in ["a.gz", "b"] {
        let x = read_idx_images(tmp.path(other)).unwrap();
        assert_eq!((x.dims(), x.data()), (raw.dims(), raw.data()));
    }
    let l = read_idx_labels({
        write(&tmp.path("l"), &labels(&[1, 2, 3]));
        tmp.path("l")
    })
    .unwrap();
    assert_eq!((l.dims(), l.data()), (&[3usize][..], &[1u8, 2, 3][..]));
}

#[test]
fn load_files_gives_scaled_images_and_labels() {
    let tmp = TempDir::new("loadfiles");
    let (ip, lp) = mnist_test_dir(&tmp, &images(3, 4, 5), &labels(&[9, 0, 4]), true);
    let ds = Mnist::load_files(&ip, &lp).unwrap();
    assert_eq!(
        (ds.len(), ds.image_shape(), ds.num_classes()),
        (3, [1, 4, 5], 10)
    );
    let (img, label) = ds.get(1);
    assert_eq!((img.shape(), label), ([1, 4, 5], 0));
    let expected: Vec<f32> = (0..20).map(|k| ((7 + k) % 256) as f32 / 255.0).collect();
    assert_eq!(img.data(), &expected[..]);
    assert_eq!(ds.images().labels(), &[9, 0, 4]);
    assert_eq!(ds.label(2), 4);
}

#[test]
fn wrong_magic_is_named() {
    let tmp = TempDir::new("magic");
    // Images and labels swapped: each file has the other's magic number.
    let (ip, _) = mnist_test_dir(&tmp, &labels(&[1, 2]), &images(2, 2, 2), false);
    let err = Mnist::load(&tmp.0, false).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &ip, "wrong magic number 0x00000801");
    assert!(err.to_string().contains("0x00000803"));
    // Not an IDX file at all.
    write(&tmp.path("x"), b"hello world");
    let err = read_idx_labels(tmp.path("x")).unwrap_err();
    assert_names(&err, &tmp.path("x"), "wrong magic number");
}

#[test]
fn truncated_files_are_named() {
    let tmp = TempDir::new("trunc");
    let full = images(3, 28, 28);
    // Data cut short.
    let (ip, _) = mnist_test_dir(&tmp, &full[..full.len() - 100], &labels(&[1, 2, 3]), true);
    let err = Mnist::load(&tmp.0, false).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert_names(&err, &ip, "truncated");
    assert!(
        err.to_string().contains(&format!("{}", full.len())),
        "{err}"
    );
    // Header cut short, and a file too short for a magic number.
    for cut in [10, 2, 0] {
        write(&tmp.path("h"), &full[..cut]);
        let err = read_idx_images(tmp.path("h")).unwrap_err();
        assert!(matches!(err, DataError::Truncated { .. }), "{err}");
        assert_names(&err, &tmp.path("h"), "truncated");
    }
    // The opposite: bytes left over.
    let mut long = labels(&[1, 2]);
    long.push(0);
    write(&tmp.path("long"), &long);
    let err = read_idx_labels(tmp.path("long")).unwrap_err();
    assert!(
        matches!(err, DataError::TrailingBytes { extra: 1, .. }),
        "{err}"
    );
    assert_names(&err, &tmp.path("long"), "1 unexpected bytes");
}

#[test]
fn count_mismatch_names_both_files() {
    let tmp = TempDir::new("count");
    let (ip, lp) = mnist_test_dir(&tmp, &images(3, 28, 28), &labels(&[1, 2]), false);
    let err = Mnist::load(&tmp.0, false).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 3,
                labels: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &ip, "3 images");
    assert_names(&err, &lp, "2 labels");
}

#[test]
fn checksum_mismatch_is_named() {
    let tmp = TempDir::new("checksum");
    // Well-formed IDX files that are not MNIST's: only the checksum can tell.
    let (ip, lp) = mnist_test_dir(&tmp, &images(2, 28, 28), &labels(&[1, 2]), true);
    let err = Mnist::load(&tmp.0, false).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert_names(&err, &ip, "SHA-256 mismatch");
    assert!(err
        .to_string()
        .contains("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"));
    // Fashion-MNIST's checksums are verified too; the same files load unverified.
    let err = FashionMnist::load(&tmp.0, false).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert_eq!(Mnist::load_files(&ip, &lp).unwrap().len(), 2);
}

#[test]
fn bad_gzip_is_named() {
    let tmp = TempDir::new("gzip");
    let good = gzip(&images(2, 28, 28));
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0xff; // the CRC-32 of the trailer
    let mut bad_data = good.clone();
    bad_data[12] ^= 0xff; // inside the deflate stream
    let cases: [(&str, Vec<u8>); 4] = [
        ("not gzip at all", b"plain text, named .gz".to_vec()),
        ("cut short", good[..good.len() / 2].to_vec()),
        ("bad crc", bad_crc),
        ("corrupt stream", bad_data),
    ];
    for (what, bytes) in cases {
        let path = tmp.path("t10k-images-idx3-ubyte.gz");
        write(&path, &bytes);
        write(&tmp.path("t10k-labels-idx1-ubyte"), &labels(&[1, 2]));
        let err = Mnist::load(&tmp.0, false).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{what}: {err}");
        assert_names(&err, &path, "bad gzip data");
    }
}

#[test]
fn missing_files_and_bad_labels_are_named() {
    let tmp = TempDir::new("missing");
    let err = Mnist::load(&tmp.0, true).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
    assert_names(&err, &tmp.0, "train-images-idx3-ubyte.gz");
    let err = FashionMnist::load(&tmp.0, false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist")
            && msg.contains("examples/data/fashion-mnist-sample"),
        "the package to install and the sample: {msg}"
    );
    // A directory where a file should be: an I/O error naming it.
    let err = read_file(&tmp.0).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert_names(&err, &tmp.0, "cannot read");
    // A label outside 0..10.
    let (_, lp) = mnist_test_dir(&tmp, &images(3, 28, 28), &labels(&[1, 10, 2]), false);
    let err = Mnist::load(&tmp.0, false).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, &lp, "label 10 of example 1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever is done to a file — cut, bytes flipped — reading it returns
    /// a value or an error, never panics.
    #[test]
    fn damaged_files_never_panic(cut in 0usize..200, flips in prop::collection::vec((0usize..200, any::<u8>()), 0..4), gz in any::<bool>()) {
        let mut bytes = images(2, 5, 6);
        bytes.extend_from_slice(&[0; 100]);
        let mut bytes = if gz { gzip(&bytes) } else { bytes };
        for (at, x) in flips {
            if at < bytes.len() {
                bytes[at] ^= x;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        let tmp = TempDir::new("prop");
        write(&tmp.path("f"), &bytes);
        let _ = read_idx_images(tmp.path("f"));
        let _ = read_idx_labels(tmp.path("f"));
        let _ = models::data::cifar::read_cifar10_batch(tmp.path("f"));
    }
}

// ---- CIFAR-10 -------------------------------------------------------------

/// `n` records; record `r` of file `f` has label `(f + r) % 10` and pixel
/// `k` = `(f * 31 + r * 7 + k) % 256`.
fn cifar_batch(f: usize, n: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in 0..n {
        bytes.push(((f + r) % 10) as u8);
        bytes.extend((0..3072).map(|k| ((f * 31 + r * 7 + k) % 256) as u8));
    }
    bytes
}

fn write_cifar(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (f, name) in Cifar10::TRAIN_FILES.iter().enumerate() {
        write(&dir.join(name), &cifar_batch(f, 3));
    }
    write(&dir.join(Cifar10::TEST_FILE), &cifar_batch(9, 2));
}

#[test]
fn cifar10_reads_binary_batches() {
    let tmp = TempDir::new("cifar");
    write_cifar(&tmp.0);
    let train = Cifar10::load(&tmp.0, true).unwrap();
    assert!(train.is_train());
    assert_eq!(
        (train.len(), train.image_shape(), train.num_classes()),
        (15, [3, 32, 32], 10)
    );
    // Example 7 is record 1 of data_batch_3 (f = 2).
    let (img, label) = train.get(7);
    assert_eq!(label, 3);
    for (c, y, x) in [(0, 0, 0), (1, 5, 9), (2, 31, 31)] {
        let k = c * 1024 + y * 32 + x;
        assert_eq!(img.at(c, y, x), ((2 * 31 + 7 + k) % 256) as f32 / 255.0);
    }
    let test = Cifar10::load(&tmp.0, false).unwrap();
    assert_eq!((test.len(), test.label(0), test.label(1)), (2, 9, 0));
    // The directory the archive unpacks into, and gzipped batches.
    let outer = TempDir::new("cifar-outer");
    let inner = outer.path("cifar-10-batches-bin");
    write_cifar(&inner);
    write(&inner.join("test_batch.bin.gz"), &gzip(&cifar_batch(9, 2)));
    std::fs::remove_file(inner.join("test_batch.bin")).unwrap();
    assert_eq!(Cifar10::load(&outer.0, true).unwrap().len(), 15);
    let gz = Cifar10::load(&outer.0, false).unwrap();
    assert_eq!(gz.images().pixels(), test.images().pixels());
}

#[test]
fn cifar10_bad_files_are_named() {
    let tmp = TempDir::new("cifar-bad");
    write_cifar(&tmp.0);
    let path = tmp.path("data_batch_4.bin");
    write(&path, &cifar_batch(3, 3)[..3073 * 2 + 100]);
    let err = Cifar10::load(&tmp.0, true).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert_names(&err, &path, "truncated: record 3");
    let mut bad = cifar_batch(3, 3);
    bad[3073] = 12;
    write(&path, &bad);
    let err = Cifar10::load(&tmp.0, true).unwrap_err();
    assert_names(&err, &path, "label 12 of example 1");
    std::fs::remove_file(&path).unwrap();
    let err = Cifar10::load(&tmp.0, true).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
    assert_names(&err, &tmp.0, "data_batch_4.bin");
    write(&path, &[]);
    let err = Cifar10::load(&tmp.0, true).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
}
