//! ChainedScheduler: several schedulers stepped together, their factors
//! compounding, as `torch.optim.lr_scheduler.ChainedScheduler`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{ChainedScheduler, ConstantLr, ConstantLrConfig, ExponentialLr, ExponentialLrConfig};
//! use optim::{LrScheduler, Optimizer, Sgd, SgdConfig};
//!
//! let (w, b) = (Tensor::from_vec(vec![1.0f32, -2.0], [2]).requires_grad_(), Tensor::zeros([1]).requires_grad_());
//! let mut opt = Sgd::new(vec![w.clone(), b.clone()], SgdConfig { lr: 1.0, ..Default::default() });
//! let constant = ConstantLr::new(&mut opt, ConstantLrConfig { factor: 0.1, total_iters: 2 });
//! let decay = ExponentialLr::new(&mut opt, ExponentialLrConfig { gamma: 0.5 });
//! let mut sched = ChainedScheduler::new(&mut opt, vec![Box::new(constant), Box::new(decay)]);
//! let mut lrs = vec![];
//! for _ in 0..4 {
//!     opt.zero_grad();
//!     (w.square().sum() * 0.01 + b.sum()).backward();
//!     opt.step();
//!     lrs.push(opt.param_groups()[0].lr);
//!     sched.step(&mut opt);
//! }
//! for (got, want) in lrs.iter().zip([0.1, 0.05, 0.25, 0.125]) {
//!     assert!((got - want).abs() < 1e-12);
//! }
//! assert!(b.item() < 0.0);
//! ```

use autograd::Float;

use super::sequential::load_children;
use super::{check_kind, invalid, lrs, LrScheduler};
use crate::error::{ok, Result};
use crate::state::SchedulerState;
use crate::Optimizer;

const NAME: &str = "ChainedScheduler";

/// Schedulers stepped together; see the [module docs](self).
pub struct ChainedScheduler<T: Float = f32> {
    schedulers: Vec<Box<dyn LrScheduler<T>>>,
    last_lr: Vec<f64>,
}

impl<T: Float> ChainedScheduler<T> {
    /// Chains schedulers already built on `opt`.
    ///
    /// # Panics
    /// See [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer<T>, schedulers: Vec<Box<dyn LrScheduler<T>>>) -> Self {
        ok(Self::try_new(opt, schedulers))
    }

    /// Fails without schedulers or with a ReduceLROnPlateau among them.
    pub fn try_new(
        opt: &mut dyn Optimizer<T>,
        schedulers: Vec<Box<dyn LrScheduler<T>>>,
    ) -> Result<Self> {
        if schedulers.is_empty() {
            return Err(invalid(
                NAME,
                "expects at least one scheduler to be chained",
            ));
        }
        if let Some(i) = schedulers.iter().position(|s| s.needs_metric()) {
            return Err(invalid(
                NAME,
                format!("scheduler {i} needs a metric to step, which ChainedScheduler cannot give"),
            ));
        }
        Ok(ChainedScheduler {
            schedulers,
            last_lr: lrs(opt),
        })
    }
}

impl<T: Float> LrScheduler<T> for ChainedScheduler<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn try_step(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        for s in &mut self.schedulers {
            s.try_step(opt)?;
        }
        self.last_lr = lrs(opt);
        Ok(())
    }

    fn get_last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.schedulers[0].last_epoch()
    }

    fn state_dict(&self) -> SchedulerState {
        let mut st = SchedulerState::new(NAME);
        st.lists.insert("last_lr".into(), self.last_lr.clone());
        st.children = self.schedulers.iter().map(|s| s.state_dict()).collect();
        st
    }

    fn load_state_dict(&mut self, st: &SchedulerState) -> Result<()> {
        check_kind(st, NAME)?;
        let last_lr = st.list("last_lr", self.last_lr.len())?;
        load_children(NAME, &mut self.schedulers, &st.children)?;
        self.last_lr = last_lr;
        Ok(())
    }

    fn undo_initial_step(&mut self) {
        for s in &mut self.schedulers {
            s.undo_initial_step();
        }
    }

    fn restart(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        for s in &mut self.schedulers {
            s.restart(opt)?;
        }
        self.last_lr = lrs(opt);
        Ok(())
    }
}
