//! Losses: softmax cross-entropy on integer labels (optional label
//! smoothing), mean squared error, binary cross-entropy with logits.

use ndarray::{Array1, ArrayD, Axis, IxDyn};

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::graph::is_grad_enabled;
use crate::kernels;
use crate::ops::need;
use crate::saved::Saved;
use crate::tensor::Tensor;

/// How per-element losses are combined, as PyTorch's `reduction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The average (the default).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element (per sample for cross-entropy).
    None,
}

impl<T: Float> Tensor<T> {
    fn reduce(&self, reduction: Reduction) -> Tensor<T> {
        match reduction {
            Reduction::Mean => self.mean(),
            Reduction::Sum => self.sum(),
            Reduction::None => self.clone(),
        }
    }

    /// Mean softmax cross-entropy of logits `[N, C]` against class indices.
    #[track_caller]
    pub fn cross_entropy(&self, targets: &[usize]) -> Tensor<T> {
        ok(self.try_cross_entropy_with(targets, Reduction::Mean, 0.0))
    }

    /// Softmax cross-entropy of logits `[N, C]` (or `[N, C, d1, ...]`, class
    /// dim second as in PyTorch) against class indices (`N` or `N*d1*...` of
    /// them, row-major), with a reduction and label smoothing `eps`:
    /// the target is `(1 - eps) * onehot + eps / C`. Fused and stable
    /// (log-sum-exp); the gradient is `softmax - target`.
    pub fn try_cross_entropy_with(
        &self,
        targets: &[usize],
        reduction: Reduction,
        label_smoothing: f64,
    ) -> Result<Tensor<T>> {
        let shape = self.shape();
        let bad = |reason: String| Error::InvalidArgument {
            op: "cross_entropy",
            shape: shape.clone(),
            reason,
        };
        if shape.len() < 2 {
            return Err(bad("logits must be [N, C] or [N, C, d1, ...]".into()));
        }
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(bad(format!(
                "label_smoothing {label_smoothing} is outside [0, 1]"
            )));
        }
        let c = shape[1];
        let rows: usize = shape.iter().product::<usize>() / c.max(1);
        if targets.len() != rows {
            return Err(bad(format!(
                "{} targets for {rows} predictions",
                targets.len()
            )));
        }
        if let Some(&t) = targets.iter().find(|&&t| t >= c) {
            return Err(bad(format!(
                "target class {t} is out of range for {c} classes"
            )));
        }
        // Classes last, then one row per prediction.
        let flat = if shape.len() == 2 {
            self.clone()
        } else {
            let mut perm: Vec<usize> = vec![0];
            perm.extend(2..shape.len());
            perm.push(1);
            self.try_permute(perm)?.try_reshape([rows, c])?
        };
        let per_row = flat.cross_entropy_rows(targets, T::of(label_smoothing));
        let per_row = if shape.len() == 2 || reduction != Reduction::None {
            per_row
        } else {
            let mut out_shape = vec![shape[0]];
            out_shape.extend(&shape[2..]);
            per_row.try_reshape(out_shape)?
        };
        Ok(per_row.reduce(reduction))
    }

    /// Softmax cross-entropy with options; see [`try_cross_entropy_with`](Self::try_cross_entropy_with).
    #[track_caller]
    pub fn cross_entropy_with(
        &self,
        targets: &[usize],
        reduction: Reduction,
        label_smoothing: f64,
    ) -> Tensor<T> {
        ok(self.try_cross_entropy_with(targets, reduction, label_smoothing))
    }

    /// The fused core on `[M, C]`: one loss per row.
    fn cross_entropy_rows(&self, targets: &[usize], eps: T) -> Tensor<T> {
        let a = self.array();
        let (m, c) = (a.shape()[0], a.shape()[1]);
        let mut probs = ArrayD::<T>::zeros(IxDyn(&[m, c]));
        let mut losses = Array1::<T>::zeros(m);
        let on = T::one() - eps;
        let off = eps / T::of(c as f64);
        for (((row, mut p), loss), &t) in a
            .axis_iter(Axis(0))
            .zip(probs.axis_iter_mut(Axis(0)))
            .zip(losses.iter_mut())
            .zip(targets)
        {
            let mx = row.fold(T::neg_infinity(), |acc, &v| acc.max(v));
            let mut s = T::zero();
            for (pi, &v) in p.iter_mut().zip(row.iter()) {
                *pi = (v - mx).exp();
                s += *pi;
            }
            let lse = mx + s.ln();
            p.mapv_inplace(|e| e / s);
            // -sum(target * log p) with log p = x - lse
            let mut l = on * (lse - row[t]);
            if eps != T::zero() {
                let sum_logp = row.fold(T::zero(), |acc, &v| acc + (v - lse));
                l -= off * sum_logp;
            }
            *loss = l;
        }
        let x = Saved::input("cross_entropy", 0, self);
        let targets = targets.to_vec();
        let probs = probs.into_shared();
        Tensor::from_op(losses.into_dyn(), "cross_entropy", &[self], move |ctx| {
            let g = ctx.grad.try_reshape([m, 1])?;
            let mut target = ArrayD::<T>::from_elem(IxDyn(&[m, c]), off);
            for (i, &t) in targets.iter().enumerate() {
                target[[i, t]] += on;
            }
            if is_grad_enabled() {
                // Recording (create_graph): go through the differentiable softmax.
                let p = x.get()?.try_softmax(1)?;
                return Ok(vec![Some(
                    p.try_sub(&Tensor::from_array(target))?.try_mul(&g)?,
                )]);
            }
            let ga = g.array();
            let gview = ga.view();
            let gb = gview.broadcast(IxDyn(&[m, c])).expect("broadcast");
            let out = kernels::zip3(&probs.view(), &target.view(), &gb, |p, q, g| (p - q) * g);
            Ok(vec![Some(Tensor::from_array(out))])
        })
    }

    /// Mean squared error against `target` (same shape).
    pub fn try_mse_loss(&self, target: &Tensor<T>, reduction: Reduction) -> Result<Tensor<T>> {
        if self.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op: "mse_loss",
                lhs: self.shape(),
                rhs: target.shape(),
                reason: "(input and target) differ".into(),
            });
        }
        let d = self.try_sub(target)?;
        Ok(d.try_mul(&d)?.reduce(reduction))
    }

    /// Mean squared error against `target`.
    #[track_caller]
    pub fn mse_loss(&self, target: &Tensor<T>) -> Tensor<T> {
        ok(self.try_mse_loss(target, Reduction::Mean))
    }

    /// Binary cross-entropy of logits against targets in `[0, 1]` (same shape):
    /// `max(x, 0) - x * y + log(1 + exp(-|x|))`, stable for any `x`.
    pub fn try_bce_with_logits(
        &self,
        target: &Tensor<T>,
        reduction: Reduction,
    ) -> Result<Tensor<T>> {
        if self.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op: "bce_with_logits",
                lhs: self.shape(),
                rhs: target.shape(),
                reason: "(input and target) differ".into(),
            });
        }
        let (xa, ya) = (self.array(), target.array());
        let out = kernels::zip2("bce_with_logits", &xa.view(), &ya.view(), |x, y| {
            x.max(T::zero()) - x * y + (T::one() + (-x.abs()).exp()).ln()
        })?;
        let x = Saved::input("bce_with_logits", 0, self);
        let y = Saved::input("bce_with_logits", 1, target);
        let per = Tensor::from_op(out, "bce_with_logits", &[self, target], move |c| {
            Ok(vec![
                need(c.needs[0], || {
                    c.grad.try_mul(&x.get()?.sigmoid().try_sub(y.get()?)?)
                })?,
                need(c.needs[1], || Ok(c.grad.try_mul(x.get()?)?.neg()))?,
            ])
        });
        Ok(per.reduce(reduction))
    }

    /// Mean binary cross-entropy of logits against targets.
    #[track_caller]
    pub fn bce_with_logits(&self, target: &Tensor<T>) -> Tensor<T> {
        ok(self.try_bce_with_logits(target, Reduction::Mean))
    }
}
