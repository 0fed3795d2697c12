//! Losses: softmax cross-entropy on integer labels (per-class weights, an
//! ignored label, label smoothing; `[N, C]` or per-pixel `[N, C, H, W]`
//! logits), mean squared error, binary cross-entropy with logits, and the
//! robust regression losses smooth L1 and Huber.

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

/// Options of [`Tensor::cross_entropy_opts`], PyTorch's defaults: the
/// mean, no label smoothing, no ignored label, every class weighing 1.
///
/// ```
/// use autograd::{ops::loss::CrossEntropyOptions, Tensor};
/// // Per-pixel logits [N, C, H, W] and labels [N, H, W]; 255 marks "unlabelled".
/// let logits = Tensor::<f32>::zeros([1, 3, 2, 2]);
/// let opts = CrossEntropyOptions::new().ignore_index(255).weight(vec![0.2, 1.0, 1.0]);
/// let loss = logits.cross_entropy_opts(&[0, 1, 255, 2], &opts);
/// assert!((loss.item() - 3f32.ln()).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrossEntropyOptions {
    /// How the per-prediction losses are combined (default: the weighted mean).
    pub reduction: Reduction,
    /// `eps` in `[0, 1]`: the target is `(1 - eps) * onehot + eps / C` (default 0).
    pub label_smoothing: f64,
    /// A label that contributes neither loss nor gradient, and is left out of
    /// the mean's divisor; it may lie outside `0..C` (default none).
    pub ignore_index: Option<usize>,
    /// One weight per class, scaling each prediction's loss by its label's
    /// weight (and the smoothing term class by class); default none (all 1).
    pub weight: Option<Vec<f64>>,
}

impl CrossEntropyOptions {
    /// The defaults: mean, no smoothing, nothing ignored, unweighted.
    pub fn new() -> Self {
        Self::default()
    }
    /// How the per-prediction losses are combined.
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Label smoothing `eps` in `[0, 1]`.
    pub fn label_smoothing(mut self, eps: f64) -> Self {
        self.label_smoothing = eps;
        self
    }
    /// The label to ignore (PyTorch's `ignore_index`).
    pub fn ignore_index(mut self, label: usize) -> Self {
        self.ignore_index = Some(label);
        self
    }
    /// One weight per class (PyTorch's `weight`).
    pub fn weight(mut self, w: impl Into<Vec<f64>>) -> Self {
        self.weight = Some(w.into());
        self
    }
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

    /// Softmax cross-entropy with a reduction and label smoothing `eps`;
    /// shorthand for [`try_cross_entropy_opts`](Self::try_cross_entropy_opts)
    /// without class weights or an ignored label.
    pub fn try_cross_entropy_with(
        &self,
        targets: &[usize],
        reduction: Reduction,
        label_smoothing: f64,
    ) -> Result<Tensor<T>> {
        self.try_cross_entropy_opts(
            targets,
            &CrossEntropyOptions::new()
                .reduction(reduction)
                .label_smoothing(label_smoothing),
        )
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

    /// Softmax cross-entropy of logits `[N, C]` (or `[N, C, d1, ...]`, class
    /// dim second as in PyTorch: per-pixel logits `[N, C, H, W]` against
    /// labels `[N, H, W]`) against class indices (`N` or `N*d1*...` of them,
    /// row-major), as PyTorch's `cross_entropy` with class-index targets.
    ///
    /// Each prediction's loss is `sum_c q_c * (lse - x_c)` with the target
    /// `q = (1 - eps) * w[t] * onehot(t) + eps / C * w` (`w`: the class
    /// weights, all 1 by default); predictions whose label is the
    /// `ignore_index` count 0. [`Reduction::Mean`] divides the sum by the
    /// total weight `sum w[t]` of the predictions not ignored (their number
    /// without weights), so it is NaN when every label is ignored, as in
    /// PyTorch. Fused and stable (log-sum-exp); the gradient is
    /// `sum(q) * softmax - q`.
    pub fn try_cross_entropy_opts(
        &self,
        targets: &[usize],
        opts: &CrossEntropyOptions,
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
        let eps = opts.label_smoothing;
        if !(0.0..=1.0).contains(&eps) {
            return Err(bad(format!("label_smoothing {eps} is outside [0, 1]")));
        }
        let c = shape[1];
        if let Some(w) = &opts.weight {
            if w.len() != c {
                return Err(bad(format!("{} class weights for {c} classes", w.len())));
            }
        }
        let rows: usize = shape.iter().product::<usize>() / c.max(1);
        if targets.len() != rows {
            return Err(bad(format!(
                "{} targets for {rows} predictions",
                targets.len()
            )));
        }
        if let Some(&t) = targets
            .iter()
            .find(|&&t| t >= c && Some(t) != opts.ignore_index)
        {
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
        let (per_row, total_weight) = flat.cross_entropy_rows(targets, opts);
        let per_row = if shape.len() == 2 || opts.reduction != Reduction::None {
            per_row
        } else {
            let mut out_shape = vec![shape[0]];
            out_shape.extend(&shape[2..]);
            per_row.try_reshape(out_shape)?
        };
        Ok(match opts.reduction {
            Reduction::Mean if opts.weight.is_some() || opts.ignore_index.is_some() => {
                per_row.sum().div_scalar(total_weight)
            }
            r => per_row.reduce(r),
        })
    }

    /// Softmax cross-entropy with class weights, an ignored label and label
    /// smoothing; see [`try_cross_entropy_opts`](Self::try_cross_entropy_opts).
    #[track_caller]
    pub fn cross_entropy_opts(&self, targets: &[usize], opts: &CrossEntropyOptions) -> Tensor<T> {
        ok(self.try_cross_entropy_opts(targets, opts))
    }

    /// The fused core on `[M, C]`: one loss per row, and the total weight of
    /// the rows not ignored (the divisor of the mean).
    fn cross_entropy_rows(
        &self,
        targets: &[usize],
        opts: &CrossEntropyOptions,
    ) -> (Tensor<T>, f64) {
        let a = self.array();
        let (m, c) = (a.shape()[0], a.shape()[1]);
        let eps = T::of(opts.label_smoothing);
        let on = T::one() - eps;
        let off = eps / T::of(c as f64);
        let weight: Option<Vec<T>> = opts
            .weight
            .as_ref()
            .map(|w| w.iter().map(|&v| T::of(v)).collect());
        let w_sum = weight
            .as_ref()
            .map_or(T::of(c as f64), |w| w.iter().fold(T::zero(), |s, &v| s + v));
        // Per row: the weight of its label (0 if ignored) and the target's
        // total mass, `on * w[t] + off * sum(w)` (the softmax's factor in the gradient).
        let label_weight: Vec<T> = targets
            .iter()
            .map(|&t| match (&weight, Some(t) == opts.ignore_index) {
                (_, true) => T::zero(),
                (Some(w), false) => w[t],
                (None, false) => T::one(),
            })
            .collect();
        let total_weight = label_weight.iter().fold(0.0, |s, v| s + v.as_f64());
        let mut probs = ArrayD::<T>::zeros(IxDyn(&[m, c]));
        let mut losses = Array1::<T>::zeros(m);
        let mut mass = vec![T::zero(); m];
        for (i, (row, mut p)) in a
            .axis_iter(Axis(0))
            .zip(probs.axis_iter_mut(Axis(0)))
            .enumerate()
        {
            let ignored = Some(targets[i]) == opts.ignore_index;
            let mx = row.fold(T::neg_infinity(), |acc, &v| acc.max(v));
            let mut s = T::zero();
            for (pi, &v) in p.iter_mut().zip(row.iter()) {
                *pi = (v - mx).exp();
                s += *pi;
            }
            let lse = mx + s.ln();
            p.mapv_inplace(|e| e / s);
            if ignored {
                continue;
            }
            // -sum(target * log p) with log p = x - lse
            let mut l = on * label_weight[i] * (lse - row[targets[i]]);
            if eps != T::zero() {
                let smooth = match &weight {
                    Some(w) => row
                        .iter()
                        .zip(w)
                        .fold(T::zero(), |acc, (&v, &wc)| acc + wc * (lse - v)),
                    None => row.fold(T::zero(), |acc, &v| acc + (lse - v)),
                };
                l += off * smooth;
            }
            losses[i] = l;
            mass[i] = on * label_weight[i] + off * w_sum;
        }
        let x = Saved::input("cross_entropy", 0, self);
        let targets = targets.to_vec();
        let probs = probs.into_shared();
        let ignore = opts.ignore_index;
        let out = Tensor::from_op(losses.into_dyn(), "cross_entropy", &[self], move |ctx| {
            let g = ctx.grad.try_reshape([m, 1])?;
            // q: the (unnormalised) target distribution of each row.
            let mut target = ArrayD::<T>::zeros(IxDyn(&[m, c]));
            for (i, (&t, mut q)) in targets
                .iter()
                .zip(target.axis_iter_mut(Axis(0)))
                .enumerate()
            {
                if Some(t) == ignore {
                    continue;
                }
                match &weight {
                    Some(w) => q.iter_mut().zip(w).for_each(|(q, &wc)| *q = off * wc),
                    None => q.fill(off),
                }
                q[t] += on * label_weight[i];
            }
            if is_grad_enabled() {
                // Recording (create_graph): go through the differentiable softmax.
                let scale = ArrayD::from_shape_vec(IxDyn(&[m, 1]), mass.clone()).expect("m rows");
                let p = x
                    .get()?
                    .try_softmax(1)?
                    .try_mul(&Tensor::from_array(scale))?;
                return Ok(vec![Some(
                    p.try_sub(&Tensor::from_array(target))?.try_mul(&g)?,
                )]);
            }
            let g: Vec<T> = g.array().iter().copied().collect();
            // (mass * p - q) * g, row by row, in place of q.
            let rows = target.axis_iter_mut(Axis(0)).zip(probs.axis_iter(Axis(0)));
            for ((mut q, p), (&s, &gi)) in rows.zip(mass.iter().zip(&g)) {
                for (q, &p) in q.iter_mut().zip(p) {
                    *q = (p * s - *q) * gi;
                }
            }
            Ok(vec![Some(Tensor::from_array(target))])
        });
        (out, total_weight)
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

    /// Smooth L1 loss against `target` (same shape), as PyTorch's
    /// `smooth_l1_loss(input, target, reduction, beta)`: per element
    /// `0.5 d² / beta` where `|d| < beta`, else `|d| - 0.5 beta`, with
    /// `d = input - target`; `beta = 0` is the L1 loss. Errors on a negative
    /// or non-finite `beta` or on differing shapes.
    pub fn try_smooth_l1_loss(
        &self,
        target: &Tensor<T>,
        reduction: Reduction,
        beta: f64,
    ) -> Result<Tensor<T>> {
        self.check_regression_target("smooth_l1_loss", target)?;
        if !(beta >= 0.0 && beta.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "smooth_l1_loss",
                shape: self.shape(),
                reason: format!("beta {beta} must be finite and >= 0"),
            });
        }
        if beta == 0.0 {
            // PyTorch falls back to the L1 loss (the quadratic zone is empty).
            return Ok(self.try_sub(target)?.abs().reduce(reduction));
        }
        // smooth_l1(beta) = huber(delta = beta) / beta.
        Ok(self
            .huber_elementwise(target, beta, 1.0 / beta, "smooth_l1_loss")?
            .reduce(reduction))
    }

    /// Mean smooth L1 loss with threshold `beta`; see [`try_smooth_l1_loss`](Self::try_smooth_l1_loss).
    #[track_caller]
    pub fn smooth_l1_loss(&self, target: &Tensor<T>, beta: f64) -> Tensor<T> {
        ok(self.try_smooth_l1_loss(target, Reduction::Mean, beta))
    }

    /// Huber loss against `target` (same shape), as PyTorch's
    /// `huber_loss(input, target, reduction, delta)`: per element `0.5 d²`
    /// where `|d| < delta`, else `delta (|d| - 0.5 delta)`, with
    /// `d = input - target`; its gradient `clamp(d, -delta, delta)` is the
    /// clipped error of DQN. Errors on a non-positive or non-finite `delta`
    /// or on differing shapes.
    pub fn try_huber_loss(
        &self,
        target: &Tensor<T>,
        reduction: Reduction,
        delta: f64,
    ) -> Result<Tensor<T>> {
        self.check_regression_target("huber_loss", target)?;
        if !(delta > 0.0 && delta.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "huber_loss",
                shape: self.shape(),
                reason: format!("delta {delta} must be finite and > 0"),
            });
        }
        Ok(self
            .huber_elementwise(target, delta, 1.0, "huber_loss")?
            .reduce(reduction))
    }

    /// Mean Huber loss with threshold `delta`; see [`try_huber_loss`](Self::try_huber_loss).
    #[track_caller]
    pub fn huber_loss(&self, target: &Tensor<T>, delta: f64) -> Tensor<T> {
        ok(self.try_huber_loss(target, Reduction::Mean, delta))
    }

    fn check_regression_target(&self, op: &'static str, target: &Tensor<T>) -> Result<()> {
        if self.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape(),
                rhs: target.shape(),
                reason: "(input and target) differ".into(),
            });
        }
        Ok(())
    }

    /// `scale * huber_delta(self - target)` per element, fused; the backward
    /// is `scale * clamp(d, -delta, delta)` written with differentiable ops,
    /// so second order works (clamp's gradient is the 0/1 second derivative).
    fn huber_elementwise(
        &self,
        target: &Tensor<T>,
        delta: f64,
        scale: f64,
        op: &'static str,
    ) -> Result<Tensor<T>> {
        let (xa, ya) = (self.array(), target.array());
        let (dt, half, sc) = (T::of(delta), T::of(0.5), T::of(scale));
        let out = kernels::zip2(op, &xa.view(), &ya.view(), |x, y| {
            let d = x - y;
            let a = d.abs();
            let l = if a < dt {
                half * d * d
            } else {
                dt * (a - half * dt)
            };
            sc * l
        })?;
        let (x, y) = (Saved::input(op, 0, self), Saved::input(op, 1, target));
        Ok(Tensor::from_op(out, op, &[self, target], move |c| {
            let slope = || -> Result<Tensor<T>> {
                let clipped = x.get()?.try_sub(y.get()?)?.clamp(Some(-delta), Some(delta));
                c.grad.try_mul(&clipped.mul_scalar(scale))
            };
            Ok(vec![
                need(c.needs[0], slope)?,
                need(c.needs[1], || Ok(slope()?.neg()))?,
            ])
        }))
    }
}
