//! Inverted dropout: in training, each value is zeroed with probability `p`
//! and the rest scaled by `1 / (1 - p)`, so evaluation is the identity.
//! The mask comes from the seeded generator: one seed, one mask sequence.

use rand::{Rng, RngExt};

use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::rng;
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// Inverted dropout with the thread's seeded generator.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::<f32>::ones([1000]);
    /// let y = x.dropout(0.5, true);
    /// assert!(y.to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
    /// assert_eq!(x.dropout(0.5, false).to_vec(), x.to_vec());
    /// ```
    #[track_caller]
    pub fn dropout(&self, p: f64, training: bool) -> Tensor<T> {
        ok(rng::with_rng(|r| self.try_dropout_with(p, training, r)))
    }

    /// Inverted dropout with the given generator.
    pub fn try_dropout_with<R: Rng + ?Sized>(
        &self,
        p: f64,
        training: bool,
        rng: &mut R,
    ) -> Result<Tensor<T>> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                op: "dropout",
                shape: self.shape(),
                reason: format!("probability {p} is outside [0, 1]"),
            });
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let scale = if p < 1.0 {
            T::of(1.0 / (1.0 - p))
        } else {
            T::zero()
        };
        let shape = self.shape();
        let mask: Vec<T> = (0..self.numel())
            .map(|_| {
                if rng.random::<f64>() >= p {
                    scale
                } else {
                    T::zero()
                }
            })
            .collect();
        self.try_mul(&Tensor::from_vec(mask, shape))
    }
}
