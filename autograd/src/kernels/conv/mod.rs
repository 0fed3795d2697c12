//! Convolution kernels (NCHW). Taps that only read padding are dropped first
//! (`dead_taps`); stride-1 convolutions in f32 on AVX2 + FMA then run
//! directly on the padded input (`direct`); the rest use im2col + GEMM for
//! the forward pass and the weight gradient, GEMM + col2im for the input
//! gradient (which is also `conv_transpose2d`). Batches are split across
//! threads, each with its own reused column buffer and a single-threaded GEMM.
//!
//! Here: the dispatch between those paths for the forward pass and the input
//! gradient; `geom` (the geometry), `chunked` (several samples per GEMM on
//! small planes), `covering` (live taps that cover the plane, one output
//! pixel: three plain GEMMs over the batch), `dense` (under `Fastest`, planes no wider than the
//! kernel's reach as one product over pixel pairs), `weight_grad`, and the
//! kernels of each path.

mod chunked;
mod covering;
mod dead_taps;
mod dense;
pub(in crate::kernels) mod direct;
mod geom;
mod im2col;
mod weight_grad;
pub(in crate::kernels) mod winograd;
mod winograd4;

pub(crate) use dead_taps::prune;
pub(crate) use geom::ConvGeom;
pub(crate) use weight_grad::conv2d_weight_grad;

use chunked::{forward_chunked, input_grad_chunked, samples_per_chunk};
use im2col::{col2im, im2col_row, im2col_threads};

use super::gemm;
use super::scratch::with_scratch;
use super::team;
use crate::dtype::Float;

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

/// The forward product `y (Og x cols) = W (Og x K) @ col (K x cols)`, all
/// row-major: a narrow one (1 to 4 columns: one sample's 1x1 to 2x2 plane)
/// reads W in place ([`super::narrow`]), any other is a GEMM.
fn forward_gemm<T: Float>(
    og: usize,
    k: usize,
    cols: usize,
    w: &[T],
    col: &[T],
    y: &mut [T],
    t: usize,
) {
    debug_assert!(w.len() >= og * k && col.len() >= k * cols && y.len() >= og * cols);
    // SAFETY: the slices hold the three row-major matrices (asserted above).
    let narrow = unsafe {
        super::narrow::try_forward(
            og,
            k,
            cols,
            w.as_ptr(),
            k as isize,
            1,
            col.as_ptr(),
            cols as isize,
            1,
            T::zero(),
            y.as_mut_ptr(),
            cols as isize,
            t,
        )
    };
    if !narrow {
        gemm(og, k, cols, w, k, 1, col, cols, 1, y, cols, false, t);
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
        forward_gemm(og, k, ohw, wg, xg, yg, t);
    } else {
        with_scratch(k * ohw, |col: &mut [T]| {
            im2col_threads(xg, g, col, t);
            forward_gemm(og, k, ohw, wg, col, yg, t);
        });
    }
}

/// A new output of `n` samples (`per` values each, zeroed) whose chunks go
/// to `f(sample index, chunk, GEMM threads)`: samples in parallel (single-threaded GEMMs) when there are enough
/// of them, else one after another with multi-threaded GEMMs from 64K
/// multiply-adds a sample: GoogLeNet's 3x3 layers on 4x4 and 2x2 planes at
/// batch 1 (110K-221K) take both threads (measured against a bound of
/// 256K: 1.03-1.05x its batch-1 latency, 2026-12-05).
fn per_sample<T: Float>(
    per: usize,
    n: usize,
    work: usize,
    f: impl Fn(usize, &mut [T], usize) + Sync + Send,
) -> Vec<T> {
    let threads = team::threads();
    let parallel = n >= threads && work >= 1 << 15 && threads > 1;
    let inner = if !parallel && work >= 1 << 16 {
        threads
    } else {
        1
    };
    team::zeroed_chunks(n * per, per, parallel, |i, o| f(i, o, inner))
}

/// What a convolution's output store applies after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// The sums as they are.
    Identity,
    /// `max(y, 0)` (NaN to 0, as [`Tensor::relu`](crate::Tensor::relu)).
    Relu,
}

impl Activation {
    /// Applies the activation to outputs just written, still in cache: a
    /// ReLU costs no pass of its own over the whole output, and no second
    /// tensor.
    fn apply<T: Float>(self, v: &mut [T]) {
        if self == Activation::Relu {
            let zero = T::zero();
            v.iter_mut()
                .for_each(|y| *y = if *y > zero { *y } else { zero });
        }
    }

    /// [`apply`](Self::apply) in `threads` pieces at once, for a sample
    /// whose outputs several threads wrote (from 16K values).
    fn apply_split<T: Float>(self, v: &mut [T], threads: usize) {
        if self == Activation::Identity {
            return;
        }
        if threads <= 1 || v.len() < 1 << 14 {
            return self.apply(v);
        }
        let (len, at) = (v.len(), v.as_mut_ptr() as usize);
        let per = len.div_ceil(threads).next_multiple_of(16);
        team::run(threads, |t| {
            let (a, b) = ((t * per).min(len), ((t + 1) * per).min(len));
            // SAFETY: disjoint pieces of `v`, which is borrowed for the call.
            self.apply(unsafe { std::slice::from_raw_parts_mut((at as *mut T).add(a), b - a) });
        });
    }

    /// [`apply_split`](Self::apply_split) on outputs a kernel wrote in place.
    ///
    /// # Safety
    /// Every element of `v` is initialized.
    unsafe fn apply_written(self, v: &mut [std::mem::MaybeUninit<f32>], threads: usize) {
        if self == Activation::Relu {
            // SAFETY: initialized (the caller's promise); MaybeUninit<f32> has f32's layout.
            let v = unsafe { &mut *(v as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
            self.apply_split(v, threads);
        }
    }
}

/// `y = act(conv2d(x, w) + bias)`: x `[N, C, H, W]`, w `[O, C/G, KH, KW]`, y `[N, O, OH, OW]`.
pub(crate) fn conv2d_forward<T: Float>(
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    act: Activation,
) -> Vec<T> {
    conv2d_forward_kept(x, wt, None, bias, g, act)
}

/// A rearrangement of a layer's weights that the kernel running its
/// forward pass takes in place of the weights, so that a served model
/// (gradients off, the same weights call after call) makes it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The direct kernels' panels ([`direct::pack_groups`]).
    Direct,
    /// F(4x4, 3x3)'s transformed weights, 4x the weight: with them kept,
    /// F(4x4, 3x3) pays from fewer tiles ([`winograd4::applies_kept`]).
    Winograd4,
}

impl Kept {
    /// The rearrangement the forward pass of `g` takes, if any (f32 only;
    /// `g` without dead taps, as [`prune`] leaves it).
    pub(crate) fn for_forward<T: Float>(g: &ConvGeom) -> Option<Kept> {
        if Kept::takes_weights::<T>(g) && winograd4::applies_kept(g) {
            return Some(Kept::Winograd4);
        }
        Kept::fallback::<T>(g)
    }

    /// What the forward pass of `g` takes when F(4x4, 3x3)'s transformed
    /// weights (4x the weight) are not kept: the direct kernels' panels
    /// where those kernels run.
    pub(crate) fn fallback<T: Float>(g: &ConvGeom) -> Option<Kept> {
        let transforms = winograd4::applies(g) || winograd::applies(g);
        (Kept::takes_weights::<T>(g) && !transforms && direct::applies(g)).then_some(Kept::Direct)
    }

    /// Whether the forward pass of `g` reaches the kernels that take kept
    /// weights: f32, not the covering products, no dead taps, not a dense
    /// plane (as [`conv2d_forward_kept`] dispatches).
    fn takes_weights<T: Float>(g: &ConvGeom) -> bool {
        T::f32_slice(&[] as &[T]).is_some()
            && covering::covering(g).is_none()
            && dead_taps::prune(g).is_none()
            && !dense::applies(g)
    }

    /// Elements of the rearranged weights.
    pub(crate) fn len(self, g: &ConvGeom) -> usize {
        match self {
            Kept::Direct => g.groups * g.og() * g.k(),
            Kept::Winograd4 => 36 * g.o * g.c,
        }
    }

    /// `wt` rearranged for `g`'s forward pass.
    pub(crate) fn rearrange<T: Float>(self, wt: &[T], g: &ConvGeom) -> Vec<T> {
        let w32 = T::f32_slice(wt).expect("kept weights: f32");
        let kept = match self {
            Kept::Direct => {
                let (og, k) = (g.og(), g.k());
                direct::pack_groups(&w32[..g.groups * og * k], g.groups, og, k)
            }
            Kept::Winograd4 => winograd4::transformed_weights(w32, g),
        };
        kept.into_iter().map(|v| T::of(f64::from(v))).collect()
    }
}

/// [`conv2d_forward`], with the weights also rearranged by
/// [`Kept::rearrange`] for the kernel [`Kept::for_forward`] names (a cost
/// a kept copy saves at batch 1: the direct kernels' packing reads the
/// whole weight, F(4x4, 3x3)'s transform costs more than a small batch's
/// products).
pub(crate) fn conv2d_forward_kept<T: Float>(
    x: &[T],
    wt: &[T],
    kept: Option<(Kept, &[T])>,
    bias: Option<&[T]>,
    g: &ConvGeom,
    act: Activation,
) -> Vec<T> {
    if let Some(c) = covering::covering(g) {
        return c.forward(x, wt, bias, g, act);
    }
    if let Some(p) = dead_taps::prune(g) {
        return conv2d_forward(x, &p.weights(g, wt), bias, &p.g, act);
    }
    if dense::applies(g) {
        return dense::forward(x, wt, bias, g, act);
    }
    let out_len = g.n * g.o * g.ohw();
    if let Some((Kept::Winograd4, u)) = kept {
        let x32 = T::f32_slice(x).expect("kept weights: an f32 input");
        let u32 = T::f32_slice(u).expect("kept weights: f32");
        let b32 = bias.map(|b| T::f32_slice(b).expect("bias of the input's type"));
        return with_uninit(out_len, |y32| {
            winograd4::forward_transformed(x32, u32, b32, g, act, y32)
        });
    }
    let packed = match kept {
        Some((Kept::Direct, p)) => Some(p),
        _ => None,
    };
    let (cg, og, k, ohw) = (g.cg(), g.og(), g.k(), g.ohw());
    let in_per = g.c * g.h * g.w;
    let out_per = g.o * ohw;
    if winograd4::applies(g) {
        if let (Some(x32), Some(w32)) = (T::f32_slice(x), T::f32_slice(wt)) {
            let b32 = bias.map(|b| T::f32_slice(b).expect("bias of the input's type"));
            return with_uninit(out_len, |y32| {
                winograd4::forward(x32, w32, b32, g, act, y32)
            });
        }
    }
    if winograd::applies(g) {
        if let (Some(x32), Some(w32)) = (T::f32_slice(x), T::f32_slice(wt)) {
            let b32 = bias.map(|b| T::f32_slice(b).expect("bias of the input's type"));
            return with_uninit(g.n * out_per, |y32| {
                winograd::forward(x32, w32, b32, g, act, y32)
            });
        }
    }
    if direct::applies(g) {
        if let (Some(x32), Some(w32)) = (T::f32_slice(x), T::f32_slice(wt)) {
            let b32 = bias.map(|b| T::f32_slice(b).expect("bias of the input's type"));
            return with_uninit(g.n * out_per, |y32| {
                let p32 =
                    packed.map(|p| T::f32_slice(p).expect("packed weights of the input's type"));
                direct::forward(x32, w32, p32, b32, g, act, y32)
            });
        }
    }
    let work = og * k * ohw * g.groups;
    // A pointwise layer whose per-sample products read the weights in
    // place (few pixels, reductions from 128: GoogLeNet's 1x1 layers on
    // 4x4 and 2x2 planes) takes them sample by sample: chunked, the
    // samples' columns were copied side by side, packed and multiplied,
    // and the outputs copied back (GoogLeNet's step at batch 16 0.92-0.96x
    // as long without, 2026-12-05).
    let in_place = g.is_pointwise()
        && g.groups == 1
        && T::f32_slice(x).is_some()
        && super::narrow::takes_forward(og, k, ohw);
    let s = if in_place { 1 } else { samples_per_chunk(g) };
    if s > 1 {
        return forward_chunked(x, wt, bias, g, act, s);
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
        act.apply_split(yo, t);
    })
}

/// A new vector of `len` elements of `T` (f32: the callers hold f32
/// slices) written by `fill`, which must initialize every element: not
/// zero-filled first.
fn with_uninit<T: Float>(
    len: usize,
    fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>]),
) -> Vec<T> {
    assert!(T::f32_slice(&[] as &[T]).is_some(), "with_uninit: f32 only");
    let mut y = Vec::<T>::with_capacity(len);
    let spare = y.spare_capacity_mut();
    // SAFETY: T is f32 (checked above), so the uninitialized slots have
    // f32's layout.
    let y32 = unsafe {
        std::slice::from_raw_parts_mut(spare.as_mut_ptr() as *mut std::mem::MaybeUninit<f32>, len)
    };
    fill(y32);
    // SAFETY: `fill` initialized all `len` elements (the kernels' contract).
    unsafe { y.set_len(len) };
    y
}

/// The input gradient of conv2d (= `conv_transpose2d(gy, w)`): gy `[N, O, OH, OW]` -> `[N, C, H, W]`.
pub(crate) fn conv2d_input_grad<T: Float>(gy: &[T], wt: &[T], g: &ConvGeom) -> Vec<T> {
    if let Some(c) = covering::covering(g) {
        return c.input_grad(gy, wt, g);
    }
    if let Some(p) = dead_taps::prune(g) {
        return conv2d_input_grad(gy, &p.weights(g, wt), &p.g);
    }
    if dense::applies_input_grad(g) {
        return dense::input_grad(gy, wt, g);
    }
    if let Some(gf) = as_flipped_forward(wt, g) {
        // The flipped weight lives for this call only: a scratch buffer, not
        // a fresh allocation whose pages the kernel faults in and clears on
        // every call (VGG's 512-channel layers: 9.4 MB a call).
        return with_scratch(wt.len(), |wf: &mut [T]| {
            flip_weights(wt, g, wf);
            conv2d_forward(gy, wf, None, &gf, Activation::Identity)
        });
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
/// channels, followed by col2im. Returns the geometry of that convolution
/// when it applies (its weight: [`flip_weights`]).
fn as_flipped_forward<T: Float>(wt: &[T], g: &ConvGeom) -> Option<ConvGeom> {
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
    let direct = T::f32_slice(wt).is_some()
        && (direct::applies(&gf) || winograd::applies(&gf) || winograd4::applies(&gf));
    if !(direct || g.cg() >= 8 && g.h * g.w >= 256) {
        return None;
    }
    Some(gf)
}

/// The weight of [`as_flipped_forward`]'s convolution, every element of `wf`
/// written: w `[G][Og][Cg][kh][kw]` -> wf `[G][Cg][Og][kh][kw]`, taps reversed.
/// Rows of `wf` (one per input channel) split over the threads from
/// [`FLIP_PAR_MIN`] elements: VGG's 512-channel layers flipped 2.4 M on the
/// calling thread while the others waited (1.6% of its training step).
fn flip_weights<T: Float>(wt: &[T], g: &ConvGeom, wf: &mut [T]) {
    debug_assert_eq!(wf.len(), wt.len());
    let (cg, og, kk) = (g.cg(), g.og(), g.kh * g.kw);
    let row = og * kk;
    // wf's row r = gi Cg + c holds w[gi Og + o, c] for every o, reversed.
    let fill = |r0: usize, rows: &mut [T]| {
        for (r, dst_row) in (r0..).zip(rows.chunks_exact_mut(row)) {
            let (gi, c) = (r / cg, r % cg);
            for (o, dst) in dst_row.chunks_exact_mut(kk).enumerate() {
                let src = &wt[((gi * og + o) * cg + c) * kk..][..kk];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    };
    let rows = g.groups * cg;
    if wf.len() < FLIP_PAR_MIN || rows < 2 || row == 0 {
        return fill(0, wf);
    }
    let per = rows.div_ceil(4 * team::threads()).max(1);
    team::for_chunks(wf, per * row, |i, chunk| fill(i * per, chunk));
}

/// Weights flipped on one thread below this many elements.
const FLIP_PAR_MIN: usize = 1 << 15;

#[cfg(test)]
mod tests {
    use super::*;

    /// `flip_weights` against its definition, `wf[g][c][o][t] =
    /// w[g][o][c][kk - 1 - t]`, on one thread and split over the team
    /// (grouped, with a last chunk shorter than the others).
    #[test]
    fn flipped_weights_match_their_definition() {
        let mut split = false;
        for (c, o, groups, k) in [
            (4, 6, 2, 3),
            (70, 66, 2, 3),
            (130, 128, 1, 3),
            (33, 40, 1, 5),
        ] {
            let g = ConvGeom::sized(1, c, [8, 8], o, [k, k], [1, 1], [1, 1], [1, 1], groups)
                .expect("an output");
            let (cg, og, kk) = (g.cg(), g.og(), k * k);
            let w: Vec<f32> = (0..o * cg * kk).map(|i| i as f32).collect();
            let mut wf = vec![f32::NAN; w.len()];
            flip_weights(&w, &g, &mut wf);
            for gi in 0..groups {
                for oi in 0..og {
                    for ci in 0..cg {
                        for t in 0..kk {
                            let want = w[((gi * og + oi) * cg + ci) * kk + kk - 1 - t];
                            let got = wf[((gi * cg + ci) * og + oi) * kk + t];
                            assert_eq!(
                                got, want,
                                "{c} -> {o}, groups {groups}: ({gi}, {oi}, {ci}, {t})"
                            );
                        }
                    }
                }
            }
            split |= w.len() >= FLIP_PAR_MIN;
        }
        assert!(split, "a case past FLIP_PAR_MIN");
    }
}
