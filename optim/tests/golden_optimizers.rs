//! Golden tests against PyTorch: every optimizer, in several configurations,
//! 10 steps on the same loss from the same start (each framework computes the
//! gradients with its own autograd), and gradient clipping. PyTorch's results
//! are in `fixtures/golden_optim.txt` (`scripts/golden_optim.py`).
//!
//! Checked in f64 to 1e-12 relative (the issue asks 1e-6) and in f32 to 1e-5
//! (f32 rounding, FMA in PyTorch's kernels and the gradients' own rounding
//! differ; a wrong update rule is off by far more).

mod common;

use autograd::{Float, Tensor};
use common::{assert_close, max_rel_diff, to_f64, Fixture};
use optim::{
    clip_grad_norm_, clip_grad_value_, Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam,
    AdamConfig, AdamW, AdamWConfig, GroupSpec, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};

const STEPS: usize = 10;

/// The optimizer of a one-group configuration of the fixture.
fn single<T: Float>(name: &str, params: Vec<Tensor<T>>) -> Box<dyn Optimizer<T>> {
    let sgd = |c: SgdConfig| -> Box<dyn Optimizer<T>> { Box::new(Sgd::new(params.clone(), c)) };
    let adam = |c: AdamConfig| -> Box<dyn Optimizer<T>> { Box::new(Adam::new(params.clone(), c)) };
    let adamw =
        |c: AdamWConfig| -> Box<dyn Optimizer<T>> { Box::new(AdamW::new(params.clone(), c)) };
    let adagrad =
        |c: AdagradConfig| -> Box<dyn Optimizer<T>> { Box::new(Adagrad::new(params.clone(), c)) };
    let rms =
        |c: RmsPropConfig| -> Box<dyn Optimizer<T>> { Box::new(RmsProp::new(params.clone(), c)) };
    let delta =
        |c: AdadeltaConfig| -> Box<dyn Optimizer<T>> { Box::new(Adadelta::new(params.clone(), c)) };
    let s = SgdConfig::default();
    let a = AdamConfig::default();
    let r = RmsPropConfig::default();
    match name {
        "sgd" => sgd(SgdConfig { lr: 0.1, ..s }),
        "sgd_wd" => sgd(SgdConfig {
            lr: 0.1,
            weight_decay: 0.01,
            ..s
        }),
        "sgd_momentum" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..s
        }),
        "sgd_dampening" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            weight_decay: 0.01,
            ..s
        }),
        "sgd_nesterov" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..s
        }),
        "sgd_maximize" => sgd(SgdConfig {
            lr: 0.05,
            momentum: 0.5,
            maximize: true,
            ..s
        }),
        "adam" => adam(AdamConfig { lr: 0.05, ..a }),
        "adam_default" => adam(a),
        "adam_wd" => adam(AdamConfig {
            lr: 0.05,
            weight_decay: 0.1,
            ..a
        }),
        "adam_amsgrad" => adam(AdamConfig {
            lr: 0.05,
            betas: (0.8, 0.99),
            amsgrad: true,
            ..a
        }),
        "adam_eps" => adam(AdamConfig {
            lr: 0.05,
            eps: 1e-2,
            betas: (0.6, 0.9),
            ..a
        }),
        "adam_maximize" => adam(AdamConfig {
            lr: 0.05,
            maximize: true,
            weight_decay: 0.01,
            ..a
        }),
        "adamw" => adamw(AdamWConfig {
            lr: 0.05,
            ..Default::default()
        }),
        "adamw_amsgrad" => adamw(AdamWConfig {
            lr: 0.05,
            weight_decay: 0.1,
            amsgrad: true,
            ..Default::default()
        }),
        "adagrad" => adagrad(AdagradConfig {
            lr: 0.1,
            ..Default::default()
        }),
        "adagrad_decay" => adagrad(AdagradConfig {
            lr: 0.1,
            lr_decay: 0.05,
            initial_accumulator_value: 0.1,
            weight_decay: 0.01,
            eps: 1e-3,
            ..Default::default()
        }),
        "rmsprop" => rms(RmsPropConfig { lr: 0.01, ..r }),
        "rmsprop_centered" => rms(RmsPropConfig {
            lr: 0.01,
            centered: true,
            ..r
        }),
        "rmsprop_momentum" => rms(RmsPropConfig {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.01,
            ..r
        }),
        "rmsprop_centered_momentum" => rms(RmsPropConfig {
            lr: 0.01,
            alpha: 0.9,
            centered: true,
            momentum: 0.5,
            eps: 1e-3,
            ..r
        }),
        "adadelta" => delta(AdadeltaConfig::default()),
        "adadelta_wd" => delta(AdadeltaConfig {
            lr: 0.5,
            rho: 0.95,
            eps: 1e-4,
            weight_decay: 0.01,
            ..Default::default()
        }),
        other => panic!("no Rust configuration for fixture case '{other}'"),
    }
}

/// The optimizer of a two-group configuration: `[w, f]` and `[b, u]`.
fn grouped<T: Float>(name: &str, wf: Vec<Tensor<T>>, bu: Vec<Tensor<T>>) -> Box<dyn Optimizer<T>> {
    let (gw, gb) = (GroupSpec::new(wf), GroupSpec::new(bu));
    match name {
        "sgd_groups" => Box::new(Sgd::with_groups(
            vec![gw.lr(0.05).weight_decay(0.01), gb.momentum(0.5)],
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            },
        )),
        "adam_groups" => Box::new(Adam::with_groups(
            vec![gw.lr(0.01), gb.weight_decay(0.1).momentum(0.5)],
            AdamConfig {
                lr: 0.05,
                ..Default::default()
            },
        )),
        "rmsprop_groups" => Box::new(RmsProp::with_groups(
            vec![gw.lr(0.02).momentum(0.0), gb.weight_decay(0.05)],
            RmsPropConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            },
        )),
        other => panic!("no Rust configuration for fixture case '{other}'"),
    }
}

fn loss<T: Float>(
    x: &Tensor<T>,
    y: &Tensor<T>,
    w: &Tensor<T>,
    b: &Tensor<T>,
    f: &Tensor<T>,
) -> Tensor<T> {
    ((x.matmul(w) + b + f).tanh() - y).square().mean()
        + w.square().sum() * 0.05
        + b.square().square().sum() * 0.1
}

/// Runs one fixture case in precision `T`; returns the largest relative difference of w and b.
fn run_case<T: Float>(fx: &Fixture, name: &str, tag: &str, rtol: f64) -> f64 {
    let (x, y) = (fx.tensor::<T>("problem.x"), fx.tensor::<T>("problem.y"));
    let w = fx.tensor::<T>("problem.w").requires_grad_();
    let b = fx.tensor::<T>("problem.b").requires_grad_();
    let f = fx.tensor::<T>("problem.f"); // requires no grad: a frozen parameter
    let u = fx.tensor::<T>("problem.u").requires_grad_(); // never used: no gradient
    let (f0, u0) = (f.to_vec(), u.to_vec());
    let mut opt = if name.ends_with("_groups") {
        grouped(name, vec![w.clone(), f.clone()], vec![b.clone(), u.clone()])
    } else {
        single(name, vec![w.clone(), b.clone(), f.clone(), u.clone()])
    };
    for _ in 0..STEPS {
        opt.zero_grad();
        loss(&x, &y, &w, &b, &f).backward();
        opt.step();
    }
    assert_eq!(f.to_vec(), f0, "{name}: the frozen parameter moved");
    assert_eq!(
        u.to_vec(),
        u0,
        "{name}: the parameter without gradient moved"
    );
    assert!(u.grad().is_none());
    let mut worst: f64 = 0.0;
    for p in ["w", "b"] {
        let key = format!("{name}.{tag}.{p}");
        let got = to_f64(if p == "w" { &w } else { &b });
        let want = fx.values(&key);
        worst = worst.max(max_rel_diff(&got, want, 1e-3));
        assert_close(&key, &got, want, rtol, 1e-3);
    }
    worst
}

fn cases(fx: &Fixture) -> Vec<String> {
    let names: Vec<String> = fx
        .names("", ".f64.w")
        .into_iter()
        .filter(|n| !n.starts_with("clip."))
        .map(|n| n.trim_end_matches(".f64.w").to_string())
        .collect();
    assert!(names.len() >= 25, "the fixture lost cases: {names:?}");
    names
}

#[test]
fn optimizers_match_pytorch_in_f64() {
    let fx = Fixture::load();
    for name in cases(&fx) {
        let worst = run_case::<f64>(&fx, &name, "f64", 1e-12);
        eprintln!("{name:>28} f64: max relative difference {worst:.1e}");
    }
}

#[test]
fn optimizers_match_pytorch_in_f32() {
    let fx = Fixture::load();
    for name in cases(&fx) {
        let worst = run_case::<f32>(&fx, &name, "f32", 1e-5);
        eprintln!("{name:>28} f32: max relative difference {worst:.1e}");
    }
}

fn clip_case<T: Float>(fx: &Fixture, tag: &str, rtol: f64) {
    let fresh = || -> Vec<Tensor<T>> {
        (0..3)
            .map(|i| {
                let g = fx.tensor::<T>(&format!("clip.g{i}"));
                let p = Tensor::<T>::zeros(g.shape()).requires_grad_();
                p.set_grad(Some(g));
                p
            })
            .collect()
    };
    for (name, max_norm, norm_type) in [
        ("l2", 1.0, 2.0),
        ("l1", 0.5, 1.0),
        ("inf", 0.3, f64::INFINITY),
        ("l3", 0.7, 3.0),
        ("none", 100.0, 2.0),
    ] {
        let ps = fresh();
        let total = clip_grad_norm_(&ps, max_norm, norm_type);
        let key = format!("clip.{name}.{tag}");
        assert_close(
            &format!("{key}.total"),
            &[total],
            fx.values(&format!("{key}.total")),
            rtol,
            1e-3,
        );
        for (i, p) in ps.iter().enumerate() {
            let got = to_f64(&p.grad().unwrap());
            assert_close(
                &format!("{key}.g{i}"),
                &got,
                fx.values(&format!("{key}.g{i}")),
                rtol,
                1e-3,
            );
        }
    }
    let ps = fresh();
    clip_grad_value_(&ps, 0.4);
    for (i, p) in ps.iter().enumerate() {
        let key = format!("clip.value.{tag}.g{i}");
        assert_eq!(to_f64(&p.grad().unwrap()), fx.values(&key), "{key}");
    }
}

#[test]
fn clipping_matches_pytorch() {
    let fx = Fixture::load();
    clip_case::<f64>(&fx, "f64", 1e-12);
    clip_case::<f32>(&fx, "f32", 1e-6);
}
