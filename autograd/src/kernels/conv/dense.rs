//! Planes no wider than the kernel's reach: on VGG's and ResNet-18's 2x2
//! planes (32x32 images) every input pixel meets every output pixel through
//! exactly one tap of a 3x3 kernel, so the convolution is one dense product
//! `y [N, O OHW] = x [N, C HW] W'`, with `W' [C HW, O OHW]` the weights laid
//! out by (input pixel, output pixel) pair. NCHW rows are already the
//! product's rows: nothing is gathered. im2col multiplies 9 taps for each
//! of the 4 outputs of a 2x2 plane, 5 of them reading padding; this
//! multiplies the 4 pairs that exist (2.25x fewer), at the cost of laying
//! out `W'` (16/9 of the weight) on each call. Taken under `Fastest`.

use super::{Activation, ConvGeom};
use crate::dtype::Float;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;

/// Below this batch the im2col path was faster (winograd bench, `Fastest`,
/// 2 threads, AMD EPYC Zen 4; at batch 8: ResNet-18's 256 -> 256 on 2x2
/// 0.95x a step, VGG's 512 -> 512 0.82x, GoogLeNet's 192 -> 384 0.79x; at
/// 16: 1.48x, 1.22x, 1.25x): laying out `W'` is paid once per call.
const MIN_BATCH: usize = 16;

/// The largest `W'`: 8 M elements (VGG's 512 -> 512 on 2x2 is 4 M).
const MAX_EXPANDED: usize = 1 << 23;

/// Elements of a block of `W'` laid out at a time: 1 MiB of f32, which
/// stays in the core's L2 cache while the product reads it (measured
/// faster than 512 KiB; VGG's 16 MB `W'`, written whole and packed again,
/// made the product slower than im2col's).
/// Small in the unit tests, so that their shapes take several blocks.
const BLOCK: usize = if cfg!(test) { 1 << 9 } else { 1 << 18 };

/// The tap linking input position `i` to output position `o` along one
/// axis, as `taps[i * out + o]`, when every pair has one.
fn axis_taps(
    size: usize,
    out: usize,
    s: usize,
    p: usize,
    d: usize,
    k: usize,
) -> Option<Vec<usize>> {
    let mut taps = Vec::with_capacity(size * out);
    for i in 0..size {
        for o in 0..out {
            let pos = (i + p).checked_sub(o * s)?;
            if pos % d != 0 || pos / d >= k {
                return None;
            }
            taps.push(pos / d);
        }
    }
    Some(taps)
}

/// The kernel tap (`ky * KW + kx`) of each (input pixel, output pixel)
/// pair, as `taps[p * OHW + q]`, when every pair has one.
fn pair_taps(g: &ConvGeom) -> Option<Vec<usize>> {
    let ty = axis_taps(g.h, g.oh, g.stride[0], g.padding[0], g.dilation[0], g.kh)?;
    let tx = axis_taps(g.w, g.ow, g.stride[1], g.padding[1], g.dilation[1], g.kw)?;
    let mut taps = Vec::with_capacity(g.h * g.w * g.ohw());
    for iy in 0..g.h {
        for ix in 0..g.w {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    taps.push(ty[iy * g.oh + oy] * g.kw + tx[ix * g.ow + ox]);
                }
            }
        }
    }
    Some(taps)
}

/// Whether the convolution runs here: under `Fastest`, one group, a batch
/// of [`MIN_BATCH`] or more, every pixel pair linked by a tap, and fewer
/// pairs per channel pair than im2col's `OHW KH KW` products.
pub(super) fn applies(g: &ConvGeom) -> bool {
    crate::conv_algorithm() == crate::ConvAlgorithm::Fastest && can_run(g)
}

/// Elements of `W'` per sample of the batch up to which the input
/// gradient runs here. Past it im2col's input gradient (one product
/// `W^T gy` with the whole weight as its tall side, then col2im) was faster
/// (winograd bench, `Fastest`, 2 threads, AMD EPYC Zen 4): ResNet-18's
/// 256 -> 256 on 2x2 (`W'` 1 M) 1.22x faster here at batch 32 and 1.94x at
/// 128; VGG's 512 -> 512 (4 M) 0.91x at batch 32, 1.51x at 128;
/// GoogLeNet's 160 -> 320 and 192 -> 384 (0.8 M, 1.2 M) 0.65-0.69x at 16.
const INPUT_GRAD_PER_SAMPLE: usize = 1 << 15;

/// Whether the input gradient runs here: as [`applies`], with a batch of
/// at least one sample per [`INPUT_GRAD_PER_SAMPLE`] elements of `W'`.
pub(super) fn applies_input_grad(g: &ConvGeom) -> bool {
    applies(g) && input_grad_pays(g)
}

/// [`INPUT_GRAD_PER_SAMPLE`]'s rule.
fn input_grad_pays(g: &ConvGeom) -> bool {
    expanded_len(g).is_some_and(|len| g.n.saturating_mul(INPUT_GRAD_PER_SAMPLE) >= len)
}

/// Elements of `W'`, `C HW O OHW` (None past `usize`).
fn expanded_len(g: &ConvGeom) -> Option<usize> {
    [g.h * g.w, g.o, g.ohw()]
        .iter()
        .try_fold(g.c, |acc, &f| acc.checked_mul(f))
}

/// [`applies`] under any algorithm setting (for the tests).
fn can_run(g: &ConvGeom) -> bool {
    g.groups == 1
        && g.n >= MIN_BATCH
        && g.h * g.w < g.kh * g.kw
        && expanded_len(g).is_some_and(|len| len > 0 && len <= MAX_EXPANDED)
        && pair_taps(g).is_some()
}

/// Columns `o0 OHW..o1 OHW` of `W'` (row `c HW + p`, column `o OHW + q`
/// holds `w[o, c, tap(p, q)]`), as a `C HW x (o1 - o0) OHW` matrix.
fn expand_cols<T: Float>(
    w: &[T],
    g: &ConvGeom,
    taps: &[usize],
    o0: usize,
    o1: usize,
    out: &mut [T],
) {
    let (pixels, outs, kk) = (g.h * g.w, g.ohw(), g.kh * g.kw);
    let cols = (o1 - o0) * outs;
    for (r, row) in out.chunks_exact_mut(cols).enumerate() {
        let (c, p) = (r / pixels, r % pixels);
        let pair = &taps[p * outs..][..outs];
        for (o, seg) in (o0..o1).zip(row.chunks_exact_mut(outs)) {
            let wk = &w[(o * g.c + c) * kk..][..kk];
            for (d, &t) in seg.iter_mut().zip(pair) {
                // SAFETY: every tap is below kk (pair_taps).
                *d = unsafe { *wk.get_unchecked(t) };
            }
        }
    }
}

/// Columns `c0 HW..c1 HW` of `W'^T` (row `o OHW + q`, column `c HW + p`),
/// as an `O OHW x (c1 - c0) HW` matrix.
fn expand_rows_t<T: Float>(
    w: &[T],
    g: &ConvGeom,
    taps: &[usize],
    c0: usize,
    c1: usize,
    out: &mut [T],
) {
    let (pixels, outs, kk) = (g.h * g.w, g.ohw(), g.kh * g.kw);
    let cols = (c1 - c0) * pixels;
    for (r, row) in out.chunks_exact_mut(cols).enumerate() {
        let (o, q) = (r / outs, r % outs);
        for (c, seg) in (c0..c1).zip(row.chunks_exact_mut(pixels)) {
            let wk = &w[(o * g.c + c) * kk..][..kk];
            for (p, d) in seg.iter_mut().enumerate() {
                let t = taps[p * outs + q];
                // SAFETY: every tap is below kk (pair_taps).
                *d = unsafe { *wk.get_unchecked(t) };
            }
        }
    }
}

/// Splits `0..len` into blocks of at most `per` (and enough blocks for
/// every thread) and runs `f(start, end)` on each, the threads claiming
/// blocks in turn.
fn blocks(len: usize, per: usize, f: impl Fn(usize, usize) + Sync) {
    let per = per.min(len.div_ceil(team::threads())).clamp(1, len.max(1));
    team::claim(len.div_ceil(per), |b| f(b * per, ((b + 1) * per).min(len)));
}

/// `out [N, len unit] = a [N, k] B`, `B [k, len unit]` laid out by
/// `lay_out(i0, i1, block)` (its columns `i0 unit..i1 unit`, a `k x (i1 -
/// i0) unit` matrix) a block at a time, each block multiplied on the thread
/// that laid it out while it is in that core's cache.
fn blocked_product<T: Float>(
    a: &[T],
    n: usize,
    k: usize,
    len: usize,
    unit: usize,
    lay_out: impl Fn(usize, usize, &mut [T]) + Sync,
) -> Vec<T> {
    assert!(
        a.len() >= n * k,
        "dense: an operand of {} elements for {n} x {k}",
        a.len()
    );
    let cols = len * unit;
    let mut out = vec![T::zero(); n * cols];
    let at = out.as_mut_ptr() as usize;
    blocks(len, BLOCK / (k * unit), |i0, i1| {
        let bcols = (i1 - i0) * unit;
        with_scratch(k * bcols, |b: &mut [T]| {
            lay_out(i0, i1, b);
            // SAFETY: a is n x k (asserted), b k x bcols, and the block
            // writes columns i0 unit.. of out (n x cols), which no other
            // block writes; out outlives the call.
            unsafe {
                T::gemm(
                    n,
                    k,
                    bcols,
                    T::one(),
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    bcols as isize,
                    1,
                    T::zero(),
                    (at as *mut T).add(i0 * unit),
                    cols as isize,
                    1,
                    1,
                )
            };
        });
    });
    out
}

/// `y = act(x W' + bias)`: x `[N, C, H, W]`, w `[O, C, KH, KW]`; `W'` laid
/// out a block of output channels at a time.
pub(super) fn forward<T: Float>(
    x: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &ConvGeom,
    act: Activation,
) -> Vec<T> {
    let taps = pair_taps(g).expect("dense::forward: every pixel pair has a tap");
    let (rows, outs) = (g.c * g.h * g.w, g.ohw());
    let mut y = blocked_product(x, g.n, rows, g.o, outs, |o0, o1, b| {
        expand_cols(wt, g, &taps, o0, o1, b)
    });
    if let Some(b) = bias {
        for ys in y.chunks_exact_mut(g.o * outs) {
            for (plane, &bo) in ys.chunks_exact_mut(outs).zip(b) {
                plane.iter_mut().for_each(|v| *v += bo);
            }
        }
    }
    act.apply(&mut y);
    y
}

/// `dx = gy W'^T`: gy `[N, O, OH, OW]` -> `[N, C, H, W]`, `W'^T` laid out a
/// block of input channels at a time.
pub(super) fn input_grad<T: Float>(gy: &[T], wt: &[T], g: &ConvGeom) -> Vec<T> {
    let taps = pair_taps(g).expect("dense::input_grad: every pixel pair has a tap");
    let cols = g.o * g.ohw();
    blocked_product(gy, g.n, cols, g.c, g.h * g.w, |c0, c1, b| {
        expand_rows_t(wt, g, &taps, c0, c1, b)
    })
}

/// `dw[o, c, t] = sum over the pairs (p, q) of tap t, and over the batch,
/// of x[n, c, p] gy[n, o, q]`: per pair one product `gy_q^T x_p` over the
/// batch, both operands read in place through strides (the GEMM packs them
/// anyway: gathering them first took as long as the products), summed into
/// `[t][o][c]` and then rearranged. Each thread takes a block of output
/// channels through every pair.
pub(super) fn weight_grad<T: Float>(x: &[T], gy: &[T], g: &ConvGeom) -> Vec<T> {
    let taps = pair_taps(g).expect("dense::weight_grad: every pixel pair has a tap");
    let (pixels, outs, kk) = (g.h * g.w, g.ohw(), g.kh * g.kw);
    let (rows, cols, plane) = (g.c * pixels, g.o * outs, g.o * g.c);
    assert!(
        x.len() >= g.n * rows && gy.len() >= g.n * cols,
        "dense::weight_grad: x of {} and gy of {} elements for {} samples of {rows} and {cols}",
        x.len(),
        gy.len(),
        g.n
    );
    let mut pairs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); kk];
    for (i, &t) in taps.iter().enumerate() {
        pairs[t].push((i / outs, i % outs));
    }
    let o_per = g.o.div_ceil(team::threads());
    with_scratch(kk * plane, |by_tap: &mut [T]| {
        let at = by_tap.as_mut_ptr() as usize;
        team::claim(g.o.div_ceil(o_per), |b| {
            let (o0, o1) = (b * o_per, ((b + 1) * o_per).min(g.o));
            for (t, tap_pairs) in pairs.iter().enumerate() {
                // SAFETY: rows o0..o1 of tap t's [O, C] plane lie inside
                // by_tap (kk planes), and no other block writes them.
                let dst = unsafe { (at as *mut T).add(t * plane + o0 * g.c) };
                if tap_pairs.is_empty() {
                    // SAFETY: as above, (o1 - o0) C elements from dst.
                    unsafe { std::slice::from_raw_parts_mut(dst, (o1 - o0) * g.c) }.fill(T::zero());
                }
                for (i, &(p, q)) in tap_pairs.iter().enumerate() {
                    let beta = if i == 0 { T::zero() } else { T::one() };
                    // SAFETY: gy_q^T [o1 - o0, N] reads gy[n, o, q] (rows of
                    // outs, columns of cols) and x_p [N, C] reads x[n, c, p]
                    // (rows of rows, columns of pixels), inside the asserted
                    // lengths; dst is [o1 - o0, C] with rows of C, as above.
                    unsafe {
                        T::gemm(
                            o1 - o0,
                            g.n,
                            g.c,
                            T::one(),
                            gy.as_ptr().add(o0 * outs + q),
                            outs as isize,
                            cols as isize,
                            x.as_ptr().add(p),
                            rows as isize,
                            pixels as isize,
                            beta,
                            dst,
                            g.c as isize,
                            1,
                            1,
                        )
                    };
                }
            }
        });
        interleave_taps(by_tap, g)
    })
}

/// `[t][o][c] -> [o][c][t]`: the taps' planes read side by side, a block
/// of output channels per thread.
fn interleave_taps<T: Float>(by_tap: &[T], g: &ConvGeom) -> Vec<T> {
    let (c_all, o_all, kk) = (g.c, g.o, g.kh * g.kw);
    let plane = o_all * c_all;
    let mut dw = Vec::with_capacity(plane * kk);
    team::for_chunks(
        &mut dw.spare_capacity_mut()[..plane * kk],
        16 * c_all * kk,
        |b, chunk| {
            for (i, per_c) in chunk.chunks_exact_mut(kk).enumerate() {
                // per_c is dw[o, c, ..] for (o, c) = (16 b, 0) + i.
                let oc = b * 16 * c_all + i;
                for (t, d) in per_c.iter_mut().enumerate() {
                    d.write(by_tap[t * plane + oc]);
                }
            }
        },
    );
    // SAFETY: the chunks cover all `plane * kk` elements, each written above.
    unsafe { dw.set_len(plane * kk) };
    dw
}

#[cfg(test)]
mod tests {
    use super::super::geom::Products;
    use super::*;

    /// The dense products, for [`ConvGeom::assert_matches_sums`].
    struct Dense;

    impl Products for Dense {
        fn run<T: Float>(&self, g: &ConvGeom, x: &[T], w: &[T], b: &[T], gy: &[T]) -> [Vec<T>; 4] {
            [
                forward(x, w, Some(b), g, Activation::Identity),
                forward(x, w, Some(b), g, Activation::Relu),
                input_grad(gy, w, g),
                weight_grad(x, gy, g),
            ]
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn geom(
        n: usize,
        c: usize,
        hw: [usize; 2],
        o: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
    ) -> ConvGeom {
        ConvGeom::sized(n, c, hw, o, [k, k], [s, s], [p, p], [d, d], 1).expect("an output")
    }

    /// Where the dense product is taken: 2x2 planes under a 3x3 kernel,
    /// a 3x3 plane under a 5x5 one; not where a pair has no tap or im2col
    /// multiplies no more.
    #[test]
    fn taken_where_every_pair_has_a_tap() {
        assert!(can_run(&geom(16, 4, [2, 2], 4, 3, 1, 1, 1)));
        assert!(can_run(&geom(16, 4, [3, 3], 4, 5, 1, 2, 1)));
        assert!(can_run(&geom(16, 4, [2, 1], 4, 3, 1, 1, 1)));
        assert!(
            !can_run(&geom(16, 4, [3, 3], 4, 3, 1, 1, 1)),
            "corner pairs have no tap"
        );
        assert!(
            !can_run(&geom(16, 4, [2, 2], 4, 3, 1, 2, 2)),
            "dilation 2 skips a pixel"
        );
        assert!(
            !can_run(&geom(8, 4, [2, 2], 4, 3, 1, 1, 1)),
            "batch below MIN_BATCH"
        );
        assert!(
            !can_run(&geom(16, 0, [2, 2], 4, 3, 1, 1, 1)),
            "no input channels"
        );
        assert!(
            !can_run(&geom(16, 4, [2, 2], 0, 3, 1, 1, 1)),
            "no output channels"
        );
        assert!(
            !can_run(&geom(16, 4, [2, 2], 4, 2, 1, 0, 1)),
            "1 output, 4 taps: no fewer products"
        );
        assert_eq!(
            pair_taps(&geom(16, 1, [2, 2], 1, 3, 1, 1, 1)).unwrap(),
            [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
        );
    }

    /// The input gradient's rule at the shapes it was measured on.
    #[test]
    fn input_grad_where_measured_faster() {
        assert!(
            input_grad_pays(&geom(64, 256, [2, 2], 256, 3, 1, 1, 1)),
            "ResNet-18, batch 64"
        );
        assert!(
            input_grad_pays(&geom(32, 256, [2, 2], 256, 3, 1, 1, 1)),
            "ResNet-18, batch 32"
        );
        assert!(
            !input_grad_pays(&geom(32, 512, [2, 2], 512, 3, 1, 1, 1)),
            "VGG, batch 32"
        );
        assert!(
            input_grad_pays(&geom(128, 512, [2, 2], 512, 3, 1, 1, 1)),
            "VGG, batch 128"
        );
        assert!(
            !input_grad_pays(&geom(16, 160, [2, 2], 320, 3, 1, 1, 1)),
            "GoogLeNet, batch 16"
        );
    }

    /// The three products against sums over every (output, tap) of the
    /// full kernel, in f64 (to 1e-12) and in f32 (to 1e-5 of the largest
    /// sum), over the shapes the dense product takes: strides, a dilation,
    /// kernels wider than tall, channel counts spanning several blocks.
    #[test]
    fn matches_sums_over_taps() {
        // (batch, plane, kernel, stride, padding, dilation)
        let shapes = [
            (16, [2, 2], [3, 3], 1, [1, 1], [1, 1]),
            (17, [2, 2], [3, 3], 1, [1, 1], [1, 1]),
            (16, [3, 3], [5, 5], 1, [2, 2], [1, 1]),
            (16, [3, 3], [5, 5], 2, [2, 2], [1, 1]),
            (18, [2, 1], [3, 3], 1, [1, 1], [1, 1]),
            (16, [2, 2], [3, 3], 2, [1, 1], [1, 1]),
            (16, [1, 2], [3, 3], 1, [1, 1], [1, 1]),
            (16, [1, 2], [3, 3], 1, [2, 1], [2, 1]),
            (16, [2, 1], [3, 1], 1, [1, 0], [1, 1]),
        ];
        for (n, hw, k, s, p, d) in shapes {
            for (c, o) in [(3, 5), (17, 2), (20, 33)] {
                let g = ConvGeom::sized(n, c, hw, o, k, [s, s], p, d, 1).expect("an output");
                assert!(can_run(&g), "{g:?}");
                g.assert_matches_sums(&Dense);
            }
        }
    }
}
