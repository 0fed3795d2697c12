//! The training-script helpers of a data-parallel job (`dist`): every rank
//! computes, rank 0 alone speaks and writes. Figures are reduced over the
//! ranks before they are printed; the progress bar is drawn by rank 0;
//! files (CSV, PNG, checkpoints) are written by rank 0 and, on `--resume`,
//! read by rank 0 and sent to the others, so that the ranks need no shared
//! file system.
//!
//! ```
//! use std::sync::Arc;
//! use dlfs::tools::ranks::evaluate_sharded;
//! use models::data::{DataLoader, InMemory, Tail};
//! use nn::{Flatten, Linear, LinearConfig, Sequential};
//!
//! let world = dist::init().unwrap();
//! let data = Arc::new(InMemory::new(vec![0.5; 5 * 4], [1, 2, 2], vec![0, 1, 0, 1, 1]).unwrap());
//! // Each example once over all ranks: the uneven tail, no padding.
//! let loader = DataLoader::new(data, 2).distributed(world.sampler().tail(Tail::Uneven));
//! let model = Sequential::new().add(Flatten::default()).add(Linear::new(LinearConfig::new(4, 2)));
//! assert_eq!(evaluate_sharded(&model, &loader, &world, false).count, 5);
//! ```

use std::path::Path;

use dist::{ReduceOp, World};
use models::data::DataLoader;
use nn::Module;

use super::error::Failure;
use super::progress::EpochProgress;
use super::train::{evaluate, Evaluation};

/// An epoch's progress bar, drawn on rank 0 only.
pub fn progress(world: &World, epoch: usize, epochs: usize, batches: usize) -> EpochProgress {
    EpochProgress::with_visibility(epoch, epochs, batches, world.is_root())
}

/// [`evaluate`] over this rank's share of `loader`, the sums added over the
/// ranks: with a loader whose sampler has [`Tail::Uneven`](models::data::Tail)
/// every example counts once, as in one process. A collective.
pub fn evaluate_sharded(
    model: &dyn Module,
    loader: &DataLoader,
    world: &World,
    restore_train: bool,
) -> Evaluation {
    let local = evaluate(model, loader, restore_train);
    let n = local.count as f64;
    let mut sums = [local.loss * n, local.accuracy / 100.0 * n, n];
    world.all_reduce_slice(&mut sums, ReduceOp::Sum);
    let count = sums[2].max(1.0);
    Evaluation {
        loss: sums[0] / count,
        // The correct counts are integers carried in f64: round them back.
        accuracy: 100.0 * sums[1].round() / count,
        count: sums[2] as usize,
    }
}

/// The file's bytes as rank 0 reads them, on every rank: `None` when it does
/// not exist on rank 0; an error (on every rank, naming the file) when rank 0
/// cannot read it. A collective.
pub fn broadcast_file(world: &World, path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    // One status byte first: 0 missing, 1 read, 2 error (the message follows).
    let message = if world.is_root() {
        match std::fs::read(path) {
            Ok(mut bytes) => {
                bytes.insert(0, 1);
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![0],
            Err(e) => {
                let mut m = vec![2];
                m.extend(format!("{}: {e}", path.display()).into_bytes());
                m
            }
        }
    } else {
        Vec::new()
    };
    let mut got = world.broadcast_bytes(message, 0);
    match got.first() {
        Some(1) => {
            got.remove(0);
            Ok(Some(got))
        }
        Some(2) => Err(Failure::msg(format!(
            "rank 0 cannot read {}",
            String::from_utf8_lossy(&got[1..])
        ))),
        _ => Ok(None),
    }
}
