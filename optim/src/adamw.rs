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

use autograd::{Float, Tensor};

use crate::adam::{adam_step, check_adam, AdamRule, BUFFERS};
use crate::error::Result;
use crate::optimizer::{constructors, forward_to_core, Core, GroupDefaults, ParamGroup};
use crate::Optimizer;

const NAME: &str = "AdamW";

/// The settings of [`AdamW`]; `Default` gives PyTorch's (weight decay 1e-2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
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
pub struct AdamW<T: Float = f32> {
    config: AdamWConfig,
    core: Core<T>,
}

impl<T: Float> AdamW<T> {
    constructors!(AdamW, AdamWConfig);

    fn defaults_of(config: &AdamWConfig) -> GroupDefaults {
        GroupDefaults {
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum: Some(config.betas.0),
        }
    }

    fn check(config: &AdamWConfig) -> impl Fn(&ParamGroup<T>) -> Result<()> {
        check_adam(NAME, config.betas.1, config.eps)
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self) -> Result<()> {
        let cfg = self.config;
        let rule = AdamRule {
            beta2: cfg.betas.1,
            eps: cfg.eps,
            amsgrad: cfg.amsgrad,
            maximize: cfg.maximize,
            decoupled: true,
        };
        adam_step(&mut self.core, rule)
    }

    forward_to_core!();
}
