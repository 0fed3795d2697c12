//! Adam (and AMSGrad), as `torch.optim.Adam`; its update is shared with
//! [`AdamW`](crate::AdamW).
//!
//! ```
//! use autograd::Tensor;
//! use optim::{Adam, AdamConfig, Optimizer};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! let mut opt = Adam::new(vec![w.clone(), b.clone()], AdamConfig { lr: 0.1, ..Default::default() });
//! let loss = (&w * 0.1).tanh().sum() + b.square().sum();
//! loss.backward();
//! opt.step();
//! // Adam's first step moves every parameter by about lr against its gradient's sign
//! // (tanh is increasing: both of w's gradients are positive).
//! let w1 = w.to_vec();
//! assert!((w1[0] - 0.9).abs() < 1e-5 && (w1[1] + 2.1).abs() < 1e-5);
//! assert!((b.item() - 0.4).abs() < 1e-5);
//! ```
//!
//! Update (PyTorch's, per parameter with its own step count t):
//! `g += wd * p` (L2; AdamW instead scales `p *= 1 - lr * wd` first),
//! `m = lerp(m, g, 1 - beta1)`, `v = beta2 * v + (1 - beta2) * g²`,
//! with AMSGrad `v_max = max(v_max, v)` replaces v below,
//! `p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`.

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};
use crate::kernel::{c, par_apply, Direction, Kernel};
use crate::rule::{BufferSpec, ParamSlot, UpdateRule};
use crate::RuleOptimizer;

/// The buffers of Adam and AdamW.
pub(crate) const BUFFERS: &[BufferSpec] = &[
    BufferSpec::required("exp_avg"),
    BufferSpec::required("exp_avg_sq"),
    BufferSpec::optional("max_exp_avg_sq"),
];

/// The settings of [`Adam`], and its update rule; `Default` gives PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// L2 penalty added to the gradient (coupled; see [`AdamW`](crate::AdamW) for decoupled).
    pub weight_decay: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// Adam over parameter groups; see the [module docs](self). A group's
/// `momentum` is its beta1.
pub type Adam<T = f32> = RuleOptimizer<AdamConfig, T>;

impl<T: Float> UpdateRule<T> for AdamConfig {
    const NAME: &'static str = "Adam";
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
            decoupled: false,
        };
        adam_update(group, p, g, slot, rule);
    }
}

/// The checks of Adam and AdamW: betas in [0, 1), eps >= 0.
pub(crate) fn check_adam<T: Float>(g: &ParamGroup<T>, beta2: f64, eps: f64) -> Result<(), String> {
    let beta1 = g.momentum.unwrap_or(0.0);
    if !(0.0..1.0).contains(&beta1) {
        Err(format!(
            "invalid beta parameter at index 0: {beta1} (must be in [0, 1))"
        ))
    } else if !(0.0..1.0).contains(&beta2) {
        Err(format!(
            "invalid beta parameter at index 1: {beta2} (must be in [0, 1))"
        ))
    } else if eps < 0.0 || eps.is_nan() {
        Err(format!("invalid epsilon value {eps} (must be >= 0)"))
    } else {
        Ok(())
    }
}

/// What Adam and AdamW share beyond the per-group settings.
#[derive(Clone, Copy)]
pub(crate) struct AdamRule {
    pub beta2: f64,
    pub eps: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// AdamW: decay the weights directly instead of adding to the gradient.
    pub decoupled: bool,
}

/// One Adam or AdamW update of one parameter.
pub(crate) fn adam_update<T: Float>(
    group: &ParamGroup<T>,
    p: &mut [T],
    g: &[T],
    slot: &mut ParamSlot<T>,
    rule: AdamRule,
) {
    let (lr, beta1, beta2) = (group.lr, group.momentum.unwrap_or(0.9), rule.beta2);
    // The scalars in f64 with Python's operations, as PyTorch computes them.
    let t = slot.step() as f64;
    let bias_correction1 = 1.0 - beta1.powf(t);
    let bias_correction2 = 1.0 - beta2.powf(t);
    let step_size = lr / bias_correction1;
    let wd = group.weight_decay;
    let k = AdamElem {
        shrink: wd != 0.0 && rule.decoupled,
        shrink_by: c(1.0 - lr * wd),
        dir: Direction::new(rule.maximize, if rule.decoupled { 0.0 } else { wd }),
        w1: c(1.0 - beta1),
        // PyTorch's lerp: the formula depends on which side of 0.5 the weight is.
        lerp_small: (1.0 - beta1).abs() < 0.5,
        beta2: c(beta2),
        one_minus_beta2: c(1.0 - beta2),
        bc2_sqrt: c(bias_correction2.powf(0.5)),
        eps: c(rule.eps),
        neg_step: c(-step_size),
    };
    let zero = T::zero();
    if rule.amsgrad {
        let [m, v, vmax] = slot.buffers(["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], zero);
        par_apply(p, [m, v, vmax], g, &k);
    } else {
        let [m, v] = slot.buffers(["exp_avg", "exp_avg_sq"], zero);
        par_apply(p, [m, v], g, &k);
    }
}

/// The per-step scalars of one parameter's Adam update.
#[derive(Clone, Copy)]
struct AdamElem<T> {
    /// AdamW: `p *= shrink_by` first.
    shrink: bool,
    shrink_by: T,
    dir: Direction<T>,
    w1: T,
    lerp_small: bool,
    beta2: T,
    one_minus_beta2: T,
    bc2_sqrt: T,
    eps: T,
    neg_step: T,
}

impl<T: Float> AdamElem<T> {
    /// Moments and the parameter's new value, for one element.
    #[inline(always)]
    fn update(self, p: &mut T, m: &mut T, v: &mut T, vmax: Option<&mut T>, g: T) {
        if self.shrink {
            *p *= self.shrink_by;
        }
        let d = self.dir.of(g, *p);
        let w = self.w1;
        *m = if self.lerp_small {
            *m + w * (d - *m)
        } else {
            d - (d - *m) * (T::one() - w)
        };
        *v = *v * self.beta2 + self.one_minus_beta2 * d * d;
        let second = match vmax {
            Some(x) => {
                *x = (*x).max(*v);
                *x
            }
            None => *v,
        };
        let denom = second.sqrt() / self.bc2_sqrt + self.eps;
        *p += self.neg_step * *m / denom;
    }
}

impl<T: Float> Kernel<T, 2> for AdamElem<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [m, v]: [&mut [T]; 2], g: &[T]) {
        let k = *self; // the scalars in registers for the whole loop
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            k.update(p, m, v, None, g);
        }
    }
}

/// AMSGrad: with the running maximum of the second moment.
impl<T: Float> Kernel<T, 3> for AdamElem<T> {
    #[inline(always)]
    fn run(&self, p: &mut [T], [m, v, x]: [&mut [T]; 3], g: &[T]) {
        let k = *self;
        let it = p
            .iter_mut()
            .zip(m.iter_mut())
            .zip(v.iter_mut())
            .zip(x.iter_mut());
        for ((((p, m), v), x), &g) in it.zip(g) {
            k.update(p, m, v, Some(x), g);
        }
    }
}
