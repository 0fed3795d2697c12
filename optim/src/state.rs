//! Saved state of optimizers and schedulers, in memory. [`state_io`](crate::state_io)
//! reads and writes it as safetensors files.

use std::collections::BTreeMap;

use autograd::ndarray::ArrayD;
use autograd::Float;

use crate::error::{mismatch, Result};

/// An optimizer's state: what training changed, as PyTorch's `state_dict()`.
///
/// The rule's configuration (eps, Adam's beta2, ...) is not part of it: a
/// loaded state keeps the configuration the optimizer was built with. Per
/// group it holds what schedulers and users change (lr, weight decay,
/// momentum, the rule's own per-group settings), per parameter (in group
/// order) the step count and the buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Float = f32> {
    /// The optimizer's name (`"Adam"`, `"SGD"`, ...): a state loads only into its own kind.
    pub optimizer: String,
    /// One entry per parameter group.
    pub groups: Vec<GroupState>,
    /// One entry per parameter, groups in order; `None` where no step has touched it yet.
    pub params: Vec<Option<ParamState<T>>>,
}

/// The changeable settings of one parameter group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// The group's learning rate.
    pub lr: f64,
    /// The group's weight decay.
    pub weight_decay: f64,
    /// The group's momentum (`None` for rules without one).
    pub momentum: Option<f64>,
    /// The lr the first scheduler started from.
    pub initial_lr: Option<f64>,
    /// The rule-specific settings by name (empty for the built-in optimizers).
    pub settings: BTreeMap<String, f64>,
    /// How many parameters the group had (checked on load).
    pub num_params: usize,
}

/// The state of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState<T: Float = f32> {
    /// Steps taken on this parameter (PyTorch's `state["step"]`).
    pub step: u64,
    /// Named buffers (`"exp_avg"`, `"momentum_buffer"`, ...), each of the parameter's shape.
    pub buffers: BTreeMap<String, ArrayD<T>>,
}

/// A scheduler's state: counters and learning rates, nested for composite schedulers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulerState {
    /// The scheduler's name (`"StepLR"`, ...): a state loads only into its own kind.
    pub scheduler: String,
    /// Scalars (`last_epoch`, `best`, ...).
    pub values: BTreeMap<String, f64>,
    /// Per-group lists (`base_lrs`, `last_lr`, ...).
    pub lists: BTreeMap<String, Vec<f64>>,
    /// The states of the schedulers inside a SequentialLR or ChainedScheduler.
    pub children: Vec<SchedulerState>,
}

impl SchedulerState {
    /// An empty state for scheduler `name`.
    pub fn new(name: &str) -> Self {
        SchedulerState {
            scheduler: name.to_string(),
            ..Default::default()
        }
    }

    /// A scalar, or a mismatch error naming it.
    pub fn value(&self, key: &str) -> Result<f64> {
        self.values
            .get(key)
            .copied()
            .ok_or_else(|| mismatch(&self.scheduler, format!("no value '{key}'")))
    }

    /// A list of `len` values, or a mismatch error naming it.
    pub fn list(&self, key: &str, len: usize) -> Result<Vec<f64>> {
        let v = self
            .lists
            .get(key)
            .ok_or_else(|| mismatch(&self.scheduler, format!("no list '{key}'")))?;
        if v.len() != len {
            return Err(mismatch(
                &self.scheduler,
                format!(
                    "'{key}' has {} values, but there are {len} parameter groups",
                    v.len()
                ),
            ));
        }
        Ok(v.clone())
    }
}
