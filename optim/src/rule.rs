//! A new optimizer is one per-parameter update rule: an [`UpdateRule`] says
//! how one parameter moves given its gradient, its group's settings and its
//! state buffers ([`ParamSlot`]). [`RuleOptimizer`](crate::RuleOptimizer)
//! does the rest: parameter groups with their own lr, weight decay, momentum
//! and rule-specific settings, skipping parameters without a gradient,
//! `zero_grad`, the [`Optimizer`](crate::Optimizer) trait the LR schedulers
//! drive, and saving and loading the state exactly. The built-in optimizers
//! are such rules (`Adam` is `RuleOptimizer<AdamConfig>`).
//!
//! Lion (Chen et al. 2023) in full, with a scheduler and a save and resume
//! that continues bit for bit:
//!
//! ```
//! use std::path::Path;
//! use autograd::{Float, Tensor};
//! use optim::{
//!     BufferSpec, GroupDefaults, GroupSpec, LrScheduler, Optimizer, OptimizerState, ParamGroup, ParamSlot,
//!     RuleOptimizer, SchedulerState, StepLr, StepLrConfig, UpdateRule,
//! };
//!
//! /// `c = β1·m + (1 − β1)·g; p −= lr·(sign(c) + wd·p); m = β2·m + (1 − β2)·g`.
//! #[derive(Clone, Copy, Debug)]
//! struct Lion {
//!     lr: f64,
//!     betas: (f64, f64),
//!     weight_decay: f64,
//! }
//!
//! impl Default for Lion {
//!     fn default() -> Self {
//!         Lion { lr: 1e-4, betas: (0.9, 0.99), weight_decay: 0.0 }
//!     }
//! }
//!
//! impl<T: Float> UpdateRule<T> for Lion {
//!     const NAME: &'static str = "Lion";
//!     const BUFFERS: &'static [BufferSpec] = &[BufferSpec::required("exp_avg")];
//!
//!     fn defaults(&self) -> GroupDefaults {
//!         // beta1 is the momentum (a scheduler may cycle it), beta2 a setting of Lion's own.
//!         GroupDefaults::new(self.lr)
//!             .weight_decay(self.weight_decay)
//!             .momentum(self.betas.0)
//!             .setting("beta2", self.betas.1)
//!     }
//!
//!     fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
//!         let betas = [group.momentum.unwrap_or(0.0), group.setting("beta2")];
//!         match betas.iter().all(|b| (0.0..1.0).contains(b)) {
//!             true => Ok(()),
//!             false => Err(format!("betas {betas:?} must be in [0, 1)")),
//!         }
//!     }
//!
//!     fn update(&self, group: &ParamGroup<T>, param: &mut [T], grad: &[T], state: &mut ParamSlot<T>) {
//!         let (lr, wd) = (T::of(group.lr), T::of(group.weight_decay));
//!         let b1 = T::of(group.momentum.expect("Lion has a momentum"));
//!         let b2 = T::of(group.setting("beta2"));
//!         let m = state.buffer("exp_avg", T::zero());
//!         for ((p, m), &g) in param.iter_mut().zip(m).zip(grad) {
//!             let c = b1 * *m + (T::one() - b1) * g;
//!             let sign = if c > T::zero() { T::one() } else if c < T::zero() { -T::one() } else { T::zero() };
//!             *p -= lr * (sign + wd * *p);
//!             *m = b2 * *m + (T::one() - b2) * g;
//!         }
//!     }
//! }
//!
//! // Two groups (the second with its own lr and beta2), halving the lr every 3 steps.
//! let build = |w: &Tensor, b: &Tensor| {
//!     let groups = vec![
//!         GroupSpec::new(vec![w.clone()]),
//!         GroupSpec::new(vec![b.clone()]).lr(0.02).set("beta2", 0.9),
//!     ];
//!     let mut opt = RuleOptimizer::with_groups(groups, Lion { lr: 0.05, ..Default::default() });
//!     let sched = StepLr::new(&mut opt, StepLrConfig { step_size: 3, gamma: 0.5 });
//!     (opt, sched)
//! };
//! let train = |w: &Tensor, b: &Tensor, opt: &mut RuleOptimizer<Lion>, sched: &mut StepLr, n| {
//!     for _ in 0..n {
//!         opt.zero_grad();
//!         ((w * b).tanh().sum() + w.square().sum()).backward();
//!         opt.step();
//!         sched.step(opt);
//!     }
//! };
//! let leaf = |v: Vec<f32>| Tensor::from_vec(v.clone(), [v.len()]).requires_grad_();
//! let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
//! let (w0, b0) = (vec![1.0, -2.0, 0.5], vec![0.1, -0.3, 0.7]);
//!
//! // Ten steps in one go.
//! let (w, b) = (leaf(w0.clone()), leaf(b0.clone()));
//! let (mut opt, mut sched) = build(&w, &b);
//! train(&w, &b, &mut opt, &mut sched, 10);
//! assert_eq!(opt.param_groups()[0].lr, 0.05 / 8.0);
//!
//! // Four steps; the state through bytes (what `save` writes) into a fresh
//! // optimizer and scheduler over copies of the parameters; six more steps.
//! let (w1, b1) = (leaf(w0), leaf(b0));
//! let (mut opt1, mut sched1) = build(&w1, &b1);
//! train(&w1, &b1, &mut opt1, &mut sched1, 4);
//! let (opt_bytes, sched_bytes) = (opt1.state_dict().to_bytes(), sched1.state_dict().to_bytes());
//! let (w2, b2) = (leaf(w1.to_vec()), leaf(b1.to_vec()));
//! let (mut opt2, mut sched2) = build(&w2, &b2);
//! let memory = Path::new("<memory>");
//! opt2.load_state_dict(&OptimizerState::from_bytes(&opt_bytes, memory)?)?;
//! sched2.load_state_dict(&SchedulerState::from_bytes(&sched_bytes, memory)?)?;
//! train(&w2, &b2, &mut opt2, &mut sched2, 6);
//! assert_eq!((bits(&w2), bits(&b2)), (bits(&w), bits(&b)));
//! assert_ne!(bits(&w2), bits(&w1), "the resumed run moved");
//! # Ok::<(), optim::OptimError>(())
//! ```

use autograd::Float;

use crate::group::{GroupDefaults, ParamGroup};

/// How one parameter is updated: the whole of a new optimizer.
///
/// `Self` holds the settings shared by all groups (the built-in rules are
/// their configs: `AdamConfig`, `SgdConfig`, ...); [`defaults`](Self::defaults)
/// gives the per-group ones. [`RuleOptimizer`](crate::RuleOptimizer) calls
/// [`update`](Self::update) once per step for every parameter that has a
/// gradient and requires grad, after checking every gradient's shape.
pub trait UpdateRule<T: Float = f32> {
    /// The optimizer's name in messages and saved states: a state loads only
    /// into an optimizer of the same name.
    const NAME: &'static str;

    /// The per-parameter state buffers, each of the parameter's size, by name
    /// (the names in saved states). A rule creates them when it first needs
    /// them ([`ParamSlot::buffer`]).
    const BUFFERS: &'static [BufferSpec];

    /// The settings of groups that do not give their own: learning rate,
    /// weight decay, momentum (if the rule has one) and the rule's own named
    /// settings.
    fn defaults(&self) -> GroupDefaults;

    /// Checks one group's settings (the core has already refused a negative
    /// or NaN lr or weight decay); `Err` says what is wrong. Called on
    /// construction (also for the defaults alone), on
    /// [`add_param_group`](crate::Optimizer::add_param_group) and on loading
    /// a state.
    fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
        let _ = group;
        Ok(())
    }

    /// One update of one parameter, in place: `param` and `grad` are its
    /// values and its gradient's, row-major and of equal length, `state` its
    /// buffers and step count (already counting this step).
    fn update(&self, group: &ParamGroup<T>, param: &mut [T], grad: &[T], state: &mut ParamSlot<T>);
}

/// A state buffer of an [`UpdateRule`]: its name, and whether a parameter
/// that has stepped must have it (a saved state lacking it does not load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSpec {
    /// The name, unique among the rule's buffers (`"exp_avg"`, ...).
    pub name: &'static str,
    /// Whether every stepped parameter has it.
    pub required: bool,
}

impl BufferSpec {
    /// A buffer every stepped parameter has (Adam's `exp_avg`).
    pub const fn required(name: &'static str) -> Self {
        BufferSpec {
            name,
            required: true,
        }
    }

    /// A buffer only some settings create (AMSGrad's `max_exp_avg_sq`).
    pub const fn optional(name: &'static str) -> Self {
        BufferSpec {
            name,
            required: false,
        }
    }
}

/// The state of one parameter as the core keeps it: its step count and the
/// buffers of its rule's [`BUFFERS`](UpdateRule::BUFFERS), each created on
/// first use. Buffer names not among them are a bug in the rule and panic.
#[derive(Clone, Debug)]
pub struct ParamSlot<T> {
    step: u64,
    numel: usize,
    specs: &'static [BufferSpec],
    bufs: Vec<Option<Vec<T>>>,
}

impl<T: Float> ParamSlot<T> {
    /// No steps, no buffers, for a parameter of `numel` elements.
    pub(crate) fn new(specs: &'static [BufferSpec], numel: usize) -> Self {
        ParamSlot {
            step: 0,
            numel,
            specs,
            bufs: vec![None; specs.len()],
        }
    }

    /// A loaded state: `bufs` in the order of `specs`, each of `numel` elements.
    pub(crate) fn restore(
        specs: &'static [BufferSpec],
        numel: usize,
        step: u64,
        bufs: Vec<Option<Vec<T>>>,
    ) -> Self {
        debug_assert_eq!(bufs.len(), specs.len());
        ParamSlot {
            step,
            numel,
            specs,
            bufs,
        }
    }

    /// Counts one more step.
    pub(crate) fn advance(&mut self) {
        self.step += 1;
    }

    /// The buffers present, by name, in the order of the rule's `BUFFERS`.
    pub(crate) fn present(&self) -> impl Iterator<Item = (&'static str, &[T])> {
        self.specs
            .iter()
            .zip(&self.bufs)
            .filter_map(|(s, b)| Some((s.name, b.as_deref()?)))
    }

    /// Steps taken on this parameter, the current one included (1 in the
    /// first update; PyTorch's `state["step"]`).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The parameter's number of elements (every buffer's length).
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Whether buffer `name` exists yet (SGD's first momentum step is the gradient itself).
    #[track_caller]
    pub fn has(&self, name: &str) -> bool {
        self.bufs[self.index(name)].is_some()
    }

    /// Buffer `name` if it exists.
    #[track_caller]
    pub fn get(&mut self, name: &str) -> Option<&mut [T]> {
        let i = self.index(name);
        self.bufs[i].as_deref_mut()
    }

    /// Buffer `name`, created as `numel` copies of `init` on first use.
    #[track_caller]
    pub fn buffer(&mut self, name: &str, init: T) -> &mut [T] {
        let [b] = self.buffers([name], init);
        b
    }

    /// Several distinct buffers at once, each created as copies of `init` on first use.
    ///
    /// # Panics
    /// If a name is not among the rule's buffers or appears twice.
    #[track_caller]
    pub fn buffers<const N: usize>(&mut self, names: [&str; N], init: T) -> [&mut [T]; N] {
        let at = names.map(|n| self.index(n));
        for &i in &at {
            if self.bufs[i].is_none() {
                self.bufs[i] = Some(vec![init; self.numel]);
            }
        }
        let mut out: [Option<&mut [T]>; N] = [const { None }; N];
        for (i, b) in self.bufs.iter_mut().enumerate() {
            if let Some(k) = at.iter().position(|&j| j == i) {
                out[k] = b.as_deref_mut();
            }
        }
        out.map(|b| {
            b.unwrap_or_else(|| panic!("ParamSlot::buffers: a name appears twice in {names:?}"))
        })
    }

    #[track_caller]
    fn index(&self, name: &str) -> usize {
        match self.specs.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => panic!(
                "ParamSlot: no buffer '{name}' (the rule declares {:?})",
                self.specs.iter().map(|s| s.name).collect::<Vec<_>>()
            ),
        }
    }
}
