//! ConstantLR: the lr times `factor` until `total_iters`, as `torch.optim.lr_scheduler.ConstantLR`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{ConstantLr, ConstantLrConfig, LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let mut sched = ConstantLr::new(&mut opt, ConstantLrConfig { factor: 0.5, total_iters: 2 });
//! let mut lrs = vec![];
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! assert_eq!(lrs, [0.05, 0.05, 0.1]);
//! assert!((b.item() - -0.2).abs() < 1e-6);
//! ```

use autograd::Float;

use super::{chainable_scheduler, construct, invalid, lrs, Base, Chainable};
use crate::error::{ok, Result};
use crate::Optimizer;

/// The settings of [`ConstantLr`]; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantLrConfig {
    /// The factor applied until `total_iters` (in [0, 1]).
    pub factor: f64,
    /// Steps with the reduced lr.
    pub total_iters: usize,
}

impl Default for ConstantLrConfig {
    fn default() -> Self {
        ConstantLrConfig {
            factor: 1.0 / 3.0,
            total_iters: 5,
        }
    }
}

/// A constant factor for the first `total_iters` steps; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ConstantLr {
    config: ConstantLrConfig,
    base: Base,
}

impl ConstantLr {
    /// Builds the schedule on `opt` and sets its first lr.
    ///
    /// # Panics
    /// If `factor` is outside [0, 1]; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: ConstantLrConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr.
    pub fn try_new<T: Float>(opt: &mut dyn Optimizer<T>, config: ConstantLrConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.factor) {
            return Err(invalid(
                Self::NAME,
                "constant multiplicative factor expected to be between 0 and 1",
            ));
        }
        construct(
            ConstantLr {
                config,
                base: Base::new(opt),
            },
            opt,
        )
    }

    /// The settings.
    pub fn config(&self) -> &ConstantLrConfig {
        &self.config
    }
}

impl Chainable for ConstantLr {
    const NAME: &'static str = "ConstantLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, _initial: bool) -> Result<Vec<f64>> {
        let (e, f) = (self.base.last_epoch, self.config.factor);
        let lr = lrs(opt);
        Ok(if e == 0 {
            lr.iter().map(|l| l * f).collect()
        } else if e != self.config.total_iters as i64 {
            lr
        } else {
            lr.iter().map(|l| l * (1.0 / f)).collect()
        })
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let f = self.config.factor;
        let done = if self.base.last_epoch >= self.config.total_iters as i64 {
            1.0
        } else {
            0.0
        };
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| b * (f + done * (1.0 - f)))
                .collect(),
        )
    }
}

chainable_scheduler!(ConstantLr);
