//! Evaluation helpers: loss and accuracy of a model over a data loader, and
//! the predictions themselves (for confusion matrices and ensembles).

use autograd::{no_grad, Tensor};
use models::data::DataLoader;
use nn::Module;

/// Loss and accuracy over a whole dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per example.
    pub loss: f64,
    /// Percent correct.
    pub accuracy: f64,
    /// Number of examples.
    pub count: usize,
}

/// Evaluates `model` in eval mode (restored to training mode afterwards if
/// `restore_train`) over one pass of `loader`.
pub fn evaluate(model: &dyn Module, loader: &DataLoader, restore_train: bool) -> Evaluation {
    model.eval();
    let (mut loss, mut correct, mut count) = (0.0, 0, 0);
    no_grad(|| {
        for batch in loader.epoch(0) {
            let logits = model.forward(batch.images());
            loss += logits
                .cross_entropy_with(batch.labels(), autograd::Reduction::Sum, 0.0)
                .item() as f64;
            correct += count_correct(&logits, batch.labels());
            count += batch.labels().len();
        }
    });
    if restore_train {
        model.train();
    }
    Evaluation {
        loss: loss / count.max(1) as f64,
        accuracy: 100.0 * correct as f64 / count.max(1) as f64,
        count,
    }
}

/// How many rows of `logits` have their maximum at the label.
pub fn count_correct(logits: &Tensor, labels: &[usize]) -> usize {
    logits
        .argmax(1, false)
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count()
}

/// The index of the largest value (the first of equal ones): the predicted
/// class of one row of [`predict`]'s probabilities.
///
/// ```
/// assert_eq!(dlfs::tools::argmax(&[0.1, 0.7, 0.2]), 1);
/// ```
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Softmax probabilities `[N, classes]` of every example, in loader order
/// (eval mode), with the labels; [`predict_logits`] gives the scores before
/// the softmax.
pub fn predict(model: &dyn Module, loader: &DataLoader) -> (Vec<Vec<f32>>, Vec<usize>) {
    rows(model, loader, |logits| logits.softmax(1))
}

/// The model's outputs `[N, classes]` (logits, before any softmax) of every
/// example, in loader order (eval mode), with the labels: for temperature
/// scaling, margins, or averaging an ensemble's logits rather than its
/// probabilities. Row `i`'s softmax is row `i` of [`predict`]'s result.
///
/// ```
/// use std::sync::Arc;
/// use dlfs::tools::{predict, predict_logits};
/// use models::data::{DataLoader, InMemory};
/// use nn::{Flatten, Linear, LinearConfig, Sequential};
///
/// let values: Vec<f32> = (0..24).map(|i| (i % 7) as f32 - 3.0).collect();
/// let data = Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 1, 2, 0, 1, 2]).unwrap());
/// let loader = DataLoader::new(data, 4); // two batches, the second short
/// let model = Sequential::new().add(Flatten::default()).add(Linear::new(LinearConfig::new(4, 3)));
///
/// let (logits, labels) = predict_logits(&model, &loader);
/// let (probs, same_labels) = predict(&model, &loader);
/// assert_eq!((logits.len(), logits[0].len()), (6, 3));
/// assert_eq!(labels, same_labels);
/// for (z, p) in logits.iter().zip(&probs) {
///     let top = z.iter().fold(f32::MIN, |a, &b| a.max(b));
///     let sum: f32 = z.iter().map(|v| (v - top).exp()).sum();
///     for (zi, pi) in z.iter().zip(p) {
///         assert!(((zi - top).exp() / sum - pi).abs() < 1e-6, "{z:?} {p:?}");
///     }
/// }
/// ```
pub fn predict_logits(model: &dyn Module, loader: &DataLoader) -> (Vec<Vec<f32>>, Vec<usize>) {
    rows(model, loader, |logits| logits)
}

/// `post(model output)` of every example as rows, in loader order (eval
/// mode, no gradient), with the labels.
fn rows(
    model: &dyn Module,
    loader: &DataLoader,
    post: impl Fn(Tensor) -> Tensor,
) -> (Vec<Vec<f32>>, Vec<usize>) {
    model.eval();
    let (mut out, mut labels) = (Vec::new(), Vec::new());
    no_grad(|| {
        for batch in loader.epoch(0) {
            let y = post(model.forward(batch.images()));
            let c = y.shape()[1];
            let v = y.to_vec();
            out.extend(v.chunks(c).map(|r| r.to_vec()));
            labels.extend(batch.labels().iter().copied());
        }
    });
    (out, labels)
}
