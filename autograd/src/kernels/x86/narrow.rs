//! The narrow-product kernels on AVX2 + FMA: `dots` (see `kernels::narrow`),
//! `R` rows of the long operand against `S` short columns, `R x S` dot
//! products at once, each on its own 8-lane accumulator; `panel16` (see
//! `kernels::few_cols`), rows against a 16-column panel.

use std::arch::x86_64::*;

/// `out[r][j] = sum_p l[r * rsl + p] * s[j * k + p]` for `p < k`.
///
/// # Safety
/// Rows `l + r * rsl` (`r < R`) and `s + j * k` (`j < S`) hold `k` floats
/// each; the CPU has AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dots<const R: usize, const S: usize>(
    l: *const f32,
    rsl: usize,
    s: *const f32,
    k: usize,
) -> [[f32; S]; R] {
    let mut acc = [[_mm256_setzero_ps(); S]; R];
    let mut p = 0;
    while p + 8 <= k {
        let mut sv = [_mm256_setzero_ps(); S];
        for (j, v) in sv.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(s.add(j * k + p));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let lv = _mm256_loadu_ps(l.add(r * rsl + p));
            for (a, &v) in row.iter_mut().zip(&sv) {
                *a = _mm256_fmadd_ps(lv, v, *a);
            }
        }
        p += 8;
    }
    let mut out = [[0.0f32; S]; R];
    for (r, (row, o)) in acc.iter().zip(out.iter_mut()).enumerate() {
        for (j, (&a, o)) in row.iter().zip(o.iter_mut()).enumerate() {
            let q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
            let q = _mm_add_ss(q, _mm_movehdup_ps(q));
            let mut sum = _mm_cvtss_f32(q);
            for pp in p..k {
                sum += *l.add(r * rsl + pp) * *s.add(j * k + pp);
            }
            *o = sum;
        }
    }
    out
}

/// `out[r][j] = sum_p a[r * rsa + p] * bp[16 p + j]` for `r < R`, `j < 16`:
/// `R` rows of the wide operand, read in place, against one 16-wide panel
/// of the few-columns operand (`k x 16`, row-major, zero-padded). Each
/// weight is broadcast once and meets 16 columns in two FMAs.
///
/// # Safety
/// Rows `a + r * rsa` (`r < R`) hold `k` floats; `bp` holds `16 k`; the
/// CPU has AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn panel16<const R: usize>(
    a: *const f32,
    rsa: usize,
    bp: *const f32,
    k: usize,
    out: &mut [[f32; 16]; R],
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        let b0 = _mm256_loadu_ps(bp.add(16 * p));
        let b1 = _mm256_loadu_ps(bp.add(16 * p + 8));
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(r * rsa + p));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    for (row, o) in acc.iter().zip(out.iter_mut()) {
        _mm256_storeu_ps(o.as_mut_ptr(), row[0]);
        _mm256_storeu_ps(o.as_mut_ptr().add(8), row[1]);
    }
}

/// [`panel16`] with AVX-512: a panel row is one 16-lane vector, so twice
/// the rows a call (`R` up to 24 accumulators).
///
/// # Safety
/// As [`panel16`]; the CPU has AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn panel16_512<const R: usize>(
    a: *const f32,
    rsa: usize,
    bp: *const f32,
    k: usize,
    out: &mut [[f32; 16]; R],
) {
    let mut acc = [_mm512_setzero_ps(); R];
    for p in 0..k {
        let bv = _mm512_loadu_ps(bp.add(16 * p));
        for (r, row) in acc.iter_mut().enumerate() {
            *row = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(r * rsa + p)), bv, *row);
        }
    }
    for (row, o) in acc.iter().zip(out.iter_mut()) {
        _mm512_storeu_ps(o.as_mut_ptr(), *row);
    }
}
