//! Winograd F(2x2, 3x3)'s input and output transforms on AVX2 + FMA (see
//! `kernels::conv::winograd`), eight tiles of a tile row at a time.

use std::arch::x86_64::*;

/// `Bᵀ d` down the columns of one tile row: `d[a]` is input row `a` of the
/// 4 under the tile row (`w` floats, or `w` zeros), and row `a` of `dst`
/// (`wp` floats, rows `wp` apart) receives the result at `pw..pw + w`,
/// zeros around it.
///
/// # Safety
/// AVX2 present; each `d[a]` has `w` readable floats; `dst` has `4 wp`
/// writable floats; `pw + w <= wp`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn input_columns(
    d: [*const f32; 4],
    w: usize,
    pw: usize,
    dst: *mut f32,
    wp: usize,
) {
    for a in 0..4 {
        let row = dst.add(a * wp);
        for x in (0..pw).chain(pw + w..wp) {
            *row.add(x) = 0.0;
        }
    }
    let out = [
        dst.add(pw),
        dst.add(wp + pw),
        dst.add(2 * wp + pw),
        dst.add(3 * wp + pw),
    ];
    let mut x = 0;
    while x + 8 <= w {
        let d0 = _mm256_loadu_ps(d[0].add(x));
        let d1 = _mm256_loadu_ps(d[1].add(x));
        let d2 = _mm256_loadu_ps(d[2].add(x));
        let d3 = _mm256_loadu_ps(d[3].add(x));
        _mm256_storeu_ps(out[0].add(x), _mm256_sub_ps(d0, d2));
        _mm256_storeu_ps(out[1].add(x), _mm256_add_ps(d1, d2));
        _mm256_storeu_ps(out[2].add(x), _mm256_sub_ps(d2, d1));
        _mm256_storeu_ps(out[3].add(x), _mm256_sub_ps(d1, d3));
        x += 8;
    }
    while x < w {
        let (d0, d1, d2, d3) = (*d[0].add(x), *d[1].add(x), *d[2].add(x), *d[3].add(x));
        *out[0].add(x) = d0 - d2;
        *out[1].add(x) = d1 + d2;
        *out[2].add(x) = d2 - d1;
        *out[3].add(x) = d1 - d3;
        x += 1;
    }
}

/// The even and odd elements of the 16 floats at `p`, in order.
#[inline(always)]
unsafe fn deinterleave(p: *const f32) -> (__m256, __m256) {
    let lo = _mm256_loadu_ps(p);
    let hi = _mm256_loadu_ps(p.add(8));
    // Within each 128-bit lane, then the 64-bit quarters back in order.
    let even = _mm256_shuffle_ps::<0x88>(lo, hi);
    let odd = _mm256_shuffle_ps::<0xDD>(lo, hi);
    (
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(even))),
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(odd))),
    )
}

/// `· B` along the rows: tile `j` of row `a` of `t` (`wp` apart, as
/// [`input_columns`] left them) reads columns `2j .. 2j + 3`, and its value
/// at `ξ = 4a + b` goes to `dst[ξ stride + j]`.
///
/// # Safety
/// AVX2 present; `t` has `4 wp + 16` readable floats with `wp = 2 tw + 2`
/// (the last vector reads past its row); `dst + ξ stride` has
/// `tw.div_ceil(8) * 8` writable floats for each `ξ < 16`, of which those
/// past `tw` receive values of no use.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn input_rows(t: *const f32, wp: usize, tw: usize, dst: *mut f32, stride: usize) {
    for a in 0..4 {
        let row = t.add(a * wp);
        let out = dst.add(4 * a * stride);
        let mut j = 0;
        while j < tw {
            let (e0, o0) = deinterleave(row.add(2 * j));
            let (e1, o1) = deinterleave(row.add(2 * j + 2));
            let vals = [
                _mm256_sub_ps(e0, e1),
                _mm256_add_ps(o0, e1),
                _mm256_sub_ps(e1, o0),
                _mm256_sub_ps(o0, o1),
            ];
            // Whole vectors: lanes past `tw` land where the caller allows.
            for (b, v) in vals.into_iter().enumerate() {
                _mm256_storeu_ps(out.add(b * stride + j), v);
            }
            j += 8;
        }
    }
}

/// `Aᵀ M A + bias` for the `tw` tiles of one tile row and one output
/// channel: `src[ξ stride + j]` is tile `j`'s product at `ξ`; its four
/// outputs go to `out0[2j], out0[2j + 1], out1[2j], out1[2j + 1]` (the two
/// output rows, `ow` wide; `out1` null when the tile row has one output row).
///
/// # Safety
/// AVX2 present; `src + ξ stride` has `tw` readable floats for each
/// `ξ < 16`, and the last vector's 8 (the lanes past `tw` are not
/// stored); `out0` (and `out1` unless null) `ow` writable floats;
/// `tw = ow.div_ceil(2)`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn output_row(
    src: *const f32,
    stride: usize,
    tw: usize,
    bias: f32,
    out0: *mut f32,
    out1: *mut f32,
    ow: usize,
) {
    let bv = _mm256_set1_ps(bias);
    let mut j = 0;
    while j < tw {
        let m = |xi: usize| _mm256_loadu_ps(src.add(xi * stride + j));
        let mut s = [_mm256_setzero_ps(); 4];
        let mut d = [_mm256_setzero_ps(); 4];
        for b in 0..4 {
            let (m0, m1, m2, m3) = (m(b), m(4 + b), m(8 + b), m(12 + b));
            s[b] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
            d[b] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
        }
        let left =
            |v: &[__m256; 4]| _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), v[2]), bv);
        let right =
            |v: &[__m256; 4]| _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(v[1], v[2]), v[3]), bv);
        // Outputs 2j .. 2j + 16 of each row, as many as the row has.
        let n = (ow - 2 * j).min(16);
        store_pairs(out0.add(2 * j), left(&s), right(&s), n);
        if !out1.is_null() {
            store_pairs(out1.add(2 * j), left(&d), right(&d), n);
        }
        j += 8;
    }
}

/// Stores the first `n` (<= 16) of `l0 r0 l1 r1 ... l7 r7` at `out`.
#[inline(always)]
unsafe fn store_pairs(out: *mut f32, l: __m256, r: __m256, n: usize) {
    let lo = _mm256_unpacklo_ps(l, r); // l0 r0 l1 r1 | l4 r4 l5 r5
    let hi = _mm256_unpackhi_ps(l, r); // l2 r2 l3 r3 | l6 r6 l7 r7
    let first = _mm256_permute2f128_ps::<0x20>(lo, hi);
    let second = _mm256_permute2f128_ps::<0x31>(lo, hi);
    // Partial vectors through the stack: AVX2's masked stores are slow
    // on AMD's cores.
    let (full, tail) = if n >= 8 {
        _mm256_storeu_ps(out, first);
        (8, second)
    } else {
        (0, first)
    };
    if n == full + 8 {
        _mm256_storeu_ps(out.add(full), tail);
    } else if n > full {
        let mut buf = [0.0f32; 8];
        _mm256_storeu_ps(buf.as_mut_ptr(), tail);
        std::ptr::copy_nonoverlapping(buf.as_ptr(), out.add(full), n - full);
    }
}
