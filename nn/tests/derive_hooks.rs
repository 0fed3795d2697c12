//! `#[derive(Module)]` (children, tensors and the hook slot from the
//! fields), forward hooks and pre-hooks by dotted name, walking a model's
//! sub-modules, and `summary` built on the hooks.

use std::sync::{Arc, Mutex};

use autograd::Tensor;
use nn::{
    summary, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Dropout, Hooks, Linear,
    LinearConfig, Module, ModuleFields, NnError, ReLU, Sequential,
};

/// A user's block: a Vec of convolutions, an optional projection, a tensor
/// of its own, a buffer, a skipped field, and its own hook slot.
#[derive(Module)]
struct Block {
    #[module(skip)]
    label: String,
    #[buffer]
    calls: Tensor,
    convs: Vec<Conv2d>,
    #[param(name = "gamma")]
    scale: Tensor,
    proj: Option<Conv2d>,
    act: ReLU,
    hooks: Hooks,
}

impl Module for Block {
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for c in &self.convs {
            h = self.act.forward(&c.forward(&h));
        }
        let h = &h * &self.scale;
        match &self.proj {
            Some(p) => p.forward(&h),
            None => h,
        }
    }

    fn describe(&self) -> String {
        format!("Block({})", self.label)
    }
}

fn block(proj: bool) -> Block {
    Block {
        label: "b".into(),
        calls: Tensor::zeros([1]),
        convs: vec![
            Conv2d::new(Conv2dConfig::new(2, 2, 3).padding(1)),
            Conv2d::new(Conv2dConfig::new(2, 2, 3).padding(1)),
        ],
        scale: Tensor::ones([1]).requires_grad_(),
        proj: proj.then(|| Conv2d::new(Conv2dConfig::new(2, 3, 1))),
        act: ReLU,
        hooks: Hooks::new(),
    }
}

/// A user's network with children of every shape the derive knows.
#[derive(Module)]
struct Net {
    stem: Conv2d,
    #[module(name = "layer{}", start = 1)]
    stages: Vec<Block>,
    bn: BatchNorm2d,
    head: Sequential,
    drop: Dropout,
    hooks: Hooks,
}

impl Module for Net {
    fn forward_impl(&self, x: &Tensor) -> Tensor {
        let mut h = self.stem.forward(x);
        for s in &self.stages {
            h = s.forward(&h);
        }
        let h = self.bn.forward(&h).mean_dim([2, 3], false);
        self.drop.forward(&self.head.forward(&h))
    }
}

fn net() -> Net {
    Net {
        stem: Conv2d::new(Conv2dConfig::new(1, 2, 3).padding(1)),
        stages: vec![block(false), block(true)],
        bn: BatchNorm2d::new(BatchNormConfig::new(3)),
        head: Sequential::new()
            .add(Linear::new(LinearConfig::new(3, 4)))
            .add(ReLU)
            .add(Linear::new(LinearConfig::new(4, 2))),
        drop: Dropout::new(0.0),
        hooks: Hooks::new(),
    }
}

#[test]
fn names_come_from_the_fields_in_order() {
    let n = net();
    let names: Vec<String> = n.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "stem.weight",
            "stem.bias",
            // Parameters before buffers, each in field order (PyTorch's state_dict order).
            "layer1.gamma",
            "layer1.calls",
            "layer1.convs.0.weight",
            "layer1.convs.0.bias",
            "layer1.convs.1.weight",
            "layer1.convs.1.bias",
            "layer2.gamma",
            "layer2.calls",
            "layer2.convs.0.weight",
            "layer2.convs.0.bias",
            "layer2.convs.1.weight",
            "layer2.convs.1.bias",
            "layer2.proj.weight",
            "layer2.proj.bias",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked",
            "head.0.weight",
            "head.0.bias",
            "head.2.weight",
            "head.2.bias",
        ]
    );
    // Every parameter reaches the optimizer's list; the buffer does not.
    assert_eq!(n.parameters().len(), names.len() - 5);
    let modules: Vec<String> = n.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        modules,
        [
            "",
            "stem",
            "layer1",
            "layer1.convs.0",
            "layer1.convs.1",
            "layer1.act",
            "layer2",
            "layer2.convs.0",
            "layer2.convs.1",
            "layer2.proj",
            "layer2.act",
            "bn",
            "head",
            "head.0",
            "head.1",
            "head.2",
            "drop",
        ]
    );
    // Train/eval reaches every child through the derived list.
    n.eval();
    let x = Tensor::randn([2, 1, 5, 5]);
    let a = n.forward(&x);
    let b = n.forward(&x);
    assert_eq!(
        a.to_vec(),
        b.to_vec(),
        "eval mode: batch norm uses running statistics"
    );
}

#[test]
fn walking_and_finding_by_type() {
    let n = net();
    let convs = n.modules_of_type::<Conv2d>();
    let names: Vec<&str> = convs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem",
            "layer1.convs.0",
            "layer1.convs.1",
            "layer2.convs.0",
            "layer2.convs.1",
            "layer2.proj"
        ]
    );
    // Boxed children (Sequential's) are found by their own type.
    assert_eq!(n.modules_of_type::<Linear>().len(), 2);
    assert_eq!(n.modules_of_type::<ReLU>().len(), 3);
    let sub = n.get_submodule("layer2.proj").expect("exists");
    assert_eq!(
        sub.downcast_ref::<Conv2d>().unwrap().config().out_channels,
        3
    );
    assert!(n.get_submodule("layer3").is_none());
    assert_eq!(n.get_submodule("layer1").unwrap().describe(), "Block(b)");
    assert_eq!(n.describe(), "Net");
    let mut seen = 0;
    n.apply(&mut |_, m| {
        if let Some(c) = m.downcast_ref::<Conv2d>() {
            c.weight
                .set_data(autograd::ndarray::ArrayD::zeros(c.weight.shape()));
            seen += 1;
        }
    });
    assert_eq!(seen, 6);
    assert!(n.stem.weight.to_vec().iter().all(|v| *v == 0.0));
}

#[test]
fn hooks_see_and_replace_by_dotted_name() {
    let n = net();
    let x = Tensor::randn([2, 1, 5, 5]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let h1 = n
        .register_forward_hook("layer2.proj", move |input, output| {
            s.lock().unwrap().push((input.shape(), output.shape()));
            None
        })
        .unwrap();
    let before = n.forward(&x);
    assert_eq!(
        *seen.lock().unwrap(),
        [(vec![2, 2, 5, 5], vec![2, 3, 5, 5])],
        "called once, with the module's input and output"
    );
    // A forward hook that returns Some replaces the output; a pre-hook the input.
    let h2 = n
        .register_forward_hook("head.2", |_, y| Some(y * 0.0))
        .unwrap();
    assert!(n.forward(&x).to_vec().iter().all(|v| *v == 0.0));
    h2.remove();
    let h3 = n
        .register_forward_pre_hook("layer1.act", |x| Some(x * 0.0))
        .unwrap();
    let zeroed = n.forward(&x);
    h3.remove();
    assert_ne!(zeroed.to_vec(), before.to_vec());
    assert_eq!(
        n.forward(&x).to_vec(),
        before.to_vec(),
        "removed hooks are gone"
    );
    h1.remove();
    n.forward(&x);
    assert_eq!(seen.lock().unwrap().len(), 4, "four calls while registered");
    // Gradients flow through a replaced output.
    let h = n
        .register_forward_hook("stem", |_, y| Some(y * 2.0))
        .unwrap();
    n.forward(&x).sum().backward();
    assert!(n.stem.weight.grad().is_some());
    h.remove();
}

#[test]
fn hook_errors_name_the_module() {
    #[derive(Module)]
    struct NoSlot {
        fc: Linear,
    }
    impl Module for NoSlot {
        fn forward_impl(&self, x: &Tensor) -> Tensor {
            self.fc.forward(x)
        }
    }
    #[derive(Module)]
    struct Outer {
        inner: NoSlot,
    }
    impl Module for Outer {
        fn forward_impl(&self, x: &Tensor) -> Tensor {
            self.inner.forward(x)
        }
    }
    let m = Outer {
        inner: NoSlot {
            fc: Linear::new(LinearConfig::new(2, 2)),
        },
    };
    let err = m.register_forward_hook("inner", |_, _| None).unwrap_err();
    assert!(matches!(err, NnError::NoHookSlot { .. }), "{err}");
    assert!(err.to_string().contains("'inner' (NoSlot)"), "{err}");
    let err = m
        .register_forward_hook("inner.fc2", |_, _| None)
        .unwrap_err();
    assert!(err.to_string().contains("inner.fc2"), "{err}");
    assert!(
        err.to_string().contains("inner.fc"),
        "lists the names: {err}"
    );
    // The child with a slot still takes hooks, and the summary sees it.
    let h = m.register_forward_hook("inner.fc", |_, _| None).unwrap();
    h.remove();
    let s = summary(&m, &[3, 2]);
    assert!(
        s.contains("inner.fc: Linear") && s.contains("[3, 2]"),
        "{s}"
    );
}

#[test]
fn summary_sees_children_called_the_natural_way() {
    let n = net();
    let s = summary(&n, &[1, 1, 6, 6]);
    for (name, shape) in [
        ("stem: Conv2d", "[1, 2, 6, 6]"),
        ("layer1: Block(b)", "[1, 2, 6, 6]"),
        ("layer1.convs.0: Conv2d", "[1, 2, 6, 6]"),
        ("layer2.proj: Conv2d", "[1, 3, 6, 6]"),
        ("layer2.act: ReLU()", "[1, 2, 6, 6]"),
        ("head.2: Linear", "[1, 2]"),
    ] {
        let row = s
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{s}"));
        assert!(row.contains(shape), "{name}: {row}\n{s}");
    }
    // The summary's hooks are removed afterwards.
    assert!(n.stem.hooks().unwrap().is_empty());
}

#[test]
fn a_module_in_f64_infers_its_float_type() {
    #[derive(Module)]
    struct Small {
        fc: Linear<f64>,
        act: ReLU,
    }
    impl Module<f64> for Small {
        fn forward_impl(&self, x: &Tensor<f64>) -> Tensor<f64> {
            self.act.forward(&self.fc.forward(x))
        }
    }
    let m = Small {
        fc: Linear::build(LinearConfig::new(3, 2)),
        act: ReLU,
    };
    assert_eq!(m.num_parameters(), 8);
    assert_eq!(m.forward(&Tensor::<f64>::ones([1, 3])).shape(), vec![1, 2]);
}

#[test]
fn sequential_fuses_conv_relu_and_hooks_still_see_both() {
    let s = Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(1, 4, 3).padding(1)))
        .add(ReLU)
        .add(Conv2d::new(Conv2dConfig::new(4, 2, 3)))
        .add(ReLU);
    let x = Tensor::randn([2, 1, 6, 6]).requires_grad_();
    let conv = |i: usize| s.get(i).unwrap().as_any().downcast_ref::<Conv2d>().unwrap();
    let unfused = |x: &Tensor| {
        let h = conv(0).forward(x).relu();
        conv(2).forward(&h).relu()
    };
    let fused = s.forward(&x);
    assert_eq!(fused.to_vec(), unfused(&x).to_vec());
    assert_eq!(fused.grad_fn(), Some("conv2d_relu"), "one fused op");
    fused.sum().backward();
    let g_fused = x.grad().unwrap().to_vec();
    x.set_grad(None);
    unfused(&x).sum().backward();
    assert_eq!(g_fused, x.grad().unwrap().to_vec(), "same gradient");

    // A hook on the convolution sees its own output, before the ReLU.
    let min = Arc::new(Mutex::new(f32::MAX));
    let m = min.clone();
    let h = s
        .register_forward_hook("0", move |_, y| {
            *m.lock().unwrap() = y.to_vec().into_iter().fold(f32::MAX, f32::min);
            None
        })
        .unwrap();
    assert_eq!(s.forward(&x).to_vec(), fused.to_vec());
    assert!(
        *min.lock().unwrap() < 0.0,
        "the hook saw the pre-ReLU values"
    );
    h.remove();
    // A hook on the ReLU runs, and its replacement is used.
    let h = s.register_forward_hook("3", |_, y| Some(y * 0.0)).unwrap();
    assert!(s.forward(&x).to_vec().iter().all(|v| *v == 0.0));
    h.remove();
    assert_eq!(s.forward(&x).to_vec(), fused.to_vec());
}
