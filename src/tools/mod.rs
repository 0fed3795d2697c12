//! What the example training scripts share, as `torchvision.utils` and the
//! usual helpers of a PyTorch training script: command-line options, a
//! progress bar, a training epoch that stops loudly on a NaN loss and cleanly
//! on Ctrl-C, one-file checkpoints, evaluation, metrics as CSV, pictures as
//! PNG (training curves, image grids with captions), and an error type that
//! prints well when `main` returns it; [`ranks`] makes them rank-aware
//! for data-parallel jobs.

pub mod args;
pub mod checkpoint;
pub mod error;
pub mod fashion;
pub mod fit;
pub mod gan_metrics;
pub mod interrupt;
pub mod metrics;
pub mod plot;
pub mod pretrained;
pub mod progress;
pub mod ranks;
pub mod train;

pub use args::Args;
pub use checkpoint::{Checkpoint, CheckpointError, Position};
pub use error::Failure;
pub use fashion::fashion_mnist;
pub use fit::{train_epoch, try_train_epoch, EpochEnd, Fit, TrainError};
pub use interrupt::Interrupt;
pub use metrics::MetricsCsv;
pub use plot::{image_grid_png, plot_curves_png, plot_series_png, Curve, GridImage, CLASS_COLOURS};
pub use pretrained::trained_deep_convnet;
pub use progress::EpochProgress;
pub use train::{argmax, evaluate, predict, predict_logits, Evaluation};
