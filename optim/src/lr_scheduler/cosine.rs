//! CosineAnnealingLR: the lr follows a cosine from its base down to
//! `eta_min` over `t_max` steps (and back up after, as PyTorch's does), as
//! `torch.optim.lr_scheduler.CosineAnnealingLR`, in PyTorch's recursive form.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{CosineAnnealingLr, CosineAnnealingLrConfig, LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let mut sched = CosineAnnealingLr::new(&mut opt, CosineAnnealingLrConfig { t_max: 4, eta_min: 0.01 });
//! let mut lrs = vec![];
//! for _ in 0..5 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! let closed = |t: f64| 0.01 + 0.09 * (1.0 + (std::f64::consts::PI * t / 4.0).cos()) / 2.0;
//! for (t, lr) in lrs.iter().enumerate() {
//!     assert!((lr - closed(t as f64)).abs() < 1e-12);
//! }
//! assert!(b.item() < 0.0);
//! ```

use std::f64::consts::PI;

use autograd::Float;

use super::{chainable_scheduler, construct, invalid, lrs, Base, Chainable};
use crate::error::{ok, Result};
use crate::Optimizer;

/// The settings of [`CosineAnnealingLr`]; `new(t_max)` gives PyTorch's default eta_min.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLrConfig {
    /// Steps of a half cosine (required: PyTorch has no default).
    pub t_max: usize,
    /// The lowest lr.
    pub eta_min: f64,
}

impl CosineAnnealingLrConfig {
    /// `t_max` with PyTorch's default eta_min 0.
    pub fn new(t_max: usize) -> Self {
        CosineAnnealingLrConfig {
            t_max,
            eta_min: 0.0,
        }
    }
}

/// Cosine annealing without restarts; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    config: CosineAnnealingLrConfig,
    base: Base,
}

impl CosineAnnealingLr {
    /// Builds the schedule on `opt` and sets its first lr.
    ///
    /// # Panics
    /// If `t_max` is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: CosineAnnealingLrConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr.
    pub fn try_new<T: Float>(
        opt: &mut dyn Optimizer<T>,
        config: CosineAnnealingLrConfig,
    ) -> Result<Self> {
        if config.t_max == 0 {
            return Err(invalid(Self::NAME, "t_max must be positive"));
        }
        construct(
            CosineAnnealingLr {
                config,
                base: Base::new(opt),
            },
            opt,
        )
    }

    /// The settings.
    pub fn config(&self) -> &CosineAnnealingLrConfig {
        &self.config
    }
}

impl Chainable for CosineAnnealingLr {
    const NAME: &'static str = "CosineAnnealingLR";

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
        let (e, t, eta) = (
            self.base.last_epoch,
            self.config.t_max as i64,
            self.config.eta_min,
        );
        let tf = t as f64;
        if (e - 1 - t).rem_euclid(2 * t) == 0 {
            // At the bottom of the cosine the ratio below is 0/0: PyTorch steps up additively.
            let c = 1.0 - (PI / tf).cos();
            return Ok(lr
                .iter()
                .zip(&self.base.base_lrs)
                .map(|(l, b)| l + (b - eta) * c / 2.0)
                .collect());
        }
        let ratio = (1.0 + (PI * e as f64 / tf).cos()) / (1.0 + (PI * (e - 1) as f64 / tf).cos());
        Ok(lr.iter().map(|l| ratio * (l - eta) + eta).collect())
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let (e, tf, eta) = (
            self.base.last_epoch as f64,
            self.config.t_max as f64,
            self.config.eta_min,
        );
        let c = 1.0 + (PI * e / tf).cos();
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| eta + (b - eta) * c / 2.0)
                .collect(),
        )
    }
}

chainable_scheduler!(CosineAnnealingLr);
