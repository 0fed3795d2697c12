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

/// Softmax probabilities `[N, classes]` of every example, in loader order (eval mode).
pub fn predict(model: &dyn Module, loader: &DataLoader) -> (Vec<Vec<f32>>, Vec<usize>) {
    model.eval();
    let (mut probs, mut labels) = (Vec::new(), Vec::new());
    no_grad(|| {
        for batch in loader.epoch(0) {
            let p = model.forward(batch.images()).softmax(1);
            let c = p.shape()[1];
            let v = p.to_vec();
            probs.extend(v.chunks(c).map(|r| r.to_vec()));
            labels.extend(batch.labels().iter().copied());
        }
    });
    (probs, labels)
}
