//! A progress bar per epoch: batches done, running loss and accuracy,
//! images per second and time left (indicatif). Hidden when stderr is not a
//! terminal (CI logs stay short); a summary line is printed either way.

use std::cell::Cell;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One epoch's bar.
pub struct EpochProgress {
    bar: ProgressBar,
    start: Instant,
    /// Set by `finish`: the epoch's duration stops growing.
    stopped: Cell<Option<Duration>>,
    images: usize,
    /// Images of a restored part of the epoch (not timed by this bar).
    restored_images: usize,
    loss_sum: f64,
    correct: usize,
    batches: usize,
}

impl EpochProgress {
    /// A bar over `batches` batches, titled `epoch i/n`.
    pub fn new(epoch: usize, epochs: usize, batches: usize) -> Self {
        Self::with_visibility(epoch, epochs, batches, true)
    }

    /// As [`new`](Self::new), drawn only when `visible` (in a data-parallel
    /// job, on rank 0 alone; see [`ranks::progress`](super::ranks::progress)).
    pub fn with_visibility(epoch: usize, epochs: usize, batches: usize, visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(batches as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        EpochProgress {
            bar,
            start: Instant::now(),
            stopped: Cell::new(None),
            images: 0,
            restored_images: 0,
            loss_sum: 0.0,
            correct: 0,
            batches: 0,
        }
    }

    /// Records one batch: its mean loss, correct predictions and size.
    pub fn batch(&mut self, loss: f64, correct: usize, size: usize) {
        self.images += size;
        self.loss_sum += loss;
        self.correct += correct;
        self.batches += 1;
        self.bar.set_message(format!(
            "loss {:.4} acc {:.2}% {:.0} img/s",
            self.mean_loss(),
            self.accuracy(),
            self.images_per_second()
        ));
        self.bar.inc(1);
    }

    /// Continues an epoch stopped after `batches` batches whose losses sum
    /// to `loss_sum` with `correct` of `images` right (a resumed
    /// checkpoint's figures): the bar starts there and the epoch's means
    /// come out as an uninterrupted epoch's.
    pub fn restore(&mut self, batches: usize, loss_sum: f64, correct: usize, images: usize) {
        self.batches = batches;
        self.loss_sum = loss_sum;
        self.correct = correct;
        self.images = images;
        self.restored_images = images;
        self.bar.set_position(batches as u64);
    }

    /// Batches recorded so far.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Sum of the batch losses so far.
    pub fn loss_sum(&self) -> f64 {
        self.loss_sum
    }

    /// Correct predictions so far.
    pub fn correct(&self) -> usize {
        self.correct
    }

    /// Images seen so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Mean of the batch losses so far.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.batches.max(1) as f64
    }

    /// Training accuracy so far, in percent.
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.images.max(1) as f64
    }

    /// Throughput so far (until [`finish`](Self::finish)).
    pub fn images_per_second(&self) -> f64 {
        (self.images - self.restored_images) as f64 / self.seconds().max(1e-9)
    }

    /// Seconds since the epoch started (until [`finish`](Self::finish)).
    pub fn seconds(&self) -> f64 {
        self.stopped
            .get()
            .unwrap_or_else(|| self.start.elapsed())
            .as_secs_f64()
    }

    /// Turns this rank's figures into the whole job's: images, correct
    /// predictions, batches and loss sums added over the ranks (so
    /// [`mean_loss`](Self::mean_loss) is the mean of every rank's batch
    /// losses), the duration the slowest rank's. A collective: call it on
    /// every rank, after [`finish`](Self::finish).
    pub fn all_reduce(&mut self, world: &dist::World) {
        let mut sums = [
            self.loss_sum,
            self.correct as f64,
            self.images as f64,
            self.batches as f64,
        ];
        world.all_reduce_slice(&mut sums, dist::ReduceOp::Sum);
        self.loss_sum = sums[0];
        self.correct = sums[1] as usize;
        self.images = sums[2] as usize;
        self.batches = sums[3] as usize;
        let secs = world.all_reduce_scalar(self.seconds(), dist::ReduceOp::Max);
        self.stopped.set(Some(Duration::from_secs_f64(secs)));
    }

    /// Prints a line to stdout above the bar (the bar is redrawn under it);
    /// printed whether or not the bar is shown.
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.suspend(|| println!("{}", line.as_ref()));
    }

    /// Clears the bar and stops the clock: `seconds()` and
    /// `images_per_second()` then stay the epoch's.
    pub fn finish(&self) {
        self.stopped.set(Some(self.start.elapsed()));
        self.bar.finish_and_clear();
    }
}
