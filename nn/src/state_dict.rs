//! State dicts: named tensors, stored as safetensors with torchvision's names,
//! so PyTorch's `torch.save`-free `safetensors.torch.save_file(model.state_dict())`
//! loads directly, and ours loads in PyTorch. Weights can be stored in f16 or
//! bf16 (half the file) and come back as f32; integer buffers
//! (`num_batches_tracked`) are stored as int64 whatever the float dtype.
//! [`SafetensorsFile`] reads any tensor of a file with its own dtype.

use std::collections::HashMap;
use std::path::Path;

use autograd::Tensor;
use safetensors::tensor::TensorView;

use crate::error::{NnError, Result};
pub use crate::safetensors_file::{FileDtype, SafetensorsFile};

/// Storage precision of a saved state dict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit floats (exact).
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16 (f32's range, 8 bits of mantissa).
    BF16,
}

/// Named tensors in order; values are shared handles, not copies.
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    order: Vec<String>,
    map: HashMap<String, Tensor>,
    /// Entries saved in their own dtype rather than the file's float one.
    stored: HashMap<String, FileDtype>,
}

impl StateDict {
    /// From `(name, tensor)` pairs, keeping their order.
    pub fn from_pairs(pairs: Vec<(String, Tensor)>) -> Self {
        let mut sd = StateDict::default();
        for (n, t) in pairs {
            sd.insert(n, t);
        }
        sd
    }

    /// Adds or replaces a tensor, saved in the float dtype given to
    /// [`save`](Self::save).
    pub fn insert(&mut self, name: String, t: Tensor) {
        self.stored.remove(&name);
        if self.map.insert(name.clone(), t).is_none() {
            self.order.push(name);
        }
    }

    /// Adds or replaces a tensor that is always saved as `dtype` (an int64
    /// counter stays int64 in an f16 file).
    pub fn insert_stored_as(&mut self, name: String, t: Tensor, dtype: FileDtype) {
        self.insert(name.clone(), t);
        self.stored.insert(name, dtype);
    }

    /// The dtype `name` is saved as whatever the file's float dtype, if it
    /// has one of its own.
    pub fn stored_as(&self, name: &str) -> Option<FileDtype> {
        self.stored.get(name).copied()
    }

    /// Removes a tensor (for example a head to be re-initialised).
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        let t = self.map.remove(name)?;
        self.stored.remove(name);
        self.order.retain(|n| n != name);
        Some(t)
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.map.get(name)
    }

    /// Names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.order.iter()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Serialises to safetensors bytes: each tensor in its stored dtype
    /// when it has one (`num_batches_tracked` as int64, as PyTorch keeps
    /// it), the others in `dtype`.
    pub fn to_bytes(&self, dtype: Dtype) -> Vec<u8> {
        let float = match dtype {
            Dtype::F32 => FileDtype::F32,
            Dtype::F16 => FileDtype::F16,
            Dtype::BF16 => FileDtype::BF16,
        };
        let bufs: Vec<(&String, FileDtype, Vec<usize>, Vec<u8>)> = self
            .order
            .iter()
            .map(|name| {
                let t = &self.map[name];
                let dt = self.stored_as(name).unwrap_or(float);
                (name, dt, t.shape(), dt.encode(&t.to_vec()))
            })
            .collect();
        let views: Vec<(&String, TensorView<'_>)> = bufs
            .iter()
            .map(|(n, dt, shape, b)| {
                let view = TensorView::new(dt.to_safetensors(), shape.clone(), b);
                (*n, view.expect("sizes agree"))
            })
            .collect();
        safetensors::serialize(views, None).expect("valid tensors serialise")
    }

    /// Saves to `path` through a temporary file in the same folder, renamed
    /// into place only once complete: a crash never leaves a half-written
    /// file where a good one was.
    pub fn save(&self, path: &Path, dtype: Dtype) -> Result<()> {
        write_atomically(path, &self.to_bytes(dtype))
    }

    /// Parses safetensors bytes: float and integer tensors become f32, and
    /// integer ones keep their stored dtype for the next save (see
    /// [`SafetensorsFile`] to read them exactly). A bool tensor is an error.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        Self::from_file(&SafetensorsFile::from_bytes(bytes.to_vec(), path)?)
    }

    /// Every tensor of an opened file, as [`from_bytes`](Self::from_bytes) reads them.
    pub fn from_file(file: &SafetensorsFile) -> Result<Self> {
        let mut sd = StateDict::default();
        for name in file.names() {
            let dtype = file.dtype(name)?;
            if dtype == FileDtype::Bool {
                return Err(NnError::Dtype {
                    path: file.path().to_path_buf(),
                    name: name.clone(),
                    dtype: format!("{dtype:?}"),
                });
            }
            let t = Tensor::from_array(file.get_f32(name)?);
            if dtype.is_float() {
                sd.insert(name.clone(), t);
            } else {
                sd.insert_stored_as(name.clone(), t, dtype);
            }
        }
        Ok(sd)
    }

    /// Loads a safetensors file; a missing, corrupt or truncated file is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_file(&SafetensorsFile::open(path)?)
    }
}

/// Writes `bytes` to `path` atomically (see [`autograd::io::write_atomic`]):
/// the file holds its old contents or all of the new ones, never a part.
/// The error names `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    autograd::io::write_atomic(path, bytes).map_err(|e| NnError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}
