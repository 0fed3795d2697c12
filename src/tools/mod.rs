//! What the example training scripts share, as `torchvision.utils` and the
//! usual helpers of a PyTorch training script: command-line options, a
//! progress bar, a training epoch, evaluation, metrics as CSV, pictures as
//! PNG (training curves, image grids with captions), and an error type that
//! prints well when `main` returns it; [`ranks`] makes them rank-aware
//! for data-parallel jobs.

pub mod args;
pub mod error;
pub mod fashion;
pub mod fit;
pub mod metrics;
pub mod plot;
pub mod pretrained;
pub mod progress;
pub mod ranks;
pub mod train;

pub use args::Args;
pub use error::Failure;
pub use fashion::fashion_mnist;
pub use fit::train_epoch;
pub use metrics::MetricsCsv;
pub use plot::{image_grid_png, plot_curves_png, plot_curves_png_x, Curve, GridImage};
pub use pretrained::trained_deep_convnet;
pub use progress::EpochProgress;
pub use train::{argmax, evaluate, predict, predict_logits, Evaluation};
