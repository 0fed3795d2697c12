//! Weight averaging: an exponential moving average (EMA) or the running mean
//! (SWA) of parameters, as `torch.optim.swa_utils.AveragedModel`.
//!
//! ```
//! use autograd::Tensor;
//! use optim::{AveragedConfig, AveragedParams, Optimizer, Sgd, SgdConfig};
//!
//! let w = Tensor::from_vec(vec![1.0f32], [1]).requires_grad_();
//! let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.5, ..Default::default() });
//! let mut ema = AveragedParams::new(vec![w.clone()], AveragedConfig::ema(0.5));
//! for _ in 0..2 {
//!     opt.zero_grad();
//!     w.sum().backward(); // gradient 1: w = 0.5, then 0.0
//!     opt.step();
//!     ema.update(); // the first update copies (0.5), then 0.5 * 0.5 + 0.5 * 0.0
//! }
//! assert_eq!(ema.averages()[0].item(), 0.25);
//! ema.swap(); // evaluate with the averages in the model...
//! assert_eq!(w.item(), 0.25);
//! ema.swap(); // ...and train on from where training was
//! assert_eq!(w.item(), 0.0);
//! ```
//!
//! As PyTorch's: the first [`update`](AveragedParams::update) copies the
//! parameters, later ones average them in (`avg += (1 - decay) * (p - avg)`
//! for EMA, `avg += (p - avg) / (n + 1)` for the mean), in the parameters'
//! precision. Batch-norm running statistics are averaged too when given
//! with the parameters (PyTorch's `use_buffers=True`).

use autograd::{Float, Tensor};
use rayon::prelude::*;

use crate::error::{ok, OptimError, Result};

/// Elements per parallel piece of an update.
const PIECE: usize = 1 << 15;

/// How the average weighs the updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Averaging {
    /// `avg = decay * avg + (1 - decay) * p` (`get_ema_multi_avg_fn(decay)`).
    Ema {
        /// The weight of the old average, in `[0, 1]`.
        decay: f64,
    },
    /// The mean of every update's values (stochastic weight averaging).
    Mean,
}

/// The settings of [`AveragedParams`]; `Default` is an EMA with decay 0.999.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AveragedConfig {
    /// How the updates are weighed.
    pub averaging: Averaging,
}

impl AveragedConfig {
    /// An exponential moving average keeping `decay` of the old average.
    pub fn ema(decay: f64) -> Self {
        AveragedConfig {
            averaging: Averaging::Ema { decay },
        }
    }

    /// The equal-weight mean of all updates (SWA).
    pub fn mean() -> Self {
        AveragedConfig {
            averaging: Averaging::Mean,
        }
    }
}

impl Default for AveragedConfig {
    fn default() -> Self {
        AveragedConfig::ema(0.999)
    }
}

/// Averages of a list of tensors, updated after optimizer steps; see the
/// [module docs](self).
pub struct AveragedParams<T: Float = f32> {
    live: Vec<Tensor<T>>,
    averages: Vec<Tensor<T>>,
    config: AveragedConfig,
    updates: u64,
    /// Whether the tensors hold the averages (after an odd number of swaps).
    swapped: bool,
}

impl<T: Float> AveragedParams<T> {
    /// Averages of `params` (their current values until the first update).
    ///
    /// # Panics
    /// With [`try_new`](Self::try_new)'s error.
    #[track_caller]
    pub fn new(params: Vec<Tensor<T>>, config: AveragedConfig) -> Self {
        ok(Self::try_new(params, config))
    }

    /// [`new`](Self::new); an EMA decay outside `[0, 1]`, or a tensor given
    /// twice (a shared layer listed twice), is an error.
    pub fn try_new(params: Vec<Tensor<T>>, config: AveragedConfig) -> Result<Self> {
        if let Averaging::Ema { decay } = config.averaging {
            if !(0.0..=1.0).contains(&decay) {
                return Err(OptimError::InvalidConfig {
                    what: "AveragedParams",
                    reason: format!("EMA decay {decay} is not in [0, 1]"),
                });
            }
        }
        for (index, p) in params.iter().enumerate() {
            if params[..index].iter().any(|q| q.id() == p.id()) {
                return Err(OptimError::DuplicateParam {
                    what: "AveragedParams",
                    index,
                });
            }
        }
        // Row-major copies, whatever the parameters' layout.
        let averages = params
            .iter()
            .map(|p| Tensor::from_array(p.read().as_standard_layout().into_owned()))
            .collect();
        Ok(AveragedParams {
            live: params,
            averages,
            config,
            updates: 0,
            swapped: false,
        })
    }

    /// An error when the averages are swapped in: `op` would mix the
    /// averages with the values trained so far.
    fn check_not_swapped(&self, op: &str) -> Result<()> {
        if self.swapped {
            return Err(OptimError::InvalidConfig {
                what: "AveragedParams",
                reason: format!(
                    "{op}: the averages are swapped into the parameters; swap() back first"
                ),
            });
        }
        Ok(())
    }

    /// Folds the tensors' current values into the averages (the first call
    /// copies them).
    ///
    /// # Panics
    /// While the averages are swapped in; see [`try_update`](Self::try_update).
    #[track_caller]
    pub fn update(&mut self) {
        ok(self.try_update())
    }

    /// [`update`](Self::update); an error, changing nothing, while the
    /// averages are swapped in.
    pub fn try_update(&mut self) -> Result<()> {
        self.check_not_swapped("update")?;
        let n = self.updates;
        // Weight of the new values (the first update copies them).
        let w = T::of(match self.config.averaging {
            Averaging::Ema { decay } => 1.0 - decay,
            Averaging::Mean => 1.0 / (n as f64 + 1.0),
        });
        for (p, a) in self.live.iter().zip(&self.averages) {
            // Read in place; a parameter in another layout is copied row-major.
            let values = p.read();
            let values = values.as_standard_layout();
            let new = values.as_slice().expect("row-major view");
            let mut avg = a.write();
            let avg = avg.as_slice_mut().expect("averages are row-major");
            if n == 0 {
                avg.copy_from_slice(new);
                continue;
            }
            avg.par_chunks_mut(PIECE)
                .zip(new.par_chunks(PIECE))
                .for_each(|(a, p)| {
                    for (a, &p) in a.iter_mut().zip(p) {
                        *a = *a + w * (p - *a);
                    }
                });
        }
        self.updates += 1;
        Ok(())
    }

    /// Exchanges the tensors' values with the averages: after one call the
    /// model holds the averages (to evaluate or save them), after a second
    /// it holds its own values again.
    pub fn swap(&mut self) {
        self.swapped = !self.swapped;
        for (p, a) in self.live.iter().zip(&self.averages) {
            let mut pw = p.write();
            let mut aw = a.write();
            std::mem::swap(&mut *pw, &mut *aw);
            if !aw.is_standard_layout() {
                // The averages stay row-major for `update`.
                *aw = aw.as_standard_layout().into_owned().into_shared();
            }
        }
    }

    /// Writes the averages into the tensors for good (the values trained
    /// so far are dropped); with the averages swapped in, the tensors
    /// already hold them and stay as they are.
    pub fn copy_to_params(&mut self) {
        if self.swapped {
            // The parameters hold the averages: the slots get them back.
            for (p, a) in self.live.iter().zip(&self.averages) {
                a.set_data(p.read().as_standard_layout().into_owned().into_shared());
            }
            self.swapped = false;
            return;
        }
        for (p, a) in self.live.iter().zip(&self.averages) {
            p.set_data(a.to_array().into_shared());
        }
    }

    /// The averages, one tensor per parameter, in the order given (while
    /// they are swapped in, these hold the trained values and the
    /// parameters the averages).
    pub fn averages(&self) -> &[Tensor<T>] {
        &self.averages
    }

    /// The averaged tensors (parameters, and buffers if given), in the order given.
    pub fn params(&self) -> &[Tensor<T>] {
        &self.live
    }

    /// Whether the averages are swapped into the parameters.
    pub fn is_swapped(&self) -> bool {
        self.swapped
    }

    /// How many updates the averages hold (PyTorch's `n_averaged`).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Puts back averages saved from [`averages`](Self::averages) and
    /// [`updates`](Self::updates) (to resume a run exactly).
    ///
    /// # Panics
    /// With [`try_restore`](Self::try_restore)'s error.
    #[track_caller]
    pub fn restore(&mut self, averages: &[Tensor<T>], updates: u64) {
        ok(self.try_restore(averages, updates))
    }

    /// [`restore`](Self::restore); a count or shape that does not fit, or
    /// averages swapped in, is an error, and then nothing changes.
    pub fn try_restore(&mut self, averages: &[Tensor<T>], updates: u64) -> Result<()> {
        self.check_not_swapped("restore")?;
        let mismatch = |reason: String| OptimError::StateMismatch {
            what: "AveragedParams".into(),
            path: None,
            reason,
        };
        if averages.len() != self.averages.len() {
            return Err(mismatch(format!(
                "{} averages given for {} tensors",
                averages.len(),
                self.averages.len()
            )));
        }
        for (i, (given, own)) in averages.iter().zip(&self.averages).enumerate() {
            if given.shape() != own.shape() {
                return Err(mismatch(format!(
                    "average {i} has shape {:?}, its tensor {:?}",
                    given.shape(),
                    own.shape()
                )));
            }
        }
        for (given, own) in averages.iter().zip(&self.averages) {
            own.set_data(
                given
                    .to_array()
                    .as_standard_layout()
                    .into_owned()
                    .into_shared(),
            );
        }
        self.updates = updates;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seq: &[[f64; 3]]) -> Vec<Tensor<f64>> {
        seq.iter()
            .map(|v| Tensor::from_vec(v.to_vec(), [3]))
            .collect()
    }

    /// Runs `config` over `seq` (the parameter's values after each step)
    /// and returns the averages.
    fn average(config: AveragedConfig, seq: &[[f64; 3]]) -> Vec<f64> {
        let p = Tensor::<f64>::zeros([3]);
        let mut avg = AveragedParams::new(vec![p.clone()], config);
        for v in values(seq) {
            p.set_data(v.to_array().into_shared());
            avg.update();
        }
        assert_eq!(avg.updates(), seq.len() as u64);
        avg.averages()[0].to_vec()
    }

    const SEQ: [[f64; 3]; 4] = [
        [1.0, -2.0, 0.5],
        [3.0, 0.0, 0.25],
        [-1.0, 4.0, 8.0],
        [2.0, 2.0, -6.0],
    ];

    #[test]
    fn ema_matches_the_recurrence() {
        let d = 0.9;
        let mut want = SEQ[0].to_vec();
        for v in &SEQ[1..] {
            for (w, x) in want.iter_mut().zip(v) {
                *w = d * *w + (1.0 - d) * x;
            }
        }
        let got = average(AveragedConfig::ema(d), &SEQ);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn mean_is_the_mean_of_the_updates() {
        let got = average(AveragedConfig::mean(), &SEQ);
        for (j, g) in got.iter().enumerate() {
            let want = SEQ.iter().map(|v| v[j]).sum::<f64>() / SEQ.len() as f64;
            assert!((g - want).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn swap_twice_restores_and_bumps_versions() {
        let p = Tensor::from_vec(vec![1.0f32, 2.0], [2]);
        let mut avg = AveragedParams::new(vec![p.clone()], AveragedConfig::ema(0.5));
        avg.update();
        p.set_data(
            Tensor::from_vec(vec![3.0f32, 6.0], [2])
                .to_array()
                .into_shared(),
        );
        avg.update();
        let v0 = p.version();
        avg.swap();
        assert_eq!(p.to_vec(), vec![2.0, 4.0]);
        assert!(
            p.version() > v0,
            "a swap must invalidate caches keyed on the version"
        );
        avg.swap();
        assert_eq!(p.to_vec(), vec![3.0, 6.0]);
        assert_eq!(avg.averages()[0].to_vec(), vec![2.0, 4.0]);
        avg.copy_to_params();
        assert_eq!(p.to_vec(), vec![2.0, 4.0]);
    }

    #[test]
    fn restore_resumes_exactly_and_refuses_what_does_not_fit() {
        let run = |split: bool| {
            let p = Tensor::<f64>::zeros([3]);
            let mut avg = AveragedParams::new(vec![p.clone()], AveragedConfig::ema(0.7));
            for (i, v) in values(&SEQ).into_iter().enumerate() {
                if split && i == 2 {
                    let saved: Vec<Tensor<f64>> = avg
                        .averages()
                        .iter()
                        .map(|a| Tensor::from_array(a.to_array()))
                        .collect();
                    let n = avg.updates();
                    avg = AveragedParams::new(vec![p.clone()], AveragedConfig::ema(0.7));
                    avg.restore(&saved, n);
                }
                p.set_data(v.to_array().into_shared());
                avg.update();
            }
            avg.averages()[0].to_vec()
        };
        assert_eq!(run(true), run(false));

        let p = Tensor::<f32>::zeros([2, 2]);
        let mut avg = AveragedParams::new(vec![p], AveragedConfig::default());
        let wrong = [Tensor::<f32>::zeros([4])];
        let e = avg.try_restore(&wrong, 3).unwrap_err().to_string();
        assert!(e.contains("shape [4]") && e.contains("[2, 2]"), "{e}");
        assert_eq!(avg.updates(), 0);
        let e = avg.try_restore(&[], 3).unwrap_err().to_string();
        assert!(e.contains("0 averages given for 1 tensors"), "{e}");
    }

    #[test]
    fn a_transposed_parameter_is_averaged_and_swapped() {
        let col =
            autograd::ndarray::Array2::from_shape_vec((2, 3), vec![1.0f32, 2., 3., 4., 5., 6.])
                .unwrap()
                .reversed_axes(); // [3, 2], column-major
        let p = Tensor::from_storage(col.into_dyn().into_shared());
        let before = p.to_vec();
        let mut avg = AveragedParams::new(vec![p.clone()], AveragedConfig::mean());
        avg.update();
        p.set_data(p.to_array().mapv(|v| v + 2.0).into_shared());
        avg.update();
        let want: Vec<f32> = before.iter().map(|v| v + 1.0).collect();
        assert_eq!(avg.averages()[0].to_vec(), want);
        avg.swap();
        assert_eq!(p.to_vec(), want);
        avg.swap();
        avg.update();
        assert_eq!(avg.updates(), 3);
    }

    #[test]
    fn the_first_update_copies_exactly() {
        // 1e8 + (1 - 1e8) rounds to 0 in f32: an interpolation would lose the 1.
        let p = Tensor::from_vec(vec![1e8f32, -3.0], [2]);
        let mut avg = AveragedParams::new(vec![p.clone()], AveragedConfig::ema(0.9));
        p.set_data(
            Tensor::from_vec(vec![1.0f32, 7.5], [2])
                .to_array()
                .into_shared(),
        );
        avg.update();
        assert_eq!(avg.averages()[0].to_vec(), vec![1.0, 7.5]);
    }

    #[test]
    fn a_tensor_given_twice_is_refused() {
        let p = Tensor::<f32>::zeros([2]);
        let q = Tensor::<f32>::zeros([2]);
        let e = AveragedParams::try_new(vec![p.clone(), q, p], AveragedConfig::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("parameter 2 appears more than once"), "{e}");
    }

    #[test]
    fn swapped_in_averages_are_not_mixed_with_the_trained_values() {
        let p = Tensor::from_vec(vec![1.0f32], [1]);
        let mut avg = AveragedParams::new(vec![p.clone()], AveragedConfig::ema(0.5));
        avg.update();
        p.set_data(Tensor::from_vec(vec![3.0f32], [1]).to_array().into_shared());
        avg.update(); // average 2
        avg.swap();
        assert!(avg.is_swapped());
        let e = avg.try_update().unwrap_err().to_string();
        assert!(e.contains("update: the averages are swapped"), "{e}");
        let e = avg.try_restore(&[p.clone()], 1).unwrap_err().to_string();
        assert!(e.contains("restore: the averages are swapped"), "{e}");
        assert_eq!((p.item(), avg.updates()), (2.0, 2));
        avg.copy_to_params(); // keeps the averages in, for good
        assert!(!avg.is_swapped());
        assert_eq!(p.item(), 2.0);
        avg.update();
        assert_eq!(avg.averages()[0].item(), 2.0);
    }

    #[test]
    fn decay_outside_the_unit_interval_is_refused() {
        for decay in [-0.1, 1.5, f64::NAN] {
            let e = AveragedParams::<f32>::try_new(vec![], AveragedConfig::ema(decay))
                .err()
                .expect("refused")
                .to_string();
            assert!(e.contains("EMA decay"), "{e}");
        }
    }
}
