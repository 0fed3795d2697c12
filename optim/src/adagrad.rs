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

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};
use crate::kernel::{c, par_apply, Direction, Kernel};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The settings of [`Adagrad`], and its update rule; `Default` gives PyTorch's.
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
pub type Adagrad<T = f32> = RuleOptimizer<AdagradConfig, T>;

impl<T: Float> UpdateRule<T> for AdagradConfig {
    const NAME: &'static str = "Adagrad";
    const BUFFERS: &'static [BufferSpec] = &[BufferSpec::required("sum")];

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr).weight_decay(self.weight_decay)
    }

    fn check(&self, _: &ParamGroup<T>) -> Result<(), String> {
        let init = self.initial_accumulator_value;
        if self.lr_decay < 0.0 || self.lr_decay.is_nan() {
            Err(format!("invalid lr_decay {} (must be >= 0)", self.lr_decay))
        } else if init < 0.0 || init.is_nan() {
            Err(format!(
                "invalid initial_accumulator_value {init} (must be >= 0)"
            ))
        } else if self.eps < 0.0 || self.eps.is_nan() {
            Err(format!("invalid epsilon value {} (must be >= 0)", self.eps))
        } else {
            Ok(())
        }
    }

    fn update(&self, group: &ParamGroup<T>, p: &mut [T], g: &[T], slot: &mut ParamSlot<T>) {
        let clr = group.lr / (1.0 + (slot.step() as f64 - 1.0) * self.lr_decay);
        let k = AdagradElem {
            dir: Direction::new(self.maximize, group.weight_decay),
            neg_clr: c(-clr),
            eps: c(self.eps),
        };
        let sum = slot.buffer("sum", c(self.initial_accumulator_value));
        par_apply(p, [sum], g, &k);
    }
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
