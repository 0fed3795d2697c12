//! Reading dataset files: finding `name` or `name.gz`, gunzipping
//! transparently, and checking SHA-256 checksums.
//!
//! Datasets are distributed both raw and gzipped (MNIST ships gzipped in
//! this repository, Debian installs Fashion-MNIST gzipped, torchvision
//! unpacks them raw), so every reader goes through [`read_file`], which
//! accepts either; checksums are taken over the raw (decompressed) bytes so
//! they do not depend on how the file was compressed.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::error::{DataError, Result};

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads the whole file, gunzipping it when its name ends in `.gz` or its
/// content starts with the gzip magic bytes.
///
/// A `.gz` file that is not valid gzip (bad header, corrupt or truncated
/// stream, CRC mismatch) is a [`DataError::Gzip`] naming the file.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io_err)?;
    decompress(raw, path)
}

/// The bytes of a file read from `path` as [`read_file`] gives them:
/// gunzipped when the name ends in `.gz` or they start with the gzip magic
/// bytes, as they are otherwise.
pub fn decompress(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if !named_gz && !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    gunzip(&raw).map_err(|source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
    })
}

/// Decompresses every member of a gzip stream (`pigz` and `cat a.gz b.gz`
/// produce several), so any standard `.gz` file reads whole.
fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    // The trailer's ISIZE is the raw size mod 2^32: a good capacity hint that
    // saves the repeated doubling of a 47 MB buffer. It is only a hint (a
    // corrupt file may lie), so it is capped by a generous expansion ratio.
    let hint = match compressed.len() {
        n if n >= 18 => {
            let t = &compressed[n - 4..];
            u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
        }
        _ => 0,
    };
    let mut out = Vec::with_capacity(hint.min(compressed.len().saturating_mul(32)));
    MultiGzDecoder::new(compressed).read_to_end(&mut out)?;
    Ok(out)
}

/// The path of `name` in `dir`, or of `name.gz` when only that exists.
///
/// `hint` is appended to the not-found message (for example, how to install
/// the dataset).
pub fn find_file(dir: impl AsRef<Path>, name: &str, hint: &str) -> Result<PathBuf> {
    let dir = dir.as_ref();
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::NotFound {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        hint: hint.to_string(),
    })
}

/// The SHA-256 of `bytes` as 64 lower-case hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_hex_of_parts(&[bytes])
}

/// The SHA-256 of the concatenation of `parts` (a file held as header and
/// data need not be joined to be checked).
pub fn sha256_hex_of_parts(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that the file at `path`, whose raw bytes are the concatenation of
/// `parts`, has the SHA-256 `expected` (hex).
pub fn verify_sha256(path: &Path, parts: &[&[u8]], expected: &str) -> Result<()> {
    let found = sha256_hex_of_parts(parts);
    if found.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            found,
        })
    }
}
