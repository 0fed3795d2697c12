//! Forward products with few columns: `C (m x n) = A B` with 5 to
//! [`MAX_COLS`] columns, as a convolution makes on one sample's 4x4 or
//! smaller plane (GoogLeNet's and ResNet-18's later stages at batch 1).
//! A blocked GEMM packs A (the layer's weights) on every call, a pass over
//! the whole weight for a product that then reuses each weight only `n`
//! times: 23% of GoogLeNet's batch-1 time. Here A is read in place, row
//! by row, against B copied into zero-padded 16-column panels (B is the
//! small operand); each weight is broadcast once per panel. Products with
//! 1 to 4 columns are `narrow`'s; reductions shorter than [`MIN_K`] stay
//! with the GEMM.

#[cfg(target_arch = "x86_64")]
use super::x86::narrow as x86;

/// The most columns taken here (two panels). Up to 64 (GoogLeNet's 1x1
/// layers on 8x8 planes at batch 1) from reductions of 128 measured level
/// (docs/performance.md).
const MAX_COLS: usize = 32;
/// The shortest reduction taken here (and in `narrow`). From 128 rather
/// than 512, GoogLeNet's small layers at batch 1 (3x3 over 16-48
/// channels on 4x4 and 2x2 planes, 1x1 over 480 on 4x4), whose
/// `matrixmultiply` products spent more time packing than multiplying,
/// ran 1.3-2.6x faster, and the whole call 0.91x as long (ResNet-18's
/// 0.90x; docs/performance.md).
pub(super) const MIN_K: usize = 128;
/// The fewest rows of A.
const MIN_ROWS: usize = 16;
/// Rows of A per kernel call: 12 accumulators of 8 lanes (AVX2), 12 of 16
/// (AVX-512).
const R: usize = 6;
const R512: usize = 12;

/// Whether [`try_product`] takes an `m x k` by `k x n` product whose A
/// rows are contiguous.
pub(super) fn takes(m: usize, k: usize, n: usize) -> bool {
    (5..=MAX_COLS).contains(&n) && k >= MIN_K && m >= MIN_ROWS && super::narrow::enabled()
}

/// `C = A B + beta C` (f32, `C` row-major with `csc` 1) when `n` is in
/// `5..=MAX_COLS`, `k >= MIN_K` and A's rows are contiguous; returns
/// whether it ran.
///
/// # Safety
/// As [`super::gemm::sgemm`] (alpha 1, `csc` 1; C initialized unless beta is 0).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn try_product(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    threads: usize,
) -> bool {
    if !takes(m, k, n) || csa != 1 || rsa <= 0 {
        return false;
    }
    // B as panels of 16 columns: panel q holds row p's columns 16q.. at 16 (qk + p).
    if n == 16 && rsb == 16 && csb == 1 {
        // B (a 4x4 plane's im2col rows) is already one panel: no copy.
        // SAFETY: B is k x 16, row-major (the caller's contract).
        let bp = unsafe { std::slice::from_raw_parts(b, 16 * k) };
        // SAFETY: as this function's.
        unsafe { product(m, k, n, a, rsa, beta, c, rsc, threads, bp) };
        return true;
    }
    super::scratch::with_scratch(n.div_ceil(16) * 16 * k, |bp: &mut [f32]| {
        // SAFETY: as this function's.
        unsafe {
            pack(k, n, b, rsb, csb, bp);
            product(m, k, n, a, rsa, beta, c, rsc, threads, bp)
        }
    });
    true
}

/// B's `k x n` into `bp`'s panels of 16 columns, each row written once
/// with its columns past `n` zeroed.
///
/// # Safety
/// B is readable at `p rsb + j csb` for `p < k`, `j < n`.
unsafe fn pack(k: usize, n: usize, b: *const f32, rsb: isize, csb: isize, bp: &mut [f32]) {
    for p in 0..k {
        let row = b.offset(p as isize * rsb);
        for q in 0..n.div_ceil(16) {
            let dst = &mut bp[(q * k + p) * 16..][..16];
            let real = 16.min(n - 16 * q);
            for (j, d) in dst[..real].iter_mut().enumerate() {
                *d = *row.offset((16 * q + j) as isize * csb);
            }
            dst[real..].fill(0.0);
        }
    }
}

/// [`try_product`] once taken, with B in `bp`'s panels of 16 columns.
///
/// # Safety
/// As [`try_product`].
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    threads: usize,
    bp: &[f32],
) {
    let parts = if m * k * n >= super::PAR_MIN {
        threads.min(m / MIN_ROWS).max(1)
    } else {
        1
    };
    let per = m.div_ceil(parts).next_multiple_of(R512);
    let (a, c) = (a as usize, c as usize);
    super::team::run(parts, |t| {
        let (r0, r1) = ((t * per).min(m), ((t + 1) * per).min(m));
        // SAFETY: rows r0..r1 of A and C are inside the operands (the
        // caller's contract); threads write disjoint rows of C.
        unsafe {
            rows(
                a as *const f32,
                rsa as usize,
                bp,
                k,
                n,
                beta,
                c as *mut f32,
                rsc,
                r0,
                r1,
            )
        };
    });
}

/// Rows `r0..r1` of the product, [`R`] at a time, panel by panel.
///
/// # Safety
/// As [`try_product`], for those rows.
#[allow(clippy::too_many_arguments)]
unsafe fn rows(
    a: *const f32,
    rsa: usize,
    bp: &[f32],
    k: usize,
    n: usize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    r0: usize,
    r1: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let store = |row: usize, j0: usize, sums: &[f32; 16]| {
            let out = c.offset(row as isize * rsc);
            for (j, &sum) in sums.iter().enumerate().take(n - j0) {
                let at = out.add(j0 + j);
                // beta 0 never reads C (it may be uninitialized).
                *at = if beta == 0.0 { sum } else { sum + beta * *at };
            }
        };
        // Row blocks outside, panels inside: each block of A is read from
        // memory once, then from cache for its second panel.
        let panels = n.div_ceil(16);
        let panel = |q: usize| bp[q * 16 * k..].as_ptr();
        let wide = super::isa::avx512();
        let mut r = r0;
        while wide && r + R512 <= r1 {
            for q in 0..panels {
                let mut out = [[0.0f32; 16]; R512];
                x86::panel16_512::<R512>(a.add(r * rsa), rsa, panel(q), k, &mut out);
                for (i, sums) in out.iter().enumerate() {
                    store(r + i, 16 * q, sums);
                }
            }
            r += R512;
        }
        while r + R <= r1 {
            for q in 0..panels {
                let mut out = [[0.0f32; 16]; R];
                x86::panel16::<R>(a.add(r * rsa), rsa, panel(q), k, &mut out);
                for (i, sums) in out.iter().enumerate() {
                    store(r + i, 16 * q, sums);
                }
            }
            r += R;
        }
        for row in r..r1 {
            for q in 0..panels {
                let mut out = [[0.0f32; 16]; 1];
                x86::panel16::<1>(a.add(row * rsa), rsa, panel(q), k, &mut out);
                store(row, 16 * q, &out[0]);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "few-column products on x86_64 only ({a:?} {rsa} {} {k} {n} {beta} {c:?} {rsc} {r0} {r1})",
        bp.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column count taken here, rows that leave remainders (of 12
    /// and 6) and padded rows, the shortest reduction, B's rows contiguous
    /// or strided, beta 0 and 1, one and two threads: against
    /// the f64 product, and each call really taken here (with the AVX-512
    /// kernel where the CPU has it, and the AVX2 one for the remainders).
    #[test]
    fn few_column_products_match_the_naive_product() {
        if !super::super::narrow::enabled() {
            return;
        }
        let val = |i: usize| ((i * 7919 + 13) % 101) as f32 / 50.0 - 1.0;
        for &(m, k) in &[(16, 128), (37, 515), (130, 1024)] {
            for n in 5..=MAX_COLS {
                for beta in [0.0f32, 1.0] {
                    for (threads, strided) in [(1, false), (2, false), (2, true)] {
                        // Strided: B's rows `1` apart, its columns `k` (a
                        // linear layer's transposed weight).
                        let rsa = k + 3;
                        let a: Vec<f32> = (0..m * rsa).map(val).collect();
                        let b: Vec<f32> = (0..k * n).map(|i| val(i + 5)).collect();
                        let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
                        let (bb, rsb, csb) = if strided { (&bt, 1, k) } else { (&b, n, 1) };
                        let mut got: Vec<f32> = (0..m * n).map(|i| val(i + 9)).collect();
                        let want: Vec<f64> = (0..m * n)
                            .map(|i| {
                                let (r, j) = (i / n, i % n);
                                let dot: f64 = (0..k)
                                    .map(|p| a[r * rsa + p] as f64 * b[p * n + j] as f64)
                                    .sum();
                                dot + beta as f64 * got[i] as f64
                            })
                            .collect();
                        let ran = unsafe {
                            try_product(
                                m,
                                k,
                                n,
                                a.as_ptr(),
                                rsa as isize,
                                1,
                                bb.as_ptr(),
                                rsb as isize,
                                csb as isize,
                                beta,
                                got.as_mut_ptr(),
                                n as isize,
                                threads,
                            )
                        };
                        assert!(ran, "{m}x{k}x{n} (strided B: {strided})");
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                "{m}x{k}x{n} beta {beta} threads {threads} strided {strided} at {i}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
        // The two kernels sum in the same order: the same bits.
        if super::super::isa::avx512() {
            let (k, rsa) = (700, 703);
            let a: Vec<f32> = (0..R512 * rsa).map(val).collect();
            let bp: Vec<f32> = (0..16 * k).map(|i| val(i + 3)).collect();
            let (mut two, mut one) = ([[0.0f32; 16]; R512], [[0.0f32; 16]; R512]);
            unsafe {
                x86::panel16_512::<R512>(a.as_ptr(), rsa, bp.as_ptr(), k, &mut two);
                for (r, o) in one.iter_mut().enumerate() {
                    let mut row = [[0.0f32; 16]; 1];
                    x86::panel16::<1>(a[r * rsa..].as_ptr(), rsa, bp.as_ptr(), k, &mut row);
                    *o = row[0];
                }
            }
            assert_eq!(two, one, "AVX-512 against AVX2");
        }
        // Outside its range: not taken.
        let z = vec![0.0f32; 64 * 1024];
        let mut c = vec![0.0f32; 64 * 64];
        for (m, k, n) in [(64, 1024, 4), (64, 1024, 33), (64, 127, 16), (15, 1024, 16)] {
            let ran = unsafe {
                try_product(
                    m,
                    k,
                    n,
                    z.as_ptr(),
                    k as isize,
                    1,
                    z.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            };
            assert!(!ran, "{m}x{k}x{n}");
        }
    }
}
