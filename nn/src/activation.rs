//! Activations and other parameter-free layers as modules: `ReLU`,
//! `LeakyReLU`, `ELU`, `Sigmoid`, `Tanh`, `Softmax`, `LogSoftmax`, `Flatten`,
//! `Identity`.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Flatten, Module, ReLU};
//! let x: Tensor = Tensor::from_vec(vec![-1.0, 2.0], [1, 2, 1]);
//! assert_eq!(ReLU.forward(&x).to_vec(), vec![0.0, 2.0]);
//! assert_eq!(Flatten::default().forward(&x).shape(), vec![1, 2]);
//! ```

use autograd::{Float, Tensor};

use crate::module::Module;

macro_rules! simple {
    ($name:ident, $doc:literal, |$x:ident| $body:expr, $desc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl<T: Float> Module<T> for $name {
            fn forward(&self, $x: &Tensor<T>) -> Tensor<T> {
                $body
            }
            fn describe(&self) -> String {
                $desc.to_string()
            }
            crate::impl_as_dyn!();
        }
    };
}

simple!(ReLU, "`max(x, 0)`.", |x| x.relu(), "ReLU()");
simple!(
    Sigmoid,
    "`1 / (1 + exp(-x))`.",
    |x| x.sigmoid(),
    "Sigmoid()"
);
simple!(Tanh, "Hyperbolic tangent.", |x| x.tanh(), "Tanh()");
simple!(
    Identity,
    "Returns its input (a placeholder, e.g. a removed head).",
    |x| x.clone(),
    "Identity()"
);

/// `x` for `x > 0`, else `negative_slope * x` (default 0.01).
#[derive(Clone, Copy, Debug)]
pub struct LeakyReLU {
    pub negative_slope: f64,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.01,
        }
    }
}

impl<T: Float> Module<T> for LeakyReLU {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.leaky_relu(self.negative_slope)
    }
    fn describe(&self) -> String {
        format!("LeakyReLU(negative_slope={})", self.negative_slope)
    }
    crate::impl_as_dyn!();
}

/// `x` for `x > 0`, else `alpha * (exp(x) - 1)` (default alpha 1).
#[derive(Clone, Copy, Debug)]
pub struct ELU {
    pub alpha: f64,
}

impl Default for ELU {
    fn default() -> Self {
        ELU { alpha: 1.0 }
    }
}

impl<T: Float> Module<T> for ELU {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.elu(self.alpha)
    }
    fn describe(&self) -> String {
        format!("ELU(alpha={})", self.alpha)
    }
    crate::impl_as_dyn!();
}

/// Softmax along `dim`.
#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    pub dim: isize,
}

impl<T: Float> Module<T> for Softmax {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.dim)
    }
    crate::impl_as_dyn!();
}

/// Log-softmax along `dim`.
#[derive(Clone, Copy, Debug)]
pub struct LogSoftmax {
    pub dim: isize,
}

impl<T: Float> Module<T> for LogSoftmax {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.log_softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.dim)
    }
    crate::impl_as_dyn!();
}

/// Merges dims `start_dim..=end_dim` (default `1..=-1`: keeps the batch).
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    pub start_dim: isize,
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }
}

impl<T: Float> Module<T> for Flatten {
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.flatten(self.start_dim, self.end_dim)
    }
    fn describe(&self) -> String {
        format!(
            "Flatten(start_dim={}, end_dim={})",
            self.start_dim, self.end_dim
        )
    }
    crate::impl_as_dyn!();
}
