//! Optimizer and scheduler state as safetensors files: the `__metadata__`
//! map holds the scalars (step counts, learning rates, group settings) and
//! the tensors hold the per-parameter buffers.
//!
//! Scalars are written with Rust's shortest round-trip formatting and buffers
//! as raw little-endian values, so a loaded state is bit-for-bit the saved
//! one and a resumed run continues exactly. Files are written through
//! [`autograd::io::write_atomic`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use autograd::ndarray::{ArrayD, IxDyn};
use autograd::Float;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{OptimError, Result};
use crate::state::{GroupState, OptimizerState, ParamState, SchedulerState};

const OPTIM_FORMAT: &str = "dlfs.optim.v1";
const SCHED_FORMAT: &str = "dlfs.lr_scheduler.v1";

impl SchedulerState {
    /// Serialises to safetensors bytes (metadata only).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), SCHED_FORMAT.to_string());
        self.flatten("", &mut meta);
        let none: Vec<(String, TensorView<'_>)> = Vec::new();
        safetensors::serialize(none, Some(meta)).expect("metadata serialises")
    }

    fn flatten(&self, prefix: &str, meta: &mut HashMap<String, String>) {
        meta.insert(format!("{prefix}scheduler"), self.scheduler.clone());
        for (k, v) in &self.values {
            meta.insert(format!("{prefix}value.{k}"), fmt_f64(*v));
        }
        for (k, v) in &self.lists {
            let s: Vec<String> = v.iter().map(|x| fmt_f64(*x)).collect();
            meta.insert(format!("{prefix}list.{k}"), s.join(","));
        }
        meta.insert(format!("{prefix}children"), self.children.len().to_string());
        for (i, c) in self.children.iter().enumerate() {
            c.flatten(&format!("{prefix}child.{i}."), meta);
        }
    }

    fn unflatten(
        prefix: &str,
        meta: &HashMap<String, String>,
        path: &Path,
        depth: usize,
    ) -> Result<Self> {
        if depth > 32 {
            return Err(format_err(path, "schedulers nested too deeply"));
        }
        let mut st = SchedulerState::new(&get(meta, &format!("{prefix}scheduler"), path)?);
        let n_children: usize = parse(meta, &format!("{prefix}children"), path)?;
        for (k, v) in meta {
            let Some(rest) = k.strip_prefix(prefix) else {
                continue;
            };
            if let Some(name) = rest.strip_prefix("value.") {
                st.values.insert(name.to_string(), parse_f64(v, k, path)?);
            } else if let Some(name) = rest.strip_prefix("list.") {
                let vals = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|x| parse_f64(x, k, path))
                        .collect::<Result<Vec<_>>>()?
                };
                st.lists.insert(name.to_string(), vals);
            }
        }
        if n_children > 1024 {
            return Err(format_err(path, format!("{n_children} child schedulers")));
        }
        for i in 0..n_children {
            st.children.push(Self::unflatten(
                &format!("{prefix}child.{i}."),
                meta,
                path,
                depth + 1,
            )?);
        }
        Ok(st)
    }

    /// Parses what [`to_bytes`](Self::to_bytes) wrote; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format_err(path, e.to_string()))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| format_err(path, e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        check_format(&meta, SCHED_FORMAT, path)?;
        if !st.is_empty() {
            return Err(format_err(path, "a scheduler state holds no tensors"));
        }
        Self::unflatten("", &meta, path, 0)
    }

    /// Saves to `path` (through a temporary file, renamed into place when complete).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write(path.as_ref(), &self.to_bytes())
    }

    /// Loads a file written by [`save`](Self::save); a missing, corrupt or
    /// truncated file is an error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&read(path)?, path)
    }
}

impl<T: Float> OptimizerState<T> {
    /// Serialises to safetensors bytes: buffers as tensors `state.{i}.{name}`,
    /// everything else in the metadata.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), OPTIM_FORMAT.to_string());
        meta.insert("optimizer".to_string(), self.optimizer.clone());
        meta.insert("dtype".to_string(), T::NAME.to_string());
        meta.insert("groups".to_string(), self.groups.len().to_string());
        meta.insert("params".to_string(), self.params.len().to_string());
        for (g, gs) in self.groups.iter().enumerate() {
            meta.insert(format!("group.{g}.lr"), fmt_f64(gs.lr));
            meta.insert(format!("group.{g}.weight_decay"), fmt_f64(gs.weight_decay));
            meta.insert(format!("group.{g}.params"), gs.num_params.to_string());
            if let Some(m) = gs.momentum {
                meta.insert(format!("group.{g}.momentum"), fmt_f64(m));
            }
            if let Some(l) = gs.initial_lr {
                meta.insert(format!("group.{g}.initial_lr"), fmt_f64(l));
            }
            for (name, v) in &gs.settings {
                meta.insert(format!("group.{g}.setting.{name}"), fmt_f64(*v));
            }
        }
        let dtype = if T::NAME == "f64" {
            Dtype::F64
        } else {
            Dtype::F32
        };
        let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, ps) in self.params.iter().enumerate() {
            let Some(ps) = ps else { continue };
            meta.insert(format!("state.{i}.step"), ps.step.to_string());
            for (name, a) in &ps.buffers {
                let bytes = a.iter().flat_map(|v| le_bytes(*v)).collect();
                bufs.push((format!("state.{i}.{name}"), a.shape().to_vec(), bytes));
            }
        }
        let views: Vec<(String, TensorView<'_>)> = bufs
            .iter()
            .map(|(n, shape, b)| {
                let view = TensorView::new(dtype, shape.clone(), b).expect("sizes agree");
                (n.clone(), view)
            })
            .collect();
        safetensors::serialize(views, Some(meta)).expect("valid tensors serialise")
    }

    /// Parses what [`to_bytes`](Self::to_bytes) wrote; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format_err(path, e.to_string()))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| format_err(path, e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        check_format(&meta, OPTIM_FORMAT, path)?;
        let dtype = get(&meta, "dtype", path)?;
        if dtype != T::NAME {
            return Err(format_err(
                path,
                format!(
                    "the state holds {dtype} buffers, the optimizer is {}",
                    T::NAME
                ),
            ));
        }
        let n_groups: usize = parse(&meta, "groups", path)?;
        let n_params: usize = parse(&meta, "params", path)?;
        // Counts no model has are corruption; refuse them before allocating.
        if n_groups > meta.len() || n_params > 1 << 20 {
            return Err(format_err(path, "implausible group or parameter count"));
        }
        let mut groups = Vec::with_capacity(n_groups);
        for g in 0..n_groups {
            let opt = |k: &str| -> Result<Option<f64>> {
                meta.get(&format!("group.{g}.{k}"))
                    .map(|v| parse_f64(v, k, path))
                    .transpose()
            };
            groups.push(GroupState {
                lr: parse(&meta, &format!("group.{g}.lr"), path)?,
                weight_decay: parse(&meta, &format!("group.{g}.weight_decay"), path)?,
                num_params: parse(&meta, &format!("group.{g}.params"), path)?,
                momentum: opt("momentum")?,
                initial_lr: opt("initial_lr")?,
                settings: BTreeMap::new(),
            });
        }
        for (k, v) in &meta {
            let Some((g, name)) = k
                .strip_prefix("group.")
                .and_then(|r| r.split_once(".setting."))
            else {
                continue;
            };
            let group = g
                .parse::<usize>()
                .ok()
                .and_then(|g| groups.get_mut(g))
                .ok_or_else(|| format_err(path, format!("bad key '{k}'")))?;
            group
                .settings
                .insert(name.to_string(), parse_f64(v, k, path)?);
        }
        let mut params: Vec<Option<ParamState<T>>> = vec![None; n_params];
        for (k, v) in &meta {
            let Some(i) = k
                .strip_prefix("state.")
                .and_then(|r| r.strip_suffix(".step"))
            else {
                continue;
            };
            let i: usize = i
                .parse()
                .ok()
                .filter(|&i| i < n_params)
                .ok_or_else(|| format_err(path, format!("bad key '{k}'")))?;
            let step = v
                .parse()
                .map_err(|_| format_err(path, format!("'{k}' = '{v}' is not a step count")))?;
            params[i] = Some(ParamState {
                step,
                buffers: BTreeMap::new(),
            });
        }
        for (name, view) in st.tensors() {
            let bad = || format_err(path, format!("unexpected tensor '{name}'"));
            let rest = name.strip_prefix("state.").ok_or_else(bad)?;
            let (i, buf) = rest.split_once('.').ok_or_else(bad)?;
            let i: usize = i.parse().map_err(|_| bad())?;
            let slot = params
                .get_mut(i)
                .and_then(|p| p.as_mut())
                .ok_or_else(|| format_err(path, format!("tensor '{name}' has no step count")))?;
            let values = decode::<T>(view.dtype(), view.data(), view.shape(), &name, path)?;
            let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
                .map_err(|e| format_err(path, format!("tensor '{name}': {e}")))?;
            slot.buffers.insert(buf.to_string(), array);
        }
        Ok(OptimizerState {
            optimizer: get(&meta, "optimizer", path)?,
            groups,
            params,
        })
    }

    /// Saves to `path` (through a temporary file, renamed into place when complete).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write(path.as_ref(), &self.to_bytes())
    }

    /// Loads a file written by [`save`](Self::save); a missing, corrupt or
    /// truncated file is an error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&read(path)?, path)
    }
}

fn le_bytes<T: Float>(v: T) -> Vec<u8> {
    if T::NAME == "f64" {
        v.as_f64().to_le_bytes().to_vec()
    } else {
        (v.as_f64() as f32).to_le_bytes().to_vec()
    }
}

fn decode<T: Float>(
    dtype: Dtype,
    data: &[u8],
    shape: &[usize],
    name: &str,
    path: &Path,
) -> Result<Vec<T>> {
    let want = if T::NAME == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    };
    if dtype != want {
        return Err(format_err(
            path,
            format!("tensor '{name}' is {dtype:?}, the optimizer is {}", T::NAME),
        ));
    }
    let size = if want == Dtype::F64 { 8 } else { 4 };
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.and_then(|n| n.checked_mul(size)) != Some(data.len()) {
        return Err(format_err(
            path,
            format!("tensor '{name}' has the wrong byte count"),
        ));
    }
    Ok(if size == 8 {
        data.chunks_exact(8)
            .map(|c| T::of(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
            .collect()
    } else {
        data.chunks_exact(4)
            .map(|c| T::of(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64))
            .collect()
    })
}

/// Shortest text that parses back to the same `f64` (`inf` and `NaN` included).
fn fmt_f64(v: f64) -> String {
    format!("{v:?}")
}

fn parse_f64(v: &str, key: &str, path: &Path) -> Result<f64> {
    v.parse()
        .map_err(|_| format_err(path, format!("'{key}' = '{v}' is not a number")))
}

fn format_err(path: &Path, reason: impl Into<String>) -> OptimError {
    OptimError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn get(meta: &HashMap<String, String>, key: &str, path: &Path) -> Result<String> {
    meta.get(key)
        .cloned()
        .ok_or_else(|| format_err(path, format!("no '{key}' in the metadata")))
}

fn parse<V: std::str::FromStr>(
    meta: &HashMap<String, String>,
    key: &str,
    path: &Path,
) -> Result<V> {
    let v = get(meta, key, path)?;
    v.parse()
        .map_err(|_| format_err(path, format!("'{key}' = '{v}' is not valid")))
}

fn check_format(meta: &HashMap<String, String>, want: &str, path: &Path) -> Result<()> {
    match meta.get("format") {
        Some(f) if f == want => Ok(()),
        Some(f) => Err(format_err(path, format!("format '{f}', expected '{want}'"))),
        None => Err(format_err(
            path,
            format!("no 'format' in the metadata (expected '{want}')"),
        )),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| OptimError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    autograd::io::write_atomic(path, bytes).map_err(|e| OptimError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}
