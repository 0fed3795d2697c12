//! `ConvTranspose2d`: weight `[in, out / groups, kh, kw]` (PyTorch's layout), optional bias `[out]`.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{ConvTranspose2d, ConvTranspose2dConfig, Module};
//! let up = ConvTranspose2d::new(ConvTranspose2dConfig::new(8, 4, 4).stride(2).padding(1));
//! assert_eq!(up.forward(&Tensor::zeros([1, 8, 7, 7])).shape(), vec![1, 4, 14, 14]);
//! ```

use autograd::ops::conv::Pair;
use autograd::{ConvOptions, Float, Tensor};

use crate::init;
use crate::{Hooks, Module};

/// Options of [`ConvTranspose2d`]; defaults as PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Upsampling factor, `[h, w]` (default 1).
    pub stride: [usize; 2],
    /// Rows/columns removed from each side of the output, `[h, w]` (default 0).
    pub padding: [usize; 2],
    /// Extra rows/columns added on one side of the output, `[h, w]` (default 0).
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps, `[h, w]` (default 1).
    pub dilation: [usize; 2],
    /// Channel groups (default 1).
    pub groups: usize,
    /// Whether there is a bias (default true).
    pub bias: bool,
}

impl ConvTranspose2dConfig {
    /// `in_channels -> out_channels` with a `kernel_size` kernel.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Into<Pair>) -> Self {
        ConvTranspose2dConfig {
            in_channels,
            out_channels,
            kernel_size: kernel_size.into().0,
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }
    /// Upsampling factor.
    pub fn stride(mut self, s: impl Into<Pair>) -> Self {
        self.stride = s.into().0;
        self
    }
    /// Rows/columns removed from each side of the output.
    pub fn padding(mut self, p: impl Into<Pair>) -> Self {
        self.padding = p.into().0;
        self
    }
    /// Extra rows/columns on one side of the output.
    pub fn output_padding(mut self, p: impl Into<Pair>) -> Self {
        self.output_padding = p.into().0;
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
}

/// A transposed 2-D convolution layer (learned upsampling).
#[derive(Module)]
pub struct ConvTranspose2d<T: Float = f32> {
    /// The filters, `[in_channels, out_channels / groups, kh, kw]` (PyTorch's layout).
    #[param]
    pub weight: Tensor<T>,
    /// The bias, `[out_channels]`; `None` when built without one.
    #[param]
    pub bias: Option<Tensor<T>>,
    #[module(skip)]
    config: ConvTranspose2dConfig,
    hooks: Hooks,
}

impl ConvTranspose2d {
    /// In f32 (use `ConvTranspose2d::<f64>::build` for another precision).
    pub fn new(config: ConvTranspose2dConfig) -> Self {
        Self::build(config)
    }
}

impl<T: Float> ConvTranspose2d<T> {
    /// PyTorch's default initialisation (fan_in from the weight's dim 1, as PyTorch computes it).
    ///
    /// # Panics
    /// If `groups` does not divide both channel counts.
    pub fn build(config: ConvTranspose2dConfig) -> Self {
        let c = &config;
        assert!(
            c.groups > 0
                && c.in_channels.is_multiple_of(c.groups)
                && c.out_channels.is_multiple_of(c.groups),
            "ConvTranspose2d: groups {} must divide in_channels {} and out_channels {}",
            c.groups,
            c.in_channels,
            c.out_channels
        );
        let [kh, kw] = c.kernel_size;
        let weight =
            Tensor::zeros([c.in_channels, c.out_channels / c.groups, kh, kw]).requires_grad_();
        let bias = c
            .bias
            .then(|| Tensor::zeros([c.out_channels]).requires_grad_());
        init::pytorch_default_(&weight, bias.as_ref());
        ConvTranspose2d {
            hooks: Hooks::new(),
            weight,
            bias,
            config,
        }
    }
}

impl<T: Float> Module<T> for ConvTranspose2d<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        let c = &self.config;
        let opts = ConvOptions::new()
            .stride(c.stride)
            .padding(c.padding)
            .output_padding(c.output_padding)
            .dilation(c.dilation)
            .groups(c.groups);
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), opts)
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "ConvTranspose2d({}, {}, kernel_size={:?}, stride={:?}, padding={:?}, output_padding={:?})",
            c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.output_padding
        )
    }
}
