//! GoogLeNet (Inception v1) as torchvision's `googlenet`: a convolutional
//! stem, nine Inception blocks, global average pooling, dropout 0.2 and a
//! linear classifier; optional auxiliary classifiers after inception4a and
//! inception4d, used in training only. Parameter counts for 1000 classes
//! equal torchvision's: 13,004,888 with the auxiliary heads, 6,624,904 without.
//!
//! ```
//! use autograd::Tensor;
//! use models::{GoogLeNet, GoogLeNetConfig};
//! use nn::Module;
//! let net = GoogLeNet::new(GoogLeNetConfig::default().num_classes(10));
//! let out = net.forward_train(&Tensor::zeros([2, 3, 64, 64]));
//! assert_eq!(out.logits.shape(), vec![2, 10]);
//! assert!(out.aux1.is_some() && out.aux2.is_some());
//! ```

use autograd::{Float, Tensor};
use nn::init;
use nn::{
    AdaptiveAvgPool2d, BasicConv2d, Conv2dConfig, Dropout, Hooks, Inception, InceptionConfig,
    Linear, LinearConfig, MaxPool2d, Module, PoolConfig,
};

/// Options of [`GoogLeNet`]; torchvision's defaults (3 channels, 1000 classes, auxiliary heads).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GoogLeNetConfig {
    /// Input channels (default 3).
    pub in_channels: usize,
    /// Number of classes, the output width (default 1000).
    pub num_classes: usize,
    /// Whether to build the two auxiliary classifiers (default `true`).
    pub aux_logits: bool,
    /// Drop probability before the main classifier (default 0.2).
    pub dropout: f64,
    /// Drop probability in the auxiliary classifiers (default 0.7).
    pub dropout_aux: f64,
}

impl Default for GoogLeNetConfig {
    fn default() -> Self {
        GoogLeNetConfig {
            in_channels: 3,
            num_classes: 1000,
            aux_logits: true,
            dropout: 0.2,
            dropout_aux: 0.7,
        }
    }
}

impl GoogLeNetConfig {
    /// Number of classes.
    pub fn num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }
    /// With or without the auxiliary classifiers.
    pub fn aux_logits(mut self, on: bool) -> Self {
        self.aux_logits = on;
        self
    }
    /// Input channels.
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = c;
        self
    }
}

/// An auxiliary classifier: 4x4 average pool, 1x1 conv to 128, FC 2048 -> 1024, dropout, FC.
#[derive(Module)]
pub struct InceptionAux<T: Float = f32> {
    /// 1x1 convolution to 128 channels, with batch norm and ReLU.
    pub conv: BasicConv2d<T>,
    /// Fully connected layer, 2048 -> 1024, followed by ReLU.
    pub fc1: Linear<T>,
    /// Fully connected layer, 1024 -> `num_classes`.
    pub fc2: Linear<T>,
    /// Dropout between `fc1` and `fc2`.
    pub dropout: Dropout<T>,
    hooks: Hooks,
}

impl<T: Float> InceptionAux<T> {
    fn build(in_channels: usize, num_classes: usize, dropout: f64) -> Self {
        InceptionAux {
            hooks: Hooks::new(),
            conv: BasicConv2d::build(Conv2dConfig::new(in_channels, 128, 1)),
            fc1: Linear::build(LinearConfig::new(2048, 1024)),
            fc2: Linear::build(LinearConfig::new(1024, num_classes)),
            dropout: Dropout::build(dropout),
        }
    }
}

impl<T: Float> Module<T> for InceptionAux<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let h = x.adaptive_avg_pool2d(4);
        let h = self.conv.forward(&h).flatten(1, -1);
        let h = self.fc1.forward(&h).relu();
        self.fc2.forward(&self.dropout.forward(&h))
    }
    fn describe(&self) -> String {
        "InceptionAux".into()
    }
}

/// GoogLeNet's outputs in training: the main logits and, with auxiliary heads, theirs.
pub struct GoogLeNetOutput<T: Float = f32> {
    /// The main classifier's logits, `[batch, num_classes]`.
    pub logits: Tensor<T>,
    /// The first auxiliary head's logits (after inception4a); `None` without heads or in eval mode.
    pub aux1: Option<Tensor<T>>,
    /// The second auxiliary head's logits (after inception4d); `None` without heads or in eval mode.
    pub aux2: Option<Tensor<T>>,
}

/// GoogLeNet (Inception v1).
#[derive(Module)]
pub struct GoogLeNet<T: Float = f32> {
    /// Stem: 7x7 stride-2 convolution to 64 channels, padding 3.
    pub conv1: BasicConv2d<T>,
    /// 3x3 stride-2 max-pool (ceil mode).
    pub maxpool1: MaxPool2d,
    /// 1x1 convolution, 64 -> 64.
    pub conv2: BasicConv2d<T>,
    /// 3x3 convolution, 64 -> 192, padding 1.
    pub conv3: BasicConv2d<T>,
    /// 3x3 stride-2 max-pool (ceil mode).
    pub maxpool2: MaxPool2d,
    /// Inception block, 192 -> 256 channels.
    pub inception3a: Inception<T>,
    /// Inception block, 256 -> 480 channels.
    pub inception3b: Inception<T>,
    /// 3x3 stride-2 max-pool (ceil mode).
    pub maxpool3: MaxPool2d,
    /// Inception block, 480 -> 512 channels.
    pub inception4a: Inception<T>,
    /// Inception block, 512 -> 512 channels.
    pub inception4b: Inception<T>,
    /// Inception block, 512 -> 512 channels.
    pub inception4c: Inception<T>,
    /// Inception block, 512 -> 528 channels.
    pub inception4d: Inception<T>,
    /// Inception block, 528 -> 832 channels.
    pub inception4e: Inception<T>,
    /// 2x2 stride-2 max-pool (ceil mode).
    pub maxpool4: MaxPool2d,
    /// Inception block, 832 -> 832 channels.
    pub inception5a: Inception<T>,
    /// Inception block, 832 -> 1024 channels.
    pub inception5b: Inception<T>,
    /// Auxiliary classifier on inception4a's output (512 channels), if `aux_logits`.
    pub aux1: Option<InceptionAux<T>>,
    /// Auxiliary classifier on inception4d's output (528 channels), if `aux_logits`.
    pub aux2: Option<InceptionAux<T>>,
    /// Global average pool to 1x1.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before the classifier.
    pub dropout: Dropout<T>,
    /// The classifier, 1024 -> `num_classes`.
    pub fc: Linear<T>,
    #[module(skip)]
    config: GoogLeNetConfig,
    #[module(skip)]
    training: std::sync::atomic::AtomicBool,
    hooks: Hooks,
}

impl GoogLeNet {
    /// In f32.
    pub fn new(config: GoogLeNetConfig) -> Self {
        Self::build(config)
    }
}

impl<T: Float> GoogLeNet<T> {
    /// torchvision's initialisation (`init_weights=True`): conv and linear
    /// weights N(0, 0.01) truncated at +-2 (i.e. 200 standard deviations:
    /// plain normal in practice), batch norm weight 1 and bias 0.
    pub fn build(config: GoogLeNetConfig) -> Self {
        let pool = |k: usize| MaxPool2d::new(PoolConfig::new(k).stride(2).ceil_mode(true));
        let inc = |a, b, c, d, e, f, g| Inception::build(InceptionConfig::new(a, b, c, d, e, f, g));
        let net = GoogLeNet {
            hooks: Hooks::new(),
            conv1: BasicConv2d::build(
                Conv2dConfig::new(config.in_channels, 64, 7)
                    .stride(2)
                    .padding(3),
            ),
            maxpool1: pool(3),
            conv2: BasicConv2d::build(Conv2dConfig::new(64, 64, 1)),
            conv3: BasicConv2d::build(Conv2dConfig::new(64, 192, 3).padding(1)),
            maxpool2: pool(3),
            inception3a: inc(192, 64, 96, 128, 16, 32, 32),
            inception3b: inc(256, 128, 128, 192, 32, 96, 64),
            maxpool3: pool(3),
            inception4a: inc(480, 192, 96, 208, 16, 48, 64),
            inception4b: inc(512, 160, 112, 224, 24, 64, 64),
            inception4c: inc(512, 128, 128, 256, 24, 64, 64),
            inception4d: inc(512, 112, 144, 288, 32, 64, 64),
            inception4e: inc(528, 256, 160, 320, 32, 128, 128),
            maxpool4: pool(2),
            inception5a: inc(832, 256, 160, 320, 32, 128, 128),
            inception5b: inc(832, 384, 192, 384, 48, 128, 128),
            aux1: config
                .aux_logits
                .then(|| InceptionAux::build(512, config.num_classes, config.dropout_aux)),
            aux2: config
                .aux_logits
                .then(|| InceptionAux::build(528, config.num_classes, config.dropout_aux)),
            avgpool: AdaptiveAvgPool2d::new(1),
            dropout: Dropout::build(config.dropout),
            fc: Linear::build(LinearConfig::new(1024, config.num_classes)),
            config,
            training: std::sync::atomic::AtomicBool::new(true),
        };
        // Batch norms already start at weight 1, bias 0; linear biases keep PyTorch's default.
        for p in net.parameters().into_iter().filter(|p| p.ndim() >= 2) {
            init::normal_(&p, 0.0, 0.01);
        }
        net
    }

    /// The forward pass with the auxiliary outputs (in training mode, when the heads exist).
    pub fn forward_train(&self, x: &Tensor<T>) -> GoogLeNetOutput<T> {
        let training = self.training.load(std::sync::atomic::Ordering::Relaxed);
        let f = |m: &dyn Module<T>, h: &Tensor<T>| m.forward(h);
        let h = f(&self.maxpool1, &f(&self.conv1, x));
        let h = f(&self.maxpool2, &f(&self.conv3, &f(&self.conv2, &h)));
        let h = f(
            &self.maxpool3,
            &f(&self.inception3b, &f(&self.inception3a, &h)),
        );
        let h = f(&self.inception4a, &h);
        let aux1 = self.aux1.as_ref().filter(|_| training).map(|a| f(a, &h));
        let h = f(
            &self.inception4d,
            &f(&self.inception4c, &f(&self.inception4b, &h)),
        );
        let aux2 = self.aux2.as_ref().filter(|_| training).map(|a| f(a, &h));
        let h = f(&self.maxpool4, &f(&self.inception4e, &h));
        let h = f(&self.inception5b, &f(&self.inception5a, &h));
        let h = f(&self.avgpool, &h).flatten(1, -1);
        let logits = f(&self.fc, &f(&self.dropout, &h));
        GoogLeNetOutput { logits, aux1, aux2 }
    }
}

impl<T: Float> Module<T> for GoogLeNet<T> {
    /// The main logits (auxiliary heads are only run by [`GoogLeNet::forward_train`]).
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let was = self
            .training
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let out = self.forward_train(x).logits;
        self.training
            .store(was, std::sync::atomic::Ordering::Relaxed);
        out
    }
    fn set_own_training(&self, training: bool) {
        self.training
            .store(training, std::sync::atomic::Ordering::Relaxed);
    }
    fn describe(&self) -> String {
        format!(
            "GoogLeNet(num_classes={}, aux_logits={})",
            self.config.num_classes, self.config.aux_logits
        )
    }
}
