//! LinearLR (linear warm-up): the lr's factor goes linearly from
//! `start_factor` to `end_factor` over `total_iters` steps, as
//! `torch.optim.lr_scheduler.LinearLR`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{LinearLr, LinearLrConfig, LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let config = LinearLrConfig { start_factor: 0.25, total_iters: 3, ..Default::default() };
//! let mut sched = LinearLr::new(&mut opt, config);
//! let mut lrs = vec![];
//! for _ in 0..5 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! for (got, want) in lrs.iter().zip([0.025, 0.05, 0.075, 0.1, 0.1]) {
//!     assert!((got - want).abs() < 1e-12);
//! }
//! assert!(w.to_vec()[0] < 1.0);
//! ```

use autograd::Float;

use super::{chainable_scheduler, construct, invalid, lrs, Base, Chainable};
use crate::error::{ok, Result};
use crate::Optimizer;

/// The settings of [`LinearLr`]; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLrConfig {
    /// The factor at step 0 (in (0, 1]; PyTorch's default 1/3).
    pub start_factor: f64,
    /// The factor from `total_iters` on (in [0, 1]).
    pub end_factor: f64,
    /// Steps to go from one to the other.
    pub total_iters: usize,
}

impl Default for LinearLrConfig {
    fn default() -> Self {
        LinearLrConfig {
            start_factor: 1.0 / 3.0,
            end_factor: 1.0,
            total_iters: 5,
        }
    }
}

/// A linear ramp of the lr's factor; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct LinearLr {
    config: LinearLrConfig,
    base: Base,
}

impl LinearLr {
    /// Builds the schedule on `opt` and sets its first lr.
    ///
    /// # Panics
    /// On factors out of range; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: LinearLrConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr.
    pub fn try_new<T: Float>(opt: &mut dyn Optimizer<T>, config: LinearLrConfig) -> Result<Self> {
        if !(config.start_factor > 0.0 && config.start_factor <= 1.0) {
            return Err(invalid(
                Self::NAME,
                "starting multiplicative factor expected to be greater than 0 and less or equal to 1",
            ));
        }
        if !(0.0..=1.0).contains(&config.end_factor) {
            return Err(invalid(
                Self::NAME,
                "ending multiplicative factor expected to be between 0 and 1",
            ));
        }
        construct(
            LinearLr {
                config,
                base: Base::new(opt),
            },
            opt,
        )
    }

    /// The settings.
    pub fn config(&self) -> &LinearLrConfig {
        &self.config
    }
}

impl Chainable for LinearLr {
    const NAME: &'static str = "LinearLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, initial: bool) -> Result<Vec<f64>> {
        let LinearLrConfig {
            start_factor: s,
            end_factor: f,
            total_iters: n,
        } = self.config;
        let e = self.base.last_epoch;
        let lr = lrs(opt);
        if e == 0 {
            return Ok(lr.iter().map(|l| l * s).collect());
        }
        if initial || e > n as i64 {
            return Ok(lr);
        }
        // The ratio of consecutive factors, as PyTorch's recursive form.
        let ratio = 1.0 + (f - s) / (n as f64 * s + (e - 1) as f64 * (f - s));
        Ok(lr.iter().map(|l| l * ratio).collect())
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let LinearLrConfig {
            start_factor: s,
            end_factor: f,
            total_iters: n,
        } = self.config;
        let done = self.base.last_epoch.min(n as i64) as f64;
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| b * (s + (f - s) * done / n as f64))
                .collect(),
        )
    }
}

chainable_scheduler!(LinearLr);
