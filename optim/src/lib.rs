//! Optimizers, gradient clipping and learning-rate schedules, as `torch.optim`.
//!
//! Optimizers ([`Sgd`], [`Adam`], [`AdamW`], [`Adagrad`], [`RmsProp`],
//! [`Adadelta`]) update parameters in place from their gradients, over
//! parameter groups with their own learning rate and weight decay. Their
//! update rules and defaults are PyTorch's (checked against PyTorch's
//! trajectories in the tests), and so are the schedulers' lr sequences
//! ([`lr_scheduler`]). Optimizer and scheduler state saves to safetensors
//! files and loads back exactly, so a resumed run continues bit for bit.
//! [`AveragedParams`] keeps an exponential moving average or the running
//! mean (SWA) of the parameters, to evaluate or save in their place.
//!
//! A new optimizer is one [`UpdateRule`]: how one parameter moves given its
//! gradient, its group's settings and its named state buffers.
//! [`RuleOptimizer`] makes it a whole optimizer (groups, per-group settings,
//! `zero_grad`, schedulers, exact save and resume); every optimizer above is
//! one (`Adam` is `RuleOptimizer<AdamConfig>`). The [`rule`] module writes
//! Lion that way.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{clip_grad_norm_, Adam, AdamConfig, GroupSpec, LrScheduler, Optimizer, StepLr, StepLrConfig};
//!
//! // A frozen backbone weight, a fine-tuned one, and a new head at a higher lr.
//! let frozen = Tensor::from_vec(vec![0.3f32, 0.1], [2]);
//! let backbone = Tensor::from_vec(vec![1.0f32, -1.0], [2]).requires_grad_();
//! let head = Tensor::from_vec(vec![0.5f32, 0.5], [2]).requires_grad_();
//! let mut opt = Adam::with_groups(
//!     vec![GroupSpec::new(vec![frozen.clone(), backbone.clone()]).lr(1e-3), GroupSpec::new(vec![head.clone()])],
//!     AdamConfig { lr: 1e-2, ..Default::default() },
//! );
//! let mut sched = StepLr::new(&mut opt, StepLrConfig::new(10));
//! let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
//! let loss_of = || ((&x * &frozen + &x * &backbone) * &head).sum().square();
//! let first = loss_of().item();
//! for _ in 0..20 {
//!     opt.zero_grad();
//!     loss_of().backward();
//!     clip_grad_norm_(&[backbone.clone(), head.clone()], 1.0, 2.0);
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert!(loss_of().item() < first);
//! assert_eq!(frozen.to_vec(), vec![0.3, 0.1]); // requires no grad: never updated
//! assert!((opt.param_groups()[1].lr - 1e-4).abs() < 1e-15); // decayed twice by StepLR
//! ```

#![warn(missing_docs)]

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adamw;
pub mod averaged;
pub mod clip;
pub mod error;
pub mod group;
mod kernel;
pub mod lr_scheduler;
pub mod optimizer;
pub mod rmsprop;
pub mod rule;
pub mod rule_optimizer;
pub mod sgd;
pub mod state;
pub mod state_io;

pub use adadelta::{Adadelta, AdadeltaConfig};
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use averaged::{AveragedConfig, AveragedParams, Averaging};
pub use clip::{clip_grad_norm_, clip_grad_value_, try_clip_grad_norm_, try_clip_grad_value_};
pub use error::{OptimError, Result};
pub use group::{GroupDefaults, GroupSpec, ParamGroup};
pub use lr_scheduler::chained::ChainedScheduler;
pub use lr_scheduler::constant::{ConstantLr, ConstantLrConfig};
pub use lr_scheduler::cosine::{CosineAnnealingLr, CosineAnnealingLrConfig};
pub use lr_scheduler::cosine_warm_restarts::{
    CosineAnnealingWarmRestarts, CosineAnnealingWarmRestartsConfig,
};
pub use lr_scheduler::exponential::{ExponentialLr, ExponentialLrConfig};
pub use lr_scheduler::linear::{LinearLr, LinearLrConfig};
pub use lr_scheduler::multi_step::{MultiStepLr, MultiStepLrConfig};
pub use lr_scheduler::one_cycle::{Anneal, OneCycleLr, OneCycleLrConfig};
pub use lr_scheduler::plateau::{Mode, ReduceLrOnPlateau, ReduceLrOnPlateauConfig, ThresholdMode};
pub use lr_scheduler::sequential::SequentialLr;
pub use lr_scheduler::step::{StepLr, StepLrConfig};
pub use lr_scheduler::LrScheduler;
pub use optimizer::Optimizer;
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use rule::{BufferSpec, ParamSlot, UpdateRule};
pub use rule_optimizer::RuleOptimizer;
pub use sgd::{Sgd, SgdConfig};
pub use state::{GroupState, OptimizerState, ParamState, SchedulerState};
