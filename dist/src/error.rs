//! The error type of the `dist` crate.

use thiserror::Error;

/// What can go wrong when setting up or using a [`World`](crate::World).
#[derive(Debug, Error)]
pub enum DistError {
    /// Started by an MPI launcher with several processes, but built without
    /// the `mpi` feature: every process would train alone.
    #[error(
        "this program was started by an MPI launcher as one of {size} processes ({var}={size}), \
         but dlfs-dist was built without MPI, so each process would train alone and all of them \
         would write the same files. Rebuild with the `mpi` feature, e.g. \
         `cargo build --release --features mpi --example 09_data_parallel` \
         (it needs an MPI library and libclang; on Debian: \
         apt-get install libopenmpi-dev openmpi-bin libclang-dev)"
    )]
    BuiltWithoutMpi {
        /// The number of processes the launcher started.
        size: usize,
        /// The environment variable that told.
        var: &'static str,
    },
    /// MPI could not be initialised (or was finalised already: a world
    /// cannot be created again once every handle to it is gone).
    #[error("MPI: {0}")]
    Init(String),
    /// The ranks' models differ: named by the first rank that differs from
    /// rank 0 and the first parameter or buffer in which it does.
    #[error("DistributedDataParallel: rank {rank}'s model differs from rank 0's: {detail}")]
    ModelMismatch {
        /// The first rank whose model differs from rank 0's.
        rank: usize,
        /// Which parameter or buffer, and how.
        detail: String,
    },
    /// An argument out of range (a root rank, a bucket size).
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with [`DistError`].
pub type Result<T, E = DistError> = std::result::Result<T, E>;
