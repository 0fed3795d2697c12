//! Learning-rate schedules, as `torch.optim.lr_scheduler`.
//!
//! A scheduler is built on an optimizer (which sets the optimizer's lr to the
//! schedule's first value, as PyTorch's constructors do) and stepped after
//! each `optimizer.step()`: once per epoch or once per batch, as the schedule
//! is meant. It follows PyTorch's recursive formulas exactly, so the lr
//! sequences are PyTorch's to the last bit of f64 arithmetic, chained
//! schedulers included.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{CosineAnnealingLr, CosineAnnealingLrConfig, LinearLr, LinearLrConfig, LrScheduler};
//! use optim::{Optimizer, SequentialLr, Sgd, SgdConfig};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! // Linear warm-up over 5 steps from lr / 10, then cosine annealing over 20.
//! let warmup = LinearLr::new(&mut opt, LinearLrConfig { start_factor: 0.1, ..Default::default() });
//! let cosine = CosineAnnealingLr::new(&mut opt, CosineAnnealingLrConfig::new(20));
//! let mut sched = SequentialLr::new(&mut opt, vec![Box::new(warmup), Box::new(cosine)], vec![5]);
//! assert!((sched.get_last_lr()[0] - 0.01).abs() < 1e-12);
//! for _ in 0..25 {
//!     opt.zero_grad();
//!     w.square().sum().backward();
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert!(opt.param_groups()[0].lr < 1e-9); // the end of the cosine
//! ```

use std::path::Path;

use autograd::Float;

use crate::error::{mismatch, ok, OptimError, Result};
use crate::state::SchedulerState;
use crate::Optimizer;

pub mod chained;
pub mod constant;
pub mod cosine;
pub mod cosine_warm_restarts;
pub mod exponential;
pub mod linear;
pub mod multi_step;
pub mod one_cycle;
pub mod plateau;
pub mod sequential;
pub mod step;

/// A learning-rate schedule driving an optimizer's per-group lr.
pub trait LrScheduler<T: Float = f32> {
    /// PyTorch's class name (`"StepLR"`, ...), used in messages and states.
    fn name(&self) -> &'static str;

    /// Advances the schedule one step (an epoch or a batch, as the caller
    /// counts) and sets the optimizer's learning rates.
    fn try_step(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()>;

    /// Advances the schedule one step.
    ///
    /// # Panics
    /// See [`try_step`](Self::try_step): the optimizer's group count changed,
    /// OneCycleLR went past its end, or ReduceLROnPlateau got no metric.
    #[track_caller]
    fn step(&mut self, opt: &mut dyn Optimizer<T>) {
        ok(self.try_step(opt))
    }

    /// Steps with a monitored metric (validation loss, accuracy). Only
    /// ReduceLROnPlateau uses it; the others ignore it and step, so one
    /// training loop can drive any scheduler.
    fn try_step_with_metric(&mut self, opt: &mut dyn Optimizer<T>, metric: f64) -> Result<()> {
        let _ = metric;
        self.try_step(opt)
    }

    /// Steps with a monitored metric.
    ///
    /// # Panics
    /// See [`try_step_with_metric`](Self::try_step_with_metric).
    #[track_caller]
    fn step_with_metric(&mut self, opt: &mut dyn Optimizer<T>, metric: f64) {
        ok(self.try_step_with_metric(opt, metric))
    }

    /// The learning rates this scheduler set last, one per group.
    fn get_last_lr(&self) -> &[f64];

    /// Steps taken (0 right after construction), PyTorch's `last_epoch`.
    fn last_epoch(&self) -> i64;

    /// The scheduler's counters and learning rates (its config is not part of it).
    fn state_dict(&self) -> SchedulerState;

    /// Restores a state from [`state_dict`](Self::state_dict) of the same kind
    /// of scheduler. On error nothing changes.
    fn load_state_dict(&mut self, state: &SchedulerState) -> Result<()>;

    /// Saves the state to a file (written to a temporary file, then renamed).
    fn save(&self, path: &Path) -> Result<()> {
        self.state_dict().save(path)
    }

    /// Loads a state saved by [`save`](Self::save); errors name the file.
    fn load(&mut self, path: &Path) -> Result<()> {
        let state = SchedulerState::load(path)?;
        self.load_state_dict(&state).map_err(|e| e.in_file(path))
    }

    /// Whether stepping needs a metric (SequentialLR and ChainedScheduler refuse such schedulers).
    fn needs_metric(&self) -> bool {
        false
    }

    /// SequentialLR's hook (PyTorch's `recursive_undo`): undoes the step
    /// construction took, by moving `last_epoch` back one.
    fn undo_initial_step(&mut self);

    /// SequentialLR's hook (PyTorch's `_initial_step`): the step construction takes.
    fn initial_step(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        self.try_step(opt)
    }

    /// SequentialLR's hook at a milestone (PyTorch's `_update_lr(0)`): jumps
    /// back to the schedule's start, through its closed form where it has one.
    fn restart(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()>;
}

/// The current learning rates of an optimizer's groups.
pub(crate) fn lrs<T: Float>(opt: &dyn Optimizer<T>) -> Vec<f64> {
    opt.param_groups().iter().map(|g| g.lr).collect()
}

pub(crate) fn set_lrs<T: Float>(opt: &mut dyn Optimizer<T>, lrs: &[f64]) {
    for (g, &lr) in opt.param_groups_mut().iter_mut().zip(lrs) {
        g.lr = lr;
    }
}

/// The state PyTorch's `LRScheduler` base class keeps.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    /// Each group's `initial_lr`, the lr the schedule is relative to.
    pub base_lrs: Vec<f64>,
    pub last_epoch: i64,
    pub last_lr: Vec<f64>,
}

impl Base {
    /// PyTorch's `LRScheduler.__init__` before the initial step: a group's
    /// `initial_lr` is set from its lr by the first scheduler only, so every
    /// scheduler of a sequence counts from the same base.
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>) -> Base {
        let base_lrs = opt
            .param_groups_mut()
            .iter_mut()
            .map(|g| *g.initial_lr.get_or_insert(g.lr))
            .collect();
        Base {
            base_lrs,
            last_epoch: -1,
            last_lr: lrs(opt),
        }
    }

    /// Fails if the optimizer's group count is not the one the scheduler was built for.
    pub fn check_groups<T: Float>(&self, what: &'static str, opt: &dyn Optimizer<T>) -> Result<()> {
        let got = opt.param_groups().len();
        if got != self.base_lrs.len() {
            return Err(OptimError::GroupCount {
                what,
                expected: self.base_lrs.len(),
                got,
            });
        }
        Ok(())
    }

    pub fn save(&self, st: &mut SchedulerState) {
        st.values
            .insert("last_epoch".into(), self.last_epoch as f64);
        st.lists.insert("base_lrs".into(), self.base_lrs.clone());
        st.lists.insert("last_lr".into(), self.last_lr.clone());
    }

    pub fn load(&mut self, st: &SchedulerState) -> Result<()> {
        let n = self.base_lrs.len();
        self.base_lrs = st.list("base_lrs", n)?;
        self.last_lr = st.list("last_lr", n)?;
        self.last_epoch = int_value(st, "last_epoch")?;
        Ok(())
    }
}

/// A scalar of a state that must be an integer.
pub(crate) fn int_value(st: &SchedulerState, key: &str) -> Result<i64> {
    let v = st.value(key)?;
    if v.fract() != 0.0 || v.abs() > 9e15 {
        return Err(mismatch(
            &st.scheduler,
            format!("'{key}' = {v} is not an integer"),
        ));
    }
    Ok(v as i64)
}

/// Fails unless `st` is a state of scheduler `name`.
pub(crate) fn check_kind(st: &SchedulerState, name: &str) -> Result<()> {
    if st.scheduler != name {
        return Err(mismatch(
            name,
            format!("it is the state of {}, not of {name}", st.scheduler),
        ));
    }
    Ok(())
}

/// A scheduler written as PyTorch's `get_lr` (most are "chainable": the next
/// lr is computed from the current one, so several compose).
pub(crate) trait Chainable: Clone {
    const NAME: &'static str;

    fn base(&self) -> &Base;

    fn base_mut(&mut self) -> &mut Base;

    /// PyTorch's `get_lr` at `base().last_epoch`; `initial` is its `_is_initial`.
    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, initial: bool) -> Result<Vec<f64>>;

    /// PyTorch's `_get_closed_form_lr`, where the scheduler has one.
    fn closed_form(&self) -> Option<Vec<f64>> {
        None
    }

    /// Saves what the scheduler keeps beyond [`Base`].
    fn save_extra(&self, _st: &mut SchedulerState) {}

    /// Restores what [`save_extra`](Self::save_extra) saved.
    fn load_extra(&mut self, _st: &SchedulerState) -> Result<()> {
        Ok(())
    }
}

/// How [`update`] moves the schedule.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Move {
    /// A step (`step()`).
    Step,
    /// The step construction takes (`_initial_step`).
    Initial,
    /// Back to epoch 0 through the closed form (`_update_lr(0)`).
    Restart,
}

/// PyTorch's `LRScheduler._update_lr`.
pub(crate) fn update<T: Float, S: Chainable>(
    s: &mut S,
    opt: &mut dyn Optimizer<T>,
    how: Move,
) -> Result<()> {
    s.base().check_groups(S::NAME, opt)?;
    let new = match how {
        Move::Step | Move::Initial => {
            s.base_mut().last_epoch += 1;
            match s.get_lr(opt, how == Move::Initial) {
                Ok(v) => v,
                Err(e) => {
                    s.base_mut().last_epoch -= 1;
                    return Err(e);
                }
            }
        }
        Move::Restart => {
            s.base_mut().last_epoch = 0;
            match s.closed_form() {
                Some(v) => v,
                None => s.get_lr(opt, false)?,
            }
        }
    };
    set_lrs(opt, &new);
    s.base_mut().last_lr = lrs(opt);
    Ok(())
}

/// Builds a chainable scheduler the way PyTorch's constructors do: record
/// the base lrs, then take the initial step.
pub(crate) fn construct<T: Float, S: Chainable>(mut s: S, opt: &mut dyn Optimizer<T>) -> Result<S> {
    update(&mut s, opt, Move::Initial)?;
    Ok(s)
}

/// Implements [`LrScheduler`] for a [`Chainable`] scheduler.
macro_rules! chainable_scheduler {
    ($ty:ty) => {
        $crate::lr_scheduler::inherent_methods!($ty);

        impl<T: autograd::Float> $crate::LrScheduler<T> for $ty {
            fn name(&self) -> &'static str {
                <$ty as $crate::lr_scheduler::Chainable>::NAME
            }

            fn try_step(&mut self, opt: &mut dyn $crate::Optimizer<T>) -> $crate::Result<()> {
                $crate::lr_scheduler::update(self, opt, $crate::lr_scheduler::Move::Step)
            }

            fn get_last_lr(&self) -> &[f64] {
                &$crate::lr_scheduler::Chainable::base(self).last_lr
            }

            fn last_epoch(&self) -> i64 {
                $crate::lr_scheduler::Chainable::base(self).last_epoch
            }

            fn state_dict(&self) -> $crate::SchedulerState {
                use $crate::lr_scheduler::Chainable;
                let mut st = $crate::SchedulerState::new(Self::NAME);
                self.base().save(&mut st);
                self.save_extra(&mut st);
                st
            }

            fn load_state_dict(&mut self, st: &$crate::SchedulerState) -> $crate::Result<()> {
                use $crate::lr_scheduler::Chainable;
                $crate::lr_scheduler::check_kind(st, Self::NAME)?;
                // Into a copy first, so a failed load changes nothing.
                let mut new = self.clone();
                new.base_mut().load(st)?;
                new.load_extra(st)?;
                *self = new;
                Ok(())
            }

            fn undo_initial_step(&mut self) {
                $crate::lr_scheduler::Chainable::base_mut(self).last_epoch -= 1;
            }

            fn initial_step(&mut self, opt: &mut dyn $crate::Optimizer<T>) -> $crate::Result<()> {
                $crate::lr_scheduler::update(self, opt, $crate::lr_scheduler::Move::Initial)
            }

            fn restart(&mut self, opt: &mut dyn $crate::Optimizer<T>) -> $crate::Result<()> {
                $crate::lr_scheduler::update(self, opt, $crate::lr_scheduler::Move::Restart)
            }
        }
    };
}
pub(crate) use chainable_scheduler;

/// The methods of [`LrScheduler`] that do not depend on the optimizer's
/// precision, as inherent methods of a scheduler that is not generic, so that
/// `sched.get_last_lr()` needs no type annotation.
macro_rules! inherent_methods {
    ($ty:ty) => {
        impl $ty {
            /// The learning rates this scheduler set last, one per group.
            pub fn get_last_lr(&self) -> &[f64] {
                <Self as $crate::LrScheduler<f32>>::get_last_lr(self)
            }

            /// Steps taken (0 right after construction), PyTorch's `last_epoch`.
            pub fn last_epoch(&self) -> i64 {
                <Self as $crate::LrScheduler<f32>>::last_epoch(self)
            }

            /// The scheduler's counters and learning rates (its config is not part of it).
            pub fn state_dict(&self) -> $crate::SchedulerState {
                <Self as $crate::LrScheduler<f32>>::state_dict(self)
            }

            /// Restores a state from [`state_dict`](Self::state_dict); on error nothing changes.
            pub fn load_state_dict(
                &mut self,
                state: &$crate::SchedulerState,
            ) -> $crate::Result<()> {
                <Self as $crate::LrScheduler<f32>>::load_state_dict(self, state)
            }

            /// Saves the state to a file (written to a temporary file, then renamed).
            pub fn save(&self, path: &std::path::Path) -> $crate::Result<()> {
                <Self as $crate::LrScheduler<f32>>::save(self, path)
            }

            /// Loads a state saved by [`save`](Self::save); errors name the file.
            pub fn load(&mut self, path: &std::path::Path) -> $crate::Result<()> {
                <Self as $crate::LrScheduler<f32>>::load(self, path)
            }
        }
    };
}
pub(crate) use inherent_methods;

/// An `InvalidConfig` error of scheduler `what`.
pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> OptimError {
    OptimError::InvalidConfig {
        what,
        reason: reason.into(),
    }
}
