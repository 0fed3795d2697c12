//! RMSprop (optionally centered, with momentum), as `torch.optim.RMSprop`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{Optimizer, RmsProp, RmsPropConfig};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let mut opt = RmsProp::new(vec![w.clone(), b.clone()], RmsPropConfig::default());
//! (w.square().sum() + b.sum() * 3.0).backward();
//! opt.step();
//! // First step: square_avg = 0.01 g², so every parameter moves by lr / sqrt(0.01) = 0.1.
//! let w1 = w.to_vec();
//! assert!((w1[0] - 0.9).abs() < 1e-6 && (w1[1] + 1.9).abs() < 1e-6);
//! assert!((b.item() - 0.4).abs() < 1e-6);
//! ```
//!
//! Update (PyTorch's): `g += wd * p`, `sq = alpha * sq + (1 - alpha) * g²`;
//! centered: `ga = lerp(ga, g, 1 - alpha)`, `avg = sqrt(sq - ga²) + eps`,
//! else `avg = sqrt(sq) + eps`; with momentum `buf = momentum * buf + g / avg`,
//! `p -= lr * buf`, else `p -= lr * g / avg`.

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};
use crate::kernel::{c, par_apply, Direction, Kernel};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The settings of [`RmsProp`], and its update rule; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (PyTorch's default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the running averages.
    pub alpha: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor (0: none).
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the second moment.
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop over parameter groups; see the [module docs](self).
pub type RmsProp<T = f32> = RuleOptimizer<RmsPropConfig, T>;

impl<T: Float> UpdateRule<T> for RmsPropConfig {
    const NAME: &'static str = "RMSprop";
    const BUFFERS: &'static [BufferSpec] = &[
        BufferSpec::required("square_avg"),
        BufferSpec::optional("momentum_buffer"),
        BufferSpec::optional("grad_avg"),
    ];

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr)
            .weight_decay(self.weight_decay)
            .momentum(self.momentum)
    }

    fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
        let m = group.momentum.unwrap_or(0.0);
        if self.eps < 0.0 || self.eps.is_nan() {
            Err(format!("invalid epsilon value {} (must be >= 0)", self.eps))
        } else if m < 0.0 || m.is_nan() {
            Err(format!("invalid momentum value {m} (must be >= 0)"))
        } else if self.alpha < 0.0 || self.alpha.is_nan() {
            Err(format!("invalid alpha value {} (must be >= 0)", self.alpha))
        } else {
            Ok(())
        }
    }

    fn update(&self, group: &ParamGroup<T>, p: &mut [T], g: &[T], slot: &mut ParamSlot<T>) {
        let momentum = group.momentum.unwrap_or(0.0);
        let s = Scalars {
            dir: Direction::new(self.maximize, group.weight_decay),
            alpha: c(self.alpha),
            one_minus_alpha: c(1.0 - self.alpha),
            lerp_small: (1.0 - self.alpha).abs() < 0.5,
            eps: c(self.eps),
            momentum: c(momentum),
            neg_lr: c(-group.lr),
        };
        let z = T::zero();
        match (self.centered, momentum > 0.0) {
            (false, false) => {
                let [sq] = slot.buffers(["square_avg"], z);
                par_apply(p, [sq], g, &Plain(s));
            }
            (true, false) => {
                let [sq, ga] = slot.buffers(["square_avg", "grad_avg"], z);
                par_apply(p, [sq, ga], g, &Centered(s));
            }
            (false, true) => {
                let [sq, b] = slot.buffers(["square_avg", "momentum_buffer"], z);
                par_apply(p, [sq, b], g, &Momentum(s));
            }
            (true, true) => {
                let names = ["square_avg", "grad_avg", "momentum_buffer"];
                let [sq, ga, b] = slot.buffers(names, z);
                par_apply(p, [sq, ga, b], g, &CenteredMomentum(s));
            }
        }
    }
}

/// The per-step scalars of one parameter.
#[derive(Clone, Copy)]
struct Scalars<T> {
    dir: Direction<T>,
    alpha: T,
    one_minus_alpha: T,
    /// PyTorch's lerp formula depends on which side of 0.5 the weight is.
    lerp_small: bool,
    eps: T,
    momentum: T,
    neg_lr: T,
}

impl<T: Float> Scalars<T> {
    /// One element's update; `ga` (centered) and `buf` (momentum) when in use.
    #[inline(always)]
    fn update(self, p: &mut T, sq: &mut T, ga: Option<&mut T>, buf: Option<&mut T>, g: T) {
        let d = self.dir.of(g, *p);
        *sq = *sq * self.alpha + self.one_minus_alpha * d * d;
        let avg = match ga {
            Some(ga) => {
                let w = self.one_minus_alpha;
                *ga = if self.lerp_small {
                    *ga + w * (d - *ga)
                } else {
                    d - (d - *ga) * (T::one() - w)
                };
                (*sq + -*ga * *ga).sqrt()
            }
            None => sq.sqrt(),
        } + self.eps;
        match buf {
            Some(b) => {
                *b = *b * self.momentum + d / avg;
                *p += self.neg_lr * *b;
            }
            None => *p += self.neg_lr * d / avg,
        }
    }
}

/// The kernels: plain, centered, with momentum, both.
#[derive(Clone, Copy)]
struct Plain<T>(Scalars<T>);
#[derive(Clone, Copy)]
struct Centered<T>(Scalars<T>);
#[derive(Clone, Copy)]
struct Momentum<T>(Scalars<T>);
#[derive(Clone, Copy)]
struct CenteredMomentum<T>(Scalars<T>);

impl<T: Float> Kernel<T, 1> for Plain<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sq]: [&mut [T]; 1], g: &[T]) {
        let s = self.0; // the scalars in registers for the whole loop
        for ((p, sq), &g) in p.iter_mut().zip(sq.iter_mut()).zip(g) {
            s.update(p, sq, None, None, g);
        }
    }
}

impl<T: Float> Kernel<T, 2> for Centered<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sq, ga]: [&mut [T]; 2], g: &[T]) {
        let s = self.0;
        for (((p, sq), ga), &g) in p.iter_mut().zip(sq.iter_mut()).zip(ga.iter_mut()).zip(g) {
            s.update(p, sq, Some(ga), None, g);
        }
    }
}

impl<T: Float> Kernel<T, 2> for Momentum<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sq, b]: [&mut [T]; 2], g: &[T]) {
        let s = self.0;
        for (((p, sq), b), &g) in p.iter_mut().zip(sq.iter_mut()).zip(b.iter_mut()).zip(g) {
            s.update(p, sq, None, Some(b), g);
        }
    }
}

impl<T: Float> Kernel<T, 3> for CenteredMomentum<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sq, ga, b]: [&mut [T]; 3], g: &[T]) {
        let s = self.0;
        let it = p
            .iter_mut()
            .zip(sq.iter_mut())
            .zip(ga.iter_mut())
            .zip(b.iter_mut());
        for ((((p, sq), ga), b), &g) in it.zip(g) {
            s.update(p, sq, Some(ga), Some(b), g);
        }
    }
}
