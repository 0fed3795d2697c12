//! Comparisons: masks of 0 and 1, not differentiable (their gradient is zero
//! almost everywhere), as PyTorch's `gt`, `eq`, ...

use crate::dtype::Float;
use crate::error::{ok, Result};
use crate::kernels;
use crate::tensor::Tensor;

macro_rules! compare {
    ($($name:ident, $try:ident, $scalar:ident, $op:tt, $doc:literal;)*) => {$(
        impl<T: Float> Tensor<T> {
            #[doc = concat!("`1` where `self ", $doc, " other`, else `0` (broadcasting; no gradient).")]
            pub fn $try(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
                let (a, b) = (self.array(), other.array());
                let out = kernels::zip2(stringify!($name), &a.view(), &b.view(), |x, y| {
                    if x $op y { T::one() } else { T::zero() }
                })?;
                Ok(Tensor::from_array(out))
            }

            #[doc = concat!("`1` where `self ", $doc, " other`, else `0` (broadcasting; no gradient).")]
            #[track_caller]
            pub fn $name(&self, other: &Tensor<T>) -> Tensor<T> {
                ok(self.$try(other))
            }

            #[doc = concat!("`1` where `self ", $doc, " s`, else `0` (no gradient).")]
            pub fn $scalar(&self, s: f64) -> Tensor<T> {
                let s = T::of(s);
                let out = kernels::map(&self.array().view(), |x| if x $op s { T::one() } else { T::zero() });
                Tensor::from_array(out)
            }
        }
    )*};
}

compare! {
    eq, try_eq, eq_scalar, ==, "==";
    ne, try_ne, ne_scalar, !=, "!=";
    gt, try_gt, gt_scalar, >, ">";
    ge, try_ge, ge_scalar, >=, ">=";
    lt, try_lt, lt_scalar, <, "<";
    le, try_le, le_scalar, <=, "<=";
}
