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

use crate::module::Module;

/// Zeroes each value with probability `p` in training (scaling the rest by `1/(1-p)`).
pub struct Dropout<T: Float = f32> {
    pub p: f64,
    training: AtomicBool,
    _dtype: PhantomData<fn() -> T>,
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
    fn forward(&self, x: &Tensor<T>) -> Tensor<T> {
        x.dropout(self.p, self.training.load(Ordering::Relaxed))
    }

    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }

    crate::impl_as_dyn!();
}
