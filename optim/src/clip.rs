//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{clip_grad_norm_, clip_grad_value_};
//!
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_();
//! let b = Tensor::from_vec(vec![0.5f32], [1]).requires_grad_();
//! (w.square().sum() + b.sum() * 3.0).backward(); // grads [2, -4] and [3]
//! let params = vec![w.clone(), b.clone()];
//! let norm = clip_grad_norm_(&params, 1.0, 2.0);
//! assert!((norm - 29f64.sqrt()).abs() < 1e-6);   // the norm before clipping
//! let g = w.grad().unwrap().to_vec();
//! assert!((g[0] as f64 - 2.0 / (29f64.sqrt() + 1e-6)).abs() < 1e-6);
//! clip_grad_value_(&params, 0.5);
//! assert_eq!(b.grad().unwrap().item(), 0.5);
//! ```
//!
//! Both change the gradients in place and see every parameter that has a
//! gradient, as PyTorch's do.

use autograd::{Float, Tensor};
use rayon::prelude::*;

use crate::error::{ok, OptimError, Result};

/// Elements per parallel piece of a norm (fixed, so the sum is deterministic).
const PIECE: usize = 1 << 16;

/// Scales all gradients together so that their total norm (of order
/// `norm_type`: 2.0, 1.0, `f64::INFINITY`, ...) is at most `max_norm`, and
/// returns the total norm before clipping.
///
/// As PyTorch: the total is the norm of the per-tensor norms, and gradients
/// are multiplied by `max_norm / (total + 1e-6)` when that is below 1. With
/// no gradients the norm is 0. A NaN or infinite norm clips nothing useful;
/// see [`try_clip_grad_norm_`] to make it an error.
pub fn clip_grad_norm_<'a, T: Float>(
    params: impl IntoIterator<Item = &'a Tensor<T>>,
    max_norm: f64,
    norm_type: f64,
) -> f64 {
    clip(params, max_norm, norm_type, false).expect("no error without the finiteness check")
}

/// [`clip_grad_norm_`] that fails, changing nothing, when the total norm is
/// NaN or infinite (PyTorch's `error_if_nonfinite=True`).
pub fn try_clip_grad_norm_<'a, T: Float>(
    params: impl IntoIterator<Item = &'a Tensor<T>>,
    max_norm: f64,
    norm_type: f64,
) -> Result<f64> {
    clip(params, max_norm, norm_type, true)
}

fn clip<'a, T: Float>(
    params: impl IntoIterator<Item = &'a Tensor<T>>,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<f64> {
    let grads: Vec<Tensor<T>> = params.into_iter().filter_map(|p| p.grad()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let norms: Vec<f64> = grads.iter().map(|g| tensor_norm(g, norm_type)).collect();
    let total = vector_norm(&norms, norm_type);
    if error_if_nonfinite && !total.is_finite() {
        return Err(OptimError::NonFiniteNorm {
            norm_type,
            norm: total,
        });
    }
    // PyTorch computes the coefficient in the gradients' precision, and
    // `max_norm / t` as `t.reciprocal() * max_norm`.
    let coef = (T::one() / (T::of(total) + T::of(1e-6))) * T::of(max_norm);
    if coef < T::one() {
        for g in &grads {
            map_in_place(g, |x| x * coef);
        }
    }
    Ok(total)
}

/// Clamps every gradient to `[-clip_value, clip_value]` (NaN stays NaN).
///
/// # Panics
/// If `clip_value` is negative or NaN; see [`try_clip_grad_value_`].
#[track_caller]
pub fn clip_grad_value_<'a, T: Float>(
    params: impl IntoIterator<Item = &'a Tensor<T>>,
    clip_value: f64,
) {
    ok(try_clip_grad_value_(params, clip_value))
}

/// Clamps every gradient to `[-clip_value, clip_value]`.
pub fn try_clip_grad_value_<'a, T: Float>(
    params: impl IntoIterator<Item = &'a Tensor<T>>,
    clip_value: f64,
) -> Result<()> {
    if clip_value < 0.0 || clip_value.is_nan() {
        return Err(OptimError::InvalidConfig {
            what: "clip_grad_value_",
            reason: format!("clip_value must be >= 0, got {clip_value}"),
        });
    }
    let (lo, hi) = (T::of(-clip_value), T::of(clip_value));
    for g in params.into_iter().filter_map(|p| p.grad()) {
        map_in_place(&g, |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        });
    }
    Ok(())
}

/// Applies `f` to every value of `t`, in place, in any memory order.
fn map_in_place<T: Float>(t: &Tensor<T>, f: impl Fn(T) -> T + Sync) {
    let mut w = t.write();
    match w.as_slice_memory_order_mut() {
        Some(s) if s.len() > PIECE => s.par_chunks_mut(PIECE).for_each(|c| {
            autograd::sync_flush_denormals();
            c.iter_mut().for_each(|x| *x = f(*x))
        }),
        Some(s) => s.iter_mut().for_each(|x| *x = f(*x)),
        None => w.mapv_inplace(f),
    }
}

/// One tensor's norm of order `p`, accumulated in f64.
fn tensor_norm<T: Float>(t: &Tensor<T>, p: f64) -> f64 {
    let r = t.read();
    let piece = |s: &[T]| -> f64 {
        autograd::sync_flush_denormals();
        accumulate(s.iter().map(|x| x.as_f64().abs()), p)
    };
    let partials: Vec<f64> = match r.as_slice_memory_order() {
        // Pieces in a fixed order: the same gradients give the same norm, bit for bit.
        Some(s) if s.len() > PIECE => s.par_chunks(PIECE).map(piece).collect(),
        Some(s) => vec![piece(s)],
        None => vec![accumulate(r.iter().map(|x| x.as_f64().abs()), p)],
    };
    finish(combine(&partials, p), p)
}

/// The norm of order `p` of plain values.
fn vector_norm(values: &[f64], p: f64) -> f64 {
    finish(accumulate(values.iter().map(|x| x.abs()), p), p)
}

/// The reduction of absolute values behind a norm: max, min, count, or sum of powers.
fn accumulate(abs: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == f64::INFINITY {
        abs.fold(0.0, |m, x| if x > m || x.is_nan() { x } else { m })
    } else if p == f64::NEG_INFINITY {
        abs.fold(
            f64::INFINITY,
            |m, x| if x < m || x.is_nan() { x } else { m },
        )
    } else if p == 0.0 {
        abs.filter(|&x| x != 0.0).count() as f64
    } else if p == 1.0 {
        abs.sum()
    } else if p == 2.0 {
        abs.map(|x| x * x).sum()
    } else {
        abs.map(|x| x.powf(p)).sum()
    }
}

/// Combines per-piece reductions.
fn combine(partials: &[f64], p: f64) -> f64 {
    let it = partials.iter().copied();
    if p == f64::INFINITY {
        it.fold(0.0, |m, x| if x > m || x.is_nan() { x } else { m })
    } else if p == f64::NEG_INFINITY {
        it.fold(
            f64::INFINITY,
            |m, x| if x < m || x.is_nan() { x } else { m },
        )
    } else {
        it.sum()
    }
}

/// From the reduction to the norm: the p-th root where there is one.
fn finish(acc: f64, p: f64) -> f64 {
    if p.is_infinite() || p == 0.0 || p == 1.0 {
        acc
    } else if p == 2.0 {
        acc.sqrt()
    } else {
        acc.powf(1.0 / p)
    }
}
