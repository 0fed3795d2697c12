//! The engine's contract: accumulation, grad mode, freeing, errors, higher
//! order, anomaly mode and graph export.

use autograd::{
    detect_anomaly, grad, no_grad, to_dot, try_grad, BackwardOptions, Error, GradOptions, Tensor,
};

fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), shape)
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    (&x * &x).sum().backward();
    (&x * 3.0).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![5.0, 7.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    x.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, 1.0]);
}

#[test]
fn a_tensor_used_twice_gets_both_contributions() {
    let x = t(&[3.0], &[1]).requires_grad_();
    let y = &x * &x + &x * 2.0; // dy/dx = 2x + 2
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![8.0]);
}

#[test]
fn no_grad_and_detach_stop_recording() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = no_grad(|| &x * 2.0);
    assert!(!y.requires_grad());
    assert!(y.grad_fn().is_none());
    let z = x.detach();
    assert!(!z.requires_grad());
    // Mixed: only the recorded branch contributes.
    let w = (&x * &x.detach()).sum();
    w.backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, 2.0]);
}

#[test]
fn backward_frees_the_graph_unless_retained() {
    let x = t(&[2.0], &[1]).requires_grad_();
    let y = (&x * &x).sum();
    y.backward_opts(BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![8.0]);
    let err = y.try_backward().unwrap_err();
    assert!(matches!(err, Error::GraphFreed { .. }), "{err}");
    assert!(err.to_string().contains("retain_graph"), "{err}");
}

#[test]
fn backward_errors_are_clear() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = &x * 2.0;
    let err = y.try_backward().unwrap_err();
    assert_eq!(err, Error::NonScalarBackward { shape: vec![2] });
    assert!(err.to_string().contains("[2]"));

    let c = t(&[1.0], &[1]);
    assert_eq!(c.try_backward().unwrap_err(), Error::NoGradFn);

    // A non-scalar output with an explicit gradient works.
    y.backward_with(&t(&[1.0, 10.0], &[2]));
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 20.0]);

    let wrong = (&x * 2.0).try_backward_opts(BackwardOptions {
        grad: Some(t(&[1.0, 2.0, 3.0], &[3])),
        ..Default::default()
    });
    assert!(matches!(wrong, Err(Error::ShapeMismatch { .. })));
}

#[test]
fn op_errors_name_the_op_and_shapes() {
    let a = Tensor::<f32>::zeros([2, 3]);
    let b = Tensor::<f32>::zeros([4, 5]);
    let e = a.try_matmul(&b).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    let e = a.try_add(&b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3]") && e.contains("[4, 5]"),
        "{e}"
    );
    let e = a.try_reshape([5, -1]).unwrap_err().to_string();
    assert!(e.contains("reshape"), "{e}");
    let e = a.try_sum_dim(2, false).unwrap_err().to_string();
    assert!(e.contains("sum") && e.contains("dim 2"), "{e}");
    let e = a
        .try_cross_entropy_with(&[0, 5], autograd::Reduction::Mean, 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cross_entropy") && e.contains("class 5"), "{e}");
    let e = Tensor::<f32>::try_from_vec(vec![1.0; 5], [2, 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("from_vec") && e.contains("[2, 3]"), "{e}");
}

#[test]
fn operators_panic_with_the_op_and_shapes() {
    let r = std::panic::catch_unwind(|| {
        let a = Tensor::<f32>::zeros([2, 3]);
        let b = Tensor::<f32>::zeros([3, 2]);
        let _ = &a * &b;
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.contains("mul") && msg.contains("[2, 3]") && msg.contains("[3, 2]"),
        "{msg}"
    );
}

#[test]
fn set_requires_grad_only_on_leaves() {
    let x = t(&[1.0], &[1]).requires_grad_();
    let y = &x * 2.0;
    assert!(y.set_requires_grad(false).is_err());
    assert!(x.set_requires_grad(false).is_ok());
    assert!(!x.requires_grad());
}

#[test]
fn retain_grad_keeps_a_non_leaf_gradient() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let h = &x * 3.0;
    h.retain_grad();
    (&h * &h).sum().backward();
    assert_eq!(h.grad().unwrap().to_vec(), vec![6.0, 12.0]);
    assert_eq!(x.grad().unwrap().to_vec(), vec![18.0, 36.0]);
}

#[test]
fn grad_returns_without_touching_dot_grad() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let unused = t(&[1.0], &[1]).requires_grad_();
    let y = (&x * &x).sum();
    let g = grad(
        &[y.clone()],
        &[x.clone()],
        GradOptions {
            retain_graph: true,
            ..Default::default()
        },
    );
    assert_eq!(g[0].as_ref().unwrap().to_vec(), vec![2.0, 4.0]);
    assert!(x.grad().is_none());
    let e = try_grad(
        &[y.clone()],
        &[unused.clone()],
        GradOptions {
            retain_graph: true,
            ..Default::default()
        },
    );
    assert_eq!(e.unwrap_err(), Error::UnusedInput { index: 0 });
    let ok = grad(
        &[y],
        &[unused],
        GradOptions {
            allow_unused: true,
            ..Default::default()
        },
    );
    assert!(ok[0].is_none());
}

#[test]
fn second_derivatives_through_backward_create_graph() {
    // y = x^3: dy/dx = 3x^2, d2y/dx2 = 6x.
    let x = t(&[2.0], &[1]).requires_grad_();
    let y = x.powf(3.0).sum();
    y.backward_opts(BackwardOptions {
        create_graph: true,
        ..Default::default()
    });
    let g = x.grad().unwrap();
    assert_eq!(g.to_vec(), vec![12.0]);
    assert!(
        g.requires_grad(),
        "with create_graph the gradient is in the graph"
    );
    x.zero_grad();
    g.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![12.0]);
    // Third order through grad(): d3/dx3 x^3 = 6.
    let x = t(&[0.5], &[1]).requires_grad_();
    let cg = || GradOptions {
        create_graph: true,
        ..Default::default()
    };
    let g1 = grad(&[x.powf(3.0).sum()], &[x.clone()], cg())
        .remove(0)
        .unwrap();
    let g2 = grad(&[g1.sum()], &[x.clone()], cg()).remove(0).unwrap();
    let g3 = grad(&[g2.sum()], &[x.clone()], cg()).remove(0).unwrap();
    assert_eq!((g1.item(), g2.item(), g3.item()), (0.75, 3.0, 6.0));
}

#[test]
fn fits_y_equals_3x_plus_2_with_manual_sgd() {
    autograd::manual_seed(0);
    let x = Tensor::<f32>::uniform([100, 1], 0.0, 1.0);
    let y = &x * 3.0 + 2.0;
    let w = Tensor::<f32>::zeros([1, 1]).requires_grad_();
    let b = Tensor::<f32>::zeros([1]).requires_grad_();
    for _ in 0..2000 {
        let loss = (x.matmul(&w) + &b).mse_loss(&y);
        loss.backward();
        for p in [&w, &b] {
            let step = p.grad().unwrap() * 0.5;
            p.set_data(no_grad(|| p.detach() - step).array());
            p.zero_grad();
        }
    }
    assert!((w.item() - 3.0).abs() < 1e-3, "w = {}", w.item());
    assert!((b.item() - 2.0).abs() < 1e-3, "b = {}", b.item());
}

#[test]
fn anomaly_mode_names_the_op() {
    let _on = detect_anomaly(true);
    let r = std::panic::catch_unwind(|| {
        let x = t(&[-1.0], &[1]);
        x.log()
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("'log'") && msg.contains("forward"), "{msg}");
    // Backward: sqrt at 0 has an infinite slope.
    let x = t(&[0.0], &[1]).requires_grad_();
    let err = x.sqrt().sum().try_backward().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Anomaly {
                op: "sqrt",
                phase: "backward",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn graphviz_export_lists_ops_and_shapes() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = (x.exp() * 2.0).sum();
    let dot = to_dot(&y);
    assert!(dot.starts_with("digraph"));
    for needle in ["exp", "mul_scalar", "sum", "[2]", "[]"] {
        assert!(dot.contains(needle), "{needle} missing in\n{dot}");
    }
}

#[test]
fn dropping_a_very_long_graph_does_not_overflow_the_stack() {
    let x = Tensor::<f32>::ones([4]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = y.add_scalar(1e-6);
    }
    drop(y);
}

#[test]
fn backward_through_a_long_chain_is_iterative() {
    let x = Tensor::<f64>::ones([2]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..50_000 {
        y = y.mul_scalar(1.0);
    }
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, 1.0]);
}

#[test]
fn optimizer_style_in_place_update_is_refused_by_backward() {
    // An update between forward and backward leaves storage handles taken
    // before it intact (copy-on-write), and the backward pass, which would
    // read the new value, refuses to run (see tests/inplace.rs).
    let w = t(&[2.0], &[1]).requires_grad_();
    let x = t(&[3.0], &[1]).requires_grad_();
    let y = (&w * &x).sum();
    let saved_view = w.array();
    w.write().mapv_inplace(|v| v + 100.0);
    assert_eq!(saved_view[[0]], 2.0);
    assert_eq!(w.item(), 102.0);
    assert!(matches!(
        y.try_backward(),
        Err(Error::InplaceModified { op: "mul", .. })
    ));
    assert!(x.grad().is_none());
}

#[test]
fn creation_and_reading() {
    let a = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    assert_eq!(a.shape(), vec![2, 3]);
    assert_eq!(a.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(a.t().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(Tensor::<f32>::full([2], 7.0).to_vec(), vec![7.0, 7.0]);
    assert_eq!(Tensor::<f32>::scalar(3.0).item(), 3.0);
    autograd::manual_seed(3);
    let r1 = Tensor::<f32>::randn([5]).to_vec();
    autograd::manual_seed(3);
    let r2 = Tensor::<f32>::randn([5]).to_vec();
    assert_eq!(r1, r2, "one seed, one sequence");
    let u = Tensor::<f64>::uniform([1000], -2.0, 3.0);
    assert!(u.to_vec().iter().all(|&v| (-2.0..3.0).contains(&v)));
    assert_eq!(a.argmax(1, false).into_raw_vec_and_offset().0, vec![2, 2]);
    let s = format!("{}", (&a.requires_grad_() * 2.0));
    assert!(s.contains("grad_fn=<mul_scalar>"), "{s}");
}
