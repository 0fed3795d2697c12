//! `dlfs`: the umbrella crate. It re-exports the framework's crates, the way
//! `torch` gathers `torch.autograd`, `torch.nn` and `torch.optim`, and holds
//! the runnable examples, the workspace-level tests and the benchmarks.
//!
//! The README below is compiled and run as this crate's doctests.
#![doc = include_str!("../README.md")]

pub use autograd;
pub use dist;
pub use models;
pub use nn;
pub use optim;

pub mod envs;
pub mod tools;
