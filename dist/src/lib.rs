//! Data-parallel training on several processes — on one machine or many —
//! over MPI, as PyTorch's `torch.distributed` with `DistributedDataParallel`,
//! or Horovod.
//!
//! The same script runs as one process (`cargo run`) or as N under
//! `mpirun -np N`; each process (a *rank*) trains a replica of the model on
//! its share of every batch, and the gradients are averaged across ranks
//! after each backward pass, so the replicas take identical steps: the
//! model one process would have trained on the whole batch.
//!
//! - [`init`] → a [`World`]: [`rank`](World::rank), [`size`](World::size),
//!   [`barrier`](World::barrier), and collectives on tensors
//!   ([`all_reduce`](World::all_reduce), [`broadcast`](World::broadcast),
//!   [`all_gather`](World::all_gather)) and on numbers for metrics.
//! - [`DistributedDataParallel`] wraps any [`nn::Module`].
//! - [`World::sampler`]: this rank's share of each epoch for a
//!   [`DataLoader`](models::data::DataLoader) (see
//!   [`DistributedSampler`](models::data::DistributedSampler)).
//!
//! **Building.** MPI comes with the cargo feature `mpi` (rsmpi over the
//! system's MPI library; Debian: `libopenmpi-dev openmpi-bin libclang-dev`).
//! Without it the crate still builds and [`init`] gives a world of size 1
//! in which every collective is an identity — unless an MPI launcher
//! started the process as one of several, which is an error saying how to
//! build with MPI (N copies of a one-process run writing the same files
//! would be worse).
//!
//! **Failure.** With several ranks, a panic in any of them aborts the whole
//! job (`MPI_Abort`), and [`World::fail`] does the same for an error, so no
//! rank waits forever in a collective for one that is gone.
//!
//! ```
//! use autograd::Tensor;
//! use dist::{DistributedDataParallel, ReduceOp};
//! use nn::{Linear, LinearConfig, Module};
//! use optim::{Optimizer, Sgd, SgdConfig};
//!
//! let world = dist::init().unwrap();
//! let model = DistributedDataParallel::new(Linear::new(LinearConfig::new(3, 2)), &world);
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     let x = Tensor::randn([4, 3]); // this rank's share of the batch
//!     let loss = model.forward(&x).cross_entropy(&[0, 1, 1, 0]);
//!     loss.backward();               // gradients averaged over the ranks
//!     opt.step();
//!     let mean_loss = world.all_reduce_scalar(loss.item() as f64, ReduceOp::Mean);
//!     assert!(mean_loss.is_finite());
//! }
//! ```

#![warn(missing_docs)]

mod comm;
pub mod ddp;
pub mod error;
pub mod launcher;
pub mod reducer;
pub mod world;

pub use comm::{Element, ReduceOp};
pub use ddp::{DdpConfig, DistributedDataParallel, NoSync};
pub use error::{DistError, Result};
pub use launcher::launched_size;
pub use reducer::CommStats;
pub use world::{init, World};
