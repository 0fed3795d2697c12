//! `Linear`: `y = x W^T + b`, weight `[out_features, in_features]` as PyTorch.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Linear, LinearConfig, Module};
//! let fc = Linear::new(LinearConfig::new(784, 100));
//! let y = fc.forward(&Tensor::zeros([32, 784]));
//! assert_eq!(y.shape(), vec![32, 100]);
//! assert_eq!(fc.num_parameters(), 784 * 100 + 100);
//! let names: Vec<String> = fc.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["weight", "bias"]);
//! ```

use autograd::{Float, Tensor};

use crate::init;
use crate::{Hooks, Module};

/// Options of [`Linear`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearConfig {
    /// Input features per sample (the weight's dim 1).
    pub in_features: usize,
    /// Output features per sample (the weight's dim 0).
    pub out_features: usize,
    /// Whether there is a bias (default true).
    pub bias: bool,
}

impl LinearConfig {
    /// `in_features -> out_features`, with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// Without a bias.
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

/// A fully connected layer.
#[derive(Module)]
pub struct Linear<T: Float = f32> {
    /// The weight, `[out_features, in_features]`.
    #[param]
    pub weight: Tensor<T>,
    /// The bias, `[out_features]`; `None` when built without one.
    #[param]
    pub bias: Option<Tensor<T>>,
    #[module(skip)]
    config: LinearConfig,
    hooks: Hooks,
}

impl Linear {
    /// In f32 (use `Linear::<f64>::build` for another precision).
    pub fn new(config: LinearConfig) -> Self {
        Self::build(config)
    }
}

impl<T: Float> Linear<T> {
    /// PyTorch's default initialisation (`U(-1/sqrt(in), 1/sqrt(in))`).
    pub fn build(config: LinearConfig) -> Self {
        let weight = Tensor::zeros([config.out_features, config.in_features]).requires_grad_();
        let bias = config
            .bias
            .then(|| Tensor::zeros([config.out_features]).requires_grad_());
        init::pytorch_default_(&weight, bias.as_ref());
        Linear {
            hooks: Hooks::new(),
            weight,
            bias,
            config,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> LinearConfig {
        self.config
    }
}

impl<T: Float> Module<T> for Linear<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.config.in_features, self.config.out_features, self.config.bias
        )
    }
}
