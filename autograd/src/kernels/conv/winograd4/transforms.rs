//! F(4x4, 3x3)'s transforms, 16 tiles or kernels at a time, one per lane.
//!
//! The points are 0, ±1, ±2 and ∞ (Lavin & Gray, 2015): `Bᵀ` (6 x 6) takes
//! a 6x6 input block to the transformed domain, `G` (6 x 3) a 3x3 kernel,
//! and `Aᵀ` (4 x 6) the products back to a 4x4 block of outputs. The
//! weight gradient uses the same three transposed: `A` takes a 4x4 block
//! of output gradients in, `Gᵀ` the summed products out to a 3x3 kernel.
//!
//! Each transform is written once as loops over the 16 lanes, and compiled
//! twice, for AVX-512 and for AVX2 + FMA ([`per_isa`]): the compiler turns
//! the lane loops into one or two vectors, and the arithmetic is the same
//! operations in the same order either way (no contraction into FMAs), so
//! the two give the same bits.

use super::{L, XI};
use crate::kernels::conv::Activation;
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa;

/// One lane vector: a value of each of 16 tiles (or kernels).
type Lanes = [f32; L];

/// Defines `unsafe fn $name(args)` running `$lanes(args)` compiled for
/// the instruction set the kernels use (AVX-512 or AVX2 + FMA).
macro_rules! per_isa {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $lanes:ident) => {
        $(#[$doc])*
        pub(super) unsafe fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $lanes($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) {
                    $lanes($($arg),*)
                }
                if isa::avx512() {
                    wide($($arg),*)
                } else {
                    narrow($($arg),*)
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            $lanes($($arg),*)
        }
    };
}

/// `G` on one column of a 3x3 kernel (`G` is 6 x 3).
#[inline(always)]
fn g_col(g0: f32, g1: f32, g2: f32) -> [f32; 6] {
    [
        0.25 * g0,
        (g0 + g1 + g2) * (-1.0 / 6.0),
        (g0 - g1 + g2) * (-1.0 / 6.0),
        g0 * (1.0 / 24.0) + g1 * (1.0 / 12.0) + g2 * (1.0 / 6.0),
        g0 * (1.0 / 24.0) - g1 * (1.0 / 12.0) + g2 * (1.0 / 6.0),
        g2,
    ]
}

/// [`g_col`] lane by lane.
#[inline(always)]
fn g_lanes(g0: Lanes, g1: Lanes, g2: Lanes) -> [Lanes; 6] {
    let mut t = [[0.0f32; L]; 6];
    for l in 0..L {
        let v = g_col(g0[l], g1[l], g2[l]);
        for (a, &va) in v.iter().enumerate() {
            t[a][l] = va;
        }
    }
    t
}

/// `Gᵀ s` for six lane vectors (`Gᵀ` is 3 x 6).
#[inline(always)]
fn gt(s: [Lanes; 6]) -> [Lanes; 3] {
    let mut t = [[0.0f32; L]; 3];
    for l in 0..L {
        let [s0, s1, s2, s3, s4, s5] = [s[0][l], s[1][l], s[2][l], s[3][l], s[4][l], s[5][l]];
        let (p, q) = ((s1 + s2) * (1.0 / 6.0), (s3 + s4) * (1.0 / 24.0));
        let (r, u) = ((s2 - s1) * (1.0 / 6.0), (s3 - s4) * (1.0 / 12.0));
        t[0][l] = 0.25 * s0 - p + q;
        t[1][l] = r + u;
        t[2][l] = 4.0 * q - p + s5;
    }
    t
}

/// `Bᵀ z` for six lane vectors (`Bᵀ` is 6 x 6).
#[inline(always)]
fn bt(z: [Lanes; 6]) -> [Lanes; 6] {
    let mut t = [[0.0f32; L]; 6];
    for l in 0..L {
        let [d0, d1, d2, d3, d4, d5] = [z[0][l], z[1][l], z[2][l], z[3][l], z[4][l], z[5][l]];
        let (p, q) = (d4 - 4.0 * d2, 4.0 * d1 - d3);
        let (r, s) = (d4 - d2, 2.0 * (d1 - d3));
        t[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        t[1][l] = p - q;
        t[2][l] = p + q;
        t[3][l] = r - s;
        t[4][l] = r + s;
        t[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    t
}

/// `Aᵀ z` for six lane vectors (`Aᵀ` is 4 x 6).
#[inline(always)]
fn at(z: [Lanes; 6]) -> [Lanes; 4] {
    let mut t = [[0.0f32; L]; 4];
    for l in 0..L {
        let [m0, m1, m2, m3, m4, m5] = [z[0][l], z[1][l], z[2][l], z[3][l], z[4][l], z[5][l]];
        let (a, b) = (m1 + m2, m1 - m2);
        let (c, d) = (m3 + m4, m3 - m4);
        t[0][l] = m0 + a + c;
        t[1][l] = b + 2.0 * d;
        t[2][l] = a + 4.0 * c;
        t[3][l] = b + 8.0 * d + m5;
    }
    t
}

/// `A y` for four lane vectors (`A` is 6 x 4).
#[inline(always)]
fn a6(y: [Lanes; 4]) -> [Lanes; 6] {
    let mut t = [[0.0f32; L]; 6];
    for l in 0..L {
        let [y0, y1, y2, y3] = [y[0][l], y[1][l], y[2][l], y[3][l]];
        let (e, o) = (y0 + y2, y1 + y3);
        let (e4, o2) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        t[0][l] = y0;
        t[1][l] = e + o;
        t[2][l] = e - o;
        t[3][l] = e4 + o2;
        t[4][l] = e4 - o2;
        t[5][l] = y3;
    }
    t
}

per_isa! {
    /// `G g Gᵀ` of 16 kernels (lane `l` of `gl[e]`: tap `e = 3 row +
    /// column`), position `ξ` stored at `dst + ξ stride` (16 floats).
    ///
    /// # Safety
    /// `dst + ξ stride` has 16 writable floats for every `ξ < 36`.
    fn weight_transform(gl: &[Lanes; 9], dst: *mut f32, stride: usize)
        => weight_transform_lanes
}

#[inline(always)]
unsafe fn weight_transform_lanes(gl: &[Lanes; 9], dst: *mut f32, stride: usize) {
    // G along each column of the kernels, then along each row.
    // Not `array::from_fn`: that was compiled out of line, without AVX.
    let cols = [
        g_lanes(gl[0], gl[3], gl[6]),
        g_lanes(gl[1], gl[4], gl[7]),
        g_lanes(gl[2], gl[5], gl[8]),
    ];
    for (a, row0) in cols[0].iter().enumerate() {
        let row = g_lanes(*row0, cols[1][a], cols[2][a]);
        for (b, v) in row.iter().enumerate() {
            // A whole vector in one store, even for a partial group of
            // kernels (the caller's rows have room): a copy of fewer floats
            // is a memcpy call (1% of GoogLeNet's step).
            dst.add((a * 6 + b) * stride)
                .cast::<Lanes>()
                .write_unaligned(*v);
        }
    }
}

per_isa! {
    /// `Bᵀ d B` of 16 tiles' 6x6 blocks (`d[e L + l]`: element `e = 6 row
    /// + column` of tile `l`), position `ξ` stored at `dst + ξ stride` (16
    /// floats).
    ///
    /// # Safety
    /// `dst + ξ stride` has 16 writable floats for every `ξ < 36`.
    fn input_transform(d: &[f32; XI * L], dst: *mut f32, stride: usize) => input_transform_lanes
}

// `rows[a][b]` by index: iterators and `array::map` here were not inlined
// into the vector code.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn input_transform_lanes(d: &[f32; XI * L], dst: *mut f32, stride: usize) {
    let lane = |e: usize| -> Lanes { d[e * L..][..L].try_into().expect("a lane vector") };
    // Along each row of the block, then along each column. Array literals,
    // not `array::from_fn` (its outer closure was compiled out of line,
    // without AVX: DeepConvNet's training step spent 4% in it) nor arrays
    // filled after zeroing (memset calls).
    let row = |a: usize| {
        let e = 6 * a;
        bt([
            lane(e),
            lane(e + 1),
            lane(e + 2),
            lane(e + 3),
            lane(e + 4),
            lane(e + 5),
        ])
    };
    let rows = [row(0), row(1), row(2), row(3), row(4), row(5)];
    for b in 0..6 {
        let col = bt([
            rows[0][b], rows[1][b], rows[2][b], rows[3][b], rows[4][b], rows[5][b],
        ]);
        for (a, v) in col.iter().enumerate() {
            std::ptr::copy_nonoverlapping(v.as_ptr(), dst.add((a * 6 + b) * stride), L);
        }
    }
}

per_isa! {
    /// `act(Aᵀ m A + bias)` of 16 tiles: position `ξ` of the products read
    /// from `src + ξ stride` (16 floats), output `(i, j)` of each tile into
    /// `out[4 i + j]`, one lane a tile.
    ///
    /// # Safety
    /// `src + ξ stride` has 16 readable floats for every `ξ < 36`.
    fn output_transform(
        src: *const f32,
        stride: usize,
        bias: f32,
        act: Activation,
        out: &mut [Lanes; 16]
    ) => output_transform_lanes
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn output_transform_lanes(
    src: *const f32,
    stride: usize,
    bias: f32,
    act: Activation,
    out: &mut [Lanes; 16],
) {
    let lane = |xi: usize| -> Lanes { std::ptr::read_unaligned(src.add(xi * stride).cast()) };
    // Along each row of the 6x6 products (6 -> 4), then each column.
    let rows: [[Lanes; 4]; 6] =
        std::array::from_fn(|a| at(std::array::from_fn(|b| lane(a * 6 + b))));
    let relu = act == Activation::Relu;
    for j in 0..4 {
        let col = at(std::array::from_fn(|a| rows[a][j]));
        for (i, v) in col.iter().enumerate() {
            let o = &mut out[i * 4 + j];
            for l in 0..L {
                let s = v[l] + bias;
                // max(s, 0) with NaN to 0, as Activation::apply.
                o[l] = if !relu || s > 0.0 { s } else { 0.0 };
            }
        }
    }
}

per_isa! {
    /// `A dy Aᵀ` of 16 tiles' 4x4 blocks of output gradients (`d[e L + l]`:
    /// element `e = 4 row + column` of tile `l`), position `ξ` stored at
    /// `dst + ξ stride` (16 floats).
    ///
    /// # Safety
    /// `dst + ξ stride` has 16 writable floats for every `ξ < 36`.
    fn grad_transform(d: &[f32; 16 * L], dst: *mut f32, stride: usize) => grad_transform_lanes
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn grad_transform_lanes(d: &[f32; 16 * L], dst: *mut f32, stride: usize) {
    let lane = |e: usize| -> Lanes { d[e * L..][..L].try_into().expect("a lane vector") };
    // Array literals, not `array::from_fn` (compiled out of line, without
    // AVX: 3% of DeepConvNet conv3's step with F(4x4, 3x3)) nor an array
    // filled after zeroing (a memset call per 16 tiles).
    let row = |i: usize| {
        a6([
            lane(4 * i),
            lane(4 * i + 1),
            lane(4 * i + 2),
            lane(4 * i + 3),
        ])
    };
    let rows = [row(0), row(1), row(2), row(3)];
    for b in 0..6 {
        let col = a6([rows[0][b], rows[1][b], rows[2][b], rows[3][b]]);
        for (a, v) in col.iter().enumerate() {
            std::ptr::copy_nonoverlapping(v.as_ptr(), dst.add((a * 6 + b) * stride), L);
        }
    }
}

per_isa! {
    /// `Gᵀ S G` of 16 kernels: position `ξ` of the summed products read
    /// from `src + ξ stride` (16 floats), tap `e = 3 row + column` of each
    /// kernel into `out[e]`, one lane a kernel.
    ///
    /// # Safety
    /// `src + ξ stride` has 16 readable floats for every `ξ < 36`.
    fn kernel_transform(src: *const f32, stride: usize, out: &mut [Lanes; 9])
        => kernel_transform_lanes
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn kernel_transform_lanes(src: *const f32, stride: usize, out: &mut [Lanes; 9]) {
    let lane = |xi: usize| -> Lanes { std::ptr::read_unaligned(src.add(xi * stride).cast()) };
    // Plain arrays, not `array::from_fn`: that was compiled out of line
    // here (VGG-16-BN's step spent 1.6% in it, and 3.8% in this transform).
    let row = |a: usize| {
        let r = 6 * a;
        gt([
            lane(r),
            lane(r + 1),
            lane(r + 2),
            lane(r + 3),
            lane(r + 4),
            lane(r + 5),
        ])
    };
    let rows = [row(0), row(1), row(2), row(3), row(4), row(5)];
    for v in 0..3 {
        let col = gt([
            rows[0][v], rows[1][v], rows[2][v], rows[3][v], rows[4][v], rows[5][v],
        ]);
        for (u, c) in col.iter().enumerate() {
            out[u * 3 + v] = *c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: [f32; 6] = [0.5, -1.25, 2.0, 0.75, -3.0, 1.5];
    const G: [f32; 3] = [0.3, -0.7, 1.1];

    fn splat<const N: usize>(v: [f32; N]) -> [Lanes; N] {
        v.map(|x| [x; L])
    }

    /// The transforms at the points 0, ±1, ±2, ∞ compute a 1-D
    /// correlation: `Aᵀ [(G g) ⊙ (Bᵀ d)]` = `y[i] = Σ_k d[i + k] g[k]`.
    #[test]
    fn one_dimensional_transforms_correlate() {
        let u = g_col(G[0], G[1], G[2]);
        let v = bt(splat(D));
        let m: [Lanes; 6] = std::array::from_fn(|i| [u[i] * v[i][0]; L]);
        let y = at(m);
        for i in 0..4 {
            let want: f32 = (0..3).map(|k| D[i + k] * G[k]).sum();
            assert!(
                (y[i][0] - want).abs() < 1e-5,
                "y[{i}] = {}, want {want}",
                y[i][0]
            );
        }
    }

    /// The transposed ones give that correlation's gradient with respect
    /// to the kernel: `Gᵀ [(A dy) ⊙ (Bᵀ d)]` = `dg[k] = Σ_i dy[i] d[i + k]`.
    #[test]
    fn one_dimensional_kernel_gradient() {
        let dy = [0.4f32, -0.9, 1.3, 0.2];
        let z = a6(splat(dy));
        let v = bt(splat(D));
        let s: [Lanes; 6] = std::array::from_fn(|i| [z[i][0] * v[i][0]; L]);
        let dg = gt(s);
        for k in 0..3 {
            let want: f32 = (0..4).map(|i| dy[i] * D[i + k]).sum();
            assert!(
                (dg[k][0] - want).abs() < 1e-5,
                "dg[{k}] = {}, want {want}",
                dg[k][0]
            );
        }
    }
}
