//! The one error type of the data pipeline.
//!
//! Policy (see the README): loading a file never panics. Every problem a
//! file can have — missing, unreadable, not gzip, wrong magic number,
//! truncated, inconsistent with its partner file, corrupt — is a
//! [`DataError`] whose message names the file and says what is wrong, so
//! the user can fix it without a debugger.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong while loading or assembling a dataset.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Neither `name` nor `name.gz` exists in the directory.
    #[error("{}: neither {name} nor {name}.gz is in this directory{hint}", dir.display())]
    NotFound {
        /// The directory that was searched.
        dir: PathBuf,
        /// The file name looked for, without `.gz`.
        name: String,
        /// How to get the data (for example, the package that installs it).
        hint: String,
    },
    /// The file claims to be gzip (name or magic bytes) but does not decompress.
    #[error("{}: bad gzip data: {source}", path.display())]
    Gzip {
        /// The file whose gzip data is bad.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },
    /// The file does not start with the magic number of the expected format.
    #[error("{}: wrong magic number 0x{found:08x}: expected 0x{expected:08x} ({what})", path.display())]
    BadMagic {
        /// The file with the wrong magic number.
        path: PathBuf,
        /// The magic number the expected format starts with.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
        /// The expected format in words (for example "an IDX label file").
        what: &'static str,
    },
    /// The file is shorter than its header (or the format) requires.
    #[error("{}: truncated: {what} needs {expected} bytes, the file has {found}", path.display())]
    Truncated {
        /// The truncated file.
        path: PathBuf,
        /// The part that does not fit (header, data, or record N).
        what: String,
        /// The file length, in bytes, that part requires.
        expected: usize,
        /// The file's length in bytes (after decompression).
        found: usize,
    },
    /// The file has bytes after the data its header describes.
    #[error("{}: {extra} unexpected bytes after the {expected} bytes the header describes", path.display())]
    TrailingBytes {
        /// The file with extra bytes.
        path: PathBuf,
        /// The length in bytes that the header describes (header included).
        expected: usize,
        /// The number of bytes beyond `expected`.
        extra: usize,
    },
    /// A header that is well formed but describes something we cannot hold.
    #[error("{}: {reason}", path.display())]
    BadHeader {
        /// The file with the unusable header.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },
    /// An image file and its label file disagree on the number of examples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The number of images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// The number of labels it holds.
        labels: usize,
    },
    /// A label outside `0..num_classes`.
    #[error("{}: label {label} of example {index} is outside 0..{num_classes}", path.display())]
    BadLabel {
        /// The file holding the label.
        path: PathBuf,
        /// The example's index in the file, from 0.
        index: usize,
        /// The offending label.
        label: usize,
        /// The number of classes of the dataset.
        num_classes: usize,
    },
    /// The decompressed bytes do not have the published SHA-256.
    #[error(
        "{}: SHA-256 mismatch (corrupt or not the expected file): expected {expected}, got {found}",
        path.display()
    )]
    Checksum {
        /// The file whose checksum does not match.
        path: PathBuf,
        /// The published SHA-256, lowercase hex.
        expected: String,
        /// The SHA-256 of the file's decompressed bytes, lowercase hex.
        found: String,
    },
    /// In-memory data that does not fit together (no file involved).
    #[error("{0}")]
    Invalid(
        /// What does not fit together.
        String,
    ),
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
