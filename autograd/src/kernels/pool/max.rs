//! The max pool's forward pass: the generic row-major scan, and faster
//! scans with the same result (first maximum, NaN wins): 2x2 windows with
//! stride 2, separable stride-1 windows, and the vector plans (`FlatTaps`,
//! `GatherTaps`) the AVX2 kernels run.

use std::cell::RefCell;

use super::{for_planes, Windows};
use crate::dtype::Float;
use crate::kernels::scratch::with_scratch;
#[cfg(target_arch = "x86_64")]
use crate::kernels::x86::pool as x86;

/// Max over each window, with (`IDX`) the flat in-plane index of the
/// maximum (the first one in row-major order; NaN wins, as in PyTorch).
/// Without `IDX` (a pass that records nothing) the vector kernels skip
/// tracking the indices, and the second vector holds one placeholder a
/// plane.
pub(crate) fn max_pool<T: Float, const IDX: bool>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    wh: &Windows,
    ww: &Windows,
) -> (Vec<T>, Vec<u32>) {
    let (oh, ow) = (wh.len(), ww.len());
    let mut out = vec![T::zero(); planes * oh * ow];
    let mut idx = vec![0u32; if IDX { planes * oh * ow } else { planes }];
    let pairs = wh.is_pairs() && ww.is_pairs();
    let f32_input = T::f32_slice(&[T::zero()]).is_some();
    let flat = f32_input.then(|| FlatTaps::new(w, wh, ww)).flatten();
    let gathered = (f32_input && flat.is_none() && !pairs)
        .then(|| GatherTaps::new(w, wh, ww))
        .flatten();
    for_planes(&mut out, &mut idx, oh * ow, |p, o, id| {
        let plane = &x[p * h * w..(p + 1) * h * w];
        if pairs {
            return max_pool_2x2::<T, IDX>(plane, w, oh, ow, o, id);
        }
        #[cfg(target_arch = "x86_64")]
        if let (Some(ft), Some(p32), Some(o32)) = (&flat, T::f32_slice(plane), T::f32_slice_mut(o))
        {
            // SAFETY: FlatTaps::new checked AVX2, and that every output's
            // valid taps read inside this `h x w` plane.
            unsafe { x86::max_pool_flat::<IDX>(p32, ft, o32, id) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let (Some(gt), Some(p32), Some(o32)) =
            (&gathered, T::f32_slice(plane), T::f32_slice_mut(o))
        {
            // SAFETY: GatherTaps::new checked AVX2, and every valid tap
            // reads inside this `h x w` plane.
            unsafe { x86::max_pool_gather::<IDX>(p32, gt, o32, id) };
            return;
        }
        if wh.step == 1 && ww.step == 1 {
            return max_pool_separable::<T, IDX>(plane, h, w, wh, ww, o, id);
        }
        for i in 0..oh {
            for j in 0..ow {
                let mut best = T::neg_infinity();
                let mut at = wh.lo[i] * w + ww.lo[j];
                for y in (wh.lo[i]..wh.hi[i]).step_by(wh.step) {
                    let row = &plane[y * w..(y + 1) * w];
                    for xx in (ww.lo[j]..ww.hi[j]).step_by(ww.step) {
                        let v = row[xx];
                        if v > best || v.is_nan() {
                            best = v;
                            at = y * w + xx;
                        }
                    }
                }
                o[i * ow + j] = best;
                if IDX {
                    id[i * ow + j] = at as u32;
                }
            }
        }
    });
    (out, idx)
}

/// Whether the vector pool kernels can run here.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Stride-1 windows on planes whose output rows are as wide as the input
/// rows (GoogLeNet's 3x3 pools with padding 1): output `q = i * W + j` reads
/// input `q + dy * W + dx` for a fixed set of taps `(dy, dx)`, each valid or
/// not per output, so whole runs of 8 outputs (across rows too, which suits
/// 4x4 planes) take one vector per tap.
pub(in crate::kernels) struct FlatTaps {
    /// Input offset of each tap, row-major over `(dy, dx)`.
    pub(in crate::kernels) offs: Vec<isize>,
    /// `-1` where tap `t` of output `q` is inside its window: `[t * len8 + q]`
    /// (`len8`: the outputs rounded up to whole vectors).
    pub(in crate::kernels) masks: Vec<i32>,
    /// The index a window with no greater value reports (its first
    /// position), for `len8` outputs.
    pub(in crate::kernels) first: Vec<u32>,
    /// Outputs of a plane.
    pub(in crate::kernels) len: usize,
}

impl FlatTaps {
    fn new(w: usize, wh: &Windows, ww: &Windows) -> Option<FlatTaps> {
        let (oh, ow) = (wh.len(), ww.len());
        let len = oh * ow;
        let avx2 = has_avx2();
        if !avx2 || ow != w || wh.step != 1 || ww.step != 1 || len == 0 {
            return None;
        }
        // Whole vectors: lanes past the plane are never valid.
        let len8 = len.div_ceil(8) * 8;
        // Tap offsets spanning every window, relative to the output's own position.
        let span = |win: &Windows| {
            let mut r = (isize::MAX, isize::MIN);
            for (i, (&lo, &hi)) in win.lo.iter().zip(&win.hi).enumerate() {
                if hi > lo {
                    r.0 = r.0.min(lo as isize - i as isize);
                    r.1 = r.1.max(hi as isize - 1 - i as isize);
                }
            }
            r
        };
        let ((dy0, dy1), (dx0, dx1)) = (span(wh), span(ww));
        let (mut offs, mut masks) = (Vec::new(), Vec::new());
        if dy0 <= dy1 && dx0 <= dx1 {
            for dy in dy0..=dy1 {
                for dx in dx0..=dx1 {
                    offs.push(dy * w as isize + dx);
                    for i in 0..oh {
                        let y = i as isize + dy;
                        let row = wh.lo[i] as isize <= y && y < wh.hi[i] as isize;
                        for j in 0..ow {
                            let x = j as isize + dx;
                            let col = ww.lo[j] as isize <= x && x < ww.hi[j] as isize;
                            masks.push(if row && col { -1 } else { 0 });
                        }
                    }
                    masks.resize(offs.len() * len8, 0);
                }
            }
        }
        let first = (0..len8)
            .map(|q| (wh.lo[(q / ow).min(oh - 1)] * w + ww.lo[q % ow]) as u32)
            .collect();
        Some(FlatTaps {
            offs,
            masks,
            first,
            len,
        })
    }
}

/// Any other windows (strided, dilated, adaptive: GoogLeNet's 3x3/2 pools
/// took 6% of its step through the scalar loops): output `q` reads
/// `base[q] + offs[t]`, its window's first position plus a tap of the
/// largest window, where `masks` says the tap is inside `q`'s window. The
/// taps run row-major, so the first maximum wins as in the scalar scan; the
/// inputs of 8 outputs come in one masked gather per tap.
pub(in crate::kernels) struct GatherTaps {
    pub(in crate::kernels) offs: Vec<i32>,
    /// `-1` where tap `t` is inside output `q`'s window: `[t * len8 + q]`.
    pub(in crate::kernels) masks: Vec<i32>,
    /// The window's first position, `len8` of them (`len` rounded up to whole vectors).
    pub(in crate::kernels) base: Vec<i32>,
    pub(in crate::kernels) len: usize,
}

impl GatherTaps {
    /// Up to this many taps per window: past it (global pools of big planes)
    /// most lanes of the tap loop would be masked off.
    const MAX_TAPS: usize = 64;

    fn new(w: usize, wh: &Windows, ww: &Windows) -> Option<GatherTaps> {
        let (oh, ow) = (wh.len(), ww.len());
        let len = oh * ow;
        let avx2 = has_avx2();
        // Taps along an axis: the most any window holds.
        let taps = |win: &Windows| {
            (win.lo.iter().zip(&win.hi))
                .map(|(&lo, &hi)| (hi.max(lo) - lo).div_ceil(win.step))
                .max()
                .unwrap_or(0)
        };
        let (th, tw) = (taps(wh), taps(ww));
        let fits = i32::try_from(wh.hi.iter().max()? * w).is_ok();
        if !avx2 || len < 8 || th * tw > Self::MAX_TAPS || th * tw == 0 || !fits {
            return None;
        }
        let len8 = len.div_ceil(8) * 8;
        let mut offs = Vec::with_capacity(th * tw);
        let mut masks = Vec::with_capacity(th * tw * len8);
        for ty in 0..th {
            for tx in 0..tw {
                let (dy, dx) = (ty * wh.step, tx * ww.step);
                offs.push((dy * w + dx) as i32);
                for i in 0..oh {
                    let row = wh.lo[i] + dy < wh.hi[i];
                    for j in 0..ow {
                        let col = ww.lo[j] + dx < ww.hi[j];
                        masks.push(if row && col { -1 } else { 0 });
                    }
                }
                masks.resize(offs.len() * len8, 0);
            }
        }
        let mut base: Vec<i32> = (0..len)
            .map(|q| (wh.lo[q / ow] * w + ww.lo[q % ow]) as i32)
            .collect();
        base.resize(len8, 0);
        Some(GatherTaps {
            offs,
            masks,
            base,
            len,
        })
    }
}

/// `max_pool` for undilated windows the vector kernels do not take (f64;
/// f32 without AVX2 or windows too big to gather): the
/// maximum of each row's stretch under every window column first, then of
/// those down each window. Row-major first maximum = first row holding the
/// maximum, first column within it, so the index (and the NaN rule: the
/// last NaN scanned wins) is the generic one.
fn max_pool_separable<T: Float, const IDX: bool>(
    plane: &[T],
    h: usize,
    w: usize,
    wh: &Windows,
    ww: &Windows,
    o: &mut [T],
    id: &mut [u32],
) {
    // Per-thread buffers: GoogLeNet pools ~100,000 planes of 2x2 to 8x8 a
    // step (two allocations per plane otherwise).
    thread_local! {
        static ROW_AT: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }
    let ow = ww.len();
    with_scratch(h * ow, |row_max: &mut [T]| {
        ROW_AT.with(|row_at| {
            let mut row_at = row_at.borrow_mut();
            row_at.resize(h * ow, 0);
            // Every element of both buffers is written before it is read.
            for y in 0..h {
                let row = &plane[y * w..(y + 1) * w];
                let (m, a) = (&mut row_max[y * ow..][..ow], &mut row_at[y * ow..][..ow]);
                for j in 0..ow {
                    let (lo, hi) = (ww.lo[j], ww.hi[j]);
                    let (mut best, mut at) = (T::neg_infinity(), lo);
                    for (x, &v) in row[lo..hi].iter().enumerate() {
                        if v > best || v.is_nan() {
                            best = v;
                            at = lo + x;
                        }
                    }
                    m[j] = best;
                    a[j] = at as u32;
                }
            }
            for i in 0..wh.len() {
                let o = &mut o[i * ow..][..ow];
                let (lo, hi) = (wh.lo[i], wh.hi[i]);
                for j in 0..ow {
                    let (mut best, mut at) = (T::neg_infinity(), (lo * w + ww.lo[j]) as u32);
                    for y in lo..hi {
                        let v = row_max[y * ow + j];
                        if v > best || v.is_nan() {
                            best = v;
                            at = (y * w) as u32 + row_at[y * ow + j];
                        }
                    }
                    o[j] = best;
                    if IDX {
                        id[i * ow + j] = at;
                    }
                }
            }
        })
    });
}

/// `max_pool` for 2x2 windows with stride 2 (the common case, and 17% of a
/// PyTorch DeepConvNet step): the same scan order and tie rule, without the
/// generic window bookkeeping.
fn max_pool_2x2<T: Float, const IDX: bool>(
    plane: &[T],
    w: usize,
    oh: usize,
    ow: usize,
    o: &mut [T],
    id: &mut [u32],
) {
    // f32 on AVX2: eight windows a step; rows it leaves, below.
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        if let (Some(p32), Some(o32)) = (T::f32_slice(plane), T::f32_slice_mut(o)) {
            // SAFETY: AVX2 is present; the kernel reads rows 2i and 2i+1 up
            // to column 2 * ow <= w, and writes outputs of the `oh` rows of
            // `o` and `id`.
            done = unsafe { x86::max_pool_2x2::<IDX>(p32, w, oh, ow, o32, id) };
        }
    }
    for i in done..oh {
        let r0 = &plane[2 * i * w..2 * i * w + 2 * ow];
        let r1 = &plane[(2 * i + 1) * w..(2 * i + 1) * w + 2 * ow];
        let o = &mut o[i * ow..(i + 1) * ow];
        for j in 0..ow {
            let taps = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
            let (mut best, mut at) = (T::neg_infinity(), 0);
            for (t, &v) in taps.iter().enumerate() {
                if v > best || v.is_nan() {
                    best = v;
                    at = t;
                }
            }
            o[j] = best;
            if IDX {
                let (y, x) = (2 * i + at / 2, 2 * j + at % 2);
                id[i * ow + j] = (y * w + x) as u32;
            }
        }
    }
}

#[cfg(test)]
mod separable_tests {
    use super::*;

    /// The separable max-pool gives the generic scan's values and indices,
    /// with ties (values from a small set), NaNs and -inf among the inputs,
    /// and windows clipped by padding.
    #[test]
    fn separable_max_pool_matches_the_row_major_scan() {
        let specials = [f64::NAN, f64::NEG_INFINITY, 1.0, 2.0, 2.0, 0.0];
        let mut checked = 0;
        for (h, w) in [(1, 1), (4, 5), (7, 7), (9, 6)] {
            for (k, st, p) in [(3, 1, 1), (3, 2, 1), (2, 1, 0), (3, 2, 0), (5, 3, 2)] {
                if h + 2 * p < k || w + 2 * p < k || p > k / 2 {
                    continue;
                }
                let (oh, ow) = ((h + 2 * p - k) / st + 1, (w + 2 * p - k) / st + 1);
                let wh = Windows::sliding(h, k, st, p, 1, oh, false);
                let ww = Windows::sliding(w, k, st, p, 1, ow, false);
                for seed in 0..4usize {
                    let x: Vec<f64> = (0..2 * h * w)
                        .map(|i| specials[(i * 7 + seed * 3 + i / 5) % specials.len()])
                        .collect();
                    let (out, idx) = max_pool::<_, true>(&x, 2, h, w, &wh, &ww);
                    for pl in 0..2 {
                        let plane = &x[pl * h * w..][..h * w];
                        for i in 0..oh {
                            for j in 0..ow {
                                let (mut best, mut at) =
                                    (f64::NEG_INFINITY, wh.lo[i] * w + ww.lo[j]);
                                for y in wh.lo[i]..wh.hi[i] {
                                    for xx in ww.lo[j]..ww.hi[j] {
                                        let v = plane[y * w + xx];
                                        if v > best || v.is_nan() {
                                            best = v;
                                            at = y * w + xx;
                                        }
                                    }
                                }
                                let o = pl * oh * ow + i * ow + j;
                                assert_eq!(
                                    idx[o] as usize, at,
                                    "{h}x{w} k{k} s{st} p{p} at ({i},{j})"
                                );
                                assert!(out[o] == best || (out[o].is_nan() && best.is_nan()));
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 200, "{checked}");
    }

    /// The f32 flat pool (stride-1 windows, output rows as wide as the
    /// input's) gives the f64 scalar scans' values and indices: ties, NaNs,
    /// -inf, padding, rows pooled differently from columns (5 rows with
    /// padding 1: fewer output rows than input rows, taps below the output's
    /// own row only), planes 1x1 to 9x8 (tails of fewer than 8 outputs).
    #[test]
    fn flat_pool_matches_the_scalar_scan() {
        let mut flat = 0;
        for (h, w) in [
            (4, 4),
            (8, 8),
            (2, 4),
            (9, 8),
            (3, 8),
            (5, 8),
            (2, 2),
            (1, 1),
            (3, 5),
            (7, 7),
        ] {
            // (kernel, padding) per axis; columns keep the width.
            for (kh, ph) in [(3, 1), (5, 2), (5, 1), (2, 0), (1, 0)] {
                for (kw, pw) in [(3, 1), (5, 2), (1, 0)] {
                    if h + 2 * ph < kh || w + 2 * pw < kw {
                        continue;
                    }
                    let (oh, ow) = (h + 2 * ph - kh + 1, w + 2 * pw - kw + 1);
                    let wh = Windows::sliding(h, kh, 1, ph, 1, oh, false);
                    let ww = Windows::sliding(w, kw, 1, pw, 1, ow, false);
                    assert!(FlatTaps::new(w, &wh, &ww).is_some(), "{h}x{w} {kh} {kw}");
                    flat += 1;
                    assert_f32_matches_f64(h, w, &wh, &ww);
                }
            }
        }
        assert!(flat >= 100, "{flat}");
    }

    /// The f32 gathered pool (strided, dilated, ceil-mode, adaptive windows)
    /// gives the f64 scalar scans' values and indices: ties, NaNs, -inf,
    /// padding, windows clipped at the end (ceil mode), rows pooled
    /// differently from columns, tails of fewer than 8 outputs.
    #[test]
    fn gather_pool_matches_the_scalar_scan() {
        // PyTorch's output size for one axis.
        let out = |n: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool| {
            let span = (n + 2 * p - d * (k - 1) - 1) as isize;
            let mut o = if ceil {
                (span + s as isize - 1).div_euclid(s as isize) + 1
            } else {
                span.div_euclid(s as isize) + 1
            };
            if ceil && (o - 1) * s as isize >= (n + p) as isize {
                o -= 1;
            }
            o as usize
        };
        let mut gathered = 0;
        for (h, w) in [(8, 8), (16, 16), (7, 9), (32, 5), (11, 4), (5, 5)] {
            // (kernel, stride, padding, dilation) per axis.
            for (kh, sh, ph, dh) in [(3, 2, 0, 1), (3, 2, 1, 1), (2, 2, 0, 2), (1, 3, 0, 1)] {
                for (kw, sw, pw, dw) in [(3, 2, 0, 1), (2, 1, 1, 1), (3, 3, 1, 2), (4, 2, 2, 1)] {
                    for ceil in [false, true] {
                        if h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1 {
                            continue;
                        }
                        let (oh, ow) = (out(h, kh, sh, ph, dh, ceil), out(w, kw, sw, pw, dw, ceil));
                        let wh = Windows::sliding(h, kh, sh, ph, dh, oh, false);
                        let ww = Windows::sliding(w, kw, sw, pw, dw, ow, false);
                        if oh * ow < 8 || FlatTaps::new(w, &wh, &ww).is_some() {
                            continue;
                        }
                        assert!(GatherTaps::new(w, &wh, &ww).is_some(), "{h}x{w}");
                        gathered += 1;
                        assert_f32_matches_f64(h, w, &wh, &ww);
                    }
                }
            }
        }
        // Adaptive windows overlap and differ in size.
        for (h, w, oh, ow) in [(7, 7, 3, 5), (10, 6, 4, 4), (5, 13, 2, 6)] {
            let (wh, ww) = (Windows::adaptive(h, oh), Windows::adaptive(w, ow));
            assert!(GatherTaps::new(w, &wh, &ww).is_some());
            gathered += 1;
            assert_f32_matches_f64(h, w, &wh, &ww);
        }
        assert!(gathered >= 100, "{gathered}");
    }

    /// The f32 2x2 pool (eight windows a step on AVX2) gives the f64 scalar
    /// loop's values and indices: ties, NaNs, -inf, odd widths, remainders.
    #[test]
    fn vector_2x2_pool_matches_the_scalar_loop() {
        for (h, w) in [
            (2, 16),
            (4, 17),
            (6, 40),
            (9, 35),
            (28, 28),
            (8, 8),
            (5, 11),
            (4, 14),
            (3, 6),
            (6, 9),
            (7, 8),
        ] {
            let (oh, ow) = (h / 2, w / 2);
            let (wh, ww) = (
                Windows::sliding(h, 2, 2, 0, 1, oh, false),
                Windows::sliding(w, 2, 2, 0, 1, ow, false),
            );
            assert!(wh.is_pairs() && ww.is_pairs());
            assert_f32_matches_f64(h, w, &wh, &ww);
        }
    }

    /// The f32 max-pool (the vector kernels on AVX2) against the f64 scalar
    /// loops, values and indices, on inputs with ties, NaNs and -inf.
    fn assert_f32_matches_f64(h: usize, w: usize, wh: &Windows, ww: &Windows) {
        let specials = [f32::NAN, f32::NEG_INFINITY, 1.0, 2.0, 2.0, 0.0, -3.0];
        for seed in 0..5usize {
            let x: Vec<f32> = (0..3 * h * w)
                .map(|i| specials[(i * 5 + seed * 11 + i / 7) % specials.len()])
                .collect();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let (out, idx) = max_pool::<_, true>(&x, 3, h, w, wh, ww);
            let (out64, idx64) = max_pool::<_, true>(&x64, 3, h, w, wh, ww);
            assert_eq!(idx, idx64, "{h}x{w} {wh:?} {ww:?} seed {seed}");
            for (a, b) in out.iter().zip(&out64) {
                assert!(*a as f64 == *b || (a.is_nan() && b.is_nan()), "{h}x{w}");
            }
            // The maxima alone, on the same kernel with the indices left out.
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let values = max_pool::<_, false>(&x, 3, h, w, wh, ww).0;
            assert_eq!(bits(&values), bits(&out), "{h}x{w} {wh:?} {ww:?} values");
            let values64 = max_pool::<_, false>(&x64, 3, h, w, wh, ww).0;
            let same = values64
                .iter()
                .zip(&out64)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{h}x{w} {wh:?} {ww:?} f64 values");
        }
    }
}
