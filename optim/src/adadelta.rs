//! AdaDelta, as `torch.optim.Adadelta`: steps scaled by the ratio of running
//! RMS of past updates to running RMS of gradients.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{Adadelta, AdadeltaConfig, Optimizer};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let mut opt = Adadelta::new(vec![w.clone(), b.clone()], AdadeltaConfig::default());
//! (w.square().sum() + b.sum() * 3.0).backward();
//! opt.step();
//! // First step: delta = sqrt(eps) / sqrt(0.1 g² + eps) * g, about sqrt(10 eps) against g's sign.
//! let step = (1e-6f64).sqrt() / (0.1 * 9.0 + 1e-6f64).sqrt() * 3.0;
//! assert!((b.item() as f64 - (0.5 - step)).abs() < 1e-6);
//! assert!(w.to_vec()[0] < 1.0 && w.to_vec()[1] > -2.0);
//! ```
//!
//! Update (PyTorch's): `g += wd * p`, `sq = rho * sq + (1 - rho) * g²`,
//! `delta = sqrt(acc + eps) / sqrt(sq + eps) * g`,
//! `acc = rho * acc + (1 - rho) * delta²`, `p -= lr * delta`.

use autograd::{Float, Tensor};

use crate::error::{OptimError, Result};
use crate::kernel::{c, par_apply, with_slices, Direction, Kernel};
use crate::optimizer::{
    constructors, forward_to_core, BufferSpec, Core, GroupDefaults, ParamGroup,
};
use crate::Optimizer;

const NAME: &str = "Adadelta";
const BUFFERS: &[BufferSpec] = &[("square_avg", true), ("acc_delta", true)];

/// The settings of [`Adadelta`]; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdadeltaConfig {
    /// Scales delta before it is applied (PyTorch's default 1.0).
    pub lr: f64,
    /// Smoothing constant of the running averages.
    pub rho: f64,
    /// Added inside the square roots for numerical stability.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        AdadeltaConfig {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// AdaDelta over parameter groups; see the [module docs](self).
pub struct Adadelta<T: Float = f32> {
    config: AdadeltaConfig,
    core: Core<T>,
}

impl<T: Float> Adadelta<T> {
    constructors!(Adadelta, AdadeltaConfig);

    fn defaults_of(config: &AdadeltaConfig) -> GroupDefaults {
        GroupDefaults {
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum: None,
        }
    }

    fn check(config: &AdadeltaConfig) -> impl Fn(&ParamGroup<T>) -> Result<()> {
        let cfg = *config;
        move |_| {
            let reason = if !(0.0..=1.0).contains(&cfg.rho) {
                format!("invalid rho value {} (must be in [0, 1])", cfg.rho)
            } else if cfg.eps < 0.0 || cfg.eps.is_nan() {
                format!("invalid epsilon value {} (must be >= 0)", cfg.eps)
            } else {
                return Ok(());
            };
            Err(OptimError::InvalidConfig { what: NAME, reason })
        }
    }
}

impl<T: Float> Optimizer<T> for Adadelta<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self) -> Result<()> {
        let cfg = self.config;
        self.core.for_each_grad(|group, p, g, slot| {
            slot.step += 1;
            let k = AdadeltaElem {
                dir: Direction::new(cfg.maximize, group.weight_decay),
                rho: c(cfg.rho),
                one_minus_rho: c(1.0 - cfg.rho),
                eps: c(cfg.eps),
                neg_lr: c(-group.lr),
            };
            with_slices(p, g, |p, g| {
                let n = p.len();
                slot.ensure(0, n, T::zero());
                slot.ensure(1, n, T::zero());
                let [Some(sq), Some(acc)] = slot.bufs.as_mut_slice() else {
                    unreachable!("Adadelta has two buffers, created above")
                };
                par_apply(p, [sq.as_mut_slice(), acc.as_mut_slice()], g, &k);
            });
        })
    }

    forward_to_core!();
}

/// The per-step scalars of one parameter's update.
#[derive(Clone, Copy)]
struct AdadeltaElem<T> {
    dir: Direction<T>,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
}

impl<T: Float> Kernel<T, 2> for AdadeltaElem<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sq, acc]: [&mut [T]; 2], g: &[T]) {
        let k = *self; // the scalars in registers for the whole loop
        for (((p, sq), acc), &g) in p.iter_mut().zip(sq.iter_mut()).zip(acc.iter_mut()).zip(g) {
            let d = k.dir.of(g, *p);
            *sq = *sq * k.rho + k.one_minus_rho * d * d;
            let std = (*sq + k.eps).sqrt();
            let delta = (*acc + k.eps).sqrt() / std * d;
            *acc = *acc * k.rho + k.one_minus_rho * delta * delta;
            *p += k.neg_lr * delta;
        }
    }
}
