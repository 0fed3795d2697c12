//! Winograd F(4x4, 3x3) for 3x3, stride-1, undilated, ungrouped
//! convolutions in f32 on AVX2 + FMA (the same convolutions as
//! [`super::winograd`]'s F(2x2, 3x3)), chosen with
//! [`crate::set_conv_algorithm`].
//!
//! Each 4x4 block of outputs (a tile) comes from the 6x6 block of padded
//! input under it: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, with the transforms of
//! Lavin & Gray (2015) at the points 0, ±1, ±2 and ∞. Summed over input
//! channels the elementwise product becomes 36 matrix products, one per
//! position `ξ` of the 6x6 transformed tile, `M_ξ (O x P) = U_ξ (O x C) @
//! V_ξ (C x P)` over `P` tiles: `36 O C` multiply-adds per tile of 16
//! outputs against `144 O C` directly (4x fewer; F(2x2, 3x3) has 2.25x).
//! The price: transforms that multiply by up to 8 and divide by 24, so
//! the rounding grows (bounded in `autograd/tests/winograd.rs`).
//!
//! Tiles are numbered over the whole batch (sample, tile row, tile column)
//! and taken in blocks of [`Plan::pb`], so small planes fill the blocks
//! with the tiles of several samples (a 4x4 plane is one tile, an 8x8 one
//! four). The transforms run on 16 tiles at once, one per vector lane:
//! each tile's 6x6 input block is gathered into lane order, transformed,
//! and its 36 values stored into the 36 rows `V_ξ`; the output transform
//! takes 16 tiles' 36 products back to 16 outputs each and scatters them
//! into the output planes, with the bias and the activation. A block's `V`
//! and `M` stay in the core's cache between the transforms and the
//! products. The products run on the direct convolution's micro-kernels
//! (6 or 12 output channels by 16 or 32 tiles), whose "taps" are here the
//! `C` rows of `V_ξ`, and `U_ξ` is packed in their panels once per call
//! (or once per weight version with gradients off: [`forward_transformed`]).
//! Where a batch has fewer blocks than threads, the output channels are
//! split among the threads too (each transforms the block's inputs).

use std::mem::MaybeUninit;

mod transforms;
mod weight_grad;

use super::direct::{rows_per_call, tile_dispatch, tile_dispatch_wide, MR};
use super::{Activation, ConvGeom};
use crate::kernels::isa;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;
use transforms::{input_transform, output_transform, weight_transform};
pub(crate) use weight_grad::weight_grad;

/// Tiles a transform handles at once (one per lane).
const L: usize = 16;
/// Positions of a transformed tile (6 x 6).
const XI: usize = 36;

/// Whether the convolution runs here: it can, and the setting chooses
/// F(4x4, 3x3) for it: with `Fastest`, where [`pays`].
pub(crate) fn applies(g: &ConvGeom) -> bool {
    let chosen = match crate::conv_algorithm() {
        crate::ConvAlgorithm::Auto | crate::ConvAlgorithm::Winograd => false,
        crate::ConvAlgorithm::Fastest => pays(g),
        crate::ConvAlgorithm::Winograd4 => true,
    };
    chosen && can_run(g)
}

/// Whether the weight gradient of the convolution runs here
/// ([`weight_grad`]): as [`applies`], and with `Fastest` where
/// [`weight_grad_pays`] (whether or not the forward pass runs here).
pub(crate) fn applies_weight_grad(g: &ConvGeom) -> bool {
    let chosen = match crate::conv_algorithm() {
        crate::ConvAlgorithm::Auto | crate::ConvAlgorithm::Winograd => false,
        crate::ConvAlgorithm::Fastest => weight_grad_pays(g),
        crate::ConvAlgorithm::Winograd4 => true,
    };
    chosen && can_run(g)
}

/// [`super::winograd::can_run`], with at least one sample (an empty
/// batch has no tiles to split into blocks: it goes to the kernels that
/// handle it).
fn can_run(g: &ConvGeom) -> bool {
    g.n > 0 && super::winograd::can_run(g)
}

/// Where F(4x4, 3x3)'s weight gradient measured faster than the direct
/// one (`cargo bench --bench winograd -- --vs winograd4`, the layers'
/// forward pass with the weight gradient, 2 threads, 2026-12-03, 2 vCPUs
/// of an AMD EPYC with AVX-512, and with AVX2): on outputs of 4x4 and up,
/// from 32 output channels and 16 input channels while each thread's sums
/// fit [`weight_grad::blocked_fits`] (DeepConvNet's conv3 1.3x, conv4-6
/// 1.5-2.5x, ResNet-18's 64- and 128-channel layers 1.7-2.3x, VGG's 64 and
/// 128 on 32x32 images 1.6-2.4x), from 16 output channels on AVX-512
/// ([`min_channels`]; since the blocks' matrices are aligned and skewed,
/// 2026-12-05: DeepConvNet's conv2 1.12x its fwd+bwd, ResNet-20's
/// 16-channel layer 1.13x its step; with AVX2 alone level or slower), and with more
/// channels from 128 on outputs of 256 pixels and fewer (VGG's 256- and
/// 512-channel layers on 32x32 images, ResNet-18's 14x14 ones: the step
/// 1.0-1.2x faster than with the direct weight gradient; on larger planes
/// the direct kernel stays ahead); in a batch of at least
/// [`MIN_TILES_WEIGHT_GRAD`] tiles.
fn weight_grad_pays(g: &ConvGeom) -> bool {
    let planes = g.oh >= 4 && g.ow >= 4;
    let blocked = weight_grad::blocked_fits(g) && g.c >= 16 && g.o >= min_channels();
    let passes = g.c >= 128 && g.o >= 128 && g.oh * g.ow <= 256;
    planes && tiles(g) >= MIN_TILES_WEIGHT_GRAD && (blocked || passes)
}

/// Output tiles of the whole batch.
fn tiles(g: &ConvGeom) -> usize {
    g.n * g.oh.div_ceil(4) * g.ow.div_ceil(4)
}

/// The fewest tiles for which `Fastest` takes F(4x4, 3x3)'s forward pass
/// and input gradient, and, on planes of 4x4 outputs or fewer, the fewest
/// there. With fewer, transforming the weights costs more than the
/// products save (`cargo bench --bench winograd -- --vs fastest --batch N`,
/// the forward pass under `no_grad` and the layer's step, 2026-12-04, 2
/// vCPUs of an AMD EPYC with AVX-512): 8x8 planes at batch 1-4 (4-16
/// tiles) 0.3-1.1x the direct kernels, at batch 8 (32) 0.7-1.6x, at batch
/// 16 (64) 0.9-1.6x; 4x4 planes, where the alternative is im2col, at batch
/// 1-4 0.1-0.5x, at batch 8 0.5-1.1x, at batch 16 1.0-1.8x.
const MIN_TILES: usize = 64;
const MIN_TILES_SMALL_PLANES: usize = 16;
/// The fewest tiles for the weight gradient: VGG's 512-channel layer on
/// 4x4 outputs took 1.9x as long a step at batch 8 (8 tiles); at batch 16
/// (16 tiles) it and GoogLeNet's 160->320 layer ran their steps 1.01-1.11x
/// faster with F(4x4, 3x3)'s weight gradient than with the other kernels'.
const MIN_TILES_WEIGHT_GRAD: usize = 16;

/// Where F(4x4, 3x3) measured faster than the direct kernels
/// (`cargo bench --bench winograd --vs winograd4`, forward pass and input
/// gradient, 2 threads, 2026-12-03, 2 vCPUs of an AMD EPYC with AVX-512,
/// with either instruction set): from 32 input and output channels on
/// outputs of 4x4 and up, 1.1-1.3x at 32 channels, 1.5-2.1x at 64 and
/// 1.5-3.1x from 128 against the AVX-512 direct kernels, 1.3-3.4x against
/// AVX2's; and, since the gather runs in registers (2026-12-04, `--vs
/// fastest`), from 16 on AVX-512 ([`min_channels`]): DeepConvNet's conv2
/// (16->16, 28x28) 1.24x, conv3 (16->32) 1.06-1.27x, ResNet-20's
/// 16-channel layer 1.09-1.13x. With one
/// input channel it runs 0.4x as fast, and outputs of 2x2 fill a quarter
/// of a tile (0.4-0.7x). Small batches need [`MIN_TILES`] tiles (batch 16
/// on 8x8 outputs), or [`MIN_TILES_SMALL_PLANES`] on 4x4.
fn pays(g: &ConvGeom) -> bool {
    let enough = if g.oh * g.ow <= 16 {
        MIN_TILES_SMALL_PLANES
    } else {
        MIN_TILES
    };
    let channels = min_channels();
    g.c >= channels && g.o >= channels && g.oh >= 4 && g.ow >= 4 && tiles(g) >= enough
}

/// Whether `Fastest` takes F(4x4, 3x3) for a forward pass whose weights
/// arrive transformed ([`transformed_weights`], kept between calls while
/// gradients are off): then the weight transform no longer counts against
/// a small batch, and 16 tiles suffice on planes of 4x4 outputs and up
/// (with [`pays`]'s channel counts).
pub(crate) fn applies_kept(g: &ConvGeom) -> bool {
    let channels = min_channels();
    let chosen = match crate::conv_algorithm() {
        crate::ConvAlgorithm::Auto | crate::ConvAlgorithm::Winograd => false,
        crate::ConvAlgorithm::Fastest => {
            g.c >= channels
                && g.o >= channels
                && g.oh >= 4
                && g.ow >= 4
                && tiles(g) >= KEPT_MIN_TILES
        }
        crate::ConvAlgorithm::Winograd4 => true,
    };
    chosen && can_run(g)
}

/// [`applies_kept`]'s fewest tiles.
const KEPT_MIN_TILES: usize = 16;

/// The fewest input and output channels for which `Fastest` takes F(4x4,
/// 3x3): 16 where the gather runs in registers (AVX-512), 32 with AVX2
/// alone, whose element-by-element gather made the 16-channel layers
/// 0.78-1.11x as fast as the direct kernels (2026-12-03).
fn min_channels() -> usize {
    if isa::avx512() {
        16
    } else {
        32
    }
}

/// `U_ξ = G g Gᵀ` for every output and input channel into `u` (`36 O C`
/// floats: 4x the weight), packed per `ξ` in panels of [`MR`] output
/// channels, each channel-major (the micro-kernels' A operand): panel `r0`
/// of `ξ` starts at `(ξ O + r0) C`. The panels go to the threads; within a
/// panel, 16 consecutive packed entries (input channel, row) at a time,
/// one per lane.
fn transform_weights(w: &[f32], o: usize, c: usize, u: &mut [f32]) {
    assert_eq!(u.len(), XI * o * c, "winograd4: transformed weights");
    assert_eq!(w.len(), o * c * 9, "winograd4: weights");
    let panels = o.div_ceil(MR);
    let ua = u.as_mut_ptr() as usize;
    // Weights transformed to more than 8 MiB (256 channels and up) are
    // written past the caches, then read back from memory by the products.
    #[cfg(target_arch = "x86_64")]
    let stream = isa::avx512() && u.len() >= 1 << 21;
    team::claim(panels, |p| {
        with_scratch(XI * WT_ROW, |tmp: &mut [f32]| {
            let (r0, rows) = (p * MR, MR.min(o - p * MR));
            let mut gl = [[0.0f32; L]; 9];
            for jb in (0..c * rows).step_by(WT_RUN) {
                let run = WT_RUN.min(c * rows - jb);
                for j0 in (jb..jb + run).step_by(L) {
                    let lanes = L.min(jb + run - j0);
                    for (l, j) in (j0..j0 + lanes).enumerate() {
                        let (ci, r) = (j / rows, j % rows);
                        let g = &w[((r0 + r) * c + ci) * 9..][..9];
                        for (e, &v) in g.iter().enumerate() {
                            gl[e][l] = v;
                        }
                    }
                    // SAFETY: `ξ WT_ROW + j0 - jb + 16 <= ξ WT_ROW + run + 15
                    // < 36 WT_ROW` (WT_ROW = WT_RUN + 16): the lanes past
                    // `lanes` land in the row's slack and are not copied out.
                    unsafe { weight_transform(&gl, tmp[j0 - jb..].as_mut_ptr(), WT_ROW) };
                }
                for xi in 0..XI {
                    let (src, dst) = (
                        tmp[xi * WT_ROW..].as_ptr(),
                        (ua as *mut f32).wrapping_add((xi * o + r0) * c + jb),
                    );
                    // SAFETY: `(ξ O + r0) C + jb + run <= (ξ O + r0 + rows) C
                    // <= 36 O C` (asserted above); panel `p`'s runs are
                    // written by this thread only; AVX-512F where `stream`.
                    unsafe {
                        #[cfg(target_arch = "x86_64")]
                        if stream {
                            crate::kernels::x86::winograd4::stream_copy(src, dst, run);
                            continue;
                        }
                        std::ptr::copy_nonoverlapping(src, dst, run)
                    };
                }
            }
            #[cfg(target_arch = "x86_64")]
            if stream {
                // SAFETY: AVX-512F is present (`stream`).
                unsafe { crate::kernels::x86::winograd4::fence() };
            }
        })
    });
}

/// Packed entries per run of [`transform_weights`] (64 input channels of
/// a full panel), and the row of its buffer: the 36 values of a kernel
/// land in 36 regions `O C` floats apart, at the same offset modulo 4 KiB
/// whenever `O C` is a multiple of 1,024 (so in one L1 set); they are
/// gathered in rows 16 floats longer than a run, then stored a run at a
/// time. The 16 floats of slack also take the whole lane vector that the
/// weight transform stores for a run's last, partial group of kernels.
const WT_RUN: usize = 64 * MR;
const WT_ROW: usize = WT_RUN + 16;

/// Floats added to the distance between the 36 per-position matrices of
/// a block (`V` and `M` here, the weight gradient's `V`, `Z` and, by
/// passes, `S`): one cache line.
const SKEW: usize = 16;

/// The tiling of one convolution.
struct Plan {
    /// Tiles per output row and column, and per sample.
    th: usize,
    tw: usize,
    /// Tiles over the batch.
    tiles: usize,
    /// Tiles per block, and that rounded up to the wide micro-kernel's 32.
    pb: usize,
    pbp: usize,
    blocks: usize,
    /// Output channels per part of a block (a multiple of [`MR`]), parts.
    og: usize,
    groups: usize,
}

impl Plan {
    fn new(g: &ConvGeom) -> Plan {
        let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
        let tiles = tiles(g);
        let threads = team::threads();
        // V and M of a block in about 512 KiB (36 (C + O) floats a tile),
        // at least 32 tiles (one wide micro-tile), fewer (to 16) where that
        // leaves a thread without a block and the output channels are too
        // few to split among the threads instead.
        let by_cache = ((1usize << 17) / (XI * (g.c + g.o))).clamp(32, 256) / 32 * 32;
        let floor = if g.o >= 2 * MR * threads { 32 } else { L };
        let by_threads = tiles.div_ceil(threads).next_multiple_of(L).max(floor);
        let pb = by_cache.min(by_threads);
        let blocks = tiles.div_ceil(pb);
        // Fewer blocks than threads: split the output channels too, in
        // parts of two panels or more (the last part: what is left).
        let mut groups = threads.div_ceil(blocks).min(g.o.div_ceil(2 * MR)).max(1);
        let og = g.o.div_ceil(groups).next_multiple_of(MR);
        groups = g.o.div_ceil(og);
        Plan {
            th,
            tw,
            tiles,
            pb,
            pbp: pb.next_multiple_of(32),
            blocks,
            og,
            groups,
        }
    }
}

/// Where one tile reads and writes.
#[derive(Clone, Copy)]
struct Tile {
    /// Sample.
    n: usize,
    /// The top-left of its 6x6 input block (may lie in the padding).
    y0: isize,
    x0: isize,
    /// The top-left of its 4x4 outputs.
    oy: usize,
    ox: usize,
}

impl Tile {
    /// Tile `p` of the batch (sample, tile row, tile column), with `th x tw`
    /// tiles a sample.
    fn at(p: usize, g: &ConvGeom, th: usize, tw: usize) -> Tile {
        let (n, t) = (p / (th * tw), p % (th * tw));
        let (ty, tx) = (t / tw, t % tw);
        Tile {
            n,
            y0: (4 * ty) as isize - g.padding[0] as isize,
            x0: (4 * tx) as isize - g.padding[1] as isize,
            oy: 4 * ty,
            ox: 4 * tx,
        }
    }
}

/// `y = act(conv2d(x, w) + bias)` for a geometry where
/// [`can_run`] holds (at least one sample). Writes every element of `y` (which
/// may start uninitialized).
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeom,
    act: Activation,
    y: &mut [MaybeUninit<f32>],
) {
    let plan = Plan::new(g);
    if plan.blocks == 1 {
        // One block of tiles: each part transforms the weights of its own
        // output channels, a micro-kernel's rows at a time, just before
        // their products read them from cache. Transformed whole first,
        // VGG's 512-channel layers on 4x4 planes wrote 38 MB to memory
        // and read it back, for 32 tiles.
        assert_eq!(w.len(), g.o * g.c * 9, "winograd4: weights");
        return run_blocks(&plan, g, x, Weights::Raw(w), bias, act, y);
    }
    // The transformed weights in a kept buffer: a fresh one of `36 O C`
    // floats a call (38 MB for 512 channels) costs its page faults again.
    with_scratch(XI * g.o * g.c, |u: &mut [f32]| {
        transform_weights(w, g.o, g.c, u);
        forward_transformed(x, u, bias, g, act, y)
    });
}

/// The weights a block's products read.
#[derive(Clone, Copy)]
enum Weights<'a> {
    /// Transformed whole ([`transform_weights`]).
    Transformed(&'a [f32]),
    /// As they are (`[O, C, 3, 3]`): each part transforms its rows.
    Raw(&'a [f32]),
}

/// `w` (`[O, C, 3, 3]`) transformed as [`forward_transformed`] takes it
/// (`36 O C` floats: 4x the weight).
pub(crate) fn transformed_weights(w: &[f32], g: &ConvGeom) -> Vec<f32> {
    let mut u = vec![0.0; XI * g.o * g.c];
    transform_weights(w, g.o, g.c, &mut u);
    u
}

/// [`forward`] with the weights transformed already
/// ([`transformed_weights`]): a served model's layers transform theirs once
/// (see [`applies_kept`]).
pub(crate) fn forward_transformed(
    x: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeom,
    act: Activation,
    y: &mut [MaybeUninit<f32>],
) {
    assert_eq!(u.len(), XI * g.o * g.c, "winograd4: transformed weights");
    run_blocks(&Plan::new(g), g, x, Weights::Transformed(u), bias, act, y);
}

/// Every part of every block of `plan` on the threads.
fn run_blocks(
    plan: &Plan,
    g: &ConvGeom,
    x: &[f32],
    u: Weights,
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [MaybeUninit<f32>],
) {
    debug_assert!(can_run(g));
    assert_eq!(y.len(), g.n * g.o * g.ohw(), "winograd4: output length");
    assert_eq!(x.len(), g.n * g.c * g.h * g.w, "winograd4: input length");
    let ya = y.as_mut_ptr() as usize;
    team::claim(plan.blocks * plan.groups, |part| {
        let (b, grp) = (part / plan.groups, part % plan.groups);
        let tiles = b * plan.pb..((b + 1) * plan.pb).min(plan.tiles);
        let chans = grp * plan.og..((grp + 1) * plan.og).min(g.o);
        // SAFETY: `y` holds `n O OH OW` floats (asserted above); part
        // (b, grp) writes only the outputs of its own tiles in its own
        // channels, and each part is claimed by one thread.
        unsafe { block(plan, g, x, u, bias, act, tiles, chans, ya as *mut f32) };
    });
}

/// One block of tiles for a range of output channels: input transform,
/// the 36 products, output transform into `y`.
///
/// # Safety
/// `y` points at the convolution's whole output; no other thread writes
/// the outputs of these tiles in these channels.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    plan: &Plan,
    g: &ConvGeom,
    x: &[f32],
    u: Weights,
    bias: Option<&[f32]>,
    act: Activation,
    tiles: std::ops::Range<usize>,
    chans: std::ops::Range<usize>,
    y: *mut f32,
) {
    let (c, pbp, used, og) = (g.c, plan.pbp, tiles.len(), chans.len());
    let info: Vec<Tile> = tiles.map(|p| Tile::at(p, g, plan.th, plan.tw)).collect();
    // V_ξ and M_ξ a cache line more than their size apart: the strides
    // `C pbp` and `O pbp` are often multiples of 4 KiB, which put all 36
    // vectors a transform stores or loads in one set of the L1 cache.
    let (vs, ms) = (c * pbp + SKEW, og * pbp + SKEW);
    let (vlen, mlen) = (XI * vs, XI * ms);
    with_scratch(vlen + mlen + XI * L, |buf: &mut [f32]| {
        let (v, rest) = buf.split_at_mut(vlen);
        let (m, d) = rest.split_at_mut(mlen);
        let d: &mut [f32; XI * L] = d.try_into().expect("lane buffer");
        // Input transform, channel by channel, 16 tiles at a time; lanes
        // past the block's last tile gather zeros, so the columns the
        // products read are never stale scratch (denormals there would
        // slow them).
        let groups: Vec<LaneGroup> = info.chunks(L).map(|t| LaneGroup::new(g, t)).collect();
        for ci in 0..c {
            for (lanes, q) in groups.iter().zip((0..used).step_by(L)) {
                gather(x, g, ci, lanes, d);
                // SAFETY: 36 rows `vs` apart from `ci pbp + q`, each with
                // `L` floats (`q + L <= pbp`: `pbp` is `pb >= used` rounded
                // up to 32, `q` a multiple of 16 below `used`).
                input_transform(d, v[ci * pbp + q..].as_mut_ptr(), vs);
            }
        }
        // M_ξ = U_ξ V_ξ on the micro-kernels, 32 tiles a call where two
        // 16-tile columns are in use and the CPU has AVX-512.
        let offs: Vec<usize> = (0..c).map(|ci| ci * pbp).collect();
        let wide = isa::avx512();
        let step = rows_per_call();
        let cols16 = used.next_multiple_of(L);
        // M_ξ rows r.. (nrows of them) from the panels at `a`.
        let (vp, mp) = (v.as_ptr(), m.as_mut_ptr());
        let products = |xi: usize, r: usize, nrows: usize, a: *const f32| {
            let (vx, mx) = (vp.add(xi * vs), mp.add(xi * ms));
            let mut col = 0;
            while col < cols16 {
                let mr = mx.add(r * pbp + col);
                // SAFETY: the panels hold `nrows c` floats from `a`;
                // V_ξ's rows are `pbp` apart with the columns read
                // (`col + 16` or `col + 32 <= cols16 <= pbp`) written
                // above; M_ξ's rows `r..r + nrows` likewise, and no other
                // call writes them.
                if wide && col + 2 * L <= cols16 {
                    tile_dispatch_wide(
                        nrows,
                        &offs,
                        a,
                        [vx.add(col), vx.add(col + L)],
                        [mr, mr.add(L)],
                        pbp,
                        std::ptr::null(),
                    );
                    col += 2 * L;
                } else {
                    tile_dispatch(
                        nrows,
                        &offs,
                        a,
                        [vx.add(col), vx.add(col + 8)],
                        [mr, mr.add(8)],
                        pbp,
                        std::ptr::null(),
                    );
                    col += L;
                }
            }
        };
        match u {
            Weights::Transformed(u) => {
                for xi in 0..XI {
                    for r in (0..og).step_by(step) {
                        let nrows = step.min(og - r);
                        products(xi, r, nrows, u[(xi * g.o + chans.start + r) * c..].as_ptr());
                    }
                }
            }
            Weights::Raw(w) => {
                for r in (0..og).step_by(step) {
                    let nrows = step.min(og - r);
                    let rows = &w[(chans.start + r) * c * 9..][..nrows * c * 9];
                    // These rows' 36 transformed panels (`36 nrows C`
                    // floats: 0.9 MB for 12 rows of 512 channels).
                    with_scratch(XI * nrows * c, |ur: &mut [f32]| {
                        transform_weights(rows, nrows, c, ur);
                        for xi in 0..XI {
                            products(xi, r, nrows, ur[xi * nrows * c..].as_ptr());
                        }
                    });
                }
            }
        }
        // Output transform, channel by channel, 16 tiles at a time.
        let mut out = [[0.0f32; L]; 16];
        for (j, k) in chans.clone().enumerate() {
            let b = bias.map_or(0.0, |b| b[k]);
            for q in (0..used).step_by(L) {
                // SAFETY: 36 rows `ms` apart from `j pbp + q`, each with
                // `L` floats written by the products.
                output_transform(m[j * pbp + q..].as_ptr(), ms, b, act, &mut out);
                let lanes = &groups[q / L];
                #[cfg(target_arch = "x86_64")]
                if wide {
                    // SAFETY: AVX-512F is present; the tiles' outputs in
                    // plane (n, k) are this part's (LaneGroup::new bounds
                    // each tile's rows and columns by the plane's).
                    crate::kernels::x86::winograd4::scatter_blocks(
                        &out,
                        y.add(k * g.ohw()),
                        g.ow,
                        lanes.tiles.len(),
                        [&lanes.out_off, &lanes.out_rows, &lanes.out_cols],
                    );
                    continue;
                }
                let outp = out.as_ptr() as *const f32;
                for l in 0..lanes.tiles.len() {
                    let at = y.add(k * g.ohw() + lanes.out_off[l]);
                    let cols = lanes.out_cols[l].count_ones() as usize;
                    for i in 0..lanes.out_rows[l] {
                        for jj in 0..cols {
                            // SAFETY: output (oy + i, ox + jj) of plane
                            // (n, k), this part's; `(4 i + jj) L + l < 16 L`
                            // (`lanes` holds at most L tiles).
                            at.add(i * g.ow + jj).write(*outp.add((i * 4 + jj) * L + l));
                        }
                    }
                }
            }
        }
    });
}

/// Up to [`L`] tiles, one a lane, with where each reads the rows of its
/// 6x6 input block, in the form the AVX-512 gather takes: for block row
/// `a` of lane `l`, its offset from the sample's plane of the channel
/// gathered (which may lie in the padding), and a mask of its columns
/// inside the plane (none where the row is outside); lanes 8-15 load into
/// the upper half of a vector, so their offsets are 8 floats lower and
/// their masks 8 bits higher.
struct LaneGroup<'a> {
    tiles: &'a [Tile],
    off: [[isize; L]; 6],
    mask: [[u16; L]; 6],
    /// Where each tile's outputs start in its sample's first output plane,
    /// its rows inside the plane, and a mask of its columns inside it (the
    /// output scatter's, on both instruction sets).
    out_off: [usize; L],
    out_rows: [usize; L],
    out_cols: [usize; L],
}

impl<'a> LaneGroup<'a> {
    fn new(g: &ConvGeom, tiles: &'a [Tile]) -> LaneGroup<'a> {
        assert!(tiles.len() <= L, "winograd4: more tiles than lanes");
        let (h, w) = (g.h as isize, g.w as isize);
        let cols =
            |x0: isize| (0..6).fold(0u16, |m, b| m | u16::from((0..w).contains(&(x0 + b))) << b);
        let mut lanes = LaneGroup {
            tiles,
            off: [[0; L]; 6],
            mask: [[0; L]; 6],
            out_off: [0; L],
            out_rows: [0; L],
            out_cols: [0; L],
        };
        for (l, t) in tiles.iter().enumerate() {
            lanes.out_off[l] = t.n * g.o * g.ohw() + t.oy * g.ow + t.ox;
            lanes.out_rows[l] = 4.min(g.oh - t.oy);
            lanes.out_cols[l] = (1 << 4.min(g.ow - t.ox)) - 1;
            let (shift, back) = if l < 8 { (0, 0) } else { (8, 8) };
            let start = (t.n * g.c * g.h * g.w) as isize + t.y0 * w + t.x0;
            for a in 0..6 {
                let inside = (0..h).contains(&(t.y0 + a as isize));
                lanes.off[a][l] = start + a as isize * w - back;
                lanes.mask[a][l] = if inside { cols(t.x0) << shift } else { 0 };
            }
        }
        lanes
    }
}

/// Tile `l`'s 6x6 input block of channel `ci` into lane `l` of `d`
/// (`d[e L + l]`, `e = 6 row + column`), zeros in the padding and in the
/// lanes past the group's tiles.
fn gather(x: &[f32], g: &ConvGeom, ci: usize, lanes: &LaneGroup, d: &mut [f32; XI * L]) {
    assert!(
        x.len() >= g.n * g.c * g.h * g.w && ci < g.c,
        "winograd4: input shorter than its geometry"
    );
    // Row loads and a transpose in registers on AVX-512: the element by
    // element copy took 17% of DeepConvNet's conv2 (16 channels) with
    // F(4x4, 3x3), a bounds test per element on the half of its tiles that
    // touch the padding; a hardware gather per position was no faster.
    #[cfg(target_arch = "x86_64")]
    if isa::avx512() {
        // SAFETY: AVX-512F is present; the mask bits set name elements
        // inside plane (n, ci) of the tile's sample (LaneGroup::new), so
        // inside `x` (asserted above); `d` has 36 L floats.
        let plane = |c: usize| x.as_ptr().wrapping_add(c * g.h * g.w);
        let next = if ci + 1 < g.c {
            plane(ci + 1)
        } else {
            std::ptr::null()
        };
        unsafe {
            crate::kernels::x86::winograd4::gather_blocks(
                plane(ci),
                next,
                &lanes.off,
                &lanes.mask,
                d.as_mut_ptr(),
            )
        };
        return;
    }
    let (h, w) = (g.h as isize, g.w as isize);
    let dp = d.as_mut_ptr();
    for (l, t) in lanes.tiles.iter().enumerate() {
        let plane = &x[(t.n * g.c + ci) * g.h * g.w..][..g.h * g.w];
        if t.y0 >= 0 && t.x0 >= 0 && t.y0 + 6 <= h && t.x0 + 6 <= w {
            // The 6x6 block, inside the plane (one bounds check for all 36).
            let block = &plane[t.y0 as usize * g.w + t.x0 as usize..][..5 * g.w + 6];
            for a in 0..6 {
                for b in 0..6 {
                    // SAFETY: `a w + b <= 5 w + 5` is inside `block`, and
                    // `(6 a + b) L + l < 36 L` is inside `d` (`l < L`:
                    // LaneGroup::new).
                    unsafe {
                        dp.add((a * 6 + b) * L + l)
                            .write(*block.get_unchecked(a * g.w + b))
                    };
                }
            }
        } else {
            for a in 0..6 {
                let yy = t.y0 + a as isize;
                for b in 0..6 {
                    let xx = t.x0 + b as isize;
                    d[(a * 6 + b) * L + l] = if (0..h).contains(&yy) && (0..w).contains(&xx) {
                        plane[yy as usize * g.w + xx as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    for l in lanes.tiles.len()..L {
        for e in 0..XI {
            d[e * L + l] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Fastest`'s rule on the layers benches/winograd.rs times.
    #[test]
    fn fastest_takes_f4_where_it_measured_faster() {
        let layer = |n, c, o, size, p| {
            ConvGeom::sized(n, c, [size, size], o, [3, 3], [1, 1], [p, p], [1, 1], 1).unwrap()
        };
        let cases = [
            (layer(100, 1, 16, 28, 1), false), // DeepConvNet conv1
            (layer(100, 16, 16, 28, 1), true), // conv2
            (layer(100, 16, 32, 14, 1), true), // conv3
            (layer(100, 32, 32, 14, 2), true), // conv4
            (layer(100, 64, 64, 8, 1), true),  // conv6
            (layer(128, 16, 16, 32, 1), true), // ResNet-20, 16 channels
            (layer(100, 8, 16, 28, 1), false),
            (layer(64, 128, 128, 4, 1), true), // ResNet-18 on 32x32
            (layer(64, 256, 256, 2, 1), false),
            (layer(32, 512, 512, 4, 1), true), // VGG on 32x32
            (layer(32, 512, 512, 2, 1), false),
            (layer(8, 512, 512, 14, 1), true),
            // Too few tiles: batch 1 to 4 on 8x8 planes, 1 to 8 on 4x4.
            (layer(4, 64, 64, 8, 1), false),
            (layer(16, 64, 64, 8, 1), true),
            (layer(8, 96, 208, 4, 1), false),
            (layer(16, 96, 208, 4, 1), true),
            (layer(1, 64, 192, 16, 1), false),
            (layer(1, 64, 64, 32, 1), true),
        ];
        for (g, pays_here) in cases {
            // 16-channel layers only where the gather runs in registers.
            let pays_here = pays_here && (g.c.min(g.o) >= 32 || isa::avx512());
            assert_eq!(pays(&g), pays_here, "{g:?}");
        }
        // The weight gradient: from 16 input and output channels (32 output
        // channels with AVX2 alone), past 128 only on small planes.
        let cases = [
            (layer(100, 16, 16, 28, 1), true), // conv2
            (layer(128, 16, 16, 32, 1), true), // ResNet-20, 16 channels
            (layer(100, 16, 8, 28, 1), false),
            (layer(100, 8, 16, 28, 1), false),
            (layer(100, 16, 32, 14, 1), true), // conv3
            (layer(100, 64, 64, 8, 1), true),  // conv6
            (layer(8, 64, 64, 56, 1), true),
            (layer(8, 128, 128, 28, 1), true),
            (layer(8, 256, 256, 28, 1), false),
            (layer(64, 256, 256, 2, 1), false),
            (layer(32, 128, 128, 16, 1), true),
            (layer(64, 128, 128, 4, 1), true),
            (layer(8, 256, 256, 14, 1), true),
            (layer(32, 512, 512, 4, 1), true),
            (layer(16, 512, 512, 4, 1), true),
            (layer(8, 512, 512, 4, 1), false),
            (layer(2, 64, 64, 8, 1), false),
        ];
        for (g, pays_here) in cases {
            // 16 output channels only on AVX-512.
            let pays_here = pays_here && (g.o >= 32 || isa::avx512());
            assert_eq!(weight_grad_pays(&g), pays_here, "weight gradient {g:?}");
        }
    }

    #[test]
    fn plans_cover_every_tile_and_channel_once() {
        for &(n, c, o, size) in &[
            (1, 16, 16, 4),
            (100, 64, 64, 8),
            (8, 512, 512, 4),
            (3, 5, 70, 13),
        ] {
            let g = ConvGeom::sized(n, c, [size, size], o, [3, 3], [1, 1], [1, 1], [1, 1], 1)
                .expect("a geometry");
            let p = Plan::new(&g);
            assert!(p.blocks * p.pb >= p.tiles && (p.blocks - 1) * p.pb < p.tiles);
            assert!(p.og.is_multiple_of(MR) && p.groups * p.og >= o && (p.groups - 1) * p.og < o);
            assert!(p.pbp.is_multiple_of(32) && p.pbp >= p.pb);
        }
    }
}
