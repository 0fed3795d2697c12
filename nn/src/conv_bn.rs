//! `Conv2d` → `BatchNorm2d` (→ `ReLU`) for inference: in eval mode the batch
//! norm is a fixed per-channel affine map, `s (y - mean) + beta` with
//! `s = gamma / sqrt(var + eps)`, so it folds into the convolution: weights
//! `s w`, bias `s (b - mean) + beta`. One convolution (with the ReLU applied
//! as it stores) then replaces three ops and two passes over the output.
//!
//! The folded weights are computed in f64, kept in the batch norm until a
//! tensor of either layer changes (ids and versions), and used only where
//! they give the same function: eval mode with running statistics,
//! gradients off (with gradients on, the layers' own parameters need theirs),
//! and no hooks on either layer (hooks see each layer's own output).
//! Otherwise the layers run one after another, as before. The results
//! differ from the unfused layers by rounding only (the products are
//! rescaled before the sums rather than after).
//!
//! ```
//! use autograd::{no_grad, Tensor};
//! use nn::{conv_bn, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Module};
//! let conv = Conv2d::new(Conv2dConfig::new(3, 8, 3).padding(1));
//! let bn = BatchNorm2d::new(BatchNormConfig::new(8));
//! bn.forward(&conv.forward(&Tensor::randn([4, 3, 6, 6]))); // running statistics
//! bn.set_training(false);
//! let x = Tensor::randn([1, 3, 6, 6]);
//! let fused = no_grad(|| conv_bn(&conv, &bn, &x, true));
//! let layers = no_grad(|| bn.forward(&conv.forward(&x)).relu());
//! let gap = fused.sub(&layers).abs().max().item();
//! assert!(gap < 1e-5, "{gap}");
//! ```

use std::sync::Mutex;

use autograd::{Float, Tensor};

use crate::batch_norm::BatchNorm;
use crate::{Conv2d, Module};

/// A convolution's weight and bias with a batch norm folded in, and the ids
/// and versions of the tensors they came from.
pub(crate) struct Folded<T: Float> {
    key: Vec<u64>,
    weight: Tensor<T>,
    bias: Tensor<T>,
}

/// Where a batch norm keeps the convolution folded into it (one per batch
/// norm: in a network each follows one convolution).
pub(crate) type FoldSlot<T> = Mutex<Option<Folded<T>>>;

/// `bn(conv(x))`, followed by a ReLU if `relu`: the convolution with the
/// batch norm folded in where that is the same function (see the module's
/// text), else the layers one after another.
pub fn conv_bn<T: Float>(
    conv: &Conv2d<T>,
    bn: &BatchNorm<T>,
    x: &Tensor<T>,
    relu: bool,
) -> Tensor<T> {
    let Some((weight, bias)) = folded(conv, bn) else {
        let y = bn.forward(&conv.forward(x));
        return if relu { y.relu() } else { y };
    };
    let opts = conv.config().options();
    if relu {
        x.conv2d_relu(&weight, Some(&bias), opts)
    } else {
        x.conv2d(&weight, Some(&bias), opts)
    }
}

/// The folded weight and bias, from the slot when no tensor changed;
/// `None` where folding does not apply.
fn folded<T: Float>(conv: &Conv2d<T>, bn: &BatchNorm<T>) -> Option<(Tensor<T>, Tensor<T>)> {
    let no_hooks = |m: &dyn Module<T>| m.hooks().is_none_or(|h| h.is_empty());
    let Some((mean, var)) = bn.running_stats() else {
        // Training: the weights will change; drop the folded copy.
        bn.fold_slot()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        return None;
    };
    // Mismatched channels: the layers' own error.
    let channels = conv.weight.shape().first() == Some(&mean.numel());
    if autograd::is_grad_enabled() || !no_hooks(conv) || !no_hooks(bn) || !channels {
        return None;
    }
    let tensors = [
        Some(&conv.weight),
        conv.bias.as_ref(),
        bn.weight.as_ref(),
        bn.bias.as_ref(),
        Some(mean),
        Some(var),
    ];
    let mut key: Vec<u64> = tensors
        .iter()
        .flat_map(|t| t.map_or([0, 0], |t| [t.id() + 1, t.version()]))
        .collect();
    key.push(bn.eps().to_bits());
    let mut slot = bn.fold_slot().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = slot.as_ref().filter(|f| f.key == key) {
        return Some((f.weight.clone(), f.bias.clone()));
    }
    let (weight, bias) = fold(conv, bn, mean, var);
    *slot = Some(Folded {
        key,
        weight: weight.clone(),
        bias: bias.clone(),
    });
    Some((weight, bias))
}

/// `s w` and `s (b - mean) + beta` with `s = gamma / sqrt(var + eps)`, in f64.
fn fold<T: Float>(
    conv: &Conv2d<T>,
    bn: &BatchNorm<T>,
    mean: &Tensor<T>,
    var: &Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    let f64s = |t: &Tensor<T>| {
        t.to_vec()
            .into_iter()
            .map(|v| v.as_f64())
            .collect::<Vec<f64>>()
    };
    let o = mean.numel();
    let ones = vec![1.0; o];
    let zeros = vec![0.0; o];
    let gamma = bn.weight.as_ref().map_or(ones, f64s);
    let beta = bn.bias.as_ref().map_or(zeros.clone(), f64s);
    let b = conv.bias.as_ref().map_or(zeros, f64s);
    let (mean, var) = (f64s(mean), f64s(var));
    let s: Vec<f64> = (0..o)
        .map(|c| gamma[c] / (var[c] + bn.eps()).sqrt())
        .collect();
    let shape = conv.weight.shape();
    let per = conv.weight.numel() / o;
    let w: Vec<T> = f64s(&conv.weight)
        .chunks(per)
        .zip(&s)
        .flat_map(|(row, &s)| row.iter().map(move |&v| T::of(s * v)))
        .collect();
    let bias: Vec<T> = (0..o)
        .map(|c| T::of(s[c] * (b[c] - mean[c]) + beta[c]))
        .collect();
    (Tensor::from_vec(w, shape), Tensor::from_vec(bias, [o]))
}

#[cfg(test)]
mod tests {
    use autograd::{no_grad, Tensor};

    use super::*;
    use crate::{BatchNorm2d, BatchNormConfig, Conv2dConfig, ModuleFields, Sequential};

    type T = Tensor<f64>;

    /// A convolution and a batch norm in eval mode with running statistics
    /// away from the defaults (so folding changes the weights).
    fn layers(bias: bool, affine: bool) -> (Conv2d<f64>, BatchNorm2d<f64>) {
        let conv = Conv2d::<f64>::build(Conv2dConfig::new(3, 5, 3).padding(1).bias(bias));
        let bn = BatchNorm2d::<f64>::build(BatchNormConfig {
            affine,
            ..BatchNormConfig::new(5).eps(1e-3)
        });
        for _ in 0..3 {
            bn.forward(&(conv.forward(&T::randn([4, 3, 6, 6])) * 2.0 + 0.5));
        }
        if let (Some(g), Some(b)) = (&bn.weight, &bn.bias) {
            g.set_data(T::from_vec(vec![0.5, 1.5, -1.0, 2.0, 0.25], [5]).array());
            b.set_data(T::from_vec(vec![0.1, -0.2, 0.3, 0.0, 1.0], [5]).array());
        }
        bn.set_training(false);
        (conv, bn)
    }

    fn gap(a: &T, b: &T) -> f64 {
        a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn unfused(conv: &Conv2d<f64>, bn: &BatchNorm2d<f64>, x: &T, relu: bool) -> T {
        let y = bn.forward(&conv.forward(x));
        if relu {
            y.relu()
        } else {
            y
        }
    }

    #[test]
    fn folded_in_eval_without_gradients_and_equal_to_the_layers() {
        for (bias, affine, relu) in [
            (true, true, true),
            (false, true, false),
            (true, false, true),
        ] {
            let (conv, bn) = layers(bias, affine);
            let x = T::randn([2, 3, 6, 6]);
            let (fused, want) =
                no_grad(|| (conv_bn(&conv, &bn, &x, relu), unfused(&conv, &bn, &x, relu)));
            assert!(bn.fold_slot().lock().unwrap().is_some(), "folded");
            assert!(
                gap(&fused, &want) < 1e-12,
                "{bias} {affine} {relu}: {}",
                gap(&fused, &want)
            );
            assert!(want.to_vec().iter().any(|&v| v != 0.0));
        }
    }

    #[test]
    fn a_changed_tensor_is_folded_again() {
        let (conv, bn) = layers(true, true);
        let x = T::randn([1, 3, 6, 6]);
        let run = || {
            no_grad(|| {
                (
                    conv_bn(&conv, &bn, &x, false),
                    unfused(&conv, &bn, &x, false),
                )
            })
        };
        let (first, _) = run();
        for t in [
            &bn.running_mean,
            &bn.running_var,
            bn.weight.as_ref().unwrap(),
            &conv.weight,
        ] {
            t.set_data((t * 1.5 + 0.25).array());
            let (fused, want) = run();
            assert!(gap(&fused, &want) < 1e-12, "stale after a write");
            assert!(gap(&fused, &first) > 1e-3);
        }
    }

    #[test]
    fn training_gradients_or_hooks_run_the_layers() {
        let (conv, bn) = layers(true, true);
        let x = T::randn([2, 3, 6, 6]);
        // Eval with gradients on: the parameters get theirs.
        let y = conv_bn(&conv, &bn, &x, true);
        assert!(bn.fold_slot().lock().unwrap().is_none());
        assert_eq!(y.to_vec(), unfused(&conv, &bn, &x, true).to_vec());
        y.sum().backward();
        assert!(conv.weight.grad().is_some() && bn.weight.as_ref().unwrap().grad().is_some());
        // A hook on the batch norm sees its own output.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(0));
        let s = seen.clone();
        let h = bn
            .hooks()
            .unwrap()
            .add_forward::<f64>(std::sync::Arc::new(move |_: &T, _: &T| {
                *s.lock().unwrap() += 1;
                None
            }));
        no_grad(|| conv_bn(&conv, &bn, &x, true));
        assert_eq!(*seen.lock().unwrap(), 1);
        assert!(bn.fold_slot().lock().unwrap().is_none());
        h.remove();
        // Training mode: the batch's statistics, exactly the layers.
        bn.set_training(true);
        let fused = no_grad(|| conv_bn(&conv, &bn, &x, false));
        bn.set_training(true);
        let want = no_grad(|| unfused(&conv, &bn, &x, false));
        assert_eq!(fused.to_vec(), want.to_vec());
        assert!(bn.fold_slot().lock().unwrap().is_none());
    }

    #[test]
    fn mismatched_channels_fail_as_the_layers_do() {
        let (conv, _) = layers(true, true);
        let bn = BatchNorm2d::<f64>::build(BatchNormConfig::new(4));
        bn.set_training(false);
        let x = T::randn([1, 3, 6, 6]);
        let err = std::panic::catch_unwind(|| no_grad(|| conv_bn(&conv, &bn, &x, true)))
            .expect_err("4 channels against 5");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("batch_norm"), "{msg}");
        assert!(bn.fold_slot().lock().unwrap().is_none());
    }

    #[test]
    fn sequential_folds_conv_bn_relu() {
        let (conv, bn) = layers(false, true);
        let (w, m) = (conv.weight.clone(), bn.running_mean.clone());
        let s = Sequential::<f64>::build()
            .add(conv)
            .add(bn)
            .add(crate::ReLU);
        s.set_training(false);
        let x = T::randn([2, 3, 6, 6]);
        let fused = no_grad(|| s.forward(&x));
        let get = |i: usize| s.get(i).unwrap().as_any();
        let (conv, bn) = (
            get(0).downcast_ref::<Conv2d<f64>>().unwrap(),
            get(1).downcast_ref::<BatchNorm2d<f64>>().unwrap(),
        );
        assert!(bn.fold_slot().lock().unwrap().is_some(), "folded");
        let want = no_grad(|| unfused(conv, bn, &x, true));
        assert!(gap(&fused, &want) < 1e-12);
        assert_eq!((conv.weight.id(), bn.running_mean.id()), (w.id(), m.id()));
    }
}
