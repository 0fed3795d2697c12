//! An optimizer written outside the crate, through the public API only: Lion
//! (Chen et al. 2023) as an `UpdateRule`. `RuleOptimizer` gives it groups
//! with their own settings (its own `beta2` included), schedulers, and state
//! that saves to a file and resumes bit for bit; states that do not fit are
//! errors that say why.

use std::path::{Path, PathBuf};

use autograd::{manual_seed, Float, Tensor};
use optim::*;

/// `c = β1·m + (1 − β1)·g; p −= lr·(sign(c) + wd·p); m = β2·m + (1 − β2)·g`.
#[derive(Clone, Copy, Debug)]
struct Lion {
    lr: f64,
    betas: (f64, f64),
    weight_decay: f64,
}

impl Default for Lion {
    fn default() -> Self {
        Lion {
            lr: 1e-4,
            betas: (0.9, 0.99),
            weight_decay: 0.0,
        }
    }
}

impl<T: Float> UpdateRule<T> for Lion {
    const NAME: &'static str = "Lion";
    const BUFFERS: &'static [BufferSpec] = &[BufferSpec::required("exp_avg")];

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults::new(self.lr)
            .weight_decay(self.weight_decay)
            .momentum(self.betas.0)
            .setting("beta2", self.betas.1)
    }

    fn check(&self, group: &ParamGroup<T>) -> Result<(), String> {
        let betas = [group.momentum.unwrap_or(0.0), group.setting("beta2")];
        match betas.iter().all(|b| (0.0..1.0).contains(b)) {
            true => Ok(()),
            false => Err(format!("betas {betas:?} must be in [0, 1)")),
        }
    }

    fn update(&self, group: &ParamGroup<T>, param: &mut [T], grad: &[T], state: &mut ParamSlot<T>) {
        let (lr, wd) = (T::of(group.lr), T::of(group.weight_decay));
        let b1 = T::of(group.momentum.expect("Lion has a momentum"));
        let b2 = T::of(group.setting("beta2"));
        let m = state.buffer("exp_avg", T::zero());
        for ((p, m), &g) in param.iter_mut().zip(m).zip(grad) {
            let c = b1 * *m + (T::one() - b1) * g;
            *p -= lr * (sign(c) + wd * *p);
            *m = b2 * *m + (T::one() - b2) * g;
        }
    }
}

fn sign<T: Float>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

fn leaf(values: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape.to_vec()).requires_grad_()
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optim-custom-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lion_follows_its_formula_with_each_groups_settings() {
    let a = leaf(vec![1.0, -2.0, 0.5, 3.0], &[4]);
    let b = leaf(vec![0.25, -0.75], &[2]);
    let lion = Lion {
        lr: 0.1,
        betas: (0.8, 0.95),
        weight_decay: 0.05,
    };
    let groups = vec![
        GroupSpec::new(vec![a.clone()]),
        GroupSpec::new(vec![b.clone()])
            .lr(0.03)
            .momentum(0.6)
            .set("beta2", 0.5),
    ];
    let mut opt = RuleOptimizer::with_groups(groups, lion);
    // (lr, wd, beta1, beta2, values, momentum) per group, stepped by hand.
    let mut want = [
        (
            0.1f32,
            0.05f32,
            0.8f32,
            0.95f32,
            a.to_vec(),
            vec![0.0f32; 4],
        ),
        (0.03, 0.05, 0.6, 0.5, b.to_vec(), vec![0.0; 2]),
    ];
    // The zero gradient with a zero momentum has sign 0: only the decay moves it.
    let grads = [
        [vec![0.5, -1.0, 0.0, 2.0], vec![-0.3, 0.1]],
        [vec![-0.2, -1.0, 0.0, 1.0], vec![0.4, 0.1]],
        [vec![-2.0, 0.5, 0.0, -0.1], vec![0.4, -3.0]],
    ];
    for step in grads {
        for ((p, g), w) in [&a, &b].into_iter().zip(&step).zip(&mut want) {
            p.set_grad(Some(Tensor::from_vec(g.clone(), [g.len()])));
            let (lr, wd, b1, b2, ps, ms) = w;
            for ((p, m), &g) in ps.iter_mut().zip(ms.iter_mut()).zip(g) {
                let c = *b1 * *m + (1.0 - *b1) * g;
                *p -= *lr * (sign(c) + *wd * *p);
                *m = *b2 * *m + (1.0 - *b2) * g;
            }
        }
        opt.step();
    }
    assert_eq!(a.to_vec(), want[0].4);
    assert_eq!(b.to_vec(), want[1].4);
    let st = opt.state_dict();
    assert_eq!(st.optimizer, "Lion");
    let m = st.params[1].as_ref().unwrap().buffers["exp_avg"].clone();
    assert_eq!(m.iter().copied().collect::<Vec<_>>(), want[1].5);
    assert_eq!(st.params[0].as_ref().unwrap().step, 3);
}

/// Two weights in two groups (the second with its own lr, weight decay and
/// beta2), one parameter that never gets a gradient, a fixed batch.
struct Model {
    w: Tensor,
    b: Tensor,
    unused: Tensor,
}

impl Model {
    fn new() -> Model {
        manual_seed(3);
        Model {
            w: Tensor::randn([5, 3]).requires_grad_(),
            b: Tensor::randn([3]).requires_grad_(),
            unused: Tensor::randn([4]).requires_grad_(),
        }
    }

    /// Fresh tensors with the same values, as a reloaded checkpoint has.
    fn copy(&self) -> Model {
        let c = |t: &Tensor| Tensor::from_array(t.to_array()).requires_grad_();
        Model {
            w: c(&self.w),
            b: c(&self.b),
            unused: c(&self.unused),
        }
    }

    fn optimizer(&self) -> (RuleOptimizer<Lion>, OneCycleLr) {
        let groups = vec![
            GroupSpec::new(vec![self.w.clone(), self.unused.clone()]),
            GroupSpec::new(vec![self.b.clone()])
                .lr(0.002)
                .weight_decay(0.1)
                .set("beta2", 0.9),
        ];
        let mut opt = RuleOptimizer::with_groups(
            groups,
            Lion {
                lr: 0.01,
                ..Default::default()
            },
        );
        // OneCycleLR cycles the lr and Lion's momentum (beta1) as the steps go.
        let sched = OneCycleLr::new(&mut opt, OneCycleLrConfig::new(vec![0.02, 0.005], 20));
        (opt, sched)
    }

    fn train(&self, opt: &mut RuleOptimizer<Lion>, sched: &mut OneCycleLr, steps: usize) {
        manual_seed(11);
        let x = Tensor::randn([8, 5]);
        let y = Tensor::randn([8, 3]);
        for _ in 0..steps {
            opt.zero_grad();
            ((x.matmul(&self.w) + &self.b).tanh() - &y)
                .square()
                .mean()
                .backward();
            opt.step();
            sched.step(opt);
        }
    }
}

#[test]
fn a_run_resumed_from_files_is_bit_identical() {
    let m = Model::new();
    let (mut opt, mut sched) = m.optimizer();
    m.train(&mut opt, &mut sched, 16);
    let want = (bits(&m.w), bits(&m.b), opt.param_groups()[1].momentum);

    let m = Model::new();
    let (mut opt, mut sched) = m.optimizer();
    m.train(&mut opt, &mut sched, 7);
    let dir = tmp_dir("resume");
    let (opt_file, sched_file) = (dir.join("lion.safetensors"), dir.join("sched.safetensors"));
    opt.save(&opt_file).unwrap();
    sched.save(&sched_file).unwrap();
    let saved_groups = opt.param_groups().to_vec();
    let m7 = m.copy();
    drop((opt, sched, m));

    // Without the state the run goes elsewhere: the state is what makes it exact.
    let lost = m7.copy();
    let (mut opt, mut sched) = lost.optimizer();
    lost.train(&mut opt, &mut sched, 9);
    assert_ne!(bits(&lost.w), want.0);

    let (mut opt, mut sched) = m7.optimizer();
    opt.load(&opt_file).unwrap();
    sched.load(&sched_file).unwrap();
    for (got, saved) in opt.param_groups().iter().zip(&saved_groups) {
        assert_eq!(got.lr, saved.lr);
        assert_eq!(got.momentum, saved.momentum);
        assert_eq!(got.settings, saved.settings);
    }
    m7.train(&mut opt, &mut sched, 9);
    assert_eq!(
        (bits(&m7.w), bits(&m7.b), opt.param_groups()[1].momentum),
        want
    );
    assert!(
        opt.state_dict().params[1].is_none(),
        "the parameter without a gradient has no state"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Lion stepped twice over parameters of the given shapes.
fn trained_lion(shapes: &[&[usize]]) -> RuleOptimizer<Lion> {
    let ps: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::ones(s.to_vec()).requires_grad_())
        .collect();
    let mut opt = RuleOptimizer::new(ps.clone(), Lion::default());
    for _ in 0..2 {
        opt.zero_grad();
        ps.iter()
            .map(|p| p.square().sum())
            .reduce(|a, b| a + b)
            .unwrap()
            .backward();
        opt.step();
    }
    opt
}

fn ones(shapes: &[&[usize]]) -> Vec<Tensor> {
    shapes
        .iter()
        .map(|s| Tensor::ones(s.to_vec()).requires_grad_())
        .collect()
}

#[test]
fn a_state_of_another_rule_does_not_load() {
    let dir = tmp_dir("rule");
    let path = dir.join("lion.safetensors");
    trained_lion(&[&[2]]).save(&path).unwrap();
    let mut adam = Adam::new(ones(&[&[2]]), AdamConfig::default());
    let msg = adam.load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("Lion") && msg.contains("Adam") && msg.contains("lion.safetensors"),
        "{msg}"
    );
    let adam_path = dir.join("adam.safetensors");
    adam.save(&adam_path).unwrap();
    let mut lion = RuleOptimizer::new(ones(&[&[2]]), Lion::default());
    let msg = lion.load(&adam_path).unwrap_err().to_string();
    assert!(
        msg.contains("state of Adam, not of Lion") && msg.contains("adam.safetensors"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_state_of_another_shape_does_not_load_and_changes_nothing() {
    let dir = tmp_dir("shape");
    let path = dir.join("lion.safetensors");
    trained_lion(&[&[2, 3]]).save(&path).unwrap();
    let lion = Lion {
        lr: 0.5,
        ..Default::default()
    };
    let mut opt = RuleOptimizer::new(ones(&[&[3, 2]]), lion);
    let msg = opt.load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("[3, 2]") && msg.contains("lion.safetensors"),
        "{msg}"
    );
    assert_eq!(opt.param_groups()[0].lr, 0.5);
    assert!(opt.state_dict().params.iter().all(|p| p.is_none()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn buffers_and_settings_that_do_not_fit_do_not_load() {
    let st = trained_lion(&[&[2]]).state_dict();
    let mut opt = RuleOptimizer::new(ones(&[&[2]]), Lion::default());
    let refused = |opt: &mut RuleOptimizer<Lion>, st: &OptimizerState| {
        opt.load_state_dict(st).unwrap_err().to_string()
    };
    // A buffer Lion does not have; its one buffer missing.
    let mut bad = st.clone();
    let buffers = &mut bad.params[0].as_mut().unwrap().buffers;
    let m = buffers.remove("exp_avg").unwrap();
    buffers.insert("velocity".into(), m);
    assert!(refused(&mut opt, &bad).contains("no buffer 'velocity'"));
    bad.params[0].as_mut().unwrap().buffers.clear();
    assert!(refused(&mut opt, &bad).contains("no 'exp_avg' buffer"));
    // Lion's own setting missing, out of range, or one it does not have.
    let mut bad = st.clone();
    bad.groups[0].settings.clear();
    assert!(refused(&mut opt, &bad).contains("settings [] in the state"));
    let mut bad = st.clone();
    bad.groups[0].settings.insert("beta2".into(), 1.5);
    assert!(refused(&mut opt, &bad).contains("must be in [0, 1)"));
    let mut bad = st.clone();
    bad.groups[0].settings.insert("beta3".into(), 0.5);
    assert!(refused(&mut opt, &bad).contains("beta3"));
    assert!(opt.state_dict().params[0].is_none(), "nothing was loaded");
    opt.load_state_dict(&st).unwrap();
    assert_eq!(opt.state_dict(), st);
}

#[test]
fn settings_are_checked_when_groups_are_made() {
    let p = || ones(&[&[2]]);
    let err = |r: Result<RuleOptimizer<Lion>>| r.err().expect("refused").to_string();
    let msg = err(RuleOptimizer::try_with_groups(
        vec![GroupSpec::new(p()).set("beta3", 0.5)],
        Lion::default(),
    ));
    assert!(
        msg.contains("Lion") && msg.contains("no setting 'beta3'"),
        "{msg}"
    );
    let msg = err(RuleOptimizer::try_with_groups(
        vec![GroupSpec::new(p()).set("beta2", 1.0)],
        Lion::default(),
    ));
    assert!(msg.contains("must be in [0, 1)"), "{msg}");
    // The rule's own defaults, even with every group overriding them.
    let msg = err(RuleOptimizer::try_with_groups(
        vec![GroupSpec::new(p()).set("beta2", 0.9)],
        Lion {
            betas: (0.9, 2.0),
            ..Default::default()
        },
    ));
    assert!(msg.contains("must be in [0, 1)"), "{msg}");
    let msg = err(RuleOptimizer::try_new(
        p(),
        Lion {
            lr: -1.0,
            ..Default::default()
        },
    ));
    assert!(msg.contains("learning rate"), "{msg}");
    // A group added later gets the defaults and the same checks.
    let mut opt = RuleOptimizer::new(p(), Lion::default());
    assert!(opt
        .add_param_group(GroupSpec::new(p()).set("beta2", -0.1))
        .is_err());
    opt.add_param_group(GroupSpec::new(p())).unwrap();
    assert_eq!(opt.param_groups()[1].settings, [("beta2", 0.99)]);
    assert_eq!(opt.param_groups()[1].lr, 1e-4);
}

#[test]
fn a_state_file_round_trips_the_settings() {
    let dir = tmp_dir("settings");
    let path = dir.join("lion.safetensors");
    let mut opt = trained_lion(&[&[2], &[3]]);
    opt.param_groups_mut()[0].settings = vec![("beta2", 0.75)];
    opt.save(&path).unwrap();
    let st = OptimizerState::<f32>::load(&path).unwrap();
    assert_eq!(st.groups[0].settings["beta2"], 0.75);
    assert_eq!(st, opt.state_dict());
    let mut fresh = RuleOptimizer::new(ones(&[&[2], &[3]]), Lion::default());
    fresh.load(Path::new(&path)).unwrap();
    assert_eq!(fresh.param_groups()[0].setting("beta2"), 0.75);
    std::fs::remove_dir_all(&dir).unwrap();
}
