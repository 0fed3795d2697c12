//! `Dropout`: inverted dropout in training, identity in evaluation.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Dropout, Module};
//! let d = Dropout::new(0.5);
//! let x: Tensor = Tensor::ones([4, 100]);
//! assert!(d.forward(&x).to_vec().iter().any(|&v| v == 0.0));
//! d.eval();
//! assert_eq!(d.forward(&x).to_vec(), x.to_vec());
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use autograd::{Float, Tensor};

use crate::{Hooks, Module};

/// Zeroes each value with probability `p` in training (scaling the rest by `1/(1-p)`).
#[derive(Module)]
pub struct Dropout<T: Float = f32> {
    /// Probability of zeroing each value, in `[0, 1]`.
    #[module(skip)]
    pub p: f64,
    #[module(skip)]
    training: AtomicBool,
    _dtype: PhantomData<fn() -> T>,
    hooks: Hooks,
}

impl Dropout {
    /// Dropout with probability `p` (PyTorch's default is 0.5), in f32.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`.
    pub fn new(p: f64) -> Self {
        Self::build(p)
    }
}

impl<T: Float> Dropout<T> {
    /// Dropout with probability `p`, in any precision.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`.
    pub fn build(p: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "Dropout: probability {p} is outside [0, 1]"
        );
        Dropout {
            hooks: Hooks::new(),
            p,
            training: AtomicBool::new(true),
            _dtype: PhantomData,
        }
    }
}

impl<T: Float> Default for Dropout<T> {
    fn default() -> Self {
        Dropout::build(0.5)
    }
}

impl<T: Float> Module<T> for Dropout<T> {
    fn forward_impl(&self, x: &Tensor<T>) -> Tensor<T> {
        x.dropout(self.p, self.training.load(Ordering::Relaxed))
    }

    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}
