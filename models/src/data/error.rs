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
        path: PathBuf,
        source: std::io::Error,
    },
    /// Neither `name` nor `name.gz` exists in the directory.
    #[error("{}: neither {name} nor {name}.gz is in this directory{hint}", dir.display())]
    NotFound {
        dir: PathBuf,
        name: String,
        /// How to get the data (for example, the package that installs it).
        hint: String,
    },
    /// The file claims to be gzip (name or magic bytes) but does not decompress.
    #[error("{}: bad gzip data: {source}", path.display())]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file does not start with the magic number of the expected format.
    #[error("{}: wrong magic number 0x{found:08x}: expected 0x{expected:08x} ({what})", path.display())]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
        what: &'static str,
    },
    /// The file is shorter than its header (or the format) requires.
    #[error("{}: truncated: {what} needs {expected} bytes, the file has {found}", path.display())]
    Truncated {
        path: PathBuf,
        what: String,
        expected: usize,
        found: usize,
    },
    /// The file has bytes after the data its header describes.
    #[error("{}: {extra} unexpected bytes after the {expected} bytes the header describes", path.display())]
    TrailingBytes {
        path: PathBuf,
        expected: usize,
        extra: usize,
    },
    /// A header that is well formed but describes something we cannot hold.
    #[error("{}: {reason}", path.display())]
    BadHeader { path: PathBuf, reason: String },
    /// An image file and its label file disagree on the number of examples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    /// A label outside `0..num_classes`.
    #[error("{}: label {label} of example {index} is outside 0..{num_classes}", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: usize,
        num_classes: usize,
    },
    /// The decompressed bytes do not have the published SHA-256.
    #[error(
        "{}: SHA-256 mismatch (corrupt or not the expected file): expected {expected}, got {found}",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// In-memory data that does not fit together (no file involved).
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
