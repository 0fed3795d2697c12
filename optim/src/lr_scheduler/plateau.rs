//! ReduceLROnPlateau: the lr times `factor` when a metric stops improving for
//! `patience` steps, as `torch.optim.lr_scheduler.ReduceLROnPlateau`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{LrScheduler, Optimizer, ReduceLrOnPlateau, ReduceLrOnPlateauConfig, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let config = ReduceLrOnPlateauConfig { patience: 1, factor: 0.5, ..Default::default() };
//! let mut sched = ReduceLrOnPlateau::new(&mut opt, config);
//! for val_loss in [1.0, 0.9, 0.9, 0.9] {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     sched.step_with_metric(&mut opt, val_loss);
//! }
//! // Two steps without improvement exceed a patience of 1: one reduction.
//! assert_eq!(opt.param_groups()[0].lr, 0.05);
//! assert!(sched.try_step(&mut opt).is_err()); // it needs the metric
//! ```

use autograd::Float;

use super::{check_kind, int_value, invalid, lrs};
use crate::error::{ok, OptimError, Result};
use crate::state::SchedulerState;
use crate::{LrScheduler, Optimizer};

const NAME: &str = "ReduceLROnPlateau";

/// Whether the metric should go down (a loss) or up (an accuracy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better (a loss); PyTorch's `'min'`, the default.
    Min,
    /// Higher is better (an accuracy); PyTorch's `'max'`.
    Max,
}

/// How `threshold` measures a significant improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better than `best * (1 -+ threshold)`.
    Rel,
    /// Better than `best -+ threshold`.
    Abs,
}

/// The settings of [`ReduceLrOnPlateau`]; `Default` gives PyTorch's.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateauConfig {
    /// Whether the metric should fall or rise (default [`Mode::Min`]).
    pub mode: Mode,
    /// The lr is multiplied by this (< 1).
    pub factor: f64,
    /// Steps without improvement tolerated before a reduction.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub threshold: f64,
    /// Whether `threshold` is relative or absolute (default [`ThresholdMode::Rel`]).
    pub threshold_mode: ThresholdMode,
    /// Steps to wait after a reduction before counting again.
    pub cooldown: usize,
    /// The lowest lr: one value for every group, or one per group.
    pub min_lr: Vec<f64>,
    /// Reductions smaller than this are skipped.
    pub eps: f64,
}

impl Default for ReduceLrOnPlateauConfig {
    fn default() -> Self {
        ReduceLrOnPlateauConfig {
            mode: Mode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: vec![0.0],
            eps: 1e-8,
        }
    }
}

/// Reduces the lr when a metric plateaus; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    config: ReduceLrOnPlateauConfig,
    min_lrs: Vec<f64>,
    best: f64,
    num_bad_epochs: i64,
    cooldown_counter: i64,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl ReduceLrOnPlateau {
    /// Builds the scheduler on `opt` (the lr is not changed until a plateau).
    ///
    /// # Panics
    /// On an invalid config; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: ReduceLrOnPlateauConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the scheduler on `opt`.
    pub fn try_new<T: Float>(
        opt: &mut dyn Optimizer<T>,
        config: ReduceLrOnPlateauConfig,
    ) -> Result<Self> {
        if config.factor >= 1.0 || config.factor.is_nan() {
            return Err(invalid(NAME, "factor should be < 1.0"));
        }
        let groups = opt.param_groups().len();
        let min_lrs = match config.min_lr.len() {
            1 => vec![config.min_lr[0]; groups],
            k if k == groups => config.min_lr.clone(),
            k => return Err(invalid(NAME, format!("expected {groups} min_lrs, got {k}"))),
        };
        let best = match config.mode {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        };
        Ok(ReduceLrOnPlateau {
            config,
            min_lrs,
            best,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            last_lr: lrs(opt),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ReduceLrOnPlateauConfig {
        &self.config
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.config.threshold, self.best);
        match (self.config.mode, self.config.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (Mode::Min, ThresholdMode::Abs) => a < best - t,
            (Mode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (Mode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }
}

super::inherent_methods!(ReduceLrOnPlateau);

impl<T: Float> LrScheduler<T> for ReduceLrOnPlateau {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self, _opt: &mut dyn Optimizer<T>) -> Result<()> {
        Err(OptimError::MetricRequired { what: NAME })
    }

    fn try_step_with_metric(&mut self, opt: &mut dyn Optimizer<T>, metric: f64) -> Result<()> {
        let groups = opt.param_groups().len();
        if groups != self.min_lrs.len() {
            // A single min_lr extends to new groups, as PyTorch's default_min_lr does.
            if self.config.min_lr.len() != 1 {
                return Err(OptimError::GroupCount {
                    what: NAME,
                    expected: self.min_lrs.len(),
                    got: groups,
                });
            }
            self.min_lrs = vec![self.config.min_lr[0]; groups];
        }
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0; // bad epochs in cooldown do not count
        }
        if self.num_bad_epochs > self.config.patience as i64 {
            for (g, &min_lr) in opt.param_groups_mut().iter_mut().zip(&self.min_lrs) {
                let new_lr = (g.lr * self.config.factor).max(min_lr);
                if g.lr - new_lr > self.config.eps {
                    g.lr = new_lr;
                }
            }
            self.cooldown_counter = self.config.cooldown as i64;
            self.num_bad_epochs = 0;
        }
        self.last_lr = lrs(opt);
        Ok(())
    }

    fn get_last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    fn state_dict(&self) -> SchedulerState {
        let mut st = SchedulerState::new(NAME);
        st.values.insert("best".into(), self.best);
        st.values
            .insert("num_bad_epochs".into(), self.num_bad_epochs as f64);
        st.values
            .insert("cooldown_counter".into(), self.cooldown_counter as f64);
        st.values
            .insert("last_epoch".into(), self.last_epoch as f64);
        st.lists.insert("last_lr".into(), self.last_lr.clone());
        st.lists.insert("min_lrs".into(), self.min_lrs.clone());
        st
    }

    fn load_state_dict(&mut self, st: &SchedulerState) -> Result<()> {
        check_kind(st, NAME)?;
        let n = self.last_lr.len();
        let new = ReduceLrOnPlateau {
            config: self.config.clone(),
            min_lrs: st.list("min_lrs", self.min_lrs.len())?,
            best: st.value("best")?,
            num_bad_epochs: int_value(st, "num_bad_epochs")?,
            cooldown_counter: int_value(st, "cooldown_counter")?,
            last_epoch: int_value(st, "last_epoch")?,
            last_lr: st.list("last_lr", n)?,
        };
        *self = new;
        Ok(())
    }

    fn needs_metric(&self) -> bool {
        true
    }

    fn undo_initial_step(&mut self) {
        self.last_epoch -= 1;
    }

    fn restart(&mut self, _opt: &mut dyn Optimizer<T>) -> Result<()> {
        Err(OptimError::MetricRequired { what: NAME })
    }
}
