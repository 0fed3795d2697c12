//! The [`Optimizer`] trait, parameter groups, and the bookkeeping every
//! optimizer shares (groups, lazily created per-parameter state, state dicts).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use autograd::ndarray::{ArrayD, IxDyn};
use autograd::{Float, Tensor};

use crate::error::{mismatch, ok, OptimError, Result};
use crate::state::{GroupState, OptimizerState, ParamState};

/// Parameters updated with the same settings.
///
/// Each group has its own learning rate and weight decay (fine-tune a
/// backbone slower than a new head), and its own momentum where the optimizer
/// has one: SGD's and RMSprop's `momentum`, Adam's and AdamW's `beta1` (what
/// [`OneCycleLr`](crate::OneCycleLr) cycles). Schedulers change `lr` here.
#[derive(Clone, Debug)]
pub struct ParamGroup<T: Float = f32> {
    /// The tensors (handles: the optimizer updates the caller's parameters).
    pub params: Vec<Tensor<T>>,
    pub lr: f64,
    pub weight_decay: f64,
    /// `None` for optimizers without momentum (AdaGrad, AdaDelta).
    pub momentum: Option<f64>,
    /// The lr a scheduler started from (PyTorch's `group["initial_lr"]`), set by the first scheduler.
    pub initial_lr: Option<f64>,
}

/// One group as given to a constructor: its parameters, and the settings in
/// which it differs from the optimizer's config (`None`: the config's).
///
/// ```
/// # use autograd::Tensor;
/// use optim::{GroupSpec, Optimizer, Sgd, SgdConfig};
/// let backbone = vec![Tensor::<f32>::zeros([4]).requires_grad_()];
/// let head = vec![Tensor::<f32>::zeros([2]).requires_grad_()];
/// let opt = Sgd::with_groups(
///     vec![GroupSpec::new(backbone).lr(1e-3), GroupSpec::new(head)],
///     SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() },
/// );
/// assert_eq!(opt.param_groups()[0].lr, 1e-3);
/// assert_eq!(opt.param_groups()[1].lr, 0.1);
/// ```
#[derive(Clone, Debug)]
pub struct GroupSpec<T: Float = f32> {
    pub params: Vec<Tensor<T>>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub momentum: Option<f64>,
}

impl<T: Float> GroupSpec<T> {
    /// A group with the optimizer's settings.
    pub fn new(params: Vec<Tensor<T>>) -> Self {
        GroupSpec {
            params,
            lr: None,
            weight_decay: None,
            momentum: None,
        }
    }

    /// This group's learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// This group's weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// This group's momentum (Adam's and AdamW's beta1).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = Some(momentum);
        self
    }
}

impl<T: Float> From<Vec<Tensor<T>>> for GroupSpec<T> {
    fn from(params: Vec<Tensor<T>>) -> Self {
        GroupSpec::new(params)
    }
}

/// An optimizer: updates parameters in place from their gradients.
///
/// Parameters without a gradient (unused, or frozen before backward) and
/// parameters whose `requires_grad()` is false are skipped, as PyTorch skips
/// `p.grad is None`.
pub trait Optimizer<T: Float = f32> {
    /// PyTorch's class name (`"Adam"`, `"SGD"`, ...), used in messages and states.
    fn name(&self) -> &'static str;

    /// One update of every parameter that has a gradient.
    ///
    /// Fails, updating nothing, if a gradient's shape is not its parameter's.
    fn try_step(&mut self) -> Result<()>;

    /// One update of every parameter that has a gradient.
    ///
    /// # Panics
    /// See [`try_step`](Self::try_step).
    #[track_caller]
    fn step(&mut self) {
        ok(self.try_step())
    }

    /// Forgets every gradient (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&mut self) {
        for g in self.param_groups() {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }

    /// The parameter groups, in order.
    fn param_groups(&self) -> &[ParamGroup<T>];

    /// The parameter groups, to change their settings (schedulers set `lr` here).
    fn param_groups_mut(&mut self) -> &mut [ParamGroup<T>];

    /// Adds a group (a layer unfrozen mid-training); unset settings come from the config.
    fn add_param_group(&mut self, group: GroupSpec<T>) -> Result<()>;

    /// The state (group settings, step counts, buffers), copied.
    fn state_dict(&self) -> OptimizerState<T>;

    /// Restores a state from [`state_dict`](Self::state_dict) of the same kind
    /// of optimizer over parameters of the same shapes. On error nothing changes.
    fn load_state_dict(&mut self, state: &OptimizerState<T>) -> Result<()>;

    /// Saves the state to a safetensors file (written to a temporary file, then renamed).
    fn save(&self, path: &Path) -> Result<()> {
        self.state_dict().save(path)
    }

    /// Loads a state saved by [`save`](Self::save); errors name the file.
    fn load(&mut self, path: &Path) -> Result<()> {
        let state = OptimizerState::load(path)?;
        self.load_state_dict(&state).map_err(|e| e.in_file(path))
    }
}

/// A state buffer of an optimizer: its name, and whether a stepped parameter must have it.
pub(crate) type BufferSpec = (&'static str, bool);

/// The state of one parameter: step count and buffers (`None` until needed).
pub(crate) struct Slot<T> {
    pub step: u64,
    pub bufs: Vec<Option<Vec<T>>>,
}

impl<T: Float> Slot<T> {
    /// Buffer `i`, created as `n` copies of `init` on first use.
    pub fn ensure(&mut self, i: usize, n: usize, init: T) {
        if self.bufs[i].is_none() {
            self.bufs[i] = Some(vec![init; n]);
        }
    }
}

/// Defaults a [`GroupSpec`] falls back on.
pub(crate) struct GroupDefaults {
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: Option<f64>,
}

/// What every optimizer holds: its groups and the state of each parameter,
/// keyed by tensor id (as PyTorch keys by the parameter object).
pub(crate) struct Core<T: Float> {
    pub name: &'static str,
    pub buffers: &'static [BufferSpec],
    pub groups: Vec<ParamGroup<T>>,
    pub state: HashMap<u64, Slot<T>>,
}

/// The checks every group's settings get (PyTorch's `ValueError`s).
pub(crate) fn check_group<T: Float>(name: &'static str, g: &ParamGroup<T>) -> Result<()> {
    let bad = |reason: String| Err(OptimError::InvalidConfig { what: name, reason });
    if g.lr < 0.0 || g.lr.is_nan() {
        return bad(format!("invalid learning rate {} (must be >= 0)", g.lr));
    }
    if g.weight_decay < 0.0 || g.weight_decay.is_nan() {
        return bad(format!(
            "invalid weight_decay {} (must be >= 0)",
            g.weight_decay
        ));
    }
    Ok(())
}

impl<T: Float> Core<T> {
    pub fn new(
        name: &'static str,
        buffers: &'static [BufferSpec],
        specs: Vec<GroupSpec<T>>,
        defaults: &GroupDefaults,
        check: &dyn Fn(&ParamGroup<T>) -> Result<()>,
    ) -> Result<Self> {
        let mut core = Core {
            name,
            buffers,
            groups: Vec::new(),
            state: HashMap::new(),
        };
        // The config itself is checked even when no group uses all of it.
        let probe = ParamGroup {
            params: Vec::new(),
            lr: defaults.lr,
            weight_decay: defaults.weight_decay,
            momentum: defaults.momentum,
            initial_lr: None,
        };
        check_group(name, &probe)?;
        check(&probe)?;
        for spec in specs {
            core.add_group(spec, defaults, check)?;
        }
        Ok(core)
    }

    pub fn add_group(
        &mut self,
        spec: GroupSpec<T>,
        defaults: &GroupDefaults,
        check: &dyn Fn(&ParamGroup<T>) -> Result<()>,
    ) -> Result<()> {
        if spec.momentum.is_some() && defaults.momentum.is_none() {
            return Err(OptimError::InvalidConfig {
                what: self.name,
                reason: "this optimizer has no momentum to set per group".into(),
            });
        }
        let group = ParamGroup {
            params: spec.params,
            lr: spec.lr.unwrap_or(defaults.lr),
            weight_decay: spec.weight_decay.unwrap_or(defaults.weight_decay),
            momentum: spec.momentum.or(defaults.momentum),
            initial_lr: None,
        };
        check_group(self.name, &group)?;
        check(&group)?;
        let mut seen = HashSet::new();
        let all = self
            .groups
            .iter()
            .flat_map(|g| &g.params)
            .chain(&group.params);
        for (index, p) in all.enumerate() {
            if !seen.insert(p.id()) {
                return Err(OptimError::DuplicateParam {
                    what: self.name,
                    index,
                });
            }
        }
        self.groups.push(group);
        Ok(())
    }

    /// Calls `f(group, param, grad, slot)` for every parameter that has a
    /// gradient and requires grad, creating its state on first use.
    pub fn for_each_grad(
        &mut self,
        mut f: impl FnMut(&ParamGroup<T>, &Tensor<T>, &Tensor<T>, &mut Slot<T>) + Send,
    ) -> Result<()> {
        let stepped = |p: &Tensor<T>| p.requires_grad().then(|| p.grad()).flatten();
        // Every gradient is checked before any parameter moves: a failed step changes nothing.
        let params = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| g.params.iter().map(move |p| (gi, p)));
        for (index, (group, p)) in params.enumerate() {
            let Some(g) = stepped(p) else { continue };
            if p.read().shape() != g.read().shape() {
                return Err(OptimError::GradShape {
                    what: self.name,
                    group,
                    index,
                    param: p.shape(),
                    grad: g.shape(),
                });
            }
        }
        let n_bufs = self.buffers.len();
        let (groups, state) = (&self.groups, &mut self.state);
        for group in groups {
            for p in &group.params {
                let Some(g) = stepped(p) else { continue };
                let slot = state.entry(p.id()).or_insert_with(|| Slot {
                    step: 0,
                    bufs: (0..n_bufs).map(|_| None).collect(),
                });
                f(group, p, &g, slot);
            }
        }
        Ok(())
    }

    pub fn state_dict(&self) -> OptimizerState<T> {
        let mut params = Vec::new();
        let mut groups = Vec::new();
        for g in &self.groups {
            groups.push(GroupState {
                lr: g.lr,
                weight_decay: g.weight_decay,
                momentum: g.momentum,
                initial_lr: g.initial_lr,
                num_params: g.params.len(),
            });
            for p in &g.params {
                params.push(self.state.get(&p.id()).map(|slot| {
                    let shape = p.shape();
                    let mut buffers = BTreeMap::new();
                    for ((name, _), buf) in self.buffers.iter().zip(&slot.bufs) {
                        if let Some(b) = buf {
                            let a = ArrayD::from_shape_vec(IxDyn(&shape), b.clone())
                                .expect("a buffer has its parameter's size");
                            buffers.insert(name.to_string(), a);
                        }
                    }
                    ParamState {
                        step: slot.step,
                        buffers,
                    }
                }));
            }
        }
        OptimizerState {
            optimizer: self.name.to_string(),
            groups,
            params,
        }
    }

    /// Checks everything first, then replaces groups' settings and all state.
    pub fn load_state_dict(&mut self, st: &OptimizerState<T>) -> Result<()> {
        let name = self.name;
        let err = |reason: String| Err(mismatch(name, reason));
        if st.optimizer != name {
            return err(format!(
                "it is the state of {}, not of {name}",
                st.optimizer
            ));
        }
        if st.groups.len() != self.groups.len() {
            return err(format!(
                "it has {} parameter group(s), the optimizer has {}",
                st.groups.len(),
                self.groups.len()
            ));
        }
        for (i, (gs, g)) in st.groups.iter().zip(&self.groups).enumerate() {
            if gs.num_params != g.params.len() {
                return err(format!(
                    "group {i} has {} parameter(s) in the state, {} in the optimizer",
                    gs.num_params,
                    g.params.len()
                ));
            }
            if gs.momentum.is_some() != g.momentum.is_some() {
                return err(format!("group {i}: momentum present in only one of them"));
            }
            let probe: ParamGroup<T> = ParamGroup {
                params: Vec::new(),
                lr: gs.lr,
                weight_decay: gs.weight_decay,
                momentum: gs.momentum,
                initial_lr: gs.initial_lr,
            };
            check_group(name, &probe).or_else(|e| err(format!("group {i}: {e}")))?;
        }
        let params: Vec<&Tensor<T>> = self.groups.iter().flat_map(|g| &g.params).collect();
        if st.params.len() != params.len() {
            return err(format!(
                "it has {} parameter(s), the optimizer has {}",
                st.params.len(),
                params.len()
            ));
        }
        let mut new_state = HashMap::new();
        for (i, (ps, p)) in st.params.iter().zip(&params).enumerate() {
            let Some(ps) = ps else { continue };
            let shape = p.shape();
            let mut bufs: Vec<Option<Vec<T>>> = vec![None; self.buffers.len()];
            for (bname, a) in &ps.buffers {
                let Some(k) = self.buffers.iter().position(|(n, _)| n == bname) else {
                    return err(format!("parameter {i}: {name} has no buffer '{bname}'"));
                };
                if a.shape() != shape.as_slice() {
                    return err(format!(
                        "parameter {i}: '{bname}' has shape {:?}, the parameter {shape:?}",
                        a.shape()
                    ));
                }
                bufs[k] = Some(a.iter().copied().collect());
            }
            for ((bname, required), b) in self.buffers.iter().zip(&bufs) {
                if *required && b.is_none() {
                    return err(format!("parameter {i}: no '{bname}' buffer"));
                }
            }
            new_state.insert(
                p.id(),
                Slot {
                    step: ps.step,
                    bufs,
                },
            );
        }
        for (g, gs) in self.groups.iter_mut().zip(&st.groups) {
            g.lr = gs.lr;
            g.weight_decay = gs.weight_decay;
            g.momentum = gs.momentum;
            g.initial_lr = gs.initial_lr;
        }
        self.state = new_state;
        Ok(())
    }
}

/// The `Optimizer` methods that only forward to [`Core`].
macro_rules! forward_to_core {
    () => {
        fn param_groups(&self) -> &[$crate::ParamGroup<T>] {
            &self.core.groups
        }

        fn param_groups_mut(&mut self) -> &mut [$crate::ParamGroup<T>] {
            &mut self.core.groups
        }

        fn add_param_group(&mut self, group: $crate::GroupSpec<T>) -> $crate::Result<()> {
            let (defaults, check) = (Self::defaults_of(&self.config), Self::check(&self.config));
            self.core.add_group(group, &defaults, &check)
        }

        fn state_dict(&self) -> $crate::OptimizerState<T> {
            self.core.state_dict()
        }

        fn load_state_dict(&mut self, state: &$crate::OptimizerState<T>) -> $crate::Result<()> {
            self.core.load_state_dict(state)
        }
    };
}
pub(crate) use forward_to_core;

/// The constructors every optimizer has (`new`, `try_new`, `with_groups`,
/// `try_with_groups`) and `config()`, over its `NAME`, `BUFFERS`,
/// `defaults_of` and `check`.
macro_rules! constructors {
    ($ty:ident, $config:ty) => {
        /// One group with the config's settings.
        ///
        /// # Panics
        /// On an invalid config; see [`try_new`](Self::try_new).
        #[track_caller]
        pub fn new(params: Vec<Tensor<T>>, config: $config) -> Self {
            $crate::error::ok(Self::try_new(params, config))
        }

        /// One group with the config's settings.
        pub fn try_new(params: Vec<Tensor<T>>, config: $config) -> $crate::Result<Self> {
            Self::try_with_groups(vec![$crate::GroupSpec::new(params)], config)
        }

        /// Several groups, each with its own settings where given.
        ///
        /// # Panics
        /// On an invalid config; see [`try_with_groups`](Self::try_with_groups).
        #[track_caller]
        pub fn with_groups(groups: Vec<$crate::GroupSpec<T>>, config: $config) -> Self {
            $crate::error::ok(Self::try_with_groups(groups, config))
        }

        /// Several groups, each with its own settings where given.
        pub fn try_with_groups(
            groups: Vec<$crate::GroupSpec<T>>,
            config: $config,
        ) -> $crate::Result<Self> {
            let core = $crate::optimizer::Core::new(
                NAME,
                BUFFERS,
                groups,
                &Self::defaults_of(&config),
                &Self::check(&config),
            )?;
            Ok($ty { config, core })
        }

        /// The settings shared by all groups.
        pub fn config(&self) -> &$config {
            &self.config
        }
    };
}
pub(crate) use constructors;
