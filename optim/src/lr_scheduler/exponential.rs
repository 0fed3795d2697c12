//! ExponentialLR: the lr times `gamma` every step, as `torch.optim.lr_scheduler.ExponentialLR`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{ExponentialLr, ExponentialLrConfig, LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let mut sched = ExponentialLr::new(&mut opt, ExponentialLrConfig { gamma: 0.5 });
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert_eq!(sched.get_last_lr(), [0.0125]);
//! assert!((b.item() - -(0.1 + 0.05 + 0.025)).abs() < 1e-6);
//! ```

use autograd::Float;

use super::{chainable_scheduler, construct, lrs, Base, Chainable};
use crate::error::Result;
use crate::Optimizer;

/// The settings of [`ExponentialLr`] (PyTorch has no default gamma).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLrConfig {
    /// Factor of each step's decay.
    pub gamma: f64,
}

/// Decays the lr by `gamma` every step; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    config: ExponentialLrConfig,
    base: Base,
}

impl ExponentialLr {
    /// Builds the schedule on `opt` and sets its first lr.
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: ExponentialLrConfig) -> Self {
        let s = ExponentialLr {
            config,
            base: Base::new(opt),
        };
        construct(s, opt).expect("ExponentialLR's first step cannot fail")
    }

    /// The settings.
    pub fn config(&self) -> &ExponentialLrConfig {
        &self.config
    }
}

impl Chainable for ExponentialLr {
    const NAME: &'static str = "ExponentialLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, initial: bool) -> Result<Vec<f64>> {
        let lr = lrs(opt);
        if initial {
            return Ok(lr);
        }
        Ok(lr.iter().map(|l| l * self.config.gamma).collect())
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let g = self.config.gamma.powf(self.base.last_epoch as f64);
        Some(self.base.base_lrs.iter().map(|b| b * g).collect())
    }
}

chainable_scheduler!(ExponentialLr);
