//! Per-channel sums over `[N, C, S]` data (batch norm's statistics and
//! gradients, a convolution's bias gradient), the channels split over the
//! threads.
//!
//! The helpers take `f(channel)`, which returns the element function of that
//! channel: its statistics are read once per plane, so the loops over a
//! plane vectorize (a closure indexing `mean[ch]` per element did not). Sums
//! run in 8 lanes, as one accumulator is a chain of dependent adds; the
//! order is fixed, so results do not depend on the threads.

use super::team;
use crate::dtype::Float;

/// Lanes of the per-channel sums.
const LANES: usize = 8;

fn add_lanes2<T: Float>(acc: &mut [T; LANES], us: &[T], vs: &[T], g: impl Fn(T, T) -> T) {
    let (mut iu, mut iv) = (us.chunks_exact(LANES), vs.chunks_exact(LANES));
    for (u, v) in (&mut iu).zip(&mut iv) {
        for ((a, &x), &y) in acc.iter_mut().zip(u).zip(v) {
            *a += g(x, y);
        }
    }
    for ((a, &x), &y) in acc.iter_mut().zip(iu.remainder()).zip(iv.remainder()) {
        *a += g(x, y);
    }
}

fn total<T: Float>(acc: [T; LANES]) -> T {
    acc.into_iter().fold(T::zero(), |s, v| s + v)
}

/// Per-channel sums over `[N, C, S]` data: `f(channel)(value)` summed.
pub(crate) fn channel_sums<T: Float, G: Fn(T) -> T>(
    x: &[T],
    n: usize,
    c: usize,
    s: usize,
    f: impl Fn(usize) -> G + Sync,
) -> Vec<T> {
    channel_sums2(x, x, n, c, s, |ch| {
        let g = f(ch);
        move |v, _| g(v)
    })
}

/// `[f(0), ..., f(c - 1)]`, the channels split over the threads.
fn per_channel_parallel<T: Send>(c: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let each = c.div_ceil(team::threads().min(c.max(1)));
    team::map(c.div_ceil(each.max(1)), |t| {
        (t * each..((t + 1) * each).min(c))
            .map(&f)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Per-channel sums of `f(channel)(a, b)` over two `[N, C, S]` arrays.
pub(crate) fn channel_sums2<T: Float, G: Fn(T, T) -> T>(
    a: &[T],
    b: &[T],
    n: usize,
    c: usize,
    s: usize,
    f: impl Fn(usize) -> G + Sync,
) -> Vec<T> {
    let sum_one = |ch: usize| {
        let (g, mut acc) = (f(ch), [T::zero(); LANES]);
        for i in 0..n {
            let base = (i * c + ch) * s;
            add_lanes2(&mut acc, &a[base..base + s], &b[base..base + s], &g);
        }
        total(acc)
    };
    if a.len() >= 1 << 15 {
        per_channel_parallel(c, sum_one)
    } else {
        (0..c).map(sum_one).collect()
    }
}
