//! In-place writes between the forward pass and backward: every write bumps
//! the tensor's version, and a backward pass that needs a tensor written
//! since its op saved it is an error naming the op, the shape and both
//! versions, instead of a gradient computed from the new values. Writes the
//! backward never reads (after backward, to tensors no op saved) still work.

use std::panic::{catch_unwind, AssertUnwindSafe};

use autograd::{
    grad, no_grad, BackwardOptions, CustomOp, Error, Float, GradOptions, Result, Tensor,
};

fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), shape)
}

/// The error's fields, for short assertions.
fn modified(e: &Error) -> (&'static str, &'static str, Vec<usize>, u64, u64) {
    match e {
        Error::InplaceModified {
            op,
            what,
            shape,
            saved,
            current,
        } => (op, what, shape.clone(), *saved, *current),
        other => panic!("expected InplaceModified, got {other}"),
    }
}

#[test]
fn every_write_bumps_the_version_shared_by_clones() {
    let w = t(&[1.0, 2.0], &[2]);
    let handle = w.clone();
    assert_eq!(w.version(), 0);
    w.write().mapv_inplace(|v| v + 1.0);
    assert_eq!((w.version(), handle.version()), (1, 1));
    handle.set_data(t(&[0.0, 0.0], &[2]).array());
    assert_eq!(w.version(), 2);
    assert_eq!(w.to_vec(), vec![0.0, 0.0]);
    // A refused replacement changes nothing, the version included.
    assert!(w.try_set_data(t(&[0.0], &[1]).array()).is_err());
    assert_eq!(w.version(), 2);
    // Reading is not writing; ops make version-0 tensors.
    let _ = (w.to_vec(), w.array(), &w * 2.0);
    assert_eq!(w.version(), 2);
    assert_eq!((&w * 2.0).version(), 0);
}

#[test]
fn a_hand_written_write_between_forward_and_backward_is_an_error() {
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let w = t(&[0.5, -1.0, 2.0], &[3, 1]).requires_grad_();
    let y = x.matmul(&w).sum();
    // Writing the data the weight's gradient needs, after the forward pass.
    x.write().mapv_inplace(|v| v * 10.0);
    let err = y.try_backward().unwrap_err();
    assert_eq!(modified(&err), ("matmul", "input 0", vec![2, 3], 0, 1));
    let msg = err.to_string();
    for needle in [
        "modified by an inplace operation",
        "'matmul'",
        "[2, 3]",
        "version 1",
        "version 0",
    ] {
        assert!(msg.contains(needle), "{needle} missing in: {msg}");
    }
    assert!(w.grad().is_none(), "no gradient from the changed values");
}

#[test]
fn backward_panics_with_the_same_message() {
    let w = t(&[2.0], &[1]).requires_grad_();
    let x = t(&[3.0], &[1]).requires_grad_();
    let y = (&w * &x).sum();
    w.write().mapv_inplace(|v| v + 100.0);
    let r = catch_unwind(AssertUnwindSafe(|| y.backward()));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.contains("modified by an inplace operation") && msg.contains("'mul'"),
        "{msg}"
    );
    // Until then, the gradient was computed from 102 instead of 2.
    assert!(x.grad().is_none());
}

#[test]
fn set_data_between_forward_and_backward_is_an_error() {
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = w.log().sum();
    w.set_data(t(&[5.0, 6.0], &[2]).array());
    let err = y.try_backward().unwrap_err();
    assert_eq!(modified(&err), ("log", "input 0", vec![2], 0, 1));
}

#[test]
fn a_written_output_is_an_error_for_ops_that_save_it() {
    let x = t(&[0.0, 1.0], &[2]).requires_grad_();
    let y = x.exp();
    y.write().mapv_inplace(|v| v * 2.0);
    let err = y.sum().try_backward().unwrap_err();
    assert_eq!(modified(&err), ("exp", "output", vec![2], 0, 1));
}

#[test]
fn writes_the_backward_does_not_read_keep_working() {
    // `add` saves neither input and `mul` by a constant saves only the
    // constant for the weight's gradient: writing `w` changes nothing the
    // backward pass reads.
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let c = t(&[3.0, 4.0], &[2]);
    let y = (&w + &c).sum() + (&w * &c).sum();
    w.write().mapv_inplace(|v| v * 10.0);
    y.backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![4.0, 5.0]);
    // The constant is read: writing it is an error.
    let y = (&w * &c).sum();
    c.write().mapv_inplace(|v| v + 1.0);
    assert_eq!(modified(&y.try_backward().unwrap_err()).0, "mul");
}

#[test]
fn views_are_copy_on_write_and_handles_share_the_counter() {
    // A clone is the same tensor: writing through it is writing the saved one.
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).requires_grad_();
    let handle = w.clone();
    let x = t(&[1.0, 1.0], &[1, 2]).requires_grad_();
    let y = x.matmul(&w).sum();
    handle.write().mapv_inplace(|v| -v);
    assert_eq!(modified(&y.try_backward().unwrap_err()).0, "matmul");

    // A view (reshape, detach) shares the buffer until one side writes;
    // then the writer gets its own copy and the saved view keeps the values
    // the forward pass read, so the gradient is that of the forward's values.
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[4]).requires_grad_();
    let v = w.reshape([2, 2]);
    let x = t(&[1.0, 10.0], &[2, 1]);
    let y = v.matmul(&x).square().sum();
    w.write().mapv_inplace(|v| v * 100.0);
    w.detach().write().mapv_inplace(|v| v + 1.0);
    assert_eq!(v.version(), 0);
    assert_eq!(v.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    y.backward();
    // d/dv sum((v x)^2) = 2 (v x) x^T with v x = [21, 43].
    assert_eq!(w.grad().unwrap().to_vec(), vec![42.0, 420.0, 86.0, 860.0]);
}

#[test]
fn retained_graphs_check_again_on_every_backward() {
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = w.sigmoid().sum();
    y.backward_opts(BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    // An update under no_grad is still an in-place write.
    no_grad(|| w.write().mapv_inplace(|v| v - 0.1));
    // sigmoid saves its output, not its input: still fine.
    y.backward_opts(BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    let z = w.square().sum();
    let _ = grad(
        &[z.clone()],
        &[w.clone()],
        GradOptions {
            retain_graph: true,
            ..Default::default()
        },
    );
    w.write().mapv_inplace(|v| v - 0.1);
    let err = autograd::try_grad(&[z], &[w.clone()], GradOptions::default()).unwrap_err();
    assert_eq!(modified(&err), ("powf", "input 0", vec![2], 1, 2));
}

#[test]
fn convolution_and_batch_norm_check_their_saved_weights() {
    // Inside a network the input of a layer requires grad, so its gradient
    // reads the weight.
    let x = Tensor::<f32>::randn([2, 3, 5, 5]).requires_grad_();
    let w = Tensor::<f32>::randn([4, 3, 3, 3]).requires_grad_();
    let y = x.conv2d(&w, None, Default::default()).sum();
    w.write().mapv_inplace(|v| v * 0.5);
    assert_eq!(
        modified(&y.try_backward().unwrap_err()),
        ("conv2d", "input 1", vec![4, 3, 3, 3], 0, 1)
    );

    let gamma = Tensor::<f32>::ones([3]).requires_grad_();
    let y = x
        .batch_norm(autograd::BatchNormArgs {
            weight: Some(&gamma),
            training: true,
            ..Default::default()
        })
        .square()
        .sum();
    gamma.set_data(Tensor::<f32>::full([3], 2.0).array());
    assert_eq!(
        modified(&y.try_backward().unwrap_err()),
        ("batch_norm", "input 1", vec![3], 0, 1)
    );
}

/// `2x` written as a custom op whose backward reads its input.
struct Twice;

impl<T: Float> CustomOp<T> for Twice {
    fn name(&self) -> &'static str {
        "twice"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].mul_scalar(2.0))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _y: &Tensor<T>,
        gy: &Tensor<T>,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        Ok(vec![Some(gy.try_mul(&x[0].ones_like())?.mul_scalar(2.0))])
    }
}

#[test]
fn custom_ops_count_every_input_as_saved() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.apply_op(Twice).sum();
    x.write().mapv_inplace(|v| v + 1.0);
    assert_eq!(
        modified(&y.try_backward().unwrap_err()),
        ("twice", "input 0", vec![2], 0, 1)
    );
}
