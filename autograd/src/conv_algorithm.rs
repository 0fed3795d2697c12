//! Which kernels compute convolutions: the default direct and im2col
//! kernels, or with them Winograd's minimal filtering for 3x3 stride-1
//! convolutions, F(2x2, 3x3) or F(4x4, 3x3), where it measured faster or
//! everywhere it applies.
//!
//! Winograd computes each 2x2 block of outputs with 16 multiplications per
//! input and output channel instead of 36 (2.25x fewer), or each 4x4 block
//! with 36 instead of 144 (4x fewer), at the price of transforming inputs,
//! outputs and weights, and of a different order of summation: results
//! differ from the direct kernels' in the last bits of f32, by more for
//! F(4x4, 3x3), whose transforms multiply by up to 8 and divide by up to
//! 24 (both bounded in `autograd/tests/winograd.rs`: 4e-6 and 4e-5 of the
//! largest magnitude of the sums). It applies to f32 convolutions with 3x3
//! kernels, stride 1, no dilation and no groups, on x86-64 CPUs with AVX2
//! and FMA, in the forward pass and in the input gradient (itself such a
//! convolution, of the output gradient with the flipped kernel), and for
//! F(4x4, 3x3) in the weight gradient too; other convolutions run as by
//! default.
//!
//! Measured per layer shape by `cargo bench --bench winograd`
//! (`docs/performance.md`, "Winograd F(4x4, 3x3)"): F(4x4, 3x3)'s forward
//! pass and input gradient are 1.1-3.1x faster than the AVX-512 direct
//! kernels and 1.3-3.4x faster than the AVX2 ones from 32 input and output
//! channels on outputs of 4x4 and up (on AVX-512 from 16, where the
//! gathers run in registers and the blocks' matrices are aligned and
//! skewed), its weight gradient likewise up to 128 channels and from 128
//! on outputs of 256 pixels and fewer; with AVX2 alone 16 channels cost as
//! much in transforms as the products save, outputs of 2x2 fill a quarter of
//! a tile, and a small batch has too few tiles to pay for transforming the
//! weights (batch 1 to 8 on 8x8 or 4x4 outputs: 0.1-1.6x, mostly slower).
//! [`ConvAlgorithm::Fastest`] takes F(4x4, 3x3) there and the
//! direct kernels elsewhere (F(2x2, 3x3) no longer beat both on any layer
//! measured), and runs the layers on 2x2 planes (VGG's and ResNet-18's last
//! on 32x32 images) as one dense product that skips the padding taps;
//! [`ConvAlgorithm::Auto`], the default, keeps the direct and im2col
//! kernels' order of summation everywhere.
//!
//! The setting is global, like `torch.backends.cudnn` flags; the
//! environment variable `AUTOGRAD_CONV=fastest` (or `=winograd`,
//! `=winograd4`) sets it at start.
//!
//! ```
//! use autograd::{conv_algorithm, set_conv_algorithm, ConvAlgorithm};
//!
//! let before = set_conv_algorithm(ConvAlgorithm::Winograd);
//! assert_eq!(conv_algorithm(), ConvAlgorithm::Winograd);
//! set_conv_algorithm(before);
//! ```

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The convolution kernels to use (see the module's text). More variants
/// may come: matches need a wildcard arm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConvAlgorithm {
    /// Direct kernels for stride-1 f32 convolutions on AVX2 + FMA, im2col +
    /// GEMM elsewhere (`docs/performance.md`, "How the convolutions run").
    #[default]
    Auto,
    /// Winograd F(4x4, 3x3) for the 3x3 stride-1 f32 convolutions where it
    /// measured faster: from 16 input and output channels with AVX-512 (32
    /// with AVX2 alone) on outputs of 4x4 and larger (the forward pass and
    /// the input gradient), its weight gradient from 16 input and 16 output
    /// channels (32 with AVX2 alone) up to 128 channels and,
    /// past 128, on outputs of 256 pixels and fewer; each in batches of
    /// enough 4x4 output tiles (64, or 16 on 4x4 outputs; 16 for the weight
    /// gradient); the direct kernels from 9 taps (a 3x3 kernel over one
    /// input channel, where `Auto` takes im2col below 16); on planes no
    /// wider than the kernel's reach (2x2 under a 3x3 kernel with padding
    /// 1: every input pixel meets every output pixel through one tap), from
    /// a batch of 16, one dense product over the pixel pairs (2.25x fewer
    /// multiplications than im2col on 2x2, the same terms summed in another
    /// order; any float type; the input gradient from a batch of one sample
    /// per 32K elements of the pairs' weight matrix, 16 C O on 2x2). The
    /// rest as [`ConvAlgorithm::Auto`].
    Fastest,
    /// Winograd F(2x2, 3x3) for every 3x3 stride-1 f32 convolution it can
    /// take, the rest as [`ConvAlgorithm::Auto`] (for comparisons and tests).
    Winograd,
    /// Winograd F(4x4, 3x3) (36 multiplications per 4x4 block of outputs
    /// and channel pair, against 144 directly) for every 3x3 stride-1 f32
    /// convolution it can take, its forward pass and both gradients, the
    /// rest as [`ConvAlgorithm::Auto`] (for comparisons and tests).
    Winograd4,
}

impl ConvAlgorithm {
    /// The name [`FromStr`](std::str::FromStr) reads and `AUTOGRAD_CONV` takes.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgorithm::Auto => "auto",
            ConvAlgorithm::Fastest => "fastest",
            ConvAlgorithm::Winograd => "winograd",
            ConvAlgorithm::Winograd4 => "winograd4",
        }
    }
}

impl std::fmt::Display for ConvAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`ConvAlgorithm`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown convolution algorithm '{0}' (auto, fastest, winograd or winograd4)")]
pub struct UnknownConvAlgorithm(pub String);

/// `"auto"`, `"fastest"`, `"winograd"` or `"winograd4"`, as a command-line
/// option would take it:
///
/// ```
/// use autograd::ConvAlgorithm;
///
/// assert_eq!("fastest".parse(), Ok(ConvAlgorithm::Fastest));
/// assert!("quickest".parse::<ConvAlgorithm>().is_err());
/// ```
impl std::str::FromStr for ConvAlgorithm {
    type Err = UnknownConvAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ConvAlgorithm::Auto,
            ConvAlgorithm::Fastest,
            ConvAlgorithm::Winograd,
            ConvAlgorithm::Winograd4,
        ]
        .into_iter()
        .find(|a| a.name() == s)
        .ok_or_else(|| UnknownConvAlgorithm(s.to_string()))
    }
}

/// 0: not read from the environment yet; 1 + the variant's index after.
static STATE: AtomicU8 = AtomicU8::new(0);

fn encode(a: ConvAlgorithm) -> u8 {
    match a {
        ConvAlgorithm::Auto => 1,
        ConvAlgorithm::Fastest => 2,
        ConvAlgorithm::Winograd => 3,
        ConvAlgorithm::Winograd4 => 4,
    }
}

/// Sets the convolution kernels for every later convolution, on every
/// thread; returns the previous setting.
pub fn set_conv_algorithm(a: ConvAlgorithm) -> ConvAlgorithm {
    let prev = conv_algorithm();
    STATE.store(encode(a), Relaxed);
    prev
}

/// The current setting (at start: `AUTOGRAD_CONV=fastest` gives
/// [`ConvAlgorithm::Fastest`], `AUTOGRAD_CONV=winograd`
/// [`ConvAlgorithm::Winograd`], `AUTOGRAD_CONV=winograd4`
/// [`ConvAlgorithm::Winograd4`], anything else [`ConvAlgorithm::Auto`]).
pub fn conv_algorithm() -> ConvAlgorithm {
    let mut s = STATE.load(Relaxed);
    if s == 0 {
        let from_env = std::env::var("AUTOGRAD_CONV")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        // A concurrent set_conv_algorithm wins over the environment.
        s = match STATE.compare_exchange(0, encode(from_env), Relaxed, Relaxed) {
            Ok(_) => encode(from_env),
            Err(now) => now,
        };
    }
    match s {
        2 => ConvAlgorithm::Fastest,
        3 => ConvAlgorithm::Winograd,
        4 => ConvAlgorithm::Winograd4,
        _ => ConvAlgorithm::Auto,
    }
}
