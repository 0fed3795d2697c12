//! The weight gradient of a convolution: the direct kernel, chunks of
//! samples, or per sample im2col (packed straight into the GEMM layout in
//! f32) and one partial sum per thread.

use super::chunked::{samples_per_chunk, weight_grad_chunked};
use super::im2col::{im2col, im2col_row};
use super::{covering, dead_taps, dense, direct, gemm, winograd4, ConvGeom};
use crate::dtype::Float;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;

/// The weight gradient of conv2d: sum over samples of gy (Og x OHW) @ col^T (OHW x K).
pub(crate) fn conv2d_weight_grad<T: Float>(x: &[T], gy: &[T], g: &ConvGeom) -> Vec<T> {
    if let Some(c) = covering::covering(g) {
        return c.weight_grad(x, gy, g);
    }
    if let Some(p) = dead_taps::prune(g) {
        return p.full_grad(g, &conv2d_weight_grad(x, gy, &p.g));
    }
    if dense::applies(g) {
        return dense::weight_grad(x, gy, g);
    }
    let (cg, og, k, ohw) = (g.cg(), g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    let out_per = g.o * ohw;
    let wsize = g.o * k;
    if winograd4::applies_weight_grad(g) {
        if let (Some(x32), Some(gy32)) = (T::f32_slice(x), T::f32_slice(gy)) {
            return winograd4::weight_grad(x32, gy32, g)
                .into_iter()
                .map(|v| T::of(v as f64))
                .collect();
        }
    }
    if direct::applies(g) {
        if let (Some(x32), Some(gy32)) = (T::f32_slice(x), T::f32_slice(gy)) {
            // T is f32 here: the conversion is a copy.
            return direct::weight_grad(x32, gy32, g)
                .into_iter()
                .map(|v| T::of(v as f64))
                .collect();
        }
    }
    let s = samples_per_chunk(g);
    if s > 1 {
        return weight_grad_chunked(x, gy, g, s);
    }
    let accumulate_range = |range: std::ops::Range<usize>, dw: &mut [T], t: usize| {
        // The first product writes (beta 0) rather than adds: reading the
        // fresh zeroed buffer first would cost copy-on-write faults.
        let first = range.start;
        for i in range {
            let xs = &x[i * in_per..(i + 1) * in_per];
            let gys = &gy[i * out_per..(i + 1) * out_per];
            for gi in 0..g.groups {
                let xg = &xs[gi * cg * g.h * g.w..(gi + 1) * cg * g.h * g.w];
                let gyg = &gys[gi * og * ohw..(gi + 1) * og * ohw];
                let dwg = &mut dw[gi * og * k..(gi + 1) * og * k];
                if let (Some(x32), Some(gy32), Some(dw32)) =
                    (T::f32_slice(xg), T::f32_slice(gyg), T::f32_slice_mut(dwg))
                {
                    if gemm::can_prepack(k) && !g.is_pointwise() {
                        // col^T (OHW x K) packed column by column from im2col rows.
                        with_scratch(gemm::packed_b_len(ohw, k), |bp: &mut [f32]| {
                            bp.fill(0.0);
                            with_scratch(ohw, |row: &mut [f32]| {
                                for r in 0..k {
                                    im2col_row(x32, g, r, row);
                                    gemm::pack_b_col(r, ohw, k, row, bp);
                                }
                            });
                            // SAFETY: gy32 is og x ohw row-major, dw32 og x k row-major.
                            unsafe {
                                gemm::sgemm_packed_b(
                                    og,
                                    ohw,
                                    k,
                                    gy32.as_ptr(),
                                    ohw as isize,
                                    1,
                                    bp,
                                    if i > first { 1.0 } else { 0.0 },
                                    dw32.as_mut_ptr(),
                                    k as isize,
                                    t,
                                )
                            };
                        });
                        continue;
                    }
                }
                if g.is_pointwise() {
                    gemm(og, ohw, k, gyg, ohw, 1, xg, 1, ohw, dwg, k, i > first, t);
                } else {
                    with_scratch(k * ohw, |col: &mut [T]| {
                        im2col(xg, g, col);
                        gemm(og, ohw, k, gyg, ohw, 1, col, 1, ohw, dwg, k, i > first, t);
                    });
                }
            }
        }
    };
    let threads = team::threads().min(g.n).max(1);
    let work = og * k * ohw * g.groups * g.n;
    if threads == 1 || work < 1 << 16 {
        let mut dw = team::zeros(wsize);
        let inner = if work >= 1 << 18 { team::threads() } else { 1 };
        accumulate_range(0..g.n, &mut dw, inner);
        return dw;
    }
    // One partial sum per thread, then add them up.
    let per = g.n.div_ceil(threads);
    let partials: Vec<Vec<T>> = team::map(threads, |t| {
        let mut dw = vec![T::zero(); wsize];
        accumulate_range(t * per..((t + 1) * per).min(g.n), &mut dw, 1);
        dw
    });
    let mut it = partials.into_iter();
    let mut dw = it.next().expect("one partial");
    for p in it {
        dw.iter_mut().zip(&p).for_each(|(a, &b)| *a += b);
    }
    dw
}
