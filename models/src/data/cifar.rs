//! CIFAR-10 in its "binary version" (`cifar-10-binary.tar.gz`, which
//! unpacks to `cifar-10-batches-bin/`).
//!
//! Each batch file is a run of 3,073-byte records: one label byte (0..10)
//! then the 32x32 image as 1,024 red, 1,024 green and 1,024 blue bytes,
//! each plane row-major — already `[C, H, W]`, so a record's pixels are
//! copied as they are. The training split is `data_batch_1.bin` ..
//! `data_batch_5.bin` (10,000 records each), the test split `test_batch.bin`.
//! Upstream publishes only the MD5 of the archive, so there is no per-file
//! checksum to verify; the structure (whole records, labels in range) is.

use std::path::{Path, PathBuf};

use super::dataset::{delegate_dataset, ByteImages};
use super::error::{DataError, Result};
use super::io::{find_file, read_file};

/// `[C, H, W]` of a CIFAR-10 image.
pub const CIFAR10_SHAPE: [usize; 3] = [3, 32, 32];
/// Bytes per record: the label, then the pixels.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

const NUM_CLASSES: usize = 10;
const HINT: &str =
    "; download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html \
                    and unpack it (the files are in cifar-10-batches-bin/)";

/// Reads one CIFAR-10 binary batch (raw or gzipped): its pixels, image
/// after image, and its labels.
pub fn read_cifar10_batch(path: impl AsRef<Path>) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = path.as_ref();
    parse_cifar10_batch(&read_file(path)?, path)
}

/// Parses the (decompressed) bytes of a CIFAR-10 batch file read from
/// `path` (named in errors): its pixels and its labels.
pub fn parse_cifar10_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR10_RECORD) {
        let whole = bytes.len() / CIFAR10_RECORD;
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "record {} (CIFAR-10 records are {CIFAR10_RECORD} bytes each)",
                whole + 1
            ),
            expected: (whole + 1) * CIFAR10_RECORD,
            found: bytes.len(),
        });
    }
    let n = bytes.len() / CIFAR10_RECORD;
    let mut pixels = Vec::with_capacity(n * (CIFAR10_RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (index, record) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
        let label = record[0];
        if usize::from(label) >= NUM_CLASSES {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                index,
                label: usize::from(label),
                num_classes: NUM_CLASSES,
            });
        }
        labels.push(label);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// CIFAR-10: `[3, 32, 32]` colour images in `[0, 1]`, ten classes.
#[derive(Debug, Clone)]
pub struct Cifar10 {
    images: ByteImages,
    train: bool,
}
delegate_dataset!(Cifar10, images);

impl Cifar10 {
    /// Class names, in label order.
    pub const CLASSES: [&'static str; 10] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// The batch files of the training split.
    pub const TRAIN_FILES: [&'static str; 5] = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ];

    /// The batch file of the test split.
    pub const TEST_FILE: &'static str = "test_batch.bin";

    /// Loads the training (5 batches) or test split from `dir`: the
    /// directory holding the `.bin` files (raw or gzipped), or the one the
    /// archive was unpacked into (holding `cifar-10-batches-bin/`).
    pub fn load(dir: impl AsRef<Path>, train: bool) -> Result<Cifar10> {
        let mut dir = dir.as_ref().to_path_buf();
        let nested = dir.join("cifar-10-batches-bin");
        if find_file(&dir, Cifar10::TEST_FILE, "").is_err() && nested.is_dir() {
            dir = nested;
        }
        let names: &[&str] = if train {
            &Cifar10::TRAIN_FILES
        } else {
            &[Cifar10::TEST_FILE]
        };
        let paths = names
            .iter()
            .map(|name| find_file(&dir, name, HINT))
            .collect::<Result<Vec<PathBuf>>>()?;
        let mut cifar = Cifar10::load_files(&paths)?;
        cifar.train = train;
        Ok(cifar)
    }

    /// Loads and concatenates the given batch files (raw or gzipped), in
    /// order. The split is recorded as test.
    pub fn load_files(paths: &[impl AsRef<Path>]) -> Result<Cifar10> {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for path in paths {
            let (p, l) = read_cifar10_batch(path)?;
            pixels.extend_from_slice(&p);
            labels.extend_from_slice(&l);
        }
        if labels.is_empty() {
            return Err(DataError::Invalid(
                "Cifar10::load_files: no files given".into(),
            ));
        }
        Ok(Cifar10 {
            images: ByteImages::new(pixels, labels, CIFAR10_SHAPE, NUM_CLASSES)?,
            train: false,
        })
    }

    /// Whether this is the training split.
    pub fn is_train(&self) -> bool {
        self.train
    }

    /// The images and labels as bytes.
    pub fn images(&self) -> &ByteImages {
        &self.images
    }
}
