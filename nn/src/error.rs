//! Errors of module construction and of state-dict files.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong while saving or loading a state dict.
#[derive(Debug, Error)]
pub enum NnError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (corrupt or truncated).
    #[error("{path}: not a valid safetensors file ({reason})")]
    Format {
        /// The file (or the path given with in-memory bytes) that is not valid safetensors.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored tensor has a dtype that this crate does not read (or, in a
    /// state dict, one that is not a number).
    #[error("{path}: tensor '{name}' has unsupported dtype {dtype}")]
    Dtype {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor's name in the file.
        name: String,
        /// The stored dtype's name (`F8_E4M3`, `U64`, or `Bool` for a state dict).
        dtype: String,
    },
    /// The file has no tensor of this name.
    #[error("{path}: no tensor named '{name}'")]
    NoSuchTensor {
        /// The file that was searched.
        path: PathBuf,
        /// The tensor name asked for.
        name: String,
    },
    /// An integer read of a tensor stored as floats.
    #[error("{path}: tensor '{name}' is stored as {dtype}, not as integers (read it as f64)")]
    NotInteger {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor's name in the file.
        name: String,
        /// The float dtype it is stored as (`F32`, `F16`, ...).
        dtype: String,
    },
    /// The state dict does not fit the module (all problems at once).
    #[error("state dict does not fit the module{}:{}", source_note(.path), mismatch_list(.missing, .unexpected, .mismatched))]
    Mismatch {
        /// The file the state dict came from (`None`: an in-memory state dict).
        path: Option<PathBuf>,
        /// Keys the module expects that the state dict lacks.
        missing: Vec<String>,
        /// Keys in the state dict that the module does not have.
        unexpected: Vec<String>,
        /// (name, shape in the module, shape in the state dict)
        mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
    },
    /// No sub-module has this dotted name.
    #[error("no sub-module named '{name}' (the model has: {})", known.join(", "))]
    NoSuchModule {
        /// The dotted name asked for.
        name: String,
        /// The dotted names of the sub-modules the model has.
        known: Vec<String>,
    },
    /// The sub-module has no hook slot (a `Hooks` field) to register a hook in.
    #[error("sub-module '{name}' ({module}) cannot take hooks: give its struct a `hooks: nn::Hooks` field")]
    NoHookSlot {
        /// The sub-module's dotted name.
        name: String,
        /// Its description (type and options).
        module: String,
    },
}

fn source_note(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default()
}

fn mismatch_list(
    missing: &[String],
    unexpected: &[String],
    mismatched: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
    let mut s = String::new();
    if !missing.is_empty() {
        s += &format!(" missing keys {missing:?};");
    }
    if !unexpected.is_empty() {
        s += &format!(" unexpected keys {unexpected:?};");
    }
    for (name, want, got) in mismatched {
        s += &format!(" '{name}' is {want:?} in the module but {got:?} in the state dict;");
    }
    s
}

/// `Result` with [`NnError`].
pub type Result<T, E = NnError> = std::result::Result<T, E>;
