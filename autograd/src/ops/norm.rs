//! Batch normalisation as one fused op (PyTorch's `F.batch_norm`): batch
//! statistics in training (biased variance to normalise, unbiased variance
//! into the running estimate, momentum 0.1, eps 1e-5 by default), running
//! statistics in evaluation. The backward pass is a fused kernel; when the
//! backward itself is recorded (`create_graph`) the same formulas run as
//! differentiable ops, so second derivatives work too.

use ndarray::{ArrayD, IxDyn};

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::graph::is_grad_enabled;
use crate::kernels::channels::{channel_sums, channel_sums2};
use crate::kernels::team;
use crate::ops::conv::with_slice;
use crate::ops::need;
use crate::saved::Saved;
use crate::tensor::Tensor;

/// The arguments of [`Tensor::batch_norm`] besides the input, by name, so
/// that the four `[C]` tensors cannot be passed in the wrong order (PyTorch's
/// `F.batch_norm(input, running_mean, running_var, weight, bias, training,
/// momentum, eps)`; one difference: `training` defaults to true here).
///
/// ```
/// use autograd::{BatchNormArgs, Tensor};
/// let (rm, rv) = (Tensor::zeros([3]), Tensor::ones([3]));
/// let gamma = Tensor::full([3], 2.0f32);
/// let args = BatchNormArgs::new().running_mean(&rm).running_var(&rv).weight(&gamma);
/// let y = Tensor::<f32>::randn([8, 3, 4, 4]).batch_norm(args);
/// assert_eq!(y.shape(), [8, 3, 4, 4]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BatchNormArgs<'a, T: Float = f32> {
    /// Running mean `[C]`: read in evaluation, updated in place in training.
    pub running_mean: Option<&'a Tensor<T>>,
    /// Running (unbiased) variance `[C]`: read in evaluation, updated in place in training.
    pub running_var: Option<&'a Tensor<T>>,
    /// Scale `gamma` `[C]` (ones when absent).
    pub weight: Option<&'a Tensor<T>>,
    /// Shift `beta` `[C]` (zeros when absent).
    pub bias: Option<&'a Tensor<T>>,
    /// Batch statistics (and running-statistics updates) when true; running statistics when false.
    pub training: bool,
    /// Weight of the new batch statistic in the running estimate (PyTorch's sense).
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl<T: Float> Default for BatchNormArgs<'_, T> {
    fn default() -> Self {
        BatchNormArgs {
            running_mean: None,
            running_var: None,
            weight: None,
            bias: None,
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

impl<'a, T: Float> BatchNormArgs<'a, T> {
    /// Training mode, no tensors, momentum 0.1, eps 1e-5 (PyTorch's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the running mean `[C]`.
    pub fn running_mean(mut self, t: &'a Tensor<T>) -> Self {
        self.running_mean = Some(t);
        self
    }

    /// Sets the running variance `[C]`.
    pub fn running_var(mut self, t: &'a Tensor<T>) -> Self {
        self.running_var = Some(t);
        self
    }

    /// Sets the scale `gamma` `[C]`.
    pub fn weight(mut self, t: &'a Tensor<T>) -> Self {
        self.weight = Some(t);
        self
    }

    /// Sets the shift `beta` `[C]`.
    pub fn bias(mut self, t: &'a Tensor<T>) -> Self {
        self.bias = Some(t);
        self
    }

    /// Batch statistics (true) or running statistics (false).
    pub fn training(mut self, on: bool) -> Self {
        self.training = on;
        self
    }

    /// Sets the momentum of the running estimates.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }

    /// Sets the variance epsilon.
    pub fn eps(mut self, e: f64) -> Self {
        self.eps = e;
        self
    }
}

// The per-channel helpers (here and in `kernels::channels`) take
// `f(channel)`, which returns the element function of that channel: its
// statistics are read once per plane, so the loops over a plane vectorize.

/// Elements per chunk the threads claim in the maps (whole planes): claiming
/// each 2x2 plane on its own cost more than mapping it.
const MAP_CHUNK: usize = 4096;

/// `out[n, c, s] = f(c)(x[n, c, s])`.
fn per_channel_map<T: Float, G: Fn(T) -> T>(
    x: &[T],
    c: usize,
    s: usize,
    f: impl Fn(usize) -> G + Sync,
) -> Vec<T> {
    per_channel_map2(x, x, c, s, |ch| {
        let g = f(ch);
        move |v, _| g(v)
    })
}

/// `out[n, c, s] = f(c)(a[n, c, s], b[n, c, s])`.
fn per_channel_map2<T: Float, G: Fn(T, T) -> T>(
    a: &[T],
    b: &[T],
    c: usize,
    s: usize,
    f: impl Fn(usize) -> G + Sync,
) -> Vec<T> {
    if s == 0 {
        return vec![T::zero(); a.len()];
    }
    // Planes `k0..` into `o` (whole planes).
    let run = |k0: usize, o: &mut [T]| {
        let (a, b) = (&a[k0 * s..], &b[k0 * s..]);
        for (j, ((op, ap), bp)) in o
            .chunks_mut(s)
            .zip(a.chunks(s))
            .zip(b.chunks(s))
            .enumerate()
        {
            let g = f((k0 + j) % c);
            for ((ov, &u), &v) in op.iter_mut().zip(ap).zip(bp) {
                *ov = g(u, v);
            }
        }
    };
    let parallel = a.len() >= 1 << 15;
    let planes = if parallel {
        (MAP_CHUNK / s).max(1)
    } else {
        a.len() / s
    };
    team::zeroed_chunks(a.len(), planes * s, parallel, |i, o| run(i * planes, o))
}

impl<T: Float> Tensor<T> {
    /// Batch normalisation of `[N, C]`, `[N, C, L]` or `[N, C, H, W]` per
    /// channel `C`, with the optional affine `weight`/`bias` `[C]` and
    /// running statistics `[C]` (updated in place in training) of `args`.
    ///
    /// ```
    /// use autograd::{BatchNormArgs, Tensor};
    /// let x = Tensor::<f32>::randn([8, 3, 4, 4]);
    /// let (rm, rv) = (Tensor::zeros([3]), Tensor::ones([3]));
    /// let y = x.batch_norm(BatchNormArgs::new().running_mean(&rm).running_var(&rv));
    /// assert!(y.mean_dim([0, 2, 3], false).to_vec().iter().all(|m| m.abs() < 1e-5));
    /// ```
    pub fn try_batch_norm(&self, args: BatchNormArgs<'_, T>) -> Result<Tensor<T>> {
        let BatchNormArgs {
            running_mean,
            running_var,
            weight,
            bias,
            training,
            momentum,
            eps,
        } = args;
        let shape = self.shape();
        let bad = |reason: String| Error::InvalidArgument {
            op: "batch_norm",
            shape: shape.clone(),
            reason,
        };
        if shape.len() < 2 {
            return Err(bad("input must be [N, C, ...]".into()));
        }
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        for (name, t) in [
            ("weight", weight),
            ("bias", bias),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ] {
            if let Some(t) = t {
                if t.shape() != [c] {
                    return Err(bad(format!(
                        "{name} has shape {:?}, expected [{c}]",
                        t.shape()
                    )));
                }
            }
        }
        if running_mean.is_some() != running_var.is_some() {
            return Err(bad(
                "give both running_mean and running_var, or neither".into()
            ));
        }
        let m = n * s;
        let eps = T::of(eps);
        let (mean, var) = if training {
            if m <= 1 {
                return Err(bad(format!(
                    "training needs more than one value per channel, got {m}"
                )));
            }
            let (mean, var) = with_slice(self, |x| {
                let sums = channel_sums(x, n, c, s, |_| |v| v);
                let mean: Vec<T> = sums.iter().map(|&v| v / T::of(m as f64)).collect();
                let sq = channel_sums(x, n, c, s, |ch| {
                    let mu = mean[ch];
                    move |v| (v - mu) * (v - mu)
                });
                (
                    mean,
                    sq.iter().map(|&v| v / T::of(m as f64)).collect::<Vec<T>>(),
                )
            });
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let mo = T::of(momentum);
                let unbias = T::of(m as f64 / (m as f64 - 1.0));
                rm.write()
                    .iter_mut()
                    .zip(&mean)
                    .for_each(|(r, &b)| *r = (T::one() - mo) * *r + mo * b);
                rv.write()
                    .iter_mut()
                    .zip(&var)
                    .for_each(|(r, &b)| *r = (T::one() - mo) * *r + mo * b * unbias);
            }
            (mean, var)
        } else {
            match (running_mean, running_var) {
                (Some(rm), Some(rv)) => (rm.to_vec(), rv.to_vec()),
                _ => {
                    return Err(bad(
                        "evaluation mode needs running_mean and running_var".into()
                    ))
                }
            }
        };
        let invstd: Vec<T> = var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect();
        let gamma: Vec<T> = weight.map_or_else(|| vec![T::one(); c], |w| w.to_vec());
        let beta: Vec<T> = bias.map_or_else(|| vec![T::zero(); c], |b| b.to_vec());
        let y = with_slice(self, |x| {
            per_channel_map(x, c, s, |ch| {
                let (mu, inv, ga, be) = (mean[ch], invstd[ch], gamma[ch], beta[ch]);
                move |v| (v - mu) * inv * ga + be
            })
        });
        let y = ArrayD::from_shape_vec(IxDyn(&shape), y).expect("same size");

        let x = Saved::input("batch_norm", 0, self);
        let w = weight.map(|w| Saved::input("batch_norm", 1, w));
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let has_w = weight.is_some();
        Ok(Tensor::from_op(y, "batch_norm", &inputs, move |ctx| {
            let x = x.get()?;
            let (needs_x, needs_w) = (ctx.needs[0], has_w && ctx.needs[1]);
            let needs_b = ctx.needs.len() > 1 + has_w as usize && ctx.needs[1 + has_w as usize];
            // The input's gradient depends on the weight: checked on both
            // paths, though the fused one reads the values copied at forward.
            if let (true, Some(w)) = (needs_x, &w) {
                w.get()?;
            }
            let axes: Vec<isize> = std::iter::once(0).chain(2..shape.len() as isize).collect();
            let mut bshape = vec![1usize; shape.len()];
            bshape[1] = c;
            let (dx, dw, db) = if is_grad_enabled() {
                // Recorded backward: the formulas as differentiable ops.
                let g = ctx.grad;
                let (xhat, inv) = if training {
                    let mu = x.try_mean_dim(axes.clone(), true)?;
                    let xc = x.try_sub(&mu)?;
                    let var = xc.try_mul(&xc)?.try_mean_dim(axes.clone(), true)?;
                    let inv = var.add_scalar(eps.as_f64()).powf(-0.5);
                    (xc.try_mul(&inv)?, inv)
                } else {
                    let mu = Tensor::from_vec(mean.clone(), &bshape);
                    let inv = Tensor::from_vec(invstd.clone(), &bshape);
                    (x.try_sub(&mu)?.try_mul(&inv)?, inv)
                };
                let dxhat = match &w {
                    Some(w) => g.try_mul(&w.get()?.try_reshape(&bshape)?)?,
                    None => g.clone(),
                };
                let dx = need(needs_x, || {
                    if training {
                        let a = dxhat.try_mean_dim(axes.clone(), true)?;
                        let b = dxhat.try_mul(&xhat)?.try_mean_dim(axes.clone(), true)?;
                        dxhat
                            .try_sub(&a)?
                            .try_sub(&xhat.try_mul(&b)?)?
                            .try_mul(&inv)
                    } else {
                        dxhat.try_mul(&inv)
                    }
                })?;
                let dw = need(needs_w, || {
                    g.try_mul(&xhat)?.try_sum_dim(axes.clone(), false)
                })?;
                let db = need(needs_b, || g.try_sum_dim(axes.clone(), false))?;
                (dx, dw, db)
            } else {
                // Fused: sum(g) and sum(g * xhat) per channel, then one pass.
                let (sum_g, sum_gx) = with_slice(ctx.grad, |g| {
                    with_slice(x, |xv| {
                        let sg = channel_sums(g, n, c, s, |_| |v| v);
                        let sgx = channel_sums2(g, xv, n, c, s, |ch| {
                            let (mu, inv) = (mean[ch], invstd[ch]);
                            move |gv, v| gv * (v - mu) * inv
                        });
                        (sg, sgx)
                    })
                });
                let dx = need(needs_x, || {
                    let mf = T::of(m as f64);
                    let v = with_slice(ctx.grad, |g| {
                        with_slice(x, |xv| {
                            per_channel_map2(g, xv, c, s, |ch| {
                                let k = gamma[ch] * invstd[ch];
                                let (mu, inv) = (mean[ch], invstd[ch]);
                                let (mg, mgx) = (sum_g[ch] / mf, sum_gx[ch] / mf);
                                // `training` is the same for every element: the
                                // branch is hoisted out of the plane's loop.
                                move |gv, v| {
                                    if training {
                                        k * (gv - mg - (v - mu) * inv * mgx)
                                    } else {
                                        k * gv
                                    }
                                }
                            })
                        })
                    });
                    Ok(Tensor::from_array(
                        ArrayD::from_shape_vec(IxDyn(&shape), v).expect("same size"),
                    ))
                })?;
                let dw = need(needs_w, || Ok(Tensor::from_vec(sum_gx.clone(), [c])))?;
                let db = need(needs_b, || Ok(Tensor::from_vec(sum_g.clone(), [c])))?;
                (dx, dw, db)
            };
            let mut grads = vec![dx];
            if has_w {
                grads.push(dw);
            }
            if ctx.needs.len() > 1 + has_w as usize {
                grads.push(db);
            }
            Ok(grads)
        }))
    }

    /// Batch normalisation; see [`try_batch_norm`](Self::try_batch_norm).
    #[track_caller]
    pub fn batch_norm(&self, args: BatchNormArgs<'_, T>) -> Tensor<T> {
        ok(self.try_batch_norm(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs above the parallel threshold (channels split over the threads,
    /// planes dealt in runs) give what a plain loop gives.
    #[test]
    fn parallel_channel_kernels_match_a_plain_loop() {
        // Large planes, and 2x2 planes (many planes to a claimed chunk,
        // channels wrapping inside it).
        for (n, c, s) in [(3, 7, 1601), (1200, 7, 4)] {
            check_channel_kernels(n, c, s);
        }
    }

    fn check_channel_kernels(n: usize, c: usize, s: usize) {
        let a: Vec<f64> = (0..n * c * s)
            .map(|i| ((i * 37) % 101) as f64 / 7.0)
            .collect();
        let b: Vec<f64> = (0..n * c * s)
            .map(|i| ((i * 13) % 89) as f64 / 3.0)
            .collect();
        assert!(a.len() >= 1 << 15);
        let (mut sum, mut sum2) = (vec![0.0; c], vec![0.0; c]);
        let (mut map, mut map2) = (vec![0.0; a.len()], vec![0.0; a.len()]);
        for i in 0..a.len() {
            let ch = (i / s) % c;
            sum[ch] += a[i] * ch as f64;
            sum2[ch] += a[i] * b[i] + ch as f64;
            map[i] = a[i] - ch as f64;
            map2[i] = a[i] * b[i] - ch as f64;
        }
        let close = |x: &[f64], y: &[f64]| {
            x.iter()
                .zip(y)
                .all(|(p, q)| (p - q).abs() <= 1e-12 * (1.0 + q.abs()))
        };
        assert!(close(
            &channel_sums(&a, n, c, s, |ch| move |v| v * ch as f64),
            &sum
        ));
        assert!(close(
            &channel_sums2(&a, &b, n, c, s, |ch| move |u, v| u * v + ch as f64),
            &sum2
        ));
        assert!(close(
            &per_channel_map(&a, c, s, |ch| move |v| v - ch as f64),
            &map
        ));
        assert!(close(
            &per_channel_map2(&a, &b, c, s, |ch| move |u, v| u * v - ch as f64),
            &map2
        ));
    }
}
