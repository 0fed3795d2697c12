//! Stochastic gradient descent with momentum, dampening, Nesterov momentum
//! and L2 weight decay, as `torch.optim.SGD`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{Optimizer, Sgd, SgdConfig};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let config = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], config);
//! for _ in 0..2 {
//!     opt.zero_grad();
//!     let loss = w.square().sum() + b.sum() * 3.0; // dloss/db = 3
//!     loss.backward();
//!     opt.step();
//! }
//! // Step 1: buf = 3, b = 0.5 - 0.1 * 3 = 0.2. Step 2: buf = 0.9 * 3 + 3 = 5.7, b = 0.2 - 0.57.
//! assert!((b.item() - -0.37).abs() < 1e-6);
//! // w = 1: g = 2, w = 0.8; g = 1.6, buf = 0.9 * 2 + 1.6 = 3.4, w = 0.8 - 0.34.
//! assert!((w.to_vec()[0] - 0.46).abs() < 1e-6);
//! ```
//!
//! Update (PyTorch's): `g += wd * p`; with momentum, `buf = g` on the first
//! step and `buf = momentum * buf + (1 - dampening) * g` after; Nesterov uses
//! `g + momentum * buf`, plain momentum `buf`; then `p -= lr * g`.

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};
use crate::kernel::{c, par_apply, Direction, Kernel};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The settings of [`Sgd`], and its update rule; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (PyTorch's default 1e-3).
    pub lr: f64,
    /// Momentum factor (0: none).
    pub momentum: f64,
    /// Dampening of the momentum's new gradient.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

/// SGD over parameter groups; see the [module docs](self).
pub type Sgd<T = f32> = RuleOptimizer<SgdConfig, T>;

impl<T: Float> UpdateRule<T> for SgdConfig {
    const NAME: &'static str = "SGD";
    const BUFFERS: &'static [BufferSpec] = &[BufferSpec::optional("momentum_buffer")];

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr)
            .weight_decay(self.weight_decay)
            .momentum(self.momentum)
    }

    fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
        let m = group.momentum.unwrap_or(0.0);
        if m < 0.0 || m.is_nan() {
            Err(format!("invalid momentum {m} (must be >= 0)"))
        } else if self.nesterov && (m <= 0.0 || self.dampening != 0.0) {
            Err("Nesterov momentum requires a momentum and zero dampening".to_string())
        } else {
            Ok(())
        }
    }

    fn update(&self, group: &ParamGroup<T>, p: &mut [T], g: &[T], slot: &mut ParamSlot<T>) {
        let momentum = group.momentum.unwrap_or(0.0);
        let dir = Direction::new(self.maximize, group.weight_decay);
        let neg_lr: T = c(-group.lr);
        if momentum == 0.0 {
            return par_apply(p, [], g, &Plain { dir, neg_lr });
        }
        // PyTorch's first momentum buffer is the gradient itself (no dampening).
        let first = !slot.has("momentum_buffer");
        let buf = slot.buffer("momentum_buffer", T::zero());
        let k = WithMomentum {
            dir,
            momentum: c(momentum),
            damp1: c(1.0 - self.dampening),
            neg_lr,
            first,
            nesterov: self.nesterov,
        };
        par_apply(p, [buf], g, &k);
    }
}

/// Without momentum: `p -= lr * d`.
#[derive(Clone, Copy)]
struct Plain<T> {
    dir: Direction<T>,
    neg_lr: T,
}

impl<T: Float> Kernel<T, 0> for Plain<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], _: [&mut [T]; 0], g: &[T]) {
        let k = *self; // the scalars in registers for the whole loop
        for (p, &g) in p.iter_mut().zip(g) {
            *p += k.neg_lr * k.dir.of(g, *p);
        }
    }
}

/// With momentum (and dampening, or Nesterov).
#[derive(Clone, Copy)]
struct WithMomentum<T> {
    dir: Direction<T>,
    momentum: T,
    damp1: T,
    neg_lr: T,
    first: bool,
    nesterov: bool,
}

impl<T: Float> Kernel<T, 1> for WithMomentum<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [buf]: [&mut [T]; 1], g: &[T]) {
        let k = *self;
        for ((p, b), &g) in p.iter_mut().zip(buf.iter_mut()).zip(g) {
            let d = k.dir.of(g, *p);
            let nb = if k.first {
                d
            } else {
                *b * k.momentum + k.damp1 * d
            };
            *b = nb;
            let s = if k.nesterov { d + k.momentum * nb } else { nb };
            *p += k.neg_lr * s;
        }
    }
}
