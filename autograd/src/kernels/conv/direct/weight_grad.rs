//! The direct kernels' weight gradient: `dW^T (K x Og) = X (K x Q) @ gy^T
//! (Q x Og)` over the valid outputs, six (or twelve, AVX-512) rows of X
//! broadcast straight from the padded input, gy transposed into 16-wide
//! panels (see the parent module).

use super::{rows_per_call, Plan, MR, NR, QC};
use crate::kernels::conv::ConvGeom;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;
#[cfg(target_arch = "x86_64")]
use crate::kernels::x86::direct as x86;

/// The weight gradient for a geometry where [`applies`] holds:
/// `dW (O x K) = sum over samples of gy (Og x OHW) @ im2col(x)^T`, per group.
pub(crate) fn weight_grad(x: &[f32], gy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (og, k) = (g.og(), g.k());
    let plan = Plan::new(g);
    // Output channels padded to whole vectors; dW^T is K x ogp per group.
    let ogp = og.div_ceil(8) * 8;
    let part = g.groups * k * ogp;
    let accumulate = |range: std::ops::Range<usize>| {
        let mut dwt = vec![0.0f32; part];
        for i in range {
            for gi in 0..g.groups {
                let xg = &x[i * g.c * g.h * g.w + gi * g.cg() * g.h * g.w..][..g.cg() * g.h * g.w];
                let gyg = &gy[(i * g.o + gi * og) * g.ohw()..][..og * g.ohw()];
                weight_grad_group(&plan, g, xg, gyg, &mut dwt[gi * k * ogp..][..k * ogp], ogp);
            }
        }
        dwt
    };
    let threads = team::threads().min(g.n).max(1);
    let dwt = if threads == 1 {
        accumulate(0..g.n)
    } else {
        let per = g.n.div_ceil(threads);
        let partials = team::map(threads, |t| accumulate(t * per..((t + 1) * per).min(g.n)));
        let mut it = partials.into_iter();
        let mut sum = it.next().expect("one partial");
        for p in it {
            sum.iter_mut().zip(&p).for_each(|(a, &b)| *a += b);
        }
        sum
    };
    // dW^T (K x ogp) -> dW (Og x K), per group.
    let mut dw = vec![0.0f32; g.o * k];
    for gi in 0..g.groups {
        let src = &dwt[gi * k * ogp..][..k * ogp];
        let dst = &mut dw[gi * og * k..][..og * k];
        for p in 0..k {
            for o in 0..og {
                dst[o * k + p] = src[p * ogp + o];
            }
        }
    }
    dw
}

/// Adds one sample's `X (K x Q) @ gy^T (Q x Og)` to `dwt` (K x ogp).
fn weight_grad_group(
    plan: &Plan,
    g: &ConvGeom,
    xg: &[f32],
    gyg: &[f32],
    dwt: &mut [f32],
    ogp: usize,
) {
    let (og, k, ohw, ow, wp) = (g.og(), g.k(), g.ohw(), g.ow, plan.wp);
    with_scratch(plan.xlen, |xp: &mut [f32]| {
        plan.pad_input(g, xg, xp);
        // gy^T in panels of 16 (or a last one of 8) output channels, each
        // pixel-major (zero in the padding channels).
        with_scratch(ohw * ogp, |bt: &mut [f32]| {
            let mut col0 = 0;
            while col0 < ogp {
                let width = if ogp - col0 >= NR { NR } else { 8 };
                let panel = &mut bt[col0 * ohw..][..width * ohw];
                let real = width.min(og.saturating_sub(col0));
                #[cfg(target_arch = "x86_64")]
                if width == NR && crate::kernels::isa::avx512() {
                    // SAFETY: AVX-512F is present; channels `col0..col0 +
                    // real` of gyg hold `ohw` floats each; the panel holds
                    // `16 ohw`.
                    unsafe {
                        x86::panel16(
                            gyg[col0 * ohw..].as_ptr(),
                            ohw,
                            real,
                            ohw,
                            panel.as_mut_ptr(),
                        )
                    };
                    col0 += width;
                    continue;
                }
                // In blocks of 64 pixels (64 cache lines of the panel).
                for px0 in (0..ohw).step_by(64) {
                    let n = 64.min(ohw - px0);
                    let dst = &mut panel[px0 * width..(px0 + n) * width];
                    for j in 0..width {
                        let lane = dst.iter_mut().skip(j).step_by(width);
                        if j < real {
                            let src = &gyg[(col0 + j) * ohw + px0..][..n];
                            lane.zip(src).for_each(|(d, &v)| *d = v);
                        } else {
                            lane.for_each(|d| *d = 0.0);
                        }
                    }
                }
                col0 += width;
            }
            // Blocks of whole output rows: the kernel walks a row of `ow`
            // pixels, then jumps over the padding columns to the next.
            let rows_per = (QC / ow).max(1);
            let wide = crate::kernels::isa::avx512();
            for oy0 in (0..g.oh).step_by(rows_per) {
                let span = Span {
                    rows: rows_per.min(g.oh - oy0),
                    ow,
                    wp,
                };
                // The kernel's rows `r0..r0 + rows`: where each input row
                // of the reduction starts for this block of outputs.
                let row_ptrs = |r0: usize, rows: usize| {
                    let mut rp = [std::ptr::null::<f32>(); 2 * MR];
                    for (r, ptr) in rp.iter_mut().enumerate().take(rows) {
                        *ptr = xp[plan.offs[r0 + r] + oy0 * wp..].as_ptr();
                    }
                    rp
                };
                let mut col0 = 0;
                while col0 < ogp {
                    if wide && ogp - col0 >= 2 * NR {
                        // Two 16-channel panels in one pass over the input.
                        let len = span.rows * ow * NR;
                        let b0 = &bt[col0 * ohw + oy0 * ow * NR..][..len];
                        let b1 = &bt[(col0 + NR) * ohw + oy0 * ow * NR..][..len];
                        let step = rows_per_call();
                        for r0 in (0..k).step_by(step) {
                            let rows = step.min(k - r0);
                            let rp = row_ptrs(r0, rows);
                            // SAFETY: as below, for two panels of 16 columns
                            // (`col0..col0 + 32` of dwt's `ogp`).
                            unsafe {
                                wtile_dispatch_wide(
                                    rows,
                                    span,
                                    &rp,
                                    [b0.as_ptr(), b1.as_ptr()],
                                    dwt.as_mut_ptr().add(r0 * ogp + col0),
                                    ogp,
                                );
                            }
                        }
                        col0 += 2 * NR;
                        continue;
                    }
                    let width = if ogp - col0 >= NR { NR } else { 8 };
                    let b = &bt[col0 * ohw + oy0 * ow * width..][..span.rows * ow * width];
                    let step = rows_per_call();
                    for r0 in (0..k).step_by(step) {
                        let rows = step.min(k - r0);
                        let rp = row_ptrs(r0, rows);
                        // SAFETY: row pointer `r` reads `xp[offs[p] + oy * wp
                        // + ox]` for the block's output pixels, below
                        // `offs_max + q <= xlen`; `b` holds the block's
                        // pixels times `width`; the tile adds into rows
                        // `r0..r0+rows`, columns `col0..col0+width` of the
                        // `k x ogp` dwt.
                        unsafe {
                            wtile_dispatch(
                                rows,
                                width,
                                span,
                                &rp,
                                b.as_ptr(),
                                dwt.as_mut_ptr().add(r0 * ogp + col0),
                                ogp,
                            );
                        }
                    }
                    col0 += width;
                }
            }
        });
    });
}

/// Output rows of a weight-gradient block: `rows` rows of `ow` pixels,
/// `wp` apart in the padded input.
#[derive(Clone, Copy)]
pub(in crate::kernels) struct Span {
    pub(in crate::kernels) rows: usize,
    pub(in crate::kernels) ow: usize,
    pub(in crate::kernels) wp: usize,
}

/// Runs the weight-gradient micro-kernel for `rows` (1..=12) x `width`
/// (8 or 16): one AVX-512 call for up to 12 rows of 16 columns, else AVX2
/// calls of up to 6 rows (the same sums in the same order).
///
/// # Safety
/// As [`x86::wtile`] for `rp[..rows]`.
pub(in crate::kernels) unsafe fn wtile_dispatch(
    rows: usize,
    width: usize,
    span: Span,
    rp: &[*const f32; 2 * MR],
    b: *const f32,
    c: *mut f32,
    rsc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if width == NR && crate::kernels::isa::avx512() {
        by_rows!(rows; x86::wtile512; span, rp, b, c, rsc);
        return;
    }
    let (first, second) = rp.split_at(MR);
    let first: &[*const f32; MR] = first.try_into().expect("6 row pointers");
    if rows > MR {
        let second: &[*const f32; MR] = second.try_into().expect("6 row pointers");
        wtile_avx2(MR, width, span, first, b, c, rsc);
        return wtile_avx2(rows - MR, width, span, second, b, c.add(MR * rsc), rsc);
    }
    wtile_avx2(rows, width, span, first, b, c, rsc)
}

/// The AVX-512 weight-gradient micro-kernel for `rows` (1..=12) x 32
/// columns: two 16-column panels of `gy^T`.
///
/// # Safety
/// As [`x86::wtile512_wide`] for `rp[..rows]`.
pub(in crate::kernels) unsafe fn wtile_dispatch_wide(
    rows: usize,
    span: Span,
    rp: &[*const f32; 2 * MR],
    b: [*const f32; 2],
    c: *mut f32,
    rsc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let [b0, b1] = b;
        by_rows!(rows; x86::wtile512_wide; span, rp, b0, b1, c, rsc)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (span, rp, b, c, rsc);
        unreachable!("AVX-512 kernels on x86_64 only ({rows} rows)")
    }
}

/// [`x86::wtile`] for `rows` (1..=6) x `width` (8 or 16).
///
/// # Safety
/// As [`x86::wtile`].
unsafe fn wtile_avx2(
    rows: usize,
    width: usize,
    span: Span,
    rp: &[*const f32; MR],
    b: *const f32,
    c: *mut f32,
    rsc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match (rows, width) {
        (6, 16) => x86::wtile::<6, 2>(span, rp, b, c, rsc),
        (5, 16) => x86::wtile::<5, 2>(span, rp, b, c, rsc),
        (4, 16) => x86::wtile::<4, 2>(span, rp, b, c, rsc),
        (3, 16) => x86::wtile::<3, 2>(span, rp, b, c, rsc),
        (2, 16) => x86::wtile::<2, 2>(span, rp, b, c, rsc),
        (_, 16) => x86::wtile::<1, 2>(span, rp, b, c, rsc),
        (6, _) => x86::wtile::<6, 1>(span, rp, b, c, rsc),
        (5, _) => x86::wtile::<5, 1>(span, rp, b, c, rsc),
        (4, _) => x86::wtile::<4, 1>(span, rp, b, c, rsc),
        (3, _) => x86::wtile::<3, 1>(span, rp, b, c, rsc),
        (2, _) => x86::wtile::<2, 1>(span, rp, b, c, rsc),
        (_, _) => x86::wtile::<1, 1>(span, rp, b, c, rsc),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "direct convolution on x86_64 only ({rows} {width} {} {rp:?} {b:?} {c:?} {rsc})",
        span.rows
    );
}
