//! AdaGrad, as `torch.optim.Adagrad`: per-element steps shrink with the sum
//! of that element's squared gradients.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{Adagrad, AdagradConfig, Optimizer};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let mut opt = Adagrad::new(vec![w.clone(), b.clone()], AdagradConfig { lr: 0.5, ..Default::default() });
//! for _ in 0..2 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum() * 3.0).backward();
//!     opt.step();
//! }
//! // b's gradient is 3 both times: b -= 0.5 * 3 / sqrt(9), then 0.5 * 3 / sqrt(18).
//! let want = 0.5 - 0.5 - 0.5 / 2f32.sqrt();
//! assert!((b.item() - want).abs() < 1e-6);
//! ```
//!
//! Update (PyTorch's, t the parameter's step count): `g += wd * p`,
//! `sum += g²`, `p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)`.

use autograd::{Float, Tensor};

use crate::error::{OptimError, Result};
use crate::kernel::{c, par_apply, with_slices, Direction, Kernel};
use crate::optimizer::{
    constructors, forward_to_core, BufferSpec, Core, GroupDefaults, ParamGroup,
};
use crate::Optimizer;

const NAME: &str = "Adagrad";
const BUFFERS: &[BufferSpec] = &[("sum", true)];

/// The settings of [`Adagrad`]; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (PyTorch's default 1e-2).
    pub lr: f64,
    /// The step shrinks as `lr / (1 + (t - 1) * lr_decay)`.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Starting value of the sum of squares.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// AdaGrad over parameter groups; see the [module docs](self).
pub struct Adagrad<T: Float = f32> {
    config: AdagradConfig,
    core: Core<T>,
}

impl<T: Float> Adagrad<T> {
    constructors!(Adagrad, AdagradConfig);

    fn defaults_of(config: &AdagradConfig) -> GroupDefaults {
        GroupDefaults {
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum: None,
        }
    }

    fn check(config: &AdagradConfig) -> impl Fn(&ParamGroup<T>) -> Result<()> {
        let cfg = *config;
        move |_| {
            let reason = if cfg.lr_decay < 0.0 || cfg.lr_decay.is_nan() {
                format!("invalid lr_decay {} (must be >= 0)", cfg.lr_decay)
            } else if cfg.initial_accumulator_value < 0.0 || cfg.initial_accumulator_value.is_nan()
            {
                format!(
                    "invalid initial_accumulator_value {} (must be >= 0)",
                    cfg.initial_accumulator_value
                )
            } else if cfg.eps < 0.0 || cfg.eps.is_nan() {
                format!("invalid epsilon value {} (must be >= 0)", cfg.eps)
            } else {
                return Ok(());
            };
            Err(OptimError::InvalidConfig { what: NAME, reason })
        }
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self) -> Result<()> {
        let cfg = self.config;
        let init: T = c(cfg.initial_accumulator_value);
        self.core.for_each_grad(|group, p, g, slot| {
            slot.step += 1;
            let clr = group.lr / (1.0 + (slot.step as f64 - 1.0) * cfg.lr_decay);
            let k = AdagradElem {
                dir: Direction::new(cfg.maximize, group.weight_decay),
                neg_clr: c(-clr),
                eps: c(cfg.eps),
            };
            with_slices(p, g, |p, g| {
                slot.ensure(0, p.len(), init);
                let sum = slot.bufs[0].as_mut().expect("created above");
                par_apply(p, [sum.as_mut_slice()], g, &k);
            });
        })
    }

    forward_to_core!();
}

/// The per-step scalars of one parameter's update.
#[derive(Clone, Copy)]
struct AdagradElem<T> {
    dir: Direction<T>,
    neg_clr: T,
    eps: T,
}

impl<T: Float> Kernel<T, 1> for AdagradElem<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [sum]: [&mut [T]; 1], g: &[T]) {
        let k = *self; // the scalars in registers for the whole loop
        for ((p, s), &g) in p.iter_mut().zip(sum.iter_mut()).zip(g) {
            let d = k.dir.of(g, *p);
            *s += d * d;
            *p += k.neg_clr * d / (s.sqrt() + k.eps);
        }
    }
}
