//! im2col and its adjoint col2im: a convolution's input unfolded into the
//! column matrix its GEMMs read (`K = Cg*KH*KW` rows of `OH*OW` columns), and
//! column gradients folded back.

use super::ConvGeom;
use crate::dtype::Float;

/// Unfolds one sample's group (`Cg x H x W`) into columns (`K x OH*OW`).
pub(super) fn im2col<T: Float>(x: &[T], g: &ConvGeom, col: &mut [T]) {
    im2col_strided(x, g, col, g.ohw());
}

/// [`im2col`] with the rows split over `threads`: one sample's columns at
/// batch 1, where the product's threads would otherwise wait for them
/// (from 4K values: ResNet-18's and GoogLeNet's 3x3 layers on 4x4 and 2x2
/// outputs at batch 1 have 4K-16K, and measured against a bound of 16K
/// their batch-1 latency was 1.10-1.20x and ~1.04x, 2026-12-05). Split,
/// rows go one by one, strided ones included (the batch-1 stems keep both
/// threads); stride 1 with widening padding takes the zero-bordered path
/// on one thread.
pub(super) fn im2col_threads<T: Float>(x: &[T], g: &ConvGeom, col: &mut [T], threads: usize) {
    let (k, ohw) = (g.k(), g.ohw());
    let padded = g.stride == [1, 1] && g.padding != [0, 0] && g.ow != g.w;
    if threads <= 1 || k * ohw < 1 << 12 || padded {
        return im2col(x, g, col);
    }
    assert!(col.len() >= k * ohw, "im2col: column buffer");
    let at = col.as_mut_ptr() as usize;
    crate::kernels::team::run(threads, |t| {
        for row in k * t / threads..k * (t + 1) / threads {
            // SAFETY: rows of `ohw` values inside `col` (asserted), each
            // written by one thread, `col` borrowed for the call.
            let dst = unsafe { std::slice::from_raw_parts_mut((at as *mut T).add(row * ohw), ohw) };
            im2col_row(x, g, row, dst);
        }
    });
}

/// [`im2col`] into rows `rs` apart: row `r` is `col[r * rs..][..OH*OW]`
/// (several samples side by side in one column matrix).
pub(super) fn im2col_strided<T: Float>(x: &[T], g: &ConvGeom, col: &mut [T], rs: usize) {
    let ohw = g.ohw();
    if g.stride != [1, 1] || (g.padding != [0, 0] && g.ow != g.w) {
        return im2col_padded(x, g, col, rs);
    }
    for row in 0..g.k() {
        im2col_row(x, g, row, &mut col[row * rs..][..ohw]);
    }
}

/// Strides above 1, and stride 1 with padding that widens the output
/// (conv4 of DeepConvNet: 14 wide, pad 2, 16 wide out; ResNet's stride-2
/// layers on 8x8 and 4x4 planes): each channel is first copied into a
/// zero-bordered plane (read in place without padding), after which every
/// output row is one fixed-width copy or strided gather with no edge cases
/// (the row-by-row path spent most of its time on the edges: a third of
/// ResNet-18's stride-2 layers on 4x4 planes).
fn im2col_padded<T: Float>(x: &[T], g: &ConvGeom, col: &mut [T], rs: usize) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let ([ph, pw], [dh, dw], [sh, sw]) = (g.padding, g.dilation, g.stride);
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    // Without padding the channel itself is the plane read.
    let bordered = g.padding != [0, 0];
    let mut padded = vec![T::zero(); if bordered { hp * wp } else { 0 }];
    for c in 0..g.cg() {
        let plane = &x[c * h * w..(c + 1) * h * w];
        if bordered {
            for (y, src) in plane.chunks_exact(w).enumerate() {
                copy_short(&mut padded[(y + ph) * wp + pw..][..w], src);
            }
        }
        let read = if bordered { &padded[..] } else { plane };
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * rs..][..oh * ow];
                let src = &read[ki * dh * wp + kj * dw..];
                for (oy, d) in dst.chunks_exact_mut(ow).enumerate() {
                    let r = &src[oy * sh * wp..];
                    if sw == 1 {
                        copy_short(d, &r[..ow]);
                    } else {
                        for (ox, v) in d.iter_mut().enumerate() {
                            *v = r[ox * sw];
                        }
                    }
                }
            }
        }
    }
}

/// Row `row` (= `(c * KH + ki) * KW + kj`) of the column matrix.
pub(super) fn im2col_row<T: Float>(x: &[T], g: &ConvGeom, row: usize, dst: &mut [T]) {
    let (h, w, ow) = (g.h, g.w, g.ow);
    let [sh, sw] = g.stride;
    let (pw, dw) = (g.padding[1], g.dilation[1]);
    let (c, kk) = (row / (g.kh * g.kw), row % (g.kh * g.kw));
    let (ki, kj) = (kk / g.kw, kk % g.kw);
    let plane = &x[c * h * w..(c + 1) * h * w];
    let ix0 = (kj * dw) as isize - pw as isize;
    if sh == 1 && sw == 1 && ow == w {
        return im2col_row_same(plane, g, ki, ix0, dst);
    }
    im2col_row_rows(plane, g, ki, ix0, dst);
}

/// [`im2col_row`] output row by output row: any stride, padding and dilation.
fn im2col_row_rows<T: Float>(plane: &[T], g: &ConvGeom, ki: usize, ix0: isize, dst: &mut [T]) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let (sh, sw, ph, dh) = (g.stride[0], g.stride[1], g.padding[0], g.dilation[0]);
    for oy in 0..oh {
        let d = &mut dst[oy * ow..(oy + 1) * ow];
        let iy = (oy * sh + ki * dh) as isize - ph as isize;
        if iy < 0 || iy >= h as isize {
            d.fill(T::zero());
            continue;
        }
        let src = &plane[iy as usize * w..(iy as usize + 1) * w];
        if sw == 1 {
            // Valid outputs: 0 <= ox + ix0 < w.
            let lo = (-ix0).clamp(0, ow as isize) as usize;
            let hi = (w as isize - ix0).clamp(lo as isize, ow as isize) as usize;
            zero_short(&mut d[..lo]);
            if hi > lo {
                let s0 = (lo as isize + ix0) as usize;
                copy_short(&mut d[lo..hi], &src[s0..s0 + (hi - lo)]);
            }
            zero_short(&mut d[hi..]);
        } else {
            for (ox, v) in d.iter_mut().enumerate() {
                let ix = (ox * sw) as isize + ix0;
                *v = if ix >= 0 && ix < w as isize {
                    src[ix as usize]
                } else {
                    T::zero()
                };
            }
        }
    }
}

/// `d = s` for the short rows of small planes, in constant-size pieces that
/// compile to plain moves: `copy_from_slice` on a 14-float row is a `memmove`
/// call, which cost more than the copy (measured: a third of conv4's time
/// went to im2col, `memmove` and `memset` calls).
#[inline(always)]
pub(super) fn copy_short<T: Float>(d: &mut [T], s: &[T]) {
    let n = d.len();
    if n >= 32 {
        return d.copy_from_slice(s);
    }
    // n < 32 as a sum of powers of two, largest first.
    let mut i = 0;
    for piece in [16, 8, 4, 2, 1] {
        if n & piece != 0 {
            d[i..i + piece].copy_from_slice(&s[i..i + piece]);
            i += piece;
        }
    }
}

/// `d = 0` for short runs (padding columns), without a `memset` call.
#[inline(always)]
pub(super) fn zero_short<T: Float>(d: &mut [T]) {
    let n = d.len();
    if n >= 32 {
        return d.fill(T::zero());
    }
    let mut i = 0;
    for piece in [16, 8, 4, 2, 1] {
        if n & piece != 0 {
            d[i..i + piece].fill(T::zero());
            i += piece;
        }
    }
}

/// [`im2col_row`] for stride 1 with rows as wide as the input's ("same"
/// padding): the whole row is one shifted copy of the plane, with the columns
/// that fall outside the input zeroed afterwards. One copy instead of one per
/// output row, which on 8- and 14-wide planes is mostly call overhead.
fn im2col_row_same<T: Float>(plane: &[T], g: &ConvGeom, ki: usize, shift: isize, dst: &mut [T]) {
    let (h, w, oh) = (g.h as isize, g.w, g.oh as isize);
    let iy0 = (ki * g.dilation[0]) as isize - g.padding[0] as isize;
    // Output rows whose input row iy = oy + iy0 lies inside the plane.
    let (lo, hi) = ((-iy0).clamp(0, oh), (h - iy0).clamp(0, oh));
    let (lo, hi) = (lo as usize * w, hi.max(lo) as usize * w);
    dst[..lo].fill(T::zero());
    dst[hi..].fill(T::zero());
    // dst[i] = plane[i + off] where that index exists.
    let off = iy0 * w as isize + shift;
    let (s_lo, s_hi) = (
        (lo as isize + off).clamp(0, plane.len() as isize) as usize,
        (hi as isize + off).clamp(0, plane.len() as isize) as usize,
    );
    if s_hi > s_lo {
        let d_lo = (s_lo as isize - off) as usize;
        dst[lo..d_lo].fill(T::zero());
        dst[d_lo..d_lo + (s_hi - s_lo)].copy_from_slice(&plane[s_lo..s_hi]);
        dst[d_lo + (s_hi - s_lo)..hi].fill(T::zero());
    } else {
        dst[lo..hi].fill(T::zero());
    }
    // Columns ox with ox + shift outside [0, w) read a neighbouring row: zero them.
    let (bad_lo, bad_hi) = (
        (-shift).clamp(0, w as isize) as usize,
        (w as isize - shift).clamp(0, w as isize) as usize,
    );
    // Column by column, strided: per-row fills of one or two values would
    // each become a memset call.
    for col in (0..bad_lo).chain(bad_hi..w) {
        for v in dst[lo..hi].iter_mut().skip(col).step_by(w) {
            *v = T::zero();
        }
    }
}

/// Folds columns (`K x OH*OW`, rows `rs` apart) back into one sample's
/// group, adding. Each channel's taps are summed into a zero-bordered plane
/// (straight into the channel without padding), every output row one
/// fixed-width or strided add with no edge cases, and the interior is then
/// added to `x` (a row-by-row fold clipped every row at the borders). Into
/// a zeroed `x`, as every caller's is, each input value receives the same
/// terms in the same order as the row-by-row fold: the same sums.
pub(super) fn col2im<T: Float>(col: &[T], rs: usize, g: &ConvGeom, x: &mut [T]) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let ([ph, pw], [dh, dw], [sh, sw]) = (g.padding, g.dilation, g.stride);
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    // Without padding the taps add straight into the channel.
    let bordered = g.padding != [0, 0];
    let mut padded = vec![T::zero(); if bordered { hp * wp } else { 0 }];
    for c in 0..g.cg() {
        let plane = &mut x[c * h * w..(c + 1) * h * w];
        let sums = if bordered {
            padded.fill(T::zero());
            &mut padded[..]
        } else {
            &mut *plane
        };
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * rs..][..oh * ow];
                let dst = &mut sums[ki * dh * wp + kj * dw..];
                for (oy, s) in src.chunks_exact(ow).enumerate() {
                    let r = &mut dst[oy * sh * wp..];
                    if sw == 1 {
                        for (d, &v) in r[..ow].iter_mut().zip(s) {
                            *d += v;
                        }
                    } else {
                        for (ox, &v) in s.iter().enumerate() {
                            r[ox * sw] += v;
                        }
                    }
                }
            }
        }
        if bordered {
            for (y, d) in plane.chunks_exact_mut(w).enumerate() {
                for (dv, &v) in d.iter_mut().zip(&padded[(y + ph) * wp + pw..][..w]) {
                    *dv += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows split over two threads: the same matrix as on one (stride 2,
    /// a 7x7 stem, a "same" 3x3, 4x4 and 2x2 planes with many channels).
    #[test]
    fn im2col_on_two_threads_matches_one() {
        let geom = |c: usize, h: usize, k: usize, s: usize, p: usize| {
            let o = (h + 2 * p - k) / s + 1;
            ConvGeom {
                n: 1,
                c,
                h,
                w: h,
                o: 8,
                kh: k,
                kw: k,
                oh: o,
                ow: o,
                stride: [s, s],
                padding: [p, p],
                dilation: [1, 1],
                groups: 1,
            }
        };
        for g in [
            geom(16, 33, 3, 2, 1),
            geom(3, 32, 7, 2, 3),
            geom(32, 16, 3, 1, 1),
            geom(256, 4, 3, 1, 1),
            // Batch 1's small planes: 9K and 4.6K values.
            geom(64, 4, 3, 1, 1),
            geom(128, 2, 3, 1, 1),
        ] {
            let x: Vec<f32> = (0..g.c * g.h * g.w)
                .map(|i| (i % 97) as f32 - 48.0)
                .collect();
            let len = g.k() * g.ohw();
            assert!(len >= 1 << 12, "{g:?}: below the split");
            let (mut one, mut two) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            im2col(&x, &g, &mut one);
            im2col_threads(&x, &g, &mut two, 2);
            assert_eq!(one, two, "{g:?}");
        }
    }

    /// The one-copy "same" im2col row equals the row-by-row one.
    #[test]
    fn im2col_same_rows_match_row_by_row() {
        let mut checked = 0;
        for h in 1..7 {
            for w in 1..7 {
                for kh in 1..4 {
                    for kw in 1..4 {
                        for p in 0..4 {
                            for d in 1..3 {
                                let oh = (h + 2 * p) as isize - (d * (kh - 1) + 1) as isize + 1;
                                let ow = w + 2 * p;
                                if oh <= 0 || ow < d * (kw - 1) + 1 || ow - d * (kw - 1) != w {
                                    continue;
                                }
                                let g = ConvGeom {
                                    n: 1,
                                    c: 2,
                                    h,
                                    w,
                                    o: 1,
                                    kh,
                                    kw,
                                    oh: oh as usize,
                                    ow: w,
                                    stride: [1, 1],
                                    padding: [p, p],
                                    dilation: [d, d],
                                    groups: 1,
                                };
                                let x: Vec<f64> = (0..2 * h * w).map(|i| i as f64 + 1.0).collect();
                                for row in 0..g.k() {
                                    let (c, kk) = (row / (kh * kw), row % (kh * kw));
                                    let plane = &x[c * h * w..(c + 1) * h * w];
                                    let ix0 = ((kk % kw) * d) as isize - p as isize;
                                    let mut a = vec![f64::NAN; g.ohw()];
                                    let mut b = vec![f64::NAN; g.ohw()];
                                    im2col_row_same(plane, &g, kk / kw, ix0, &mut a);
                                    im2col_row_rows(plane, &g, kk / kw, ix0, &mut b);
                                    assert_eq!(a, b, "{g:?} row {row}");
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    /// Stride-1 geometries with `c` channels over every combination of
    /// sizes, kernels, paddings and dilations 1 and 2 whose window fits.
    fn stride1_geoms(
        sizes: &[(usize, usize)],
        kernels: &[(usize, usize)],
        pads: &[(usize, usize)],
        c: usize,
    ) -> Vec<ConvGeom> {
        let mut out = Vec::new();
        for &(h, w) in sizes {
            for &(kh, kw) in kernels {
                for &(ph, pw) in pads {
                    for d in 1..3 {
                        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
                        if hp < d * (kh - 1) + 1 || wp < d * (kw - 1) + 1 {
                            continue;
                        }
                        out.push(ConvGeom {
                            n: 1,
                            c,
                            h,
                            w,
                            o: 1,
                            kh,
                            kw,
                            oh: hp - d * (kh - 1),
                            ow: wp - d * (kw - 1),
                            stride: [1, 1],
                            padding: [ph, pw],
                            dilation: [d, d],
                            groups: 1,
                        });
                    }
                }
            }
        }
        out
    }

    /// Every row of the column matrix against its definition, over strides
    /// 1-3, padding, dilation and kernels wider than the plane: value
    /// `(oy, ox)` of row `(c, ki, kj)` is the input at
    /// `(oy sh + ki dh - ph, ox sw + kj dw - pw)`, or 0 outside it.
    #[test]
    fn im2col_rows_match_the_definition() {
        let mut checked = 0;
        for (h, w) in [(1, 1), (5, 4), (7, 9), (12, 11)] {
            for (kh, kw) in [(1, 1), (3, 3), (7, 7), (2, 5)] {
                for (sh, sw) in [(1, 1), (2, 2), (3, 2), (1, 3)] {
                    for (ph, pw) in [(0, 0), (1, 2), (3, 3)] {
                        for d in 1..3 {
                            let geom = ConvGeom::sized(
                                1,
                                2,
                                [h, w],
                                1,
                                [kh, kw],
                                [sh, sw],
                                [ph, pw],
                                [d, d],
                                1,
                            );
                            let Some(g) = geom else { continue };
                            let x: Vec<f64> = (0..2 * h * w).map(|i| i as f64 + 1.0).collect();
                            // The whole matrix too (the zero-bordered path
                            // where it applies), rows 3 apart from the next.
                            let rs = g.ohw() + 3;
                            let mut whole = vec![f64::NAN; g.k() * rs];
                            im2col_strided(&x, &g, &mut whole, rs);
                            for row in 0..g.k() {
                                let (c, kk) = (row / (kh * kw), row % (kh * kw));
                                let (ki, kj) = (kk / kw, kk % kw);
                                let mut got = vec![f64::NAN; g.ohw()];
                                im2col_row(&x, &g, row, &mut got);
                                assert_eq!(
                                    &whole[row * rs..][..g.ohw()],
                                    &got[..],
                                    "{g:?} row {row}"
                                );
                                for oy in 0..g.oh {
                                    for ox in 0..g.ow {
                                        let iy = (oy * sh + ki * d) as isize - ph as isize;
                                        let ix = (ox * sw + kj * d) as isize - pw as isize;
                                        let inside = (0..h as isize).contains(&iy)
                                            && (0..w as isize).contains(&ix);
                                        let want = if inside {
                                            x[c * h * w + iy as usize * w + ix as usize]
                                        } else {
                                            0.0
                                        };
                                        assert_eq!(got[oy * g.ow + ox], want, "{g:?} row {row}");
                                    }
                                }
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// The padded-plane im2col (stride 1, output wider than the input)
    /// equals the row-by-row one, rows written `rs` apart.
    #[test]
    fn im2col_padded_matches_row_by_row() {
        let mut checked = 0;
        let sizes = [(1, 1), (3, 5), (6, 4), (14, 14)];
        let kernels = [(1, 1), (3, 3), (2, 3), (5, 5)];
        let pads = [(1, 2), (2, 2), (3, 1), (0, 3)];
        for g in stride1_geoms(&sizes, &kernels, &pads, 3) {
            if g.ow == g.w {
                continue;
            }
            let x: Vec<f64> = (0..3 * g.h * g.w).map(|i| i as f64 + 1.0).collect();
            let (ohw, rs) = (g.ohw(), g.ohw() + 7);
            let mut fast = vec![f64::NAN; g.k() * rs];
            im2col_strided(&x, &g, &mut fast, rs);
            for row in 0..g.k() {
                let mut slow = vec![f64::NAN; ohw];
                im2col_row(&x, &g, row, &mut slow);
                assert_eq!(&fast[row * rs..][..ohw], &slow[..], "{g:?} row {row}");
                // The gaps between rows are left alone.
                assert!(fast[row * rs + ohw..][..7].iter().all(|v| v.is_nan()));
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }

    /// col2im equals every tap added where it lands, tap by tap, bit for
    /// bit, at strides 1-3 with and without padding.
    #[test]
    fn col2im_matches_tap_by_tap() {
        let mut checked = 0;
        let sizes = [(1, 1), (3, 5), (6, 4), (8, 8)];
        let kernels = [(1, 1), (3, 3), (2, 3)];
        let pads = [(1, 1), (2, 2), (0, 2), (1, 0), (0, 0)];
        let strided = stride1_geoms(&sizes, &kernels, &pads, 2)
            .into_iter()
            .flat_map(|g| {
                [[1, 1], [2, 2], [3, 2]]
                    .into_iter()
                    .filter_map(move |stride| {
                        let (k, p, d) = ([g.kh, g.kw], g.padding, g.dilation);
                        ConvGeom::sized(1, 2, [g.h, g.w], 1, k, stride, p, d, 1)
                    })
            });
        for g in strided {
            let (h, w, d, [ph, pw], [sh, sw]) = (g.h, g.w, g.dilation[0], g.padding, g.stride);
            let rs = g.ohw() + 3;
            let col: Vec<f64> = (0..g.k() * rs)
                .map(|i| (i % 97) as f64 * 0.37 - 9.0)
                .collect();
            let mut fast = vec![0.0; 2 * h * w];
            col2im(&col, rs, &g, &mut fast);
            // The row-by-row reference: every tap added where it lands.
            let mut slow = vec![0.0; 2 * h * w];
            for row in 0..g.k() {
                let (c, kk) = (row / (g.kh * g.kw), row % (g.kh * g.kw));
                let (ki, kj) = (kk / g.kw, kk % g.kw);
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let iy = (oy * sh + ki * d) as isize - ph as isize;
                        let ix = (ox * sw + kj * d) as isize - pw as isize;
                        if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                            slow[c * h * w + iy as usize * w + ix as usize] +=
                                col[row * rs + oy * g.ow + ox];
                        }
                    }
                }
            }
            assert_eq!(fast, slow, "{g:?}");
            checked += 1;
        }
        assert!(checked > 50, "{checked}");
    }
}
