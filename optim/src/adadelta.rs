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

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};
use crate::kernel::{c, par_apply, Direction, Kernel};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The settings of [`Adadelta`], and its update rule; `Default` gives PyTorch's.
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
pub type Adadelta<T = f32> = RuleOptimizer<AdadeltaConfig, T>;

impl<T: Float> UpdateRule<T> for AdadeltaConfig {
    const NAME: &'static str = "Adadelta";
    const BUFFERS: &'static [BufferSpec] = &[
        BufferSpec::required("square_avg"),
        BufferSpec::required("acc_delta"),
    ];

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr).weight_decay(self.weight_decay)
    }

    fn check(&self, _: &ParamGroup<T>) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rho) {
            Err(format!(
                "invalid rho value {} (must be in [0, 1])",
                self.rho
            ))
        } else if self.eps < 0.0 || self.eps.is_nan() {
            Err(format!("invalid epsilon value {} (must be >= 0)", self.eps))
        } else {
            Ok(())
        }
    }

    fn update(&self, group: &ParamGroup<T>, p: &mut [T], g: &[T], slot: &mut ParamSlot<T>) {
        let k = AdadeltaElem {
            dir: Direction::new(self.maximize, group.weight_decay),
            rho: c(self.rho),
            one_minus_rho: c(1.0 - self.rho),
            eps: c(self.eps),
            neg_lr: c(-group.lr),
        };
        let [sq, acc] = slot.buffers(["square_avg", "acc_delta"], T::zero());
        par_apply(p, [sq, acc], g, &k);
    }
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
