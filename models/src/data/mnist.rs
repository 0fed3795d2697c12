//! MNIST and Fashion-MNIST: pairs of IDX files (images, labels), raw or
//! gzipped, checked against the SHA-256 of the published raw files.
//!
//! Both have the same layout and file names: 60,000 training and 10,000
//! test images of 28x28 grey pixels, ten classes. Images are kept as bytes
//! ([`ByteImages`]) and handed out as `[1, 28, 28]` `f32` in `[0, 1]`.
//! MNIST ships whole with this repository; Fashion-MNIST comes from a
//! Debian package, and a 200-image sample of each split ships here.

use std::path::Path;

use super::dataset::{delegate_dataset, ByteImages};
use super::error::{DataError, Result};
use super::idx::{read_idx_images, read_idx_labels, IdxArray};
use super::io::find_file;

/// The two files of one split and the SHA-256 of their raw bytes.
struct Split {
    images: &'static str,
    labels: &'static str,
    images_sha256: &'static str,
    labels_sha256: &'static str,
}

/// MNIST, as published by LeCun, Cortes and Burges (MISSION.md §3).
const MNIST_TRAIN: Split = Split {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
    images_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    labels_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
const MNIST_TEST: Split = Split {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
    images_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    labels_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

/// Fashion-MNIST (Zalando Research). Upstream publishes MD5 sums of its
/// gzip files only, which recompression changes; these are the SHA-256 of
/// the raw files, taken from Debian's `dataset-fashion-mnist`
/// (0.0~git20200523.55506a9-1, upstream's `data/fashion` at that commit).
const FASHION_TRAIN: Split = Split {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
    images_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    labels_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
};
const FASHION_TEST: Split = Split {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
    images_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    labels_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
};

/// The sample of Fashion-MNIST committed with this repository (the first
/// 200 images of each split, cut by `scripts/fashion_mnist_sample.py`).
const FASHION_SAMPLE_TRAIN: Split = Split {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
    images_sha256: "7a0217dc4446fcb3ba7a0b774f801a8736a8ca12b8195a949a56af9a5f574138",
    labels_sha256: "f1f6578fccfdcbdf1df14156453126924fdc9ac78c7b77d08681c92122c7932e",
};
const FASHION_SAMPLE_TEST: Split = Split {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
    images_sha256: "a83986794402227a1e9f8491954178a24b2e314b7081f0776c7dc9a675541994",
    labels_sha256: "917f3dc1edaef97b3feb11cd8efd38ab95d9038ccccd2efaca468e935041743e",
};

const NUM_CLASSES: usize = 10;

/// Reads one split from `dir`, checking in this order — so that each
/// problem gets its most specific message — magic numbers and lengths,
/// image count against label count, label range, then checksums.
fn load_split(dir: &Path, split: &Split, hint: &str) -> Result<ByteImages> {
    let images_path = find_file(dir, split.images, hint)?;
    let labels_path = find_file(dir, split.labels, hint)?;
    let (images, labels) = read_pair(&images_path, &labels_path)?;
    images.verify_sha256(split.images_sha256)?;
    labels.verify_sha256(split.labels_sha256)?;
    into_byte_images(images, labels)
}

/// Reads and cross-checks an images file and a labels file.
fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(IdxArray, IdxArray)> {
    let images = read_idx_images(images_path)?;
    let &[n, rows, cols] = images.dims() else {
        unreachable!("the image magic number fixes 3 dimensions")
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: images_path.to_path_buf(),
            reason: format!("images of {rows}x{cols} pixels"),
        });
    }
    let labels = read_idx_labels(labels_path)?;
    if labels.dims()[0] != n {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: n,
            labels_path: labels_path.to_path_buf(),
            labels: labels.dims()[0],
        });
    }
    if let Some((index, &label)) = labels
        .data()
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(DataError::BadLabel {
            path: labels_path.to_path_buf(),
            index,
            label: usize::from(label),
            num_classes: NUM_CLASSES,
        });
    }
    Ok((images, labels))
}

fn into_byte_images(images: IdxArray, labels: IdxArray) -> Result<ByteImages> {
    let shape = [1, images.dims()[1], images.dims()[2]];
    ByteImages::new(images.into_data(), labels.into_data(), shape, NUM_CLASSES)
}

/// The MNIST handwritten digits: `[1, 28, 28]` images in `[0, 1]`, labels `0..10`.
///
/// ```no_run
/// use models::data::{Dataset, Mnist};
///
/// let train = Mnist::load_default(true)?;         // the repository's copy, checksums verified
/// assert_eq!(train.len(), 60_000);
/// let (image, label) = train.get(0);
/// assert_eq!((image.shape(), label), ([1, 28, 28], 5));
/// # Ok::<(), models::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mnist {
    images: ByteImages,
    train: bool,
}
delegate_dataset!(Mnist, images);

impl Mnist {
    /// Class names (the digits).
    pub const CLASSES: [&'static str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// The directory of the copy committed with this repository.
    pub const DEFAULT_DIR: &'static str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/mnist");

    /// Loads the training (`train = true`, 60,000 images) or test (10,000)
    /// split from `dir`, which holds the IDX files raw or gzipped under
    /// their original names, and verifies their SHA-256.
    pub fn load(dir: impl AsRef<Path>, train: bool) -> Result<Mnist> {
        let split = if train { &MNIST_TRAIN } else { &MNIST_TEST };
        let hint = "; MNIST ships with this repository under examples/data/mnist/";
        Ok(Mnist {
            images: load_split(dir.as_ref(), split, hint)?,
            train,
        })
    }

    /// Loads a split from the repository's copy ([`Mnist::DEFAULT_DIR`]).
    pub fn load_default(train: bool) -> Result<Mnist> {
        Mnist::load(Mnist::DEFAULT_DIR, train)
    }

    /// Loads any pair of IDX files of the MNIST layout (raw or gzipped)
    /// without checksums: subsets, EMNIST-digits, KMNIST, your own data.
    /// The split is recorded as test.
    pub fn load_files(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Mnist> {
        let (images, labels) = read_pair(images.as_ref(), labels.as_ref())?;
        Ok(Mnist {
            images: into_byte_images(images, labels)?,
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

/// Fashion-MNIST (Zalando): ten classes of clothing in MNIST's format.
///
/// The full dataset (60,000 + 10,000 images) is read from Debian's
/// `dataset-fashion-mnist` package by default, or from any directory holding
/// the four IDX files (raw or gzipped). A sample of it — the first 200
/// images of each split — ships with this repository
/// ([`FashionMnist::load_sample`]), so that quick runs and tests need no
/// system package; [`FashionMnist::load_or_sample`] takes the full dataset
/// when it is installed and the sample otherwise.
///
/// ```
/// use models::data::{Dataset, FashionMnist, ImageDataset};
///
/// let train = FashionMnist::load_sample(true)?;   // the repository's sample, checksums verified
/// assert_eq!((train.len(), train.is_sample()), (200, true));
/// let (image, label) = train.get(0);
/// assert_eq!((image.shape(), FashionMnist::CLASSES[label]), ([1, 28, 28], "Ankle boot"));
/// assert_eq!(train.num_classes(), 10);
/// # Ok::<(), models::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FashionMnist {
    images: ByteImages,
    train: bool,
    sample: bool,
}
delegate_dataset!(FashionMnist, images);

impl FashionMnist {
    /// Class names, in label order.
    pub const CLASSES: [&'static str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];

    /// Where Debian's `dataset-fashion-mnist` installs the files.
    pub const DEFAULT_DIR: &'static str = "/usr/share/datasets/fashion-mnist";

    /// The directory of the sample committed with this repository.
    pub const SAMPLE_DIR: &'static str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/fashion-mnist-sample"
    );

    /// Images per split in the sample.
    pub const SAMPLE_LEN: usize = 200;

    /// Loads the full training (60,000) or test (10,000) split from `dir`,
    /// and verifies the SHA-256 of the files.
    pub fn load(dir: impl AsRef<Path>, train: bool) -> Result<FashionMnist> {
        let split = if train { &FASHION_TRAIN } else { &FASHION_TEST };
        let hint = "; install Debian's package with `apt-get install dataset-fashion-mnist` \
                    (files in /usr/share/datasets/fashion-mnist/) or name a directory holding \
                    them; a 200-image sample ships in examples/data/fashion-mnist-sample/ \
                    (FashionMnist::load_sample, the examples' --quick)";
        Ok(FashionMnist {
            images: load_split(dir.as_ref(), split, hint)?,
            train,
            sample: false,
        })
    }

    /// Loads a full split from [`FashionMnist::DEFAULT_DIR`].
    pub fn load_default(train: bool) -> Result<FashionMnist> {
        FashionMnist::load(FashionMnist::DEFAULT_DIR, train)
    }

    /// Loads a split of the repository's sample ([`FashionMnist::SAMPLE_DIR`]:
    /// the first [`FashionMnist::SAMPLE_LEN`] images), checksums verified.
    pub fn load_sample(train: bool) -> Result<FashionMnist> {
        let split = if train {
            &FASHION_SAMPLE_TRAIN
        } else {
            &FASHION_SAMPLE_TEST
        };
        let hint =
            "; the sample ships with this repository under examples/data/fashion-mnist-sample/";
        Ok(FashionMnist {
            images: load_split(Path::new(FashionMnist::SAMPLE_DIR), split, hint)?,
            train,
            sample: true,
        })
    }

    /// The full split from `dir` when it holds the files (usually
    /// [`FashionMnist::DEFAULT_DIR`]), else the repository's sample. Files
    /// that are there but corrupt are an error, not a reason to fall back.
    pub fn load_or_sample(dir: impl AsRef<Path>, train: bool) -> Result<FashionMnist> {
        match FashionMnist::load(dir, train) {
            Err(DataError::NotFound { .. }) => FashionMnist::load_sample(train),
            full => full,
        }
    }

    /// Whether this is the training split.
    pub fn is_train(&self) -> bool {
        self.train
    }

    /// Whether this is the repository's sample rather than the full split.
    pub fn is_sample(&self) -> bool {
        self.sample
    }

    /// The images and labels as bytes.
    pub fn images(&self) -> &ByteImages {
        &self.images
    }
}
