//! Fuzzing every file reader of dlfs on stable Rust: the IDX reader (raw
//! and gzipped), CIFAR-10 batches, safetensors state dicts
//! ([`nn::SafetensorsFile`] and `Module::load_state_dict`), the optimizer
//! and scheduler state loaders, and training checkpoints.
//!
//! [`harness`] mutates the committed corpus (`fuzz/corpus/<target>/`) with a
//! seed; [`alloc`] counts allocations; [`targets`](mod@targets) holds one target per
//! reader. `cargo test -p dlfs-fuzz --release` runs each target for a fixed
//! number of seeded iterations; `cargo run -p dlfs-fuzz --release --
//! --seconds 300` runs them long.

pub mod alloc;
pub mod harness;
pub mod targets;

use std::path::{Path, PathBuf};

pub use alloc::CountingAlloc;
pub use harness::{fuzz, Budget, Finding, Report};
pub use targets::{targets, Target};

/// The committed corpus folder of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// The committed corpus of `target`, in file-name order; the target's
/// seeds when the folder is missing.
pub fn corpus(target: &Target) -> Vec<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(target.name)) else {
        return (target.seeds)();
    };
    let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Writes the seeds of every target into the corpus folders (the
/// committed files; regression inputs added by hand stay).
pub fn write_corpus() -> std::io::Result<()> {
    for t in targets() {
        let dir = corpus_dir(t.name);
        std::fs::create_dir_all(&dir)?;
        for (i, s) in (t.seeds)().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}.bin")), s)?;
        }
    }
    Ok(())
}
