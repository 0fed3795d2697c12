//! The [`Optimizer`] trait: what schedulers, training loops and checkpoints
//! use of any optimizer. [`RuleOptimizer`](crate::RuleOptimizer) implements
//! it for every [`UpdateRule`](crate::UpdateRule).

use std::path::Path;

use autograd::Float;

use crate::error::{ok, Result};
use crate::group::{GroupSpec, ParamGroup};
use crate::state::OptimizerState;

/// An optimizer: updates parameters in place from their gradients.
///
/// Parameters without a gradient (unused, or frozen before backward) and
/// parameters whose `requires_grad()` is false are skipped, as PyTorch skips
/// `p.grad is None`.
pub trait Optimizer<T: Float = f32> {
    /// PyTorch's class name (`"Adam"`, `"SGD"`, ...), used in messages and states.
    fn name(&self) -> &'static str;

    /// One update of every parameter that has a gradient.
    ///
    /// Fails, updating nothing, if a gradient's shape is not its parameter's.
    fn try_step(&mut self) -> Result<()>;

    /// One update of every parameter that has a gradient.
    ///
    /// # Panics
    /// See [`try_step`](Self::try_step).
    #[track_caller]
    fn step(&mut self) {
        ok(self.try_step())
    }

    /// Forgets every gradient (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&mut self) {
        for g in self.param_groups() {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }

    /// The parameter groups, in order.
    fn param_groups(&self) -> &[ParamGroup<T>];

    /// The parameter groups, to change their settings (schedulers set `lr` here).
    fn param_groups_mut(&mut self) -> &mut [ParamGroup<T>];

    /// Adds a group (a layer unfrozen mid-training); unset settings come from the config.
    fn add_param_group(&mut self, group: GroupSpec<T>) -> Result<()>;

    /// The state (group settings, step counts, buffers), copied.
    fn state_dict(&self) -> OptimizerState<T>;

    /// Restores a state from [`state_dict`](Self::state_dict) of the same kind
    /// of optimizer over parameters of the same shapes. On error nothing changes.
    fn load_state_dict(&mut self, state: &OptimizerState<T>) -> Result<()>;

    /// Saves the state to a safetensors file (written to a temporary file, then renamed).
    fn save(&self, path: &Path) -> Result<()> {
        self.state_dict().save(path)
    }

    /// Loads a state saved by [`save`](Self::save); errors name the file.
    fn load(&mut self, path: &Path) -> Result<()> {
        let state = OptimizerState::load(path)?;
        self.load_state_dict(&state).map_err(|e| e.in_file(path))
    }
}
