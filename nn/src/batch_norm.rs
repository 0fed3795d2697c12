//! `BatchNorm1d` (`[N, C]` or `[N, C, L]`) and `BatchNorm2d` (`[N, C, H, W]`):
//! the same layer with a different input rank. Parameters `weight`, `bias`;
//! buffers `running_mean`, `running_var`, `num_batches_tracked`, as PyTorch.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{BatchNorm2d, BatchNormConfig, Module};
//! let bn = BatchNorm2d::new(BatchNormConfig::new(16));
//! let y = bn.forward(&(Tensor::randn([8, 16, 4, 4]) * 3.0 + 1.0));
//! assert!(y.mean().item().abs() < 1e-5);
//! // The running mean moved 10% of the way to the batch mean.
//! assert!(bn.running_mean.to_vec().iter().all(|&m| (m - 0.1).abs() < 0.1));
//! let names: Vec<String> = bn.named_tensors().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use autograd::{BatchNormArgs, Float, Tensor};

use crate::conv_bn::FoldSlot;
use crate::{Hooks, Module, ModuleFields, NamedTensor};

/// Options of batch normalisation; defaults as PyTorch (eps 1e-5, momentum 0.1, affine, tracked stats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Number of channels `C` (the input's dim 1).
    pub num_features: usize,
    /// Added to the variance for numerical stability (default 1e-5).
    pub eps: f64,
    /// Weight of the current batch in the running statistics' update (default 0.1, as PyTorch).
    pub momentum: f64,
    /// Learned scale and shift.
    pub affine: bool,
    /// Keep running statistics for evaluation.
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// Defaults for `num_features` channels.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig {
            num_features,
            eps: 1e-5,
            momentum: 0.1,
            affine: true,
            track_running_stats: true,
        }
    }
    /// Variance epsilon (torchvision's GoogLeNet uses 1e-3).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Running-statistics momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
}

/// The layer behind both public types.
#[derive(Module)]
pub struct BatchNorm<T: Float = f32> {
    /// Learned scale `[C]` (starts at 1); `None` without `affine`.
    #[param]
    pub weight: Option<Tensor<T>>,
    /// Learned shift `[C]` (starts at 0); `None` without `affine`.
    #[param]
    pub bias: Option<Tensor<T>>,
    /// Running mean `[C]`, used in eval mode (starts at 0).
    #[buffer]
    pub running_mean: Tensor<T>,
    /// Running variance `[C]`, used in eval mode (starts at 1).
    #[buffer]
    pub running_var: Tensor<T>,
    /// A count, stored as int64 as PyTorch does.
    #[buffer(dtype = "i64")]
    pub num_batches_tracked: Tensor<T>,
    #[module(skip)]
    config: BatchNormConfig,
    #[module(skip)]
    training: AtomicBool,
    #[module(skip)]
    ranks: &'static [usize],
    #[module(skip)]
    name: &'static str,
    /// The convolution before it with this layer folded in (`conv_bn`).
    #[module(skip)]
    folded: FoldSlot<T>,
    hooks: Hooks,
}

impl<T: Float> BatchNorm<T> {
    fn build(config: BatchNormConfig, ranks: &'static [usize], name: &'static str) -> Self {
        let c = config.num_features;
        BatchNorm {
            hooks: Hooks::new(),
            weight: config.affine.then(|| Tensor::ones([c]).requires_grad_()),
            bias: config.affine.then(|| Tensor::zeros([c]).requires_grad_()),
            running_mean: Tensor::zeros([c]),
            running_var: Tensor::ones([c]),
            num_batches_tracked: Tensor::scalar(T::zero()),
            config,
            training: AtomicBool::new(true),
            ranks,
            name,
            folded: FoldSlot::default(),
        }
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// The running mean and variance when they are what the layer applies
    /// (eval mode, tracked statistics); `None` when it uses the batch's.
    pub(crate) fn running_stats(&self) -> Option<(&Tensor<T>, &Tensor<T>)> {
        (!self.is_training() && self.config.track_running_stats)
            .then_some((&self.running_mean, &self.running_var))
    }

    /// The `eps` added to the variance.
    pub fn eps(&self) -> f64 {
        self.config.eps
    }

    pub(crate) fn fold_slot(&self) -> &FoldSlot<T> {
        &self.folded
    }
}

impl<T: Float> Module<T> for BatchNorm<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let shape = x.shape();
        assert!(
            self.ranks.contains(&shape.len()),
            "{}: expected an input with {:?} dims, got shape {shape:?}",
            self.name,
            self.ranks
        );
        let training = self.is_training();
        let track = self.config.track_running_stats;
        if training && track {
            self.num_batches_tracked
                .write()
                .mapv_inplace(|v| v + T::one());
        }
        let (running_mean, running_var) = if track {
            (Some(&self.running_mean), Some(&self.running_var))
        } else {
            (None, None)
        };
        x.batch_norm(BatchNormArgs {
            running_mean,
            running_var,
            weight: self.weight.as_ref(),
            bias: self.bias.as_ref(),
            // Without running statistics, evaluation also uses batch statistics (as PyTorch).
            training: training || !track,
            momentum: self.config.momentum,
            eps: self.config.eps,
        })
    }

    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!(
            "{}({}, eps={}, momentum={}, affine={}, track_running_stats={})",
            self.name,
            self.config.num_features,
            self.config.eps,
            self.config.momentum,
            self.config.affine,
            self.config.track_running_stats
        )
    }
}

macro_rules! batch_norm_type {
    ($name:ident, $ranks:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name<T: Float = f32>(pub BatchNorm<T>);

        impl $name {
            /// Weight 1, bias 0, running mean 0, running variance 1 (f32).
            pub fn new(config: BatchNormConfig) -> Self {
                Self::build(config)
            }
        }

        impl<T: Float> $name<T> {
            /// Weight 1, bias 0, running mean 0, running variance 1, in any precision.
            pub fn build(config: BatchNormConfig) -> Self {
                $name(BatchNorm::build(config, $ranks, stringify!($name)))
            }
        }

        impl<T: Float> std::ops::Deref for $name<T> {
            type Target = BatchNorm<T>;
            fn deref(&self) -> &BatchNorm<T> {
                &self.0
            }
        }

        // A newtype: its tensors and hooks are the inner module's (no `0.` prefix).
        impl<T: Float> ModuleFields<T> for $name<T> {
            fn own_tensors(&self) -> Vec<NamedTensor<T>> {
                self.0.own_tensors()
            }
            fn children(&self) -> Vec<(String, &dyn Module<T>)> {
                Vec::new()
            }
            fn hooks(&self) -> Option<&Hooks> {
                self.0.hooks()
            }
        }

        impl<T: Float> Module<T> for $name<T> {
            fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
                self.0.forward_impl(x)
            }
            fn set_own_training(&self, training: bool) {
                self.0.set_own_training(training)
            }
            fn describe(&self) -> String {
                self.0.describe()
            }
        }
    };
}

batch_norm_type!(
    BatchNorm1d,
    &[2, 3],
    "Batch normalisation of `[N, C]` or `[N, C, L]` inputs."
);
batch_norm_type!(
    BatchNorm2d,
    &[4],
    "Batch normalisation of `[N, C, H, W]` inputs, per channel."
);
