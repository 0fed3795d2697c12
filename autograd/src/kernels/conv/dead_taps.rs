//! Kernel taps that only ever read padding are dropped before a
//! convolution runs. ResNet-18 on 32x32 images ends on 1x1 planes, where a
//! 3x3 kernel with padding 1 sees the input through its centre tap only:
//! the other 8/9 of the product multiplied zeros (a fifth of the network's
//! arithmetic). Without those taps the layer is a 1x1 convolution, a plain
//! matrix product; the weight gradient of a dropped tap is exactly zero.

use super::ConvGeom;
use crate::dtype::Float;

/// The same convolution over the live taps only: kernel rows
/// `k0[0]..k0[0] + g.kh`, columns `k0[1]..k0[1] + g.kw` of the original.
pub(crate) struct Pruned {
    pub(crate) g: ConvGeom,
    k0: [usize; 2],
}

/// The live taps `k0..=k1` along one axis, if fewer than all and they can be
/// expressed as a smaller kernel with less padding giving the same output size.
fn live_range(
    h: usize,
    oh: usize,
    s: usize,
    p: usize,
    d: usize,
    k: usize,
) -> Option<(usize, usize)> {
    let live = |kk: usize| {
        (0..oh).any(|o| {
            let pos = (o * s + kk * d) as isize - p as isize;
            pos >= 0 && pos < h as isize
        })
    };
    let k0 = (0..k).find(|&kk| live(kk))?;
    let k1 = (0..k).rev().find(|&kk| live(kk))?;
    if (k0 == 0 && k1 == k - 1) || !(k0..=k1).all(live) || k0 * d > p {
        return None;
    }
    // The smaller kernel with padding p - k0 * d must give the same output size.
    let (kp, pp) = (k1 - k0 + 1, p - k0 * d);
    let span = d * (kp - 1) + 1;
    (h + 2 * pp >= span && (h + 2 * pp - span) / s + 1 == oh).then_some((k0, k1))
}

/// The pruned convolution, when some taps are dead.
pub(crate) fn prune(g: &ConvGeom) -> Option<Pruned> {
    let full = |k: usize| (0, k - 1);
    let rows = live_range(g.h, g.oh, g.stride[0], g.padding[0], g.dilation[0], g.kh);
    let cols = live_range(g.w, g.ow, g.stride[1], g.padding[1], g.dilation[1], g.kw);
    if rows.is_none() && cols.is_none() {
        return None;
    }
    let (r0, r1) = rows.unwrap_or(full(g.kh));
    let (c0, c1) = cols.unwrap_or(full(g.kw));
    Some(Pruned {
        g: ConvGeom {
            kh: r1 - r0 + 1,
            kw: c1 - c0 + 1,
            padding: [
                g.padding[0] - r0 * g.dilation[0],
                g.padding[1] - c0 * g.dilation[1],
            ],
            ..*g
        },
        k0: [r0, c0],
    })
}

impl Pruned {
    /// The live taps of a full weight `[O, Cg, KH, KW]`.
    pub(crate) fn weights<T: Float>(&self, full: &ConvGeom, w: &[T]) -> Vec<T> {
        let live = self.live_taps(full);
        let mut out = vec![T::zero(); full.o * full.cg() * live.len()];
        gather(w, &live, full.kh * full.kw, &mut out);
        out
    }

    /// Names the live taps (kernel size and first tap), as a cache key
    /// (the last entry: which rearrangement of them, 0 for the taps alone,
    /// the group count for the direct kernels' panels).
    pub(crate) fn key(&self) -> [usize; 5] {
        [self.g.kh, self.g.kw, self.k0[0], self.k0[1], 0]
    }

    /// The live taps' positions in a full `KH x KW` kernel, row by row.
    pub(crate) fn live_taps(&self, full: &ConvGeom) -> Vec<usize> {
        let (kh, kw) = (self.g.kh, self.g.kw);
        (0..kh)
            .flat_map(|r| (0..kw).map(move |c| (self.k0[0] + r) * full.kw + self.k0[1] + c))
            .collect()
    }

    /// The full weight gradient from the live taps' (zero at dead taps).
    pub(crate) fn full_grad<T: Float>(&self, full: &ConvGeom, dw: &[T]) -> Vec<T> {
        spread(dw, &self.live_taps(full), full.kh * full.kw)
    }
}

/// The values at `taps` of each `kk`-tap kernel of `w`, kernel by kernel
/// into `out`, 256 kernels at a time on the compute threads. Gathered tap by tap:
/// a copy call per kernel row (one float on a 1x1 plane) took most of
/// ResNet-18's time at batch 1.
pub(crate) fn gather<T: Float>(w: &[T], taps: &[usize], kk: usize, out: &mut [T]) {
    const KERNELS: usize = 256;
    let live = taps.len();
    crate::kernels::team::for_chunks(out, KERNELS * live, |i, chunk| {
        let src = &w[i * KERNELS * kk..];
        for (dst, plane) in chunk.chunks_exact_mut(live).zip(src.chunks_exact(kk)) {
            for (d, &t) in dst.iter_mut().zip(taps) {
                *d = plane[t];
            }
        }
    });
}

/// The inverse of [`gather`]: full `kk`-tap kernels from the values at
/// `taps`, zero elsewhere, 256 kernels at a time on the compute threads.
pub(crate) fn spread<T: Float>(live: &[T], taps: &[usize], kk: usize) -> Vec<T> {
    let len = live.len() / taps.len() * kk;
    let mut out = Vec::with_capacity(len);
    // Chunks of 256 whole kernels (9 KiB of f32 for 3x3), zeroed in one
    // call and then given their live values while in L1: zeroing each
    // kernel on its own was a library call per 9 values (ResNet-18's
    // 512 -> 512 weight gradients on 1x1 planes, 2.3 MB a layer: 1 ms).
    const KERNELS: usize = 256;
    crate::kernels::team::for_chunks(
        &mut out.spare_capacity_mut()[..len],
        KERNELS * kk,
        |i, chunk| {
            chunk.fill(std::mem::MaybeUninit::new(T::zero()));
            let src = &live[i * KERNELS * taps.len()..];
            for (plane, vals) in chunk.chunks_exact_mut(kk).zip(src.chunks_exact(taps.len())) {
                for (&t, &v) in taps.iter().zip(vals) {
                    plane[t].write(v);
                }
            }
        },
    );
    // SAFETY: the chunks cover all `len` elements, each written above.
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_forward, conv2d_input_grad, conv2d_weight_grad};
    use super::*;

    fn geom(hw: usize, c: usize, o: usize, k: usize, s: usize, p: usize, d: usize) -> ConvGeom {
        ConvGeom::sized(3, c, [hw, hw], o, [k, k], [s, s], [p, p], [d, d], 1).expect("an output")
    }

    /// What ResNet-18's last stage on 32x32 images needs.
    #[test]
    fn resnet_tail_layers_are_pruned() {
        let p = prune(&geom(1, 8, 8, 3, 1, 1, 1)).expect("1x1 plane");
        assert_eq!((p.g.kh, p.g.kw, p.g.padding, p.k0), (1, 1, [0, 0], [1, 1]));
        let p = prune(&geom(2, 8, 8, 3, 2, 1, 1)).expect("2x2 -> 1x1, stride 2");
        assert_eq!((p.g.kh, p.g.padding, p.k0), (2, [0, 0], [1, 1]));
        assert!(
            prune(&geom(2, 8, 8, 3, 1, 1, 1)).is_none(),
            "every tap is live"
        );
        assert!(prune(&geom(28, 8, 8, 3, 1, 1, 1)).is_none());
    }

    /// Pruned and full convolutions agree (the full one computed by hand
    /// here, as the kernels themselves prune).
    #[test]
    fn pruned_matches_direct_sum() {
        for (hw, k, s, p, d) in [
            (1, 3, 1, 1, 1),
            (2, 3, 2, 1, 1),
            (1, 5, 1, 2, 1),
            (1, 3, 1, 2, 2),
            (2, 5, 2, 3, 1),
        ] {
            let g = geom(hw, 3, 4, k, s, p, d);
            assert!(prune(&g).is_some(), "{g:?}");
            let val = |i: usize| ((i * 7919) % 97) as f64 / 48.0 - 1.0;
            let x: Vec<f64> = (0..g.n * g.c * hw * hw).map(val).collect();
            let w: Vec<f64> = (0..g.o * g.c * k * k).map(|i| val(i + 3)).collect();
            let gy: Vec<f64> = (0..g.n * g.o * g.ohw()).map(|i| val(i + 7)).collect();
            let [y, dx, dw] = g.reference_sums(&x, &w, None, &gy);
            let got = [
                conv2d_forward(&x, &w, None, &g, super::super::Activation::Identity),
                conv2d_input_grad(&gy, &w, &g),
                conv2d_weight_grad(&x, &gy, &g),
            ];
            for (what, (a, b)) in ["forward", "input grad", "weight grad"]
                .iter()
                .zip(got.iter().zip([&y, &dx, &dw]))
            {
                assert_eq!(a.len(), b.len());
                for (u, v) in a.iter().zip(b.iter()) {
                    assert!((u - v).abs() < 1e-12, "{what} {g:?}: {u} vs {v}");
                }
            }
        }
    }
}
