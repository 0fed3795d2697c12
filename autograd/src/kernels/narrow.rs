//! Narrow products: a GEMM one of whose outer sizes is 1 to 4, as a linear
//! layer at batch 1 makes, or a convolution whose output plane has one to
//! four pixels (ResNet-18's last stages on a 32x32 image, one sample).
//! A blocked GEMM packs its operands first, and there the packing is a
//! second pass over the weights the product reads only once: on ResNet-18
//! at batch 1 the packing took twice the time of the arithmetic. Here the
//! wide operand is read in place, row by row, in dot products against the
//! narrow one (copied once into contiguous vectors): one pass over the
//! weights. Products whose reduction is shorter than [`MIN_K`] (128) stay
//! with the GEMM (their packing is cheap, and small networks keep their
//! sums).

#[cfg(target_arch = "x86_64")]
use super::x86::narrow as x86;

/// At most this many rows (or columns) on the narrow side.
const MAX_NARROW: usize = 4;
/// The shortest reduction taken here: `few_cols`'s.
const MIN_K: usize = super::few_cols::MIN_K;
/// The fewest rows on the wide side.
const MIN_LONG: usize = 16;

/// Whether the CPU has AVX2 and FMA.
pub(super) fn enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The product seen as `len` rows of the wide operand (each `k` contiguous
/// floats, `rsl` apart) against `s` narrow vectors; output `(row, j)` at
/// `out + row * orl + j * orj`.
#[derive(Clone, Copy)]
struct Narrow {
    long: usize,
    rsl: usize,
    len: usize,
    s: usize,
    out: usize,
    orl: isize,
    orj: isize,
}

/// Whether [`try_forward`] takes an f32 product `m x k` by `k x n` whose
/// A rows are contiguous and B row-major: the weights read in place.
pub(crate) fn takes_forward(m: usize, k: usize, n: usize) -> bool {
    super::few_cols::takes(m, k, n)
        || (n <= MAX_NARROW && n > 0 && m >= MIN_LONG && k >= MIN_K && enabled())
}

/// A layer's forward product `C (m x n) = A B + beta C` through
/// [`try_product`] when `T` is f32; returns whether it ran. Forward
/// products come here, and so does a stride-1 convolution's input
/// gradient on the im2col path (the forward convolution of the flipped
/// kernel); weight gradients keep the GEMM's sums.
///
/// # Safety
/// As [`super::gemm::sgemm`] (alpha 1, `csc` 1; C initialized unless beta is 0).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn try_forward<T: crate::dtype::Float>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    beta: T,
    c: *mut T,
    rsc: isize,
    threads: usize,
) -> bool {
    if T::f32_slice(&[] as &[T]).is_none() {
        return false;
    }
    let beta = beta.as_f64() as f32;
    let (a, b, c) = (a as *const f32, b as *const f32, c as *mut f32);
    // SAFETY: T is f32 (checked above); the rest is the caller's contract.
    if unsafe {
        super::few_cols::try_product(m, k, n, a, rsa, csa, b, rsb, csb, beta, c, rsc, threads)
    } {
        return true;
    }
    // SAFETY: as above.
    unsafe {
        try_product(
            m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, 1, threads,
        )
    }
}

/// `C = alpha * A B + beta * C` as [`super::gemm::sgemm`] takes it, when
/// one side is narrow and the wide operand's rows are contiguous; returns
/// whether it ran (else the caller's GEMM runs).
///
/// # Safety
/// As [`super::gemm::sgemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn try_product(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
) -> bool {
    if k < MIN_K || m == 0 || n == 0 || !enabled() {
        return false;
    }
    // Either A's rows (few columns of B) or B's columns (few rows of A).
    let (view, short): (Narrow, Vec<f32>) =
        if n <= MAX_NARROW && m >= MIN_LONG && csa == 1 && rsa > 0 {
            let short = (0..n)
                .flat_map(|j| (0..k).map(move |p| *b.offset(p as isize * rsb + j as isize * csb)))
                .collect();
            let view = Narrow {
                long: a as usize,
                rsl: rsa as usize,
                len: m,
                s: n,
                out: c as usize,
                orl: rsc,
                orj: csc,
            };
            (view, short)
        } else if m <= MAX_NARROW && n >= MIN_LONG && rsb == 1 && csb > 0 {
            let short = (0..m)
                .flat_map(|i| (0..k).map(move |p| *a.offset(i as isize * rsa + p as isize * csa)))
                .collect();
            let view = Narrow {
                long: b as usize,
                rsl: csb as usize,
                len: n,
                s: m,
                out: c as usize,
                orl: csc,
                orj: rsc,
            };
            (view, short)
        } else {
            return false;
        };
    let parts = if view.len * k >= super::PAR_MIN {
        threads.min(view.len / MIN_LONG).max(1)
    } else {
        1
    };
    let per = view.len.div_ceil(parts);
    super::team::run(parts, |t| {
        let (r0, r1) = (t * per, ((t + 1) * per).min(view.len));
        if r0 < r1 {
            // SAFETY: rows r0..r1 are inside the operands (the caller's
            // contract); threads write disjoint rows of C.
            unsafe { rows(view, &short, k, r0, r1, alpha, beta) };
        }
    });
    true
}

/// Rows `r0..r1` of the product, `R` at a time.
///
/// # Safety
/// As [`try_product`], for those rows.
unsafe fn rows(v: Narrow, short: &[f32], k: usize, r0: usize, r1: usize, alpha: f32, beta: f32) {
    #[cfg(target_arch = "x86_64")]
    match v.s {
        1 => rows_of::<8, 1>(v, short, k, r0, r1, alpha, beta),
        2 => rows_of::<4, 2>(v, short, k, r0, r1, alpha, beta),
        3 => rows_of::<2, 3>(v, short, k, r0, r1, alpha, beta),
        4 => rows_of::<2, 4>(v, short, k, r0, r1, alpha, beta),
        s => unreachable!("a narrow side of 1 to {MAX_NARROW}, not {s}"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "narrow products on x86_64 only ({} {k} {r0} {r1} {alpha} {beta} {})",
        v.s,
        short.len()
    );
}

/// # Safety
/// As [`rows`]; the CPU has AVX2 and FMA (so [`x86::dots`] inlines here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_of<const R: usize, const S: usize>(
    v: Narrow,
    short: &[f32],
    k: usize,
    r0: usize,
    r1: usize,
    alpha: f32,
    beta: f32,
) {
    let long = v.long as *const f32;
    let out = v.out as *mut f32;
    let store = |row: usize, sums: &[f32; S]| {
        for (j, &sum) in sums.iter().enumerate() {
            let at = out.offset(row as isize * v.orl + j as isize * v.orj);
            // beta 0 never reads C (it may be uninitialized).
            *at = if beta == 0.0 {
                alpha * sum
            } else {
                alpha * sum + beta * *at
            };
        }
    };
    let mut r = r0;
    while r + R <= r1 {
        let sums = x86::dots::<R, S>(long.add(r * v.rsl), v.rsl, short.as_ptr(), k);
        for (i, s) in sums.iter().enumerate() {
            store(r + i, s);
        }
        r += R;
    }
    for row in r..r1 {
        store(
            row,
            &x86::dots::<1, S>(long.add(row * v.rsl), v.rsl, short.as_ptr(), k)[0],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C = alpha A B + beta C` in f64, naively.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        rsa: usize,
        csa: usize,
        b: &[f32],
        rsb: usize,
        csb: usize,
        beta: f32,
        c: &mut [f32],
        rsc: usize,
    ) {
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64)
                    .sum();
                let at = &mut c[i * rsc + j];
                *at = (alpha as f64 * dot + beta as f64 * *at as f64) as f32;
            }
        }
    }

    /// Both orientations, every narrow width, row counts that leave
    /// remainders, reductions with a scalar tail, padded rows, alpha and
    /// beta: against the f64 product, and each call really taken here.
    #[test]
    fn narrow_products_match_the_naive_product() {
        if !enabled() {
            return;
        }
        let val = |i: usize| ((i * 7919 + 13) % 101) as f32 / 50.0 - 1.0;
        // The last shape is big enough to be split over two threads.
        for &(k, long) in &[(128, 16), (515, 37), (1024, 61), (1024, 80)] {
            for s in 1..=MAX_NARROW {
                for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.5, 1.0)] {
                    for threads in [1, 2] {
                        // A wide (long x k, rows padded to k + 3), B narrow (k x s).
                        let (m, n, rsa) = (long, s, k + 3);
                        let a: Vec<f32> = (0..m * rsa).map(val).collect();
                        let b: Vec<f32> = (0..k * n).map(|i| val(i + 5)).collect();
                        let c0: Vec<f32> = (0..m * n).map(|i| val(i + 9)).collect();
                        let (mut got, mut want) = (c0.clone(), c0.clone());
                        naive(m, k, n, alpha, &a, rsa, 1, &b, n, 1, beta, &mut want, n);
                        let ran = unsafe {
                            try_product(
                                m,
                                k,
                                n,
                                alpha,
                                a.as_ptr(),
                                rsa as isize,
                                1,
                                b.as_ptr(),
                                n as isize,
                                1,
                                beta,
                                got.as_mut_ptr(),
                                n as isize,
                                1,
                                threads,
                            )
                        };
                        assert!(ran, "A wide, {m}x{k}x{n}");
                        for (g, w) in got.iter().zip(&want) {
                            assert!(
                                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                "A wide {m}x{k}x{n}: {g} vs {w}"
                            );
                        }
                        // A narrow (s x k), B wide and transposed (a weight w^T: rsb 1, csb k + 1).
                        let (m, n, csb) = (s, long, k + 1);
                        let a: Vec<f32> = (0..m * k).map(|i| val(i + 2)).collect();
                        let b: Vec<f32> = (0..n * csb).map(|i| val(i + 7)).collect();
                        let c0: Vec<f32> = (0..m * n).map(|i| val(i + 11)).collect();
                        let (mut got, mut want) = (c0.clone(), c0.clone());
                        naive(m, k, n, alpha, &a, k, 1, &b, 1, csb, beta, &mut want, n);
                        let ran = unsafe {
                            try_product(
                                m,
                                k,
                                n,
                                alpha,
                                a.as_ptr(),
                                k as isize,
                                1,
                                b.as_ptr(),
                                1,
                                csb as isize,
                                beta,
                                got.as_mut_ptr(),
                                n as isize,
                                1,
                                threads,
                            )
                        };
                        assert!(ran, "B wide, {m}x{k}x{n}");
                        for (g, w) in got.iter().zip(&want) {
                            assert!(
                                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                "B wide {m}x{k}x{n}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The layers that come here: a linear layer at batch 1 and 2 (with a
    /// bias: beta 1) and with 3 outputs, a 3x3 convolution on a 1x1 plane
    /// (its centre tap: a 600-long reduction), with gradients on and off
    /// (the second no-grad call served from the weight cache), against the
    /// same layers in f64.
    #[test]
    fn layers_on_narrow_shapes_match_f64() {
        use crate::graph::no_grad;
        use crate::ops::conv::ConvOptions;
        use crate::Tensor;
        let close = |a: &Tensor<f32>, b: &Tensor<f64>, what: &str| {
            assert_eq!(a.shape(), b.shape(), "{what}");
            for (u, v) in a.to_vec().iter().zip(b.to_vec()) {
                assert!(
                    (*u as f64 - v).abs() <= 1e-4 * (1.0 + v.abs()),
                    "{what}: {u} vs {v}"
                );
            }
        };
        for (batch, outs) in [(1, 40), (2, 40), (32, 3)] {
            let x = Tensor::<f32>::randn([batch, 600]);
            let (w, b) = (
                Tensor::<f32>::randn([outs, 600]),
                Tensor::<f32>::randn([outs]),
            );
            let want = x.cast::<f64>().linear(&w.cast(), Some(&b.cast()));
            close(&x.linear(&w, Some(&b)), &want, "linear");
            close(
                &no_grad(|| x.linear(&w, Some(&b))),
                &want,
                "linear, no grad",
            );
        }
        let x = Tensor::<f32>::randn([1, 600, 1, 1]);
        let (w, b) = (
            Tensor::<f32>::randn([20, 600, 3, 3]),
            Tensor::<f32>::randn([20]),
        );
        let opts = ConvOptions {
            padding: [1, 1],
            ..Default::default()
        };
        let want = x.cast::<f64>().conv2d(&w.cast(), Some(&b.cast()), opts);
        close(&x.conv2d(&w, Some(&b), opts), &want, "conv2d");
        for _ in 0..2 {
            close(
                &no_grad(|| x.conv2d(&w, Some(&b), opts)),
                &want,
                "conv2d, no grad",
            );
        }
    }

    /// A linear layer's forward product at batch 1 with a reduction below
    /// 512 stays with the GEMM: row 0 of the same layer at batch 8 (a GEMM
    /// shape), bit for bit; from 512 it comes here (the sums differ).
    #[test]
    fn linear_layers_keep_the_gemm_below_512() {
        use crate::Tensor;
        if !enabled() {
            return;
        }
        for (k, gemm) in [(256, true), (600, false)] {
            let x = Tensor::<f32>::randn([8, k]);
            let w = Tensor::<f32>::randn([40, k]);
            let batch8 = x.linear(&w, None).to_vec();
            let batch1 = x.narrow(0, 0, 1).linear(&w, None).to_vec();
            assert_eq!(batch1 == batch8[..40], gemm, "reduction {k}");
        }
    }

    /// Shapes the GEMM keeps: short reductions, two wide sides, wide
    /// operands without contiguous rows.
    #[test]
    fn other_shapes_are_left_to_the_gemm() {
        let (a, b, mut c) = (
            vec![0.0f32; 64 * 1024],
            vec![0.0f32; 64 * 1024],
            vec![0.0f32; 64 * 64],
        );
        let call = |m, k, n, rsa, csa, rsb, csb, c: &mut [f32]| unsafe {
            try_product(
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
                1,
            )
        };
        assert!(!call(64, 127, 1, 127, 1, 1, 1, &mut c), "k below MIN_K");
        assert!(!call(64, 1024, 8, 1024, 1, 8, 1, &mut c), "no narrow side");
        assert!(!call(64, 1024, 1, 1, 64, 1, 1, &mut c), "A's rows strided");
        assert!(
            !call(1, 1024, 64, 1024, 1, 64, 1, &mut c),
            "B's columns strided"
        );
    }
}
