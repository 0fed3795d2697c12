//! The networks of chapter 8 and the data pipeline that feeds them, as
//! torchvision sits beside torch: [`DeepConvNet`] (the book's network),
//! VGG, GoogLeNet and ResNet with torchvision's layouts and parameter names,
//! datasets (MNIST, Fashion-MNIST, CIFAR-10), a [`data::DataLoader`] with
//! background prefetching, and image transforms.

#![warn(missing_docs)]

pub mod data;
pub mod deep_convnet;
pub mod googlenet;
pub mod resnet;
pub mod vgg;

pub use deep_convnet::{DeepConvNet, DeepConvNetConfig};
pub use googlenet::{GoogLeNet, GoogLeNetConfig, GoogLeNetOutput};
pub use resnet::{cifar_resnet, resnet, ResNet, ResNetConfig, ResNetKind};
pub use vgg::{vgg, Vgg, VggConfig, VggKind};
