//! [`Collate`]: how a [`DataLoader`](super::DataLoader) stacks the items of
//! a batch (as PyTorch's `default_collate`).
//!
//! Arrays stack on a new leading axis into one [`Tensor`] — `[C, H, W]`
//! [`Image`]s into `[N, C, H, W]`, `Vec<f32>` rows of length `D` into
//! `[N, D]`, `f32` scalars into `[N]` — labels (`usize`) gather into a
//! `Vec<usize>`, and tuples stack element by element, so
//! `(image, label)` items give `(Tensor, Vec<usize>)` batches and
//! `(image, mask)` items two tensors.
//!
//! Items are added one at a time to a [`Collate::Stack`] on the loader's
//! worker thread, each copied once into the batch's buffer and then
//! dropped; the finished stack becomes a batch on the training thread. A
//! type of one's own stacks by implementing the trait, most simply over a
//! [`TensorStack`].

use autograd::Tensor;

use super::error::{DataError, Result};
use super::image::Image;

/// An item type that the [`DataLoader`](super::DataLoader) can batch.
///
/// ```
/// use models::data::{Collate, Image};
///
/// // What the loader does with the items of one batch:
/// let mut stack = <(Image, Image)>::stack(2);
/// for k in 0..2 {
///     let image = Image::full([3, 4, 4], k as f32);
///     let mask = Image::full([1, 4, 4], 1.0);
///     <(Image, Image)>::add(&mut stack, (image, mask)).unwrap();
/// }
/// let (images, masks) = <(Image, Image)>::finish(stack);
/// assert_eq!((images.shape(), masks.shape()), (vec![2, 3, 4, 4], vec![2, 1, 4, 4]));
/// ```
pub trait Collate: Sized {
    /// A batch being filled, one item after another (on a worker thread,
    /// hence `Send`).
    type Stack: Send;
    /// The finished batch, as the training loop receives it.
    type Batch;

    /// An empty stack for a batch of `capacity` items.
    fn stack(capacity: usize) -> Self::Stack;

    /// Appends `item` to `stack`. An item that cannot join the ones before
    /// it (an image of another shape) is a [`DataError`] naming both
    /// shapes. (An associated function, not a method, and not named
    /// `push`, so that it never meets `Vec::push`.)
    fn add(stack: &mut Self::Stack, item: Self) -> Result<()>;

    /// The batch of the items pushed (made on the training thread).
    fn finish(stack: Self::Stack) -> Self::Batch;
}

/// Arrays of one shape stacked on a new leading axis into one tensor: the
/// [`Collate::Stack`] of [`Image`], `Vec<f32>` and `f32`, and a ready-made
/// one for item types of one's own.
#[derive(Debug, Clone, Default)]
pub struct TensorStack {
    values: Vec<f32>,
    item_shape: Option<Vec<usize>>,
    len: usize,
    capacity: usize,
}

impl TensorStack {
    /// An empty stack for `capacity` arrays (the buffer is reserved at the
    /// first push, when an array's size is known).
    pub fn new(capacity: usize) -> TensorStack {
        TensorStack {
            capacity,
            ..TensorStack::default()
        }
    }

    /// Appends an array of shape `shape` (row-major `values`), which must
    /// be the shape of the arrays before it.
    pub fn push(&mut self, shape: &[usize], values: &[f32]) -> Result<()> {
        let size = shape.iter().product::<usize>();
        if values.len() != size {
            return Err(DataError::Invalid(format!(
                "TensorStack::push: {} values cannot fill shape {shape:?} ({size} values)",
                values.len()
            )));
        }
        match &self.item_shape {
            None => {
                self.item_shape = Some(shape.to_vec());
                self.values.reserve_exact(self.capacity.max(1) * size);
            }
            Some(first) if first.as_slice() != shape => {
                return Err(DataError::Invalid(format!(
                    "an item of shape {shape:?} after items of shape {first:?}: \
                     the items of a batch must all have one shape"
                )));
            }
            Some(_) => {}
        }
        self.values.extend_from_slice(values);
        self.len += 1;
        Ok(())
    }

    /// Number of arrays pushed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The arrays as one `[N, ...shape]` tensor (no copy of the values);
    /// `[0]` when none was pushed.
    pub fn into_tensor(self) -> Tensor {
        let mut shape = vec![self.len];
        shape.extend(self.item_shape.unwrap_or_default());
        Tensor::from_vec(self.values, shape)
    }
}

/// `[C, H, W]` images stack into an `[N, C, H, W]` tensor.
impl Collate for Image {
    type Stack = TensorStack;
    type Batch = Tensor;

    fn stack(capacity: usize) -> TensorStack {
        TensorStack::new(capacity)
    }
    fn add(stack: &mut TensorStack, image: Image) -> Result<()> {
        stack.push(&image.shape(), image.data())
    }
    fn finish(stack: TensorStack) -> Tensor {
        stack.into_tensor()
    }
}

/// Rows of length `D` stack into an `[N, D]` tensor.
impl Collate for Vec<f32> {
    type Stack = TensorStack;
    type Batch = Tensor;

    fn stack(capacity: usize) -> TensorStack {
        TensorStack::new(capacity)
    }
    fn add(stack: &mut TensorStack, row: Vec<f32>) -> Result<()> {
        stack.push(&[row.len()], &row)
    }
    fn finish(stack: TensorStack) -> Tensor {
        stack.into_tensor()
    }
}

/// Scalars (regression targets) stack into an `[N]` tensor.
impl Collate for f32 {
    type Stack = TensorStack;
    type Batch = Tensor;

    fn stack(capacity: usize) -> TensorStack {
        TensorStack::new(capacity)
    }
    fn add(stack: &mut TensorStack, value: f32) -> Result<()> {
        stack.push(&[], &[value])
    }
    fn finish(stack: TensorStack) -> Tensor {
        stack.into_tensor()
    }
}

/// Class labels gather into a `Vec<usize>` (what
/// [`cross_entropy`](autograd::Tensor::cross_entropy) takes).
impl Collate for usize {
    type Stack = Vec<usize>;
    type Batch = Vec<usize>;

    fn stack(capacity: usize) -> Vec<usize> {
        Vec::with_capacity(capacity)
    }
    fn add(stack: &mut Vec<usize>, label: usize) -> Result<()> {
        stack.push(label);
        Ok(())
    }
    fn finish(stack: Vec<usize>) -> Vec<usize> {
        stack
    }
}

/// Per-pixel labels (a segmentation mask, row-major) gather into one
/// `Vec<usize>`, the items' labels one after another: the `[N, H, W]`
/// labels that [`cross_entropy_opts`](autograd::Tensor::cross_entropy_opts)
/// takes with `[N, C, H, W]` logits.
impl Collate for Vec<usize> {
    type Stack = Vec<usize>;
    type Batch = Vec<usize>;

    fn stack(capacity: usize) -> Vec<usize> {
        Vec::with_capacity(capacity)
    }
    fn add(stack: &mut Vec<usize>, labels: Vec<usize>) -> Result<()> {
        stack.extend(labels);
        Ok(())
    }
    fn finish(stack: Vec<usize>) -> Vec<usize> {
        stack
    }
}

/// Tuples stack element by element: `(A, B)` items give `(A::Batch,
/// B::Batch)` batches.
macro_rules! collate_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Collate),+> Collate for ($($t,)+) {
            type Stack = ($($t::Stack,)+);
            type Batch = ($($t::Batch,)+);

            fn stack(capacity: usize) -> Self::Stack {
                ($($t::stack(capacity),)+)
            }
            fn add(stack: &mut Self::Stack, item: Self) -> Result<()> {
                $($t::add(&mut stack.$i, item.$i)?;)+
                Ok(())
            }
            fn finish(stack: Self::Stack) -> Self::Batch {
                ($($t::finish(stack.$i),)+)
            }
        }
    };
}
collate_tuple!(A 0);
collate_tuple!(A 0, B 1);
collate_tuple!(A 0, B 1, C 2);
collate_tuple!(A 0, B 1, C 2, D 3);
