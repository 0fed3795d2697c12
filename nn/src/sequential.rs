//! `Sequential`: modules applied in order, named `0`, `1`, ... as PyTorch.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Linear, LinearConfig, Module, ReLU, Sequential};
//! let mlp = Sequential::new()
//!     .add(Linear::new(LinearConfig::new(4, 8)))
//!     .add(ReLU)
//!     .add(Linear::new(LinearConfig::new(8, 2)));
//! assert_eq!(mlp.forward(&Tensor::zeros([3, 4])).shape(), vec![3, 2]);
//! let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
//! ```

use autograd::{Float, Tensor};

use crate::{conv_bn, BatchNorm2d, Conv2d, Hooks, Module, ReLU};

/// A chain of modules.
#[derive(Module)]
pub struct Sequential<T: Float = f32> {
    #[module(flatten)]
    layers: Vec<Box<dyn Module<T>>>,
    hooks: Hooks,
}

impl Sequential {
    /// An empty chain, in f32 (use `Sequential::<f64>::build` for another precision).
    pub fn new() -> Self {
        Self::build()
    }
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Self::build()
    }
}

impl<T: Float> Sequential<T> {
    /// An empty chain.
    pub fn build() -> Self {
        Sequential {
            layers: Vec::new(),
            hooks: Hooks::new(),
        }
    }

    /// Appends a module (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, m: impl Module<T> + 'static) -> Self {
        self.layers.push(Box::new(m));
        self
    }

    /// Appends a boxed module.
    pub fn push(&mut self, m: Box<dyn Module<T>>) {
        self.layers.push(m);
    }

    /// The module at `i`.
    pub fn get(&self, i: usize) -> Option<&dyn Module<T>> {
        self.layers.get(i).map(|m| m.as_ref())
    }

    /// Replaces the module at `i` (e.g. a new classifier head), returning the old one.
    pub fn replace(&mut self, i: usize, m: Box<dyn Module<T>>) -> Box<dyn Module<T>> {
        std::mem::replace(&mut self.layers[i], m)
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let layer = self.layers[i].unboxed();
            let Some(conv) = layer.as_any().downcast_ref::<Conv2d<T>>() else {
                h = layer.forward(&h);
                i += 1;
                continue;
            };
            // A Conv2d followed by a BatchNorm2d and/or a ReLU: fused where
            // that computes the same (`conv_bn`, `Conv2d::forward_relu`). A
            // ReLU with hooks runs as a module of its own.
            let at = |j: usize| self.layers.get(j).map(|m| m.unboxed());
            let bn = at(i + 1).and_then(|m| m.as_any().downcast_ref::<BatchNorm2d<T>>());
            let after = i + 1 + usize::from(bn.is_some());
            let relu = at(after).is_some_and(|m| {
                m.as_any().is::<ReLU>() && m.hooks().is_none_or(|hk| hk.is_empty())
            });
            h = match bn {
                Some(bn) => conv_bn(conv, bn, &h, relu),
                None if relu => conv.forward_relu(&h),
                None => conv.forward(&h),
            };
            i = after + usize::from(relu);
        }
        h
    }

    fn describe(&self) -> String {
        "Sequential".into()
    }
}
