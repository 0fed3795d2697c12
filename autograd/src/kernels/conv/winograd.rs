//! Winograd F(2x2, 3x3) for 3x3, stride-1, undilated, ungrouped
//! convolutions in f32 on AVX2 + FMA, chosen with
//! [`crate::set_conv_algorithm`].
//!
//! Each 2x2 block of outputs (a tile) comes from the 4x4 block of padded
//! input under it: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ)] A`, with the transforms
//! of Lavin & Gray (2015). Summed over input channels, the elementwise
//! product becomes 16 matrix products, one per position `ξ` of the 4x4
//! transformed tile: `M_ξ (O x P) = U_ξ (O x C) @ V_ξ (C x P)` over `P`
//! tiles. That is `16 O C` multiply-adds per tile of 4 outputs against
//! `36 O C` directly; the transforms cost `O(C + O)` per tile.
//!
//! Tiles are taken in blocks of whole tile rows (sample, row of tiles), so
//! a block's transformed inputs `V` (`16 x C x Pb`) and products `M`
//! (`16 x O x Pb`) stay in the core's cache; blocks go to the threads as
//! they free up and write disjoint output rows. The products run on the
//! direct convolution's 6 x 16 micro-kernel (`direct::tile_dispatch`),
//! whose "taps" are here the `C` rows of `V_ξ`, and `U_ξ` is packed in its
//! 6-row panels once per call.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use super::direct::{rows_per_call, tile_dispatch, MR};
use super::{Activation, ConvGeom};
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;
#[cfg(target_arch = "x86_64")]
use crate::kernels::x86::winograd as x86;

/// Columns (tiles) per micro-tile of the products.
const NR: usize = 16;

/// Whether the CPU has AVX2 and FMA.
fn cpu_supported() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether this kernel can compute the convolution (f32 callers only).
pub(crate) fn can_run(g: &ConvGeom) -> bool {
    cpu_supported()
        && g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.groups == 1
        && g.oh > 0
        && g.ow > 0
        && g.c > 0
        && g.o > 0
}

/// Whether the convolution runs here: it can, and the setting is
/// `Winograd`. `Fastest` takes F(4x4, 3x3) ([`super::winograd4`]) or the
/// direct kernels instead: since the direct kernels' AVX-512 form and
/// F(4x4, 3x3), F(2x2, 3x3) was ahead of both on no layer measured
/// (`cargo bench --bench winograd`, 2026-12-03: DeepConvNet's conv3, the
/// last layer it took with AVX2, ran at 0.86x the direct kernel's speed).
pub(crate) fn applies(g: &ConvGeom) -> bool {
    crate::conv_algorithm() == crate::ConvAlgorithm::Winograd && can_run(g)
}

/// `U_ξ = G g Gᵀ` for every output and input channel, packed per `ξ` in
/// panels of [`MR`] output channels, each channel-major (the micro-kernel's
/// A operand): panel `r0` of `ξ` starts at `(ξ O + r0) C`.
fn transform_weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; 16 * o * c];
    for k in 0..o {
        for ci in 0..c {
            let g = &w[(k * c + ci) * 9..][..9];
            // t = G g (4 x 3), then G t' on the other axis.
            let mut t = [[0.0f32; 3]; 4];
            for x in 0..3 {
                let (g0, g1, g2) = (g[x], g[3 + x], g[6 + x]);
                t[0][x] = g0;
                t[1][x] = 0.5 * (g0 + g1 + g2);
                t[2][x] = 0.5 * (g0 - g1 + g2);
                t[3][x] = g2;
            }
            let (r0, r) = (k / MR * MR, k % MR);
            let rows = MR.min(o - r0);
            for (a, ta) in t.iter().enumerate() {
                let row = [
                    ta[0],
                    0.5 * (ta[0] + ta[1] + ta[2]),
                    0.5 * (ta[0] - ta[1] + ta[2]),
                    ta[2],
                ];
                for (b, &v) in row.iter().enumerate() {
                    let xi = a * 4 + b;
                    u[(xi * o + r0) * c + ci * rows + r] = v;
                }
            }
        }
    }
    u
}

/// The tiling of one convolution.
struct Plan {
    /// Tiles per output row and column.
    th: usize,
    tw: usize,
    /// Padded width of a row as the tiles read it: `2 tw + 2`.
    wp: usize,
    /// Tile rows (over all samples) per block.
    rows_per_block: usize,
    /// A block's columns (tiles) rounded up to whole micro-tiles.
    pbp: usize,
}

impl Plan {
    fn new(g: &ConvGeom) -> Plan {
        let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
        // V and M of a block in about 256 KiB (16 (C + O) Pb floats), but at
        // least 64 tiles so each panel of U serves several micro-tiles.
        let target = (4096 / (g.c + g.o)).clamp(64, 512);
        let mut rows_per_block = (target / tw).max(1);
        // Enough blocks for every thread.
        let total = g.n * th;
        rows_per_block = rows_per_block.min(total.div_ceil(team::threads())).max(1);
        // At least 8 columns past the last tile: the input transform's
        // last vector of a tile row stores 8 (see `block`).
        let pbp = (rows_per_block * tw + 8).div_ceil(NR) * NR;
        Plan {
            th,
            tw,
            wp: 2 * tw + 2,
            rows_per_block,
            pbp,
        }
    }
}

/// `y = act(conv2d(x, w) + bias)` for a geometry where [`can_run`] holds.
/// Writes every element of `y` (which may start uninitialized).
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeom,
    act: Activation,
    y: &mut [MaybeUninit<f32>],
) {
    debug_assert!(can_run(g));
    assert_eq!(y.len(), g.n * g.o * g.ohw(), "winograd: output length");
    let plan = Plan::new(g);
    let u = transform_weights(w, g.o, g.c);
    let total = g.n * plan.th;
    let blocks = total.div_ceil(plan.rows_per_block);
    let ya = y.as_mut_ptr() as usize;
    team::claim(blocks, |b| {
        let rows = b * plan.rows_per_block..((b + 1) * plan.rows_per_block).min(total);
        // SAFETY: `y` holds `n O OH OW` floats (asserted above) and block `b`
        // writes only the output rows of its own tile rows, claimed by one
        // thread.
        unsafe { block(&plan, g, x, &u, bias, act, rows, ya as *mut f32) };
    });
}

/// One block of tile rows: input transform, the 16 products, output
/// transform into `y`.
///
/// # Safety
/// `y` points at the convolution's whole output; no other thread writes the
/// output rows of these tile rows.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    plan: &Plan,
    g: &ConvGeom,
    x: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    rows: std::ops::Range<usize>,
    y: *mut f32,
) {
    let (c, o, tw, pbp, wp) = (g.c, g.o, plan.tw, plan.pbp, plan.wp);
    let used = rows.len() * tw;
    let (vlen, mlen) = (16 * c * pbp, 16 * o * pbp);
    // M and tbuf are followed by 16 floats of slack: the transforms' last
    // vectors read past a row's end (lanes that are not stored).
    with_scratch(vlen + mlen + 16 + 4 * wp + 16 + g.w, |buf: &mut [f32]| {
        let (v, rest) = buf.split_at_mut(vlen);
        let (m, rest) = rest.split_at_mut(mlen + 16);
        let (tbuf, zrow) = rest.split_at_mut(4 * wp + 16);
        zrow.fill(0.0);
        // Input transform, channel by channel (each plane read in order).
        for ci in 0..c {
            for (r, tr) in rows.clone().enumerate() {
                let (n, i) = (tr / plan.th, tr % plan.th);
                let plane = &x[(n * c + ci) * g.h * g.w..][..g.h * g.w];
                let row = |a: usize| {
                    let yy = (2 * i + a).wrapping_sub(g.padding[0]);
                    if yy < g.h {
                        plane[yy * g.w..].as_ptr()
                    } else {
                        zrow.as_ptr()
                    }
                };
                // SAFETY: rows of `w` floats; `tbuf` is `4 wp + 16` with
                // `pw + w <= wp` (`wp = 2 tw + 2 >= OW + 2 = W + 2 pw`); the
                // 16 destinations `ξ C pbp` from `ci pbp + r tw` each have
                // room for `tw` rounded up to 8 (`used + 8 <= pbp`). The
                // values stored past `tw` fall on the next tile row's
                // columns, written after this one (this loop), or past
                // `used`, zeroed below.
                transform_input(
                    [row(0), row(1), row(2), row(3)],
                    g,
                    tbuf,
                    wp,
                    tw,
                    v[ci * pbp + r * tw..].as_mut_ptr(),
                    c * pbp,
                );
            }
        }
        // The unused columns of the last micro-tile: zeros, not stale
        // scratch (denormals there would slow the products).
        if used < pbp {
            for row in v.chunks_exact_mut(pbp) {
                row[used..].fill(0.0);
            }
        }
        // M_ξ = U_ξ V_ξ, 6 x 16 micro-tiles (12 x 16 on AVX-512).
        let offs: Vec<usize> = (0..c).map(|ci| ci * pbp).collect();
        for xi in 0..16 {
            let vx = v[xi * c * pbp..].as_ptr();
            let mx = m[xi * o * pbp..].as_mut_ptr();
            let step = rows_per_call();
            for r0 in (0..o).step_by(step) {
                let nrows = step.min(o - r0);
                let a = u[(xi * o + r0) * c..].as_ptr();
                for col in (0..used).step_by(NR) {
                    // SAFETY: the panels hold `nrows * c` floats; V_ξ's rows
                    // are `pbp` apart with 16 readable columns from `col`
                    // (`col + 16 <= pbp`); M_ξ's rows `r0..r0 + nrows` too.
                    tile_dispatch(
                        nrows,
                        &offs,
                        a,
                        [vx.add(col), vx.add(col + 8)],
                        [mx.add(r0 * pbp + col), mx.add(r0 * pbp + col + 8)],
                        pbp,
                        std::ptr::null(),
                    );
                }
            }
        }
        // Output transform, channel by channel (each plane written in order).
        for k in 0..o {
            for (r, tr) in rows.clone().enumerate() {
                let (n, i) = (tr / plan.th, tr % plan.th);
                let out0 = y.add(((n * o + k) * g.oh + 2 * i) * g.ow);
                let out1 = if 2 * i + 1 < g.oh {
                    out0.add(g.ow)
                } else {
                    std::ptr::null_mut()
                };
                // SAFETY: the 16 sources `ξ O pbp` from `k pbp + r tw` have
                // `tw` floats each; output rows `2i` (and `2i + 1`) of
                // plane (n, k) are `ow` floats inside `y`, this block's.
                transform_output(
                    m[k * pbp + r * tw..].as_ptr(),
                    o * pbp,
                    tw,
                    bias.map_or(0.0, |b| b[k]),
                    out0,
                    out1,
                    g.ow,
                );
                // SAFETY: the rows just written (as above).
                act.apply(std::slice::from_raw_parts_mut(out0, g.ow));
                if !out1.is_null() {
                    act.apply(std::slice::from_raw_parts_mut(out1, g.ow));
                }
            }
        }
    });
}

/// `V` of one tile row for one channel, from its 4 input rows: see
/// `x86::winograd::{input_columns, input_rows}`.
///
/// # Safety
/// As those two.
unsafe fn transform_input(
    d: [*const f32; 4],
    g: &ConvGeom,
    tbuf: &mut [f32],
    wp: usize,
    tw: usize,
    dst: *mut f32,
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        x86::input_columns(d, g.w, g.padding[1], tbuf.as_mut_ptr(), wp);
        x86::input_rows(tbuf.as_ptr(), wp, tw, dst, stride);
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "winograd on x86_64 only ({d:?} {g:?} {} {wp} {tw} {dst:?} {stride})",
        tbuf.len()
    );
}

/// The outputs of one tile row for one output channel: see
/// `x86::winograd::output_row`.
///
/// # Safety
/// As that.
unsafe fn transform_output(
    src: *const f32,
    stride: usize,
    tw: usize,
    bias: f32,
    out0: *mut f32,
    out1: *mut f32,
    ow: usize,
) {
    #[cfg(target_arch = "x86_64")]
    x86::output_row(src, stride, tw, bias, out0, out1, ow);
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("winograd on x86_64 only ({src:?} {stride} {tw} {bias} {out0:?} {out1:?} {ow})");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 reference: `y[n][k][oy][ox] = b[k] + sum x[n][c][oy+ky-p][ox+kx-p] w[k][c][ky][kx]`.
    fn reference(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeom) -> (Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0f64; g.n * g.o * g.ohw()];
        let mut mag = vec![0.0f64; y.len()];
        for n in 0..g.n {
            for k in 0..g.o {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let (mut s, mut a) = (b[k] as f64, (b[k] as f64).abs());
                        for c in 0..g.c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (oy + ky) as isize - g.padding[0] as isize;
                                    let ix = (ox + kx) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x
                                        [((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                        as f64;
                                    let wv = w[((k * g.c + c) * 3 + ky) * 3 + kx] as f64;
                                    s += xv * wv;
                                    a += (xv * wv).abs();
                                }
                            }
                        }
                        let i = ((n * g.o + k) * g.oh + oy) * g.ow + ox;
                        y[i] = s;
                        mag[i] = a;
                    }
                }
            }
        }
        (y, mag)
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_f64_reference_over_shapes_and_padding() {
        if !cpu_supported() {
            return;
        }
        let mut seed = 1;
        for &(n, c, o, h, w) in &[
            (1, 1, 1, 3, 3),
            (2, 3, 5, 7, 6),
            (1, 16, 16, 28, 28),
            (3, 8, 13, 5, 9),
            (2, 17, 7, 1, 12),
            (1, 4, 20, 2, 2),
        ] {
            for p in 0..=3 {
                let Some(g) = ConvGeom::sized(n, c, [h, w], o, [3, 3], [1, 1], [p, p], [1, 1], 1)
                else {
                    continue;
                };
                seed += 1;
                let x = values(n * c * h * w, seed);
                let wt = values(o * c * 9, seed + 100);
                let b = values(o, seed + 200);
                let mut y = vec![MaybeUninit::new(f32::NAN); g.n * g.o * g.ohw()];
                forward(&x, &wt, Some(&b), &g, Activation::Identity, &mut y);
                let (yr, mag) = reference(&x, &wt, &b, &g);
                for (i, (yv, (r, a))) in y.iter().zip(yr.iter().zip(&mag)).enumerate() {
                    // SAFETY: forward writes every element (NaN otherwise fails below).
                    let yv = unsafe { yv.assume_init() } as f64;
                    let err = (yv - r).abs();
                    assert!(
                        err <= 4e-6 * (a + 1.0),
                        "{g:?} p {p}: y[{i}] = {yv}, reference {r} (|terms| {a})"
                    );
                }
            }
        }
    }
}
