//! Environments for reinforcement learning, as Gymnasium's: `reset` gives
//! the first observation, `step(action)` the next one with its reward and
//! whether the episode ended.

pub mod cartpole;

pub use cartpole::{CartPole, Step};
