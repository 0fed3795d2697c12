//! ResNet's `BasicBlock` as torchvision's: two 3x3 convolutions with batch
//! norm, and a shortcut — the identity, or a projection (`downsample`: 1x1
//! conv + batch norm) when the shape changes. `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
//! The identity shortcut is a plain addition, so the upstream gradient
//! reaches the input unchanged.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{BasicBlock, BlockConfig, Module};
//! let down = BasicBlock::new(BlockConfig::new(64, 128).stride(2));
//! assert_eq!(down.forward(&Tensor::zeros([1, 64, 8, 8])).shape(), vec![1, 128, 4, 4]);
//! assert!(down.downsample.is_some());
//! ```

use autograd::{Float, Tensor};

use crate::init;
use crate::{
    conv_bn, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Hooks, Module, Sequential,
};

/// Options of a residual block (torchvision's `BasicBlock` / `Bottleneck` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockConfig {
    /// Input channels of the block.
    pub inplanes: usize,
    /// Channels of the inner convolutions (the output is `planes * EXPANSION`).
    pub planes: usize,
    /// Stride of the block's spatial convolution and of its projection (default 1).
    pub stride: usize,
    /// Convolution groups (ResNeXt; default 1, Bottleneck only).
    pub groups: usize,
    /// Width per group (ResNeXt; default 64, Bottleneck only).
    pub base_width: usize,
    /// Dilation of the 3x3 convolutions (default 1).
    pub dilation: usize,
    /// Start the last batch norm's weight at zero (the block starts as the identity).
    pub zero_init_residual: bool,
}

impl BlockConfig {
    /// `inplanes -> planes` (times the block's expansion), stride 1.
    pub fn new(inplanes: usize, planes: usize) -> Self {
        BlockConfig {
            inplanes,
            planes,
            stride: 1,
            groups: 1,
            base_width: 64,
            dilation: 1,
            zero_init_residual: false,
        }
    }
    /// Stride of the first spatial convolution (and of the projection).
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// Groups and width per group (ResNeXt); Bottleneck only.
    pub fn groups(mut self, groups: usize, base_width: usize) -> Self {
        self.groups = groups;
        self.base_width = base_width;
        self
    }
    /// Zero-initialise the last batch norm's weight.
    pub fn zero_init_residual(mut self, on: bool) -> Self {
        self.zero_init_residual = on;
        self
    }
}

/// The projection shortcut: 1x1 conv (stride, no bias) + batch norm, named `0` and `1`.
pub(crate) fn projection<T: Float>(inplanes: usize, out: usize, stride: usize) -> Sequential<T> {
    Sequential::build()
        .add(resnet_conv::<T>(
            Conv2dConfig::new(inplanes, out, 1).stride(stride),
        ))
        .add(BatchNorm2d::build(BatchNormConfig::new(out)))
}

/// torchvision's ResNet initialisation of a convolution: He normal, fan_out.
pub(crate) fn resnet_conv<T: Float>(cfg: Conv2dConfig) -> Conv2d<T> {
    let c = Conv2d::build(cfg.bias(false));
    init::kaiming_normal_(&c.weight, init::FanMode::FanOut, init::Nonlinearity::Relu);
    c
}

/// Two 3x3 convolutions and a shortcut (expansion 1).
#[derive(Module)]
pub struct BasicBlock<T: Float = f32> {
    /// First 3x3 convolution (carries the stride).
    pub conv1: Conv2d<T>,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm2d<T>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<T>,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm2d<T>,
    /// Projection shortcut (1x1 conv + batch norm, named `0` and `1`); `None`: identity shortcut.
    pub downsample: Option<Sequential<T>>,
    #[module(skip)]
    config: BlockConfig,
    hooks: Hooks,
}

impl BasicBlock {
    /// In f32 (use `BasicBlock::<f64>::build` for another precision).
    pub fn new(c: BlockConfig) -> Self {
        Self::build(c)
    }
}

impl<T: Float> BasicBlock<T> {
    /// Output channels per `planes`.
    pub const EXPANSION: usize = 1;

    /// A block; the projection shortcut is added when stride or channels change.
    ///
    /// # Panics
    /// With groups other than 1 or base width other than 64 (as torchvision).
    pub fn build(c: BlockConfig) -> Self {
        assert!(
            c.groups == 1 && c.base_width == 64,
            "BasicBlock only supports groups=1 and base_width=64"
        );
        let d = c.dilation;
        let bn2 = BatchNorm2d::<T>::build(BatchNormConfig::new(c.planes));
        if c.zero_init_residual {
            init::zeros_(bn2.weight.as_ref().expect("affine"));
        }
        BasicBlock {
            hooks: Hooks::new(),
            conv1: resnet_conv(
                Conv2dConfig::new(c.inplanes, c.planes, 3)
                    .stride(c.stride)
                    .padding(d)
                    .dilation(d),
            ),
            bn1: BatchNorm2d::build(BatchNormConfig::new(c.planes)),
            conv2: resnet_conv(
                Conv2dConfig::new(c.planes, c.planes, 3)
                    .padding(d)
                    .dilation(d),
            ),
            bn2,
            downsample: (c.stride != 1 || c.inplanes != c.planes)
                .then(|| projection(c.inplanes, c.planes, c.stride)),
            config: c,
        }
    }

    /// The residual branch alone (without the shortcut and the final ReLU).
    pub fn residual(&self, x: &Tensor<T>) -> Tensor<T> {
        let h = conv_bn(&self.conv1, &self.bn1, x, true);
        conv_bn(&self.conv2, &self.bn2, &h, false)
    }
}

impl<T: Float> Module<T> for BasicBlock<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let identity = match &self.downsample {
            Some(p) => p.forward(x),
            None => x.clone(),
        };
        (self.residual(x) + identity).relu()
    }
    fn describe(&self) -> String {
        format!(
            "BasicBlock({} -> {}, stride={})",
            self.config.inplanes, self.config.planes, self.config.stride
        )
    }
}
