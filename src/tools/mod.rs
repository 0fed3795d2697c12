//! What the example training scripts share, as `torchvision.utils` and the
//! usual helpers of a PyTorch training script: command-line options, a
//! progress bar, evaluation, metrics as CSV, and pictures as PNG (training
//! curves, image grids with captions).

pub mod args;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod train;

pub use args::Args;
pub use metrics::MetricsCsv;
pub use plot::{image_grid_png, plot_curves_png, Curve, GridImage};
pub use progress::EpochProgress;
pub use train::{evaluate, predict, Evaluation};
