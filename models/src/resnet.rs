//! ResNet-18/34/50/101/152 as torchvision's `resnet*` (`conv1`, `bn1`,
//! `layer1`..`layer4`, `fc`; ResNet-18: 11,689,512 parameters), the CIFAR
//! ResNets of the ResNet paper (ResNet-20/32/44/56/110: 3x3 stem, three
//! stages of 16/32/64 channels; ResNet-20: about 0.27 M parameters), and an
//! option for a small-input stem (3x3 stride 1, no max-pool).
//!
//! ```
//! use autograd::Tensor;
//! use models::{cifar_resnet, resnet, ResNetConfig, ResNetKind};
//! use nn::Module;
//! let r18 = resnet(ResNetConfig::new(ResNetKind::ResNet18));
//! assert_eq!(r18.num_parameters(), 11_689_512);
//! let r20 = cifar_resnet(20, 10, 3);
//! assert_eq!(r20.forward(&Tensor::zeros([2, 3, 32, 32])).shape(), vec![2, 10]);
//! ```

use autograd::{Float, Tensor};
use nn::init::{self, FanMode, Nonlinearity};
use nn::{
    AdaptiveAvgPool2d, BasicBlock, BatchNorm2d, BatchNormConfig, BlockConfig, Bottleneck, Conv2d,
    Conv2dConfig, Hooks, Linear, LinearConfig, MaxPool2d, Module, PoolConfig, Sequential,
};

/// Which residual network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetKind {
    /// ResNet-18: basic blocks, 2-2-2-2 (torchvision's `resnet18`).
    ResNet18,
    /// ResNet-34: basic blocks, 3-4-6-3 (torchvision's `resnet34`).
    ResNet34,
    /// ResNet-50: bottleneck blocks, 3-4-6-3 (torchvision's `resnet50`).
    ResNet50,
    /// ResNet-101: bottleneck blocks, 3-4-23-3 (torchvision's `resnet101`).
    ResNet101,
    /// ResNet-152: bottleneck blocks, 3-8-36-3 (torchvision's `resnet152`).
    ResNet152,
    /// The CIFAR family: depth `6n + 2` (20, 32, 44, 56, 110).
    Cifar(usize),
}

impl ResNetKind {
    fn bottleneck(self) -> bool {
        matches!(
            self,
            ResNetKind::ResNet50 | ResNetKind::ResNet101 | ResNetKind::ResNet152
        )
    }

    /// Blocks per stage.
    fn blocks(self) -> Vec<usize> {
        match self {
            ResNetKind::ResNet18 => vec![2, 2, 2, 2],
            ResNetKind::ResNet34 | ResNetKind::ResNet50 => vec![3, 4, 6, 3],
            ResNetKind::ResNet101 => vec![3, 4, 23, 3],
            ResNetKind::ResNet152 => vec![3, 8, 36, 3],
            ResNetKind::Cifar(depth) => vec![(depth - 2) / 6; 3],
        }
    }

    /// Channels (`planes`) per stage.
    fn widths(self) -> Vec<usize> {
        match self {
            ResNetKind::Cifar(_) => vec![16, 32, 64],
            _ => vec![64, 128, 256, 512],
        }
    }
}

/// Options of [`ResNet`]; torchvision's defaults (3 channels, 1000 classes, ImageNet stem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Which network: depth and block type.
    pub kind: ResNetKind,
    /// Input channels (default 3).
    pub in_channels: usize,
    /// Number of classes, the output width (default 1000).
    pub num_classes: usize,
    /// 3x3 stride-1 stem without max-pool (for 32x32 images); default `true` only for the CIFAR family.
    pub small_input_stem: bool,
    /// Start each block's last batch-norm weight at zero (default `false`).
    pub zero_init_residual: bool,
}

impl ResNetConfig {
    /// torchvision's layout for `kind`.
    pub fn new(kind: ResNetKind) -> Self {
        ResNetConfig {
            kind,
            in_channels: 3,
            num_classes: 1000,
            small_input_stem: matches!(kind, ResNetKind::Cifar(_)),
            zero_init_residual: false,
        }
    }
    /// Number of classes.
    pub fn num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }
    /// Input channels.
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self
    }
    /// The 3x3, stride-1, no-max-pool stem for small images.
    pub fn small_input_stem(mut self, on: bool) -> Self {
        self.small_input_stem = on;
        self
    }
}

/// A residual network.
#[derive(Module)]
pub struct ResNet<T: Float = f32> {
    /// Stem convolution without bias: 7x7 stride 2, or 3x3 stride 1 with the small-input stem.
    pub conv1: Conv2d<T>,
    /// Batch norm after the stem convolution.
    pub bn1: BatchNorm2d<T>,
    /// 3x3 stride-2 max-pool after the stem; `None` with the small-input stem.
    pub maxpool: Option<MaxPool2d>,
    /// `layer1`, `layer2`, ...: one Sequential of blocks per stage.
    #[module(name = "layer{}", start = 1)]
    pub layers: Vec<Sequential<T>>,
    /// Global average pool to 1x1.
    pub avgpool: AdaptiveAvgPool2d,
    /// The classifier, final channels -> `num_classes`.
    pub fc: Linear<T>,
    #[module(skip)]
    config: ResNetConfig,
    hooks: Hooks,
}

/// A torchvision-layout ResNet in f32.
pub fn resnet(config: ResNetConfig) -> ResNet {
    ResNet::build(config)
}

/// A CIFAR ResNet of the given depth (`6n + 2`) in f32.
///
/// # Panics
/// If `depth` is not of the form `6n + 2`.
pub fn cifar_resnet(depth: usize, num_classes: usize, in_channels: usize) -> ResNet {
    assert!(
        depth >= 8 && (depth - 2).is_multiple_of(6),
        "CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}"
    );
    ResNet::build(
        ResNetConfig::new(ResNetKind::Cifar(depth))
            .num_classes(num_classes)
            .in_channels(in_channels),
    )
}

impl<T: Float> ResNet<T> {
    /// torchvision's initialisation: He normal (fan_out) convolutions,
    /// batch norm weight 1 and bias 0, PyTorch's default for the classifier.
    pub fn build(config: ResNetConfig) -> Self {
        let kind = config.kind;
        let widths = kind.widths();
        let stem = widths[0];
        let conv1 = if config.small_input_stem {
            Conv2d::build(
                Conv2dConfig::new(config.in_channels, stem, 3)
                    .padding(1)
                    .bias(false),
            )
        } else {
            Conv2d::build(
                Conv2dConfig::new(config.in_channels, stem, 7)
                    .stride(2)
                    .padding(3)
                    .bias(false),
            )
        };
        init::kaiming_normal_(&conv1.weight, FanMode::FanOut, Nonlinearity::Relu);
        let expansion = if kind.bottleneck() {
            Bottleneck::<T>::EXPANSION
        } else {
            BasicBlock::<T>::EXPANSION
        };
        let mut inplanes = stem;
        let mut layers = Vec::new();
        for (stage, (&planes, &n)) in widths.iter().zip(&kind.blocks()).enumerate() {
            let mut seq = Sequential::build();
            for b in 0..n {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                let cfg = BlockConfig::new(inplanes, planes)
                    .stride(stride)
                    .zero_init_residual(config.zero_init_residual);
                seq = if kind.bottleneck() {
                    seq.add(Bottleneck::<T>::build(cfg))
                } else {
                    seq.add(BasicBlock::<T>::build(cfg))
                };
                inplanes = planes * expansion;
            }
            layers.push(seq);
        }
        ResNet {
            hooks: Hooks::new(),
            conv1,
            bn1: BatchNorm2d::build(BatchNormConfig::new(stem)),
            maxpool: (!config.small_input_stem)
                .then(|| MaxPool2d::new(PoolConfig::new(3).stride(2).padding(1))),
            layers,
            avgpool: AdaptiveAvgPool2d::new(1),
            fc: Linear::build(LinearConfig::new(inplanes, config.num_classes)),
            config,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> ResNetConfig {
        self.config
    }
}

impl<T: Float> Module<T> for ResNet<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut h = nn::conv_bn(&self.conv1, &self.bn1, x, true);
        if let Some(p) = &self.maxpool {
            h = p.forward(&h);
        }
        for l in &self.layers {
            h = l.forward(&h);
        }
        let h = self.avgpool.forward(&h).flatten(1, -1);
        self.fc.forward(&h)
    }
    fn describe(&self) -> String {
        format!(
            "ResNet({:?}, num_classes={})",
            self.config.kind, self.config.num_classes
        )
    }
}
