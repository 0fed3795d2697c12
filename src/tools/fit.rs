//! One epoch of supervised training — the loop every classification example
//! repeats: forward, softmax cross-entropy, backward, optimizer step — with
//! a progress bar ([`EpochProgress`]) that also keeps the epoch's figures.
//!
//! The loop fails loudly and loses nothing: a loss that turns NaN or
//! infinite stops it before the optimizer steps on it, and the step is run
//! again under anomaly mode to name the first op that made the value
//! ([`TrainError::NonFinite`]); with an [`Interrupt`] it stops between two
//! steps when SIGINT or SIGTERM arrives, at a [`Position`] from which a
//! [`Checkpoint`](super::Checkpoint) continues exactly. [`Fit`] is the
//! loop with every option; [`train_epoch`] and [`try_train_epoch`] are
//! the plain epoch.
//!
//! ```
//! use std::sync::Arc;
//! use autograd::Tensor;
//! use dlfs::tools::train_epoch;
//! use models::data::{DataLoader, InMemory};
//! use nn::{Flatten, Linear, LinearConfig, Module, Sequential};
//! use optim::{Sgd, SgdConfig};
//!
//! // Eight 1x2x2 images, label = whether the first pixel is bright.
//! let values: Vec<f32> = (0..32).map(|i| ((i * 7) % 5) as f32 / 4.0).collect();
//! let labels: Vec<usize> = values.chunks(4).map(|v| usize::from(v[0] > 0.5)).collect();
//! let data = Arc::new(InMemory::new(values, [1, 2, 2], labels).unwrap());
//! let loader = DataLoader::new(data, 4);
//! let model = Sequential::new().add(Flatten::default()).add(Linear::new(LinearConfig::new(4, 2)));
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.5, ..Default::default() });
//! let first = train_epoch(&model, &mut opt, &loader, 1, 20).mean_loss();
//! let mut last = first;
//! for epoch in 2..=20 {
//!     last = train_epoch(&model, &mut opt, &loader, epoch, 20).mean_loss();
//! }
//! assert!(last < first);
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};

use autograd::rng::with_rng;
use autograd::{detect_anomaly, manual_seed, Reduction};
use models::data::seed::derive_seed;
use models::data::{Batch, DataLoader};
use nn::Module;
use optim::lr_scheduler::LrScheduler;
use optim::{AveragedParams, Optimizer};
use rand::Rng;

use super::checkpoint::Position;
use super::interrupt::Interrupt;
use super::progress::EpochProgress;
use super::train::count_correct;

/// The stream of the per-step seeds of [`Fit::seed`].
const STEP_STREAM: u64 = 0x57_e95e;

/// Why an epoch stopped before its end, other than an interrupt.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss was NaN or infinite: training stopped before the optimizer
    /// stepped on it.
    #[error(
        "the loss became {loss} at epoch {epoch}, step {step} of {steps} (the step run again \
         under anomaly mode: {cause})"
    )]
    NonFinite {
        /// The epoch (from 1).
        epoch: usize,
        /// The step of the epoch (from 1) whose loss was not finite.
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// The loss.
        loss: f32,
        /// What anomaly mode found: the first op whose output (forward) or
        /// gradient (backward) was not finite, with the tensor's shape.
        cause: String,
    },
    /// The loss or the backward pass failed (e.g. a label smoothing
    /// outside `[0, 1]`, a label out of range).
    #[error("epoch {epoch}, step {step}: {source}")]
    Autograd {
        /// The epoch (from 1).
        epoch: usize,
        /// The step (from 1).
        step: usize,
        /// The error.
        #[source]
        source: autograd::Error,
    },
    /// The weight averages given to [`Fit::average`] were swapped into the
    /// model: training on would train the averages. No step was taken.
    #[error(
        "epoch {epoch}: the weight averages are swapped into the model; swap() them back \
         before training"
    )]
    AveragesSwappedIn {
        /// The epoch (from 1).
        epoch: usize,
    },
}

/// How an epoch run by [`Fit::try_epoch`] ended.
pub enum EpochEnd {
    /// Every batch done: the bar holds the epoch's figures.
    Finished(EpochProgress),
    /// A signal asked to stop: no step was cut short, and `at` (with the
    /// model's and optimizer's state now) is where to continue.
    Interrupted {
        /// Where the run stands.
        at: Position,
        /// The signal's number.
        signal: i32,
    },
}

/// A training epoch with its options: a scheduler stepped after every
/// batch, per-step seeds (so a run continues exactly from any step), label
/// smoothing, and an [`Interrupt`] read between steps.
///
/// ```
/// use std::sync::Arc;
/// use dlfs::tools::{checkpoint::Position, fit::{EpochEnd, Fit}, Interrupt};
/// use models::data::{DataLoader, InMemory};
/// use nn::{Flatten, Linear, LinearConfig, Module, Sequential};
/// use optim::{Sgd, SgdConfig};
///
/// let values: Vec<f32> = (0..32).map(|i| (i % 5) as f32 / 4.0).collect();
/// let data = Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 1, 0, 1, 1, 0, 1, 0]).unwrap());
/// let loader = DataLoader::new(data, 2);
/// let model = Sequential::new().add(Flatten::default()).add(Linear::new(LinearConfig::new(4, 2)));
/// let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let stop = Interrupt::new();
/// stop.request(Interrupt::SIGINT); // as if Ctrl-C came before the first step
/// let end = Fit::new(&model, &mut opt, &loader, 1).seed(7).interrupt(&stop)
///     .try_epoch(&Position::start(1))
///     .unwrap();
/// assert!(matches!(end, EpochEnd::Interrupted { at: Position { epoch: 1, step: 0, .. }, .. }));
/// ```
pub struct Fit<'a> {
    model: &'a dyn Module,
    opt: &'a mut dyn Optimizer,
    sched: Option<&'a mut dyn LrScheduler>,
    average: Option<&'a mut AveragedParams<f32>>,
    loader: &'a DataLoader,
    epochs: usize,
    seed: Option<u64>,
    interrupt: Option<Interrupt>,
    label_smoothing: f64,
}

impl<'a> Fit<'a> {
    /// Training `model` with `opt` on `loader`, in a run of `epochs` epochs
    /// (for the bar's title).
    pub fn new(
        model: &'a dyn Module,
        opt: &'a mut dyn Optimizer,
        loader: &'a DataLoader,
        epochs: usize,
    ) -> Fit<'a> {
        Fit {
            model,
            opt,
            sched: None,
            average: None,
            loader,
            epochs,
            seed: None,
            interrupt: None,
            label_smoothing: 0.0,
        }
    }

    /// Steps `sched` after every optimizer step.
    pub fn scheduler(mut self, sched: &'a mut dyn LrScheduler) -> Fit<'a> {
        self.sched = Some(sched);
        self
    }

    /// Folds the parameters into `average` after every optimizer step
    /// (and the scheduler's), as PyTorch's `AveragedModel.update_parameters`
    /// in a training loop: evaluate with the averages swapped in.
    pub fn average(mut self, average: &'a mut AveragedParams<f32>) -> Fit<'a> {
        self.average = Some(average);
        self
    }

    /// Reseeds the random generator before every step from `seed`, the
    /// epoch and the step: dropout masks depend on nothing else, so a run
    /// continued from any step draws what an uninterrupted one draws.
    pub fn seed(mut self, seed: u64) -> Fit<'a> {
        self.seed = Some(seed);
        self
    }

    /// Trains on labels smoothed by `eps` (the target `(1 - eps) * onehot +
    /// eps / C`, as PyTorch's `label_smoothing`); the bar's loss is that loss.
    pub fn label_smoothing(mut self, eps: f64) -> Fit<'a> {
        self.label_smoothing = eps;
        self
    }

    /// Stops between two steps once `stop` is set.
    pub fn interrupt(mut self, stop: &Interrupt) -> Fit<'a> {
        self.interrupt = Some(stop.clone());
        self
    }

    /// Runs epoch `at.epoch` from step `at.step` (the loader's batches
    /// before it are skipped; `at`'s figures carry over into the bar).
    pub fn try_epoch(&mut self, at: &Position) -> Result<EpochEnd, TrainError> {
        let (epoch, steps) = (at.epoch, self.loader.len());
        if self.average.as_ref().is_some_and(|a| a.is_swapped()) {
            return Err(TrainError::AveragesSwappedIn { epoch });
        }
        self.model.train();
        let mut bar = EpochProgress::new(epoch, self.epochs, steps);
        bar.restore(at.step, at.loss_sum, at.correct, at.images);
        for (i, batch) in self.loader.epoch(epoch as u64).enumerate().skip(at.step) {
            if let Some(signal) = self.interrupt.as_ref().and_then(Interrupt::requested) {
                bar.finish();
                let at = position(epoch, &bar);
                return Ok(EpochEnd::Interrupted { at, signal });
            }
            // Every step starts from a seed of its own, to be run again
            // exactly when its loss is not finite: from the run's seed, or
            // drawn from the generator.
            let step_seed = match self.seed {
                Some(seed) => derive_seed(seed, &[STEP_STREAM, epoch as u64, i as u64]),
                None => with_rng(|r| r.next_u64()),
            };
            manual_seed(step_seed);
            self.opt.zero_grad();
            let logits = self.model.forward(batch.images());
            let loss = logits
                .try_cross_entropy_with(batch.labels(), Reduction::Mean, self.label_smoothing)
                .map_err(|source| TrainError::Autograd {
                    epoch,
                    step: i + 1,
                    source,
                })?;
            let value = loss.item();
            if !value.is_finite() {
                bar.finish();
                manual_seed(step_seed);
                return Err(TrainError::NonFinite {
                    epoch,
                    step: i + 1,
                    steps,
                    loss: value,
                    cause: first_non_finite(self.model, &batch, self.label_smoothing),
                });
            }
            loss.try_backward().map_err(|source| TrainError::Autograd {
                epoch,
                step: i + 1,
                source,
            })?;
            self.opt.step();
            if let Some(s) = self.sched.as_mut() {
                s.step(&mut *self.opt);
            }
            if let Some(a) = self.average.as_mut() {
                a.update();
            }
            let correct = count_correct(&logits, batch.labels());
            bar.batch(value as f64, correct, batch.labels().len());
        }
        bar.finish();
        Ok(EpochEnd::Finished(bar))
    }
}

/// Where an epoch stands after the batches `bar` recorded.
fn position(epoch: usize, bar: &EpochProgress) -> Position {
    Position {
        epoch,
        step: bar.batches(),
        loss_sum: bar.loss_sum(),
        correct: bar.correct(),
        images: bar.images(),
    }
}

/// Runs the forward and backward pass of `batch` again under anomaly mode
/// and says which op first produced a NaN or infinity.
fn first_non_finite(model: &dyn Module, batch: &Batch, label_smoothing: f64) -> String {
    let _anomaly = detect_anomaly(true);
    // Anomaly mode reports a forward op by panicking; the report is the
    // message, so the default hook's print is held back meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let rerun = catch_unwind(AssertUnwindSafe(|| {
        let loss = model.forward(batch.images()).cross_entropy_with(
            batch.labels(),
            Reduction::Mean,
            label_smoothing,
        );
        loss.try_backward()
    }));
    std::panic::set_hook(hook);
    match rerun {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => "no op produced a non-finite value (it did not happen again)".into(),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into()),
    }
}

/// Trains `model` (put in training mode) for one pass over `loader`'s epoch
/// `epoch` (its shuffle and augmentation for that epoch), stepping `opt`
/// after every batch. Returns the finished bar: `mean_loss()`, `accuracy()`
/// (on the training batches, as they were seen), `seconds()` and
/// `images_per_second()` are the epoch's figures.
///
/// # Panics
/// When the loss turns NaN or infinite, with [`TrainError`]'s message (the
/// epoch, the step and the op that made the value); see [`try_train_epoch`].
pub fn train_epoch(
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    loader: &DataLoader,
    epoch: usize,
    epochs: usize,
) -> EpochProgress {
    try_train_epoch(model, opt, loader, epoch, epochs).unwrap_or_else(|e| panic!("{e}"))
}

/// [`train_epoch`], with a loss that turns NaN or infinite (or a failing
/// backward) returned as an error before the optimizer steps on it.
pub fn try_train_epoch(
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    loader: &DataLoader,
    epoch: usize,
    epochs: usize,
) -> Result<EpochProgress, TrainError> {
    match Fit::new(model, opt, loader, epochs).try_epoch(&Position::start(epoch))? {
        EpochEnd::Finished(bar) => Ok(bar),
        EpochEnd::Interrupted { .. } => unreachable!("no interrupt was given"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use autograd::Reduction;
    use models::data::{DataLoader, InMemory};
    use nn::{Flatten, Linear, LinearConfig, Module, Sequential};
    use optim::{Optimizer, Sgd, SgdConfig};

    use super::{EpochEnd, Fit, Position};

    fn model() -> Sequential {
        Sequential::new()
            .add(Flatten::default())
            .add(Linear::new(LinearConfig::new(4, 3)))
    }

    /// One step of `Fit` with label smoothing `eps` against the same step
    /// written out: the same weights after it, and the bar's loss is the
    /// smoothed loss.
    #[test]
    fn label_smoothing_trains_on_the_smoothed_loss() {
        let values: Vec<f32> = (0..16).map(|i| ((i * 7) % 5) as f32 / 4.0 - 0.5).collect();
        let data = Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 2, 1, 2]).unwrap());
        let loader = DataLoader::new(data, 4);
        let sgd = SgdConfig {
            lr: 0.5,
            ..Default::default()
        };
        let eps = 0.3;

        let fitted = model();
        let by_hand = model();
        for (a, b) in by_hand.parameters().iter().zip(fitted.parameters()) {
            a.set_data(b.to_array());
        }
        let mut opt = Sgd::new(fitted.parameters(), sgd);
        let bar = match Fit::new(&fitted, &mut opt, &loader, 1)
            .label_smoothing(eps)
            .try_epoch(&Position::start(1))
            .unwrap()
        {
            EpochEnd::Finished(bar) => bar,
            EpochEnd::Interrupted { .. } => unreachable!(),
        };

        let batch = loader.epoch(1).next().unwrap();
        let mut opt = Sgd::new(by_hand.parameters(), sgd);
        opt.zero_grad();
        let loss = by_hand.forward(batch.images()).cross_entropy_with(
            batch.labels(),
            Reduction::Mean,
            eps,
        );
        let unsmoothed = by_hand
            .forward(batch.images())
            .cross_entropy(batch.labels())
            .item();
        assert!((loss.item() as f64 - unsmoothed as f64).abs() > 1e-3);
        assert!((bar.mean_loss() - loss.item() as f64).abs() < 1e-6);
        loss.backward();
        opt.step();
        for (a, b) in by_hand.parameters().iter().zip(fitted.parameters()) {
            assert_eq!(a.to_vec(), b.to_vec());
        }
    }

    /// A smoothing outside `[0, 1]` is an error at the first step, before
    /// the optimizer changes anything.
    #[test]
    fn a_smoothing_outside_the_unit_interval_is_an_error() {
        let values: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
        let data = Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 1]).unwrap());
        let loader = DataLoader::new(data, 2);
        let fitted = model();
        let before: Vec<Vec<f32>> = fitted.parameters().iter().map(|p| p.to_vec()).collect();
        let mut opt = Sgd::new(fitted.parameters(), SgdConfig::default());
        let err = match Fit::new(&fitted, &mut opt, &loader, 1)
            .label_smoothing(1.5)
            .try_epoch(&Position::start(1))
        {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a smoothing of 1.5 was accepted"),
        };
        assert!(
            err.contains("epoch 1, step 1") && err.contains("label_smoothing 1.5"),
            "{err}"
        );
        let after: Vec<Vec<f32>> = fitted.parameters().iter().map(|p| p.to_vec()).collect();
        assert_eq!(before, after);
    }

    /// `Fit::average` folds the weights after every step into the
    /// average, as `update()` after each `step()` by hand does; averages
    /// swapped into the model are an error before any step.
    #[test]
    fn the_average_follows_every_step_and_refuses_to_train_swapped_in() {
        use optim::{AveragedConfig, AveragedParams};
        let values: Vec<f32> = (0..32).map(|i| ((i * 3) % 7) as f32 / 6.0 - 0.5).collect();
        let data =
            Arc::new(InMemory::new(values, [1, 2, 2], vec![0, 2, 1, 2, 0, 1, 1, 0]).unwrap());
        let loader = DataLoader::new(data, 2);
        let sgd = SgdConfig {
            lr: 0.5,
            ..Default::default()
        };
        let fitted = model();
        let by_hand = model();
        for (a, b) in by_hand.parameters().iter().zip(fitted.parameters()) {
            a.set_data(b.to_array());
        }
        let mut opt = Sgd::new(fitted.parameters(), sgd);
        let mut avg = AveragedParams::new(fitted.parameters(), AveragedConfig::ema(0.5));
        Fit::new(&fitted, &mut opt, &loader, 1)
            .average(&mut avg)
            .try_epoch(&Position::start(1))
            .unwrap();
        assert_eq!(avg.updates(), 4, "one update per step");

        // The same steps by hand, the average written out in f64: the
        // first step's weights, then avg = 0.5 avg + 0.5 w after each step.
        let mut opt2 = Sgd::new(by_hand.parameters(), sgd);
        let mut want: Option<Vec<Vec<f64>>> = None;
        for batch in loader.epoch(1) {
            opt2.zero_grad();
            by_hand
                .forward(batch.images())
                .cross_entropy(batch.labels())
                .backward();
            opt2.step();
            let w: Vec<Vec<f64>> = by_hand
                .parameters()
                .iter()
                .map(|p| p.to_vec().into_iter().map(f64::from).collect())
                .collect();
            want = Some(match want {
                None => w,
                Some(avg) => avg
                    .iter()
                    .zip(&w)
                    .map(|(a, w)| a.iter().zip(w).map(|(a, w)| 0.5 * a + 0.5 * w).collect())
                    .collect(),
            });
        }
        let want = want.unwrap();
        for (a, w) in avg.averages().iter().zip(&want) {
            for (a, w) in a.to_vec().iter().zip(w) {
                assert!((*a as f64 - w).abs() < 1e-6, "average {a}, by hand {w}");
            }
        }
        // The average is not the last weights (the test would pass without it).
        assert!(fitted.parameters()[0]
            .to_vec()
            .iter()
            .zip(&want[0])
            .any(|(p, w)| (*p as f64 - w).abs() > 1e-4));

        avg.swap();
        let before: Vec<Vec<f32>> = fitted.parameters().iter().map(|p| p.to_vec()).collect();
        let err = match Fit::new(&fitted, &mut opt, &loader, 2)
            .average(&mut avg)
            .try_epoch(&Position::start(2))
        {
            Err(e) => e.to_string(),
            Ok(_) => panic!("trained with the averages swapped in"),
        };
        assert!(
            err.contains("epoch 2") && err.contains("swapped into the model"),
            "{err}"
        );
        let after: Vec<Vec<f32>> = fitted.parameters().iter().map(|p| p.to_vec()).collect();
        assert_eq!(before, after);
        assert_eq!(avg.updates(), 4);
    }
}
