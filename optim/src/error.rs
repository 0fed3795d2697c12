//! The one error type of the crate.
//!
//! Policy (as in `autograd`): every fallible call has a `try_*` form
//! returning [`Result`]; the plain form panics with the same message. Loading
//! a state (from memory or from a file) never panics: a state that does not
//! fit, or a corrupt or truncated file, is an error that says what and where.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong in an optimizer, a scheduler or their saved state.
#[derive(Debug, Error)]
pub enum OptimError {
    /// A hyper-parameter outside its range (PyTorch's `ValueError`s).
    #[error("{what}: {reason}")]
    InvalidConfig {
        /// The optimizer, scheduler or function that refused it (e.g. `"Adam"`).
        what: &'static str,
        /// Which setting is wrong and why.
        reason: String,
    },
    /// The same tensor given twice (PyTorch refuses it too: it would be stepped twice).
    #[error("{what}: parameter {index} appears more than once in the parameter groups")]
    DuplicateParam {
        /// The optimizer's name.
        what: &'static str,
        /// Position of the repeated parameter, counted over all groups in order.
        index: usize,
    },
    /// A gradient whose shape is not its parameter's.
    #[error("{what}: parameter {index} (group {group}) has shape {param:?} but its gradient has shape {grad:?}")]
    GradShape {
        /// The optimizer's name.
        what: &'static str,
        /// Index of the parameter's group.
        group: usize,
        /// Position of the parameter, counted over all groups in order.
        index: usize,
        /// Shape of the parameter.
        param: Vec<usize>,
        /// Shape of its gradient.
        grad: Vec<usize>,
    },
    /// A saved state that does not fit this optimizer or scheduler.
    #[error("{what}: the state does not fit{}: {reason}", path_note(.path))]
    StateMismatch {
        /// The optimizer or scheduler loading the state.
        what: String,
        /// The file the state came from; `None` when loaded from memory.
        path: Option<PathBuf>,
        /// What does not fit.
        reason: String,
    },
    /// A scheduler used with an optimizer whose number of groups changed.
    #[error("{what}: built for {expected} parameter group(s), but the optimizer has {got}")]
    GroupCount {
        /// The scheduler's name.
        what: &'static str,
        /// Number of groups the scheduler was built for.
        expected: usize,
        /// Number of groups the optimizer has now.
        got: usize,
    },
    /// A schedule stepped past its end (OneCycleLR's `total_steps`).
    #[error("{what}: tried to step {step} times; the schedule has {total} steps")]
    ScheduleEnded {
        /// The scheduler's name.
        what: &'static str,
        /// The step that was attempted.
        step: i64,
        /// Number of steps in the schedule (`total_steps`).
        total: usize,
    },
    /// ReduceLROnPlateau stepped without the metric it needs.
    #[error("{what}: needs the monitored metric; call step_with_metric")]
    MetricRequired {
        /// The scheduler's name.
        what: &'static str,
    },
    /// `try_clip_grad_norm_` found a NaN or infinite total norm.
    #[error("clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({norm}), so they cannot be clipped")]
    NonFiniteNorm {
        /// The order of the norm (`2.0` for L2, `f64::INFINITY` for max).
        norm_type: f64,
        /// The total norm found (NaN or infinite).
        norm: f64,
    },
    /// Reading or writing a state file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A state file that is not what `save` writes (corrupt, truncated or foreign).
    #[error("{path}: not a valid state file ({reason})")]
    Format {
        /// The file that is not a valid state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn path_note(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default()
}

impl OptimError {
    /// Adds the file a mismatched state came from, so the message names it.
    pub(crate) fn in_file(self, file: &std::path::Path) -> OptimError {
        match self {
            OptimError::StateMismatch {
                what,
                path: None,
                reason,
            } => OptimError::StateMismatch {
                what,
                path: Some(file.to_path_buf()),
                reason,
            },
            other => other,
        }
    }
}

/// `Result` with [`OptimError`].
pub type Result<T, E = OptimError> = std::result::Result<T, E>;

/// Unwraps a `try_*` result for the panicking convenience form.
#[track_caller]
pub(crate) fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// A `StateMismatch` without a file (loading from memory).
pub(crate) fn mismatch(what: impl Into<String>, reason: impl Into<String>) -> OptimError {
    OptimError::StateMismatch {
        what: what.into(),
        path: None,
        reason: reason.into(),
    }
}
