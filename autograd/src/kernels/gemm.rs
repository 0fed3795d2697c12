//! Single-precision GEMM with our own micro-kernels (BLIS-style packing and
//! blocking), chosen at run time: AVX-512 (8 rows x 48 columns, 24 of the 32
//! vector registers) or AVX2 + FMA (6 rows x 16 columns, 12 of 16). Why not
//! `matrixmultiply`: its packing of both operands dominates the narrow
//! products of convolutions (16 output channels, K = 144), and here a
//! convolution writes its im2col columns straight into the packed layout
//! (see [`pack_b_row`]). Column edges use narrower variants and masked
//! stores. Measured on this project's AVX2 machine, the kernels did not beat
//! `matrixmultiply` end to end, so they are opt-in (see [`isa`]); f64 always
//! uses `matrixmultiply`.

use std::sync::OnceLock;

use super::scratch::with_scratch;
#[cfg(target_arch = "x86_64")]
use super::x86::gemm as x86;

const KC: usize = 256;
const MC: usize = 120;
const NC: usize = 8192;

/// The micro-kernel family in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// Rows of a micro-tile.
    fn mr(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 6,
        }
    }
    /// Columns of a full micro-tile.
    fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 48,
            Isa::Avx2 => 16,
        }
    }
    /// Floats per vector: panels are padded to a multiple of this.
    fn vw(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }
}

/// The kernel family in use (checked once). By default none: on the AVX2
/// machines this project runs on, `matrixmultiply` measured as fast or
/// faster (benches/gemm.rs), so it does the work. `AUTOGRAD_GEMM=avx2`
/// selects our AVX2 kernels (tested on every run, tests/gemm_avx2.rs);
/// `AUTOGRAD_GEMM=avx512` the AVX-512 ones (experimental: no AVX-512 machine
/// was available to test them).
fn isa() -> Option<Isa> {
    static ISA: OnceLock<Option<Isa>> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let force = std::env::var("AUTOGRAD_GEMM").unwrap_or_default();
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            match force.as_str() {
                "avx512" if is_x86_feature_detected!("avx512f") => Some(Isa::Avx512),
                "avx2" if avx2 => Some(Isa::Avx2),
                _ => None,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    })
}

/// Whether our micro-kernels are in use (else `matrixmultiply`).
pub(crate) fn kernels_enabled() -> bool {
    isa().is_some()
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
    match isa() {
        Some(isa) if csc == 1 && k > 0 => {
            let (a, b, c) = (
                Mat {
                    ptr: a,
                    rs: rsa,
                    cs: csa,
                },
                Mat {
                    ptr: b,
                    rs: rsb,
                    cs: csb,
                },
                MatMut { ptr: c, rs: rsc },
            );
            blocked(
                isa,
                m,
                k,
                n,
                alpha,
                a,
                BSource::Strided(b),
                beta,
                c,
                threads,
            );
        }
        _ => {
            // Raw pointers are not Sync; the blocks are disjoint, so share them as addresses.
            let (ap, bp, cp) = (a as usize, b as usize, c as usize);
            split(m, n, threads, |r0, rows, c0, cols| {
                matrixmultiply::sgemm(
                    rows,
                    k,
                    cols,
                    alpha,
                    (ap as *const f32).offset(r0 as isize * rsa),
                    rsa,
                    csa,
                    (bp as *const f32).offset(c0 as isize * csb),
                    rsb,
                    csb,
                    beta,
                    (cp as *mut f32).offset(r0 as isize * rsc + c0 as isize * csc),
                    rsc,
                    csc,
                )
            })
        }
    }
}

/// Runs `f(first row, rows, first column, columns)` over `threads` blocks of
/// an `m x n` product in parallel (`matrixmultiply` itself is single-threaded
/// here). Each thread packs its share of one operand and all of the other:
/// row blocks share B, column blocks share A, so the split goes along the
/// longer side (`dW = gy^T x` of a 784-input layer: 100 x 784, columns).
unsafe fn split(m: usize, n: usize, threads: usize, f: impl Fn(usize, usize, usize, usize) + Sync) {
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    let parts = threads.max(1).min(len / 16).max(1);
    if parts == 1 {
        return f(0, m, 0, n);
    }
    let per = len.div_ceil(parts).div_ceil(8) * 8;
    super::team::run(parts, |t| {
        let s0 = t * per;
        if s0 < len {
            let size = per.min(len - s0);
            if by_rows {
                f(s0, size, 0, n)
            } else {
                f(0, m, s0, size)
            }
        }
    });
}

/// Where the B operand comes from: a strided matrix, packed per block here,
/// or already packed by the caller (see [`pack_b_row`]).
#[derive(Clone, Copy)]
enum BSource<'a> {
    Strided(Mat),
    Packed(&'a [f32]),
}

/// `n` rounded up so the last panel is a multiple of the vector width.
fn padded_width(isa: Isa, n: usize) -> usize {
    (n / isa.nr()) * isa.nr() + (n % isa.nr()).div_ceil(isa.vw()) * isa.vw()
}

/// Whether a `k x n` B operand can be packed whole by the caller.
pub(crate) fn can_prepack(n: usize) -> bool {
    isa().is_some() && n <= NC
}

/// Elements of a fully packed `k x n` B operand (`can_prepack(n)` must hold).
pub(crate) fn packed_b_len(k: usize, n: usize) -> usize {
    k * padded_width(isa().expect("a micro-kernel"), n)
}

/// Writes row `p` (all `n` columns) of a `k x n` B operand into the packed
/// layout that [`sgemm_packed_b`] reads: per block of `KC` rows, panels of
/// `NR` columns, each row-major over its (zero-padded) width.
pub(crate) fn pack_b_row(p: usize, k: usize, row: &[f32], bp: &mut [f32]) {
    let isa = isa().expect("a micro-kernel");
    let (nr, vw) = (isa.nr(), isa.vw());
    let n = row.len();
    let pc = p / KC * KC;
    let kc = KC.min(k - pc);
    let base = pc * padded_width(isa, n);
    for j0 in (0..n).step_by(nr) {
        let w = nr.min(n - j0);
        let wp = w.div_ceil(vw) * vw;
        let off = base + j0 * kc + (p - pc) * wp;
        bp[off..off + w].copy_from_slice(&row[j0..j0 + w]);
        bp[off + w..off + wp].fill(0.0);
    }
}

/// Writes column `j` (all `k` rows) of a `k x n` B operand into the packed
/// layout (the buffer must start zeroed, for the padding columns).
pub(crate) fn pack_b_col(j: usize, k: usize, n: usize, col: &[f32], bp: &mut [f32]) {
    let isa = isa().expect("a micro-kernel");
    let (nr, vw) = (isa.nr(), isa.vw());
    let wtot = padded_width(isa, n);
    let j0 = j / nr * nr;
    let wp = nr.min(n - j0).div_ceil(vw) * vw;
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let base = pc * wtot + j0 * kc + (j - j0);
        for (p, &v) in col[pc..pc + kc].iter().enumerate() {
            bp[base + p * wp] = v;
        }
    }
}

/// `C = A B + beta * C` with B packed by [`pack_b_row`] or [`pack_b_col`].
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
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let isa = isa().expect("checked by can_prepack");
    blocked(
        isa,
        m,
        k,
        n,
        1.0,
        Mat {
            ptr: a,
            rs: rsa,
            cs: csa,
        },
        BSource::Packed(bp),
        beta,
        MatMut { ptr: c, rs: rsc },
        threads,
    );
}

#[allow(clippy::too_many_arguments)]
unsafe fn blocked(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat,
    b: BSource<'_>,
    beta: f32,
    c: MatMut,
    threads: usize,
) {
    let mr = isa.mr();
    let threads = threads.max(1).min(m.div_ceil(mr));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let beta_p = if pc == 0 { beta } else { 1.0 };
            let with_b = |bp: &[f32]| {
                let rows_per = m.div_ceil(threads).div_ceil(mr) * mr;
                let run = |t: usize| {
                    let (r0, r1) = (t * rows_per, ((t + 1) * rows_per).min(m));
                    if r0 >= r1 {
                        return;
                    }
                    with_scratch(MC.div_ceil(mr) * mr * kc, |ap: &mut [f32]| {
                        for ic in (r0..r1).step_by(MC) {
                            let mc = MC.min(r1 - ic);
                            pack_a(mr, a, ic, mc, pc, kc, ap);
                            macro_block(isa, mc, nc, kc, ap, bp, c, ic, jc, alpha, beta_p);
                        }
                    });
                };
                super::team::run(threads, run);
            };
            match b {
                BSource::Strided(b) => {
                    // Packed B for this (pc, jc) block is shared by every thread.
                    with_scratch(padded_width(isa, nc) * kc, |bp: &mut [f32]| {
                        pack_b(isa, b, pc, kc, jc, nc, bp);
                        with_b(bp)
                    });
                }
                BSource::Packed(all) => with_b(&all[pc * padded_width(isa, n)..]),
            }
        }
    }
}

/// Packs `B[pc..pc+kc, jc..jc+nc]` into panels of `NR` columns (the last one
/// padded with zeros to a multiple of the vector width), each stored k-major.
unsafe fn pack_b(isa: Isa, b: Mat, pc: usize, kc: usize, jc: usize, nc: usize, bp: &mut [f32]) {
    let (nr, vw) = (isa.nr(), isa.vw());
    let mut off = 0;
    for j0 in (0..nc).step_by(nr) {
        let w = nr.min(nc - j0);
        let wp = w.div_ceil(vw) * vw;
        for p in 0..kc {
            let dst = &mut bp[off + p * wp..off + (p + 1) * wp];
            let row = b
                .ptr
                .offset((pc + p) as isize * b.rs + (jc + j0) as isize * b.cs);
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

/// Packs `A[ic..ic+mc, pc..pc+kc]` into micro-panels of `mr` rows (zero padded), each k-major.
unsafe fn pack_a(mr: usize, a: Mat, ic: usize, mc: usize, pc: usize, kc: usize, ap: &mut [f32]) {
    for (pi, i0) in (0..mc).step_by(mr).enumerate() {
        let rows = mr.min(mc - i0);
        let panel = &mut ap[pi * mr * kc..(pi + 1) * mr * kc];
        if a.cs == 1 {
            for r in 0..mr {
                if r < rows {
                    let src = a.ptr.offset((ic + i0 + r) as isize * a.rs + pc as isize);
                    for p in 0..kc {
                        panel[p * mr + r] = *src.add(p);
                    }
                } else {
                    for p in 0..kc {
                        panel[p * mr + r] = 0.0;
                    }
                }
            }
        } else {
            for p in 0..kc {
                let col = a
                    .ptr
                    .offset((ic + i0) as isize * a.rs + (pc + p) as isize * a.cs);
                for r in 0..mr {
                    panel[p * mr + r] = if r < rows {
                        *col.offset(r as isize * a.rs)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn macro_block(
    isa: Isa,
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
    let (mr, nr, vw) = (isa.mr(), isa.nr(), isa.vw());
    let mut boff = 0;
    for j0 in (0..nc).step_by(nr) {
        let w = nr.min(nc - j0);
        let nv = w.div_ceil(vw);
        for (pi, i0) in (0..mc).step_by(mr).enumerate() {
            let rows = mr.min(mc - i0);
            let cptr = c.ptr.offset((ic + i0) as isize * c.rs + (jc + j0) as isize);
            let a = ap.as_ptr().add(pi * mr * kc);
            let b = bp.as_ptr().add(boff);
            #[cfg(target_arch = "x86_64")]
            match (isa, nv) {
                (Isa::Avx512, 3) => x86::avx512::<3>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                (Isa::Avx512, 2) => x86::avx512::<2>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                (Isa::Avx512, _) => x86::avx512::<1>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                (Isa::Avx2, 2) => x86::avx2::<2>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
                (Isa::Avx2, _) => x86::avx2::<1>(kc, a, b, cptr, c.rs, alpha, beta, rows, w),
            }
        }
        boff += nv * vw * kc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn prepacked_b_matches_strided() {
        if !can_prepack(100) {
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for (m, k, n) in [(16, 144, 784), (5, 300, 100), (9, 17, 33), (32, 600, 64)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random::<f32>() - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random::<f32>() - 0.5).collect();
            let mut bp = vec![f32::NAN; packed_b_len(k, n)];
            for p in 0..k {
                pack_b_row(p, k, &b[p * n..(p + 1) * n], &mut bp);
            }
            // The same operand packed column by column.
            let mut bq = vec![0.0f32; packed_b_len(k, n)];
            for j in 0..n {
                let col: Vec<f32> = (0..k).map(|p| b[p * n + j]).collect();
                pack_b_col(j, k, n, &col, &mut bq);
            }
            let (mut c1, mut c2, mut c3) = (
                vec![0.0f32; m * n],
                vec![0.0f32; m * n],
                vec![0.0f32; m * n],
            );
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c1.as_mut_ptr(),
                    n as isize,
                    1,
                    1,
                );
                sgemm_packed_b(
                    m,
                    k,
                    n,
                    a.as_ptr(),
                    k as isize,
                    1,
                    &bp,
                    0.0,
                    c2.as_mut_ptr(),
                    n as isize,
                    2,
                );
                sgemm_packed_b(
                    m,
                    k,
                    n,
                    a.as_ptr(),
                    k as isize,
                    1,
                    &bq,
                    0.0,
                    c3.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            assert_eq!(c1, c2, "m {m} k {k} n {n}");
            assert_eq!(c1, c3, "m {m} k {k} n {n} (packed by columns)");
        }
    }

    /// Against a naive triple loop in f64, over edge sizes, strides, beta and
    /// threads (the kernel family this CPU runs; CI's machine runs AVX2).
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
            let mut c = c0.clone();
            unsafe {
                sgemm(
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
                    beta,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                    threads,
                );
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
