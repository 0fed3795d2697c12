//! The optimizers' contract beyond their update rules: which parameters are
//! skipped, groups, layouts, lazily created state, and that splitting a large
//! tensor across threads never changes a result.

use autograd::ndarray::{ArrayD, IxDyn};
use autograd::{manual_seed, Tensor};
use optim::*;
use proptest::prelude::*;

fn leaf(values: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape.to_vec()).requires_grad_()
}

#[test]
fn zero_grad_forgets_every_gradient() {
    let (a, b) = (leaf(vec![1.0, 2.0], &[2]), leaf(vec![3.0], &[1]));
    let mut opt = Sgd::with_groups(
        vec![
            GroupSpec::new(vec![a.clone()]),
            GroupSpec::new(vec![b.clone()]),
        ],
        SgdConfig::default(),
    );
    (a.sum() + b.sum()).backward();
    assert!(a.grad().is_some() && b.grad().is_some());
    opt.zero_grad();
    assert!(a.grad().is_none() && b.grad().is_none());
}

#[test]
fn parameters_that_require_no_grad_are_skipped_even_with_a_gradient() {
    let p = leaf(vec![1.0, 2.0], &[2]);
    p.set_grad(Some(Tensor::ones([2])));
    p.set_requires_grad(false).unwrap();
    let mut opt = Adam::new(
        vec![p.clone()],
        AdamConfig {
            lr: 0.1,
            ..Default::default()
        },
    );
    opt.step();
    assert_eq!(p.to_vec(), vec![1.0, 2.0]);
    assert!(
        opt.state_dict().params[0].is_none(),
        "no state for a frozen parameter"
    );
    // Unfrozen, it trains.
    p.set_requires_grad(true).unwrap();
    opt.step();
    assert!(p.to_vec()[0] < 1.0);
}

#[test]
fn each_group_uses_its_own_settings() {
    let (a, b) = (leaf(vec![1.0], &[1]), leaf(vec![1.0], &[1]));
    let groups = vec![
        GroupSpec::new(vec![a.clone()]).lr(0.0),
        GroupSpec::new(vec![b.clone()]).weight_decay(1.0),
    ];
    let mut opt = Sgd::with_groups(
        groups,
        SgdConfig {
            lr: 0.5,
            ..Default::default()
        },
    );
    assert_eq!(opt.param_groups()[1].lr, 0.5);
    (a.sum() + b.sum()).backward();
    opt.step();
    assert_eq!(a.item(), 1.0); // lr 0
    assert_eq!(b.item(), 1.0 - 0.5 * (1.0 + 1.0)); // g + wd * p
                                                   // Settings changed between steps take effect.
    opt.param_groups_mut()[0].lr = 0.25;
    opt.step();
    assert_eq!(a.item(), 0.75);
}

#[test]
fn a_group_added_later_trains_with_the_config_defaults() {
    let (a, b) = (leaf(vec![1.0], &[1]), leaf(vec![1.0], &[1]));
    let mut opt = Sgd::new(
        vec![a.clone()],
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        },
    );
    opt.add_param_group(GroupSpec::new(vec![b.clone()]).lr(0.2))
        .unwrap();
    assert_eq!(opt.param_groups()[1].momentum, Some(0.9));
    (a.sum() + b.sum()).backward();
    opt.step();
    assert!((a.item() - 0.9).abs() < 1e-7 && (b.item() - 0.8).abs() < 1e-7);
}

#[test]
fn state_is_created_on_the_first_step_with_a_gradient() {
    let (a, b) = (leaf(vec![1.0; 3], &[3]), leaf(vec![1.0; 2], &[2]));
    let mut opt = RmsProp::new(
        vec![a.clone(), b.clone()],
        RmsPropConfig {
            momentum: 0.5,
            centered: true,
            ..Default::default()
        },
    );
    assert!(opt.state_dict().params.iter().all(|p| p.is_none()));
    a.sum().backward();
    opt.step();
    let st = opt.state_dict();
    let sa = st.params[0].as_ref().unwrap();
    assert_eq!(sa.step, 1);
    let names: Vec<&str> = sa.buffers.keys().map(|s| s.as_str()).collect();
    assert_eq!(names, ["grad_avg", "momentum_buffer", "square_avg"]);
    assert_eq!(sa.buffers["square_avg"].shape(), &[3]);
    assert!(st.params[1].is_none());
}

/// The same logical values in another memory layout must give the same update.
#[test]
fn layouts_of_parameters_and_gradients_do_not_matter() {
    manual_seed(3);
    let values = Tensor::randn([3, 4]).to_vec();
    let grad = Tensor::randn([3, 4]);
    // Row-major parameter and gradient.
    let p1 = leaf(values.clone(), &[3, 4]);
    p1.set_grad(Some(grad.clone()));
    // Column-major parameter (a transposed buffer), gradient through a transpose view.
    let col = ArrayD::from_shape_vec(
        IxDyn(&[4, 3]),
        Tensor::from_vec(values, [3, 4]).t().to_vec(),
    )
    .unwrap();
    let p2 = Tensor::from_storage(col.reversed_axes().into_shared()).requires_grad_();
    assert!(!p2.read().is_standard_layout());
    assert_eq!(p2.to_vec(), p1.to_vec());
    let gt = Tensor::from_vec(grad.t().to_vec(), [4, 3]);
    p2.set_grad(Some(gt.t()));
    assert!(!p2.grad().unwrap().read().is_standard_layout());
    for opt in [
        &mut Adam::new(
            vec![p1.clone()],
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
        ) as &mut dyn Optimizer,
        &mut Adam::new(
            vec![p2.clone()],
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
        ),
    ] {
        opt.step();
        opt.step();
    }
    assert_eq!(p1.to_vec(), p2.to_vec());
    assert_ne!(p1.to_vec(), grad.to_vec());
}

#[test]
fn optimizers_run_in_f64() {
    let p = Tensor::<f64>::from_vec(vec![1.0, -1.0], [2]).requires_grad_();
    let mut opt = AdamW::new(
        vec![p.clone()],
        AdamWConfig {
            lr: 0.1,
            ..Default::default()
        },
    );
    let mut sched = CosineAnnealingLr::new(&mut opt, CosineAnnealingLrConfig::new(10));
    for _ in 0..10 {
        opt.zero_grad();
        p.square().sum().backward();
        opt.step();
        sched.step(&mut opt);
    }
    assert!(p.to_vec().iter().all(|v| v.abs() < 0.5));
}

/// Every optimizer's update is elementwise; one update of a tensor of `n` values.
fn one_update(kind: usize, p: &Tensor, steps: usize) -> Box<dyn Optimizer> {
    let ps = vec![p.clone()];
    let mut opt: Box<dyn Optimizer> = match kind {
        0 => Box::new(Sgd::new(
            ps,
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                ..Default::default()
            },
        )),
        1 => Box::new(Adam::new(
            ps,
            AdamConfig {
                amsgrad: true,
                weight_decay: 0.1,
                ..Default::default()
            },
        )),
        2 => Box::new(AdamW::new(ps, AdamWConfig::default())),
        3 => Box::new(Adagrad::new(
            ps,
            AdagradConfig {
                lr_decay: 0.1,
                ..Default::default()
            },
        )),
        4 => Box::new(RmsProp::new(
            ps,
            RmsPropConfig {
                centered: true,
                momentum: 0.3,
                ..Default::default()
            },
        )),
        _ => Box::new(Adadelta::new(
            ps,
            AdadeltaConfig {
                weight_decay: 0.1,
                ..Default::default()
            },
        )),
    };
    for _ in 0..steps {
        opt.step();
    }
    opt
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A large tensor is split across threads; pieces of it updated as small
    /// tensors on their own must come out bit-identical.
    #[test]
    fn splitting_across_threads_never_changes_a_result(n in 1usize..200_000, cut in 0.0f64..1.0, kind in 0usize..6) {
        manual_seed(n as u64);
        let values = Tensor::randn([n]).to_vec();
        let grads = Tensor::randn([n]).to_vec();
        let k = ((n as f64 * cut) as usize).min(n);
        let whole = leaf(values.clone(), &[n]);
        whole.set_grad(Some(Tensor::from_vec(grads.clone(), [n])));
        let (lo, hi) = (leaf(values[..k].to_vec(), &[k]), leaf(values[k..].to_vec(), &[n - k]));
        lo.set_grad(Some(Tensor::from_vec(grads[..k].to_vec(), [k])));
        hi.set_grad(Some(Tensor::from_vec(grads[k..].to_vec(), [n - k])));
        one_update(kind, &whole, 3);
        one_update(kind, &lo, 3);
        one_update(kind, &hi, 3);
        let mut parts = lo.to_vec();
        parts.extend(hi.to_vec());
        prop_assert_eq!(whole.to_vec(), parts);
    }
}
