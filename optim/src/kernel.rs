//! The elementwise machinery every optimizer step runs on: raw slices of the
//! parameter, its gradient and its state buffers, split across the compute
//! threads when a tensor is large.
//!
//! A step is memory-bound (Adam reads four and writes three values per
//! element), so the update of one element is a single pass over all its
//! arrays, and nothing is allocated per step.

use autograd::{Float, Tensor};

/// Elements one task updates: below this, splitting costs more than it saves.
const LEAF: usize = 1 << 15;

/// An optimizer's elementwise update over matching pieces of a parameter,
/// its `N` state buffers and its gradient.
///
/// Implementations mark `run` `#[inline(always)]`: it is then compiled into
/// each entry point below, the AVX2 one included (a closure would stay a
/// separate baseline-x86-64 function).
pub(crate) trait Kernel<T, const N: usize>: Sync {
    fn run(&self, p: &mut [T], bufs: [&mut [T]; N], g: &[T]);
}

/// Runs `k` on `p`, `bufs` and `g` (all of one length), in matching pieces
/// on the compute threads when they are large. Kernels are elementwise, so the
/// result never depends on how the arrays were split.
pub(crate) fn par_apply<T, const N: usize, K>(p: &mut [T], bufs: [&mut [T]; N], g: &[T], k: &K)
where
    T: Send + Sync,
    K: Kernel<T, N>,
{
    let n = p.len();
    assert!(
        g.len() == n && bufs.iter().all(|b| b.len() == n),
        "optimizer kernel: parameter, gradient and state lengths differ"
    );
    split(p, bufs, g, k);
}

fn split<T, const N: usize, K>(p: &mut [T], mut bufs: [&mut [T]; N], mut g: &[T], k: &K)
where
    T: Send + Sync,
    K: Kernel<T, N>,
{
    let n = p.len();
    let parts = autograd::num_threads().min(n / LEAF).max(1);
    if parts == 1 {
        return leaf(p, bufs, g, k);
    }
    // Pieces of a multiple of 64 elements so two threads never write one cache line.
    let per = n.div_ceil(parts).next_multiple_of(64);
    let mut pieces = Vec::with_capacity(parts);
    let mut p = p;
    while !p.is_empty() {
        let len = per.min(p.len());
        let (p0, p_rest) = std::mem::take(&mut p).split_at_mut(len);
        let (g0, g_rest) = g.split_at(len);
        let b0: [&mut [T]; N] = std::array::from_fn(|j| {
            let (head, tail) = std::mem::take(&mut bufs[j]).split_at_mut(len);
            bufs[j] = tail;
            head
        });
        pieces.push((p0, b0, g0));
        (p, g) = (p_rest, g_rest);
    }
    autograd::parallel_for_each(pieces, |_, (p, b, g)| leaf(p, b, g, k));
}

/// Runs `k` on one piece, compiled for AVX2 where the CPU has it (the build
/// targets baseline x86-64). Rust never fuses a multiply and an add, so both
/// versions compute the same bits; AVX2 only does more lanes at a time.
#[inline(always)]
fn leaf<T, const N: usize, K: Kernel<T, N>>(p: &mut [T], bufs: [&mut [T]; N], g: &[T], k: &K) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { leaf_avx2(p, bufs, g, k) };
        }
    }
    k.run(p, bufs, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leaf_avx2<T, const N: usize, K: Kernel<T, N>>(
    p: &mut [T],
    bufs: [&mut [T]; N],
    g: &[T],
    k: &K,
) {
    k.run(p, bufs, g)
}

/// The gradient as the update uses it: negated to maximise, plus the L2
/// penalty `wd * p` (coupled weight decay).
#[derive(Clone, Copy)]
pub(crate) struct Direction<T> {
    pub maximize: bool,
    pub decay: bool,
    pub wd: T,
}

impl<T: Float> Direction<T> {
    pub fn new(maximize: bool, weight_decay: f64) -> Self {
        Direction {
            maximize,
            decay: weight_decay != 0.0,
            wd: T::of(weight_decay),
        }
    }

    #[inline(always)]
    pub fn of(self, g: T, p: T) -> T {
        let d = if self.maximize { -g } else { g };
        if self.decay {
            d + self.wd * p
        } else {
            d
        }
    }
}

/// Calls `f` with the parameter's values (writable, in place, unseen by
/// autograd) and the gradient's, both in row-major order, as the state
/// buffers are. Tensors in another layout go through a row-major copy.
pub(crate) fn with_slices<T: Float, R>(
    p: &Tensor<T>,
    g: &Tensor<T>,
    f: impl FnOnce(&mut [T], &[T]) -> R,
) -> R {
    let gr = g.read();
    let g_copy;
    let gs: &[T] = match gr.as_slice() {
        Some(s) => s,
        None => {
            g_copy = gr.as_standard_layout().into_owned();
            g_copy.as_slice().expect("row-major copy")
        }
    };
    let mut pw = p.write();
    if pw.is_standard_layout() {
        // Copies first only if a saved value or a view shares the buffer.
        f(pw.as_slice_mut().expect("row-major"), gs)
    } else {
        let mut copy = pw.as_standard_layout().into_owned();
        let r = f(copy.as_slice_mut().expect("row-major copy"), gs);
        *pw = copy.into_shared();
        r
    }
}

/// `T::of` for the scalars of an update, computed in f64 as PyTorch's Python scalars are.
#[inline]
pub(crate) fn c<T: Float>(x: f64) -> T {
    T::of(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of a kernel gives the same bits as the baseline one.
    #[test]
    fn avx2_and_baseline_agree_bit_for_bit() {
        let n = 1003;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let start: Vec<f32> = (0..n)
            .map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        struct AdamLike;
        impl Kernel<f32, 2> for AdamLike {
            #[inline(always)]
            fn run(&self, p: &mut [f32], [m, v]: [&mut [f32]; 2], g: &[f32]) {
                for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                    *m += 0.1 * (g - *m);
                    *v = *v * 0.999 + 0.001 * g * g;
                    *p += -0.01 * *m / (v.sqrt() / 0.0316 + 1e-8);
                }
            }
        }
        let run = |avx: bool| {
            let (mut p, mut m, mut v) = (start.clone(), vec![0.1f32; n], vec![0.2f32; n]);
            for _ in 0..3 {
                let bufs = [m.as_mut_slice(), v.as_mut_slice()];
                if avx {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: only called when the CPU has AVX2.
                    unsafe {
                        leaf_avx2(&mut p, bufs, &g, &AdamLike)
                    }
                } else {
                    AdamLike.run(&mut p, bufs, &g)
                }
            }
            (p, m, v)
        };
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let (a, b) = (run(true), run(false));
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.0), bits(&b.0));
            assert_eq!(bits(&a.1), bits(&b.1));
            assert_eq!(bits(&a.2), bits(&b.2));
        }
    }
}
