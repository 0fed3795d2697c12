//! Tensors and a define-by-run, tape-based autodiff engine.
//!
//! Every op is recorded while the program runs; [`Tensor::backward`] replays
//! the record in reverse. Gradients are written with differentiable ops, so
//! they can be differentiated again (`create_graph`). An op of one's own,
//! with its backward, is a [`CustomOp`] applied with [`Tensor::apply_op`].
//!
//! ```
//! use autograd::Tensor;
//!
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).requires_grad_();
//! let y = (&x * &x).sum();          // y = sum x^2
//! y.backward();
//! assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
//! ```
//!
//! # Conventions
//!
//! - **Scalar arguments of ops are `f64`**, whatever the element type `T`
//!   (as PyTorch's Python floats): the operand of `add_scalar`, `mul_scalar`,
//!   `powf`, the operators `&x * 2.0` and `2.0 - &x`, slopes (`leaky_relu`,
//!   `elu`), bounds (`clamp`), fill values (`pad`), comparison scalars
//!   (`gt_scalar`), and options (`eps`, `momentum`, dropout `p`, label
//!   smoothing). They are rounded to `T` where the op runs. Values that
//!   become the elements of a new tensor (`from_vec`, `scalar`, `full`,
//!   `arange`, `uniform`) are `T`.
//! - **Several optional tensors are passed by name**, in an argument struct
//!   ([`BatchNormArgs`]), so they cannot be swapped.
//! - **Errors**: every fallible op has a `try_*` form returning [`Result`];
//!   the plain form panics with the same message, which names the op and
//!   the shapes involved.
//!
//! ```
//! use autograd::Tensor;
//!
//! let a = Tensor::<f32>::from_vec(vec![1.0, -2.0], [2]);
//! let b = Tensor::<f64>::from_vec(vec![1.0, -2.0], [2]);
//! let slope = 0.1; // one f64 serves both precisions
//! assert_eq!((&a * 2.0).leaky_relu(slope).to_vec(), vec![2.0, -0.4]);
//! assert_eq!((2.0 - &b).powf(2.0).to_vec(), vec![1.0, 16.0]);
//! ```

#![warn(missing_docs)]

mod conv_algorithm;
pub mod custom_op;
mod denormals;
pub mod dims;
pub mod dtype;
pub mod error;
pub mod grad_hooks;
pub mod gradcheck;
pub mod graph;
pub mod io;
pub(crate) mod kernels;
pub mod ops;
pub mod rng;
mod saved;
pub mod tensor;
pub mod threads;

pub use conv_algorithm::{conv_algorithm, set_conv_algorithm, ConvAlgorithm, UnknownConvAlgorithm};
pub use custom_op::CustomOp;
pub use denormals::{flush_denormals, set_flush_denormals, sync_flush_denormals};
pub use dims::{Dims, IntoShape};
pub use dtype::Float;
pub use error::{Error, Result};
pub use grad_hooks::{GradHookHandle, PostGradHook};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckError, GradcheckOptions};
pub use graph::{
    detect_anomaly, grad, is_grad_enabled, live_nodes, no_grad, set_grad_enabled, to_dot, try_grad,
    BackwardCtx, GradOptions,
};
pub use ops::conv::ConvOptions;
pub use ops::loss::{CrossEntropyOptions, Reduction};
pub use ops::norm::BatchNormArgs;
pub use ops::pool::PoolOptions;
pub use ops::unpool::{PoolIndices, UnpoolOptions};
pub use rng::manual_seed;
pub use tensor::{BackwardOptions, Storage, Tensor};
pub use threads::{num_threads, parallel_for_each, prime_malloc, set_num_threads};

/// Re-exported so users can build and read arrays without naming the version.
pub use ndarray;

/// Raw f32 GEMM entry points, for benchmarks comparing the micro-kernels
/// with `matrixmultiply` (not a stable API).
#[doc(hidden)]
pub mod bench_api {
    /// `C = A B` with our blocked kernels (row-major, contiguous), on `threads` threads.
    #[allow(clippy::too_many_arguments)]
    pub fn sgemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        trans_a: bool,
        trans_b: bool,
        threads: usize,
    ) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        let (rsa, csa) = if trans_a {
            (1, m as isize)
        } else {
            (k as isize, 1)
        };
        let (rsb, csb) = if trans_b {
            (1, k as isize)
        } else {
            (n as isize, 1)
        };
        // SAFETY: the slices hold the matrices described by the strides.
        unsafe {
            crate::kernels::gemm::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
                threads,
            )
        }
    }

    /// Whether our micro-kernels are in use (`AUTOGRAD_GEMM=avx2`), else `matrixmultiply`.
    pub fn kernels_enabled() -> bool {
        crate::kernels::gemm::kernels_enabled()
    }

    /// Turns the convolutions' AVX-512 kernels on or off for the whole
    /// process (on by default where the CPU has AVX-512F, unless
    /// `AUTOGRAD_ISA=avx2`); returns whether they are now on.
    pub fn set_avx512(on: bool) -> bool {
        crate::kernels::isa::set_avx512(on)
    }

    /// Whether the convolutions' AVX-512 kernels are in use.
    pub fn avx512() -> bool {
        crate::kernels::isa::avx512()
    }
}
