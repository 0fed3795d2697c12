//! Pooling layers: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`,
//! `AdaptiveMaxPool2d` (stateless wrappers of the autograd ops); the max
//! pools' `forward_with_indices` also return the argmax indices that
//! [`MaxUnpool2d`](crate::MaxUnpool2d) takes.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{AdaptiveAvgPool2d, MaxPool2d, Module, PoolConfig};
//! let x: Tensor = Tensor::randn([2, 3, 28, 28]);
//! assert_eq!(MaxPool2d::new(PoolConfig::new(2)).forward(&x).shape(), vec![2, 3, 14, 14]);
//! assert_eq!(AdaptiveAvgPool2d::new(1).forward(&x).shape(), vec![2, 3, 1, 1]);
//! ```

use autograd::ops::conv::Pair;
use autograd::{Float, PoolIndices, PoolOptions, Tensor};

use crate::{Hooks, Module};

/// Options of the sliding-window pools (PyTorch's defaults: stride = kernel).
pub type PoolConfig = PoolOptions;

/// Max over sliding windows.
#[derive(Module)]
pub struct MaxPool2d {
    /// Kernel, stride, padding, dilation and ceil mode.
    #[module(skip)]
    pub config: PoolConfig,
    hooks: Hooks,
}

impl MaxPool2d {
    /// A max pool with the given options.
    pub fn new(config: PoolConfig) -> Self {
        MaxPool2d {
            config,
            hooks: Hooks::new(),
        }
    }

    /// The pooled tensor and where each maximum came from (PyTorch's
    /// `return_indices=True`; see [`Tensor::max_pool2d_with_indices`]).
    /// Forward hooks do not run: they see one output.
    ///
    /// ```
    /// use autograd::Tensor;
    /// use nn::{MaxPool2d, PoolConfig};
    /// let x: Tensor = Tensor::randn([2, 3, 8, 8]);
    /// let (y, idx) = MaxPool2d::new(PoolConfig::new(2)).forward_with_indices(&x);
    /// assert_eq!((y.shape(), idx.shape().to_vec()), (vec![2, 3, 4, 4], vec![2, 3, 4, 4]));
    /// ```
    pub fn forward_with_indices<T: Float>(&self, x: &Tensor<T>) -> (Tensor<T>, PoolIndices) {
        x.max_pool2d_with_indices(self.config)
    }
}

impl<T: Float> Module<T> for MaxPool2d {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.max_pool2d(self.config)
    }
    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "MaxPool2d(kernel_size={:?}, stride={:?}, padding={:?}, dilation={:?}, ceil_mode={})",
            c.kernel, c.stride, c.padding, c.dilation, c.ceil_mode
        )
    }
}

/// Average over sliding windows.
#[derive(Module)]
pub struct AvgPool2d {
    /// Kernel, stride, padding, ceil mode and `count_include_pad`.
    #[module(skip)]
    pub config: PoolConfig,
    hooks: Hooks,
}

impl AvgPool2d {
    /// An average pool with the given options.
    pub fn new(config: PoolConfig) -> Self {
        AvgPool2d {
            config,
            hooks: Hooks::new(),
        }
    }
}

impl<T: Float> Module<T> for AvgPool2d {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.avg_pool2d(self.config)
    }
    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "AvgPool2d(kernel_size={:?}, stride={:?}, padding={:?}, ceil_mode={}, count_include_pad={})",
            c.kernel, c.stride, c.padding, c.ceil_mode, c.count_include_pad
        )
    }
}

/// Average pooling to a fixed output size (so any input size works).
#[derive(Module)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width.
    #[module(skip)]
    pub output_size: [usize; 2],
    hooks: Hooks,
}

impl AdaptiveAvgPool2d {
    /// Pools to `output_size` (`1`: global average pooling).
    pub fn new(output_size: impl Into<Pair>) -> Self {
        AdaptiveAvgPool2d {
            hooks: Hooks::new(),
            output_size: output_size.into().0,
        }
    }
}

impl<T: Float> Module<T> for AdaptiveAvgPool2d {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.adaptive_avg_pool2d(self.output_size)
    }
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.output_size)
    }
}

/// Max pooling to a fixed output size.
#[derive(Module)]
pub struct AdaptiveMaxPool2d {
    /// Output height and width.
    #[module(skip)]
    pub output_size: [usize; 2],
    hooks: Hooks,
}

impl AdaptiveMaxPool2d {
    /// Pools to `output_size`.
    pub fn new(output_size: impl Into<Pair>) -> Self {
        AdaptiveMaxPool2d {
            hooks: Hooks::new(),
            output_size: output_size.into().0,
        }
    }

    /// The pooled tensor and where each maximum came from (see
    /// [`Tensor::adaptive_max_pool2d_with_indices`]); forward hooks do not run.
    pub fn forward_with_indices<T: Float>(&self, x: &Tensor<T>) -> (Tensor<T>, PoolIndices) {
        x.adaptive_max_pool2d_with_indices(self.output_size)
    }
}

impl<T: Float> Module<T> for AdaptiveMaxPool2d {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.adaptive_max_pool2d(self.output_size)
    }
    fn describe(&self) -> String {
        format!("AdaptiveMaxPool2d(output_size={:?})", self.output_size)
    }
}
