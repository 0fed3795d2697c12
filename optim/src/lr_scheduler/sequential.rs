//! SequentialLR: one scheduler after another, switching at milestones, as
//! `torch.optim.lr_scheduler.SequentialLR` (a warm-up then a decay).
//!
//! ```
//! use autograd::Tensor;
//! use optim::{ExponentialLr, ExponentialLrConfig, LinearLr, LinearLrConfig, LrScheduler};
//! use optim::{Optimizer, SequentialLr, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 0.1, ..Default::default() });
//! let warmup = LinearLr::new(&mut opt, LinearLrConfig { start_factor: 0.5, total_iters: 2, ..Default::default() });
//! let decay = ExponentialLr::new(&mut opt, ExponentialLrConfig { gamma: 0.5 });
//! let mut sched = SequentialLr::new(&mut opt, vec![Box::new(warmup), Box::new(decay)], vec![2]);
//! let mut lrs = vec![];
//! for _ in 0..5 {
//!     opt.zero_grad();
//!     (w.square().sum() + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! // Warm-up 0.05, 0.075; at the milestone the decay starts over from the base lr.
//! for (got, want) in lrs.iter().zip([0.05, 0.075, 0.1, 0.05, 0.025]) {
//!     assert!((got - want).abs() < 1e-12);
//! }
//! assert!(b.item() < 0.0);
//! ```

use autograd::Float;

use super::{check_kind, int_value, invalid, LrScheduler};
use crate::error::{mismatch, ok, Result};
use crate::state::SchedulerState;
use crate::Optimizer;

const NAME: &str = "SequentialLR";

/// Schedulers run one after another; see the [module docs](self).
pub struct SequentialLr<T: Float = f32> {
    schedulers: Vec<Box<dyn LrScheduler<T>>>,
    milestones: Vec<i64>,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl<T: Float> SequentialLr<T> {
    /// Runs `schedulers[0]` until `milestones[0]`, then `schedulers[1]`, ...
    /// The schedulers must already be built on `opt` (in order).
    ///
    /// # Panics
    /// See [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer<T>,
        schedulers: Vec<Box<dyn LrScheduler<T>>>,
        milestones: Vec<usize>,
    ) -> Self {
        ok(Self::try_new(opt, schedulers, milestones))
    }

    /// Fails without schedulers, with a ReduceLROnPlateau among them, unless
    /// there is one milestone fewer than schedulers in increasing order, or if
    /// no scheduler was built on `opt`.
    pub fn try_new(
        opt: &mut dyn Optimizer<T>,
        mut schedulers: Vec<Box<dyn LrScheduler<T>>>,
        milestones: Vec<usize>,
    ) -> Result<Self> {
        if schedulers.is_empty() {
            return Err(invalid(NAME, "expects at least one scheduler"));
        }
        if let Some(i) = schedulers.iter().position(|s| s.needs_metric()) {
            return Err(invalid(
                NAME,
                format!("scheduler {i} needs a metric to step, which SequentialLR cannot give"),
            ));
        }
        if milestones.len() + 1 != schedulers.len() {
            return Err(invalid(
                NAME,
                format!(
                    "expects one milestone fewer than schedulers, got {} schedulers and {} milestones",
                    schedulers.len(),
                    milestones.len()
                ),
            ));
        }
        if milestones.windows(2).any(|w| w[0] > w[1]) {
            return Err(invalid(NAME, "milestones must be in increasing order"));
        }
        if opt.param_groups().iter().any(|g| g.initial_lr.is_none()) {
            return Err(invalid(
                NAME,
                "build the schedulers on this optimizer first",
            ));
        }
        // Undo what building the schedulers did, then start the first one afresh.
        for g in opt.param_groups_mut() {
            g.lr = g.initial_lr.expect("checked above");
        }
        for s in &mut schedulers {
            s.undo_initial_step();
        }
        let milestones: Vec<i64> = milestones.into_iter().map(|m| m as i64).collect();
        let idx = milestones.partition_point(|&m| m <= 0);
        schedulers[idx].initial_step(opt)?;
        let last_lr = schedulers[idx].get_last_lr().to_vec();
        Ok(SequentialLr {
            schedulers,
            milestones,
            last_epoch: 0,
            last_lr,
        })
    }

    /// The scheduler in charge at step `epoch` (PyTorch's `bisect_right`).
    fn index(&self, epoch: i64) -> usize {
        self.milestones.partition_point(|&m| m <= epoch)
    }
}

impl<T: Float> LrScheduler<T> for SequentialLr<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        let epoch = self.last_epoch + 1;
        let idx = self.index(epoch);
        let s = &mut self.schedulers[idx];
        if idx > 0 && self.milestones[idx - 1] == epoch {
            s.restart(opt)?;
        } else {
            s.try_step(opt)?;
        }
        self.last_epoch = epoch;
        self.last_lr = s.get_last_lr().to_vec();
        Ok(())
    }

    fn get_last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    fn state_dict(&self) -> SchedulerState {
        let mut st = SchedulerState::new(NAME);
        st.values
            .insert("last_epoch".into(), self.last_epoch as f64);
        st.lists.insert("last_lr".into(), self.last_lr.clone());
        st.children = self.schedulers.iter().map(|s| s.state_dict()).collect();
        st
    }

    fn load_state_dict(&mut self, st: &SchedulerState) -> Result<()> {
        check_kind(st, NAME)?;
        let last_epoch = int_value(st, "last_epoch")?;
        let last_lr = st.list("last_lr", self.last_lr.len())?;
        load_children(NAME, &mut self.schedulers, &st.children)?;
        self.last_epoch = last_epoch;
        self.last_lr = last_lr;
        Ok(())
    }

    fn undo_initial_step(&mut self) {
        // As PyTorch's recursive_undo: the schedulers inside, not this one.
        for s in &mut self.schedulers {
            s.undo_initial_step();
        }
    }

    fn restart(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        let idx = self.index(0);
        self.schedulers[idx].restart(opt)?;
        self.last_epoch = 0;
        self.last_lr = self.schedulers[idx].get_last_lr().to_vec();
        Ok(())
    }
}

/// Loads each child's state; if one fails, the others are put back as they were.
pub(crate) fn load_children<T: Float>(
    what: &'static str,
    schedulers: &mut [Box<dyn LrScheduler<T>>],
    states: &[SchedulerState],
) -> Result<()> {
    if states.len() != schedulers.len() {
        return Err(mismatch(
            what,
            format!(
                "it has {} schedulers, this one {}",
                states.len(),
                schedulers.len()
            ),
        ));
    }
    let backup: Vec<SchedulerState> = schedulers.iter().map(|s| s.state_dict()).collect();
    for (i, (s, st)) in schedulers.iter_mut().zip(states).enumerate() {
        if let Err(e) = s.load_state_dict(st) {
            for (s, b) in schedulers.iter_mut().zip(&backup).take(i) {
                s.load_state_dict(b)
                    .expect("a scheduler reloads its own state");
            }
            return Err(e);
        }
    }
    Ok(())
}
