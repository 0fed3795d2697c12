//! Pooling kernels over `planes` independent `H x W` planes (N*C of them).
//! Every pooling (max, average, adaptive) is described by its windows along
//! each axis, so one set of loops serves them all.
//!
//! Here: the windows, the loop over planes, average pooling and the max
//! pool's gradient scatter/gather; `max` holds the max pool's forward scans.

pub(in crate::kernels) mod max;

pub(crate) use max::max_pool;

use super::team;
use crate::dtype::Float;

/// The windows along one axis: output `i` reads input positions
/// `lo[i], lo[i] + step, ...` below `hi[i]`, and averages divide by `div[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Windows {
    pub lo: Vec<usize>,
    pub hi: Vec<usize>,
    pub div: Vec<usize>,
    pub step: usize,
}

impl Windows {
    pub fn len(&self) -> usize {
        self.lo.len()
    }

    /// Sliding windows as PyTorch's pooling: kernel `k`, stride `s`, padding
    /// `p`, dilation `d`, `out` outputs; `div` counts the padded window
    /// (`count_include_pad`) or only the positions inside the input.
    pub fn sliding(
        size: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
        out: usize,
        count_pad: bool,
    ) -> Windows {
        let mut w = Windows {
            lo: Vec::with_capacity(out),
            hi: Vec::with_capacity(out),
            div: Vec::with_capacity(out),
            step: d,
        };
        for i in 0..out {
            let start = (i * s) as isize - p as isize;
            // Padded extent (for the divisor), clipped at size + padding as PyTorch does.
            let end_pad = (start + ((k - 1) * d + 1) as isize).min((size + p) as isize);
            // First tap at or after 0.
            let first = if start < 0 {
                start + ((-start) as usize).div_ceil(d) as isize * d as isize
            } else {
                start
            };
            let end = end_pad.min(size as isize);
            let (lo, hi) = if first < end {
                (first as usize, end as usize)
            } else {
                (0, 0)
            };
            let inside = if hi > lo { (hi - lo).div_ceil(d) } else { 0 };
            let padded = ((end_pad - start).max(0) as usize).div_ceil(d);
            w.lo.push(lo);
            w.hi.push(hi);
            w.div.push(if count_pad { padded } else { inside });
        }
        w
    }

    /// Windows of exactly two taps at `2i, 2i + 1`: kernel 2, stride 2, no padding.
    pub fn is_pairs(&self) -> bool {
        self.step == 1
            && self
                .lo
                .iter()
                .zip(&self.hi)
                .enumerate()
                .all(|(i, (&lo, &hi))| lo == 2 * i && hi == lo + 2)
    }

    /// Adaptive windows: output `i` of `out` covers `[floor(i*size/out), ceil((i+1)*size/out))`.
    pub fn adaptive(size: usize, out: usize) -> Windows {
        let lo: Vec<usize> = (0..out).map(|i| i * size / out).collect();
        let hi: Vec<usize> = (0..out).map(|i| ((i + 1) * size).div_ceil(out)).collect();
        let div = lo.iter().zip(&hi).map(|(l, h)| h - l).collect();
        Windows {
            lo,
            hi,
            div,
            step: 1,
        }
    }
}

fn for_planes<T: Float, U: Send>(
    out: &mut [T],
    extra: &mut [U],
    per: usize,
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    if per == 0 {
        return;
    }
    // `extra` has one chunk per plane too: `per` values (max_pool's indices)
    // or a single placeholder; chunking it by `per` would stop the zip early.
    let planes = out.len() / per;
    let per_extra = (extra.len() / planes.max(1)).max(1);
    debug_assert_eq!(extra.len(), planes * per_extra);
    // From 4K outputs: GoogLeNet's pools on 8x8 and 4x4 planes at batch 1
    // (7.7K-16K outputs) take both threads (measured against a bound of
    // 32K: 1.01-1.04x its batch-1 latency, 2026-12-05).
    let big = out.len() >= 1 << 12;
    if big && planes >= 2 {
        let each = planes.div_ceil(team::threads().min(planes));
        let parts = out
            .chunks_mut(each * per)
            .zip(extra.chunks_mut(each * per_extra))
            .collect();
        team::for_each(parts, |t, (o, e): (&mut [T], &mut [U])| {
            for (i, (o, e)) in o.chunks_mut(per).zip(e.chunks_mut(per_extra)).enumerate() {
                f(t * each + i, o, e);
            }
        });
    } else {
        for (i, (o, e)) in out
            .chunks_mut(per)
            .zip(extra.chunks_mut(per_extra))
            .enumerate()
        {
            f(i, o, e);
        }
    }
}

/// Adds each output gradient into the input position its maximum came from.
pub(crate) fn scatter_max<T: Float>(
    g: &[T],
    idx: &[u32],
    planes: usize,
    plane_in: usize,
) -> Vec<T> {
    let plane_out = g.len() / planes.max(1);
    let len = planes * plane_in;
    // As `for_planes` splits them, each thread zeroing its own planes.
    let parallel = len >= 1 << 15 && planes >= 2;
    let each = if parallel {
        planes.div_ceil(team::threads().min(planes))
    } else {
        planes.max(1)
    };
    team::zeroed_chunks(len, each * plane_in, parallel, |c, d| {
        for (j, d) in d.chunks_mut(plane_in).enumerate() {
            let p = c * each + j;
            let (gp, ip) = (
                &g[p * plane_out..(p + 1) * plane_out],
                &idx[p * plane_out..(p + 1) * plane_out],
            );
            for (&gv, &i) in gp.iter().zip(ip) {
                d[i as usize] += gv;
            }
        }
    })
}

/// Reads `g` at the recorded maxima: the adjoint of [`scatter_max`].
pub(crate) fn gather_max<T: Float>(g: &[T], idx: &[u32], planes: usize, plane_in: usize) -> Vec<T> {
    let plane_out = idx.len() / planes.max(1);
    idx.iter()
        .enumerate()
        .map(|(k, &i)| g[(k / plane_out) * plane_in + i as usize])
        .collect()
}

/// Window sums divided by the windows' divisors.
pub(crate) fn avg_pool<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    wh: &Windows,
    ww: &Windows,
) -> Vec<T> {
    let (oh, ow) = (wh.len(), ww.len());
    let mut out = vec![T::zero(); planes * oh * ow];
    let mut none: Vec<u8> = vec![0; planes];
    for_planes(&mut out, &mut none, oh * ow, |p, o, _| {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for i in 0..oh {
            for j in 0..ow {
                let mut s = T::zero();
                for y in (wh.lo[i]..wh.hi[i]).step_by(wh.step) {
                    for xx in (ww.lo[j]..ww.hi[j]).step_by(ww.step) {
                        s += plane[y * w + xx];
                    }
                }
                let div = (wh.div[i] * ww.div[j]).max(1);
                o[i * ow + j] = s / T::of(div as f64);
            }
        }
    });
    out
}

/// The adjoint of [`avg_pool`]: spreads `g / divisor` over each window.
pub(crate) fn avg_pool_adjoint<T: Float>(
    g: &[T],
    planes: usize,
    h: usize,
    w: usize,
    wh: &Windows,
    ww: &Windows,
) -> Vec<T> {
    let (oh, ow) = (wh.len(), ww.len());
    let mut dx = vec![T::zero(); planes * h * w];
    let mut none: Vec<u8> = vec![0; planes];
    for_planes(&mut dx, &mut none, h * w, |p, d, _| {
        d.fill(T::zero());
        let gp = &g[p * oh * ow..(p + 1) * oh * ow];
        for i in 0..oh {
            for j in 0..ow {
                let div = (wh.div[i] * ww.div[j]).max(1);
                let v = gp[i * ow + j] / T::of(div as f64);
                for y in (wh.lo[i]..wh.hi[i]).step_by(wh.step) {
                    for xx in (ww.lo[j]..ww.hi[j]).step_by(ww.step) {
                        d[y * w + xx] += v;
                    }
                }
            }
        }
    });
    dx
}
