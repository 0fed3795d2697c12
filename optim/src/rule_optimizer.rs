//! [`RuleOptimizer`]: an [`UpdateRule`] made a whole optimizer (groups,
//! per-parameter state keyed by tensor, stepping, state dicts).

use std::collections::{BTreeMap, HashMap, HashSet};

use autograd::ndarray::{ArrayD, IxDyn};
use autograd::{Float, Tensor};

use crate::error::{mismatch, ok, OptimError, Result};
use crate::group::{GroupDefaults, GroupSpec, ParamGroup};
use crate::kernel::with_slices;
use crate::rule::{ParamSlot, UpdateRule};
use crate::state::{GroupState, OptimizerState, ParamState};
use crate::Optimizer;

/// The optimizer of an [`UpdateRule`]: its parameter groups and the state of
/// each parameter, keyed by tensor (as PyTorch keys by the parameter object).
///
/// It implements [`Optimizer`], so schedulers drive it, and saves and loads
/// its state exactly. The built-in optimizers are aliases of it
/// ([`Adam`](crate::Adam) is `RuleOptimizer<AdamConfig>`); see
/// [`rule`](crate::rule) for a rule written from scratch.
pub struct RuleOptimizer<R, T: Float = f32> {
    rule: R,
    groups: Vec<ParamGroup<T>>,
    state: HashMap<u64, ParamSlot<T>>,
}

impl<T: Float, R: UpdateRule<T>> RuleOptimizer<R, T> {
    /// One group with the rule's settings.
    ///
    /// # Panics
    /// On invalid settings; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(params: Vec<Tensor<T>>, rule: R) -> Self {
        ok(Self::try_new(params, rule))
    }

    /// One group with the rule's settings.
    pub fn try_new(params: Vec<Tensor<T>>, rule: R) -> Result<Self> {
        Self::try_with_groups(vec![GroupSpec::new(params)], rule)
    }

    /// Several groups, each with its own settings where given.
    ///
    /// # Panics
    /// On invalid settings; see [`try_with_groups`](Self::try_with_groups).
    #[track_caller]
    pub fn with_groups(groups: Vec<GroupSpec<T>>, rule: R) -> Self {
        ok(Self::try_with_groups(groups, rule))
    }

    /// Several groups, each with its own settings where given. Fails on a
    /// setting out of range (the rule's defaults are checked even when no
    /// group uses them all), a setting the rule does not have, or a parameter
    /// given twice.
    pub fn try_with_groups(groups: Vec<GroupSpec<T>>, rule: R) -> Result<Self> {
        let mut opt = RuleOptimizer {
            rule,
            groups: Vec::new(),
            state: HashMap::new(),
        };
        let defaults = opt.rule.defaults();
        opt.check(&group_of(Vec::new(), &defaults))?;
        for spec in groups {
            opt.add_group(spec)?;
        }
        Ok(opt)
    }

    /// The rule (for the built-in optimizers, their config).
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// The core's checks of a group's settings, then the rule's.
    fn check(&self, g: &ParamGroup<T>) -> Result<()> {
        let reason = if g.lr < 0.0 || g.lr.is_nan() {
            format!("invalid learning rate {} (must be >= 0)", g.lr)
        } else if g.weight_decay < 0.0 || g.weight_decay.is_nan() {
            format!("invalid weight_decay {} (must be >= 0)", g.weight_decay)
        } else {
            match self.rule.check(g) {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            }
        };
        Err(OptimError::InvalidConfig {
            what: R::NAME,
            reason,
        })
    }

    fn add_group(&mut self, spec: GroupSpec<T>) -> Result<()> {
        let defaults = self.rule.defaults();
        let invalid = |reason: String| OptimError::InvalidConfig {
            what: R::NAME,
            reason,
        };
        if spec.momentum.is_some() && defaults.momentum.is_none() {
            return Err(invalid(
                "this optimizer has no momentum to set per group".into(),
            ));
        }
        let mut group = group_of(spec.params, &defaults);
        group.lr = spec.lr.unwrap_or(defaults.lr);
        group.weight_decay = spec.weight_decay.unwrap_or(defaults.weight_decay);
        group.momentum = spec.momentum.or(defaults.momentum);
        for (name, value) in spec.settings {
            let Some(slot) = group.settings.iter_mut().find(|(n, _)| *n == name) else {
                return Err(invalid(format!(
                    "no setting '{name}' (its settings: {:?})",
                    names(&defaults.settings)
                )));
            };
            slot.1 = value;
        }
        self.check(&group)?;
        let mut seen = HashSet::new();
        let all = self
            .groups
            .iter()
            .flat_map(|g| &g.params)
            .chain(&group.params);
        for (index, p) in all.enumerate() {
            if !seen.insert(p.id()) {
                return Err(OptimError::DuplicateParam {
                    what: R::NAME,
                    index,
                });
            }
        }
        self.groups.push(group);
        Ok(())
    }

    /// Checks a state against this optimizer and builds what loading it
    /// installs: every parameter's slot, keyed by tensor id.
    fn restore(&self, st: &OptimizerState<T>) -> Result<HashMap<u64, ParamSlot<T>>> {
        let name = R::NAME;
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
        let declared = self.rule.defaults().settings;
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
            let saved: Vec<&str> = gs.settings.keys().map(String::as_str).collect();
            let mut want = names(&declared);
            want.sort_unstable();
            if saved != want {
                return err(format!(
                    "group {i}: settings {saved:?} in the state, {want:?} in the optimizer"
                ));
            }
            if let Err(e) = self.check(&loaded_group(g, gs)) {
                return err(format!("group {i}: {e}"));
            }
        }
        let params: Vec<&Tensor<T>> = self.groups.iter().flat_map(|g| &g.params).collect();
        if st.params.len() != params.len() {
            return err(format!(
                "it has {} parameter(s), the optimizer has {}",
                st.params.len(),
                params.len()
            ));
        }
        let mut slots = HashMap::new();
        for (i, (ps, p)) in st.params.iter().zip(&params).enumerate() {
            let Some(ps) = ps else { continue };
            let shape = p.shape();
            let mut bufs: Vec<Option<Vec<T>>> = vec![None; R::BUFFERS.len()];
            for (bname, a) in &ps.buffers {
                let Some(k) = R::BUFFERS.iter().position(|s| s.name == bname) else {
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
            for (spec, b) in R::BUFFERS.iter().zip(&bufs) {
                if spec.required && b.is_none() {
                    return err(format!("parameter {i}: no '{}' buffer", spec.name));
                }
            }
            let slot = ParamSlot::restore(R::BUFFERS, p.numel(), ps.step, bufs);
            slots.insert(p.id(), slot);
        }
        Ok(slots)
    }
}

/// A group of `params` with the defaults' settings.
fn group_of<T: Float>(params: Vec<Tensor<T>>, d: &GroupDefaults) -> ParamGroup<T> {
    ParamGroup {
        params,
        lr: d.lr,
        weight_decay: d.weight_decay,
        momentum: d.momentum,
        initial_lr: None,
        settings: d.settings.clone(),
    }
}

/// Group `g` (without its parameters) with the settings of a saved state;
/// `gs.settings` holds the same names as `g.settings`.
fn loaded_group<T: Float>(g: &ParamGroup<T>, gs: &GroupState) -> ParamGroup<T> {
    ParamGroup {
        params: Vec::new(),
        lr: gs.lr,
        weight_decay: gs.weight_decay,
        momentum: gs.momentum,
        initial_lr: gs.initial_lr,
        settings: g
            .settings
            .iter()
            .map(|&(n, v)| (n, gs.settings.get(n).copied().unwrap_or(v)))
            .collect(),
    }
}

fn names(settings: &[(&'static str, f64)]) -> Vec<&'static str> {
    settings.iter().map(|(n, _)| *n).collect()
}

impl<T: Float, R: UpdateRule<T>> Optimizer<T> for RuleOptimizer<R, T> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn try_step(&mut self) -> Result<()> {
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
                    what: R::NAME,
                    group,
                    index,
                    param: p.shape(),
                    grad: g.shape(),
                });
            }
        }
        let (rule, groups, state) = (&self.rule, &self.groups, &mut self.state);
        for group in groups {
            for p in &group.params {
                let Some(g) = stepped(p) else { continue };
                let slot = state
                    .entry(p.id())
                    .or_insert_with(|| ParamSlot::new(R::BUFFERS, p.numel()));
                slot.advance();
                with_slices(p, &g, |p, g| rule.update(group, p, g, slot));
            }
        }
        Ok(())
    }

    fn param_groups(&self) -> &[ParamGroup<T>] {
        &self.groups
    }

    fn param_groups_mut(&mut self) -> &mut [ParamGroup<T>] {
        &mut self.groups
    }

    fn add_param_group(&mut self, group: GroupSpec<T>) -> Result<()> {
        self.add_group(group)
    }

    fn state_dict(&self) -> OptimizerState<T> {
        let mut params = Vec::new();
        let mut groups = Vec::new();
        for g in &self.groups {
            groups.push(GroupState {
                lr: g.lr,
                weight_decay: g.weight_decay,
                momentum: g.momentum,
                initial_lr: g.initial_lr,
                num_params: g.params.len(),
                settings: g
                    .settings
                    .iter()
                    .map(|&(n, v)| (n.to_string(), v))
                    .collect(),
            });
            for p in &g.params {
                params.push(self.state.get(&p.id()).map(|slot| {
                    let shape = p.shape();
                    let buffers: BTreeMap<String, ArrayD<T>> = slot
                        .present()
                        .map(|(name, b)| {
                            let a = ArrayD::from_shape_vec(IxDyn(&shape), b.to_vec())
                                .expect("a buffer has its parameter's size");
                            (name.to_string(), a)
                        })
                        .collect();
                    ParamState {
                        step: slot.step(),
                        buffers,
                    }
                }));
            }
        }
        OptimizerState {
            optimizer: R::NAME.to_string(),
            groups,
            params,
        }
    }

    /// Checks everything first, then replaces the groups' settings and all state.
    fn load_state_dict(&mut self, st: &OptimizerState<T>) -> Result<()> {
        let slots = self.restore(st)?;
        for (g, gs) in self.groups.iter_mut().zip(&st.groups) {
            let loaded = loaded_group(g, gs);
            *g = ParamGroup {
                params: std::mem::take(&mut g.params),
                ..loaded
            };
        }
        self.state = slots;
        Ok(())
    }
}
