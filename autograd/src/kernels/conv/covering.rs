//! Kernels whose live taps cover the whole input plane, with no padding
//! left: one output pixel per sample, each input pixel read by exactly one
//! tap. ResNet-18 on 32x32 images ends that way: its 3x3 layers on 1x1
//! planes keep the centre tap only, and the stride-2 3x3 layer from 2x2 to
//! 1x1 keeps a 2x2 corner. A sample's column matrix is then the sample
//! itself (`C H W` values in NCHW order), so the batch's is `x` as it lies,
//! an `N x C HW` matrix, and the three products of the layer are plain
//! GEMMs over the live weights `W'` (`O x C HW`):
//! `y = x W'^T`, `dx = gy W'`, `dW' = gy^T x`. im2col copied those columns a
//! value at a time (one value per kernel row on a 1x1 plane), and the
//! weight gradient went through a zeroed full-size buffer before the live
//! taps were scattered into a second one.
//!
//! A single live tap on a larger plane (a 1x1 kernel at stride 2 from 2x2
//! to 1x1: ResNet-18's last downsampling) reads pixel 0 of each channel:
//! the same products with `x` read every `H W` values, and `dx` zero
//! elsewhere.

use super::{dead_taps, Activation, ConvGeom};
use crate::dtype::Float;
use crate::kernels::scratch::with_scratch;
use crate::kernels::team;

/// Below this batch the products are too thin for a GEMM: the live taps
/// are copied out (with gradients off, taken from the weight cache) and
/// the narrow kernels that read them in place take the products.
const MIN_BATCH: usize = 16;

/// A convolution whose live taps cover the plane.
pub(crate) struct Covering {
    /// The full kernel's tap (`ky KW + kx`) that reads each input pixel,
    /// pixel by pixel in row-major order (or pixel 0 alone).
    taps: Vec<usize>,
    /// How far apart a channel's live values lie in `x`: 1 where the taps
    /// cover the plane, `H W` where one tap reads pixel 0.
    pixel_stride: usize,
}

/// Where the live weights `W'` (`O x C HW`, row `o`, column `c HW + p`) are.
enum Live<'a, T> {
    /// The weight as it lies (no dead taps): row stride `C KK`, column stride 1.
    Whole(&'a [T]),
    /// One live tap `t`: `w[t..]` with row stride `C KK`, column stride `KK`.
    OneTap(&'a [T]),
    /// Gathered into a buffer, `O x C HW` row-major.
    Gathered(&'a [T]),
}

impl<T> Live<'_, T> {
    /// The pointer, row stride and column stride of `W'`.
    fn view(&self, g: &ConvGeom, pixels: usize) -> (*const T, isize, isize) {
        let (row, kk) = (g.c * g.kh * g.kw, g.kh * g.kw);
        match self {
            Live::Whole(w) => (w.as_ptr(), row as isize, 1),
            Live::OneTap(w) => (w.as_ptr(), row as isize, kk as isize),
            Live::Gathered(w) => (w.as_ptr(), (g.c * pixels) as isize, 1),
        }
    }
}

/// The covering form of `g`: one group, a batch of [`MIN_BATCH`] or more,
/// one output pixel, and (after dropping dead taps) a kernel the size of
/// the plane with no padding and no gaps between its taps, or a single tap.
pub(crate) fn covering(g: &ConvGeom) -> Option<Covering> {
    if g.groups != 1 || g.n < MIN_BATCH || g.oh != 1 || g.ow != 1 || g.c == 0 || g.o == 0 {
        return None;
    }
    let pruned = dead_taps::prune(g);
    let live = pruned.as_ref().map_or(*g, |p| p.g);
    // The live taps row by row: with one output pixel, tap (ky, kx) of the
    // live kernel reads pixel (ky d, kx d) (prune leaves no padding).
    let taps = || {
        pruned
            .as_ref()
            .map_or_else(|| (0..g.kh * g.kw).collect(), |p| p.live_taps(g))
    };
    let covers = |size: usize, k: usize, pad: usize, d: usize| {
        k == size && pad == 0 && (d == 1 || size == 1)
    };
    if covers(g.h, live.kh, live.padding[0], g.dilation[0])
        && covers(g.w, live.kw, live.padding[1], g.dilation[1])
    {
        return Some(Covering {
            taps: taps(),
            pixel_stride: 1,
        });
    }
    (live.kh == 1 && live.kw == 1 && live.padding == [0, 0]).then(|| Covering {
        taps: taps(),
        pixel_stride: g.h * g.w,
    })
}

impl Covering {
    /// Runs `f` on the live weights `W'` of the full weight `w`.
    fn with_live<T: Float, R>(&self, w: &[T], g: &ConvGeom, f: impl FnOnce(Live<T>) -> R) -> R {
        let (kk, pixels) = (g.kh * g.kw, self.taps.len());
        assert!(
            w.len() >= g.o * g.c * kk,
            "covering: a weight of {} for {} x {} x {kk}",
            w.len(),
            g.o,
            g.c
        );
        if pixels == kk {
            return f(Live::Whole(w));
        }
        if pixels == 1 {
            return f(Live::OneTap(&w[self.taps[0]..]));
        }
        with_scratch(g.o * g.c * pixels, |out: &mut [T]| {
            dead_taps::gather(w, &self.taps, kk, out);
            f(Live::Gathered(out))
        })
    }

    /// Rows and column stride of the live part of `x` (or `dx`) as an
    /// `N x C P` matrix, with the elements it must span.
    fn x_view(&self, g: &ConvGeom) -> (isize, isize, usize) {
        let plane = g.c * g.h * g.w;
        (plane as isize, self.pixel_stride as isize, g.n * plane)
    }

    /// `y [N, O] = act(x' [N, C P] W'^T + bias)`, `x'` the live part of `x`.
    pub(crate) fn forward<T: Float>(
        &self,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        g: &ConvGeom,
        act: Activation,
    ) -> Vec<T> {
        let (n, o, pixels) = (g.n, g.o, self.taps.len());
        let k = g.c * pixels;
        let (rsx, csx, span) = self.x_view(g);
        assert!(
            x.len() >= span,
            "covering forward: an input of {} for {n} samples of {span}",
            x.len()
        );
        let mut y = vec![T::zero(); n * o];
        self.with_live(w, g, |live| {
            let (wp, rs, cs) = live.view(g, pixels);
            // SAFETY: x' is n x k at (rsx, csx) inside x (asserted), W' is
            // o x k at (wp, rs, cs) inside w, y is n x o row-major and
            // exclusively ours.
            unsafe {
                T::gemm(
                    n,
                    k,
                    o,
                    T::one(),
                    x.as_ptr(),
                    rsx,
                    csx,
                    wp,
                    cs,
                    rs,
                    T::zero(),
                    y.as_mut_ptr(),
                    o as isize,
                    1,
                    team::threads(),
                )
            };
        });
        if let Some(b) = bias {
            assert_eq!(b.len(), o, "covering forward: bias");
            for row in y.chunks_exact_mut(o) {
                row.iter_mut().zip(b).for_each(|(v, &bo)| *v += bo);
            }
        }
        act.apply(&mut y);
        y
    }

    /// `dx' [N, C P] = gy [N, O] W'` (zero at the pixels no tap reads).
    pub(crate) fn input_grad<T: Float>(&self, gy: &[T], w: &[T], g: &ConvGeom) -> Vec<T> {
        let (n, o, pixels) = (g.n, g.o, self.taps.len());
        let k = g.c * pixels;
        let (rsx, csx, span) = self.x_view(g);
        assert!(
            gy.len() >= n * o,
            "covering input grad: a gradient of {} for {n} x {o}",
            gy.len()
        );
        let mut dx = vec![T::zero(); span];
        self.with_live(w, g, |live| {
            let (wp, rs, cs) = live.view(g, pixels);
            // SAFETY: gy is n x o row-major (asserted), W' o x k at (wp, rs,
            // cs), dx' n x k at (rsx, csx) inside dx, which is ours.
            unsafe {
                T::gemm(
                    n,
                    o,
                    k,
                    T::one(),
                    gy.as_ptr(),
                    o as isize,
                    1,
                    wp,
                    rs,
                    cs,
                    T::zero(),
                    dx.as_mut_ptr(),
                    rsx,
                    csx,
                    team::threads(),
                )
            };
        });
        dx
    }

    /// The full weight gradient `[O, C, KH, KW]`: `dW' = gy^T x'` at the
    /// live taps, zero at the dead ones.
    pub(crate) fn weight_grad<T: Float>(&self, x: &[T], gy: &[T], g: &ConvGeom) -> Vec<T> {
        let (n, o, pixels, kk) = (g.n, g.o, self.taps.len(), g.kh * g.kw);
        let k = g.c * pixels;
        let (rsx, csx, span) = self.x_view(g);
        assert!(
            x.len() >= span && gy.len() >= n * o,
            "covering weight grad: {} inputs and {} gradients for {n} samples of {span} and {o}",
            x.len(),
            gy.len()
        );
        let product = |dw: &mut [T]| {
            // SAFETY: gy^T is o x n (row stride 1, column stride o), x' is
            // n x k at (rsx, csx) inside x (asserted), dw o x k row-major.
            unsafe {
                T::gemm(
                    o,
                    n,
                    k,
                    T::one(),
                    gy.as_ptr(),
                    1,
                    o as isize,
                    x.as_ptr(),
                    rsx,
                    csx,
                    T::zero(),
                    dw.as_mut_ptr(),
                    k as isize,
                    1,
                    team::threads(),
                )
            };
        };
        if pixels == kk {
            let mut dw = vec![T::zero(); o * k];
            product(&mut dw);
            return dw;
        }
        with_scratch(o * k, |live: &mut [T]| {
            product(live);
            dead_taps::spread(live, &self.taps, kk)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::geom::Products;
    use super::*;

    impl Products for Covering {
        fn run<T: Float>(&self, g: &ConvGeom, x: &[T], w: &[T], b: &[T], gy: &[T]) -> [Vec<T>; 4] {
            [
                self.forward(x, w, Some(b), g, Activation::Identity),
                self.forward(x, w, Some(b), g, Activation::Relu),
                self.input_grad(gy, w, g),
                self.weight_grad(x, gy, g),
            ]
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn geom(
        n: usize,
        c: usize,
        hw: [usize; 2],
        o: usize,
        k: [usize; 2],
        s: usize,
        p: [usize; 2],
        d: usize,
    ) -> Option<ConvGeom> {
        ConvGeom::sized(n, c, hw, o, k, [s, s], p, [d, d], 1)
    }

    /// Taken on ResNet-18's last stage at 32x32 (and a kernel the plane's
    /// size), not where a pixel is read by several taps or none.
    #[test]
    fn taken_where_the_live_taps_cover_the_plane() {
        let taps = |g: Option<ConvGeom>| covering(&g.expect("an output")).map(|c| c.taps);
        assert_eq!(
            taps(geom(64, 8, [1, 1], 8, [3, 3], 1, [1, 1], 1)),
            Some(vec![4])
        );
        assert_eq!(
            taps(geom(64, 8, [2, 2], 8, [3, 3], 2, [1, 1], 1)),
            Some(vec![4, 5, 7, 8])
        );
        assert_eq!(
            taps(geom(16, 8, [2, 3], 8, [2, 3], 1, [0, 0], 1)),
            Some(vec![0, 1, 2, 3, 4, 5])
        );
        assert_eq!(
            taps(geom(16, 8, [1, 1], 8, [1, 1], 1, [0, 0], 1)),
            Some(vec![0])
        );
        assert_eq!(
            taps(geom(16, 8, [1, 1], 8, [3, 3], 1, [2, 2], 2)),
            Some(vec![4])
        );
        assert_eq!(
            taps(geom(15, 8, [1, 1], 8, [3, 3], 1, [1, 1], 1)),
            None,
            "below MIN_BATCH"
        );
        assert_eq!(
            taps(geom(64, 8, [2, 2], 8, [3, 3], 1, [1, 1], 1)),
            None,
            "2x2 outputs"
        );
        assert_eq!(
            taps(geom(64, 8, [2, 2], 8, [1, 1], 2, [0, 0], 1)),
            Some(vec![0]),
            "one tap, reading pixel 0"
        );
        assert_eq!(
            taps(geom(64, 8, [3, 3], 8, [3, 3], 5, [2, 2], 1)),
            Some(vec![8]),
            "one live tap, reading pixel 0"
        );
        assert_eq!(
            taps(geom(64, 8, [3, 3], 8, [2, 2], 1, [0, 0], 2)),
            None,
            "dilated taps skip pixels (several of them)"
        );
        let grouped = ConvGeom::sized(64, 8, [1, 1], 8, [3, 3], [1, 1], [1, 1], [1, 1], 2);
        assert!(covering(&grouped.expect("an output")).is_none(), "groups");
    }

    /// The three products against sums over every (output, tap) of the
    /// full kernel (`ConvGeom::assert_matches_sums`).
    #[test]
    fn matches_sums_over_taps() {
        let shapes = [
            (16, [1, 1], [3, 3], 1, [1, 1], 1),
            (17, [2, 2], [3, 3], 2, [1, 1], 1),
            (16, [2, 2], [2, 2], 1, [0, 0], 1),
            (20, [2, 1], [3, 3], 2, [1, 1], 1),
            (16, [1, 1], [1, 1], 1, [0, 0], 1),
            (16, [1, 1], [5, 5], 1, [4, 4], 2),
            (16, [3, 3], [5, 5], 3, [1, 1], 1),
            (16, [2, 2], [1, 1], 2, [0, 0], 1),
            (16, [3, 2], [3, 3], 5, [2, 2], 1),
        ];
        for (n, hw, k, s, p, d) in shapes {
            for (c, o) in [(3, 5), (17, 2), (40, 33)] {
                let g = geom(n, c, hw, o, k, s, p, d).expect("an output");
                g.assert_matches_sums(&covering(&g).unwrap_or_else(|| panic!("covering {g:?}")));
            }
        }
    }
}
