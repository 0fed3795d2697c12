//! The IDX format of MNIST and Fashion-MNIST (LeCun's "idx" files).
//!
//! Layout: a 4-byte magic number — two zero bytes, a type code (0x08 =
//! unsigned byte) and the number of dimensions — then one big-endian `u32`
//! per dimension, then the values in row-major order. Image files are
//! `0x00000803` (`[n, rows, cols]` bytes), label files `0x00000801` (`[n]`).
//!
//! The reader checks everything the header promises against the file (magic
//! number, length, no bytes left over) and keeps the header aside so the
//! checksum of the raw file can be verified later without a second copy of
//! the data.

use std::path::{Path, PathBuf};

use super::error::{DataError, Result};
use super::io::{read_file, verify_sha256};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// An IDX array of unsigned bytes, as read from a file.
#[derive(Debug, Clone)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
    header: Vec<u8>,
    path: PathBuf,
}

impl IdxArray {
    /// The dimensions the header declares (`[n, rows, cols]` for images).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The values, row-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The values, taken out of the array.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The file the array was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the SHA-256 of the raw (decompressed) file: header then data.
    pub fn verify_sha256(&self, expected: &str) -> Result<()> {
        verify_sha256(&self.path, &[&self.header, &self.data], expected)
    }

    /// Parses the raw bytes of an IDX file read from `path` (used in error
    /// messages), requiring the magic number `expected_magic`.
    pub fn parse(mut bytes: Vec<u8>, path: &Path, expected_magic: u32) -> Result<IdxArray> {
        let truncated = |what: String, expected: usize| DataError::Truncated {
            path: path.to_path_buf(),
            what,
            expected,
            found: bytes.len(),
        };
        if bytes.len() < 4 {
            return Err(truncated("the IDX magic number".into(), 4));
        }
        let magic = be_u32(&bytes[..4]);
        if magic != expected_magic {
            return Err(DataError::BadMagic {
                path: path.to_path_buf(),
                expected: expected_magic,
                found: magic,
                what: describe(expected_magic),
            });
        }
        let ndim = (magic & 0xff) as usize;
        let header_len = 4 + 4 * ndim;
        if bytes.len() < header_len {
            let what = format!("an IDX header of {ndim} dimensions");
            return Err(truncated(what, header_len));
        }
        let dims: Vec<usize> = bytes[4..header_len]
            .chunks_exact(4)
            .map(|c| be_u32(c) as usize)
            .collect();
        // Element size is 1 (the only type code accepted is unsigned byte).
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| DataError::BadHeader {
                path: path.to_path_buf(),
                reason: format!("dimensions {dims:?} overflow the address space"),
            })?;
        let expected = header_len
            .checked_add(count)
            .ok_or_else(|| DataError::BadHeader {
                path: path.to_path_buf(),
                reason: format!("dimensions {dims:?} overflow the address space"),
            })?;
        if bytes.len() < expected {
            let what = format!("an IDX array of dimensions {dims:?} (with its header)");
            return Err(truncated(what, expected));
        }
        if bytes.len() > expected {
            return Err(DataError::TrailingBytes {
                path: path.to_path_buf(),
                expected,
                extra: bytes.len() - expected,
            });
        }
        // One memmove of the data is cheaper than keeping an offset around
        // in every consumer.
        let header: Vec<u8> = bytes.drain(..header_len).collect();
        Ok(IdxArray {
            dims,
            data: bytes,
            header,
            path: path.to_path_buf(),
        })
    }
}

/// Reads an IDX file (raw or gzipped) whose magic number must be `expected_magic`.
pub fn read_idx(path: impl AsRef<Path>, expected_magic: u32) -> Result<IdxArray> {
    let path = path.as_ref();
    IdxArray::parse(read_file(path)?, path, expected_magic)
}

/// Reads an IDX image file: unsigned bytes, `[n, rows, cols]`.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_idx(path, IDX_IMAGES_MAGIC)
}

/// Reads an IDX label file: unsigned bytes, `[n]`.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_idx(path, IDX_LABELS_MAGIC)
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What a magic number stands for, for error messages.
fn describe(magic: u32) -> &'static str {
    match magic {
        IDX_IMAGES_MAGIC => "an IDX image file: unsigned bytes, 3 dimensions",
        IDX_LABELS_MAGIC => "an IDX label file: unsigned bytes, 1 dimension",
        _ => "an IDX file",
    }
}
