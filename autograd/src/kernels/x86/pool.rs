//! The f32 max-pool kernels on AVX2 (see `kernels::pool::max`).

use std::arch::x86_64::*;

use crate::kernels::pool::max::{FlatTaps, GatherTaps};

/// Even and odd lanes of the 16 floats `a, b`, in order.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn deinterleave(a: __m256, b: __m256) -> (__m256, __m256) {
    // Per 128-bit lane [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit
    // pairs reordered to [a0 a2 a4 a6 b0 b2 b4 b6].
    let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
    let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
    let fix =
        |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (fix(even), fix(odd))
}

/// Eight 2x2 windows: the top taps are the 16 floats at `top[0]`,
/// `top[1]` (8 each), the bottom taps those at `bottom[0]`, `bottom[1]`;
/// window `l`'s top-left input is `first + lanes[l]`. The four taps in
/// row-major order, a later one taken only when greater or NaN (the
/// scalar loop's rule); returns the maxima and their flat indices (zeros
/// without `IDX`).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn eight_windows<const IDX: bool>(
    top: [*const f32; 2],
    bottom: [*const f32; 2],
    first: usize,
    lanes: __m256i,
    w: usize,
) -> (__m256, __m256i) {
    let (t0, t1) = deinterleave(_mm256_loadu_ps(top[0]), _mm256_loadu_ps(top[1]));
    let (t2, t3) = deinterleave(_mm256_loadu_ps(bottom[0]), _mm256_loadu_ps(bottom[1]));
    let (mut best, mut at) = (t0, _mm256_setzero_ps());
    for (t, v) in [(1, t1), (2, t2), (3, t3)] {
        let take = _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(v, best),
            _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
        );
        best = _mm256_blendv_ps(best, v, take);
        if IDX {
            at = _mm256_blendv_ps(at, _mm256_castsi256_ps(_mm256_set1_epi32(t)), take);
        }
    }
    if !IDX {
        return (best, _mm256_setzero_si256());
    }
    // first + lane + (at / 2) * w + at % 2
    let at = _mm256_castps_si256(at);
    let row = _mm256_mullo_epi32(_mm256_srli_epi32::<1>(at), _mm256_set1_epi32(w as i32));
    let col = _mm256_and_si256(at, _mm256_set1_epi32(1));
    let idx = _mm256_add_epi32(
        _mm256_add_epi32(_mm256_set1_epi32(first as i32), lanes),
        _mm256_add_epi32(row, col),
    );
    (best, idx)
}

/// Every output of the `oh` rows: rows of 8 or more eight windows a step
/// (the last step overlapping the one before when `ow` is not a multiple
/// of 8: the same windows give the same results); rows of 4 (DeepConvNet's
/// 8x8 -> 4x4) two rows a step. Returns the rows done (the rest, rows of
/// 5-7 or an odd last row of 4, go to the scalar loop). Without `IDX`
/// the maxima only (`id` is not touched).
///
/// # Safety
/// AVX2; `plane` holds rows `0..2 * oh` of width `w >= 2 * ow`; `o`
/// and (with `IDX`) `id` hold `oh` rows of `ow`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn max_pool_2x2<const IDX: bool>(
    plane: &[f32],
    w: usize,
    oh: usize,
    ow: usize,
    o: &mut [f32],
    id: &mut [u32],
) -> usize {
    debug_assert!(plane.len() >= 2 * oh * w && 2 * ow <= w);
    debug_assert!(o.len() >= oh * ow && (!IDX || id.len() >= oh * ow));
    let p = plane.as_ptr();
    let mut store = |at: usize, (best, idx): (__m256, __m256i)| {
        _mm256_storeu_ps(o.as_mut_ptr().add(at), best);
        if IDX {
            _mm256_storeu_si256(id.as_mut_ptr().add(at) as *mut __m256i, idx);
        }
    };
    if ow >= 8 {
        let lanes = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        for i in 0..oh {
            let (r0, r1) = (2 * i * w, (2 * i + 1) * w);
            for j in (0..ow.div_ceil(8)).map(|s| (8 * s).min(ow - 8)) {
                let top = [p.add(r0 + 2 * j), p.add(r0 + 2 * j + 8)];
                let bottom = [p.add(r1 + 2 * j), p.add(r1 + 2 * j + 8)];
                store(
                    i * ow + j,
                    eight_windows::<IDX>(top, bottom, r0 + 2 * j, lanes, w),
                );
            }
        }
        oh
    } else if ow == 4 {
        // Output rows i and i + 1 side by side: input rows 2i and 2i + 2 on top.
        let w2 = 2 * w as i32;
        let lanes = _mm256_setr_epi32(0, 2, 4, 6, w2, w2 + 2, w2 + 4, w2 + 6);
        for i in (0..oh / 2 * 2).step_by(2) {
            let (r0, r1) = (2 * i * w, (2 * i + 1) * w);
            let top = [p.add(r0), p.add(r0 + 2 * w)];
            let bottom = [p.add(r1), p.add(r1 + 2 * w)];
            store(i * ow, eight_windows::<IDX>(top, bottom, r0, lanes, w));
        }
        oh / 2 * 2
    } else {
        0
    }
}

/// One tap of a masked window scan: where `valid` (all-ones lanes) and `v`
/// is greater than `best` or NaN (the scalar scan's rule), take `v` and its
/// input index `src` (with `IDX`).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn take_tap<const IDX: bool>(
    valid: __m256,
    v: __m256,
    src: __m256i,
    best: &mut __m256,
    at: &mut __m256i,
) {
    let take = _mm256_and_ps(
        valid,
        _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_GT_OQ>(v, *best),
            _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
        ),
    );
    *best = _mm256_blendv_ps(*best, v, take);
    if IDX {
        *at = _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(*at),
            _mm256_castsi256_ps(src),
            take,
        ));
    }
}

/// Stores outputs `q..q + 8` of a plane of `len` (only those below `len`),
/// and their indices with `IDX`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_eight<const IDX: bool>(
    o: &mut [f32],
    id: &mut [u32],
    q: usize,
    len: usize,
    best: __m256,
    at: __m256i,
) {
    if q + 8 <= len {
        _mm256_storeu_ps(o.as_mut_ptr().add(q), best);
        if IDX {
            _mm256_storeu_si256(id.as_mut_ptr().add(q) as *mut __m256i, at);
        }
    } else {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let keep = _mm256_cmpgt_epi32(_mm256_set1_epi32((len - q) as i32), lanes);
        _mm256_maskstore_ps(o.as_mut_ptr().add(q), keep, best);
        if IDX {
            _mm256_maskstore_epi32(id.as_mut_ptr().add(q) as *mut i32, keep, at);
        }
    }
}

/// Every output of one plane through [`FlatTaps`]: per tap, the
/// inputs of 8 outputs loaded under the tap's mask (masked lanes are not
/// read), taken where valid and greater or NaN: the scalar scan's rule,
/// taps in row-major order.
///
/// # Safety
/// AVX2; every valid tap reads inside `plane`; `o` and (with `IDX`) `id`
/// hold the plane's `len` outputs.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn max_pool_flat<const IDX: bool>(
    plane: &[f32],
    ft: &FlatTaps,
    o: &mut [f32],
    id: &mut [u32],
) {
    let (len, len8) = (ft.len, ft.first.len());
    debug_assert!(o.len() >= len && (!IDX || id.len() >= len) && len8 % 8 == 0);
    let base = plane.as_ptr();
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for q in (0..len8).step_by(8) {
        let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut at = _mm256_loadu_si256(ft.first.as_ptr().add(q) as *const __m256i);
        let qv = _mm256_add_epi32(_mm256_set1_epi32(q as i32), lanes);
        for (t, &off) in ft.offs.iter().enumerate() {
            let m = _mm256_loadu_si256(ft.masks.as_ptr().add(t * len8 + q) as *const __m256i);
            // Lanes outside the plane are masked: not read, and zero.
            let v = _mm256_maskload_ps(base.wrapping_offset(q as isize + off), m);
            let src = _mm256_add_epi32(qv, _mm256_set1_epi32(off as i32));
            take_tap::<IDX>(_mm256_castsi256_ps(m), v, src, &mut best, &mut at);
        }
        store_eight::<IDX>(o, id, q, len, best, at);
    }
}

/// Every output of one plane through [`GatherTaps`]: per tap, the
/// inputs of 8 outputs gathered under the tap's mask (masked lanes are not
/// read), taken where valid and greater or NaN, taps in row-major order.
///
/// # Safety
/// AVX2; every valid tap reads inside `plane`; `o` and (with `IDX`) `id`
/// hold the plane's `len` outputs.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn max_pool_gather<const IDX: bool>(
    plane: &[f32],
    gt: &GatherTaps,
    o: &mut [f32],
    id: &mut [u32],
) {
    let (len, len8) = (gt.len, gt.base.len());
    debug_assert!(o.len() >= len && (!IDX || id.len() >= len) && len8 % 8 == 0);
    let p = plane.as_ptr();
    for q in (0..len8).step_by(8) {
        let base = _mm256_loadu_si256(gt.base.as_ptr().add(q) as *const __m256i);
        let (mut best, mut at) = (_mm256_set1_ps(f32::NEG_INFINITY), base);
        for (t, &off) in gt.offs.iter().enumerate() {
            let m = _mm256_loadu_si256(gt.masks.as_ptr().add(t * len8 + q) as *const __m256i);
            let m = _mm256_castsi256_ps(m);
            let src = _mm256_add_epi32(base, _mm256_set1_epi32(off));
            let v = _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), p, src, m);
            take_tap::<IDX>(m, v, src, &mut best, &mut at);
        }
        store_eight::<IDX>(o, id, q, len, best, at);
    }
}
