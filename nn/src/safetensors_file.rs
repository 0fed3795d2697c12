//! Reading any tensor of a safetensors file with its stored element type,
//! without a module: f64 statistics, int64 counters and u8 masks come back
//! exactly, where a [`StateDict`](crate::StateDict) converts everything to
//! f32 weights.
//!
//! ```
//! use nn::state_dict::{FileDtype, SafetensorsFile};
//! use safetensors::tensor::{Dtype, TensorView};
//!
//! let (mean, steps) = ([0.1f64, 1e-300], [1i64 << 60]);
//! let mean_bytes: Vec<u8> = mean.iter().flat_map(|v| v.to_le_bytes()).collect();
//! let steps_bytes: Vec<u8> = steps.iter().flat_map(|v| v.to_le_bytes()).collect();
//! let bytes = safetensors::serialize(
//!     [
//!         ("mean", TensorView::new(Dtype::F64, vec![2], &mean_bytes).unwrap()),
//!         ("steps", TensorView::new(Dtype::I64, vec![], &steps_bytes).unwrap()),
//!     ],
//!     None,
//! )
//! .unwrap();
//! let path = std::env::temp_dir().join(format!("doc-{}.safetensors", std::process::id()));
//! std::fs::write(&path, bytes).unwrap();
//!
//! let file = SafetensorsFile::open(&path).unwrap();
//! assert_eq!(file.names().len(), 2);
//! assert!(file.contains("mean") && file.contains("steps"));
//! assert_eq!(file.dtype("steps").unwrap(), FileDtype::I64);
//! assert_eq!(file.shape("mean").unwrap(), [2]);
//! assert_eq!(file.get_f64("mean").unwrap().as_slice().unwrap(), &mean);
//! assert_eq!(file.get_i64("steps").unwrap().into_raw_vec_and_offset().0, steps);
//! // Asking for a name the file lacks is an error naming the file and the tensor.
//! assert!(file.get_f64("var").unwrap_err().to_string().contains("'var'"));
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autograd::ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype as StDtype, SafeTensors};

use crate::error::{NnError, Result};

/// The element type of a tensor as stored in a safetensors file (the
/// types this crate reads and writes; PyTorch's names in lower case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileDtype {
    /// `torch.float64`.
    F64,
    /// `torch.float32`.
    F32,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64` (`num_batches_tracked`, indices).
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint8` (masks, images).
    U8,
    /// `torch.bool`, one byte per value.
    Bool,
}

impl FileDtype {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            FileDtype::F64 | FileDtype::I64 => 8,
            FileDtype::F32 | FileDtype::I32 => 4,
            FileDtype::F16 | FileDtype::BF16 | FileDtype::I16 => 2,
            FileDtype::I8 | FileDtype::U8 | FileDtype::Bool => 1,
        }
    }

    /// Whether the type is a floating-point one.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            FileDtype::F64 | FileDtype::F32 | FileDtype::F16 | FileDtype::BF16
        )
    }

    /// The type as the safetensors crate names it.
    pub fn to_safetensors(self) -> StDtype {
        match self {
            FileDtype::F64 => StDtype::F64,
            FileDtype::F32 => StDtype::F32,
            FileDtype::F16 => StDtype::F16,
            FileDtype::BF16 => StDtype::BF16,
            FileDtype::I64 => StDtype::I64,
            FileDtype::I32 => StDtype::I32,
            FileDtype::I16 => StDtype::I16,
            FileDtype::I8 => StDtype::I8,
            FileDtype::U8 => StDtype::U8,
            FileDtype::Bool => StDtype::BOOL,
        }
    }

    /// The type of a safetensors dtype, if this crate reads it.
    pub fn from_safetensors(d: StDtype) -> Option<Self> {
        Some(match d {
            StDtype::F64 => FileDtype::F64,
            StDtype::F32 => FileDtype::F32,
            StDtype::F16 => FileDtype::F16,
            StDtype::BF16 => FileDtype::BF16,
            StDtype::I64 => FileDtype::I64,
            StDtype::I32 => FileDtype::I32,
            StDtype::I16 => FileDtype::I16,
            StDtype::I8 => FileDtype::I8,
            StDtype::U8 => FileDtype::U8,
            StDtype::BOOL => FileDtype::Bool,
            _ => return None,
        })
    }

    /// `values` stored as this type, little-endian: floats rounded to the
    /// nearest representable value, integers rounded and saturated.
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        let v = values.iter();
        match self {
            FileDtype::F64 => v.flat_map(|&x| (x as f64).to_le_bytes()).collect(),
            FileDtype::F32 => v.flat_map(|&x| x.to_le_bytes()).collect(),
            FileDtype::F16 => v
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            FileDtype::BF16 => v
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
            // `as` saturates (and maps NaN to 0), so no value can panic.
            FileDtype::I64 => v.flat_map(|&x| (x.round() as i64).to_le_bytes()).collect(),
            FileDtype::I32 => v.flat_map(|&x| (x.round() as i32).to_le_bytes()).collect(),
            FileDtype::I16 => v.flat_map(|&x| (x.round() as i16).to_le_bytes()).collect(),
            FileDtype::I8 => v.flat_map(|&x| (x.round() as i8).to_le_bytes()).collect(),
            FileDtype::U8 => v.map(|&x| x.round() as u8).collect(),
            FileDtype::Bool => v.map(|&x| u8::from(x != 0.0)).collect(),
        }
    }
}

/// Where one tensor lies in the file.
#[derive(Clone, Debug)]
struct Entry {
    /// `None`: a dtype this crate does not read (named in `raw_dtype`).
    dtype: Option<FileDtype>,
    raw_dtype: String,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// A safetensors file read into memory and validated, whose tensors are
/// read one at a time with their element type. Errors name the file and
/// the tensor; no bytes, however corrupt, make it panic.
#[derive(Clone, Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    names: Vec<String>,
    entries: HashMap<String, Entry>,
}

impl SafetensorsFile {
    /// Reads and validates the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| NnError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Validates `bytes` as a safetensors file; `path` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        let format = |reason: String| NnError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
        let base = bytes.as_ptr() as usize;
        let mut located = Vec::new();
        for (name, view) in st.tensors() {
            let dtype = FileDtype::from_safetensors(view.dtype());
            let data = view.data();
            if let Some(d) = dtype {
                // The parser checks this too; checked again so that no
                // later slice can go out of bounds whatever its version.
                let want = view
                    .shape()
                    .iter()
                    .try_fold(d.size(), |n, &s| n.checked_mul(s));
                if want != Some(data.len()) {
                    return Err(format(format!(
                        "tensor '{name}' has {} bytes for shape {:?} of {d:?}",
                        data.len(),
                        view.shape()
                    )));
                }
            }
            let entry = Entry {
                dtype,
                raw_dtype: format!("{:?}", view.dtype()),
                shape: view.shape().to_vec(),
                start: data.as_ptr() as usize - base,
                len: data.len(),
            };
            located.push((name, entry));
        }
        // The header's map has no order; keep the file's data order.
        located.sort_by_key(|(_, e)| e.start);
        let names = located.iter().map(|(n, _)| n.clone()).collect();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            bytes,
            names,
            entries: located.into_iter().collect(),
        })
    }

    /// The file's path (as given to [`open`](Self::open)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, in the order of their data in the file.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the file holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.get(name).ok_or_else(|| NnError::NoSuchTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// The stored element type of `name`; an error when there is no such
    /// tensor or its type is one this crate does not read (f8, u64, ...).
    pub fn dtype(&self, name: &str) -> Result<FileDtype> {
        let e = self.entry(name)?;
        e.dtype.ok_or_else(|| NnError::Dtype {
            path: self.path.clone(),
            name: name.to_string(),
            dtype: e.raw_dtype.clone(),
        })
    }

    /// The shape of `name`.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.entry(name)?.shape)
    }

    /// The raw bytes and type of `name`.
    fn data(&self, name: &str) -> Result<(FileDtype, &[u8], &[usize])> {
        let dtype = self.dtype(name)?;
        let e = self.entry(name)?;
        Ok((dtype, &self.bytes[e.start..e.start + e.len], &e.shape))
    }

    fn array<V>(&self, name: &str, shape: &[usize], values: Vec<V>) -> Result<ArrayD<V>> {
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| NnError::Format {
            path: self.path.clone(),
            reason: format!("tensor '{name}': {e}"),
        })
    }

    /// The values of `name` as f64, whatever their stored type: exact for
    /// every float type and for integers up to 2^53 in magnitude.
    pub fn get_f64(&self, name: &str) -> Result<ArrayD<f64>> {
        let (dtype, data, shape) = self.data(name)?;
        let values = decode_f64(dtype, data);
        self.array(name, shape, values)
    }

    /// The values of `name` as f32 (what a [`StateDict`](crate::StateDict)
    /// holds): f64 values and large integers are rounded.
    pub fn get_f32(&self, name: &str) -> Result<ArrayD<f32>> {
        let (dtype, data, shape) = self.data(name)?;
        let values = match dtype {
            // Direct, to round once rather than through f64.
            FileDtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            FileDtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(le8(c)) as f32)
                .collect(),
            _ => decode_f64(dtype, data)
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        };
        self.array(name, shape, values)
    }

    /// The values of `name` as i64, exactly; an error naming the file, the
    /// tensor and its type when it is stored as floats (read those with
    /// [`get_f64`](Self::get_f64)). A bool reads as 0 or 1.
    pub fn get_i64(&self, name: &str) -> Result<ArrayD<i64>> {
        let (dtype, data, shape) = self.data(name)?;
        let values: Vec<i64> = match dtype {
            FileDtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(le8(c)))
                .collect(),
            FileDtype::I32 => data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            FileDtype::I16 => data
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            FileDtype::I8 => data.iter().map(|&b| b as i8 as i64).collect(),
            FileDtype::U8 => data.iter().map(|&b| b as i64).collect(),
            FileDtype::Bool => data.iter().map(|&b| i64::from(b != 0)).collect(),
            FileDtype::F64 | FileDtype::F32 | FileDtype::F16 | FileDtype::BF16 => {
                return Err(NnError::NotInteger {
                    path: self.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{dtype:?}"),
                })
            }
        };
        self.array(name, shape, values)
    }
}

fn le8(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// Little-endian values of `dtype` as f64 (`data`'s length is a multiple of
/// the type's size, checked when the file was opened).
fn decode_f64(dtype: FileDtype, data: &[u8]) -> Vec<f64> {
    match dtype {
        FileDtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(le8(c)))
            .collect(),
        FileDtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        FileDtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        FileDtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        FileDtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(le8(c)) as f64)
            .collect(),
        FileDtype::I32 => data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        FileDtype::I16 => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        FileDtype::I8 => data.iter().map(|&b| b as i8 as f64).collect(),
        FileDtype::U8 => data.iter().map(|&b| b as f64).collect(),
        FileDtype::Bool => data.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
    }
}
