//! The book's `DeepConvNet` (`ch08/deep_convnet.py`): six 3x3 convolutions
//! with ReLU, three max-pools, two fully connected layers with dropout.
//! He initialisation (std `sqrt(2 / fan_in)`), zero biases; 123,552
//! parameters for 1x28x28 inputs and 10 classes.
//!
//! | layer | out | kernel | pad | output (28x28 input) |
//! |---|---|---|---|---|
//! | conv1, conv2 | 16 | 3 | 1 | 16x28x28 |
//! | max-pool 2/2 | | | | 16x14x14 |
//! | conv3 | 32 | 3 | 1 | 32x14x14 |
//! | conv4 | 32 | 3 | **2** | 32x16x16 |
//! | max-pool | | | | 32x8x8 |
//! | conv5, conv6 | 64 | 3 | 1 | 64x8x8 |
//! | max-pool | | | | 64x4x4 |
//! | fc1 1024 -> 50, ReLU, dropout 0.5 | | | | 50 |
//! | fc2 50 -> 10, dropout 0.5 | | | | 10 |
//!
//! ```
//! use autograd::Tensor;
//! use models::{DeepConvNet, DeepConvNetConfig};
//! use nn::Module;
//! let net = DeepConvNet::new(DeepConvNetConfig::default());
//! assert_eq!(net.num_parameters(), 123_552);
//! assert_eq!(net.forward(&Tensor::zeros([2, 1, 28, 28])).shape(), vec![2, 10]);
//! ```

use autograd::{Float, Tensor};
use nn::init::{self, FanMode, Nonlinearity};
use nn::{Conv2d, Conv2dConfig, Dropout, Hooks, Linear, LinearConfig, Module};

/// Options of [`DeepConvNet`]; the defaults are the book's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeepConvNetConfig {
    /// Input channels (default 1, MNIST's grey level).
    pub in_channels: usize,
    /// Input height and width (default 28x28); fixes `fc1`'s input size.
    pub input_size: [usize; 2],
    /// Width of the hidden fully connected layer `fc1` (default 50).
    pub hidden: usize,
    /// Number of classes, the output width (default 10).
    pub num_classes: usize,
    /// Drop probability of both dropout layers (default 0.5).
    pub dropout: f64,
}

impl Default for DeepConvNetConfig {
    fn default() -> Self {
        DeepConvNetConfig {
            in_channels: 1,
            input_size: [28, 28],
            hidden: 50,
            num_classes: 10,
            dropout: 0.5,
        }
    }
}

/// The book's deep CNN for MNIST.
#[derive(Module)]
pub struct DeepConvNet<T: Float = f32> {
    /// 3x3 convolution, `in_channels` -> 16, padding 1.
    pub conv1: Conv2d<T>,
    /// 3x3 convolution, 16 -> 16, padding 1.
    pub conv2: Conv2d<T>,
    /// 3x3 convolution, 16 -> 32, padding 1.
    pub conv3: Conv2d<T>,
    /// 3x3 convolution, 32 -> 32, padding 2 (as the book's).
    pub conv4: Conv2d<T>,
    /// 3x3 convolution, 32 -> 64, padding 1.
    pub conv5: Conv2d<T>,
    /// 3x3 convolution, 64 -> 64, padding 1.
    pub conv6: Conv2d<T>,
    /// Fully connected layer, flattened features -> `hidden`.
    pub fc1: Linear<T>,
    /// Dropout after `fc1`'s ReLU.
    pub dropout1: Dropout<T>,
    /// Fully connected layer, `hidden` -> `num_classes`.
    pub fc2: Linear<T>,
    /// Dropout on the logits (as the book's).
    pub dropout2: Dropout<T>,
    #[module(skip)]
    config: DeepConvNetConfig,
    hooks: Hooks,
}

impl DeepConvNet {
    /// In f32.
    pub fn new(config: DeepConvNetConfig) -> Self {
        Self::build(config)
    }
}

/// He initialisation as the book's: N(0, 2 / fan_in), zero bias.
fn he<T: Float>(w: &Tensor<T>, b: Option<&Tensor<T>>) {
    init::kaiming_normal_(w, FanMode::FanIn, Nonlinearity::Relu);
    if let Some(b) = b {
        init::zeros_(b);
    }
}

impl<T: Float> DeepConvNet<T> {
    /// In any precision.
    pub fn build(config: DeepConvNetConfig) -> Self {
        let conv = |i, o, pad| {
            let c = Conv2d::build(Conv2dConfig::new(i, o, 3).padding(pad));
            he(&c.weight, c.bias.as_ref());
            c
        };
        // Spatial size after the three pools (conv4's padding of 2 adds 2).
        let out = |s: usize| ((s / 2 + 2) / 2) / 2;
        let flat = 64 * out(config.input_size[0]) * out(config.input_size[1]);
        let fc = |i, o| {
            let l = Linear::build(LinearConfig::new(i, o));
            he(&l.weight, l.bias.as_ref());
            l
        };
        DeepConvNet {
            hooks: Hooks::new(),
            conv1: conv(config.in_channels, 16, 1),
            conv2: conv(16, 16, 1),
            conv3: conv(16, 32, 1),
            conv4: conv(32, 32, 2),
            conv5: conv(32, 64, 1),
            conv6: conv(64, 64, 1),
            fc1: fc(flat, config.hidden),
            fc2: fc(config.hidden, config.num_classes),
            dropout1: Dropout::build(config.dropout),
            dropout2: Dropout::build(config.dropout),
            config,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> DeepConvNetConfig {
        self.config
    }
}

impl<T: Float> Module<T> for DeepConvNet<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let pool = autograd::PoolOptions::new(2);
        let cr = |c: &Conv2d<T>, h: &Tensor<T>| c.forward_relu(h);
        let h = cr(&self.conv2, &cr(&self.conv1, x)).max_pool2d(pool);
        let h = cr(&self.conv4, &cr(&self.conv3, &h)).max_pool2d(pool);
        let h = cr(&self.conv6, &cr(&self.conv5, &h)).max_pool2d(pool);
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        let h = self.dropout1.forward(&h);
        self.dropout2.forward(&self.fc2.forward(&h))
    }

    fn describe(&self) -> String {
        format!(
            "DeepConvNet(in_channels={}, num_classes={})",
            self.config.in_channels, self.config.num_classes
        )
    }
}
