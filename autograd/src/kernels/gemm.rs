//! Single-precision GEMM with an AVX-512 micro-kernel (BLIS-style packing and
//! blocking). `matrixmultiply` only uses AVX2 on this CPU class and reaches
//! about half the FMA ceiling on the narrow products of convolutions; this
//! kernel computes 8 rows x 48 columns per step (24 of the 32 vector
//! registers), with 16- and 32-column variants for the right edge, so a
//! 16-channel convolution wastes nothing. Other CPUs (and f64) fall back to
//! `matrixmultiply`.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::scratch::with_scratch;

const MR: usize = 8;
const NR: usize = 48;
const KC: usize = 256;
const MC: usize = 120;
const NC: usize = 8192;

/// Whether the AVX-512 path is available (checked once).
pub(crate) fn has_avx512() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var_os("AUTOGRAD_NO_AVX512").is_none() && is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// A strided matrix operand.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}
// SAFETY: only read, and the caller guarantees the memory outlives the call.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}

#[derive(Clone, Copy)]
struct MatMut {
    ptr: *mut f32,
    rs: isize,
}
// SAFETY: threads write disjoint row ranges.
unsafe impl Send for MatMut {}
unsafe impl Sync for MatMut {}

/// `C = alpha * A B + beta * C` (f32), splitting the work over `threads`.
///
/// # Safety
/// The pointers and strides must describe valid `m x k`, `k x n` and `m x n`
/// matrices, and `C` must not overlap `A` or `B`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
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
) {
    if m == 0 || n == 0 {
        return;
    }
    if !has_avx512() || csc != 1 || k == 0 {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (a, b, c) = (Mat { ptr: a, rs: rsa, cs: csa }, Mat { ptr: b, rs: rsb, cs: csb }, MatMut { ptr: c, rs: rsc });
        blocked(m, k, n, alpha, a, BSource::Strided(b), beta, c, threads);
    }
}

/// Where the B operand comes from: a strided matrix, packed per block here,
/// or already packed by the caller (see [`pack_b_row`]).
#[derive(Clone, Copy)]
enum BSource<'a> {
    Strided(Mat),
    Packed(&'a [f32]),
}

/// Elements of a fully packed `k x n` B operand (`n <= NC`).
pub(crate) fn packed_b_len(k: usize, n: usize) -> usize {
    k * padded_width(n)
}

/// `n` rounded up so the last panel is a multiple of 16 wide.
fn padded_width(n: usize) -> usize {
    (n / NR) * NR + (n % NR).div_ceil(16) * 16
}

/// Whether a `k x n` operand can be packed whole by the caller.
pub(crate) fn can_prepack(n: usize) -> bool {
    has_avx512() && n <= NC
}

/// Writes row `p` (all `n` columns) of a `k x n` B operand into the packed
/// layout that [`sgemm_packed_b`] reads: per block of `KC` rows, panels of
/// `NR` columns, each row-major over its (zero-padded) width.
pub(crate) fn pack_b_row(p: usize, k: usize, row: &[f32], bp: &mut [f32]) {
    let n = row.len();
    let wtot = padded_width(n);
    let pc = p / KC * KC;
    let kc = KC.min(k - pc);
    let base = pc * wtot;
    for j0 in (0..n).step_by(NR) {
        let w = NR.min(n - j0);
        let wp = w.div_ceil(16) * 16;
        let off = base + j0 * kc + (p - pc) * wp;
        bp[off..off + w].copy_from_slice(&row[j0..j0 + w]);
        bp[off + w..off + wp].fill(0.0);
    }
}

/// `C = alpha * A B + beta * C` with B packed by [`pack_b_row`] (f32, AVX-512 only).
///
/// # Safety
/// As [`sgemm`]; `bp` must hold a fully packed `k x n` operand.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_packed_b(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    bp: &[f32],
    beta: f32,
    c: *mut f32,
    rsc: isize,
    threads: usize,
) {
    assert!(can_prepack(n) && bp.len() >= packed_b_len(k, n));
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    blocked(m, k, n, 1.0, Mat { ptr: a, rs: rsa, cs: csa }, BSource::Packed(bp), beta, MatMut { ptr: c, rs: rsc }, threads);
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn blocked(m: usize, k: usize, n: usize, alpha: f32, a: Mat, b: BSource<'_>, beta: f32, c: MatMut, threads: usize) {
    let threads = threads.max(1).min(m.div_ceil(MR));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let beta_p = if pc == 0 { beta } else { 1.0 };
            let with_b = |bp: &[f32]| {
                let rows_per = m.div_ceil(threads).div_ceil(MR) * MR;
                let run = |t: usize| {
                    let (r0, r1) = (t * rows_per, ((t + 1) * rows_per).min(m));
                    if r0 >= r1 {
                        return;
                    }
                    with_scratch(MC.div_ceil(MR) * MR * kc, |ap: &mut [f32]| {
                        for ic in (r0..r1).step_by(MC) {
                            let mc = MC.min(r1 - ic);
                            pack_a(a, ic, mc, pc, kc, ap);
                            macro_block(mc, nc, kc, ap, bp, c, ic, jc, alpha, beta_p);
                        }
                    });
                };
                if threads > 1 {
                    (0..threads).into_par_iter().for_each(run);
                } else {
                    run(0);
                }
            };
            match b {
                BSource::Strided(b) => {
                    // Packed B for this (pc, jc) block is shared by every thread.
                    with_scratch(padded_width(nc) * kc, |bp: &mut [f32]| {
                        pack_b(b, pc, kc, jc, nc, bp);
                        with_b(bp)
                    });
                }
                BSource::Packed(all) => with_b(&all[pc * padded_width(n)..]),
            }
        }
    }
}

/// Packs `B[pc..pc+kc, jc..jc+nc]` into panels of `NR` columns (the last one
/// padded with zeros to a multiple of 16), each stored k-major.
#[cfg(target_arch = "x86_64")]
unsafe fn pack_b(b: Mat, pc: usize, kc: usize, jc: usize, nc: usize, bp: &mut [f32]) {
    let mut off = 0;
    for j0 in (0..nc).step_by(NR) {
        let w = NR.min(nc - j0);
        let wp = w.div_ceil(16) * 16;
        for p in 0..kc {
            let dst = &mut bp[off + p * wp..off + (p + 1) * wp];
            let row = b.ptr.offset((pc + p) as isize * b.rs + (jc + j0) as isize * b.cs);
            if b.cs == 1 {
                std::ptr::copy_nonoverlapping(row, dst.as_mut_ptr(), w);
            } else {
                for (j, d) in dst[..w].iter_mut().enumerate() {
                    *d = *row.offset(j as isize * b.cs);
                }
            }
            dst[w..].fill(0.0);
        }
        off += wp * kc;
    }
}

/// Packs `A[ic..ic+mc, pc..pc+kc]` into micro-panels of `MR` rows (zero padded), each k-major.
#[cfg(target_arch = "x86_64")]
unsafe fn pack_a(a: Mat, ic: usize, mc: usize, pc: usize, kc: usize, ap: &mut [f32]) {
    for (pi, i0) in (0..mc).step_by(MR).enumerate() {
        let rows = MR.min(mc - i0);
        let panel = &mut ap[pi * MR * kc..(pi + 1) * MR * kc];
        if a.cs == 1 {
            for r in 0..MR {
                if r < rows {
                    let src = a.ptr.offset((ic + i0 + r) as isize * a.rs + pc as isize);
                    for p in 0..kc {
                        panel[p * MR + r] = *src.add(p);
                    }
                } else {
                    for p in 0..kc {
                        panel[p * MR + r] = 0.0;
                    }
                }
            }
        } else {
            for p in 0..kc {
                let col = a.ptr.offset((ic + i0) as isize * a.rs + (pc + p) as isize * a.cs);
                for r in 0..MR {
                    panel[p * MR + r] = if r < rows { *col.offset(r as isize * a.rs) } else { 0.0 };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn macro_block(
    mc: usize,
    nc: usize,
    kc: usize,
    ap: &[f32],
    bp: &[f32],
    c: MatMut,
    ic: usize,
    jc: usize,
    alpha: f32,
    beta: f32,
) {
    let mut boff = 0;
    for j0 in (0..nc).step_by(NR) {
        let w = NR.min(nc - j0);
        let wp = w.div_ceil(16) * 16;
        for (pi, i0) in (0..mc).step_by(MR).enumerate() {
            let rows = MR.min(mc - i0);
            let cptr = c.ptr.offset((ic + i0) as isize * c.rs + (jc + j0) as isize);
            let a = ap.as_ptr().add(pi * MR * kc);
            let b = bp.as_ptr().add(boff);
            match wp {
                48 => kernel::<3>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                32 => kernel::<2>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                _ => kernel::<1>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
            }
        }
        boff += wp * kc;
    }
}

/// `C[rows x cols] = alpha * Apanel Bpanel + beta * C` for one 8 x (16 * NV) tile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    alpha: f32,
    beta: f32,
    rows: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for p in 0..kc {
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, slot) in bv.iter_mut().enumerate() {
            *slot = _mm512_loadu_ps(b.add(p * NV * 16 + v * 16));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(p * MR + r));
            for v in 0..NV {
                row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
            }
        }
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (v, &val) in row.iter().enumerate() {
            let col0 = v * 16;
            if col0 >= cols {
                break;
            }
            let left = cols - col0;
            let mask: __mmask16 = if left >= 16 { 0xFFFF } else { (1u16 << left) - 1 };
            let cp = c.offset(r as isize * rsc + col0 as isize);
            let mut out = _mm512_mul_ps(val, alpha_v);
            if beta != 0.0 {
                out = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, cp), beta_v, out);
            }
            _mm512_mask_storeu_ps(cp, mask, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Against a naive triple loop in f64, over edge sizes, strides, beta and threads.
    #[test]
    fn matches_naive_product() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let sizes = [1usize, 3, 8, 9, 16, 17, 47, 48, 49, 100, 130, 300];
        for trial in 0..60 {
            let m = sizes[trial % sizes.len()];
            let k = sizes[(trial * 7 + 3) % sizes.len()];
            let n = sizes[(trial * 5 + 1) % sizes.len()];
            let trans_a = trial % 2 == 1;
            let trans_b = trial % 3 == 1;
            let beta = if trial % 4 == 3 { 0.5f32 } else { 0.0 };
            let threads = 1 + trial % 3;
            let a: Vec<f32> = (0..m * k).map(|_| rng.random::<f32>() - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random::<f32>() - 0.5).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| rng.random::<f32>() - 0.5).collect();
            let (rsa, csa) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
            let (rsb, csb) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
            let mut c = c0.clone();
            unsafe {
                sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1, threads);
            }
            for i in 0..m {
                for j in 0..n {
                    let mut want = beta as f64 * c0[i * n + j] as f64;
                    for p in 0..k {
                        let av = a[(i as isize * rsa + p as isize * csa) as usize] as f64;
                        let bv = b[(p as isize * rsb + j as isize * csb) as usize] as f64;
                        want += av * bv;
                    }
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()) * (k as f64).sqrt(),
                        "m {m} k {k} n {n} ta {trans_a} tb {trans_b} beta {beta}: c[{i},{j}] = {got}, want {want}"
                    );
                }
            }
        }
    }
}
