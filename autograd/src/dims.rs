//! Shape and dimension arguments, written the way PyTorch users write them:
//! `[2, 3]`, `&[2, -1]`, `x.shape()`, a single `1` or `-1`, or `[0, 2]`.

use crate::error::{Error, Result};

/// An integer that can name a size or a dimension (`usize`, `isize`, `i32`, `i64`).
pub trait DimInt: Copy {
    /// The value as `isize` (negative values count from the end for dims).
    fn to_isize(self) -> isize;
}

macro_rules! dim_int {
    ($($t:ty),*) => {$(
        impl DimInt for $t {
            fn to_isize(self) -> isize {
                self as isize
            }
        }
    )*};
}
dim_int!(usize, isize, i32, i64, u32);

/// Something that lists sizes: a shape, possibly with one `-1` where a
/// reshape infers the size.
pub trait IntoShape {
    /// The raw sizes as written.
    fn raw_sizes(&self) -> Vec<isize>;

    /// The sizes, all of them required to be non-negative, and the product
    /// of the non-zero ones to fit in `isize` (what an array can index):
    /// `[0, 2^40, 2^40]` holds no element yet is refused, as no array of its
    /// shape can be built.
    fn to_sizes(&self, op: &'static str) -> Result<Vec<usize>> {
        let sizes = self
            .raw_sizes()
            .into_iter()
            .map(|s| {
                usize::try_from(s).map_err(|_| Error::InvalidArgument {
                    op,
                    shape: vec![],
                    reason: format!("negative size {s} in shape {:?}", self.raw_sizes()),
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        checked_numel(&sizes).ok_or_else(|| Error::InvalidArgument {
            op,
            shape: vec![],
            reason: format!("shape {sizes:?}: its element count overflows"),
        })?;
        Ok(sizes)
    }
}

impl<D: DimInt> IntoShape for &[D] {
    fn raw_sizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt, const N: usize> IntoShape for [D; N] {
    fn raw_sizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt, const N: usize> IntoShape for &[D; N] {
    fn raw_sizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt> IntoShape for Vec<D> {
    fn raw_sizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt> IntoShape for &Vec<D> {
    fn raw_sizes(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}

/// One dimension or a list of dimensions (negative counts from the end).
pub trait Dims {
    /// The dims as written.
    fn raw_dims(&self) -> Vec<isize>;
}

macro_rules! dims_single {
    ($($t:ty),*) => {$(
        impl Dims for $t {
            fn raw_dims(&self) -> Vec<isize> {
                vec![*self as isize]
            }
        }
    )*};
}
dims_single!(usize, isize, i32, i64);

impl<D: DimInt> Dims for &[D] {
    fn raw_dims(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt, const N: usize> Dims for [D; N] {
    fn raw_dims(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt, const N: usize> Dims for &[D; N] {
    fn raw_dims(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}
impl<D: DimInt> Dims for Vec<D> {
    fn raw_dims(&self) -> Vec<isize> {
        self.iter().map(|d| d.to_isize()).collect()
    }
}

/// Resolves a possibly negative dim against `shape`.
pub(crate) fn norm_dim(op: &'static str, dim: isize, shape: &[usize]) -> Result<usize> {
    let n = shape.len() as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(Error::DimOutOfRange {
            op,
            dim,
            shape: shape.to_vec(),
        });
    }
    Ok(d as usize)
}

/// Resolves a list of dims: sorted, without repeats.
pub(crate) fn norm_dims(op: &'static str, dims: &[isize], shape: &[usize]) -> Result<Vec<usize>> {
    let mut out = dims
        .iter()
        .map(|&d| norm_dim(op, d, shape))
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    let len = out.len();
    out.dedup();
    if out.len() != len {
        return Err(Error::InvalidArgument {
            op,
            shape: shape.to_vec(),
            reason: format!("dim repeated in {dims:?}"),
        });
    }
    Ok(out)
}

/// The element count of `sizes`, or `None` when the product of its non-zero
/// sizes exceeds `isize::MAX` (ndarray's limit; checked even when another
/// size is zero, so that no such shape reaches an array constructor).
pub(crate) fn checked_numel(sizes: &[usize]) -> Option<usize> {
    let nonzero = sizes
        .iter()
        .filter(|&&s| s != 0)
        .try_fold(1usize, |n, &s| n.checked_mul(s))
        .filter(|&n| n <= isize::MAX as usize)?;
    Some(if sizes.contains(&0) { 0 } else { nonzero })
}
