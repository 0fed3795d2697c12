//! StepLR: the lr times `gamma` every `step_size` steps, as `torch.optim.lr_scheduler.StepLR`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{LrScheduler, Optimizer, Sgd, SgdConfig, StepLr, StepLrConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let mut sched = StepLr::new(&mut opt, StepLrConfig { step_size: 2, gamma: 0.5 });
//! let mut lrs = vec![];
//! for _ in 0..5 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step(); // with the lr the schedule set
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! assert!(w.to_vec()[0] < 1.0 && b.item() < 0.0);
//! ```

use autograd::Float;

use super::{chainable_scheduler, construct, invalid, lrs, Base, Chainable};
use crate::error::{ok, Result};
use crate::Optimizer;

/// The settings of [`StepLr`]; `new(step_size)` gives PyTorch's defaults for the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLrConfig {
    /// Steps between decays (required: PyTorch has no default).
    pub step_size: usize,
    /// Factor of each decay.
    pub gamma: f64,
}

impl StepLrConfig {
    /// `step_size` with PyTorch's default gamma 0.1.
    pub fn new(step_size: usize) -> Self {
        StepLrConfig {
            step_size,
            gamma: 0.1,
        }
    }
}

/// Decays the lr by `gamma` every `step_size` steps; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct StepLr {
    config: StepLrConfig,
    base: Base,
}

impl StepLr {
    /// Builds the schedule on `opt` and sets its first lr.
    ///
    /// # Panics
    /// If `step_size` is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: StepLrConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr.
    pub fn try_new<T: Float>(opt: &mut dyn Optimizer<T>, config: StepLrConfig) -> Result<Self> {
        if config.step_size == 0 {
            return Err(invalid(Self::NAME, "step_size must be positive"));
        }
        construct(
            StepLr {
                config,
                base: Base::new(opt),
            },
            opt,
        )
    }

    /// The settings.
    pub fn config(&self) -> &StepLrConfig {
        &self.config
    }
}

impl Chainable for StepLr {
    const NAME: &'static str = "StepLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, _initial: bool) -> Result<Vec<f64>> {
        let e = self.base.last_epoch;
        let lr = lrs(opt);
        if e == 0 || e % self.config.step_size as i64 != 0 {
            return Ok(lr);
        }
        Ok(lr.iter().map(|l| l * self.config.gamma).collect())
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let k = self
            .base
            .last_epoch
            .div_euclid(self.config.step_size as i64);
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| b * self.config.gamma.powf(k as f64))
                .collect(),
        )
    }
}

chainable_scheduler!(StepLr);
