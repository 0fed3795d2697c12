//! Elementwise functions: activations (relu, leaky_relu, elu, sigmoid, tanh)
//! and exp, log, sqrt, abs, clamp.

use crate::dtype::Float;
use crate::kernels;
use crate::saved::Saved;
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// A constant mask `f(x)` of this tensor's values (no gradient).
    fn mask(&self, f: impl Fn(T) -> T + Sync + Send) -> Tensor<T> {
        Tensor::from_array(kernels::map(&self.array().view(), f))
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| {
            if x > T::zero() {
                x
            } else {
                T::zero()
            }
        });
        let x = Saved::input("relu", 0, self);
        Tensor::from_op(out, "relu", &[self], move |c| {
            let x = x.get()?;
            Ok(vec![Some(c.grad.relu_backward(x))])
        })
    }

    /// `g * (x > 0)` as one op; its own gradient is the same mask, so second
    /// derivatives work without a separate mask tensor.
    pub(crate) fn relu_backward(&self, x: &Tensor<T>) -> Tensor<T> {
        let (g, xa) = (self.array(), x.array());
        let out = kernels::zip2("relu_backward", &g.view(), &xa.view(), |g, x| {
            if x > T::zero() {
                g
            } else {
                T::zero()
            }
        })
        .expect("same shape");
        let x = x.detach();
        Tensor::from_op(out, "relu_backward", &[self], move |c| {
            Ok(vec![Some(c.grad.relu_backward(&x))])
        })
    }

    /// `x` for `x > 0`, else `slope * x`.
    pub fn leaky_relu(&self, slope: f64) -> Tensor<T> {
        let slope = T::of(slope);
        let out = kernels::map(&self.array().view(), |x| {
            if x > T::zero() {
                x
            } else {
                slope * x
            }
        });
        let x = Saved::input("leaky_relu", 0, self);
        Tensor::from_op(out, "leaky_relu", &[self], move |c| {
            let x = x.get()?;
            let m = x.mask(|v| if v > T::zero() { T::one() } else { slope });
            Ok(vec![Some(c.grad.try_mul(&m)?)])
        })
    }

    /// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
    pub fn elu(&self, alpha: f64) -> Tensor<T> {
        let a = T::of(alpha);
        let out = kernels::map(&self.array().view(), |x| {
            if x > T::zero() {
                x
            } else {
                a * (x.exp() - T::one())
            }
        });
        let x = Saved::input("elu", 0, self);
        Tensor::from_op(out, "elu", &[self], move |c| {
            let x = x.get()?;
            // For x <= 0 the slope is alpha * exp(x) = out + alpha.
            let pos = x.mask(|v| if v > T::zero() { T::one() } else { T::zero() });
            let slope = Tensor::try_where_(
                &pos,
                &Tensor::ones([1]),
                &c.saved_output()?.add_scalar(alpha),
            )?;
            Ok(vec![Some(c.grad.try_mul(&slope)?)])
        })
    }

    /// `1 / (1 + exp(-x))`.
    pub fn sigmoid(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| {
            // Split by sign so exp never overflows.
            if x >= T::zero() {
                T::one() / (T::one() + (-x).exp())
            } else {
                let e = x.exp();
                e / (T::one() + e)
            }
        });
        Tensor::from_op(out, "sigmoid", &[self], |c| {
            let y = c.saved_output()?;
            Ok(vec![Some(
                c.grad.try_mul(&y.try_mul(&y.rsub_scalar(1.0))?)?,
            )])
        })
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| x.tanh());
        Tensor::from_op(out, "tanh", &[self], |c| {
            let y = c.saved_output()?;
            Ok(vec![Some(c.grad.try_mul(&y.try_mul(y)?.rsub_scalar(1.0))?)])
        })
    }

    /// `e^x`.
    pub fn exp(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| x.exp());
        Tensor::from_op(out, "exp", &[self], |c| {
            Ok(vec![Some(c.grad.try_mul(c.saved_output()?)?)])
        })
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| x.ln());
        let x = Saved::input("log", 0, self);
        Tensor::from_op(out, "log", &[self], move |c| {
            let x = x.get()?;
            Ok(vec![Some(c.grad.try_div(x)?)])
        })
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| x.sqrt());
        Tensor::from_op(out, "sqrt", &[self], |c| {
            Ok(vec![Some(
                c.grad.try_div(&c.saved_output()?.mul_scalar(2.0))?,
            )])
        })
    }

    /// Absolute value (gradient `sign(x)`, 0 at 0 as in PyTorch).
    pub fn abs(&self) -> Tensor<T> {
        let out = kernels::map(&self.array().view(), |x| x.abs());
        let x = Saved::input("abs", 0, self);
        Tensor::from_op(out, "abs", &[self], move |c| {
            let x = x.get()?;
            let s = x.mask(|v| {
                if v > T::zero() {
                    T::one()
                } else if v < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                }
            });
            Ok(vec![Some(c.grad.try_mul(&s)?)])
        })
    }

    /// Limits values to `[min, max]` (either bound optional). The gradient
    /// passes where `min <= x <= max`, as in PyTorch.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Tensor<T> {
        let lo = min.map_or(T::neg_infinity(), T::of);
        let hi = max.map_or(T::infinity(), T::of);
        let out = kernels::map(&self.array().view(), |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        });
        let x = Saved::input("clamp", 0, self);
        Tensor::from_op(out, "clamp", &[self], move |c| {
            let x = x.get()?;
            let m = x.mask(|v| {
                if v >= lo && v <= hi {
                    T::one()
                } else {
                    T::zero()
                }
            });
            Ok(vec![Some(c.grad.try_mul(&m)?)])
        })
    }
}
