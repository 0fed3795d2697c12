//! The Inception block of GoogLeNet (v1), laid out and named as torchvision's
//! `Inception`: four branches concatenated on channels —
//! `branch1` 1x1; `branch2` 1x1 -> 3x3; `branch3` 1x1 -> 3x3 (torchvision's
//! "5x5" branch uses 3x3); `branch4` 3x3 max-pool (stride 1, ceil mode) -> 1x1.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Inception, InceptionConfig, Module};
//! // GoogLeNet's inception3a.
//! let block = Inception::new(InceptionConfig::new(192, 64, 96, 128, 16, 32, 32));
//! let y = block.forward(&Tensor::zeros([1, 192, 7, 7]));
//! assert_eq!(y.shape(), vec![1, 64 + 128 + 32 + 32, 7, 7]);
//! assert_eq!(block.num_parameters(), 155_872);
//! ```

use autograd::{Float, Tensor};

use crate::{BasicConv2d, Conv2dConfig, Hooks, MaxPool2d, Module, PoolConfig, Sequential};

/// Channel counts of an Inception block (torchvision's argument order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InceptionConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the 1x1 branch (`branch1`).
    pub ch1x1: usize,
    /// Channels of the 1x1 reduction before the 3x3 in `branch2`.
    pub ch3x3red: usize,
    /// Output channels of `branch2`'s 3x3.
    pub ch3x3: usize,
    /// Channels of the 1x1 reduction in `branch3` (torchvision's "5x5" branch).
    pub ch5x5red: usize,
    /// Output channels of `branch3`'s 3x3 (torchvision's "5x5").
    pub ch5x5: usize,
    /// Output channels of the 1x1 after the max-pool (`branch4`).
    pub pool_proj: usize,
}

impl InceptionConfig {
    /// In torchvision's order: in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection.
    pub fn new(
        in_channels: usize,
        ch1x1: usize,
        ch3x3red: usize,
        ch3x3: usize,
        ch5x5red: usize,
        ch5x5: usize,
        pool_proj: usize,
    ) -> Self {
        InceptionConfig {
            in_channels,
            ch1x1,
            ch3x3red,
            ch3x3,
            ch5x5red,
            ch5x5,
            pool_proj,
        }
    }

    /// Output channels: the four branches together.
    pub fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }
}

/// Four parallel branches, concatenated on channels.
#[derive(Module)]
pub struct Inception<T: Float = f32> {
    /// 1x1 branch.
    pub branch1: BasicConv2d<T>,
    /// 1x1 reduce -> 3x3 branch (`0`, `1`).
    pub branch2: Sequential<T>,
    /// 1x1 reduce -> 3x3 branch (torchvision's "5x5" branch; `0`, `1`).
    pub branch3: Sequential<T>,
    /// 3x3 max-pool (stride 1, ceil mode) -> 1x1 projection branch (`0`, `1`).
    pub branch4: Sequential<T>,
    #[module(skip)]
    config: InceptionConfig,
    hooks: Hooks,
}

impl Inception {
    /// In f32 (use `Inception::<f64>::build` for another precision).
    pub fn new(c: InceptionConfig) -> Self {
        Self::build(c)
    }
}

impl<T: Float> Inception<T> {
    /// A block with fresh weights.
    pub fn build(c: InceptionConfig) -> Self {
        Inception {
            hooks: Hooks::new(),
            branch1: BasicConv2d::build(Conv2dConfig::new(c.in_channels, c.ch1x1, 1)),
            branch2: Sequential::build()
                .add(BasicConv2d::build(Conv2dConfig::new(
                    c.in_channels,
                    c.ch3x3red,
                    1,
                )))
                .add(BasicConv2d::build(
                    Conv2dConfig::new(c.ch3x3red, c.ch3x3, 3).padding(1),
                )),
            branch3: Sequential::build()
                .add(BasicConv2d::build(Conv2dConfig::new(
                    c.in_channels,
                    c.ch5x5red,
                    1,
                )))
                .add(BasicConv2d::build(
                    Conv2dConfig::new(c.ch5x5red, c.ch5x5, 3).padding(1),
                )),
            branch4: Sequential::build()
                .add(MaxPool2d::new(
                    PoolConfig::new(3).stride(1).padding(1).ceil_mode(true),
                ))
                .add(BasicConv2d::build(Conv2dConfig::new(
                    c.in_channels,
                    c.pool_proj,
                    1,
                ))),
            config: c,
        }
    }
}

impl<T: Float> Module<T> for Inception<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let outs = [
            self.branch1.forward(x),
            self.branch2.forward(x),
            self.branch3.forward(x),
            self.branch4.forward(x),
        ];
        Tensor::cat(&outs, 1)
    }
    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "Inception({}, {}, {}, {}, {}, {}, {})",
            c.in_channels, c.ch1x1, c.ch3x3red, c.ch3x3, c.ch5x5red, c.ch5x5, c.pool_proj
        )
    }
}
