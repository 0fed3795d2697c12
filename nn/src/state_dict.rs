//! State dicts: named tensors, stored as safetensors with torchvision's names,
//! so PyTorch's `torch.save`-free `safetensors.torch.save_file(model.state_dict())`
//! loads directly, and ours loads in PyTorch. Weights can be stored in f16 or
//! bf16 (half the file) and come back as f32.

use std::collections::HashMap;
use std::path::Path;

use autograd::Tensor;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};

use crate::error::{NnError, Result};

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

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: String, t: Tensor) {
        if self.map.insert(name.clone(), t).is_none() {
            self.order.push(name);
        }
    }

    /// Removes a tensor (for example a head to be re-initialised).
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        let t = self.map.remove(name)?;
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

    /// Serialises to safetensors bytes (`num_batches_tracked` as int64, as PyTorch keeps it).
    pub fn to_bytes(&self, dtype: Dtype) -> Vec<u8> {
        let mut bufs: Vec<(String, StDtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for name in &self.order {
            let t = &self.map[name];
            let vals = t.to_vec();
            let (dt, bytes) = if name.ends_with("num_batches_tracked") {
                (
                    StDtype::I64,
                    vals.iter()
                        .flat_map(|&v| (v as i64).to_le_bytes())
                        .collect(),
                )
            } else {
                match dtype {
                    Dtype::F32 => (
                        StDtype::F32,
                        vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ),
                    Dtype::F16 => (
                        StDtype::F16,
                        vals.iter()
                            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                    Dtype::BF16 => (
                        StDtype::BF16,
                        vals.iter()
                            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                            .collect(),
                    ),
                }
            };
            bufs.push((name.clone(), dt, t.shape(), bytes));
        }
        let views: Vec<(String, TensorView<'_>)> = bufs
            .iter()
            .map(|(n, dt, shape, b)| {
                (
                    n.clone(),
                    TensorView::new(*dt, shape.clone(), b).expect("sizes agree"),
                )
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

    /// Parses safetensors bytes (f32, f16, bf16, f64 and integer tensors become f32).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| NnError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tensors = st.tensors();
        // The header's map has no order; keep the file's data order.
        tensors.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
        let mut sd = StateDict::default();
        for (name, view) in tensors {
            let data = view.data();
            let vals: Vec<f32> = match view.dtype() {
                StDtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                StDtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                StDtype::F16 => data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                StDtype::BF16 => data
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                StDtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                StDtype::I32 => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => {
                    return Err(NnError::Dtype {
                        path: path.to_path_buf(),
                        name,
                        dtype: format!("{other:?}"),
                    })
                }
            };
            let t = Tensor::try_from_vec(vals, view.shape()).map_err(|e| NnError::Format {
                path: path.to_path_buf(),
                reason: format!("tensor '{name}': {e}"),
            })?;
            sd.insert(name, t);
        }
        Ok(sd)
    }

    /// Loads a safetensors file; a missing, corrupt or truncated file is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| NnError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_bytes(&bytes, path)
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
