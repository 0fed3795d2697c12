//! Ops written outside the crate (`CustomOp`): recorded like built-ins,
//! checked against finite differences at first and second order, and their
//! mistakes (wrong gradient shapes or counts, wrong formulas) caught.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use autograd::{
    detect_anomaly, grad, gradcheck, gradgradcheck, no_grad, to_dot, CustomOp, Error, Float,
    GradOptions, GradcheckError, Result, Tensor,
};

type Grads<T> = Result<Vec<Option<Tensor<T>>>>;

fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), shape)
}

/// `swish(x) = x * sigmoid(x)`, its backward from the input.
struct Swish;

impl<T: Float> CustomOp<T> for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_mul(&x[0].sigmoid())
    }
    fn backward(&self, x: &[&Tensor<T>], _y: &Tensor<T>, gy: &Tensor<T>) -> Grads<T> {
        let s = x[0].sigmoid();
        let d = s.try_add(&x[0].try_mul(&s)?.try_mul(&s.rsub_scalar(1.0))?)?;
        Ok(vec![Some(gy.try_mul(&d)?)])
    }
}

/// `a + w * (b - a)` with `w` broadcast over `a` and `b`: three inputs,
/// gradients summed back to each input's shape.
struct Lerp;

impl CustomOp<f64> for Lerp {
    fn name(&self) -> &'static str {
        "lerp"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        let (a, b, w) = (x[0], x[1], x[2]);
        a.try_add(&w.try_mul(&b.try_sub(a)?)?)
    }
    fn backward(&self, x: &[&Tensor<f64>], _y: &Tensor<f64>, g: &Tensor<f64>) -> Grads<f64> {
        let (a, b, w) = (x[0], x[1], x[2]);
        Ok(vec![
            Some(g.try_mul(&w.rsub_scalar(1.0))?.try_sum_to(&a.shape())?),
            Some(g.try_mul(w)?.try_sum_to(&b.shape())?),
            Some(g.try_mul(&b.try_sub(a)?)?.try_sum_to(&w.shape())?),
        ])
    }
}

/// `x * m`, `m` a constant mask: no gradient for `m`.
struct Masked;

impl CustomOp<f64> for Masked {
    fn name(&self) -> &'static str {
        "masked"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        x[0].try_mul(x[1])
    }
    fn backward(&self, x: &[&Tensor<f64>], _y: &Tensor<f64>, g: &Tensor<f64>) -> Grads<f64> {
        Ok(vec![Some(g.try_mul(x[1])?), None])
    }
}

/// `x^2` with a backward chosen by the test: right, wrong, or right only
/// at first order.
#[derive(Clone, Copy)]
enum Square {
    Right,
    /// Forgets the factor 2.
    Wrong,
    /// `2 x g` with `x` detached: the right values, but not differentiable.
    Detached,
}

impl CustomOp<f64> for Square {
    fn name(&self) -> &'static str {
        "square"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        x[0].try_mul(x[0])
    }
    fn backward(&self, x: &[&Tensor<f64>], _y: &Tensor<f64>, g: &Tensor<f64>) -> Grads<f64> {
        let x = x[0];
        let d = match self {
            Square::Right => x.mul_scalar(2.0),
            Square::Wrong => x.clone(),
            Square::Detached => x.detach().mul_scalar(2.0),
        };
        Ok(vec![Some(g.try_mul(&d)?)])
    }
}

/// `2 x` whose backward returns what the test says: a sum (wrong shape),
/// two gradients for one input, or NaN.
enum Faulty {
    Shape,
    Count,
    Nan,
}

impl CustomOp<f64> for Faulty {
    fn name(&self) -> &'static str {
        "faulty"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(x[0].mul_scalar(2.0))
    }
    fn backward(&self, _x: &[&Tensor<f64>], _y: &Tensor<f64>, g: &Tensor<f64>) -> Grads<f64> {
        Ok(match self {
            Faulty::Shape => vec![Some(g.sum())],
            Faulty::Count => vec![Some(g.mul_scalar(2.0)), None],
            Faulty::Nan => vec![Some(g.mul_scalar(f64::NAN))],
        })
    }
}

/// `log(x)`: NaN on negative inputs, for anomaly mode.
struct Log;

impl CustomOp<f64> for Log {
    fn name(&self) -> &'static str {
        "my_log"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(x[0].log())
    }
    fn backward(&self, x: &[&Tensor<f64>], _y: &Tensor<f64>, g: &Tensor<f64>) -> Grads<f64> {
        Ok(vec![Some(g.try_div(x[0])?)])
    }
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_one_input_op_passes_first_and_second_order_checks() {
    let x = t(&[-2.0, -0.5, 0.0, 0.3, 1.7, 4.0], &[2, 3]).requires_grad_();
    let f = |v: &[Tensor<f64>]| v[0].apply_op(Swish);
    gradcheck(f, &[x.clone()]).unwrap();
    gradgradcheck(f, &[x.clone()]).unwrap();
}

/// The custom op's first and second derivatives equal those of the same
/// function built from the crate's ops.
#[test]
fn second_derivatives_match_the_built_in_composition() {
    let x = t(&[-1.5, 0.2, 2.5], &[3]).requires_grad_();
    let create = GradOptions {
        create_graph: true,
        ..Default::default()
    };
    let twice = |y: Tensor<f64>| {
        let g = grad(&[y.sum()], &[x.clone()], create.clone())
            .remove(0)
            .unwrap();
        let gg = grad(&[g.sum()], &[x.clone()], GradOptions::default()).remove(0);
        (g.to_vec(), gg.unwrap().to_vec())
    };
    let (g1, gg1) = twice(x.apply_op(Swish));
    let (g2, gg2) = twice(&x * &x.sigmoid());
    for (a, b) in g1.iter().chain(&gg1).zip(g2.iter().chain(&gg2)) {
        assert!((a - b).abs() < 1e-12, "{g1:?} {gg1:?} vs {g2:?} {gg2:?}");
    }
}

#[test]
fn a_multi_input_op_with_broadcasting_passes_the_checks() {
    let a = t(&[0.5, -1.0, 2.0, 0.0, 1.5, -0.3], &[2, 3]).requires_grad_();
    let b = t(&[1.0, 0.2, -0.7, 2.2, -1.1, 0.4], &[2, 3]).requires_grad_();
    let w = t(&[0.25, 0.5, 0.9], &[1, 3]).requires_grad_();
    let f = |v: &[Tensor<f64>]| Tensor::apply_op_n(Lerp, &[&v[0], &v[1], &v[2]]);
    let inputs = [a.clone(), b.clone(), w.clone()];
    gradcheck(f, &inputs).unwrap();
    gradgradcheck(f, &inputs).unwrap();
    let built_in = &a + &(&w * &(&b - &a));
    assert_eq!(f(&inputs).to_vec(), built_in.to_vec());
    // Only some inputs requiring grad: the others get none.
    let c = b.detach();
    let y = Tensor::apply_op_n(Lerp, &[&a.detach(), &c, &w]);
    y.sum().backward();
    assert_eq!(w.grad().unwrap().shape(), [1, 3]);
    assert!(c.grad().is_none());
}

#[test]
fn a_backward_may_give_no_gradient_to_an_input() {
    let x = t(&[1.0, -2.0, 3.0], &[3]).requires_grad_();
    let m = t(&[1.0, 0.0, 1.0], &[3]).requires_grad_();
    let y = Tensor::apply_op_n(Masked, &[&x, &m]);
    (&y * &y).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 0.0, 6.0]);
    assert!(m.grad().is_none());
    // With the mask a constant, the check passes; asked to check the mask
    // too, it finds the missing gradient (taken as zero) wrong.
    let f = |v: &[Tensor<f64>]| Tensor::apply_op_n(Masked, &[&v[0], &v[1]]);
    gradcheck(f, &[x.clone(), m.detach()]).unwrap();
    gradgradcheck(f, &[x.clone(), m.detach()]).unwrap();
    let err = gradcheck(f, &[x, m]).unwrap_err();
    assert!(
        matches!(err, GradcheckError::Mismatch { input: 1, .. }),
        "{err}"
    );
}

#[test]
fn gradcheck_rejects_a_wrong_backward() {
    let x = t(&[0.5, -1.5, 2.0], &[3]).requires_grad_();
    let check = |op: Square| {
        let f = move |v: &[Tensor<f64>]| v[0].apply_op(op);
        (gradcheck(f, &[x.clone()]), gradgradcheck(f, &[x.clone()]))
    };
    let (first, second) = check(Square::Right);
    first.unwrap();
    second.unwrap();
    let (first, _) = check(Square::Wrong);
    let err = first.unwrap_err();
    assert!(
        matches!(err, GradcheckError::Mismatch { input: 0, .. }),
        "{err}"
    );
    // Right values, but a backward that cannot be differentiated: only the
    // second-order check sees it.
    let (first, second) = check(Square::Detached);
    first.unwrap();
    let err = second.unwrap_err();
    assert!(
        matches!(
            err,
            GradcheckError::Mismatch {
                order: "second order",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error_naming_the_op_and_shapes() {
    let x = t(&[1.0, 2.0, 3.0], &[3]).requires_grad_();
    let err = x.apply_op(Faulty::Shape).sum().try_backward().unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "faulty",
            lhs: vec![3],
            rhs: vec![],
            reason: "(input 0 and the gradient backward returned for it) differ".into(),
        }
    );
    let msg = panic_message(|| x.apply_op(Faulty::Shape).sum().backward());
    for part in ["faulty", "[3]", "[]", "input 0"] {
        assert!(msg.contains(part), "{part:?} not in {msg:?}");
    }
    assert!(x.grad().is_none(), "no gradient from a failed backward");
}

#[test]
fn a_wrong_number_of_gradients_is_an_error() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let err = x.apply_op(Faulty::Count).sum().try_backward().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("faulty") && msg.contains("2 gradients for 1 inputs"),
        "{msg}"
    );
}

#[test]
fn the_op_is_recorded_like_a_built_in() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.apply_op(Swish);
    assert_eq!(y.grad_fn(), Some("swish"));
    assert!(to_dot(&y.sum()).contains("label=\"swish\""));
    // Not recorded without grad mode, or when no input requires grad.
    assert!(no_grad(|| x.apply_op(Swish)).grad_fn().is_none());
    assert!(x.detach().apply_op(Swish).grad_fn().is_none());
    // A shared op serves several applications.
    let op: Arc<dyn CustomOp<f64>> = Arc::new(Square::Right);
    let z = x.apply_op(op.clone()) + x.apply_op(op);
    z.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, 8.0]);
}

#[test]
fn one_op_serves_f32_and_f64() {
    let x32 = Tensor::<f32>::from_vec(vec![-1.0, 0.5], [2]).requires_grad_();
    let y32 = x32.apply_op(Swish);
    y32.sum().backward();
    let x64 = x32.cast::<f64>().requires_grad_();
    let y64 = x64.apply_op(Swish);
    y64.sum().backward();
    for (a, b) in y32.to_vec().iter().zip(y64.to_vec()) {
        assert!((*a as f64 - b).abs() < 1e-6);
    }
    let (g32, g64) = (x32.grad().unwrap().to_vec(), x64.grad().unwrap().to_vec());
    for (a, b) in g32.iter().zip(g64) {
        assert!((*a as f64 - b).abs() < 1e-6);
    }
}

#[test]
fn anomaly_mode_names_the_custom_op() {
    let _on = detect_anomaly(true);
    let x = t(&[1.0, -1.0], &[2]).requires_grad_();
    // The NaN comes from `log` inside the forward; the op is named.
    let msg = panic_message(|| {
        x.apply_op(Log);
    });
    assert!(msg.contains("'my_log'") && msg.contains("forward"), "{msg}");
    let err = x.apply_op(Faulty::Nan).sum().try_backward().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Anomaly {
                op: "faulty",
                phase: "backward",
                ..
            }
        ),
        "{err}"
    );
}

/// What the forward pass reports comes back from `try_apply_op_n`, and the
/// panicking form panics with it.
#[test]
fn forward_errors_are_returned() {
    let (a, b, w) = (
        t(&[1.0, 2.0], &[2]),
        t(&[1.0, 2.0, 3.0], &[3]),
        t(&[0.5], &[1]),
    );
    let err = Tensor::try_apply_op_n(Lerp, &[&a, &b, &w]).unwrap_err();
    assert!(
        matches!(err, Error::ShapeMismatch { op: "sub", .. }),
        "{err}"
    );
    let msg = panic_message(|| {
        Tensor::apply_op_n(Lerp, &[&a, &b, &w]);
    });
    assert_eq!(msg, err.to_string());
}
