//! `BasicConv2d`: convolution (no bias), batch norm (eps 0.001), ReLU — the
//! building unit of torchvision's GoogLeNet, named `conv` and `bn`.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{BasicConv2d, Conv2dConfig, Module};
//! let b = BasicConv2d::new(Conv2dConfig::new(3, 8, 3).padding(1));
//! assert_eq!(b.forward(&Tensor::zeros([2, 3, 5, 5])).shape(), vec![2, 8, 5, 5]);
//! let names: Vec<String> = b.named_tensors().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names[..3], ["conv.weight", "bn.weight", "bn.bias"]);
//! ```

use autograd::{Float, Tensor};

use crate::{conv_bn, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Hooks, Module};

/// Conv (no bias) + BatchNorm (eps 1e-3) + ReLU.
#[derive(Module)]
pub struct BasicConv2d<T: Float = f32> {
    /// The convolution (no bias).
    pub conv: Conv2d<T>,
    /// The batch norm (eps 1e-3).
    pub bn: BatchNorm2d<T>,
    hooks: Hooks,
}

impl BasicConv2d {
    /// In f32 (use `BasicConv2d::<f64>::build` for another precision).
    pub fn new(conv: Conv2dConfig) -> Self {
        Self::build(conv)
    }
}

impl<T: Float> BasicConv2d<T> {
    /// The convolution's options (its bias flag is ignored: there is none).
    pub fn build(conv: Conv2dConfig) -> Self {
        BasicConv2d {
            hooks: Hooks::new(),
            conv: Conv2d::build(conv.bias(false)),
            bn: BatchNorm2d::build(BatchNormConfig::new(conv.out_channels).eps(1e-3)),
        }
    }
}

impl<T: Float> Module<T> for BasicConv2d<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        conv_bn(&self.conv, &self.bn, x, true)
    }
    fn describe(&self) -> String {
        "BasicConv2d".into()
    }
}
