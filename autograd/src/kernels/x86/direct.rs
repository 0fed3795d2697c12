//! The direct convolution's micro-kernels on AVX2 + FMA (see
//! `kernels::conv::direct`).

use std::arch::x86_64::*;

/// For both vectors `v`: `C_v[R x 8] = A (R x K, tap-major) @ X_v[K x 8]`
/// (+ `bias[r]` on row `r` unless `bias` is null), `X_v`'s row `p` at
/// `xb[v] + offs[p]`.
///
/// # Safety
/// AVX2 and FMA present; `a` holds `R * offs.len()` floats; every
/// `xb[v] + offs[p]` 8 readable floats; `c[v]` R rows of 8 writable
/// floats, `rsc` apart; `bias` null or R readable floats.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile<const R: usize>(
    offs: &[usize],
    a: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    if !bias.is_null() {
        for (r, row) in acc.iter_mut().enumerate() {
            let b = _mm256_set1_ps(*bias.add(r));
            *row = [b, b];
        }
    }
    let mut a = a;
    for &o in offs {
        let b0 = _mm256_loadu_ps(xb[0].add(o));
        let b1 = _mm256_loadu_ps(xb[1].add(o));
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(r));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
        a = a.add(R);
    }
    for (r, row) in acc.iter().enumerate() {
        _mm256_storeu_ps(c[0].add(r * rsc), row[0]);
        _mm256_storeu_ps(c[1].add(r * rsc), row[1]);
    }
}

/// `C[R x 8NV] += sum over the span's pixels (oy, ox) of
/// rp[r][oy * wp + ox] * B[oy * ow + ox][0..8NV]`.
///
/// # Safety
/// AVX2 and FMA present; each `rp[r]` (r < R) readable at those
/// offsets; `b` `rows * ow * 8NV` floats; `c` R rows of `8NV` floats,
/// `rsc` apart.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn wtile<const R: usize, const NV: usize>(
    span: crate::kernels::conv::direct::Span,
    rp: &[*const f32; crate::kernels::conv::direct::MR],
    b: *const f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); NV]; R];
    let mut rows = [std::ptr::null::<f32>(); R];
    rows.copy_from_slice(&rp[..R]);
    let mut b = b;
    for _ in 0..span.rows {
        for q in 0..span.ow {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, slot) in bv.iter_mut().enumerate() {
                *slot = _mm256_loadu_ps(b.add(v * 8));
            }
            for (row, &x) in acc.iter_mut().zip(rows.iter()) {
                let av = _mm256_broadcast_ss(&*x.add(q));
                for v in 0..NV {
                    row[v] = _mm256_fmadd_ps(av, bv[v], row[v]);
                }
            }
            b = b.add(8 * NV);
        }
        for x in rows.iter_mut() {
            *x = x.add(span.wp);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &val) in row.iter().enumerate() {
            let cp = c.add(r * rsc + v * 8);
            _mm256_storeu_ps(cp, _mm256_add_ps(_mm256_loadu_ps(cp), val));
        }
    }
}

/// As [`tile`], for `R0 + R1` rows on AVX-512: 16 outputs a row in one
/// vector (the two 8-wide vectors joined), rows `0..R0` from the 6-row
/// panel at `a0` (`R0` floats a tap) and rows `R0..R0 + R1` from the panel
/// at `a1` (`R1` floats a tap), so each input vector loaded feeds up to 12
/// FMAs of 16 lanes. Each output sums its taps in the same order as
/// [`tile`]: the results are bit for bit the same.
///
/// # Safety
/// AVX-512F present; as [`tile`] for each panel, with `a1` read only if
/// `R1 > 0` and `c[v]` holding `R0 + R1` rows.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tile512<const R0: usize, const R1: usize>(
    offs: &[usize],
    a0: *const f32,
    a1: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    if xb[1] == xb[0].wrapping_add(8) {
        tile512_body::<R0, R1, true>(offs, a0, a1, xb, c, rsc, bias)
    } else {
        tile512_body::<R0, R1, false>(offs, a0, a1, xb, c, rsc, bias)
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile512_body<const R0: usize, const R1: usize, const JOINED_LOADS: bool>(
    offs: &[usize],
    a0: *const f32,
    a1: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    // R0 + R1 <= 12 accumulators of the 32 registers.
    let mut acc = [_mm512_setzero_ps(); 12];
    if !bias.is_null() {
        for (r, row) in acc.iter_mut().enumerate().take(R0 + R1) {
            *row = _mm512_set1_ps(*bias.add(r));
        }
    }
    let (mut a0, mut a1) = (a0, a1);
    for &o in offs {
        let x = if JOINED_LOADS {
            _mm512_loadu_ps(xb[0].add(o))
        } else {
            let lo = _mm256_castps_pd(_mm256_loadu_ps(xb[0].add(o)));
            let hi = _mm256_castps_pd(_mm256_loadu_ps(xb[1].add(o)));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castpd256_pd512(lo), hi))
        };
        for (r, row) in acc.iter_mut().enumerate().take(R0) {
            *row = _mm512_fmadd_ps(_mm512_set1_ps(*a0.add(r)), x, *row);
        }
        for (r, row) in acc[R0..].iter_mut().enumerate().take(R1) {
            *row = _mm512_fmadd_ps(_mm512_set1_ps(*a1.add(r)), x, *row);
        }
        a0 = a0.add(R0);
        a1 = a1.wrapping_add(R1);
    }
    if c[1] == c[0].wrapping_add(8) {
        for (r, &row) in acc.iter().enumerate().take(R0 + R1) {
            _mm512_storeu_ps(c[0].add(r * rsc), row);
        }
    } else {
        for (r, &row) in acc.iter().enumerate().take(R0 + R1) {
            let hi = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(row));
            _mm256_storeu_ps(c[0].add(r * rsc), _mm512_castps512_ps256(row));
            _mm256_storeu_ps(c[1].add(r * rsc), _mm256_castpd_ps(hi));
        }
    }
}

/// As [`tile512`] for two tiles at once, each 16 consecutive outputs a row
/// (inputs at `xb[t]`, outputs at `c[t]`, each contiguous), so each weight
/// broadcast feeds two FMAs where [`tile512`]'s feeds one (24 accumulators
/// of the 32 registers). Each output sums its taps in the same order: the
/// same bits.
///
/// # Safety
/// AVX-512F present; `a0`/`a1` as for [`tile512`]; every `xb[t] + offs[p]`
/// 16 readable floats; `c[t]` `R0 + R1` rows of 16 writable floats, `rsc`
/// apart; `bias` null or `R0 + R1` readable floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tile512_wide<const R0: usize, const R1: usize>(
    offs: &[usize],
    a0: *const f32,
    a1: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; 12];
    if !bias.is_null() {
        for (r, row) in acc.iter_mut().enumerate().take(R0 + R1) {
            let b = _mm512_set1_ps(*bias.add(r));
            *row = [b, b];
        }
    }
    let (mut a0, mut a1) = (a0, a1);
    for &o in offs {
        let x0 = _mm512_loadu_ps(xb[0].add(o));
        let x1 = _mm512_loadu_ps(xb[1].add(o));
        for (r, row) in acc.iter_mut().enumerate().take(R0) {
            let av = _mm512_set1_ps(*a0.add(r));
            row[0] = _mm512_fmadd_ps(av, x0, row[0]);
            row[1] = _mm512_fmadd_ps(av, x1, row[1]);
        }
        for (r, row) in acc[R0..].iter_mut().enumerate().take(R1) {
            let av = _mm512_set1_ps(*a1.add(r));
            row[0] = _mm512_fmadd_ps(av, x0, row[0]);
            row[1] = _mm512_fmadd_ps(av, x1, row[1]);
        }
        a0 = a0.add(R0);
        a1 = a1.wrapping_add(R1);
    }
    for (r, row) in acc.iter().enumerate().take(R0 + R1) {
        _mm512_storeu_ps(c[0].add(r * rsc), row[0]);
        _mm512_storeu_ps(c[1].add(r * rsc), row[1]);
    }
}

/// As [`tile512_wide`] for two tiles whose 8-wide vectors do not join
/// (tile `t`: inputs at `xb[2t]` and `xb[2t + 1]`, outputs at `c[2t]` and
/// `c[2t + 1]`: rows of 8 outputs, as on 8x8 planes), each 16-lane vector
/// loaded in two halves.
///
/// # Safety
/// AVX-512F present; as [`tile`] for each tile's pair of vectors.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tile512_wide_split<const R0: usize, const R1: usize>(
    offs: &[usize],
    a0: *const f32,
    a1: *const f32,
    xb: [*const f32; 4],
    c: [*mut f32; 4],
    rsc: usize,
    bias: *const f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; 12];
    if !bias.is_null() {
        for (r, row) in acc.iter_mut().enumerate().take(R0 + R1) {
            let b = _mm512_set1_ps(*bias.add(r));
            *row = [b, b];
        }
    }
    let (mut a0, mut a1) = (a0, a1);
    for &o in offs {
        // Masked 16-lane loads, not 8-lane ones: VEX-encoded 256-bit
        // instructions reach only 16 of the 32 registers, which made the
        // compiler spill accumulators. Masked-off lanes are not read.
        let x0 = _mm512_maskz_loadu_ps(0x00ff, xb[0].add(o));
        let x0 = _mm512_mask_loadu_ps(x0, 0xff00, xb[1].add(o).wrapping_sub(8));
        let x1 = _mm512_maskz_loadu_ps(0x00ff, xb[2].add(o));
        let x1 = _mm512_mask_loadu_ps(x1, 0xff00, xb[3].add(o).wrapping_sub(8));
        for (r, row) in acc.iter_mut().enumerate().take(R0) {
            let av = _mm512_set1_ps(*a0.add(r));
            row[0] = _mm512_fmadd_ps(av, x0, row[0]);
            row[1] = _mm512_fmadd_ps(av, x1, row[1]);
        }
        for (r, row) in acc[R0..].iter_mut().enumerate().take(R1) {
            let av = _mm512_set1_ps(*a1.add(r));
            row[0] = _mm512_fmadd_ps(av, x0, row[0]);
            row[1] = _mm512_fmadd_ps(av, x1, row[1]);
        }
        a0 = a0.add(R0);
        a1 = a1.wrapping_add(R1);
    }
    for (r, row) in acc.iter().enumerate().take(R0 + R1) {
        let at = |p: *mut f32| p.add(r * rsc);
        _mm512_mask_storeu_ps(at(c[0]), 0x00ff, row[0]);
        _mm512_mask_storeu_ps(at(c[1]).wrapping_sub(8), 0xff00, row[0]);
        _mm512_mask_storeu_ps(at(c[2]), 0x00ff, row[1]);
        _mm512_mask_storeu_ps(at(c[3]).wrapping_sub(8), 0xff00, row[1]);
    }
}

/// As [`wtile`] with `NV = 2`, for `R` (up to 12) rows on AVX-512: the
/// 16 output channels of a row in one vector, so each `gy^T` vector loaded
/// feeds `R` FMAs. Each element sums its pixels in [`wtile`]'s order: the
/// same bits.
///
/// # Safety
/// AVX-512F present; as [`wtile`] for `rp[..R]`, with 16 columns.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn wtile512<const R: usize>(
    span: crate::kernels::conv::direct::Span,
    rp: &[*const f32; 2 * crate::kernels::conv::direct::MR],
    b: *const f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [_mm512_setzero_ps(); R];
    let mut rows = [std::ptr::null::<f32>(); R];
    rows.copy_from_slice(&rp[..R]);
    let mut b = b;
    for _ in 0..span.rows {
        for q in 0..span.ow {
            let bv = _mm512_loadu_ps(b);
            for (row, &x) in acc.iter_mut().zip(rows.iter()) {
                *row = _mm512_fmadd_ps(_mm512_set1_ps(*x.add(q)), bv, *row);
            }
            b = b.add(16);
        }
        for x in rows.iter_mut() {
            *x = x.add(span.wp);
        }
    }
    for (r, &row) in acc.iter().enumerate() {
        let cp = c.add(r * rsc);
        _mm512_storeu_ps(cp, _mm512_add_ps(_mm512_loadu_ps(cp), row));
    }
}

/// As [`wtile512`] for 32 output channels: two 16-channel panels of
/// `gy^T` (`b0`, `b1`, each `16` floats a pixel) into columns `0..32` of
/// `c`'s rows, so each input broadcast feeds two FMAs (24 accumulators).
/// Each element sums its pixels in [`wtile`]'s order: the same bits.
///
/// # Safety
/// AVX-512F present; as [`wtile512`] for each panel, `c` rows of 32
/// floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn wtile512_wide<const R: usize>(
    span: crate::kernels::conv::direct::Span,
    rp: &[*const f32; 2 * crate::kernels::conv::direct::MR],
    b0: *const f32,
    b1: *const f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut rows = [std::ptr::null::<f32>(); R];
    rows.copy_from_slice(&rp[..R]);
    let (mut b0, mut b1) = (b0, b1);
    for _ in 0..span.rows {
        for q in 0..span.ow {
            let v0 = _mm512_loadu_ps(b0);
            let v1 = _mm512_loadu_ps(b1);
            for (row, &x) in acc.iter_mut().zip(rows.iter()) {
                let xv = _mm512_set1_ps(*x.add(q));
                row[0] = _mm512_fmadd_ps(xv, v0, row[0]);
                row[1] = _mm512_fmadd_ps(xv, v1, row[1]);
            }
            b0 = b0.add(16);
            b1 = b1.add(16);
        }
        for x in rows.iter_mut() {
            *x = x.add(span.wp);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &val) in row.iter().enumerate() {
            let cp = c.add(r * rsc + 16 * v);
            _mm512_storeu_ps(cp, _mm512_add_ps(_mm512_loadu_ps(cp), val));
        }
    }
}

/// `dst[16 p + j] = src[j stride + p]` for the pixels `p < n` and the
/// channels `j < real`, 0 for the channels `real..16`: 16 channels' rows of
/// output gradients into the weight gradient's pixel-major panel, 16 pixels
/// at a time through a transpose in registers (element by element, the
/// copy was about a sixth of DeepConvNet's conv2 weight gradient).
///
/// # Safety
/// AVX-512F present; `src + j stride + p` readable for `j < real`, `p < n`;
/// `dst` has `16 n` writable floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn panel16(src: *const f32, stride: usize, real: usize, n: usize, dst: *mut f32) {
    let mut p = 0;
    while p < n {
        let m = 16.min(n - p);
        let mask = if m == 16 { u16::MAX } else { (1u16 << m) - 1 };
        let rows: [__m512; 16] = std::array::from_fn(|j| {
            if j < real {
                _mm512_maskz_loadu_ps(mask, src.add(j * stride + p))
            } else {
                _mm512_setzero_ps()
            }
        });
        for (q, v) in super::winograd4::transpose16(rows)
            .into_iter()
            .enumerate()
            .take(m)
        {
            _mm512_storeu_ps(dst.add((p + q) * 16), v);
        }
        p += 16;
    }
}
