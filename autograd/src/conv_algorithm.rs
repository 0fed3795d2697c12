//! Which kernels compute convolutions: the default direct and im2col
//! kernels, or with them Winograd's F(2x2, 3x3) for 3x3 stride-1
//! convolutions, where it measured faster or everywhere it applies.
//!
//! Winograd computes each 2x2 block of outputs with 16 multiplications per
//! input and output channel instead of 36 (2.25x fewer), at the price of
//! transforming inputs and outputs, and of a different order of summation:
//! results differ from the direct kernels' by a few units in the last
//! place of f32 (bounded in `autograd/tests/winograd.rs`). It applies to
//! f32 convolutions with 3x3 kernels, stride 1, no dilation and no groups,
//! on x86-64 CPUs with AVX2 and FMA, in the forward pass and in the input
//! gradient (itself such a convolution, of the output gradient with the
//! flipped kernel); other convolutions run as by default.
//!
//! Measured per layer shape by `cargo bench --bench winograd`
//! (`docs/performance.md`, "Winograd"): against the AVX2 direct kernels,
//! 1.1-1.5x faster from 32 output channels on outputs of 14x14 and up,
//! slower with 16 or fewer output channels, where the transforms cost more
//! than the products save, and on planes of 8x8 and below; against the
//! faster AVX-512 direct kernels, only from 64 channels on outputs of
//! 28x28 and up. [`ConvAlgorithm::Fastest`] takes it where it paid on the
//! CPU it runs on;
//! [`ConvAlgorithm::Auto`], the default, keeps the direct kernels' order of
//! summation everywhere.
//!
//! The setting is global, like `torch.backends.cudnn` flags; the
//! environment variable `AUTOGRAD_CONV=fastest` (or `=winograd`) sets it at
//! start.
//!
//! ```
//! use autograd::{conv_algorithm, set_conv_algorithm, ConvAlgorithm};
//!
//! let before = set_conv_algorithm(ConvAlgorithm::Winograd);
//! assert_eq!(conv_algorithm(), ConvAlgorithm::Winograd);
//! set_conv_algorithm(before);
//! ```

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The convolution kernels to use (see the module's text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Direct kernels for stride-1 f32 convolutions on AVX2 + FMA, im2col +
    /// GEMM elsewhere (`docs/performance.md`, "How the convolutions run").
    #[default]
    Auto,
    /// Winograd F(2x2, 3x3) for the 3x3 stride-1 f32 convolutions where it
    /// measured faster (with AVX2: at least 16 input and 32 output channels,
    /// outputs of 12x12 and larger; with AVX-512: at least 64 input and
    /// output channels, outputs of 28x28 and larger), the rest as
    /// [`ConvAlgorithm::Auto`].
    Fastest,
    /// Winograd F(2x2, 3x3) for every 3x3 stride-1 f32 convolution it can
    /// take, the rest as [`ConvAlgorithm::Auto`] (for comparisons and tests).
    Winograd,
}

/// 0: not read from the environment yet; 1 + the variant's index after.
static STATE: AtomicU8 = AtomicU8::new(0);

fn encode(a: ConvAlgorithm) -> u8 {
    match a {
        ConvAlgorithm::Auto => 1,
        ConvAlgorithm::Fastest => 2,
        ConvAlgorithm::Winograd => 3,
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
/// [`ConvAlgorithm::Winograd`], anything else [`ConvAlgorithm::Auto`]).
pub fn conv_algorithm() -> ConvAlgorithm {
    let mut s = STATE.load(Relaxed);
    if s == 0 {
        let from_env = match std::env::var("AUTOGRAD_CONV").as_deref() {
            Ok("fastest") => ConvAlgorithm::Fastest,
            Ok("winograd") => ConvAlgorithm::Winograd,
            _ => ConvAlgorithm::Auto,
        };
        // A concurrent set_conv_algorithm wins over the environment.
        s = match STATE.compare_exchange(0, encode(from_env), Relaxed, Relaxed) {
            Ok(_) => encode(from_env),
            Err(now) => now,
        };
    }
    match s {
        2 => ConvAlgorithm::Fastest,
        3 => ConvAlgorithm::Winograd,
        _ => ConvAlgorithm::Auto,
    }
}
