//! Neural-network modules with named parameters, as `torch.nn`.
//!
//! Every layer implements [`Module`]: a forward pass, its parameters and
//! buffers, train/eval mode. Names follow PyTorch's `state_dict` exactly
//! (`0.weight`, `layer1.0.bn1.running_mean`, ...), and state dicts are stored
//! as safetensors, so weights move between this crate and PyTorch with no
//! renaming.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Conv2d, Conv2dConfig, Flatten, Linear, LinearConfig, MaxPool2d, Module, PoolConfig, ReLU, Sequential};
//! let net = Sequential::new()
//!     .add(Conv2d::new(Conv2dConfig::new(1, 8, 3).padding(1)))
//!     .add(ReLU)
//!     .add(MaxPool2d::new(PoolConfig::new(2)))
//!     .add(Flatten::default())
//!     .add(Linear::new(LinearConfig::new(8 * 14 * 14, 10)));
//! let logits = net.forward(&Tensor::randn([4, 1, 28, 28]));
//! let loss = logits.cross_entropy(&[0, 1, 2, 3]);
//! loss.backward();
//! assert!(net.parameters().iter().all(|p| p.grad().is_some()));
//! ```

#![warn(missing_docs)]

// The derive's generated code names this crate `nn`, here as in a user's crate.
extern crate self as nn;

pub mod activation;
pub mod basic_block;
pub mod basic_conv2d;
pub mod batch_norm;
pub mod bottleneck;
pub mod conv2d;
pub mod conv_bn;
pub mod conv_transpose2d;
pub mod dropout;
pub mod error;
pub mod gradcheck;
pub mod hooks;
pub mod inception;
pub mod init;
pub mod linear;
pub mod max_unpool2d;
pub mod module;
pub mod pooling;
mod safetensors_file;
pub mod sequential;
pub mod state_dict;
pub mod summary;

pub use activation::{Flatten, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh, ELU};
pub use basic_block::{BasicBlock, BlockConfig};
pub use basic_conv2d::BasicConv2d;
pub use batch_norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig};
pub use bottleneck::Bottleneck;
pub use conv2d::{Conv2d, Conv2dConfig};
pub use conv_bn::conv_bn;
pub use conv_transpose2d::{ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::Dropout;
pub use error::{NnError, Result};
pub use gradcheck::gradcheck_module;
pub use hooks::{HookHandle, Hooks};
pub use inception::{Inception, InceptionConfig};
pub use linear::{Linear, LinearConfig};
pub use max_unpool2d::{MaxUnpool2d, MaxUnpool2dConfig};
pub use module::{AsDyn, LoadReport, Module, ModuleFields, NamedTensor, TensorKind};
/// `#[derive(Module)]`: children, parameters, buffers and the hook slot from
/// the struct's fields (see the [`nn_derive`] crate for the field rules).
pub use nn_derive::Module;
pub use pooling::{AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, PoolConfig};
pub use sequential::Sequential;
pub use state_dict::{Dtype, FileDtype, SafetensorsFile, StateDict};
pub use summary::summary;

#[doc(hidden)]
pub mod __private {
    pub use autograd::Float;
}
