//! Winograd F(4x4, 3x3)'s gathers and scatter on AVX-512 (see
//! `kernels::conv::winograd4`): the 6x6 input blocks of 16 tiles into lane
//! order, and the 4x4 output blocks out of it, by masked row loads and
//! stores and a transpose in registers.

use std::arch::x86_64::*;

/// `d[(6a + b) 16 + l]` = element `b` of lane `l`'s block row `a`: for
/// lanes `k < 8`, the element at `plane + off[a][k] + b` if bit `b` of
/// `mask[a][k]` is set, else 0; for lanes `k + 8`, at `plane + off[a][k +
/// 8] + 8 + b` if bit `8 + b` of `mask[a][k + 8]` is set (the upper half
/// of the vector that lanes `k` and `k + 8` share). Each block row of lanes
/// `k` and `k + 8` is one masked load into the two halves of a vector; an
/// 8x8 transpose within each half and one two-source permute per position
/// put lane `l` in lane `l`. Masked-off elements (padding, unused lanes)
/// are never read. Unless null, `next` is the plane the same blocks will be
/// gathered from next (the next channel's): their rows are prefetched
/// (without it, the first load of each row waited on the cache: a third
/// of the gather's time).
///
/// # Safety
/// AVX-512F present; every element named by a set mask bit is readable;
/// `d` has `36 * 16` writable floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gather_blocks(
    plane: *const f32,
    next: *const f32,
    off: &[[isize; 16]; 6],
    mask: &[[u16; 16]; 6],
    d: *mut f32,
) {
    // Element `e` (0-3) or `e + 4` of the 16 rows from `s[e]` (rows 0-3 in
    // its first or second quarter, rows 8-11 in its third or fourth) and
    // `s[e + 4]` (rows 4-7 and 12-15), the second source's at 16 + i.
    let pick = |e: i32| {
        _mm512_setr_epi32(
            e,
            e + 1,
            e + 2,
            e + 3,
            16 + e,
            17 + e,
            18 + e,
            19 + e,
            8 + e,
            9 + e,
            10 + e,
            11 + e,
            24 + e,
            25 + e,
            26 + e,
            27 + e,
        )
    };
    let (first, second) = (pick(0), pick(4));
    for a in 0..6 {
        let mut z = [_mm512_setzero_ps(); 8];
        let (off, mask) = (&off[a], &mask[a]);
        if !next.is_null() {
            for &o in off {
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_offset(o).cast());
            }
        }
        for (k, zk) in z.iter_mut().enumerate() {
            let v = _mm512_maskz_loadu_ps(mask[k], plane.wrapping_offset(off[k]));
            *zk = _mm512_mask_loadu_ps(v, mask[k + 8], plane.wrapping_offset(off[k + 8]));
        }
        // Within each 128-bit quarter: t = pairs of rows interleaved,
        // s[b] = element b (quarters 0, 2) or b + 4 (quarters 1, 3) of
        // four rows.
        let t = [
            _mm512_unpacklo_ps(z[0], z[1]),
            _mm512_unpackhi_ps(z[0], z[1]),
            _mm512_unpacklo_ps(z[2], z[3]),
            _mm512_unpackhi_ps(z[2], z[3]),
            _mm512_unpacklo_ps(z[4], z[5]),
            _mm512_unpackhi_ps(z[4], z[5]),
            _mm512_unpacklo_ps(z[6], z[7]),
            _mm512_unpackhi_ps(z[6], z[7]),
        ];
        let s = [
            _mm512_shuffle_ps::<0x44>(t[0], t[2]),
            _mm512_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm512_shuffle_ps::<0x44>(t[1], t[3]),
            _mm512_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm512_shuffle_ps::<0x44>(t[4], t[6]),
            _mm512_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm512_shuffle_ps::<0x44>(t[5], t[7]),
            _mm512_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        let row = d.add(6 * a * 16);
        for b in 0..4 {
            _mm512_storeu_ps(
                row.add(b * 16),
                _mm512_permutex2var_ps(s[b], first, s[b + 4]),
            );
        }
        for b in 0..2 {
            let v = _mm512_permutex2var_ps(s[b], second, s[b + 4]);
            _mm512_storeu_ps(row.add((4 + b) * 16), v);
        }
    }
}

/// `d[e 16 + l]` = output `(i, j)` (`e = 4i + j`) of the 4x4 block of
/// output gradients at `src + l ohw` (rows `ow` apart), for the lanes
/// `l < lanes`, rows `i < rows` and columns `j < cols`; 0 elsewhere (the
/// weight gradient's gather, 16 output channels of one tile a lane each).
/// Each channel's block is four masked row loads into one vector; a 16x16
/// transpose puts channel `l` in lane `l`.
///
/// # Safety
/// AVX-512F present; those outputs readable; `d` has `16 * 16` writable
/// floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gather_grad_blocks(
    src: *const f32,
    ohw: usize,
    ow: usize,
    [lanes, rows, cols]: [usize; 3],
    d: *mut f32,
) {
    let mask = (1u16 << cols) - 1;
    let mut r = [_mm512_setzero_ps(); 16];
    for (l, v) in r.iter_mut().enumerate().take(lanes) {
        let at = src.wrapping_add(l * ohw);
        for i in 0..rows {
            // Row i into elements 4i..4i + 4.
            let row = at.wrapping_add(i * ow).wrapping_sub(4 * i);
            *v = _mm512_mask_loadu_ps(*v, mask << (4 * i), row);
        }
    }
    for (e, v) in transpose16(r).into_iter().enumerate() {
        _mm512_storeu_ps(d.add(e * 16), v);
    }
}

/// The inverse of [`gather_grad_blocks`] for 16 tiles of outputs: element
/// `(i, j)` of lane `l` (`src[4i + j][l]`) to `dst + off[l] + i ow + j`,
/// for the lanes `l < lanes`, rows `i < rows[l]` and columns `j` whose bit
/// is set in `cols[l]`. A 16x16 transpose gives each tile its 16 outputs in
/// one vector, stored as four 16-byte rows (masked stores for the tiles at
/// the plane's right or bottom edge); element by element, the scatter was
/// a tenth of DeepConvNet's training step.
///
/// # Safety
/// AVX-512F present; those outputs writable.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn scatter_blocks(
    src: &[[f32; 16]; 16],
    dst: *mut f32,
    ow: usize,
    lanes: usize,
    [off, rows, cols]: [&[usize; 16]; 3],
) {
    let r: [__m512; 16] = std::array::from_fn(|e| _mm512_loadu_ps(src[e].as_ptr()));
    for (l, v) in transpose16(r).into_iter().enumerate().take(lanes) {
        let at = dst.wrapping_add(off[l]);
        let mask = cols[l] as u16;
        if mask == 0xF || mask == 0x3 {
            // Plain 16-byte stores a row (8-byte ones for the two columns
            // a tile keeps at the edge of a 14- or 6-wide plane): with a
            // masked 64-byte store a row, the scatter took a third longer
            // on AMD's Zen 4.
            let q = [
                _mm512_extractf32x4_ps::<0>(v),
                _mm512_extractf32x4_ps::<1>(v),
                _mm512_extractf32x4_ps::<2>(v),
                _mm512_extractf32x4_ps::<3>(v),
            ];
            for (i, &qi) in q.iter().enumerate().take(rows[l]) {
                let row = at.add(i * ow);
                if mask == 0xF {
                    _mm_storeu_ps(row, qi);
                } else {
                    _mm_store_sd(row.cast(), _mm_castps_pd(qi));
                }
            }
            continue;
        }
        for i in 0..rows[l] {
            // Elements 4i..4i + 4 to row i.
            let row = at.wrapping_add(i * ow).wrapping_sub(4 * i);
            _mm512_mask_storeu_ps(row, mask << (4 * i), v);
        }
    }
}

/// `dst[..n] = src[..n]` with non-temporal stores where `dst` is 64-byte
/// aligned (plain stores for the part before that): for transformed
/// weights far larger than the caches, which are written once and read
/// back from memory, the stores skip reading each line first. The caller
/// issues `_mm_sfence` (see [`fence`]) before another thread reads `dst`.
///
/// # Safety
/// AVX-512F present; `src` has `n` readable floats, `dst` `n` writable
/// ones, not overlapping.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn stream_copy(src: *const f32, dst: *mut f32, n: usize) {
    let head = (dst.align_offset(64)).min(n);
    std::ptr::copy_nonoverlapping(src, dst, head);
    let mut i = head;
    while i + 16 <= n {
        _mm512_stream_ps(dst.add(i), _mm512_loadu_ps(src.add(i)));
        i += 16;
    }
    std::ptr::copy_nonoverlapping(src.add(i), dst.add(i), n - i);
}

/// Orders the non-temporal stores of [`stream_copy`] before later stores
/// (the signal that hands the data to another thread).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn fence() {
    _mm_sfence();
}

/// The 16x16 transpose: element `j` of `r[i]` to element `i` of row `j`,
/// in four rounds of 16 shuffles.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // t: rows 2i and 2i + 1 interleaved within each 128-bit quarter.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4i + e], quarter q: element 4q + e of rows 4i..4i + 4.
    let mut u = [_mm512_setzero_ps(); 16];
    for i in 0..4 {
        u[4 * i] = _mm512_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
    }
    // c[4q + e] = quarter q of u[e], u[4 + e], u[8 + e], u[12 + e]:
    // element 4q + e of all 16 rows.
    let mut c = [_mm512_setzero_ps(); 16];
    for e in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[e], u[4 + e]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[e], u[4 + e]);
        let w0 = _mm512_shuffle_f32x4::<0x88>(u[8 + e], u[12 + e]);
        let w1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + e], u[12 + e]);
        c[e] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        c[8 + e] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
        c[4 + e] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        c[12 + e] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    c
}
