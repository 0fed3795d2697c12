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

use autograd::{Float, Tensor};

use crate::error::{OptimError, Result};
use crate::kernel::{c, par_apply, with_slices, Direction, Kernel};
use crate::optimizer::{
    constructors, forward_to_core, BufferSpec, Core, GroupDefaults, ParamGroup,
};
use crate::Optimizer;

const NAME: &str = "RMSprop";
const BUFFERS: &[BufferSpec] = &[
    ("square_avg", true),
    ("momentum_buffer", false),
    ("grad_avg", false),
];

/// The settings of [`RmsProp`]; `Default` gives PyTorch's.
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
pub struct RmsProp<T: Float = f32> {
    config: RmsPropConfig,
    core: Core<T>,
}

impl<T: Float> RmsProp<T> {
    constructors!(RmsProp, RmsPropConfig);

    fn defaults_of(config: &RmsPropConfig) -> GroupDefaults {
        GroupDefaults {
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum: Some(config.momentum),
        }
    }

    fn check(config: &RmsPropConfig) -> impl Fn(&ParamGroup<T>) -> Result<()> {
        let cfg = *config;
        move |g| {
            let m = g.momentum.unwrap_or(0.0);
            let reason = if cfg.eps < 0.0 || cfg.eps.is_nan() {
                format!("invalid epsilon value {} (must be >= 0)", cfg.eps)
            } else if m < 0.0 || m.is_nan() {
                format!("invalid momentum value {m} (must be >= 0)")
            } else if cfg.alpha < 0.0 || cfg.alpha.is_nan() {
                format!("invalid alpha value {} (must be >= 0)", cfg.alpha)
            } else {
                return Ok(());
            };
            Err(OptimError::InvalidConfig { what: NAME, reason })
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

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self) -> Result<()> {
        let cfg = self.config;
        self.core.for_each_grad(|group, p, g, slot| {
            slot.step += 1;
            let momentum = group.momentum.unwrap_or(0.0);
            let s = Scalars {
                dir: Direction::new(cfg.maximize, group.weight_decay),
                alpha: c(cfg.alpha),
                one_minus_alpha: c(1.0 - cfg.alpha),
                lerp_small: (1.0 - cfg.alpha).abs() < 0.5,
                eps: c(cfg.eps),
                momentum: c(momentum),
                neg_lr: c(-group.lr),
            };
            with_slices(p, g, |p, g| {
                let n = p.len();
                slot.ensure(0, n, T::zero());
                if momentum > 0.0 {
                    slot.ensure(1, n, T::zero());
                }
                if cfg.centered {
                    slot.ensure(2, n, T::zero());
                }
                let [Some(sq), buf, ga] = slot.bufs.as_mut_slice() else {
                    unreachable!("RMSprop has three buffers, the first created above")
                };
                let sq = sq.as_mut_slice();
                let buf = buf.as_mut().filter(|_| momentum > 0.0);
                let ga = ga.as_mut().filter(|_| cfg.centered);
                match (ga, buf) {
                    (None, None) => par_apply(p, [sq], g, &Plain(s)),
                    (Some(ga), None) => par_apply(p, [sq, ga.as_mut_slice()], g, &Centered(s)),
                    (None, Some(b)) => par_apply(p, [sq, b.as_mut_slice()], g, &Momentum(s)),
                    (Some(ga), Some(b)) => par_apply(
                        p,
                        [sq, ga.as_mut_slice(), b.as_mut_slice()],
                        g,
                        &CenteredMomentum(s),
                    ),
                }
            });
        })
    }

    forward_to_core!();
}
