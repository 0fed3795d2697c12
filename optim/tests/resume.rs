//! Resuming: train, save optimizer and scheduler state to files, load them
//! into fresh objects over fresh parameters, continue. The parameters and
//! learning rates must be bit-identical to an uninterrupted run, for every
//! optimizer and scheduler.

use std::path::PathBuf;

use autograd::{manual_seed, Tensor};
use optim::*;

const BEFORE: usize = 7;
const AFTER: usize = 9;

/// What a run trains: two weights in two groups, one parameter that never
/// gets a gradient (so it has no state when saved), and a fixed batch.
struct Model {
    w: Tensor,
    b: Tensor,
    unused: Tensor,
}

impl Model {
    fn new() -> Model {
        manual_seed(7);
        Model {
            w: Tensor::randn([5, 3]).requires_grad_(),
            b: Tensor::randn([3]).requires_grad_(),
            unused: Tensor::randn([4]).requires_grad_(),
        }
    }

    /// A copy with new tensors (as a reloaded checkpoint would have).
    fn copy(&self) -> Model {
        let c = |t: &Tensor| Tensor::from_array(t.to_array()).requires_grad_();
        Model {
            w: c(&self.w),
            b: c(&self.b),
            unused: c(&self.unused),
        }
    }

    fn groups(&self) -> Vec<GroupSpec> {
        vec![
            GroupSpec::new(vec![self.w.clone(), self.unused.clone()]),
            GroupSpec::new(vec![self.b.clone()])
                .lr(0.02)
                .weight_decay(0.01),
        ]
    }

    fn loss(&self) -> Tensor {
        manual_seed(11);
        let x = Tensor::randn([8, 5]);
        let y = Tensor::randn([8, 3]);
        ((x.matmul(&self.w) + &self.b).tanh() - &y).square().mean()
    }
}

type Build = fn(&Model) -> (Box<dyn Optimizer>, Box<dyn LrScheduler>);

fn steps(m: &Model, opt: &mut dyn Optimizer, sched: &mut dyn LrScheduler, n: usize) {
    for _ in 0..n {
        opt.zero_grad();
        let loss = m.loss();
        loss.backward();
        opt.step();
        sched.step_with_metric(opt, loss.item() as f64);
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optim-resume-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check_resume(name: &str, build: Build) {
    // Uninterrupted.
    let m = Model::new();
    let (mut opt, mut sched) = build(&m);
    steps(&m, opt.as_mut(), sched.as_mut(), BEFORE + AFTER);
    let want = (
        m.w.to_vec(),
        m.b.to_vec(),
        opt.param_groups().iter().map(|g| g.lr).collect::<Vec<_>>(),
    );

    // Interrupted after BEFORE steps, saved to files, resumed in fresh objects.
    let m = Model::new();
    let (mut opt, mut sched) = build(&m);
    steps(&m, opt.as_mut(), sched.as_mut(), BEFORE);
    let dir = tmp(name);
    opt.save(&dir.join("optimizer.safetensors")).unwrap();
    sched.save(&dir.join("scheduler.safetensors")).unwrap();
    let saved = m.copy();
    drop((opt, sched, m));

    let m = saved;
    let (mut opt, mut sched) = build(&m);
    opt.load(&dir.join("optimizer.safetensors")).unwrap();
    sched.load(&dir.join("scheduler.safetensors")).unwrap();
    assert_eq!(sched.last_epoch(), BEFORE as i64);
    steps(&m, opt.as_mut(), sched.as_mut(), AFTER);
    let got = (
        m.w.to_vec(),
        m.b.to_vec(),
        opt.param_groups().iter().map(|g| g.lr).collect::<Vec<_>>(),
    );
    assert_eq!(got, want, "{name}: the resumed run differs");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sgd_nesterov_with_step_lr() {
    check_resume("sgd", |m| {
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-3,
            ..Default::default()
        };
        let mut opt = Sgd::with_groups(m.groups(), cfg);
        let sched = StepLr::new(
            &mut opt,
            StepLrConfig {
                step_size: 3,
                gamma: 0.7,
            },
        );
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn sgd_dampening_with_chained_schedulers() {
    check_resume("chained", |m| {
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.8,
            dampening: 0.3,
            ..Default::default()
        };
        let mut opt = Sgd::with_groups(m.groups(), cfg);
        let a = MultiStepLr::new(
            &mut opt,
            MultiStepLrConfig {
                milestones: vec![2, 8, 12],
                gamma: 0.5,
            },
        );
        let b = ExponentialLr::new(&mut opt, ExponentialLrConfig { gamma: 0.95 });
        let sched = ChainedScheduler::new(&mut opt, vec![Box::new(a), Box::new(b)]);
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn adam_amsgrad_with_one_cycle() {
    check_resume("adam", |m| {
        let mut opt = Adam::with_groups(
            m.groups(),
            AdamConfig {
                amsgrad: true,
                ..Default::default()
            },
        );
        let sched = OneCycleLr::new(
            &mut opt,
            OneCycleLrConfig::new(vec![0.05, 0.01], BEFORE + AFTER),
        );
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn adamw_with_warmup_then_cosine() {
    check_resume("adamw", |m| {
        let mut opt = AdamW::with_groups(
            m.groups(),
            AdamWConfig {
                lr: 0.05,
                ..Default::default()
            },
        );
        let warmup = LinearLr::new(
            &mut opt,
            LinearLrConfig {
                start_factor: 0.2,
                total_iters: 4,
                ..Default::default()
            },
        );
        let cosine = CosineAnnealingLr::new(
            &mut opt,
            CosineAnnealingLrConfig {
                t_max: 12,
                eta_min: 1e-4,
            },
        );
        let sched = SequentialLr::new(&mut opt, vec![Box::new(warmup), Box::new(cosine)], vec![4]);
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn adagrad_with_constant_then_exponential() {
    check_resume("adagrad", |m| {
        let cfg = AdagradConfig {
            lr: 0.1,
            lr_decay: 0.01,
            initial_accumulator_value: 0.1,
            ..Default::default()
        };
        let mut opt = Adagrad::with_groups(m.groups(), cfg);
        let a = ConstantLr::new(&mut opt, ConstantLrConfig::default());
        let b = ExponentialLr::new(&mut opt, ExponentialLrConfig { gamma: 0.9 });
        let sched = SequentialLr::new(&mut opt, vec![Box::new(a), Box::new(b)], vec![8]);
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn rmsprop_centered_momentum_with_warm_restarts() {
    check_resume("rmsprop", |m| {
        let cfg = RmsPropConfig {
            centered: true,
            momentum: 0.5,
            ..Default::default()
        };
        let mut opt = RmsProp::with_groups(m.groups(), cfg);
        let sched = CosineAnnealingWarmRestarts::new(
            &mut opt,
            CosineAnnealingWarmRestartsConfig {
                t_0: 3,
                t_mult: 2,
                eta_min: 1e-3,
            },
        );
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn adadelta_with_reduce_on_plateau() {
    check_resume("adadelta", |m| {
        let mut opt = Adadelta::with_groups(m.groups(), AdadeltaConfig::default());
        let cfg = ReduceLrOnPlateauConfig {
            patience: 0,
            threshold: 0.5,
            cooldown: 1,
            ..Default::default()
        };
        let sched = ReduceLrOnPlateau::new(&mut opt, cfg);
        (Box::new(opt), Box::new(sched))
    });
}

#[test]
fn state_dicts_round_trip_through_bytes() {
    let m = Model::new();
    let mut opt = Adam::with_groups(
        m.groups(),
        AdamConfig {
            amsgrad: true,
            ..Default::default()
        },
    );
    let mut sched = OneCycleLr::new(&mut opt, OneCycleLrConfig::new(vec![0.1], 20));
    steps(&m, &mut opt, &mut sched, 3);
    let st = opt.state_dict();
    assert_eq!(st.params.len(), 3);
    assert!(st.params[1].is_none(), "the unused parameter has no state");
    assert_eq!(st.params[0].as_ref().unwrap().step, 3);
    let back = OptimizerState::<f32>::from_bytes(&st.to_bytes(), std::path::Path::new("<memory>"))
        .unwrap();
    assert_eq!(back, st);
    let ss = LrScheduler::<f32>::state_dict(&sched);
    let back =
        SchedulerState::from_bytes(&ss.to_bytes(), std::path::Path::new("<memory>")).unwrap();
    assert_eq!(back, ss);
}
