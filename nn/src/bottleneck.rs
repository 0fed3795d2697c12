//! ResNet's `Bottleneck` as torchvision's (v1.5: the stride sits on the 3x3
//! convolution): 1x1 reduce, 3x3, 1x1 expand (x4), each with batch norm, and
//! an identity or projection shortcut.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{BlockConfig, Bottleneck, Module};
//! let b = Bottleneck::new(BlockConfig::new(256, 64));
//! assert_eq!(b.forward(&Tensor::zeros([1, 256, 4, 4])).shape(), vec![1, 256, 4, 4]);
//! assert!(b.downsample.is_none());
//! assert_eq!(b.num_parameters(), 70_400);
//! ```

use autograd::{Float, Tensor};

use crate::basic_block::{projection, resnet_conv};
use crate::init;
use crate::{
    conv_bn, BatchNorm2d, BatchNormConfig, BlockConfig, Conv2d, Conv2dConfig, Hooks, Module,
    Sequential,
};

/// 1x1 -> 3x3 -> 1x1 with a shortcut (expansion 4).
#[derive(Module)]
pub struct Bottleneck<T: Float = f32> {
    /// 1x1 reducing convolution.
    pub conv1: Conv2d<T>,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm2d<T>,
    /// 3x3 convolution (carries the stride and the groups).
    pub conv2: Conv2d<T>,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm2d<T>,
    /// 1x1 expanding convolution (to `planes * 4` channels).
    pub conv3: Conv2d<T>,
    /// Batch norm after `conv3` (zeroed by `zero_init_residual`).
    pub bn3: BatchNorm2d<T>,
    /// Projection shortcut (1x1 conv + batch norm, named `0` and `1`); `None`: identity shortcut.
    pub downsample: Option<Sequential<T>>,
    #[module(skip)]
    config: BlockConfig,
    hooks: Hooks,
}

impl Bottleneck {
    /// In f32 (use `Bottleneck::<f64>::build` for another precision).
    pub fn new(c: BlockConfig) -> Self {
        Self::build(c)
    }
}

impl<T: Float> Bottleneck<T> {
    /// Output channels per `planes`.
    pub const EXPANSION: usize = 4;

    /// A block; the projection shortcut is added when stride or channels change.
    pub fn build(c: BlockConfig) -> Self {
        let width = c.planes * c.base_width / 64 * c.groups;
        let out = c.planes * Self::EXPANSION;
        let d = c.dilation;
        let bn3 = BatchNorm2d::<T>::build(BatchNormConfig::new(out));
        if c.zero_init_residual {
            init::zeros_(bn3.weight.as_ref().expect("affine"));
        }
        Bottleneck {
            hooks: Hooks::new(),
            conv1: resnet_conv(Conv2dConfig::new(c.inplanes, width, 1)),
            bn1: BatchNorm2d::build(BatchNormConfig::new(width)),
            conv2: resnet_conv(
                Conv2dConfig::new(width, width, 3)
                    .stride(c.stride)
                    .padding(d)
                    .dilation(d)
                    .groups(c.groups),
            ),
            bn2: BatchNorm2d::build(BatchNormConfig::new(width)),
            conv3: resnet_conv(Conv2dConfig::new(width, out, 1)),
            bn3,
            downsample: (c.stride != 1 || c.inplanes != out)
                .then(|| projection(c.inplanes, out, c.stride)),
            config: c,
        }
    }

    /// The residual branch alone (without the shortcut and the final ReLU).
    pub fn residual(&self, x: &Tensor<T>) -> Tensor<T> {
        let h = conv_bn(&self.conv1, &self.bn1, x, true);
        let h = conv_bn(&self.conv2, &self.bn2, &h, true);
        conv_bn(&self.conv3, &self.bn3, &h, false)
    }
}

impl<T: Float> Module<T> for Bottleneck<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let identity = match &self.downsample {
            Some(p) => p.forward(x),
            None => x.clone(),
        };
        (self.residual(x) + identity).relu()
    }
    fn describe(&self) -> String {
        format!(
            "Bottleneck({} -> {}x4, stride={})",
            self.config.inplanes, self.config.planes, self.config.stride
        )
    }
}
