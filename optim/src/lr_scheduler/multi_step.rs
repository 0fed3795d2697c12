//! MultiStepLR: the lr times `gamma` at each milestone, as `torch.optim.lr_scheduler.MultiStepLR`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{LrScheduler, MultiStepLr, MultiStepLrConfig, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 1.0, ..Default::default() });
//! // A milestone given twice decays twice.
//! let mut sched = MultiStepLr::new(&mut opt, MultiStepLrConfig { milestones: vec![1, 3, 3], gamma: 0.5 });
//! let mut lrs = vec![];
//! for _ in 0..4 {
//!     opt.zero_grad();
//!     (w.square().sum() * 0.1 + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! assert_eq!(lrs, [1.0, 0.5, 0.5, 0.125]);
//! assert!(b.item() < 0.0);
//! ```

use std::collections::BTreeMap;

use autograd::Float;

use super::{chainable_scheduler, construct, lrs, Base, Chainable};
use crate::error::Result;
use crate::Optimizer;

/// The settings of [`MultiStepLr`]; `new(milestones)` gives PyTorch's default gamma.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLrConfig {
    /// Steps at which to decay (a repeated milestone decays once per repeat).
    pub milestones: Vec<usize>,
    /// Factor of each decay.
    pub gamma: f64,
}

impl MultiStepLrConfig {
    /// `milestones` with PyTorch's default gamma 0.1.
    pub fn new(milestones: Vec<usize>) -> Self {
        MultiStepLrConfig {
            milestones,
            gamma: 0.1,
        }
    }
}

/// Decays the lr by `gamma` at each milestone; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    config: MultiStepLrConfig,
    /// Milestone -> how many times it was given (PyTorch's `Counter`).
    counts: BTreeMap<i64, u32>,
    base: Base,
}

impl MultiStepLr {
    /// Builds the schedule on `opt` and sets its first lr.
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: MultiStepLrConfig) -> Self {
        let mut counts = BTreeMap::new();
        for &m in &config.milestones {
            *counts.entry(m as i64).or_insert(0) += 1;
        }
        let s = MultiStepLr {
            config,
            counts,
            base: Base::new(opt),
        };
        construct(s, opt).expect("MultiStepLR's first step cannot fail")
    }

    /// The settings.
    pub fn config(&self) -> &MultiStepLrConfig {
        &self.config
    }
}

impl Chainable for MultiStepLr {
    const NAME: &'static str = "MultiStepLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, _initial: bool) -> Result<Vec<f64>> {
        let lr = lrs(opt);
        Ok(match self.counts.get(&self.base.last_epoch) {
            None => lr,
            Some(&k) => lr
                .iter()
                .map(|l| l * self.config.gamma.powf(k as f64))
                .collect(),
        })
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        // bisect_right over the sorted milestones: how many are <= last_epoch.
        let passed: u32 = self
            .counts
            .range(..=self.base.last_epoch)
            .map(|(_, &k)| k)
            .sum();
        let g = self.config.gamma.powf(passed as f64);
        Some(self.base.base_lrs.iter().map(|b| b * g).collect())
    }
}

chainable_scheduler!(MultiStepLr);
