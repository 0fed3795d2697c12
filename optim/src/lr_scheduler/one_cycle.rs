//! OneCycleLR: the 1cycle policy, as `torch.optim.lr_scheduler.OneCycleLR`.
//! The lr rises from `max_lr / div_factor` to `max_lr` over the first
//! `pct_start` of the steps, then anneals to `initial / final_div_factor`;
//! momentum (Adam's beta1) moves the opposite way. Step it once per batch.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{LrScheduler, OneCycleLr, OneCycleLrConfig, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
//! let mut sched = OneCycleLr::new(&mut opt, OneCycleLrConfig::new(vec![1.0], 10));
//! assert!((opt.param_groups()[0].lr - 1.0 / 25.0).abs() < 1e-12);   // max_lr / div_factor
//! assert_eq!(opt.param_groups()[0].momentum, Some(0.95));           // max_momentum
//! let mut lrs = vec![];
//! for _ in 0..10 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! assert!((lrs[2] - 1.0).abs() < 1e-12);                             // the peak at step 0.3 * 10 - 1
//! assert!((lrs[9] - 1.0 / 25.0 / 1e4).abs() < 1e-15);                // the last step's
//! assert!(sched.try_step(&mut opt).is_err());                        // past total_steps
//! assert!(b.item() < 0.0);
//! ```

use std::f64::consts::PI;

use autograd::Float;

use super::{chainable_scheduler, construct, invalid, Base, Chainable};
use crate::error::{ok, OptimError, Result};
use crate::Optimizer;

/// How the lr moves between two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Half a cosine (PyTorch's default `'cos'`).
    Cos,
    /// A straight line (`'linear'`).
    Linear,
}

impl Anneal {
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// The settings of [`OneCycleLr`]; `new(max_lr, total_steps)` gives PyTorch's defaults for the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct OneCycleLrConfig {
    /// The peak lr: one value for every group, or one per group.
    pub max_lr: Vec<f64>,
    /// Steps in the cycle (PyTorch's `total_steps`, or `epochs * steps_per_epoch`).
    pub total_steps: usize,
    /// Fraction of the steps spent rising.
    pub pct_start: f64,
    /// How the lr moves between its targets (default [`Anneal::Cos`]).
    pub anneal_strategy: Anneal,
    /// Move momentum (beta1) inversely to the lr.
    pub cycle_momentum: bool,
    /// The momentum at the lr's peak.
    pub base_momentum: f64,
    /// The momentum at the lr's low points.
    pub max_momentum: f64,
    /// The first lr is `max_lr / div_factor`.
    pub div_factor: f64,
    /// The last lr is the first divided by this.
    pub final_div_factor: f64,
    /// Rise, fall back to the first lr, then anneal (fast.ai's schedule) instead of rise then anneal.
    pub three_phase: bool,
}

impl OneCycleLrConfig {
    /// `max_lr` (one value or one per group) and `total_steps`, with PyTorch's defaults:
    /// pct_start 0.3, cosine annealing, momentum cycled 0.85..0.95, div_factor 25,
    /// final_div_factor 1e4, two phases.
    pub fn new(max_lr: Vec<f64>, total_steps: usize) -> Self {
        OneCycleLrConfig {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

/// Which of a group's anchor values a phase starts or ends at.
#[derive(Clone, Copy, Debug)]
enum Lr {
    Initial,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug)]
enum Momentum {
    Max,
    Base,
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    end_step: f64,
    lr: (Lr, Lr),
    momentum: (Momentum, Momentum),
}

/// The 1cycle policy; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    config: OneCycleLrConfig,
    phases: Vec<Phase>,
    /// Per group: the first, peak and last lr.
    initial_lrs: Vec<f64>,
    max_lrs: Vec<f64>,
    min_lrs: Vec<f64>,
    base: Base,
}

impl OneCycleLr {
    /// Builds the schedule on `opt` and sets its first lr (and momentum).
    ///
    /// # Panics
    /// On an invalid config; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new<T: Float>(opt: &mut dyn Optimizer<T>, config: OneCycleLrConfig) -> Self {
        ok(Self::try_new(opt, config))
    }

    /// Builds the schedule on `opt` and sets its first lr (and momentum).
    /// Fails on an invalid config, or with `cycle_momentum` on an optimizer
    /// without momentum (AdaGrad, AdaDelta).
    pub fn try_new<T: Float>(opt: &mut dyn Optimizer<T>, config: OneCycleLrConfig) -> Result<Self> {
        const NAME: &str = "OneCycleLR";
        let n = config.total_steps;
        if n == 0 {
            return Err(invalid(NAME, "expected positive integer total_steps"));
        }
        if !(0.0..=1.0).contains(&config.pct_start) {
            return Err(invalid(
                NAME,
                format!(
                    "expected pct_start between 0 and 1, got {}",
                    config.pct_start
                ),
            ));
        }
        let groups = opt.param_groups().len();
        let max_lrs = match config.max_lr.len() {
            1 => vec![config.max_lr[0]; groups],
            k if k == groups => config.max_lr.clone(),
            k => {
                return Err(invalid(
                    NAME,
                    format!("max_lr has {k} values, the optimizer has {groups} parameter groups"),
                ))
            }
        };
        if config.cycle_momentum && opt.param_groups().iter().any(|g| g.momentum.is_none()) {
            return Err(invalid(
                NAME,
                "optimizer must support momentum or beta1 with `cycle_momentum` enabled",
            ));
        }
        let (pct, total) = (config.pct_start, n as f64);
        let phase = |end_step, lr, momentum| Phase {
            end_step,
            lr,
            momentum,
        };
        let phases = if config.three_phase {
            vec![
                phase(
                    pct * total - 1.0,
                    (Lr::Initial, Lr::Max),
                    (Momentum::Max, Momentum::Base),
                ),
                phase(
                    2.0 * pct * total - 2.0,
                    (Lr::Max, Lr::Initial),
                    (Momentum::Base, Momentum::Max),
                ),
                phase(
                    total - 1.0,
                    (Lr::Initial, Lr::Min),
                    (Momentum::Max, Momentum::Max),
                ),
            ]
        } else {
            vec![
                phase(
                    pct * total - 1.0,
                    (Lr::Initial, Lr::Max),
                    (Momentum::Max, Momentum::Base),
                ),
                phase(
                    total - 1.0,
                    (Lr::Max, Lr::Min),
                    (Momentum::Base, Momentum::Max),
                ),
            ]
        };
        let initial_lrs: Vec<f64> = max_lrs.iter().map(|m| m / config.div_factor).collect();
        let min_lrs = initial_lrs
            .iter()
            .map(|i| i / config.final_div_factor)
            .collect();
        // PyTorch overwrites `initial_lr` (other schedulers only set it when unset).
        for (g, &i) in opt.param_groups_mut().iter_mut().zip(&initial_lrs) {
            g.initial_lr = Some(i);
            if config.cycle_momentum {
                g.momentum = Some(config.max_momentum);
            }
        }
        let s = OneCycleLr {
            config,
            phases,
            initial_lrs,
            max_lrs,
            min_lrs,
            base: Base::new(opt),
        };
        construct(s, opt)
    }

    /// The settings.
    pub fn config(&self) -> &OneCycleLrConfig {
        &self.config
    }
}

impl Chainable for OneCycleLr {
    const NAME: &'static str = "OneCycleLR";

    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn get_lr<T: Float>(&mut self, opt: &mut dyn Optimizer<T>, _initial: bool) -> Result<Vec<f64>> {
        let step = self.base.last_epoch;
        if step > self.config.total_steps as i64 {
            return Err(OptimError::ScheduleEnded {
                what: Self::NAME,
                step,
                total: self.config.total_steps,
            });
        }
        let cfg = &self.config;
        let mut lrs = Vec::with_capacity(self.initial_lrs.len());
        for (i, g) in opt.param_groups_mut().iter_mut().enumerate() {
            let lr_of = |w: Lr| match w {
                Lr::Initial => self.initial_lrs[i],
                Lr::Max => self.max_lrs[i],
                Lr::Min => self.min_lrs[i],
            };
            let m_of = |w: Momentum| match w {
                Momentum::Max => cfg.max_momentum,
                Momentum::Base => cfg.base_momentum,
            };
            let mut start_step = 0.0;
            for (k, ph) in self.phases.iter().enumerate() {
                if step as f64 <= ph.end_step || k == self.phases.len() - 1 {
                    let pct = (step as f64 - start_step) / (ph.end_step - start_step);
                    lrs.push(cfg.anneal_strategy.at(lr_of(ph.lr.0), lr_of(ph.lr.1), pct));
                    if cfg.cycle_momentum {
                        g.momentum = Some(cfg.anneal_strategy.at(
                            m_of(ph.momentum.0),
                            m_of(ph.momentum.1),
                            pct,
                        ));
                    }
                    break;
                }
                start_step = ph.end_step;
            }
        }
        Ok(lrs)
    }
}

chainable_scheduler!(OneCycleLr);
