//! Parameter groups: the parameters updated with the same settings, as given
//! to a constructor ([`GroupSpec`]), as an optimizer holds them
//! ([`ParamGroup`]), and the settings a rule gives groups that set none
//! ([`GroupDefaults`]).

use autograd::{Float, Tensor};

/// Parameters updated with the same settings.
///
/// Each group has its own learning rate and weight decay (fine-tune a
/// backbone slower than a new head), and its own momentum where the optimizer
/// has one: SGD's and RMSprop's `momentum`, Adam's and AdamW's `beta1` (what
/// [`OneCycleLr`](crate::OneCycleLr) cycles). Schedulers change `lr` here.
/// A rule may declare settings of its own ([`GroupDefaults::setting`]),
/// held per group in `settings`.
#[derive(Clone, Debug)]
pub struct ParamGroup<T: Float = f32> {
    /// The tensors (handles: the optimizer updates the caller's parameters).
    pub params: Vec<Tensor<T>>,
    /// The learning rate.
    pub lr: f64,
    /// The weight decay (L2 or decoupled: the rule decides).
    pub weight_decay: f64,
    /// `None` for optimizers without momentum (AdaGrad, AdaDelta).
    pub momentum: Option<f64>,
    /// The lr a scheduler started from (PyTorch's `group["initial_lr"]`), set by the first scheduler.
    pub initial_lr: Option<f64>,
    /// The rule's own settings by name, in the order its defaults declare
    /// them (empty for the built-in optimizers). Saved with the state.
    pub settings: Vec<(&'static str, f64)>,
}

impl<T: Float> ParamGroup<T> {
    /// The rule-specific setting `name`.
    ///
    /// # Panics
    /// If the rule's [`GroupDefaults`] do not declare `name`: a bug in the rule.
    #[track_caller]
    pub fn setting(&self, name: &str) -> f64 {
        match self.settings.iter().find(|(n, _)| *n == name) {
            Some(&(_, v)) => v,
            None => panic!(
                "ParamGroup::setting: no setting '{name}' (the group has {:?}; a rule declares its settings in its defaults)",
                self.settings.iter().map(|(n, _)| n).collect::<Vec<_>>()
            ),
        }
    }
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
    /// The group's parameters.
    pub params: Vec<Tensor<T>>,
    /// Its learning rate, if not the config's.
    pub lr: Option<f64>,
    /// Its weight decay, if not the config's.
    pub weight_decay: Option<f64>,
    /// Its momentum, if not the config's.
    pub momentum: Option<f64>,
    /// Its values of rule-specific settings, where not the rule's.
    pub settings: Vec<(&'static str, f64)>,
}

impl<T: Float> GroupSpec<T> {
    /// A group with the optimizer's settings.
    pub fn new(params: Vec<Tensor<T>>) -> Self {
        GroupSpec {
            params,
            lr: None,
            weight_decay: None,
            momentum: None,
            settings: Vec::new(),
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

    /// This group's value of a rule-specific setting (one the rule's
    /// [`GroupDefaults`] declare; another name is an error at construction).
    pub fn set(mut self, name: &'static str, value: f64) -> Self {
        self.settings.retain(|(n, _)| *n != name);
        self.settings.push((name, value));
        self
    }
}

impl<T: Float> From<Vec<Tensor<T>>> for GroupSpec<T> {
    fn from(params: Vec<Tensor<T>>) -> Self {
        GroupSpec::new(params)
    }
}

/// The settings an [`UpdateRule`](crate::UpdateRule) gives every group that
/// does not set its own: learning rate, weight decay, momentum (if the rule
/// has one) and the rule's own named settings.
///
/// ```
/// use optim::GroupDefaults;
/// let d = GroupDefaults::new(1e-4).momentum(0.9).setting("beta2", 0.99);
/// assert_eq!((d.lr, d.weight_decay, d.momentum), (1e-4, 0.0, Some(0.9)));
/// assert_eq!(d.settings, [("beta2", 0.99)]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDefaults {
    /// The learning rate.
    pub lr: f64,
    /// The weight decay.
    pub weight_decay: f64,
    /// The momentum; `None`: the rule has none, and a group may not set one.
    pub momentum: Option<f64>,
    /// The rule's own settings with their defaults; only these names may be set per group.
    pub settings: Vec<(&'static str, f64)>,
}

impl GroupDefaults {
    /// Learning rate `lr`, no weight decay, no momentum, no settings of the rule's own.
    pub fn new(lr: f64) -> Self {
        GroupDefaults {
            lr,
            weight_decay: 0.0,
            momentum: None,
            settings: Vec::new(),
        }
    }

    /// With weight decay `weight_decay`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// With a momentum (a group may then set its own; schedulers may cycle it).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = Some(momentum);
        self
    }

    /// With a rule-specific setting `name` whose default is `value`.
    pub fn setting(mut self, name: &'static str, value: f64) -> Self {
        self.settings.retain(|(n, _)| *n != name);
        self.settings.push((name, value));
        self
    }
}
