//! Elementwise arithmetic with broadcasting: add, sub, mul, div, neg, pow,
//! their scalar forms, broadcast (`expand`) and its adjoint `sum_to`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::dims::IntoShape;
use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::kernels;
use crate::ops::need;
use crate::saved::Saved;
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// `self + other`, broadcasting.
    pub fn try_add(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, b) = (self.array(), other.array());
        let out = kernels::zip2("add", &a.view(), &b.view(), |x, y| x + y)?;
        let (sa, sb) = (self.shape(), other.shape());
        Ok(Tensor::from_op(out, "add", &[self, other], move |c| {
            Ok(vec![
                need(c.needs[0], || c.grad.try_sum_to(&sa))?,
                need(c.needs[1], || c.grad.try_sum_to(&sb))?,
            ])
        }))
    }

    /// `self - other`, broadcasting.
    pub fn try_sub(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, b) = (self.array(), other.array());
        let out = kernels::zip2("sub", &a.view(), &b.view(), |x, y| x - y)?;
        let (sa, sb) = (self.shape(), other.shape());
        Ok(Tensor::from_op(out, "sub", &[self, other], move |c| {
            Ok(vec![
                need(c.needs[0], || c.grad.try_sum_to(&sa))?,
                need(c.needs[1], || c.grad.try_sum_to(&sb).map(|g| g.neg()))?,
            ])
        }))
    }

    /// `self * other` elementwise, broadcasting.
    pub fn try_mul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, b) = (self.array(), other.array());
        let out = kernels::zip2("mul", &a.view(), &b.view(), |x, y| x * y)?;
        let (x, y) = (Saved::input("mul", 0, self), Saved::input("mul", 1, other));
        Ok(Tensor::from_op(out, "mul", &[self, other], move |c| {
            Ok(vec![
                need(c.needs[0], || {
                    c.grad.try_mul(y.get()?)?.try_sum_to(&x.shape())
                })?,
                need(c.needs[1], || {
                    c.grad.try_mul(x.get()?)?.try_sum_to(&y.shape())
                })?,
            ])
        }))
    }

    /// `self / other` elementwise, broadcasting.
    pub fn try_div(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, b) = (self.array(), other.array());
        let out = kernels::zip2("div", &a.view(), &b.view(), |x, y| x / y)?;
        let (x, y) = (Saved::input("div", 0, self), Saved::input("div", 1, other));
        Ok(Tensor::from_op(out, "div", &[self, other], move |c| {
            Ok(vec![
                need(c.needs[0], || {
                    c.grad.try_div(y.get()?)?.try_sum_to(&x.shape())
                })?,
                // d(x/y)/dy = -(x/y)/y = -out/y
                need(c.needs[1], || {
                    c.grad
                        .try_mul(c.saved_output()?)?
                        .try_div(y.get()?)?
                        .neg()
                        .try_sum_to(&y.shape())
                })?,
            ])
        }))
    }

    /// `self ^ exponent` elementwise, broadcasting (a tensor exponent).
    pub fn try_pow(&self, exponent: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, b) = (self.array(), exponent.array());
        let out = kernels::zip2("pow", &a.view(), &b.view(), |x, y| x.powf(y))?;
        let (x, y) = (
            Saved::input("pow", 0, self),
            Saved::input("pow", 1, exponent),
        );
        Ok(Tensor::from_op(out, "pow", &[self, exponent], move |c| {
            Ok(vec![
                // y * x^(y-1)
                need(c.needs[0], || {
                    let (xv, yv) = (x.get()?, y.get()?);
                    let d = xv.try_pow(&yv.add_scalar(-1.0))?.try_mul(yv)?;
                    c.grad.try_mul(&d)?.try_sum_to(&x.shape())
                })?,
                // x^y * ln x
                need(c.needs[1], || {
                    c.grad
                        .try_mul(c.saved_output()?)?
                        .try_mul(&x.get()?.log())?
                        .try_sum_to(&y.shape())
                })?,
            ])
        }))
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| -x);
        Tensor::from_op(out, "neg", &[self], |c| Ok(vec![Some(c.grad.neg())]))
    }

    /// `self + s`.
    pub fn add_scalar(&self, s: f64) -> Tensor<T> {
        let s = T::of(s);
        let out = kernels::map(&self.array().view(), |x| x + s);
        Tensor::from_op(out, "add_scalar", &[self], |c| {
            Ok(vec![Some(c.grad.clone())])
        })
    }

    /// `self * s`.
    pub fn mul_scalar(&self, s: f64) -> Tensor<T> {
        let st = T::of(s);
        let out = kernels::map(&self.array().view(), |x| x * st);
        Tensor::from_op(out, "mul_scalar", &[self], move |c| {
            Ok(vec![Some(c.grad.mul_scalar(s))])
        })
    }

    /// `self / s`.
    pub fn div_scalar(&self, s: f64) -> Tensor<T> {
        let st = T::of(s);
        let out = kernels::map(&self.array().view(), |x| x / st);
        Tensor::from_op(out, "div_scalar", &[self], move |c| {
            Ok(vec![Some(c.grad.div_scalar(s))])
        })
    }

    /// `s - self`.
    pub fn rsub_scalar(&self, s: f64) -> Tensor<T> {
        let s = T::of(s);
        let out = kernels::map(&self.array().view(), |x| s - x);
        Tensor::from_op(out, "rsub_scalar", &[self], |c| {
            Ok(vec![Some(c.grad.neg())])
        })
    }

    /// `s / self`.
    pub fn rdiv_scalar(&self, s: f64) -> Tensor<T> {
        let s = T::of(s);
        let out = kernels::map(&self.array().view(), |x| s / x);
        let x = Saved::input("rdiv_scalar", 0, self);
        Tensor::from_op(out, "rdiv_scalar", &[self], move |c| {
            // d(s/x)/dx = -out/x
            Ok(vec![Some(
                c.grad.try_mul(c.saved_output()?)?.try_div(x.get()?)?.neg(),
            )])
        })
    }

    /// `self ^ p` elementwise (a scalar exponent).
    pub fn powf(&self, p: f64) -> Tensor<T> {
        let pt = T::of(p);
        let out = kernels::map(&self.array().view(), |x| x.powf(pt));
        let x = Saved::input("powf", 0, self);
        Tensor::from_op(out, "powf", &[self], move |c| {
            let d = if p == 1.0 {
                c.grad.clone()
            } else {
                c.grad.try_mul(&x.get()?.powf(p - 1.0))?.mul_scalar(p)
            };
            Ok(vec![Some(d)])
        })
    }

    /// `self * self`.
    pub fn square(&self) -> Tensor<T> {
        self.powf(2.0)
    }

    /// `1 / self`.
    pub fn reciprocal(&self) -> Tensor<T> {
        self.rdiv_scalar(1.0)
    }

    /// Broadcasts to `shape` (PyTorch's `expand` / `broadcast_to`), copying.
    pub fn try_expand(&self, shape: impl IntoShape) -> Result<Tensor<T>> {
        let raw = shape.raw_sizes();
        let src = self.shape();
        // -1 keeps the size of that dim, as in PyTorch.
        let lead = raw
            .len()
            .checked_sub(src.len())
            .ok_or_else(|| Error::ShapeMismatch {
                op: "expand",
                lhs: src.clone(),
                rhs: raw.iter().map(|&s| s.max(0) as usize).collect(),
                reason: "(the target has fewer dims)".into(),
            })?;
        let target: Vec<usize> = raw
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if s < 0 && i >= lead {
                    src[i - lead]
                } else {
                    s.max(0) as usize
                }
            })
            .collect();
        if target == src {
            return Ok(self.clone());
        }
        let a = self.array();
        let view = a
            .broadcast(ndarray::IxDyn(&target))
            .ok_or_else(|| Error::ShapeMismatch {
                op: "expand",
                lhs: src.clone(),
                rhs: target.clone(),
                reason: "(a dim that is not 1 cannot be expanded)".into(),
            })?;
        let out = view.to_owned();
        Ok(Tensor::from_op(out, "expand", &[self], move |c| {
            Ok(vec![Some(c.grad.try_sum_to(&src)?)])
        }))
    }

    /// Broadcasts to `shape`.
    #[track_caller]
    pub fn expand(&self, shape: impl IntoShape) -> Tensor<T> {
        ok(self.try_expand(shape))
    }

    /// Alias of [`expand`](Self::expand), numpy's name.
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl IntoShape) -> Tensor<T> {
        self.expand(shape)
    }

    /// Sums a broadcast tensor back down to `shape`: the adjoint of `expand`.
    pub fn try_sum_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        let src = self.shape();
        if src == shape {
            return Ok(self.clone());
        }
        let fits = shape.len() <= src.len()
            && shape
                .iter()
                .zip(&src[src.len() - shape.len()..])
                .all(|(&t, &s)| t == s || t == 1);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "sum_to",
                lhs: src,
                rhs: shape.to_vec(),
                reason: "(the second is not a broadcast source of the first)".into(),
            });
        }
        let out = kernels::sum_to_shape(&self.array().view(), shape);
        Ok(Tensor::from_op(out, "sum_to", &[self], move |c| {
            Ok(vec![Some(c.grad.try_expand(&src)?)])
        }))
    }

    /// Sums a broadcast tensor back down to `shape`.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        ok(self.try_sum_to(shape))
    }

    /// Elementwise choice: `cond != 0 ? a : b`, broadcasting all three.
    /// Differentiable in `a` and `b`; `cond` is a constant mask.
    pub fn try_where_(cond: &Tensor<T>, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
        let shape = kernels::broadcast_shapes("where", &cond.shape(), &a.shape())?;
        let shape = kernels::broadcast_shapes("where", &shape, &b.shape())?;
        let ca = cond.array();
        let cv = ca.broadcast(ndarray::IxDyn(&shape)).expect("broadcast");
        let (aa, ba) = (a.array(), b.array());
        let out = kernels::zip3(&cv, &aa.view(), &ba.view(), |c, x, y| {
            if c != T::zero() {
                x
            } else {
                y
            }
        });
        let (cond, sa, sb) = (cond.detach(), a.shape(), b.shape());
        Ok(Tensor::from_op(out, "where", &[a, b], move |c| {
            let zero = Tensor::zeros([1]);
            Ok(vec![
                need(c.needs[0], || {
                    Tensor::try_where_(&cond, c.grad, &zero)?.try_sum_to(&sa)
                })?,
                need(c.needs[1], || {
                    Tensor::try_where_(&cond, &zero, c.grad)?.try_sum_to(&sb)
                })?,
            ])
        }))
    }

    /// Elementwise choice: `cond != 0 ? a : b`.
    #[track_caller]
    pub fn where_(cond: &Tensor<T>, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
        ok(Tensor::try_where_(cond, a, b))
    }
}

// ---------------------------------------------------------------------------
// Operators: tensor-tensor (owned or borrowed), tensor-scalar, scalar-tensor.
// ---------------------------------------------------------------------------

macro_rules! tensor_binop {
    ($Trait:ident, $method:ident, $try:ident, $scalar:ident) => {
        impl<T: Float> $Trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                ok(self.$try(rhs))
            }
        }
        impl<T: Float> $Trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                ok(self.$try(&rhs))
            }
        }
        impl<T: Float> $Trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                ok(self.$try(rhs))
            }
        }
        impl<T: Float> $Trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                ok(self.$try(&rhs))
            }
        }
        impl<T: Float> $Trait<f64> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: f64) -> Tensor<T> {
                $scalar(self, rhs)
            }
        }
        impl<T: Float> $Trait<f64> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: f64) -> Tensor<T> {
                $scalar(&self, rhs)
            }
        }
    };
}

fn add_s<T: Float>(t: &Tensor<T>, s: f64) -> Tensor<T> {
    t.add_scalar(s)
}
fn sub_s<T: Float>(t: &Tensor<T>, s: f64) -> Tensor<T> {
    t.add_scalar(-s)
}
fn mul_s<T: Float>(t: &Tensor<T>, s: f64) -> Tensor<T> {
    t.mul_scalar(s)
}
fn div_s<T: Float>(t: &Tensor<T>, s: f64) -> Tensor<T> {
    t.div_scalar(s)
}

tensor_binop!(Add, add, try_add, add_s);
tensor_binop!(Sub, sub, try_sub, sub_s);
tensor_binop!(Mul, mul, try_mul, mul_s);
tensor_binop!(Div, div, try_div, div_s);

// A scalar on the left is an f64 too, whatever the tensor's element type.
impl<T: Float> Add<&Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn add(self, rhs: &Tensor<T>) -> Tensor<T> {
        rhs.add_scalar(self)
    }
}
impl<T: Float> Add<Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn add(self, rhs: Tensor<T>) -> Tensor<T> {
        rhs.add_scalar(self)
    }
}
impl<T: Float> Sub<&Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn sub(self, rhs: &Tensor<T>) -> Tensor<T> {
        rhs.rsub_scalar(self)
    }
}
impl<T: Float> Sub<Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn sub(self, rhs: Tensor<T>) -> Tensor<T> {
        rhs.rsub_scalar(self)
    }
}
impl<T: Float> Mul<&Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn mul(self, rhs: &Tensor<T>) -> Tensor<T> {
        rhs.mul_scalar(self)
    }
}
impl<T: Float> Mul<Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn mul(self, rhs: Tensor<T>) -> Tensor<T> {
        rhs.mul_scalar(self)
    }
}
impl<T: Float> Div<&Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn div(self, rhs: &Tensor<T>) -> Tensor<T> {
        rhs.rdiv_scalar(self)
    }
}
impl<T: Float> Div<Tensor<T>> for f64 {
    type Output = Tensor<T>;
    fn div(self, rhs: Tensor<T>) -> Tensor<T> {
        rhs.rdiv_scalar(self)
    }
}

impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(&self)
    }
}

impl<T: Float> Tensor<T> {
    /// `self + other`, broadcasting (as `&a + &b`).
    #[track_caller]
    pub fn add(&self, other: &Tensor<T>) -> Tensor<T> {
        ok(self.try_add(other))
    }

    /// `self - other`, broadcasting (as `&a - &b`).
    #[track_caller]
    pub fn sub(&self, other: &Tensor<T>) -> Tensor<T> {
        ok(self.try_sub(other))
    }

    /// `self * other` elementwise, broadcasting (as `&a * &b`).
    #[track_caller]
    pub fn mul(&self, other: &Tensor<T>) -> Tensor<T> {
        ok(self.try_mul(other))
    }

    /// `self / other` elementwise, broadcasting (as `&a / &b`).
    #[track_caller]
    pub fn div(&self, other: &Tensor<T>) -> Tensor<T> {
        ok(self.try_div(other))
    }

    /// `self ^ exponent` elementwise, broadcasting.
    #[track_caller]
    pub fn pow(&self, exponent: &Tensor<T>) -> Tensor<T> {
        ok(self.try_pow(exponent))
    }
}
