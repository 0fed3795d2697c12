//! [`Image`]: one `[C, H, W]` image of `f32` values, the unit that
//! datasets hand out and transforms work on.
//!
//! A plain `Vec<f32>` with its shape rather than a [`Tensor`]: transforms run
//! on the loader's background thread, per sample, and need neither autograd
//! nor shared storage — only cheap in-place access. The loader stacks them
//! into one `[N, C, H, W]` tensor per batch.

use autograd::Tensor;

/// A `[channels, height, width]` image, row-major, `f32` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    data: Vec<f32>,
    shape: [usize; 3],
}

impl Image {
    /// An image of the given `[C, H, W]` shape from row-major values.
    ///
    /// # Panics
    /// If `data.len()` is not `C * H * W`.
    #[track_caller]
    pub fn new(data: Vec<f32>, shape: [usize; 3]) -> Image {
        let n = shape.iter().product::<usize>();
        assert_eq!(
            data.len(),
            n,
            "Image::new: {} values cannot fill shape {shape:?} ({n} values)",
            data.len()
        );
        Image { data, shape }
    }

    /// An image filled with `value`.
    pub fn full(shape: [usize; 3], value: f32) -> Image {
        Image {
            data: vec![value; shape.iter().product()],
            shape,
        }
    }

    /// An image of bytes scaled to `[0, 1]` (divided by 255, as the book does).
    ///
    /// # Panics
    /// If `bytes.len()` is not `C * H * W`.
    #[track_caller]
    pub fn from_u8(bytes: &[u8], shape: [usize; 3]) -> Image {
        Image::new(bytes.iter().map(|&b| f32::from(b) / 255.0).collect(), shape)
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.shape[0]
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.shape[1]
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.shape[2]
    }

    /// The values, row-major `[C, H, W]`.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, mutably (in-place transforms).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The values of channel `c` (`H * W` of them, row-major).
    pub fn channel(&self, c: usize) -> &[f32] {
        let plane = self.shape[1] * self.shape[2];
        &self.data[c * plane..(c + 1) * plane]
    }

    /// The values of channel `c`, mutably.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let plane = self.shape[1] * self.shape[2];
        &mut self.data[c * plane..(c + 1) * plane]
    }

    /// The value at channel `c`, row `y`, column `x`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        let [_, h, w] = self.shape;
        self.data[(c * h + y) * w + x]
    }

    /// The values, taken out of the image.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The image as a `[C, H, W]` tensor (no copy of the values).
    pub fn into_tensor(self) -> Tensor {
        Tensor::from_vec(self.data, self.shape)
    }
}
