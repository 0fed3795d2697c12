//! AdamW: Adam with decoupled weight decay, as `torch.optim.AdamW`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{AdamW, AdamWConfig, Optimizer};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let config = AdamWConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() };
//! let mut opt = AdamW::new(vec![w.clone(), b.clone()], config);
//! (w.square().sum() + b.sum() * 3.0).backward();
//! opt.step();
//! // First the weights shrink by 1 - lr * wd = 0.95, then Adam's first step moves them by lr.
//! let w1 = w.to_vec();
//! assert!((w1[0] - (0.95 - 0.1)).abs() < 1e-5 && (w1[1] - (-1.9 + 0.1)).abs() < 1e-5);
//! assert!((b.item() - (0.475 - 0.1)).abs() < 1e-5);
//! ```
//!
//! Update: `p *= 1 - lr * wd`, then Adam's update with no L2 term (the decay
//! never enters the moment estimates).

use autograd::Float;

use crate::adam::{adam_update, check_adam, AdamRule, BUFFERS};
use crate::group::{GroupDefaults, ParamGroup};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The settings of [`AdamW`], and its update rule; `Default` gives PyTorch's (weight decay 1e-2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Decoupled weight decay: `p *= 1 - lr * weight_decay` each step.
    pub weight_decay: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// AdamW over parameter groups; see the [module docs](self). A group's
/// `momentum` is its beta1.
pub type AdamW<T = f32> = RuleOptimizer<AdamWConfig, T>;

impl<T: Float> UpdateRule<T> for AdamWConfig {
    const NAME: &'static str = "AdamW";
    const BUFFERS: &'static [BufferSpec] = BUFFERS;

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr)
            .weight_decay(self.weight_decay)
            .momentum(self.betas.0)
    }

    fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
        check_adam(group, self.betas.1, self.eps)
    }

    fn update(&self, group: &ParamGroup<T>, p: &mut [T], g: &[T], slot: &mut ParamSlot<T>) {
        let rule = AdamRule {
            beta2: self.betas.1,
            eps: self.eps,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
            decoupled: true,
        };
        adam_update(group, p, g, slot, rule);
    }
}
