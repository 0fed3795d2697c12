//! CosineAnnealingWarmRestarts (SGDR): cosine annealing restarted every
//! `t_0` steps, each period `t_mult` times the last, as
//! `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`. Step once per
//! epoch, or per batch with fractional epochs through [`step_to`](CosineAnnealingWarmRestarts::step_to).
//!
//! ```
//! use autograd::Tensor;
//! use optim::{CosineAnnealingWarmRestarts, CosineAnnealingWarmRestartsConfig, LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let config = CosineAnnealingWarmRestartsConfig { t_0: 2, t_mult: 2, eta_min: 0.0 };
//! let mut sched = CosineAnnealingWarmRestarts::new(&mut opt, config);
//! let mut lrs = vec![];
//! for _ in 0..7 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! // Periods of 2 then 4 steps, each starting again at the base lr.
//! let want = [0.1, 0.05, 0.1, 0.1 * (1.0 + 0.5f64.sqrt()) / 2.0, 0.05, 0.1 * (1.0 - 0.5f64.sqrt()) / 2.0, 0.1];
//! for (got, want) in lrs.iter().zip(want) {
//!     assert!((got - want).abs() < 1e-12, "{got} {want}");
//! }
//! assert!(b.item() < 0.0);
//! ```

use std::f64::consts::PI;

use autograd::Float;

use super::{check_kind, invalid, lrs, set_lrs, Base};
use crate::error::{ok, Result};
use crate::state::SchedulerState;
use crate::{LrScheduler, Optimizer};

const NAME: &str = "CosineAnnealingWarmRestarts";

/// The settings of [`CosineAnnealingWarmRestarts`]; `new(t_0)` gives PyTorch's defaults for the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingWarmRestartsConfig {
    /// Steps of the first period (required: PyTorch has no default).
    pub t_0: usize,
    /// Each period is `t_mult` times the last (>= 1).
    pub t_mult: usize,
    /// The lowest lr.
    pub eta_min: f64,
}

impl CosineAnnealingWarmRestartsConfig {
    /// `t_0` with PyTorch's defaults t_mult 1 and eta_min 0.
    pub fn new(t_0: usize) -> Self {
        CosineAnnealingWarmRestartsConfig {
            t_0,
            t_mult: 1,
            eta_min: 0.0,
        }
    }
}

/// Cosine annealing with warm restarts; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct CosineAnnealingWarmRestarts {
    config: CosineAnnealingWarmRestartsConfig,
    base: Base,
    /// Steps (possibly fractional) since the last restart.
    t_cur: f64,
    /// Length of the current period.
    t_i: i64,
}

impl CosineAnnealingWarmRestarts {
    /// Builds the schedule on `opt` and sets its first lr.
    ///
    /// # Panics
    /// On `t_0 == 0` or `t_mult == 0`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(
        opt: &mut dyn Optimizer<T>,
        config: CosineAnnealingWarmRestartsConfig,
    ) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr.
    pub fn try_new<T: Float>(
        opt: &mut dyn Optimizer<T>,
        config: CosineAnnealingWarmRestartsConfig,
    ) -> Result<Self> {
        if config.t_0 == 0 {
            return Err(invalid(NAME, "expected positive integer t_0"));
        }
        if config.t_mult == 0 {
            return Err(invalid(NAME, "expected integer t_mult >= 1"));
        }
        let mut s = CosineAnnealingWarmRestarts {
            config,
            base: Base::new(opt),
            t_cur: -1.0,
            t_i: config.t_0 as i64,
        };
        s.advance(opt, None)?;
        Ok(s)
    }

    /// The settings.
    pub fn config(&self) -> &CosineAnnealingWarmRestartsConfig {
        &self.config
    }

    /// Sets the schedule to `epoch`, which may be fractional (for example
    /// `epoch + batch / batches` to anneal within epochs), as PyTorch's `step(epoch)`.
    ///
    /// # Panics
    /// On a negative epoch; see [`try_step_to`](Self::try_step_to).
    #[track_caller]
    pub fn step_to<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, epoch: f64) {
        ok(self.try_step_to(opt, epoch))
    }

    /// Sets the schedule to `epoch`, which may be fractional.
    pub fn try_step_to<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, epoch: f64) -> Result<()> {
        if epoch < 0.0 || epoch.is_nan() {
            return Err(invalid(
                NAME,
                format!("expected a non-negative epoch, got {epoch}"),
            ));
        }
        self.advance(opt, Some(epoch))
    }

    /// PyTorch's `step(epoch)`, with `None` for the plain step.
    fn advance<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, epoch: Option<f64>) -> Result<()> {
        self.base.check_groups(NAME, opt)?;
        let (t_0, t_mult) = (self.config.t_0 as i64, self.config.t_mult as i64);
        let epoch = match epoch {
            None if self.base.last_epoch < 0 => Some(0.0),
            e => e,
        };
        match epoch {
            None => {
                self.base.last_epoch += 1;
                self.t_cur += 1.0;
                if self.t_cur >= self.t_i as f64 {
                    self.t_cur %= self.t_i as f64;
                    self.t_i *= t_mult;
                }
            }
            Some(e) => {
                if e >= t_0 as f64 {
                    if t_mult == 1 {
                        self.t_cur = e % t_0 as f64;
                    } else {
                        // The period that contains e: t_0 (t_mult^n - 1) / (t_mult - 1) <= e.
                        let x = e / t_0 as f64 * (t_mult - 1) as f64 + 1.0;
                        let n = (x.ln() / (t_mult as f64).ln()) as u32;
                        let done = t_0 * (t_mult.pow(n) - 1);
                        self.t_cur = e - done as f64 / (t_mult - 1) as f64;
                        self.t_i = t_0 * t_mult.pow(n);
                    }
                } else {
                    self.t_i = t_0;
                    self.t_cur = e;
                }
                self.base.last_epoch = e.floor() as i64;
            }
        }
        self.apply(opt);
        Ok(())
    }

    /// Sets the lrs for the current point of the period.
    fn apply<T: Float>(&mut self, opt: &mut dyn Optimizer<T>) {
        let eta = self.config.eta_min;
        let c = 1.0 + (PI * self.t_cur / self.t_i as f64).cos();
        let new: Vec<f64> = self
            .base
            .base_lrs
            .iter()
            .map(|b| eta + (b - eta) * c / 2.0)
            .collect();
        set_lrs(opt, &new);
        self.base.last_lr = lrs(opt);
    }
}

super::inherent_methods!(CosineAnnealingWarmRestarts);

impl<T: Float> LrScheduler<T> for CosineAnnealingWarmRestarts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        self.advance(opt, None)
    }

    fn get_last_lr(&self) -> &[f64] {
        &self.base.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.base.last_epoch
    }

    fn state_dict(&self) -> SchedulerState {
        let mut st = SchedulerState::new(NAME);
        self.base.save(&mut st);
        st.values.insert("t_cur".into(), self.t_cur);
        st.values.insert("t_i".into(), self.t_i as f64);
        st
    }

    fn load_state_dict(&mut self, st: &SchedulerState) -> Result<()> {
        check_kind(st, NAME)?;
        let mut new = self.clone();
        new.base.load(st)?;
        new.t_cur = st.value("t_cur")?;
        new.t_i = super::int_value(st, "t_i")?;
        *self = new;
        Ok(())
    }

    fn undo_initial_step(&mut self) {
        self.base.last_epoch -= 1;
    }

    fn restart(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        // PyTorch's `_update_lr(0)` has no closed form here: epoch 0, the period unchanged.
        self.base.check_groups(NAME, opt)?;
        self.base.last_epoch = 0;
        self.apply(opt);
        Ok(())
    }
}
