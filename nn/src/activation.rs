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

use crate::{Hooks, Module};

macro_rules! simple {
    ($name:ident, $doc:literal, |$x:ident| $body:expr, $desc:expr) => {
        #[doc = $doc]
        ///
        #[doc = concat!("`", stringify!($name), "` is also a constant, so `Sequential::new().add(", stringify!($name), ")` reads as in PyTorch.")]
        #[derive(Clone, Debug, Default, Module)]
        pub struct $name {
            hooks: Hooks,
        }

        #[allow(non_upper_case_globals, clippy::declare_interior_mutable_const)]
        #[doc = concat!("A new [`", stringify!($name), "`](struct@", stringify!($name), ") (each use is its own module, with its own hooks).")]
        pub const $name: $name = $name::new();

        impl $name {
            /// A new module (what the constant of the same name gives).
            pub const fn new() -> Self {
                $name {
                    hooks: Hooks::new(),
                }
            }
        }

        impl<T: Float> Module<T> for $name {
            fn forward_impl(&self, $x: &Tensor<T>) -> Tensor<T> {
                $body
            }
            fn describe(&self) -> String {
                $desc.to_string()
            }
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
#[derive(Clone, Debug, Module)]
pub struct LeakyReLU {
    /// Slope for negative inputs (PyTorch's default 0.01).
    #[module(skip)]
    pub negative_slope: f64,
    hooks: Hooks,
}

impl LeakyReLU {
    /// With this slope for negative inputs.
    pub fn new(negative_slope: f64) -> Self {
        LeakyReLU {
            negative_slope,
            hooks: Hooks::new(),
        }
    }
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            hooks: Hooks::new(),
            negative_slope: 0.01,
        }
    }
}

impl<T: Float> Module<T> for LeakyReLU {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.leaky_relu(self.negative_slope)
    }
    fn describe(&self) -> String {
        format!("LeakyReLU(negative_slope={})", self.negative_slope)
    }
}

/// `x` for `x > 0`, else `alpha * (exp(x) - 1)` (default alpha 1).
#[derive(Clone, Debug, Module)]
pub struct ELU {
    /// Scale of the negative part (PyTorch's default 1.0).
    #[module(skip)]
    pub alpha: f64,
    hooks: Hooks,
}

impl ELU {
    /// With this `alpha`.
    pub fn new(alpha: f64) -> Self {
        ELU {
            alpha,
            hooks: Hooks::new(),
        }
    }
}

impl Default for ELU {
    fn default() -> Self {
        ELU {
            alpha: 1.0,
            hooks: Hooks::new(),
        }
    }
}

impl<T: Float> Module<T> for ELU {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.elu(self.alpha)
    }
    fn describe(&self) -> String {
        format!("ELU(alpha={})", self.alpha)
    }
}

/// Softmax along `dim`.
#[derive(Clone, Debug, Module)]
pub struct Softmax {
    /// The dimension normalised over (negative counts from the end).
    #[module(skip)]
    pub dim: isize,
    hooks: Hooks,
}

impl Softmax {
    /// Along `dim` (negative counts from the end).
    pub fn new(dim: isize) -> Self {
        Softmax {
            dim,
            hooks: Hooks::new(),
        }
    }
}

impl<T: Float> Module<T> for Softmax {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.dim)
    }
}

/// Log-softmax along `dim`.
#[derive(Clone, Debug, Module)]
pub struct LogSoftmax {
    /// The dimension normalised over (negative counts from the end).
    #[module(skip)]
    pub dim: isize,
    hooks: Hooks,
}

impl LogSoftmax {
    /// Along `dim` (negative counts from the end).
    pub fn new(dim: isize) -> Self {
        LogSoftmax {
            dim,
            hooks: Hooks::new(),
        }
    }
}

impl<T: Float> Module<T> for LogSoftmax {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.log_softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.dim)
    }
}

/// Merges dims `start_dim..=end_dim` (default `1..=-1`: keeps the batch).
#[derive(Clone, Debug, Module)]
pub struct Flatten {
    /// First dim merged (default 1; negative counts from the end).
    #[module(skip)]
    pub start_dim: isize,
    /// Last dim merged, inclusive (default -1; negative counts from the end).
    #[module(skip)]
    pub end_dim: isize,
    hooks: Hooks,
}

impl Flatten {
    /// Merges dims `start_dim..=end_dim` (negative counts from the end).
    pub fn new(start_dim: isize, end_dim: isize) -> Self {
        Flatten {
            start_dim,
            end_dim,
            hooks: Hooks::new(),
        }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten {
            hooks: Hooks::new(),
            start_dim: 1,
            end_dim: -1,
        }
    }
}

impl<T: Float> Module<T> for Flatten {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.flatten(self.start_dim, self.end_dim)
    }
    fn describe(&self) -> String {
        format!(
            "Flatten(start_dim={}, end_dim={})",
            self.start_dim, self.end_dim
        )
    }
}
