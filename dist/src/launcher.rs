//! Whether an MPI launcher started this process, read from the environment
//! that `mpirun`/`mpiexec` set for their children.

/// Variables that MPI launchers set to the number of processes: OpenMPI's
/// `mpirun`, MPICH's and Intel MPI's Hydra (`PMI_SIZE`), MVAPICH2.
const SIZE_VARS: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"];

/// `(variable, size)` when a launcher started this process as one of
/// several; `None` for a plain start (or `mpirun -np 1`).
pub fn launched_size() -> Option<(&'static str, usize)> {
    SIZE_VARS.iter().find_map(|&var| {
        let size: usize = std::env::var(var).ok()?.trim().parse().ok()?;
        (size > 1).then_some((var, size))
    })
}
