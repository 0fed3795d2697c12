//! `MaxUnpool2d`: the partial inverse of a max pool, putting each value back
//! at the position its pool recorded (SegNet's decoder upsampling).
//!
//! It takes two inputs (values and indices), so it is not a [`Module`](crate::Module)
//! (whose `forward` takes one); it has no parameters, and a network holds
//! it as a `#[module(skip)]` field.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{MaxPool2d, MaxUnpool2d, MaxUnpool2dConfig, PoolConfig};
//! let pool = MaxPool2d::new(PoolConfig::new(2));
//! let unpool = MaxUnpool2d::new(MaxUnpool2dConfig::new(2));
//! let x: Tensor = Tensor::randn([1, 4, 8, 8]);
//! let (y, idx) = pool.forward_with_indices(&x);
//! assert_eq!(unpool.forward(&y, &idx).shape(), vec![1, 4, 8, 8]);
//! // 9 rows pool to 4, which unpool to 8 by default: the indices know the 9.
//! let (y, idx) = pool.forward_with_indices(&Tensor::<f32>::randn([1, 4, 9, 9]));
//! assert_eq!(unpool.forward_to(&y, &idx, idx.input_size()).shape(), vec![1, 4, 9, 9]);
//! ```

use autograd::ops::conv::Pair;
use autograd::{Float, PoolIndices, Tensor, UnpoolOptions};

/// Options of [`MaxUnpool2d`]: the pooling's kernel, stride (default: the
/// kernel) and padding, and optionally a fixed output size.
pub type MaxUnpool2dConfig = UnpoolOptions;

/// Max unpooling: a zero plane with each input value at its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxUnpool2d {
    /// Kernel, stride, padding (and output size) of the pooling undone.
    pub config: MaxUnpool2dConfig,
}

impl MaxUnpool2d {
    /// An unpool undoing a pooling with these options.
    pub fn new(config: MaxUnpool2dConfig) -> Self {
        MaxUnpool2d { config }
    }

    /// Unpools `x` with `indices` to the configured (or default) size; see
    /// [`Tensor::max_unpool2d`].
    #[track_caller]
    pub fn forward<T: Float>(&self, x: &Tensor<T>, indices: &PoolIndices) -> Tensor<T> {
        x.max_unpool2d(indices, self.config)
    }

    /// Unpools to an explicit output plane (usually `indices.input_size()`).
    #[track_caller]
    pub fn forward_to<T: Float>(
        &self,
        x: &Tensor<T>,
        indices: &PoolIndices,
        output_size: impl Into<Pair>,
    ) -> Tensor<T> {
        x.max_unpool2d(indices, self.config.output_size(output_size))
    }

    /// PyTorch's `repr`.
    pub fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "MaxUnpool2d(kernel_size={:?}, stride={:?}, padding={:?})",
            c.kernel, c.stride, c.padding
        )
    }
}
