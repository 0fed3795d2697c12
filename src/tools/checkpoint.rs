//! [`Checkpoint`]: everything a training run needs to continue exactly —
//! the model's weights, the optimizer's and scheduler's state, and where in
//! the run it stopped ([`Position`]: the epoch, the batches of it done and
//! their running figures) — in one file, written atomically.
//!
//! One file rather than one per part: a crash between writing the model and
//! writing the optimizer could otherwise pair the weights of one step with
//! the moments of another, and resume silently off course. The file is a
//! safetensors file whose metadata holds the position and whose three `U8`
//! tensors hold the model's state dict, the optimizer's state and the
//! scheduler's state, each in its own safetensors format (so each is read by
//! its own validated reader). A run that averages its weights
//! ([`optim::AveragedParams`]) adds a fourth, the averages under the names
//! of the parameters and buffers they average ([`Checkpoint::with_averages`]).
//!
//! ```
//! use dlfs::tools::checkpoint::{Checkpoint, Position};
//! use nn::{Linear, LinearConfig, Module};
//! use optim::{Optimizer, Sgd, SgdConfig};
//!
//! let model = Linear::new(LinearConfig::new(3, 2));
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
//! let at = Position { epoch: 2, step: 5, ..Position::start(2) };
//! let ckpt = Checkpoint::capture(at.clone(), "seed=0", &model, &opt, None);
//! let dir = std::env::temp_dir().join(format!("dlfs-doc-ckpt-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! ckpt.save(&dir.join("checkpoint.safetensors")).unwrap();
//!
//! let back = Checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
//! assert_eq!(back.position, at);
//! let fresh = Linear::new(LinearConfig::new(3, 2));
//! let mut opt2 = Sgd::new(fresh.parameters(), SgdConfig::default());
//! back.restore(&fresh, &mut opt2, None).unwrap();
//! assert_eq!(fresh.weight.to_vec(), model.weight.to_vec());
//! assert_eq!(opt2.param_groups()[0].lr, 0.1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autograd::Tensor;
use nn::{Dtype, Module, NnError, StateDict};
use optim::lr_scheduler::LrScheduler;
use optim::{AveragedParams, OptimError, Optimizer, OptimizerState, SchedulerState};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};

const FORMAT: &str = "dlfs.checkpoint.v1";

/// Where a run stands: the epoch in progress (from 1), how many of its
/// batches are done, and their running figures, so that a resumed epoch
/// reports the same mean loss and accuracy as an uninterrupted one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    /// The epoch in progress, from 1.
    pub epoch: usize,
    /// Batches of `epoch` done (0: the epoch has not started).
    pub step: usize,
    /// Sum of the batch losses of those steps.
    pub loss_sum: f64,
    /// Correct predictions in those steps.
    pub correct: usize,
    /// Images seen in those steps.
    pub images: usize,
}

impl Position {
    /// The start of `epoch`: no batch done.
    pub fn start(epoch: usize) -> Position {
        Position {
            epoch,
            ..Position::default()
        }
    }
}

/// Why a checkpoint could not be written, read or applied.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written; the previous file, if any,
    /// is as it was.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint's path.
        path: PathBuf,
        /// The underlying error (its message names the file that failed).
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint this version reads.
    #[error("checkpoint {path}: {reason}")]
    Format {
        /// The checkpoint's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model part is corrupt or does not fit the model.
    #[error("checkpoint {path}, model: {source}")]
    Model {
        /// The checkpoint's path.
        path: PathBuf,
        /// The state-dict error.
        #[source]
        source: NnError,
    },
    /// The optimizer or scheduler part is corrupt or does not fit.
    #[error("checkpoint {path}, {part}: {source}")]
    Optim {
        /// The checkpoint's path.
        path: PathBuf,
        /// `"optimizer"` or `"scheduler"`.
        part: &'static str,
        /// The state error.
        #[source]
        source: OptimError,
    },
}

/// A run's full state; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Where the run stands.
    pub position: Position,
    /// What the run was started with that must not change on resume (seed,
    /// batch size, data), as the caller writes it; compared by the caller.
    pub config: String,
    /// The model's state dict.
    pub model: StateDict,
    /// The optimizer's state.
    pub optimizer: OptimizerState<f32>,
    /// The scheduler's state, if the run has one.
    pub scheduler: Option<SchedulerState>,
    /// The weight averages under their parameters' names, and how many
    /// updates they hold, if the run averages its weights.
    pub averages: Option<(StateDict, u64)>,
    /// Where it was read from (empty for one just captured).
    path: PathBuf,
}

impl Checkpoint {
    /// The state of `model`, `opt` and `sched` at `position`.
    pub fn capture(
        position: Position,
        config: impl Into<String>,
        model: &dyn Module,
        opt: &dyn Optimizer,
        sched: Option<&dyn LrScheduler>,
    ) -> Checkpoint {
        Checkpoint {
            position,
            config: config.into(),
            model: model.state_dict(),
            optimizer: opt.state_dict(),
            scheduler: sched.map(|s| s.state_dict()),
            averages: None,
            path: PathBuf::new(),
        }
    }

    /// Adds the weight averages of `avg`, each under the name of the
    /// `model` parameter or buffer it averages (batch-norm statistics may
    /// be averaged with the weights). Swapped in or not, the averages are
    /// what is saved.
    pub fn with_averages(mut self, model: &dyn Module, avg: &AveragedParams<f32>) -> Checkpoint {
        // While swapped, the parameters hold the averages.
        let values = if avg.is_swapped() {
            avg.params()
        } else {
            avg.averages()
        };
        let pairs = average_names(model, avg)
            .into_iter()
            .zip(values)
            .map(|(name, v)| (name, Tensor::from_array(v.to_array())))
            .collect();
        self.averages = Some((StateDict::from_pairs(pairs), avg.updates()));
        self
    }

    /// Puts the saved averages into `avg`, found by the names
    /// [`with_averages`](Self::with_averages) gave them. A checkpoint
    /// without averages, or one whose averages miss a tensor or differ in
    /// shape, is an error and `avg` is left as it was.
    pub fn restore_averages(
        &self,
        model: &dyn Module,
        avg: &mut AveragedParams<f32>,
    ) -> Result<(), CheckpointError> {
        let Some((saved, updates)) = &self.averages else {
            return Err(
                self.format_err("it holds no weight averages; the run averages its weights")
            );
        };
        let values = average_names(model, avg)
            .iter()
            .map(|name| {
                saved
                    .get(name)
                    .cloned()
                    .ok_or_else(|| self.format_err(&format!("the averages have no '{name}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        avg.try_restore(&values, *updates)
            .map_err(|source| CheckpointError::Optim {
                path: self.path.clone(),
                part: "averages",
                source,
            })
    }

    /// Puts the saved state into `model` (strictly: every name and shape
    /// must match), `opt` and `sched` (which must be given exactly when the
    /// checkpoint has a scheduler state).
    pub fn restore<'s>(
        &self,
        model: &dyn Module,
        opt: &mut dyn Optimizer,
        sched: Option<&mut (dyn LrScheduler + 's)>,
    ) -> Result<(), CheckpointError> {
        let path = self.path.clone();
        model
            .load_state_dict(&self.model, true)
            .map_err(|source| CheckpointError::Model {
                path: path.clone(),
                source,
            })?;
        let optim = |part, source| CheckpointError::Optim {
            path: path.clone(),
            part,
            source,
        };
        opt.load_state_dict(&self.optimizer)
            .map_err(|e| optim("optimizer", e))?;
        match (sched, &self.scheduler) {
            (Some(s), Some(state)) => s.load_state_dict(state).map_err(|e| optim("scheduler", e)),
            (None, None) => Ok(()),
            (Some(_), None) => Err(self.format_err("it holds no scheduler state; the run has one")),
            (None, Some(_)) => Err(self.format_err("it holds a scheduler state; the run has none")),
        }
    }

    /// The file's bytes (safetensors).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.position;
        let meta: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("config", self.config.clone()),
            ("epoch", p.epoch.to_string()),
            ("step", p.step.to_string()),
            // Shortest round-trip form: the resumed mean loss is bit-identical.
            ("loss_sum", format!("{:?}", p.loss_sum)),
            ("correct", p.correct.to_string()),
            ("images", p.images.to_string()),
        ]
        .into_iter()
        .chain(
            self.averages
                .as_ref()
                .map(|(_, n)| ("average_updates", n.to_string())),
        )
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut parts = vec![
            ("model", self.model.to_bytes(Dtype::F32)),
            ("optimizer", self.optimizer.to_bytes()),
        ];
        if let Some(s) = &self.scheduler {
            parts.push(("scheduler", s.to_bytes()));
        }
        if let Some((a, _)) = &self.averages {
            parts.push(("averages", a.to_bytes(Dtype::F32)));
        }
        let views: Vec<(&str, TensorView<'_>)> = parts
            .iter()
            .map(|(name, b)| {
                let view = TensorView::new(StDtype::U8, vec![b.len()], b).expect("a byte vector");
                (*name, view)
            })
            .collect();
        safetensors::serialize(views, Some(meta)).expect("byte tensors serialise")
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output; `path` names the source
    /// in errors. Malformed bytes are an error, never a panic.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let format = |reason: String| CheckpointError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            meta.get(key)
                .ok_or_else(|| format(format!("no '{key}' in the metadata")))
        };
        if get("format")? != FORMAT {
            return Err(format(format!(
                "format '{}', expected '{FORMAT}'",
                get("format")?
            )));
        }
        let number = |key: &str| -> Result<usize, CheckpointError> {
            let v = get(key)?;
            v.parse()
                .map_err(|_| format(format!("'{key}' = '{v}' is not a count")))
        };
        let loss_sum: f64 = {
            let v = get("loss_sum")?;
            v.parse()
                .map_err(|_| format(format!("'loss_sum' = '{v}' is not a number")))?
        };
        let position = Position {
            epoch: number("epoch")?,
            step: number("step")?,
            loss_sum,
            correct: number("correct")?,
            images: number("images")?,
        };
        let blob = |name: &str| -> Result<Option<&[u8]>, CheckpointError> {
            match st.tensor(name) {
                Err(_) => Ok(None),
                Ok(v) if v.dtype() == StDtype::U8 && v.shape().len() == 1 => Ok(Some(v.data())),
                Ok(v) => Err(format(format!(
                    "part '{name}' is {:?} of shape {:?}, not bytes",
                    v.dtype(),
                    v.shape()
                ))),
            }
        };
        let required = |name: &str| blob(name)?.ok_or_else(|| format(format!("no '{name}' part")));
        for name in st.names() {
            if !["model", "optimizer", "scheduler", "averages"].contains(&name) {
                return Err(format(format!("unexpected part '{name}'")));
            }
        }
        let model = StateDict::from_bytes(required("model")?, path).map_err(|source| {
            CheckpointError::Model {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let optim = |part, source| CheckpointError::Optim {
            path: path.to_path_buf(),
            part,
            source,
        };
        let optimizer = OptimizerState::from_bytes(required("optimizer")?, path)
            .map_err(|e| optim("optimizer", e))?;
        let scheduler = blob("scheduler")?
            .map(|b| SchedulerState::from_bytes(b, path))
            .transpose()
            .map_err(|e| optim("scheduler", e))?;
        let averages = match blob("averages")? {
            None => None,
            Some(b) => {
                let sd = StateDict::from_bytes(b, path)
                    .map_err(|e| format(format!("part 'averages': {e}")))?;
                Some((sd, number("average_updates")? as u64))
            }
        };
        Ok(Checkpoint {
            position,
            config: get("config")?.clone(),
            model,
            optimizer,
            scheduler,
            averages,
            path: path.to_path_buf(),
        })
    }

    /// Writes the checkpoint to `path` atomically (see
    /// [`autograd::io::write_atomic`]): the file holds the previous
    /// checkpoint or this one, never a part, whatever happens mid-write. A
    /// path that cannot be written is an error naming it, the previous
    /// file intact.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        autograd::io::write_atomic(path, &self.to_bytes()).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a checkpoint written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// The file it was read from (empty for one just captured).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn format_err(&self, reason: &str) -> CheckpointError {
        CheckpointError::Format {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The names of the tensors `avg` averages: those of `model`'s parameters
/// and buffers, and `averaged.{i}` (its place in `avg`) for a tensor that
/// is neither.
fn average_names(model: &dyn Module, avg: &AveragedParams<f32>) -> Vec<String> {
    let named = model.named_tensors();
    avg.params()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            named
                .iter()
                .find(|(_, t)| t.tensor.id() == p.id())
                .map_or_else(|| format!("averaged.{i}"), |(name, _)| name.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nn::{Linear, LinearConfig};
    use optim::{AveragedConfig, Sgd, SgdConfig};

    fn trained() -> (Linear, Sgd, AveragedParams<f32>) {
        autograd::manual_seed(3);
        let model = Linear::new(LinearConfig::new(3, 2));
        let mut opt = Sgd::new(
            model.parameters(),
            SgdConfig {
                lr: 0.5,
                ..Default::default()
            },
        );
        let mut avg = AveragedParams::new(model.parameters(), AveragedConfig::ema(0.5));
        for _ in 0..3 {
            opt.zero_grad();
            model.forward(&Tensor::ones([2, 3])).sum().backward();
            opt.step();
            avg.update();
        }
        (model, opt, avg)
    }

    /// The averages go through the file under the parameters' names and
    /// come back into a fresh run's `AveragedParams`, its count with them;
    /// saved while swapped in, they are still the averages.
    #[test]
    fn averages_round_trip() {
        let (model, opt, mut avg) = trained();
        let want: Vec<Vec<f32>> = avg.averages().iter().map(|a| a.to_vec()).collect();
        assert_ne!(
            want[0],
            model.weight.to_vec(),
            "the test needs averages unlike the weights"
        );
        avg.swap();
        let bytes = Checkpoint::capture(Position::start(2), "c", &model, &opt, None)
            .with_averages(&model, &avg)
            .to_bytes();
        avg.swap();
        let back = Checkpoint::from_bytes(&bytes, Path::new("ck")).unwrap();
        let mut names: Vec<&String> = back.averages.as_ref().unwrap().0.keys().collect();
        names.sort();
        assert_eq!(names, ["bias", "weight"]);

        let fresh = Linear::new(LinearConfig::new(3, 2));
        let mut avg2 = AveragedParams::new(fresh.parameters(), AveragedConfig::ema(0.5));
        back.restore_averages(&fresh, &mut avg2).unwrap();
        let got: Vec<Vec<f32>> = avg2.averages().iter().map(|a| a.to_vec()).collect();
        assert_eq!(got, want);
        assert_eq!(avg2.updates(), 3);
    }

    /// A checkpoint without averages, restored into a run that keeps
    /// them, is an error naming the file; the averages stay as they were.
    #[test]
    fn a_checkpoint_without_averages_is_refused() {
        let (model, opt, mut avg) = trained();
        let bytes = Checkpoint::capture(Position::start(2), "c", &model, &opt, None).to_bytes();
        let back = Checkpoint::from_bytes(&bytes, Path::new("run/ck.safetensors")).unwrap();
        let before: Vec<Vec<f32>> = avg.averages().iter().map(|a| a.to_vec()).collect();
        let err = back
            .restore_averages(&model, &mut avg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run/ck.safetensors") && err.contains("no weight averages"),
            "{err}"
        );
        let after: Vec<Vec<f32>> = avg.averages().iter().map(|a| a.to_vec()).collect();
        assert_eq!(before, after);
        assert_eq!(avg.updates(), 3);
    }

    /// Batch-norm statistics averaged with the weights (PyTorch's
    /// `use_buffers=True`) go through the file under their own names.
    #[test]
    fn averaged_buffers_round_trip() {
        use nn::{BatchNorm1d, BatchNormConfig, Sequential};
        let model = Sequential::new()
            .add(Linear::new(LinearConfig::new(3, 2)))
            .add(BatchNorm1d::new(BatchNormConfig::new(2)));
        let mut tensors = model.parameters();
        tensors.extend(model.named_buffers().into_iter().map(|(_, t)| t));
        let mut avg = AveragedParams::new(tensors.clone(), AveragedConfig::ema(0.5));
        model.train();
        for step in 0..3 {
            let x = Tensor::from_vec((0..12).map(|i| (i * step) as f32 / 7.0).collect(), [4, 3]);
            model.forward(&x);
            avg.update();
        }
        let opt = Sgd::new(model.parameters(), SgdConfig::default());
        let ckpt = Checkpoint::capture(Position::start(2), "c", &model, &opt, None)
            .with_averages(&model, &avg);
        let names: Vec<&String> = ckpt.averages.as_ref().unwrap().0.keys().collect();
        assert!(
            names.iter().any(|n| n.ends_with("running_mean")),
            "{names:?}"
        );
        let back = Checkpoint::from_bytes(&ckpt.to_bytes(), Path::new("ck")).unwrap();

        let mut fresh = AveragedParams::new(tensors, AveragedConfig::ema(0.5));
        back.restore_averages(&model, &mut fresh).unwrap();
        for (a, b) in fresh.averages().iter().zip(avg.averages()) {
            assert_eq!(a.to_vec(), b.to_vec());
        }
    }
}
