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
