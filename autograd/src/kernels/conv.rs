//! Convolution kernels (NCHW). Taps that only read padding are dropped first
//! (`dead_taps`); stride-1 convolutions in f32 on AVX2 + FMA then run
//! directly on the padded input (`direct`); the rest use im2col + GEMM for
//! the forward pass and the weight gradient, GEMM + col2im for the input
//! gradient (which is also `conv_transpose2d`). Batches are split across
//! threads, each with its own reused column buffer and a single-threaded GEMM.

use super::team;

use super::dead_taps;
use super::direct;
use super::gemm;
use super::im2col::{col2im, im2col, im2col_row, im2col_strided};
use super::scratch::with_scratch;
use crate::dtype::Float;

/// Stride, padding, dilation (each per axis: `[h, w]`) and groups of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl ConvGeom {
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }
    pub fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of a column matrix: `Cg * KH * KW`.
    pub fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    pub fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1x1 convolution with stride 1 and no padding reads the input as its own column matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

#[cfg(test)]
impl ConvGeom {
    /// For tests: the geometry with the output size PyTorch gives (`c` and
    /// `o` count all groups' channels); `None` when the output is empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sized(
        n: usize,
        c: usize,
        hw: [usize; 2],
        o: usize,
        k: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<ConvGeom> {
        let out = |a: usize| {
            let span = dilation[a] * (k[a] - 1) + 1;
            (hw[a] + 2 * padding[a])
                .checked_sub(span)
                .map(|r| r / stride[a] + 1)
        };
        Some(ConvGeom {
            n,
            c,
            h: hw[0],
            w: hw[1],
            o,
            kh: k[0],
            kw: k[1],
            oh: out(0)?,
            ow: out(1)?,
            stride,
            padding,
            dilation,
            groups,
        })
    }
}

/// `C = A B (+ C if accumulate)` on slices with explicit strides, one thread.
#[allow(clippy::too_many_arguments)]
fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    c: &mut [T],
    rsc: usize,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    debug_assert!(a.len() > (m - 1) * rsa + (k.max(1) - 1) * csa || k == 0);
    debug_assert!(c.len() >= (m - 1) * rsc + n);
    let beta = if accumulate { T::one() } else { T::zero() };
    // SAFETY: the slices cover the strided matrices (asserted above in debug
    // builds, guaranteed by the callers' shapes) and `c` is exclusively borrowed.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
            threads,
        );
    }
}

/// `y (Og x OHW) = W (Og x K) @ im2col(x)`; in f32 with AVX-512 the columns
/// are written straight into the GEMM's packed layout (no second copy).
fn conv_group_forward<T: Float>(xg: &[T], wg: &[T], yg: &mut [T], g: &ConvGeom, t: usize) {
    let (og, k, ohw) = (g.og(), g.k(), g.ohw());
    if let (Some(x32), Some(w32), Some(y32)) =
        (T::f32_slice(xg), T::f32_slice(wg), T::f32_slice_mut(yg))
    {
        if gemm::can_prepack(ohw) && !g.is_pointwise() {
            with_scratch(gemm::packed_b_len(k, ohw), |bp: &mut [f32]| {
                with_scratch(ohw, |row: &mut [f32]| {
                    for r in 0..k {
                        im2col_row(x32, g, r, row);
                        gemm::pack_b_row(r, k, row, bp);
                    }
                });
                // SAFETY: w32 is og x k row-major, y32 is og x ohw row-major.
                unsafe {
                    gemm::sgemm_packed_b(
                        og,
                        k,
                        ohw,
                        w32.as_ptr(),
                        k as isize,
                        1,
                        bp,
                        0.0,
                        y32.as_mut_ptr(),
                        ohw as isize,
                        t,
                    )
                };
            });
            return;
        }
    }
    if g.is_pointwise() {
        gemm(og, k, ohw, wg, k, 1, xg, ohw, 1, yg, ohw, false, t);
    } else {
        with_scratch(k * ohw, |col: &mut [T]| {
            im2col(xg, g, col);
            gemm(og, k, ohw, wg, k, 1, col, ohw, 1, yg, ohw, false, t);
        });
    }
}

/// A new output of `n` samples (`per` values each, zeroed) whose chunks go
/// to `f(sample index, chunk, GEMM threads)`: samples in parallel (single-threaded GEMMs) when there are enough
/// of them, else one after another with multi-threaded GEMMs.
fn per_sample<T: Float>(
    per: usize,
    n: usize,
    work: usize,
    f: impl Fn(usize, &mut [T], usize) + Sync + Send,
) -> Vec<T> {
    let threads = team::threads();
    let parallel = n >= threads && work >= 1 << 15 && threads > 1;
    let inner = if !parallel && work >= 1 << 18 {
        threads
    } else {
        1
    };
    team::zeroed_chunks(n * per, per, parallel, |i, o| f(i, o, inner))
}

/// `y = conv2d(x, w) + bias`: x `[N, C, H, W]`, w `[O, C/G, KH, KW]`, y `[N, O, OH, OW]`.
pub(crate) fn conv2d_forward<T: Float>(
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
) -> Vec<T> {
    if let Some(p) = dead_taps::prune(g) {
        return conv2d_forward(x, &p.weights(g, wt), bias, &p.g);
    }
    let (cg, og, k, ohw) = (g.cg(), g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    let out_per = g.o * ohw;
    if direct::applies(g) {
        if let (Some(x32), Some(w32)) = (T::f32_slice(x), T::f32_slice(wt)) {
            let b32 = bias.map(|b| T::f32_slice(b).expect("bias of the input's type"));
            // Not zero-filled: the kernel writes every element.
            let mut y = Vec::<T>::with_capacity(g.n * out_per);
            let spare = y.spare_capacity_mut();
            // SAFETY: T is f32 (f32_slice returned Some), so the uninitialized
            // slots have f32's layout.
            let y32 = unsafe {
                std::slice::from_raw_parts_mut(
                    spare.as_mut_ptr() as *mut std::mem::MaybeUninit<f32>,
                    g.n * out_per,
                )
            };
            direct::forward(x32, w32, b32, g, y32);
            // SAFETY: direct::forward initialized all `n * out_per` elements.
            unsafe { y.set_len(g.n * out_per) };
            return y;
        }
    }
    let work = og * k * ohw * g.groups;
    let s = samples_per_chunk(g);
    if s > 1 {
        return forward_chunked(x, wt, bias, g, s);
    }
    per_sample(out_per, g.n, work, |i, yo, t| {
        let xs = &x[i * in_per..(i + 1) * in_per];
        for gi in 0..g.groups {
            let xg = &xs[gi * cg * g.h * g.w..(gi + 1) * cg * g.h * g.w];
            let wg = &wt[gi * og * k..(gi + 1) * og * k];
            let yg = &mut yo[gi * og * ohw..(gi + 1) * og * ohw];
            conv_group_forward(xg, wg, yg, g, t);
        }
        if let Some(b) = bias {
            for (o, plane) in yo.chunks_mut(ohw).enumerate() {
                let bo = b[o];
                plane.iter_mut().for_each(|v| *v += bo);
            }
        }
    })
}

/// The input gradient of conv2d (= `conv_transpose2d(gy, w)`): gy `[N, O, OH, OW]` -> `[N, C, H, W]`.
pub(crate) fn conv2d_input_grad<T: Float>(gy: &[T], wt: &[T], g: &ConvGeom) -> Vec<T> {
    if let Some(p) = dead_taps::prune(g) {
        return conv2d_input_grad(gy, &p.weights(g, wt), &p.g);
    }
    if let Some((wf, gf)) = as_flipped_forward(wt, g) {
        return conv2d_forward(gy, &wf, None, &gf);
    }
    let (cg, og, k, ohw) = (g.cg(), g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    let out_per = g.o * ohw;
    let work = og * k * ohw * g.groups;
    let s = samples_per_chunk(g);
    if s > 1 {
        return input_grad_chunked(gy, wt, g, s);
    }
    // The chunks are written with zeros before col2im adds into them: a
    // fresh calloc'd allocation read first maps the shared zero page, and the
    // copy-on-write fault on the first store then flushes the TLB of every
    // core (measured: 11% of the time).
    per_sample(in_per, g.n, work, |i, dxs, t| {
        let gys = &gy[i * out_per..(i + 1) * out_per];
        for gi in 0..g.groups {
            let gyg = &gys[gi * og * ohw..(gi + 1) * og * ohw];
            let wg = &wt[gi * og * k..(gi + 1) * og * k];
            let dxg = &mut dxs[gi * cg * g.h * g.w..(gi + 1) * cg * g.h * g.w];
            // dcol = W^T (K x Og) @ gy (Og x OHW)
            if g.is_pointwise() {
                gemm(k, og, ohw, wg, 1, k, gyg, ohw, 1, dxg, ohw, false, t);
            } else {
                with_scratch(k * ohw, |col: &mut [T]| {
                    gemm(k, og, ohw, wg, 1, k, gyg, ohw, 1, col, ohw, false, t);
                    col2im(col, ohw, g, dxg);
                });
            }
        }
    })
}

/// With stride 1 the input gradient is itself a convolution: of `gy`, padded
/// by `dilation * (k - 1) - padding`, with the kernel flipped and its channel
/// axes swapped. That reuses the forward kernel (columns packed straight into
/// the GEMM layout) instead of a GEMM whose inner dimension is only the output
/// channels, followed by col2im. Returns the flipped weight and the geometry
/// of that convolution when it applies.
fn as_flipped_forward<T: Float>(wt: &[T], g: &ConvGeom) -> Option<(Vec<T>, ConvGeom)> {
    let possible = g.stride == [1, 1]
        && g.padding[0] <= g.dilation[0] * (g.kh - 1)
        && g.padding[1] <= g.dilation[1] * (g.kw - 1)
        && !g.is_pointwise();
    if !possible {
        return None;
    }
    let gf = ConvGeom {
        n: g.n,
        c: g.o,
        h: g.oh,
        w: g.ow,
        o: g.c,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        stride: [1, 1],
        padding: [
            g.dilation[0] * (g.kh - 1) - g.padding[0],
            g.dilation[1] * (g.kw - 1) - g.padding[1],
        ],
        dilation: g.dilation,
        groups: g.groups,
    };
    // Measured (2 threads, AVX2): with the direct kernels (f32) always worth
    // it; through im2col from 8 input channels on planes of 16x16 and up,
    // below that the transposed GEMM + col2im is faster.
    let direct = T::f32_slice(wt).is_some() && direct::applies(&gf);
    if !(direct || g.cg() >= 8 && g.h * g.w >= 256) {
        return None;
    }
    let (cg, og, kk) = (g.cg(), g.og(), g.kh * g.kw);
    // w: [G][Og][Cg][kh][kw] -> wf: [G][Cg][Og][kh][kw], taps reversed.
    let mut wf = vec![T::zero(); wt.len()];
    for gi in 0..g.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &wt[((gi * og + o) * cg + c) * kk..][..kk];
                let dst = &mut wf[((gi * cg + c) * og + o) * kk..][..kk];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    Some((wf, gf))
}

/// Columns that one GEMM of a convolution should have at least: below this,
/// per-sample products are dominated by packing the weights (ResNet-18's
/// last stage on 32x32 inputs has 1x1 planes: one column per sample).
const CHUNK_COLS: usize = 512;

/// Samples per GEMM: 1 for planes of `CHUNK_COLS` pixels and more (each
/// sample its own product), else enough samples side by side in one column
/// matrix to reach `CHUNK_COLS` columns.
fn samples_per_chunk(g: &ConvGeom) -> usize {
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
fn forward_chunked<T: Float>(
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
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
                    gemm(og, k, cols, wg, k, 1, col, cols, 1, tmp, cols, false, t);
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
    })
}

/// [`conv2d_input_grad`] (transposed GEMM + col2im) with `s` samples per GEMM.
fn input_grad_chunked<T: Float>(gy: &[T], wt: &[T], g: &ConvGeom, s: usize) -> Vec<T> {
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
fn weight_grad_chunked<T: Float>(x: &[T], gy: &[T], g: &ConvGeom, s: usize) -> Vec<T> {
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

/// The weight gradient of conv2d: sum over samples of gy (Og x OHW) @ col^T (OHW x K).
pub(crate) fn conv2d_weight_grad<T: Float>(x: &[T], gy: &[T], g: &ConvGeom) -> Vec<T> {
    if let Some(p) = dead_taps::prune(g) {
        return p.full_grad(g, &conv2d_weight_grad(x, gy, &p.g));
    }
    let (cg, og, k, ohw) = (g.cg(), g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    let out_per = g.o * ohw;
    let wsize = g.o * k;
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

#[cfg(test)]
mod tests {
    use super::*;

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
                y_ref.extend(conv2d_forward(&x[i * xin..][..xin], &wt, Some(&b), &one));
                dx_ref.extend(conv2d_input_grad(&gy[i * yout..][..yout], &wt, &one));
                let dw = conv2d_weight_grad(&x[i * xin..][..xin], &gy[i * yout..][..yout], &one);
                dw_ref.iter_mut().zip(dw).for_each(|(a, b)| *a += b);
            }
            for s in [2, 3, 5] {
                let y = forward_chunked(&x, &wt, Some(&b), &g, s);
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
