//! The GEMM micro-kernels on AVX-512 and AVX2 + FMA (see `kernels::gemm`).

use std::arch::x86_64::*;

/// `C[rows x cols] = alpha * Apanel Bpanel + beta * C` for one 8 x (16 * NV) tile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512<const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    alpha: f32,
    beta: f32,
    rows: usize,
    cols: usize,
) {
    const MR: usize = 8;
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for p in 0..kc {
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, slot) in bv.iter_mut().enumerate() {
            *slot = _mm512_loadu_ps(b.add(p * NV * 16 + v * 16));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(p * MR + r));
            for v in 0..NV {
                row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
            }
        }
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (v, &val) in row.iter().enumerate() {
            let col0 = v * 16;
            if col0 >= cols {
                break;
            }
            let left = cols - col0;
            let mask: __mmask16 = if left >= 16 {
                0xFFFF
            } else {
                (1u16 << left) - 1
            };
            let cp = c.offset(r as isize * rsc + col0 as isize);
            let mut out = _mm512_mul_ps(val, alpha_v);
            if beta != 0.0 {
                out = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, cp), beta_v, out);
            }
            _mm512_mask_storeu_ps(cp, mask, out);
        }
    }
}

/// `C[rows x cols] = alpha * Apanel Bpanel + beta * C` for one 6 x (8 * NV) tile.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx2<const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    alpha: f32,
    beta: f32,
    rows: usize,
    cols: usize,
) {
    const MR: usize = 6;
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    for p in 0..kc {
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, slot) in bv.iter_mut().enumerate() {
            *slot = _mm256_loadu_ps(b.add(p * NV * 8 + v * 8));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(p * MR + r));
            for v in 0..NV {
                row[v] = _mm256_fmadd_ps(av, bv[v], row[v]);
            }
        }
    }
    let alpha_v = _mm256_set1_ps(alpha);
    let beta_v = _mm256_set1_ps(beta);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (v, &val) in row.iter().enumerate() {
            let col0 = v * 8;
            if col0 >= cols {
                break;
            }
            let left = (cols - col0).min(8) as i32;
            let cp = c.offset(r as isize * rsc + col0 as isize);
            let mut out = _mm256_mul_ps(val, alpha_v);
            if left == 8 {
                if beta != 0.0 {
                    out = _mm256_fmadd_ps(_mm256_loadu_ps(cp), beta_v, out);
                }
                _mm256_storeu_ps(cp, out);
            } else {
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lanes);
                if beta != 0.0 {
                    out = _mm256_fmadd_ps(_mm256_maskload_ps(cp, mask), beta_v, out);
                }
                _mm256_maskstore_ps(cp, mask, out);
            }
        }
    }
}
