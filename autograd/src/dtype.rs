//! The element types a tensor can hold.

use ndarray::NdFloat;

/// Element type of a [`Tensor`](crate::Tensor): `f32` (the default) or `f64`
/// (used by [`gradcheck`](crate::gradcheck())).
///
/// Everything the engine needs from a float lives here, including the GEMM
/// kernel, so ops are written once for both precisions.
pub trait Float: NdFloat + num_traits::FromPrimitive + Default + 'static {
    /// `"f32"` or `"f64"`, for messages.
    const NAME: &'static str;

    /// Converts an `f64` constant (rounding for `f32`).
    fn of(x: f64) -> Self;

    /// Widens to `f64`.
    fn as_f64(self) -> f64;

    /// The slice as `f32`, when `Self` is `f32` (for kernels that exist only in f32).
    fn f32_slice(x: &[Self]) -> Option<&[f32]>;

    /// The slice as mutable `f32`, when `Self` is `f32`.
    fn f32_slice_mut(x: &mut [Self]) -> Option<&mut [f32]>;

    /// `C = alpha * A * B + beta * C` on raw strided matrices (strides in
    /// elements), `A` is `m x k`, `B` is `k x n`, using up to `threads` threads.
    ///
    /// # Safety
    /// The pointers and strides must describe valid matrices of those sizes,
    /// and `C` must not overlap `A` or `B`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        threads: usize,
    );
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn of(x: f64) -> Self {
        x as f32
    }

    fn as_f64(self) -> f64 {
        self as f64
    }

    fn f32_slice(x: &[Self]) -> Option<&[f32]> {
        Some(x)
    }

    fn f32_slice_mut(x: &mut [Self]) -> Option<&mut [f32]> {
        Some(x)
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        threads: usize,
    ) {
        crate::kernels::gemm::sgemm(
            m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, threads,
        )
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    fn of(x: f64) -> Self {
        x
    }

    fn as_f64(self) -> f64 {
        self
    }

    fn f32_slice(_: &[Self]) -> Option<&[f32]> {
        None
    }

    fn f32_slice_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        _threads: usize,
    ) {
        // f64 serves gradient checks: correctness, not speed.
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
