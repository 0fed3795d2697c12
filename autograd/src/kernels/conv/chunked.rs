//! Convolutions on small planes with several samples per GEMM: their
//! columns side by side in one matrix (im2col and col2im per chunk, the
//! output gradients gathered), chunks split over the threads.

use super::im2col::{col2im, im2col_strided};
use super::{forward_gemm, gemm, Activation, ConvGeom};
use crate::dtype::Float;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;

/// Columns that one GEMM of a convolution should have at least: below this,
/// per-sample products are dominated by packing the weights (ResNet-18's
/// last stage on 32x32 inputs has 1x1 planes: one column per sample).
const CHUNK_COLS: usize = 512;

/// Samples per GEMM: 1 for planes of `CHUNK_COLS` pixels and more (each
/// sample its own product), else enough samples side by side in one column
/// matrix to reach `CHUNK_COLS` columns.
pub(super) fn samples_per_chunk(g: &ConvGeom) -> usize {
    if g.ohw() >= CHUNK_COLS || g.n < 2 {
        return 1;
    }
    let s = CHUNK_COLS.div_ceil(g.ohw()).min(g.n);
    // Leave every thread a chunk when there are samples enough for it.
    let threads = team::threads();
    if g.n.div_ceil(s) < threads && g.n >= threads * CHUNK_COLS.div_ceil(2 * g.ohw()) {
        return g.n.div_ceil(threads);
    }
    s
}

/// Runs `f(first sample, samples, chunk of out, GEMM threads)` over chunks of
/// `s` samples (`per` values of `out` each): chunks in parallel with
/// single-threaded GEMMs when there are enough, else one after another with
/// GEMMs on every thread.
fn per_chunk<T: Float>(
    per: usize,
    n: usize,
    s: usize,
    f: impl Fn(usize, usize, &mut [T], usize) + Sync + Send,
) -> Vec<T> {
    let threads = team::threads();
    let parallel = n.div_ceil(s) >= threads && threads > 1;
    let inner = if parallel { 1 } else { threads };
    team::zeroed_chunks(n * per, s * per, parallel, |c, o| {
        f(c * s, o.len() / per, o, inner)
    })
}

/// The geometry of channels `c0..c1` of one group on their own (what
/// im2col and col2im read of it: one group of `c1 - c0` channels).
fn channel_slice(g: &ConvGeom, c0: usize, c1: usize) -> ConvGeom {
    ConvGeom {
        c: c1 - c0,
        groups: 1,
        ..*g
    }
}

/// Up to `threads` ranges of the group's channels, as even as whole channels allow.
fn channel_ranges(cg: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let parts = threads.clamp(1, cg.max(1));
    (0..parts)
        .map(|p| p * cg / parts..(p + 1) * cg / parts)
        .collect()
}

/// Group `gi`'s columns of samples `i0..i0+ns` side by side: row r of the
/// `K x ns*OHW` result holds row r of each sample's im2col in turn. With
/// `threads > 1` (one chunk for the whole batch, its GEMM split over the
/// threads) the channels' rows are filled in parallel too: serial, they
/// were 11% of a GoogLeNet step with the other thread waiting.
fn im2col_chunk<T: Float>(
    x: &[T],
    g: &ConvGeom,
    gi: usize,
    i0: usize,
    ns: usize,
    col: &mut [T],
    threads: usize,
) {
    let (in_per, plane, ohw, cols) = (g.c * g.h * g.w, g.h * g.w, g.ohw(), ns * g.ohw());
    let taps = g.kh * g.kw;
    let fill = |cr: std::ops::Range<usize>, rows: &mut [T]| {
        let sub = channel_slice(g, cr.start, cr.end);
        for si in 0..ns {
            let xs = &x[(i0 + si) * in_per + (gi * g.cg() + cr.start) * plane..];
            im2col_strided(&xs[..cr.len() * plane], &sub, &mut rows[si * ohw..], cols);
        }
    };
    let ranges = channel_ranges(g.cg(), threads);
    if ranges.len() < 2 || g.k() * cols < 1 << 14 {
        return fill(0..g.cg(), col);
    }
    let mut parts = Vec::with_capacity(ranges.len());
    let mut rest = &mut col[..g.k() * cols];
    for r in ranges {
        let (head, tail) = rest.split_at_mut(r.len() * taps * cols);
        parts.push((r, head));
        rest = tail;
    }
    team::for_each(parts, |_, (r, rows)| fill(r, rows));
}

/// Folds group `gi`'s columns of `ns` samples (side by side, as
/// [`im2col_chunk`] lays them out) into those samples' channels of the
/// group in `dxc` (zeroed), adding; with `threads > 1`, channels in parallel.
fn col2im_chunk<T: Float>(
    col: &[T],
    g: &ConvGeom,
    gi: usize,
    ns: usize,
    dxc: &mut [T],
    threads: usize,
) {
    let (in_per, plane, ohw, cols) = (g.c * g.h * g.w, g.h * g.w, g.ohw(), ns * g.ohw());
    let (cg, taps) = (g.cg(), g.kh * g.kw);
    let fold = |cr: std::ops::Range<usize>, dsts: Vec<&mut [T]>| {
        let sub = channel_slice(g, cr.start, cr.end);
        let rows = &col[cr.start * taps * cols..];
        for (si, d) in dsts.into_iter().enumerate() {
            col2im(&rows[si * ohw..], cols, &sub, d);
        }
    };
    let threads = if g.k() * cols < 1 << 14 { 1 } else { threads };
    let mut parts: Vec<_> = channel_ranges(cg, threads)
        .into_iter()
        .map(|r| (r, Vec::with_capacity(ns)))
        .collect();
    for sample in dxc.chunks_mut(in_per).take(ns) {
        let mut rest = &mut sample[gi * cg * plane..(gi + 1) * cg * plane];
        for (r, dsts) in parts.iter_mut() {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.len() * plane);
            dsts.push(head);
            rest = tail;
        }
    }
    if parts.len() < 2 {
        return parts.into_iter().for_each(|(r, d)| fold(r, d));
    }
    team::for_each(parts, |_, (r, d)| fold(r, d));
}

/// Group `gi`'s output gradients of samples `i0..i0+ns` as one `Og x ns*OHW` matrix.
fn gather_gy<T: Float>(
    gy: &[T],
    g: &ConvGeom,
    gi: usize,
    i0: usize,
    ns: usize,
    out: &mut [T],
    threads: usize,
) {
    let (og, ohw, cols) = (g.og(), g.ohw(), ns * g.ohw());
    // Output channels `o0..` into `rows` (whole rows of `cols`).
    let copy = |o0: usize, rows: &mut [T]| {
        for (j, row) in rows.chunks_mut(cols).enumerate() {
            for si in 0..ns {
                let src = &gy[((i0 + si) * g.o + gi * og + o0 + j) * ohw..][..ohw];
                row[si * ohw..][..ohw].copy_from_slice(src);
            }
        }
    };
    let out = &mut out[..og * cols];
    if threads > 1 && og >= 2 && out.len() >= 1 << 15 {
        let per = og.div_ceil(threads);
        team::for_chunks(out, per * cols, |i, rows| copy(i * per, rows));
    } else {
        copy(0, out);
    }
}

/// [`conv2d_forward`] with `s` samples per GEMM.
pub(super) fn forward_chunked<T: Float>(
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    act: Activation,
    s: usize,
) -> Vec<T> {
    let (og, k, ohw) = (g.og(), g.k(), g.ohw());
    let out_per = g.o * ohw;
    per_chunk(out_per, g.n, s, |i0, ns, yc, t| {
        let cols = ns * ohw;
        for gi in 0..g.groups {
            let wg = &wt[gi * og * k..(gi + 1) * og * k];
            with_scratch(k * cols, |col: &mut [T]| {
                im2col_chunk(x, g, gi, i0, ns, col, t);
                with_scratch(og * cols, |tmp: &mut [T]| {
                    forward_gemm(og, k, cols, wg, col, tmp, t);
                    for si in 0..ns {
                        let dst = &mut yc[si * out_per + gi * og * ohw..][..og * ohw];
                        for o in 0..og {
                            dst[o * ohw..][..ohw]
                                .copy_from_slice(&tmp[o * cols + si * ohw..][..ohw]);
                        }
                    }
                });
            });
        }
        if let Some(b) = bias {
            for (j, plane) in yc.chunks_mut(ohw).enumerate() {
                let bo = b[j % g.o];
                plane.iter_mut().for_each(|v| *v += bo);
            }
        }
        act.apply(yc);
    })
}

/// [`conv2d_input_grad`] (transposed GEMM + col2im) with `s` samples per GEMM.
pub(super) fn input_grad_chunked<T: Float>(gy: &[T], wt: &[T], g: &ConvGeom, s: usize) -> Vec<T> {
    let (og, k, ohw) = (g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    per_chunk(in_per, g.n, s, |i0, ns, dxc, t| {
        let cols = ns * ohw;
        for gi in 0..g.groups {
            let wg = &wt[gi * og * k..(gi + 1) * og * k];
            with_scratch(og * cols, |gyc: &mut [T]| {
                gather_gy(gy, g, gi, i0, ns, gyc, t);
                with_scratch(k * cols, |col: &mut [T]| {
                    // dcol = W^T (K x Og) @ gy (Og x cols)
                    gemm(k, og, cols, wg, 1, k, gyc, cols, 1, col, cols, false, t);
                    col2im_chunk(col, g, gi, ns, dxc, t);
                });
            });
        }
    })
}

/// [`conv2d_weight_grad`] with `s` samples per GEMM: chunks split over the
/// threads (a partial sum each), or one chunk with GEMMs on every thread.
pub(super) fn weight_grad_chunked<T: Float>(x: &[T], gy: &[T], g: &ConvGeom, s: usize) -> Vec<T> {
    let (og, k, ohw) = (g.og(), g.k(), g.ohw());
    let wsize = g.o * k;
    let chunks = g.n.div_ceil(s);
    let accumulate = |c0: usize, c1: usize, dw: &mut [T], t: usize| {
        for c in c0..c1 {
            let (i0, ns) = (c * s, s.min(g.n - c * s));
            let cols = ns * ohw;
            for gi in 0..g.groups {
                let dwg = &mut dw[gi * og * k..(gi + 1) * og * k];
                with_scratch(og * cols, |gyc: &mut [T]| {
                    gather_gy(gy, g, gi, i0, ns, gyc, t);
                    with_scratch(k * cols, |col: &mut [T]| {
                        im2col_chunk(x, g, gi, i0, ns, col, t);
                        // dW += gy (Og x cols) @ col^T (cols x K)
                        gemm(og, cols, k, gyc, cols, 1, col, 1, cols, dwg, k, c > c0, t);
                    });
                });
            }
        }
    };
    let threads = team::threads().min(chunks);
    if threads <= 1 {
        let mut dw = team::zeros(wsize);
        accumulate(0, chunks, &mut dw, team::threads());
        return dw;
    }
    let per = chunks.div_ceil(threads);
    let partials: Vec<Vec<T>> = team::map(threads, |t| {
        let mut dw = vec![T::zero(); wsize];
        accumulate(t * per, ((t + 1) * per).min(chunks), &mut dw, 1);
        dw
    });
    let mut it = partials.into_iter();
    let mut dw = it.next().expect("one partial");
    for p in it {
        dw.iter_mut().zip(&p).for_each(|(a, &b)| *a += b);
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_forward, conv2d_input_grad, conv2d_weight_grad};
    use super::*;

    /// Pointwise layers on planes of up to 32 pixels with reductions from
    /// 128 run sample by sample on the products that read the weights in
    /// place (where the CPU has them): a batch gives, bit for bit, what
    /// each sample gives alone (chunked, one GEMM over the samples' columns
    /// sums in another order), and agrees with f64.
    #[test]
    fn small_pointwise_layers_run_sample_by_sample() {
        if !crate::kernels::narrow::enabled() {
            return;
        }
        // (c, hw, o): GoogLeNet's 480 -> 64 on 4x4, 832 -> 48 on 2x2, a 3x3 plane.
        for (c, hw, o) in [(480, 4, 64), (832, 2, 48), (160, 3, 24)] {
            let n = 6;
            let g = ConvGeom::sized(n, c, [hw, hw], o, [1, 1], [1, 1], [0, 0], [1, 1], 1)
                .expect("an output");
            let one = ConvGeom { n: 1, ..g };
            let val = |i: usize| ((i * 7919) % 101) as f64 / 50.0 - 1.0;
            let x: Vec<f64> = (0..n * c * hw * hw).map(val).collect();
            let wt: Vec<f64> = (0..o * c).map(|i| val(i + 3)).collect();
            let b: Vec<f64> = (0..o).map(|i| val(i + 5)).collect();
            let f32s = |v: &[f64]| v.iter().map(|&u| u as f32).collect::<Vec<f32>>();
            let (x32, w32, b32) = (f32s(&x), f32s(&wt), f32s(&b));
            let id = Activation::Identity;
            let y = conv2d_forward(&x32, &w32, Some(&b32), &g, id);
            let y64 = conv2d_forward(&x, &wt, Some(&b), &g, id);
            let per = c * hw * hw;
            let alone: Vec<f32> = (0..n)
                .flat_map(|i| conv2d_forward(&x32[i * per..][..per], &w32, Some(&b32), &one, id))
                .collect();
            assert_eq!(y, alone, "{g:?}");
            let scale = y64.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (u, v) in y.iter().zip(&y64) {
                assert!(
                    (f64::from(*u) - v).abs() <= 1e-5 * scale,
                    "{g:?}: {u} vs {v}"
                );
            }
        }
    }

    /// Several samples per GEMM give what one sample at a time gives.
    #[test]
    fn chunked_paths_match_per_sample() {
        // (c, h, w, o, k, stride, padding, dilation, groups)
        let cases = [
            (3, 5, 4, 4, 3, 1, 1, 1, 1),
            (4, 6, 6, 6, 3, 2, 1, 1, 2),
            (2, 7, 5, 3, 2, 1, 0, 2, 1),
            (6, 3, 3, 4, 1, 1, 0, 1, 2),
            (2, 4, 4, 2, 3, 2, 2, 1, 1),
            // Big enough for one whole-batch chunk to split its im2col and
            // col2im over the channels (padded stride 1, grouped, strided).
            (40, 4, 4, 8, 3, 1, 1, 1, 1),
            (42, 4, 4, 8, 3, 1, 1, 1, 2),
            (96, 6, 6, 8, 3, 2, 1, 1, 2),
            // Output gradients gathered with their channels split.
            (8, 4, 4, 420, 3, 1, 1, 1, 1),
        ];
        let n = 5;
        for (c, h, w, o, k, st, p, d, gr) in cases {
            let oh = (h + 2 * p - d * (k - 1) - 1) / st + 1;
            let ow = (w + 2 * p - d * (k - 1) - 1) / st + 1;
            let g = ConvGeom {
                n,
                c,
                h,
                w,
                o,
                kh: k,
                kw: k,
                oh,
                ow,
                stride: [st, st],
                padding: [p, p],
                dilation: [d, d],
                groups: gr,
            };
            let one = ConvGeom { n: 1, ..g };
            let val = |i: usize| ((i * 7919) % 101) as f64 / 50.0 - 1.0;
            let x: Vec<f64> = (0..n * c * h * w).map(val).collect();
            let wt: Vec<f64> = (0..o * (c / gr) * k * k).map(|i| val(i + 3)).collect();
            let b: Vec<f64> = (0..o).map(|i| val(i + 5)).collect();
            let gy: Vec<f64> = (0..n * o * oh * ow).map(|i| val(i + 11)).collect();
            let (xin, yout) = (c * h * w, o * oh * ow);
            let mut y_ref = vec![];
            let mut dx_ref = vec![];
            let mut dw_ref = vec![0.0; wt.len()];
            for i in 0..n {
                y_ref.extend(conv2d_forward(
                    &x[i * xin..][..xin],
                    &wt,
                    Some(&b),
                    &one,
                    Activation::Identity,
                ));
                dx_ref.extend(conv2d_input_grad(&gy[i * yout..][..yout], &wt, &one));
                let dw = conv2d_weight_grad(&x[i * xin..][..xin], &gy[i * yout..][..yout], &one);
                dw_ref.iter_mut().zip(dw).for_each(|(a, b)| *a += b);
            }
            for s in [2, 3, 5] {
                let y = forward_chunked(&x, &wt, Some(&b), &g, Activation::Identity, s);
                let dx = input_grad_chunked(&gy, &wt, &g, s);
                let dw = weight_grad_chunked(&x, &gy, &g, s);
                for (a, b) in [(&y, &y_ref), (&dx, &dx_ref), (&dw, &dw_ref)] {
                    assert_eq!(a.len(), b.len());
                    for (u, v) in a.iter().zip(b.iter()) {
                        assert!((u - v).abs() < 1e-12, "{g:?} s={s}: {u} vs {v}");
                    }
                }
            }
        }
    }
}
