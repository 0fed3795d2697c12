//! F(4x4, 3x3)'s weight gradient: the forward transforms transposed.
//!
//! With `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for a tile, the gradient of the
//! kernel is `Gᵀ [(A dy Aᵀ) ⊙ (Bᵀ d B)] G`, summed over the tiles of every
//! sample. The sum goes inside the transforms: per position `ξ`,
//! `S_ξ (O x C) = Σ_p Z_ξ[:, p] V_ξ[:, p]ᵀ` with `Z = A dy Aᵀ` and
//! `V = Bᵀ d B` of tile `p`, a product whose inner dimension is the tiles,
//! and `dW = Gᵀ S G` once at the end: 36 multiply-adds per tile and channel
//! pair where the direct kernel has 144. Tiles go in passes of at most
//! about 32 MiB of `V` and `Z`; the transforms of a pass run 16 tiles a
//! part, the 36 products one `ξ` a part.

use super::transforms::{grad_transform, input_transform, kernel_transform};
use super::{gather, Tile, L, XI};
use crate::kernels::conv::{gemm, ConvGeom};
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;

/// `dW [O, C, 3, 3]` of a convolution where
/// `winograd4::can_run` holds (at least one sample), from its input `x` and the
/// gradient of its output `gy`.
pub(crate) fn weight_grad(x: &[f32], gy: &[f32], g: &ConvGeom) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.c * g.h * g.w, "winograd4: input length");
    assert_eq!(
        gy.len(),
        g.n * g.o * g.ohw(),
        "winograd4: output gradient length"
    );
    let (c, o) = (g.c, g.o);
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let tiles = g.n * th * tw;
    let per_pass = ((8usize << 20) / (XI * (c + o))).max(L) / L * L;
    let pass = per_pass.min(tiles.next_multiple_of(L));
    let (vlen, zlen, slen) = (XI * c * pass, XI * o * pass, XI * o * c);
    let mut dw = vec![0.0f32; o * c * 9];
    // S is followed by 16 floats: the kernel transform reads whole lane
    // vectors past a row's last channel.
    with_scratch(vlen + zlen + slen + L, |buf: &mut [f32]| {
        let (v, rest) = buf.split_at_mut(vlen);
        let (z, s) = rest.split_at_mut(zlen);
        for (i, t0) in (0..tiles).step_by(pass).enumerate() {
            let used = pass.min(tiles - t0);
            // Columns past `used` (to a multiple of 16) hold zeros: the
            // lanes past the last tile gather zeros.
            let cols = used.next_multiple_of(L);
            transform_pass(x, gy, g, t0..t0 + used, [th, tw], pass, v, z);
            let (vr, zr, sa) = (&*v, &*z, s.as_mut_ptr() as usize);
            team::claim(XI, |xi| {
                // SAFETY: S_ξ is `O C` floats of `s`, this part's only.
                let sx = unsafe {
                    std::slice::from_raw_parts_mut((sa as *mut f32).add(xi * o * c), o * c)
                };
                let zx = &zr[xi * o * pass..][..o * pass];
                let vx = &vr[xi * c * pass..][..c * pass];
                // S_ξ (+)= Z_ξ (O x cols) V_ξᵀ (cols x C).
                gemm(o, cols, c, zx, pass, 1, vx, 1, pass, sx, c, i > 0, 1);
            });
        }
        // dW = Gᵀ S G, 16 input channels at a time, output channels split
        // over the threads.
        let (sr, da) = (&*s, dw.as_mut_ptr() as usize);
        team::claim(o, |k| {
            let mut out = [[0.0f32; L]; 9];
            for c0 in (0..c).step_by(L) {
                // SAFETY: 36 rows `O C` apart from `k C + c0`, 16 floats
                // each inside `s` (16 floats of slack past S).
                unsafe { kernel_transform(sr[k * c + c0..].as_ptr(), o * c, &mut out) };
                for l in 0..L.min(c - c0) {
                    for (e, tap) in out.iter().enumerate() {
                        // SAFETY: row k of dW, this part's only.
                        unsafe { (da as *mut f32).add((k * c + c0 + l) * 9 + e).write(tap[l]) };
                    }
                }
            }
        });
    });
    dw
}

/// `V` and `Z` of the tiles `range` (one pass), 16 tiles a part: `V_ξ` of
/// input channel `ci` at `v[(ξ C + ci) pass + column]`, `Z_ξ` of output
/// channel `k` at `z[(ξ O + k) pass + column]`.
#[allow(clippy::too_many_arguments)]
fn transform_pass(
    x: &[f32],
    gy: &[f32],
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    [th, tw]: [usize; 2],
    pass: usize,
    v: &mut [f32],
    z: &mut [f32],
) {
    let (c, o) = (g.c, g.o);
    let chunks = range.len().div_ceil(L);
    let (va, za) = (v.as_mut_ptr() as usize, z.as_mut_ptr() as usize);
    team::claim(chunks, |q| {
        let (mut d, mut dy) = ([0.0f32; XI * L], [0.0f32; 16 * L]);
        let first = range.start + q * L;
        let lanes: Vec<Tile> = (first..range.end.min(first + L))
            .map(|p| Tile::at(p, g, th, tw))
            .collect();
        for ci in 0..c {
            gather(x, g, ci, &lanes, &mut d);
            // SAFETY: 36 rows `C pass` apart from `ci pass + 16 q`, 16
            // floats each (`16 q + 16 <= pass`), this part's columns.
            unsafe { input_transform(&d, (va as *mut f32).add(ci * pass + q * L), c * pass) };
        }
        for k in 0..o {
            gather_grad(gy, g, k, &lanes, &mut dy);
            // SAFETY: as above, in Z.
            unsafe { grad_transform(&dy, (za as *mut f32).add(k * pass + q * L), o * pass) };
        }
    });
}

/// Tile `l`'s 4x4 block of output gradients of channel `k` into lane `l`
/// of `d` (`d[e L + l]`, `e = 4 row + column`), zeros past the plane's
/// edges and in the lanes past `tiles`.
fn gather_grad(gy: &[f32], g: &ConvGeom, k: usize, tiles: &[Tile], d: &mut [f32; 16 * L]) {
    assert!(tiles.len() <= L, "winograd4: more tiles than lanes");
    let (oh, ow) = (g.oh, g.ow);
    let dp = d.as_mut_ptr();
    for (l, t) in tiles.iter().enumerate() {
        let plane = &gy[(t.n * g.o + k) * oh * ow..][..oh * ow];
        let (rows, cols) = (4.min(oh - t.oy), 4.min(ow - t.ox));
        let block = &plane[t.oy * ow + t.ox..][..(rows - 1) * ow + cols];
        for i in 0..4 {
            for j in 0..4 {
                let v = if i < rows && j < cols {
                    // SAFETY: `i ow + j <= (rows - 1) ow + cols - 1`.
                    unsafe { *block.get_unchecked(i * ow + j) }
                } else {
                    0.0
                };
                // SAFETY: `(4 i + j) L + l < 16 L` (`l < L`, asserted above).
                unsafe { dp.add((i * 4 + j) * L + l).write(v) };
            }
        }
    }
    for l in tiles.len()..L {
        for e in 0..16 {
            d[e * L + l] = 0.0;
        }
    }
}
