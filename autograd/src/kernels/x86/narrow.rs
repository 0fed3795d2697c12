//! The narrow-product kernel on AVX2 + FMA (see `kernels::narrow`): `R`
//! rows of the long operand against `S` short columns, `R x S` dot products
//! at once, each on its own 8-lane accumulator.

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
