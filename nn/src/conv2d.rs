//! `Conv2d`: weight `[out, in / groups, kh, kw]`, optional bias `[out]`.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Conv2d, Conv2dConfig, Module};
//! let conv = Conv2d::new(Conv2dConfig::new(1, 16, 3).padding(1));
//! assert_eq!(conv.forward(&Tensor::zeros([2, 1, 28, 28])).shape(), vec![2, 16, 28, 28]);
//! assert_eq!(conv.num_parameters(), 16 * 9 + 16);
//! ```

use autograd::ops::conv::Pair;
use autograd::{ConvOptions, Float, Tensor};

use crate::init;
use crate::{Hooks, Module};

/// Options of [`Conv2d`]; defaults as PyTorch (stride 1, padding 0, dilation 1, groups 1, bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output (number of filters).
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Step between windows, `[h, w]` (default 1).
    pub stride: [usize; 2],
    /// Zero padding on each side, `[h, w]` (default 0).
    pub padding: [usize; 2],
    /// Spacing between kernel taps, `[h, w]` (default 1).
    pub dilation: [usize; 2],
    /// Channel groups (default 1; `in_channels` for a depthwise convolution).
    pub groups: usize,
    /// Whether there is a bias (default true).
    pub bias: bool,
}

impl Conv2dConfig {
    /// `in_channels -> out_channels` with a `kernel_size` kernel.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Into<Pair>) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size: kernel_size.into().0,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }
    /// Step between windows.
    pub fn stride(mut self, s: impl Into<Pair>) -> Self {
        self.stride = s.into().0;
        self
    }
    /// Zero padding on both sides.
    pub fn padding(mut self, p: impl Into<Pair>) -> Self {
        self.padding = p.into().0;
        self
    }
    /// Spacing between kernel taps.
    pub fn dilation(mut self, d: impl Into<Pair>) -> Self {
        self.dilation = d.into().0;
        self
    }
    /// Channel groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With or without a bias.
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }

    pub(crate) fn options(&self) -> ConvOptions {
        ConvOptions::new()
            .stride(self.stride)
            .padding(self.padding)
            .dilation(self.dilation)
            .groups(self.groups)
    }
}

/// A 2-D convolution layer.
#[derive(Module)]
pub struct Conv2d<T: Float = f32> {
    /// The filters, `[out_channels, in_channels / groups, kh, kw]`.
    #[param]
    pub weight: Tensor<T>,
    /// The bias, `[out_channels]`; `None` when built without one.
    #[param]
    pub bias: Option<Tensor<T>>,
    #[module(skip)]
    config: Conv2dConfig,
    hooks: Hooks,
}

impl Conv2d {
    /// In f32 (use `Conv2d::<f64>::build` for another precision).
    pub fn new(config: Conv2dConfig) -> Self {
        Self::build(config)
    }
}

impl<T: Float> Conv2d<T> {
    /// PyTorch's default initialisation.
    ///
    /// # Panics
    /// If `groups` does not divide both channel counts.
    pub fn build(config: Conv2dConfig) -> Self {
        let c = &config;
        assert!(
            c.groups > 0
                && c.in_channels.is_multiple_of(c.groups)
                && c.out_channels.is_multiple_of(c.groups),
            "Conv2d: groups {} must divide in_channels {} and out_channels {}",
            c.groups,
            c.in_channels,
            c.out_channels
        );
        let [kh, kw] = c.kernel_size;
        let weight =
            Tensor::zeros([c.out_channels, c.in_channels / c.groups, kh, kw]).requires_grad_();
        let bias = c
            .bias
            .then(|| Tensor::zeros([c.out_channels]).requires_grad_());
        init::pytorch_default_(&weight, bias.as_ref());
        Conv2d {
            hooks: Hooks::new(),
            weight,
            bias,
            config,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> Conv2dConfig {
        self.config
    }

    /// The layer followed by a ReLU, as one op ([`Tensor::conv2d_relu`]: the
    /// ReLU applied as the outputs are stored). The same values and
    /// gradients as `relu(forward(x))`, which it runs instead when hooks are
    /// registered on the layer (they see the convolution's own output).
    /// [`Sequential`](crate::Sequential) calls it for a `Conv2d` followed by a `ReLU`.
    ///
    /// ```
    /// use autograd::Tensor;
    /// use nn::{Conv2d, Conv2dConfig, Module};
    /// let conv = Conv2d::new(Conv2dConfig::new(1, 4, 3).padding(1));
    /// let x = Tensor::randn([2, 1, 6, 6]);
    /// assert_eq!(conv.forward_relu(&x).to_vec(), conv.forward(&x).relu().to_vec());
    /// ```
    pub fn forward_relu(&self, x: &Tensor<T>) -> Tensor<T> {
        if !self.hooks.is_empty() {
            return self.forward(x).relu();
        }
        x.conv2d_relu(&self.weight, self.bias.as_ref(), self.config.options())
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.config.options())
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "Conv2d({}, {}, kernel_size={:?}, stride={:?}",
            c.in_channels, c.out_channels, c.kernel_size, c.stride
        );
        if c.padding != [0, 0] {
            s += &format!(", padding={:?}", c.padding);
        }
        if c.dilation != [1, 1] {
            s += &format!(", dilation={:?}", c.dilation);
        }
        if c.groups != 1 {
            s += &format!(", groups={}", c.groups);
        }
        if !c.bias {
            s += ", bias=false";
        }
        s + ")"
    }
}
