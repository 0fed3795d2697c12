//! VGG-11/13/16/19, with or without batch norm, laid out and named as
//! torchvision's `vgg*` (`features.N`, `avgpool`, `classifier.N`), with an
//! adaptive average pool so small inputs work. Parameter counts for 1000
//! classes equal torchvision's (VGG-16: 138,357,544).
//!
//! ```
//! use autograd::Tensor;
//! use models::{vgg, VggConfig, VggKind};
//! use nn::Module;
//! // A CIFAR-sized VGG-11-BN: 1x1 average pool and a single Linear head.
//! let net = vgg(VggConfig::new(VggKind::Vgg11, true).num_classes(10).compact_head());
//! assert_eq!(net.forward(&Tensor::zeros([2, 3, 32, 32])).shape(), vec![2, 10]);
//! ```

use autograd::{Float, Tensor};
use nn::init::{self, FanMode, Nonlinearity};
use nn::{
    AdaptiveAvgPool2d, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Dropout, Hooks, Linear,
    LinearConfig, MaxPool2d, Module, PoolConfig, ReLU, Sequential,
};

/// Depth of a VGG network (torchvision's configurations A, B, D, E).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggKind {
    /// VGG-11 (configuration A): 8 convolutions.
    Vgg11,
    /// VGG-13 (configuration B): 10 convolutions.
    Vgg13,
    /// VGG-16 (configuration D): 13 convolutions.
    Vgg16,
    /// VGG-19 (configuration E): 16 convolutions.
    Vgg19,
}

impl VggKind {
    /// Channels per convolution; 0 marks a 2x2 max-pool.
    fn layers(self) -> &'static [usize] {
        match self {
            VggKind::Vgg11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
            VggKind::Vgg13 => &[
                64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
            ],
            VggKind::Vgg16 => &[
                64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
            ],
            VggKind::Vgg19 => &[
                64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512,
                512, 512, 0,
            ],
        }
    }
}

/// Options of [`Vgg`]: torchvision's defaults (3 input channels, 1000
/// classes, 7x7 average pool, the 4096-4096 classifier with dropout 0.5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VggConfig {
    /// Which network (depth).
    pub kind: VggKind,
    /// Batch norm after each convolution (torchvision's `vgg*_bn`).
    pub batch_norm: bool,
    /// Input channels (default 3).
    pub in_channels: usize,
    /// Number of classes, the output width (default 1000).
    pub num_classes: usize,
    /// Output size of the adaptive average pool (torchvision: 7).
    pub pool_size: usize,
    /// `false` (default): torchvision's three-layer classifier; `true`: one Linear(512 * pool^2, classes).
    pub compact_head: bool,
    /// Drop probability in the three-layer classifier (default 0.5).
    pub dropout: f64,
}

impl VggConfig {
    /// torchvision's layout for `kind`, with or without batch norm.
    pub fn new(kind: VggKind, batch_norm: bool) -> Self {
        VggConfig {
            kind,
            batch_norm,
            in_channels: 3,
            num_classes: 1000,
            pool_size: 7,
            compact_head: false,
            dropout: 0.5,
        }
    }
    /// Number of classes.
    pub fn num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }
    /// Input channels (1 for MNIST).
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self
    }
    /// A 1x1 average pool and a single Linear(512, classes) head, for small images.
    pub fn compact_head(mut self) -> Self {
        self.pool_size = 1;
        self.compact_head = true;
        self
    }
}

/// A VGG network.
#[derive(Module)]
pub struct Vgg<T: Float = f32> {
    /// The convolutions, (batch norms,) ReLUs and max-pools (`features.N`).
    pub features: Sequential<T>,
    /// Adaptive average pool to `pool_size` x `pool_size`.
    pub avgpool: AdaptiveAvgPool2d,
    /// The classifier head (`classifier.N`).
    pub classifier: Sequential<T>,
    #[module(skip)]
    config: VggConfig,
    hooks: Hooks,
}

/// A VGG network in f32.
pub fn vgg(config: VggConfig) -> Vgg {
    Vgg::build(config)
}

impl<T: Float> Vgg<T> {
    /// torchvision's initialisation: He normal (fan_out) convolutions, N(0, 0.01) linear weights, zero biases.
    pub fn build(config: VggConfig) -> Self {
        let mut features = Sequential::build();
        let mut c_in = config.in_channels;
        for &v in config.kind.layers() {
            if v == 0 {
                features = features.add(MaxPool2d::new(PoolConfig::new(2)));
                continue;
            }
            let conv = Conv2d::build(Conv2dConfig::new(c_in, v, 3).padding(1));
            init::kaiming_normal_(&conv.weight, FanMode::FanOut, Nonlinearity::Relu);
            init::zeros_(conv.bias.as_ref().expect("bias"));
            features = features.add(conv);
            if config.batch_norm {
                features = features.add(BatchNorm2d::<T>::build(BatchNormConfig::new(v)));
            }
            features = features.add(ReLU);
            c_in = v;
        }
        let flat = 512 * config.pool_size * config.pool_size;
        let linear = |i, o| {
            let l = Linear::build(LinearConfig::new(i, o));
            init::normal_(&l.weight, 0.0, 0.01);
            init::zeros_(l.bias.as_ref().expect("bias"));
            l
        };
        let classifier = if config.compact_head {
            Sequential::build().add(linear(flat, config.num_classes))
        } else {
            Sequential::build()
                .add(linear(flat, 4096))
                .add(ReLU)
                .add(Dropout::<T>::build(config.dropout))
                .add(linear(4096, 4096))
                .add(ReLU)
                .add(Dropout::<T>::build(config.dropout))
                .add(linear(4096, config.num_classes))
        };
        Vgg {
            hooks: Hooks::new(),
            features,
            avgpool: AdaptiveAvgPool2d::new(config.pool_size),
            classifier,
            config,
        }
    }
}

impl<T: Float> Module<T> for Vgg<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let h = self.features.forward(x);
        let h = self.avgpool.forward(&h).flatten(1, -1);
        self.classifier.forward(&h)
    }
    fn describe(&self) -> String {
        format!(
            "VGG({:?}, batch_norm={}, num_classes={})",
            self.config.kind, self.config.batch_norm, self.config.num_classes
        )
    }
}
