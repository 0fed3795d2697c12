//! F(4x4, 3x3)'s weight gradient: the forward transforms transposed.
//!
//! With `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for a tile, the gradient of the
//! kernel is `Gᵀ [(A dy Aᵀ) ⊙ (Bᵀ d B)] G`, summed over the tiles of every
//! sample. The sum goes inside the transforms: per position `ξ`,
//! `S_ξ (O x C) = Σ_p Z_ξ[:, p] V_ξ[:, p]ᵀ` with `Z = A dy Aᵀ` and
//! `V = Bᵀ d B` of tile `p`, a product whose inner dimension is the tiles,
//! and `dW = Gᵀ S G` once at the end: 36 multiply-adds per tile and channel
//! pair where the direct kernel has 144.
//!
//! Two ways to run the sum: up to 128 channels, [`blocked`] (each thread
//! its own `S`, blocks of tiles transformed and multiplied while in its
//! cache, on the direct weight gradient's micro-kernels); with more,
//! [`by_passes`] (`V` and `Z` of many tiles through memory, one `ξ` a
//! thread through `conv::gemm`), where one `S` per thread would not fit.

use super::transforms::{grad_transform, input_transform, kernel_transform};
use super::{gather, LaneGroup, Tile, L, SKEW, XI};
use crate::kernels::conv::direct::{rows_per_call, wtile_dispatch, wtile_dispatch_wide, Span, MR};
use crate::kernels::conv::{gemm, ConvGeom};
use crate::kernels::isa;
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
    if blocked_fits(g) {
        blocked(x, gy, g)
    } else {
        by_passes(x, gy, g)
    }
}

/// Whether each thread's sums `S` (`36 C O'` floats, `O'` the output
/// channels rounded up to 16) are small enough for [`blocked`]: up to 128
/// input and output channels (2.4 MB a thread). Past that [`by_passes`]
/// measured faster (256 channels on 14x14 and 8x8: the step 1.3x; 512:
/// 4-10x, its sums no longer in any cache).
pub(super) fn blocked_fits(g: &ConvGeom) -> bool {
    g.c * g.o.next_multiple_of(L) <= 128 * 128
}

/// Tiles per block of [`blocked`]: `V` and `Z` of a block (`36 (C + O')`
/// floats a tile) in about 1 MiB (measured against half and twice that:
/// level and 10-25% slower), 16 to 128 tiles, and few enough that every
/// thread gets a block.
fn block_tiles(g: &ConvGeom, tiles: usize) -> usize {
    let op = g.o.next_multiple_of(L);
    let by_cache = ((1usize << 18) / (XI * (g.c + op))).clamp(L, 128) / L * L;
    let by_threads = tiles.div_ceil(team::threads()).next_multiple_of(L);
    by_cache.min(by_threads)
}

/// [`weight_grad`] with the sums kept per thread: each thread takes a run
/// of blocks of tiles, transforms a block's inputs (`V`, tiles in the
/// lanes) and output gradients (`Z`, 16 output channels in the lanes, so
/// they land as the micro-kernel's column panels), and adds the block's
/// 36 products into its own `S` while both are in its cache; the threads'
/// sums are added at the end. The products run on the direct weight
/// gradient's micro-kernels: rows are input channels broadcast from `V_ξ`,
/// columns 16 or 32 output channels of `Z_ξ`, the reduction the block's
/// tiles.
fn blocked(x: &[f32], gy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (c, o) = (g.c, g.o);
    let op = o.next_multiple_of(L);
    let panels = op / L;
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let tiles = g.n * th * tw;
    let tb = block_tiles(g, tiles);
    let blocks = tiles.div_ceil(tb);
    let threads = team::threads().min(blocks).max(1);
    let slen = XI * c * op;
    let mut partials = team::map(threads, |t| {
        let mut s = vec![0.0f32; slen];
        with_scratch(XI * (c * tb + op * tb + 2 * SKEW), |buf: &mut [f32]| {
            let (v, z) = buf.split_at_mut(XI * (c * tb + SKEW));
            for b in t * blocks / threads..(t + 1) * blocks / threads {
                let first = b * tb;
                let info: Vec<Tile> = (first..tiles.min(first + tb))
                    .map(|p| Tile::at(p, g, th, tw))
                    .collect();
                transform_block(x, gy, g, &info, tb, v, z);
                block_products(g, info.len(), tb, v, z, &mut s);
            }
        });
        s
    });
    let mut s = partials.swap_remove(0);
    for p in &partials {
        team::for_chunks(&mut s, 1 << 14, |i, part| {
            let src = &p[i << 14..][..part.len()];
            part.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
        });
    }
    // dW from `S_ξ` (C x O, row `ci`, column `k`): 16 output channels a
    // transform, one panel a part.
    let mut dw = vec![0.0f32; o * c * 9];
    let (sr, da) = (&*s, dw.as_mut_ptr() as usize);
    team::claim(panels, |p| {
        let k0 = p * L;
        let mut out = [[0.0f32; L]; 9];
        for ci in 0..c {
            // SAFETY: 36 rows `C O'` apart from `ci O' + k0`, 16 floats each
            // (`k0 + 16 <= O'`).
            unsafe { kernel_transform(sr[ci * op + k0..].as_ptr(), c * op, &mut out) };
            for l in 0..L.min(o - k0) {
                for (e, tap) in out.iter().enumerate() {
                    // SAFETY: row `k0 + l` of dW, this part's only.
                    unsafe {
                        (da as *mut f32)
                            .add(((k0 + l) * c + ci) * 9 + e)
                            .write(tap[l])
                    };
                }
            }
        }
    });
    dw
}

/// `V` and `Z` of one block of [`blocked`]: `V_ξ` of input channel `ci`,
/// tile `t` at `v[ξ (C tb + SKEW) + ci tb + t]`; `Z_ξ` of output channel
/// `16 p + l` at `z[ξ (P tb 16 + SKEW) + (p tb + t) 16 + l]` (`P` panels of
/// 16 channels, zeros in the channels past `O`; [`SKEW`] keeps the 36
/// vectors of a transform out of one L1 set where `C tb` or `P tb 16` is a
/// multiple of 4 KiB).
fn transform_block(
    x: &[f32],
    gy: &[f32],
    g: &ConvGeom,
    info: &[Tile],
    tb: usize,
    v: &mut [f32],
    z: &mut [f32],
) {
    let c = g.c;
    let panels = g.o.div_ceil(L);
    let (vs, zs) = (c * tb + SKEW, panels * tb * L + SKEW);
    assert!(info.len() <= tb && v.len() >= XI * vs && z.len() >= XI * zs);
    let mut d = [0.0f32; XI * L];
    let groups: Vec<LaneGroup> = info.chunks(L).map(|t| LaneGroup::new(g, t)).collect();
    for ci in 0..c {
        for (lanes, q) in groups.iter().zip((0..info.len()).step_by(L)) {
            gather(x, g, ci, lanes, &mut d);
            // SAFETY: 36 rows `vs` apart from `ci tb + q`, 16 floats each
            // (`q + 16 <= tb`: `tb` is a multiple of 16 above `q`), inside
            // `v` (asserted above).
            unsafe { input_transform(&d, v[ci * tb + q..].as_mut_ptr(), vs) };
        }
    }
    let mut dy = [0.0f32; 16 * L];
    for (t, tile) in info.iter().enumerate() {
        for p in 0..panels {
            gather_grad_channels(gy, g, tile, p * L, &mut dy);
            // SAFETY: 36 rows `zs` apart from `(p tb + t) 16`, 16 floats
            // each, inside `z` (asserted above).
            unsafe { grad_transform(&dy, z[(p * tb + t) * L..].as_mut_ptr(), zs) };
        }
    }
}

/// `S_ξ (C x O') += V_ξ (C x tiles) Z_ξᵀ (tiles x O')` for every `ξ`,
/// over the block's `used` tiles.
fn block_products(g: &ConvGeom, used: usize, tb: usize, v: &[f32], z: &[f32], s: &mut [f32]) {
    let c = g.c;
    let op = g.o.next_multiple_of(L);
    let panels = op / L;
    let (vs, zs) = (c * tb + SKEW, op * tb + SKEW);
    assert!(used <= tb && v.len() >= XI * vs && z.len() >= XI * zs);
    assert_eq!(s.len(), XI * c * op, "winograd4: sums");
    let step = rows_per_call();
    let wide = isa::avx512();
    let span = Span {
        rows: 1,
        ow: used,
        wp: 0,
    };
    for xi in 0..XI {
        let vx = &v[xi * vs..][..c * tb];
        let zx = &z[xi * zs..][..op * tb];
        let sx = &mut s[xi * c * op..][..c * op];
        for c0 in (0..c).step_by(step) {
            let rows = step.min(c - c0);
            let mut rp = [std::ptr::null::<f32>(); 2 * MR];
            for (r, ptr) in rp.iter_mut().enumerate().take(rows) {
                *ptr = vx[(c0 + r) * tb..].as_ptr();
            }
            let mut p = 0;
            while p < panels {
                let out = sx[c0 * op + p * L..].as_mut_ptr();
                // SAFETY: row pointer `r` reads `used <= tb` floats of row
                // `c0 + r` of V_ξ; each panel of Z_ξ holds `used` runs of
                // 16 floats; the sums add into rows `c0..c0 + rows` (of
                // `op` floats) at columns `16 p..16 p + 16` (or `+ 32`).
                unsafe {
                    if wide && p + 1 < panels {
                        let b = [zx[p * tb * L..].as_ptr(), zx[(p + 1) * tb * L..].as_ptr()];
                        wtile_dispatch_wide(rows, span, &rp, b, out, op);
                        p += 2;
                    } else {
                        wtile_dispatch(rows, L, span, &rp, zx[p * tb * L..].as_ptr(), out, op);
                        p += 1;
                    }
                }
            }
        }
    }
}

/// The 4x4 block of output gradients under `tile` of output channels `k0`
/// to `k0 + 15`, channel `k0 + l` into lane `l` of `d` (`d[e L + l]`, `e =
/// 4 row + column`), zeros past the plane's edges and past channel `O`.
fn gather_grad_channels(gy: &[f32], g: &ConvGeom, t: &Tile, k0: usize, d: &mut [f32; 16 * L]) {
    let (ohw, ow) = (g.ohw(), g.ow);
    let lanes = L.min(g.o - k0);
    let (rows, cols) = (4.min(g.oh - t.oy), 4.min(ow - t.ox));
    let start = (t.n * g.o + k0) * ohw + t.oy * ow + t.ox;
    let block = &gy[start..][..(lanes - 1) * ohw + (rows - 1) * ow + cols];
    #[cfg(target_arch = "x86_64")]
    if isa::avx512() {
        // SAFETY: AVX-512F is present; channel l's rows i < rows and
        // columns j < cols are `block[l ohw + i ow + j]`, inside `block`;
        // `d` has 16 L floats.
        return unsafe {
            crate::kernels::x86::winograd4::gather_grad_blocks(
                block.as_ptr(),
                ohw,
                ow,
                [lanes, rows, cols],
                d.as_mut_ptr(),
            )
        };
    }
    let dp = d.as_mut_ptr();
    for l in 0..lanes {
        for i in 0..4 {
            for j in 0..4 {
                let v = if i < rows && j < cols {
                    // SAFETY: `l ohw + i ow + j` is at most the block's
                    // last index.
                    unsafe { *block.get_unchecked(l * ohw + i * ow + j) }
                } else {
                    0.0
                };
                // SAFETY: `(4 i + j) L + l < 16 L`.
                unsafe { dp.add((i * 4 + j) * L + l).write(v) };
            }
        }
    }
    for l in lanes..L {
        for e in 0..16 {
            d[e * L + l] = 0.0;
        }
    }
}

/// [`weight_grad`] for many channels: `V` and `Z` of up to about 32 MiB of
/// tiles at a time in memory, then per `ξ` one product over those tiles
/// through `conv::gemm`, one `ξ` a part.
fn by_passes(x: &[f32], gy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (c, o) = (g.c, g.o);
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let tiles = g.n * th * tw;
    let per_pass = ((8usize << 20) / (XI * (c + o))).max(L) / L * L;
    let pass = per_pass.min(tiles.next_multiple_of(L));
    // The 36 matrices of each a cache line more than their size apart
    // ([`SKEW`]): `C pass`, `O pass` and `O C` are multiples of 4 KiB at
    // 256 and 512 channels.
    let (vs, zs, ss) = (c * pass + SKEW, o * pass + SKEW, o * c + SKEW);
    let (vlen, zlen, slen) = (XI * vs, XI * zs, XI * ss);
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
            transform_pass(x, gy, g, t0..t0 + used, [th, tw], [pass, vs, zs], v, z);
            let (vr, zr, sa) = (&*v, &*z, s.as_mut_ptr() as usize);
            team::claim(XI, |xi| {
                // SAFETY: S_ξ is `O C` floats of `s`, this part's only.
                let sx =
                    unsafe { std::slice::from_raw_parts_mut((sa as *mut f32).add(xi * ss), o * c) };
                let zx = &zr[xi * zs..][..o * pass];
                let vx = &vr[xi * vs..][..c * pass];
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
                // SAFETY: 36 rows `ss` apart from `k C + c0`, 16 floats
                // each inside `s` (16 floats of slack past S).
                unsafe { kernel_transform(sr[k * c + c0..].as_ptr(), ss, &mut out) };
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
/// input channel `ci` at `v[ξ vs + ci pass + column]`, `Z_ξ` of output
/// channel `k` at `z[ξ zs + k pass + column]`.
#[allow(clippy::too_many_arguments)]
fn transform_pass(
    x: &[f32],
    gy: &[f32],
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    [th, tw]: [usize; 2],
    [pass, vs, zs]: [usize; 3],
    v: &mut [f32],
    z: &mut [f32],
) {
    let (c, o) = (g.c, g.o);
    assert!(
        range.len() <= pass
            && pass % L == 0
            && vs >= c * pass
            && zs >= o * pass
            && v.len() >= XI * vs
            && z.len() >= XI * zs,
        "winograd4: V and Z of a pass"
    );
    let chunks = range.len().div_ceil(L);
    let (va, za) = (v.as_mut_ptr() as usize, z.as_mut_ptr() as usize);
    team::claim(chunks, |q| {
        let (mut d, mut dy) = ([0.0f32; XI * L], [0.0f32; 16 * L]);
        let first = range.start + q * L;
        let lanes: Vec<Tile> = (first..range.end.min(first + L))
            .map(|p| Tile::at(p, g, th, tw))
            .collect();
        let group = LaneGroup::new(g, &lanes);
        for ci in 0..c {
            gather(x, g, ci, &group, &mut d);
            // SAFETY: 36 rows `vs` apart from `ci pass + 16 q`, 16 floats
            // each (`16 q + 16 <= pass`), this part's columns.
            unsafe { input_transform(&d, (va as *mut f32).add(ci * pass + q * L), vs) };
        }
        for k in 0..o {
            gather_grad(gy, g, k, &lanes, &mut dy);
            // SAFETY: as above, in Z.
            unsafe { grad_transform(&dy, (za as *mut f32).add(k * pass + q * L), zs) };
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
