//! Direct ("implicit GEMM") convolution for stride 1 in f32 on AVX2 + FMA,
//! or AVX-512 where the CPU has it: no im2col matrix and no packed copy of it.
//!
//! Each channel of a sample is copied once into a zero-bordered plane of
//! width `Wp = W + 2 * pad`. Output pixels are then numbered along that
//! padded width, `q = oy * Wp + ox`, and tap `p = (c, ky, kx)` reads input
//! `xpad[off[p] + q]` with `off[p] = c * plane + ky * dh * Wp + kx * dw`:
//! for a fixed tap, consecutive outputs read consecutive inputs. So the
//! im2col matrix `X[p, q]` is a set of shifted views of the padded input,
//! and a GEMM micro-kernel reads its 16-wide rows straight from there.
//! The `Wp - OW` columns of each output row that fall in the padding are
//! computed and dropped (7% at 28x28 with pad 1); the forward pass writes
//! its tile into a `Og x Qt` buffer and copies the valid columns out.
//!
//! - forward: `Y (Og x Q) = W (Og x K) @ X`, 6 x 16 tiles (AVX2) or
//!   12 x 16 (AVX-512: two panels share each 16-wide input vector, one
//!   register a row; the same sums in the same order, so the same bits),
//!   W packed once per call in 6-row panels, X rows read in place;
//! - input gradient: with stride 1 it is the forward convolution of `gy`
//!   with the flipped kernel (`conv::as_flipped_forward`);
//! - weight gradient: `dW^T (K x Og) = X (K x Q) @ gy^T (Q x Og)` over the
//!   valid outputs only: six rows of X are broadcast straight from the
//!   padded input (jumping over the padding columns at each row's end), gy
//!   is transposed into 16-wide panels.
//!
//! Measured against im2col + `matrixmultiply` on this project's AVX2 machine
//! (one thread, per sample): the forward tiles reach 75-87 GFLOP/s of useful
//! work on DeepConvNet's and ResNet-18's 3x3 layers, against 50-65. Tiles
//! take their two 8-wide vectors from one output row each when that
//! computes fewer padding columns (see [`tiles`]). `AUTOGRAD_CONV=im2col`
//! turns the path off (for comparisons).

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use super::im2col::{copy_short, zero_short};
use super::{Activation, ConvGeom};
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;
#[cfg(target_arch = "x86_64")]
use crate::kernels::x86::direct as x86;

/// Output columns per micro-tile.
const NR: usize = 16;
/// The fewest input values a group's padding splits over the threads
/// (DeepConvNet's conv2 and conv4 at batch 1: 12.5K and 6.3K).
const PAD_PAR_MIN: usize = 1 << 12;
/// Output rows per micro-tile.
pub(in crate::kernels) const MR: usize = 6;
/// Output pixels per block of the weight gradient's reduction (its gy^T
/// block, 16 KiB, stays in L1 while every row panel uses it).
const QC: usize = 256;
/// The fewest taps (`C/groups x KH x KW`) the direct kernels take.
/// `Fastest` takes them from 9, a 3x3 kernel over one input channel
/// (MNIST's first layers): DeepConvNet's conv1 (100 samples, 1->16, 28x28),
/// forward and weight gradient, 0.78-0.80 ms on the direct kernels against
/// 1.21-1.36 ms through im2col + `matrixmultiply` with AVX-512, 0.83-0.89
/// against 1.26-1.52 ms with AVX2 alone (2 threads, AMD EPYC, 2026-12-04).
/// `Auto` keeps im2col below 16 taps: its sums, in another order, trained
/// the README's figures.
fn min_taps() -> usize {
    match crate::conv_algorithm() {
        crate::ConvAlgorithm::Fastest => 9,
        _ => 16,
    }
}

/// Whether the CPU has AVX2 and FMA and the path is not turned off.
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && std::env::var("AUTOGRAD_CONV").map_or(true, |v| v != "im2col")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the direct kernels compute this convolution (f32 callers only).
pub(crate) fn applies(g: &ConvGeom) -> bool {
    enabled()
        && g.stride == [1, 1]
        && !(g.kh == 1 && g.kw == 1 && g.padding == [0, 0])
        && g.oh > 0
        && g.ow > 0
        && g.og() > 0
        && g.cg() > 0
        && g.k() >= min_taps()
        && useful_fraction(g) >= 0.6
}

/// The share of the tiles' outputs that are real outputs, not padding
/// columns: 1 on 8x8 planes, 0.77 on 7x7, 0.5 on 4x4 and 0.25 on 2x2, where
/// each sample's few pixels are better batched with other samples' into
/// one im2col product (`conv::chunked::samples_per_chunk`).
fn useful_fraction(g: &ConvGeom) -> f64 {
    let wp = g.w + 2 * g.padding[1];
    let tiles = tiles(g.oh, g.ow, wp, g.oh * wp).0.len();
    g.ohw() as f64 / (tiles * NR) as f64
}

/// The padded-plane layout of one group of one sample.
struct Plan {
    wp: usize,
    plane: usize,
    /// `q` rounded up to whole tiles.
    qt: usize,
    /// Floats of the padded input, with the slack the last tile reads.
    xlen: usize,
    /// Input offset of each tap `p = (c, ky, kx)`, in weight order.
    offs: Vec<usize>,
    /// Where each pair of 8-wide output vectors of a tile starts (in `q`).
    tiles: Vec<[usize; 2]>,
    /// Every vector is 8 outputs of one output row (rows as wide as a
    /// whole number of vectors): tiles store straight into the output.
    rows_exact: bool,
}

impl Plan {
    fn new(g: &ConvGeom) -> Plan {
        let (hp, wp) = (g.h + 2 * g.padding[0], g.w + 2 * g.padding[1]);
        let plane = hp * wp;
        let q = g.oh * wp;
        let qt = q.div_ceil(NR) * NR;
        // The last tile reads up to `off_max + qt - 1`, where
        // `off_max = cg * plane - q + (kw - 1) * dw` since `OH = Hp - (kh - 1) * dh`.
        let xlen = g.cg() * plane + (g.kw - 1) * g.dilation[1] + (qt - q);
        let mut offs = Vec::with_capacity(g.k());
        for c in 0..g.cg() {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    offs.push(c * plane + ky * g.dilation[0] * wp + kx * g.dilation[1]);
                }
            }
        }
        let (tiles, by_rows) = tiles(g.oh, g.ow, wp, q);
        Plan {
            wp,
            plane,
            qt,
            xlen,
            offs,
            tiles,
            rows_exact: by_rows && g.ow.is_multiple_of(8),
        }
    }

    /// Copies one group's channels (`cg x H x W`) into zero-bordered planes.
    fn pad_input(&self, g: &ConvGeom, x: &[f32], xp: &mut [f32]) {
        self.pad_channels(g, x, 0, &mut xp[..g.cg() * self.plane]);
        xp[g.cg() * self.plane..].fill(0.0);
    }

    /// [`pad_input`](Self::pad_input) with the channels split over
    /// `threads` from [`PAD_PAR_MIN`] input values: at batch 1 the copy
    /// otherwise runs on one thread before the tiles' parallel section.
    fn pad_input_threads(&self, g: &ConvGeom, x: &[f32], xp: &mut [f32], threads: usize) {
        let cg = g.cg();
        if threads <= 1 || cg < 2 || cg * g.h * g.w < PAD_PAR_MIN {
            return self.pad_input(g, x, xp);
        }
        let (head, tail) = xp.split_at_mut(cg * self.plane);
        let per = cg.div_ceil(threads.min(cg));
        team::for_chunks(head, per * self.plane, |i, part| {
            self.pad_channels(g, x, i * per, part)
        });
        tail.fill(0.0);
    }

    /// Channels `c0..` of the group (as many as `dst` holds planes) into
    /// `dst`, zero-bordered.
    fn pad_channels(&self, g: &ConvGeom, x: &[f32], c0: usize, dst: &mut [f32]) {
        let (ph, pw, wp) = (g.padding[0], g.padding[1], self.wp);
        for (i, dst) in dst.chunks_mut(self.plane).enumerate() {
            let c = c0 + i;
            let src = &x[c * g.h * g.w..][..g.h * g.w];
            dst[..ph * wp + pw].fill(0.0);
            // Short rows: copy_short/zero_short, not memmove/memset calls.
            for (y, row) in src.chunks_exact(g.w).enumerate() {
                let start = (y + ph) * wp + pw;
                copy_short(&mut dst[start..start + g.w], row);
                // Right border of this row and left border of the next.
                let end = (start + g.w + 2 * pw).min(dst.len());
                zero_short(&mut dst[start + g.w..end]);
            }
            let tail = (g.h + ph) * wp;
            dst[tail..].fill(0.0);
        }
    }
}

/// The output vectors, two per tile: either consecutive along the padded
/// width (16 outputs a tile, the padding columns computed too), or each
/// output row on its own (no padding columns computed, when every row's
/// vectors fit inside its padded width): 8x8 planes need 8 vectors of 8
/// rather than 10 (padded width 10), 16-wide rows 32 rather than 36.
/// Also says whether the vectors go row by row.
fn tiles(oh: usize, ow: usize, wp: usize, q: usize) -> (Vec<[usize; 2]>, bool) {
    let per_row = ow.div_ceil(8);
    let by_rows = per_row * 8 <= wp && oh * per_row < q.div_ceil(8);
    let vecs: Vec<usize> = if by_rows {
        (0..oh)
            .flat_map(|oy| (0..per_row).map(move |j| oy * wp + 8 * j))
            .collect()
    } else {
        (0..q.div_ceil(16) * 2).map(|j| 8 * j).collect()
    };
    // An odd count repeats the last vector (the same values, stored twice).
    let pairs = vecs
        .chunks(2)
        .map(|pair| [pair[0], *pair.last().expect("a vector")])
        .collect();
    (pairs, by_rows)
}

/// W (Og x K, row-major) in panels of [`MR`] rows, each tap-major (the last
/// panel as many rows as are left), written into `ap` (`Og K` floats).
/// Row by row into strided slots, not element by element through an
/// iterator chain: the chain cost 25% of a batch-1 forward pass with
/// gradients on (the packing runs every call there).
pub(super) fn pack_weights_into(w: &[f32], og: usize, k: usize, ap: &mut [f32]) {
    assert!(
        w.len() >= og * k && ap.len() >= og * k,
        "direct convolution: weights"
    );
    for r0 in (0..og).step_by(MR) {
        let rows = MR.min(og - r0);
        let panel = &mut ap[r0 * k..(r0 + rows) * k];
        for r in 0..rows {
            let src = &w[(r0 + r) * k..][..k];
            for (p, &v) in src.iter().enumerate() {
                panel[p * rows + r] = v;
            }
        }
    }
}

/// Every group's [`pack_weights_into`], one after another.
pub(super) fn pack_groups(w: &[f32], groups: usize, og: usize, k: usize) -> Vec<f32> {
    let mut ap = vec![0.0; groups * og * k];
    for (wg, apg) in w.chunks_exact(og * k).zip(ap.chunks_exact_mut(og * k)) {
        pack_weights_into(wg, og, k, apg);
    }
    ap
}

/// `y = act(conv2d(x, w) + bias)` for a geometry where [`applies`] holds,
/// with `w` packed here unless `packed` has it already (each group's
/// [`pack_weights_into`], one after another: [`pack_groups`]).
/// Writes every element of `y` (which may start uninitialized).
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    packed: Option<&[f32]>,
    bias: Option<&[f32]>,
    g: &ConvGeom,
    act: Activation,
    y: &mut [MaybeUninit<f32>],
) {
    let (og, k, ohw) = (g.og(), g.k(), g.ohw());
    let plan = Plan::new(g);
    let owned: Vec<f32>;
    let packed = match packed {
        Some(p) => {
            assert_eq!(p.len(), w.len(), "direct convolution: packed weights");
            p
        }
        None => {
            owned = pack_groups(w, g.groups, og, k);
            &owned
        }
    };
    let packed: Vec<&[f32]> = packed.chunks(og * k).collect();
    let (in_per, out_per) = (g.c * g.h * g.w, g.o * ohw);
    let sample = |i: usize, yo: &mut [MaybeUninit<f32>], threads: usize| {
        let xs = &x[i * in_per..(i + 1) * in_per];
        for (gi, ap) in packed.iter().enumerate() {
            let xg = &xs[gi * g.cg() * g.h * g.w..][..g.cg() * g.h * g.w];
            let yg = &mut yo[gi * og * ohw..(gi + 1) * og * ohw];
            let bg = bias.map(|b| &b[gi * og..(gi + 1) * og]);
            forward_group(&plan, g, xg, ap, bg, yg, threads);
        }
        // SAFETY: the groups wrote every output of the sample.
        unsafe { act.apply_written(yo, threads) };
    };
    let threads = team::threads();
    if g.n >= threads && threads > 1 {
        team::for_chunks(y, out_per, |i, yo| sample(i, yo, 1));
    } else {
        let inner = if og * k * ohw >= 1 << 18 { threads } else { 1 };
        for (i, yo) in y.chunks_mut(out_per).enumerate() {
            sample(i, yo, inner);
        }
    }
}

fn forward_group(
    plan: &Plan,
    g: &ConvGeom,
    xg: &[f32],
    ap: &[f32],
    bias: Option<&[f32]>,
    yg: &mut [MaybeUninit<f32>],
    threads: usize,
) {
    let (og, qt) = (g.og(), plan.qt);
    with_scratch(plan.xlen, |xp: &mut [f32]| {
        plan.pad_input_threads(g, xg, xp, threads);
        if plan.rows_exact {
            // Every vector is 8 outputs of one row: the tiles store into
            // `yg` itself, bias included (no `Og x Qt` buffer and no copy of
            // its valid columns: 4% of DeepConvNet's conv6 before).
            let (ohw, ow, wp) = (g.ohw(), g.ow, plan.wp);
            debug_assert!(yg.len() >= og * ohw);
            let ya = yg.as_mut_ptr() as usize;
            // SAFETY (for run_tiles): row r0's vector at padded position q
            // is 8 outputs of output row q / wp (`ow % 8 == 0`), inside
            // plane r0 of `yg`.
            let dest = |r0: usize, q: usize| {
                (ya as *mut f32).wrapping_add(r0 * ohw + q / wp * ow + q % wp) as usize
            };
            return run_tiles(plan, g, xp, ap, dest, ohw, bias, threads);
        }
        with_scratch(og * qt, |yp: &mut [f32]| {
            let ya = yp.as_mut_ptr() as usize;
            let dest = |r0: usize, q: usize| (ya as *mut f32).wrapping_add(r0 * qt + q) as usize;
            run_tiles(plan, g, xp, ap, dest, qt, None, threads);
            // The valid columns of each output row, plus the bias.
            let (oh, ow, wp) = (g.oh, g.ow, plan.wp);
            for o in 0..og {
                let b = bias.map_or(0.0, |b| b[o]);
                for oy in 0..oh {
                    let src = &yp[o * qt + oy * wp..][..ow];
                    let dst = &mut yg[(o * oh + oy) * ow..][..ow];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| {
                        d.write(s + b);
                    });
                }
            }
        });
    });
}

/// Every tile of the plan, each for every 6-row panel of the output
/// channels: `dest(r0, q)` is the address of the 8 outputs of row `r0` for
/// the vector at padded position `q`, rows `rsc` floats apart; `bias`, if
/// any, starts the accumulators. Tiles are split over `threads`.
#[allow(clippy::too_many_arguments)]
fn run_tiles(
    plan: &Plan,
    g: &ConvGeom,
    xp: &[f32],
    ap: &[f32],
    dest: impl Fn(usize, usize) -> usize + Sync,
    rsc: usize,
    bias: Option<&[f32]>,
    threads: usize,
) {
    let (og, k) = (g.og(), g.k());
    let tiles = plan.tiles.len();
    let xa = xp.as_ptr() as usize;
    let wide = crate::kernels::isa::avx512();
    let run = |t: usize, parts: usize| {
        let (t0, t1) = (tiles * t / parts, tiles * (t + 1) / parts);
        let step = rows_per_call();
        let mut i = t0;
        while i < t1 {
            let [q0, q1] = plan.tiles[i];
            i += 1;
            // Two tiles of 16 consecutive inputs and outputs each (a tile
            // whose two vectors join, in the input and at `dest`): one wide
            // call, each weight broadcast feeding both.
            let joined = |[a, b]: [usize; 2]| b == a + 8 && dest(0, b) == dest(0, a) + 32;
            if wide && i < t1 && joined([q0, q1]) && joined(plan.tiles[i]) {
                let q2 = plan.tiles[i][0];
                i += 1;
                for r0 in (0..og).step_by(step) {
                    let rows = step.min(og - r0);
                    // SAFETY: as below, for both tiles' 16 outputs,
                    // contiguous in `xp` and at `dest` (checked).
                    unsafe {
                        tile_dispatch_wide(
                            rows,
                            &plan.offs,
                            ap.as_ptr().add(r0 * k),
                            [(xa as *const f32).add(q0), (xa as *const f32).add(q2)],
                            [dest(r0, q0) as *mut f32, dest(r0, q2) as *mut f32],
                            rsc,
                            bias.map_or(std::ptr::null(), |b| b.as_ptr().add(r0)),
                        );
                    }
                }
                continue;
            }
            // Two tiles whose vectors do not join (rows of 8 outputs).
            if wide && i < t1 {
                let [q2, q3] = plan.tiles[i];
                i += 1;
                for r0 in (0..og).step_by(step) {
                    let rows = step.min(og - r0);
                    // SAFETY: as below, for each of the two tiles.
                    unsafe {
                        tile_dispatch_wide_split(
                            rows,
                            &plan.offs,
                            ap.as_ptr().add(r0 * k),
                            [q0, q1, q2, q3].map(|q| (xa as *const f32).add(q)),
                            [q0, q1, q2, q3].map(|q| dest(r0, q) as *mut f32),
                            rsc,
                            bias.map_or(std::ptr::null(), |b| b.as_ptr().add(r0)),
                        );
                    }
                }
                continue;
            }
            for r0 in (0..og).step_by(step) {
                let rows = step.min(og - r0);
                // SAFETY: the panels hold `rows * k` packed weights; every
                // tap reads `xp[offs[p] + q..][..8]` for both vectors'
                // `q < qt - 7`, inside `xlen` (Plan::new); `dest` gives
                // `rows` rows of 8 writable floats `rsc` apart (the caller's
                // promise), disjoint between tiles (Plan::tiles), so between
                // threads (a repeated last vector is written twice by one
                // thread with the same values).
                unsafe {
                    tile_dispatch(
                        rows,
                        &plan.offs,
                        ap.as_ptr().add(r0 * k),
                        [(xa as *const f32).add(q0), (xa as *const f32).add(q1)],
                        [dest(r0, q0) as *mut f32, dest(r0, q1) as *mut f32],
                        rsc,
                        bias.map_or(std::ptr::null(), |b| b.as_ptr().add(r0)),
                    );
                }
            }
        }
    };
    if threads > 1 && tiles >= 2 * threads {
        team::run(threads, |t| run(t, threads));
    } else {
        run(0, 1);
    }
}

/// `match rows` (1..=12) onto a forward kernel's const parameters: the rows
/// of the first 6-row panel and of the second.
#[cfg(target_arch = "x86_64")]
macro_rules! by_panels {
    ($rows:expr; $($k:ident)::+; $($arg:expr),*) => {
        match $rows {
            12 => $($k)::+::<6, 6>($($arg),*),
            11 => $($k)::+::<6, 5>($($arg),*),
            10 => $($k)::+::<6, 4>($($arg),*),
            9 => $($k)::+::<6, 3>($($arg),*),
            8 => $($k)::+::<6, 2>($($arg),*),
            7 => $($k)::+::<6, 1>($($arg),*),
            6 => $($k)::+::<6, 0>($($arg),*),
            5 => $($k)::+::<5, 0>($($arg),*),
            4 => $($k)::+::<4, 0>($($arg),*),
            3 => $($k)::+::<3, 0>($($arg),*),
            2 => $($k)::+::<2, 0>($($arg),*),
            _ => $($k)::+::<1, 0>($($arg),*),
        }
    };
}

/// `match rows` (1..=12) onto a weight-gradient kernel's const row count.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr; $($k:ident)::+; $($arg:expr),*) => {
        match $rows {
            12 => $($k)::+::<12>($($arg),*),
            11 => $($k)::+::<11>($($arg),*),
            10 => $($k)::+::<10>($($arg),*),
            9 => $($k)::+::<9>($($arg),*),
            8 => $($k)::+::<8>($($arg),*),
            7 => $($k)::+::<7>($($arg),*),
            6 => $($k)::+::<6>($($arg),*),
            5 => $($k)::+::<5>($($arg),*),
            4 => $($k)::+::<4>($($arg),*),
            3 => $($k)::+::<3>($($arg),*),
            2 => $($k)::+::<2>($($arg),*),
            _ => $($k)::+::<1>($($arg),*),
        }
    };
}

mod weight_grad;
pub(crate) use weight_grad::weight_grad;
pub(in crate::kernels) use weight_grad::{wtile_dispatch, wtile_dispatch_wide, Span};

/// Output rows (channels) one call of [`tile_dispatch`] covers: two 6-row
/// panels with AVX-512, one with AVX2.
pub(super) fn rows_per_call() -> usize {
    if crate::kernels::isa::avx512() {
        2 * MR
    } else {
        MR
    }
}

/// Runs the forward micro-kernel for `rows` (1..=12) output rows: the
/// 6-row panel at `a` and, past 6 rows, the next panel (`6 * offs.len()`
/// floats on). One AVX-512 call covers up to 12 rows; AVX2 takes a panel a
/// call. Both sum each output's taps in the same order: the same bits.
///
/// # Safety
/// As [`x86::tile`], for each panel.
pub(super) unsafe fn tile_dispatch(
    rows: usize,
    offs: &[usize],
    a: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let a1 = a.wrapping_add(MR * offs.len());
        if crate::kernels::isa::avx512() {
            by_panels!(rows; x86::tile512; offs, a, a1, xb, c, rsc, bias);
            return;
        }
        if rows > MR {
            // Two panels (the caller read `rows_per_call` before a switch).
            tile_dispatch(MR, offs, a, xb, c, rsc, bias);
            let c1 = [c[0].add(MR * rsc), c[1].add(MR * rsc)];
            let b1 = if bias.is_null() { bias } else { bias.add(MR) };
            return tile_dispatch(rows - MR, offs, a1, xb, c1, rsc, b1);
        }
        match rows {
            6 => x86::tile::<6>(offs, a, xb, c, rsc, bias),
            5 => x86::tile::<5>(offs, a, xb, c, rsc, bias),
            4 => x86::tile::<4>(offs, a, xb, c, rsc, bias),
            3 => x86::tile::<3>(offs, a, xb, c, rsc, bias),
            2 => x86::tile::<2>(offs, a, xb, c, rsc, bias),
            _ => x86::tile::<1>(offs, a, xb, c, rsc, bias),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "direct convolution on x86_64 only ({rows} {offs:?} {a:?} {xb:?} {c:?} {rsc} {bias:?})"
    );
}

/// As [`tile_dispatch`] on AVX-512 for two tiles of 16 consecutive
/// outputs a row, inputs at `xb[t]` and outputs at `c[t]`.
///
/// # Safety
/// As [`x86::tile512_wide`], for `rows` (1..=12) rows.
pub(super) unsafe fn tile_dispatch_wide(
    rows: usize,
    offs: &[usize],
    a: *const f32,
    xb: [*const f32; 2],
    c: [*mut f32; 2],
    rsc: usize,
    bias: *const f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let a1 = a.wrapping_add(MR * offs.len());
        by_panels!(rows; x86::tile512_wide; offs, a, a1, xb, c, rsc, bias)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "AVX-512 kernels on x86_64 only ({rows} {offs:?} {a:?} {xb:?} {c:?} {rsc} {bias:?})"
    );
}

/// As [`tile_dispatch_wide`] for two tiles whose 8-wide vectors do not
/// join: tile `t`'s at `xb[2t]`, `xb[2t + 1]`, its outputs at `c[2t]`,
/// `c[2t + 1]`.
///
/// # Safety
/// As [`x86::tile512_wide_split`], for `rows` (1..=12) rows.
unsafe fn tile_dispatch_wide_split(
    rows: usize,
    offs: &[usize],
    a: *const f32,
    xb: [*const f32; 4],
    c: [*mut f32; 4],
    rsc: usize,
    bias: *const f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        let a1 = a.wrapping_add(MR * offs.len());
        by_panels!(rows; x86::tile512_wide_split; offs, a, a1, xb, c, rsc, bias)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "AVX-512 kernels on x86_64 only ({rows} {offs:?} {a:?} {xb:?} {c:?} {rsc} {bias:?})"
    );
}

#[cfg(test)]
mod tests {
    use super::super::{
        conv2d_forward, conv2d_input_grad, conv2d_weight_grad, Activation, ConvGeom,
    };
    use proptest::prelude::*;

    /// The direct f32 kernels (forward, input gradient through the flipped
    /// forward, weight gradient) against the f64 im2col path.
    fn check(g: ConvGeom, seed: u64) {
        let val = |i: usize| (((i as u64 * 7919 + seed * 104_729) % 2003) as f64 / 1001.0) - 1.0;
        let x: Vec<f64> = (0..g.n * g.c * g.h * g.w).map(val).collect();
        let w: Vec<f64> = (0..g.o * g.k()).map(|i| val(i + 17)).collect();
        let b: Vec<f64> = (0..g.o).map(|i| val(i + 5)).collect();
        let gy: Vec<f64> = (0..g.n * g.o * g.ohw()).map(|i| val(i + 31)).collect();
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (x32, w32, b32, gy32) = (f(&x), f(&w), f(&b), f(&gy));
        let pairs = [
            (
                conv2d_forward(&x32, &w32, Some(&b32), &g, Activation::Identity),
                conv2d_forward(&x, &w, Some(&b), &g, Activation::Identity),
                "forward",
            ),
            (
                conv2d_input_grad(&gy32, &w32, &g),
                conv2d_input_grad(&gy, &w, &g),
                "input grad",
            ),
            (
                conv2d_weight_grad(&x32, &gy32, &g),
                conv2d_weight_grad(&x, &gy, &g),
                "weight grad",
            ),
        ];
        // Sums of K (forward), Og * taps (input grad) or N * OHW (weight
        // grad) products of values in [-1, 1].
        for (got, want, what) in pairs {
            assert_eq!(got.len(), want.len(), "{what} {g:?}");
            let terms = (g.k().max(g.og() * g.kh * g.kw).max(g.n * g.ohw())) as f64;
            for (i, (&a, &e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a as f64 - e).abs() <= 2e-6 * terms.sqrt() * (1.0 + e.abs()),
                    "{what} {g:?}: [{i}] {a} vs {e}"
                );
            }
        }
    }

    #[test]
    fn network_shapes_match_im2col() {
        // DeepConvNet's layers, 5x5, 1x1 with padding.
        for (c, hw, o, k, p) in [
            (1, 28, 16, 3, 1),
            (16, 28, 16, 3, 1),
            (16, 14, 32, 3, 1),
            (32, 14, 32, 3, 2),
            (32, 7, 64, 3, 1),
            // Rows of 8 and 16 outputs (stored straight into the output),
            // output channels not a multiple of the 6-row panels.
            (32, 8, 64, 3, 1),
            (16, 8, 13, 3, 1),
            (8, 16, 16, 3, 1),
            (8, 20, 13, 5, 2),
            (5, 9, 7, 1, 1),
        ] {
            // One sample: its tiles split over the threads.
            for n in [1, 3] {
                let g =
                    ConvGeom::sized(n, c, [hw, hw], o, [k, k], [1, 1], [p, p], [1, 1], 1).unwrap();
                // Else this would compare the im2col path with itself.
                assert_eq!(super::applies(&g), g.k() >= super::min_taps(), "{g:?}");
                check(g, 1);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_geometries_match_im2col(
            n in 1usize..4, c in 1usize..6, h in 1usize..12, w in 1usize..20, o in 1usize..20,
            kh in 1usize..5, kw in 1usize..5, ph in 0usize..3, pw in 0usize..3,
            dh in 1usize..3, dw in 1usize..3, groups in 1usize..3, seed in 0u64..100,
        ) {
            let (c, o, k, p, d) = (c * groups, o * groups, [kh, kw], [ph, pw], [dh, dw]);
            if let Some(g) = ConvGeom::sized(n, c, [h, w], o, k, [1, 1], p, d, groups) {
                check(g, seed);
            }
        }
    }
}
