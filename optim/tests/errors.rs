//! Errors: invalid settings, states that do not fit, corrupt or truncated
//! files (an error naming the file, never a panic), and the other misuses.

use std::path::{Path, PathBuf};

use autograd::Tensor;
use optim::*;
use proptest::prelude::*;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optim-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn params(shapes: &[&[usize]]) -> Vec<Tensor> {
    shapes
        .iter()
        .map(|s| Tensor::ones(s.to_vec()).requires_grad_())
        .collect()
}

/// An Adam that has stepped twice over parameters of the given shapes.
fn trained_adam(shapes: &[&[usize]]) -> Adam {
    let ps = params(shapes);
    let mut opt = Adam::new(ps.clone(), AdamConfig::default());
    for _ in 0..2 {
        opt.zero_grad();
        let loss = ps
            .iter()
            .map(|p| p.square().sum())
            .reduce(|a, b| a + b)
            .unwrap();
        loss.backward();
        opt.step();
    }
    opt
}

fn message(e: OptimError) -> String {
    e.to_string()
}

#[test]
fn invalid_settings_are_errors() {
    let p = || params(&[&[2]]);
    let cases: Vec<(Result<()>, &str)> = vec![
        (
            Sgd::try_new(
                p(),
                SgdConfig {
                    lr: -1.0,
                    ..Default::default()
                },
            )
            .map(drop),
            "learning rate",
        ),
        (
            Sgd::try_new(
                p(),
                SgdConfig {
                    nesterov: true,
                    ..Default::default()
                },
            )
            .map(drop),
            "Nesterov",
        ),
        (
            Sgd::try_new(
                p(),
                SgdConfig {
                    momentum: -0.5,
                    ..Default::default()
                },
            )
            .map(drop),
            "momentum",
        ),
        (
            Adam::try_new(
                p(),
                AdamConfig {
                    betas: (1.0, 0.999),
                    ..Default::default()
                },
            )
            .map(drop),
            "index 0",
        ),
        (
            Adam::try_new(
                p(),
                AdamConfig {
                    betas: (0.9, 1.5),
                    ..Default::default()
                },
            )
            .map(drop),
            "index 1",
        ),
        (
            AdamW::try_new(
                p(),
                AdamWConfig {
                    eps: -1.0,
                    ..Default::default()
                },
            )
            .map(drop),
            "epsilon",
        ),
        (
            Adagrad::try_new(
                p(),
                AdagradConfig {
                    lr_decay: -1.0,
                    ..Default::default()
                },
            )
            .map(drop),
            "lr_decay",
        ),
        (
            RmsProp::try_new(
                p(),
                RmsPropConfig {
                    alpha: -1.0,
                    ..Default::default()
                },
            )
            .map(drop),
            "alpha",
        ),
        (
            Adadelta::try_new(
                p(),
                AdadeltaConfig {
                    rho: 1.5,
                    ..Default::default()
                },
            )
            .map(drop),
            "rho",
        ),
        (
            Adam::try_with_groups(
                vec![GroupSpec::new(p()).weight_decay(-1.0)],
                AdamConfig::default(),
            )
            .map(drop),
            "weight_decay",
        ),
        (
            Adagrad::try_with_groups(
                vec![GroupSpec::new(p()).momentum(0.9)],
                AdagradConfig::default(),
            )
            .map(drop),
            "no momentum",
        ),
    ];
    for (r, needle) in cases {
        let msg = message(r.expect_err(needle));
        assert!(msg.contains(needle), "'{msg}' should mention '{needle}'");
    }
}

#[test]
#[should_panic(expected = "Nesterov momentum requires a momentum and zero dampening")]
fn plain_constructors_panic_with_the_message() {
    Sgd::new(
        params(&[&[2]]),
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
    );
}

#[test]
fn a_parameter_given_twice_is_an_error() {
    let p = params(&[&[2]]);
    let e = Sgd::try_with_groups(
        vec![GroupSpec::new(p.clone()), GroupSpec::new(p.clone())],
        SgdConfig::default(),
    );
    assert!(matches!(
        e,
        Err(OptimError::DuplicateParam { index: 1, .. })
    ));
    let mut opt = Sgd::new(p.clone(), SgdConfig::default());
    assert!(opt.add_param_group(GroupSpec::new(p)).is_err());
    assert_eq!(opt.param_groups().len(), 1);
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error_and_nothing_moves() {
    let p = params(&[&[2], &[2, 3]]);
    p[0].set_grad(Some(Tensor::ones([2])));
    p[1].set_grad(Some(Tensor::ones([3, 2])));
    let mut opt = Adam::new(p.clone(), AdamConfig::default());
    let msg = message(opt.try_step().unwrap_err());
    assert!(
        msg.contains("[2, 3]") && msg.contains("[3, 2]") && msg.contains("parameter 1"),
        "{msg}"
    );
    assert_eq!(
        p[0].to_vec(),
        vec![1.0, 1.0],
        "the valid parameter did not move either"
    );
    assert!(opt.state_dict().params.iter().all(|s| s.is_none()));
}

#[test]
fn a_state_of_another_optimizer_does_not_load() {
    let st = trained_adam(&[&[2]]).state_dict();
    let mut sgd = Sgd::new(params(&[&[2]]), SgdConfig::default());
    let msg = message(
        sgd.load_state_dict(&OptimizerState {
            optimizer: st.optimizer.clone(),
            ..sgd.state_dict()
        })
        .unwrap_err(),
    );
    assert!(msg.contains("Adam") && msg.contains("SGD"), "{msg}");
}

#[test]
fn a_state_for_other_parameters_does_not_load_and_changes_nothing() {
    let st = trained_adam(&[&[2], &[3]]).state_dict();
    // Another count of parameters.
    let mut opt = Adam::new(
        params(&[&[2]]),
        AdamConfig {
            lr: 0.5,
            ..Default::default()
        },
    );
    let msg = message(opt.load_state_dict(&st).unwrap_err());
    assert!(msg.contains("parameter"), "{msg}");
    assert_eq!(opt.param_groups()[0].lr, 0.5);
    // Same count, another shape.
    let mut opt = Adam::new(
        params(&[&[2], &[4]]),
        AdamConfig {
            lr: 0.5,
            ..Default::default()
        },
    );
    let msg = message(opt.load_state_dict(&st).unwrap_err());
    assert!(msg.contains("[3]") && msg.contains("[4]"), "{msg}");
    assert_eq!(opt.param_groups()[0].lr, 0.5);
    assert!(
        opt.state_dict().params.iter().all(|p| p.is_none()),
        "no state was loaded"
    );
    // Another grouping.
    let ps = params(&[&[2], &[3]]);
    let groups = vec![
        GroupSpec::new(vec![ps[0].clone()]),
        GroupSpec::new(vec![ps[1].clone()]),
    ];
    let mut opt = Adam::with_groups(groups, AdamConfig::default());
    assert!(message(opt.load_state_dict(&st).unwrap_err()).contains("group"));
    // A buffer this optimizer does not have, or one it needs missing.
    let mut bad = st.clone();
    let buffers = &mut bad.params[0].as_mut().unwrap().buffers;
    let v = buffers.remove("exp_avg_sq").unwrap();
    buffers.insert("velocity".into(), v);
    let mut opt = Adam::new(params(&[&[2], &[3]]), AdamConfig::default());
    assert!(message(opt.load_state_dict(&bad).unwrap_err()).contains("velocity"));
    bad.params[0].as_mut().unwrap().buffers.remove("velocity");
    assert!(message(opt.load_state_dict(&bad).unwrap_err()).contains("exp_avg_sq"));
    opt.load_state_dict(&st).unwrap();
}

#[test]
fn a_mismatched_state_file_names_the_file() {
    let dir = tmp_dir("mismatch");
    let path = dir.join("adam.safetensors");
    trained_adam(&[&[2], &[3]]).save(&path).unwrap();
    let mut opt = Adam::new(params(&[&[5]]), AdamConfig::default());
    let msg = message(opt.load(&path).unwrap_err());
    assert!(msg.contains("adam.safetensors"), "{msg}");
    // An f32 state does not load into an f64 optimizer.
    let p64 = vec![
        Tensor::<f64>::ones([2]).requires_grad_(),
        Tensor::<f64>::ones([3]).requires_grad_(),
    ];
    let mut opt64 = Adam::new(p64, AdamConfig::default());
    let msg = message(opt64.load(&path).unwrap_err());
    assert!(
        msg.contains("f32") && msg.contains("adam.safetensors"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_and_corrupt_files_are_errors_naming_the_file() {
    let dir = tmp_dir("corrupt");
    let mut opt = Adam::new(params(&[&[2]]), AdamConfig::default());
    let missing = dir.join("missing.safetensors");
    let msg = message(opt.load(&missing).unwrap_err());
    assert!(msg.contains("missing.safetensors"), "{msg}");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a state file at all").unwrap();
    let msg = message(opt.load(&garbage).unwrap_err());
    assert!(msg.contains("garbage.safetensors"), "{msg}");
    // A scheduler state is not an optimizer state, and the other way round.
    let sched_path = dir.join("sched.safetensors");
    let sched = StepLr::new(&mut opt, StepLrConfig::new(3));
    LrScheduler::<f32>::save(&sched, &sched_path).unwrap();
    assert!(message(opt.load(&sched_path).unwrap_err()).contains("format"));
    let opt_path = dir.join("opt.safetensors");
    opt.save(&opt_path).unwrap();
    let mut sched = sched;
    assert!(
        message(LrScheduler::<f32>::load(&mut sched, &opt_path).unwrap_err())
            .contains("opt.safetensors")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_of_a_state_file_is_an_error() {
    let dir = tmp_dir("truncated");
    let path = dir.join("state.safetensors");
    let opt = trained_adam(&[&[3, 2], &[4]]);
    opt.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    let mut fresh = Adam::new(params(&[&[3, 2], &[4]]), AdamConfig::default());
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let msg = message(fresh.load(&cut).unwrap_err());
        assert!(msg.contains("cut.safetensors"), "{len}: {msg}");
    }
    fresh.load(&path).unwrap();
    assert_eq!(fresh.state_dict(), opt.state_dict());
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Loading never panics, whatever bytes are changed.
    #[test]
    fn corrupt_bytes_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let st = trained_adam(&[&[3], &[2, 2]]).state_dict();
        let mut bytes = st.to_bytes();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b | 1;
        }
        let path = Path::new("corrupt.safetensors");
        if let Ok(loaded) = OptimizerState::<f32>::from_bytes(&bytes, path) {
            let mut fresh = Adam::new(params(&[&[3], &[2, 2]]), AdamConfig::default());
            let _ = fresh.load_state_dict(&loaded);
        }
        let ss = SchedulerState::from_bytes(&bytes, path);
        prop_assert!(ss.is_err());
    }
}

#[test]
fn saving_replaces_the_file_through_a_temporary() {
    let dir = tmp_dir("atomic");
    let path = dir.join("state.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let opt = trained_adam(&[&[2]]);
    opt.save(&path).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["state.safetensors"], "no temporary left behind");
    assert_eq!(
        OptimizerState::<f32>::load(&path).unwrap(),
        opt.state_dict()
    );
    // Into a folder that does not exist: an error naming the path, nothing written.
    let bad = dir.join("no-such-dir").join("state.safetensors");
    assert!(message(opt.save(&bad).unwrap_err()).contains("no-such-dir"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scheduler_misuse_is_an_error() {
    let mut opt = Sgd::new(
        params(&[&[2]]),
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        },
    );
    // Past the end of a one-cycle schedule; the failed step changes nothing.
    let mut one = OneCycleLr::new(&mut opt, OneCycleLrConfig::new(vec![1.0], 3));
    for _ in 0..3 {
        one.step(&mut opt);
    }
    let lr = opt.param_groups()[0].lr;
    assert!(matches!(
        one.try_step(&mut opt),
        Err(OptimError::ScheduleEnded {
            step: 4,
            total: 3,
            ..
        })
    ));
    assert_eq!(LrScheduler::<f32>::last_epoch(&one), 3);
    assert_eq!(opt.param_groups()[0].lr, lr);
    // ReduceLROnPlateau needs its metric, and cannot go into a sequence.
    let mut plateau = ReduceLrOnPlateau::new(&mut opt, ReduceLrOnPlateauConfig::default());
    assert!(matches!(
        plateau.try_step(&mut opt),
        Err(OptimError::MetricRequired { .. })
    ));
    plateau.step_with_metric(&mut opt, 1.0);
    let s = StepLr::new(&mut opt, StepLrConfig::new(2));
    let r = SequentialLr::try_new(&mut opt, vec![Box::new(s), Box::new(plateau)], vec![3]);
    assert!(message(r.err().unwrap()).contains("metric"));
    // Milestones must fit the schedulers.
    let s1 = StepLr::new(&mut opt, StepLrConfig::new(2));
    let s2 = StepLr::new(&mut opt, StepLrConfig::new(2));
    assert!(SequentialLr::try_new(&mut opt, vec![Box::new(s1), Box::new(s2)], vec![]).is_err());
    // An optimizer without momentum cannot have it cycled.
    let mut ada = Adagrad::new(params(&[&[2]]), AdagradConfig::default());
    assert!(OneCycleLr::try_new(&mut ada, OneCycleLrConfig::new(vec![0.1], 10)).is_err());
    let cfg = OneCycleLrConfig {
        cycle_momentum: false,
        ..OneCycleLrConfig::new(vec![0.1], 10)
    };
    assert!(OneCycleLr::try_new(&mut ada, cfg).is_ok());
    // Invalid settings.
    assert!(StepLr::try_new(&mut opt, StepLrConfig::new(0)).is_err());
    assert!(LinearLr::try_new(
        &mut opt,
        LinearLrConfig {
            start_factor: 0.0,
            ..Default::default()
        }
    )
    .is_err());
    assert!(CosineAnnealingLr::try_new(&mut opt, CosineAnnealingLrConfig::new(0)).is_err());
    assert!(ReduceLrOnPlateau::try_new(
        &mut opt,
        ReduceLrOnPlateauConfig {
            factor: 1.0,
            ..Default::default()
        }
    )
    .is_err());
}

#[test]
fn a_scheduler_notices_a_changed_group_count() {
    let ps = params(&[&[2], &[3]]);
    let mut opt = Sgd::new(
        vec![ps[0].clone()],
        SgdConfig {
            lr: 0.1,
            ..Default::default()
        },
    );
    let mut sched = StepLr::new(&mut opt, StepLrConfig::new(2));
    opt.add_param_group(GroupSpec::new(vec![ps[1].clone()]))
        .unwrap();
    let msg = message(sched.try_step(&mut opt).unwrap_err());
    assert!(
        msg.contains("1 parameter group") && msg.contains("has 2"),
        "{msg}"
    );
}

#[test]
fn a_scheduler_state_that_does_not_fit_is_refused() {
    let mut opt = Sgd::new(
        params(&[&[2]]),
        SgdConfig {
            lr: 0.1,
            ..Default::default()
        },
    );
    let mut step = StepLr::new(&mut opt, StepLrConfig::new(2));
    let cosine = CosineAnnealingLr::new(&mut opt, CosineAnnealingLrConfig::new(5));
    let st = LrScheduler::<f32>::state_dict(&cosine);
    let msg = message(LrScheduler::<f32>::load_state_dict(&mut step, &st).unwrap_err());
    assert!(
        msg.contains("CosineAnnealingLR") && msg.contains("StepLR"),
        "{msg}"
    );
    // Built for two groups, loaded into one built for one.
    let ps = params(&[&[2], &[1]]);
    let mut two = Sgd::with_groups(
        vec![
            GroupSpec::new(vec![ps[0].clone()]),
            GroupSpec::new(vec![ps[1].clone()]),
        ],
        SgdConfig::default(),
    );
    let st = LrScheduler::<f32>::state_dict(&StepLr::new(&mut two, StepLrConfig::new(2)));
    assert!(LrScheduler::<f32>::load_state_dict(&mut step, &st).is_err());
    assert_eq!(LrScheduler::<f32>::last_epoch(&step), 0);
}

#[test]
fn a_non_finite_norm_is_an_error_when_asked() {
    let p = params(&[&[3]]);
    p[0].set_grad(Some(Tensor::from_vec(vec![1.0, f32::NAN, 2.0], [3])));
    let e = try_clip_grad_norm_(&p, 1.0, 2.0).unwrap_err();
    assert!(message(e).contains("non-finite"));
    assert!(
        p[0].grad().unwrap().to_vec()[0] == 1.0,
        "nothing was clipped"
    );
    assert!(try_clip_grad_value_(&p, -1.0).is_err());
}
