//! The `Module` API: torchvision's state_dict names for nested modules,
//! train/eval reaching every child, freezing, parameter counts (checked
//! against counts PyTorch computed, `fixtures/param_counts.txt`), the
//! summary, default initialisation statistics, and batch norm's running
//! statistics.

use std::collections::HashMap;

use autograd::{manual_seed, Tensor};
use nn::init::{self, FanMode, Nonlinearity};
use nn::{
    summary, AdaptiveAvgPool2d, BasicBlock, BasicConv2d, BatchNorm1d, BatchNorm2d, BatchNormConfig,
    BlockConfig, Bottleneck, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Dropout,
    Flatten, Inception, InceptionConfig, Linear, LinearConfig, MaxPool2d, Module, PoolConfig, ReLU,
    Sequential, TensorKind,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn names<V>(v: Vec<(String, V)>) -> Vec<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

fn resnet_stage() -> Sequential {
    Sequential::new()
        .add(BasicBlock::new(BlockConfig::new(4, 4)))
        .add(BasicBlock::new(BlockConfig::new(4, 8).stride(2)))
}

/// `model name name ...` lines written by scripts/golden_nn.py from torchvision's `state_dict().keys()`.
fn torch_names() -> HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/state_dict_names.txt")).unwrap();
    text.lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(String::from);
            (it.next().unwrap(), it.collect())
        })
        .collect()
}

fn torch_counts() -> HashMap<String, usize> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/param_counts.txt")).unwrap();
    text.lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.trim().parse().unwrap())
        })
        .collect()
}

// ------------------------------------------------------------------ names

#[test]
fn sequential_of_basic_blocks_names_as_torchvision() {
    let m = resnet_stage();
    let all: Vec<String> = m.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        all,
        torch_names()["resnet_stage"],
        "state_dict order and names as torchvision"
    );
    let sd: Vec<String> = m.state_dict().keys().cloned().collect();
    assert_eq!(sd, all);

    let params = names(m.named_parameters());
    assert_eq!(
        params[..3],
        ["0.conv1.weight", "0.bn1.weight", "0.bn1.bias"]
    );
    for want in [
        "1.downsample.0.weight",
        "1.downsample.1.weight",
        "1.downsample.1.bias",
    ] {
        assert!(params.iter().any(|n| n == want), "missing parameter {want}");
    }
    assert!(!params
        .iter()
        .any(|n| n.contains("running") || n.contains("num_batches")));
    let buffers = names(m.named_buffers());
    for want in [
        "0.bn1.running_mean",
        "0.bn2.num_batches_tracked",
        "1.downsample.1.running_mean",
        "1.downsample.1.running_var",
        "1.downsample.1.num_batches_tracked",
    ] {
        assert!(buffers.iter().any(|n| n == want), "missing buffer {want}");
    }
    assert!(buffers
        .iter()
        .all(|n| n.contains("running_") || n.ends_with("num_batches_tracked")));
    // Kinds agree with the two lists.
    for (n, t) in m.named_tensors() {
        assert_eq!(t.kind == TensorKind::Parameter, params.contains(&n), "{n}");
    }
}

#[test]
fn bottleneck_and_inception_names_as_torchvision() {
    let torch = torch_names();
    let b = Bottleneck::new(BlockConfig::new(8, 4).stride(2));
    assert_eq!(
        names(
            b.named_tensors()
                .into_iter()
                .map(|(n, t)| (n, t.tensor))
                .collect()
        ),
        torch["bottleneck_down"]
    );
    let inc = Inception::new(InceptionConfig::new(8, 4, 4, 8, 2, 4, 4));
    let all: Vec<String> = inc.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(all, torch["inception"]);
    assert!(all.contains(&"branch2.0.conv.weight".to_string()));
    assert!(all.contains(&"branch4.1.bn.running_var".to_string()));
    // branch4.0 is the max-pool: no tensors.
    assert!(!all.iter().any(|n| n.starts_with("branch4.0.")));
}

#[test]
fn layer_names() {
    let fc = Linear::new(LinearConfig::new(3, 2));
    assert_eq!(names(fc.named_parameters()), ["weight", "bias"]);
    assert_eq!(
        names(Linear::new(LinearConfig::new(3, 2).no_bias()).named_parameters()),
        ["weight"]
    );
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    assert_eq!(names(bn.named_parameters()), ["weight", "bias"]);
    assert_eq!(
        names(bn.named_buffers()),
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    let conv = BasicConv2d::new(Conv2dConfig::new(3, 4, 3));
    assert_eq!(
        names(
            conv.named_tensors()
                .into_iter()
                .map(|(n, t)| (n, t.tensor))
                .collect()
        ),
        [
            "conv.weight",
            "bn.weight",
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked"
        ]
    );
    // Parameter-free layers contribute no names, but keep their index.
    let seq = Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(1, 2, 3)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Flatten::default())
        .add(Dropout::new(0.5))
        .add(Linear::new(LinearConfig::new(2, 2)));
    assert_eq!(
        names(seq.named_parameters()),
        ["0.weight", "0.bias", "5.weight", "5.bias"]
    );
    // Nested Sequentials.
    let nested = Sequential::new().add(
        Sequential::new()
            .add(ReLU)
            .add(Linear::new(LinearConfig::new(2, 2))),
    );
    assert_eq!(names(nested.named_parameters()), ["0.1.weight", "0.1.bias"]);
    // Parameters are shared handles: writing through named_parameters changes the layer.
    let (_, w) = fc.named_parameters().remove(0);
    w.set_data(Tensor::<f32>::zeros([2, 3]).array());
    assert!(fc.weight.to_vec().iter().all(|&v| v == 0.0));
}

// --------------------------------------------------------------- counts

#[test]
fn parameter_counts_match_pytorch() {
    let torch = torch_counts();
    let ours: Vec<(&str, usize)> = vec![
        (
            "linear_784_100",
            Linear::new(LinearConfig::new(784, 100)).num_parameters(),
        ),
        (
            "linear_784_100_nobias",
            Linear::new(LinearConfig::new(784, 100).no_bias()).num_parameters(),
        ),
        (
            "conv2d_1_16_3",
            Conv2d::new(Conv2dConfig::new(1, 16, 3)).num_parameters(),
        ),
        (
            "conv2d_8_16_3_groups4_nobias",
            Conv2d::new(Conv2dConfig::new(8, 16, 3).groups(4).bias(false)).num_parameters(),
        ),
        (
            "conv_transpose2d_8_4_4",
            ConvTranspose2d::new(ConvTranspose2dConfig::new(8, 4, 4)).num_parameters(),
        ),
        (
            "batchnorm2d_64",
            BatchNorm2d::new(BatchNormConfig::new(64)).num_parameters(),
        ),
        (
            "basic_block_64_64",
            BasicBlock::new(BlockConfig::new(64, 64)).num_parameters(),
        ),
        (
            "basic_block_64_128_s2",
            BasicBlock::new(BlockConfig::new(64, 128).stride(2)).num_parameters(),
        ),
        (
            "bottleneck_256_64",
            Bottleneck::new(BlockConfig::new(256, 64)).num_parameters(),
        ),
        (
            "bottleneck_64_64_proj",
            Bottleneck::new(BlockConfig::new(64, 64)).num_parameters(),
        ),
        (
            "inception3a",
            Inception::new(InceptionConfig::new(192, 64, 96, 128, 16, 32, 32)).num_parameters(),
        ),
        (
            "inception_8_4_4_8_2_4_4",
            Inception::new(InceptionConfig::new(8, 4, 4, 8, 2, 4, 4)).num_parameters(),
        ),
    ];
    for (name, n) in &ours {
        assert_eq!(
            Some(n),
            torch.get(*name),
            "{name}: ours {n}, PyTorch {:?}",
            torch.get(*name)
        );
    }
    assert_eq!(ours.len(), torch.len(), "every PyTorch count is compared");
    // The figures the issue names, literally.
    assert_eq!(torch["linear_784_100"], 78_500);
    assert_eq!(torch["basic_block_64_64"], 73_984);
    assert_eq!(torch["bottleneck_256_64"], 70_400);
    assert_eq!(torch["inception3a"], 155_872);
}

// ----------------------------------------------------------- train / eval

/// A model with batch norms and dropout at several depths.
fn deep_model() -> Sequential {
    Sequential::new()
        .add(BasicBlock::new(BlockConfig::new(3, 4).stride(2)))
        .add(Inception::new(InceptionConfig::new(4, 2, 2, 2, 1, 2, 2)))
        .add(
            Sequential::new()
                .add(AdaptiveAvgPool2d::new(1))
                .add(Flatten::default())
                .add(Dropout::new(0.5)),
        )
        .add(Linear::new(LinearConfig::new(8, 3)))
}

fn buffer_values(m: &dyn Module) -> Vec<(String, Vec<f32>)> {
    m.named_buffers()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec()))
        .collect()
}

#[test]
fn train_and_eval_reach_every_child() {
    manual_seed(1);
    let m = deep_model();
    let x = Tensor::randn([4, 3, 6, 6]) * 2.0 + 1.0;
    let n_bn = m
        .named_buffers()
        .iter()
        .filter(|(n, _)| n.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(
        n_bn,
        3 + 6,
        "BasicBlock: bn1, bn2, downsample.1; Inception: 6 BasicConv2d"
    );

    // Eval: every batch norm uses (and keeps) its running statistics; dropout is off.
    m.eval();
    let before = buffer_values(&m);
    manual_seed(10);
    let a = m.forward(&x).to_vec();
    manual_seed(11);
    let b = m.forward(&x).to_vec();
    assert_eq!(a, b, "eval: deterministic whatever the seed (dropout off)");
    assert_eq!(
        buffer_values(&m),
        before,
        "eval: no running statistic moves"
    );

    // Train: every batch norm updates its statistics, dropout is on.
    m.train();
    manual_seed(10);
    let c = m.forward(&x).to_vec();
    manual_seed(11);
    let d = m.forward(&x).to_vec();
    assert_ne!(c, d, "train: dropout depends on the seed");
    for ((name, old), (_, new)) in before.iter().zip(buffer_values(&m)) {
        if name.ends_with("num_batches_tracked") {
            assert_eq!(new, vec![old[0] + 2.0], "{name}");
        } else {
            assert_ne!(&new, old, "{name} did not move in training");
        }
    }

    // Eval again: a child switched alone is in eval, its siblings stay in training.
    m.eval();
    let block = m.get(0).unwrap();
    block.train();
    let before = buffer_values(&m);
    m.forward(&x);
    for ((name, old), (_, new)) in before.iter().zip(buffer_values(&m)) {
        if name.starts_with("0.") {
            assert_ne!(&new, old, "{name}: the block is in training");
        } else {
            assert_eq!(&new, old, "{name}: the rest is in eval");
        }
    }
}

#[test]
fn batch_norm_eval_uses_running_stats() {
    let bn = BatchNorm2d::new(BatchNormConfig::new(2));
    bn.running_mean
        .set_data(Tensor::from_vec(vec![0.5f32, -1.0], [2]).array());
    bn.running_var
        .set_data(Tensor::from_vec(vec![4.0f32, 0.25], [2]).array());
    bn.weight
        .as_ref()
        .unwrap()
        .set_data(Tensor::from_vec(vec![2.0f32, -1.0], [2]).array());
    bn.bias
        .as_ref()
        .unwrap()
        .set_data(Tensor::from_vec(vec![0.1f32, 0.2], [2]).array());
    bn.eval();
    let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), [1, 2, 2, 2]);
    let y = bn.forward(&x).to_vec();
    for (i, (&xv, &yv)) in x.to_vec().iter().zip(&y).enumerate() {
        let c = i / 4;
        let (rm, rv, w, b) = [(0.5, 4.0, 2.0, 0.1), (-1.0, 0.25, -1.0, 0.2)][c];
        let want = (xv - rm) / (rv + 1e-5f32).sqrt() * w + b;
        assert!((yv - want).abs() < 1e-5, "element {i}: {yv} vs {want}");
    }
    assert_eq!(bn.num_batches_tracked.to_vec(), vec![0.0]);
}

#[test]
fn batch_norm_running_stats_use_unbiased_variance_and_momentum() {
    let bn = BatchNorm1d::new(BatchNormConfig::new(2));
    // Channel 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: 0, 0, 6, 2.
    let x = Tensor::from_vec(vec![1.0f32, 0.0, 2.0, 0.0, 3.0, 6.0, 4.0, 2.0], [4, 2]);
    let y = bn.forward(&x);
    let (m0, v0) = (2.5f64, 5.0 / 3.0);
    let (m1, v1) = (2.0f64, (4.0 + 4.0 + 16.0 + 0.0) / 3.0);
    let close = |a: &[f32], b: &[f64]| a.iter().zip(b).all(|(&x, &y)| (x as f64 - y).abs() < 1e-5);
    let rm = bn.running_mean.to_vec();
    let rv = bn.running_var.to_vec();
    assert!(close(&rm, &[0.1 * m0, 0.1 * m1]), "running_mean {rm:?}");
    assert!(
        close(&rv, &[0.9 + 0.1 * v0, 0.9 + 0.1 * v1]),
        "running_var {rv:?} (unbiased batch variance, momentum 0.1)"
    );
    assert_eq!(bn.num_batches_tracked.to_vec(), vec![1.0]);
    // The output itself is normalised with the biased variance.
    let y0: Vec<f32> = y.to_vec().iter().step_by(2).copied().collect();
    let want: Vec<f64> = [1.0, 2.0, 3.0, 4.0]
        .iter()
        .map(|v| (v - m0) / (1.25f64 + 1e-5).sqrt())
        .collect();
    assert!(close(&y0, &want), "{y0:?} vs {want:?}");
    // A second step moves 10% of the remaining way.
    bn.forward(&x);
    let rm = bn.running_mean.to_vec();
    assert!(
        close(&rm, &[0.9 * 0.1 * m0 + 0.1 * m0, 0.9 * 0.1 * m1 + 0.1 * m1]),
        "{rm:?}"
    );
    assert_eq!(bn.num_batches_tracked.to_vec(), vec![2.0]);

    // Another momentum, and a 4-D input (statistics over N, H, W).
    let bn = BatchNorm2d::new(BatchNormConfig::new(1).momentum(0.5));
    bn.forward(&Tensor::from_vec(vec![1.0f32, 3.0, 5.0, 7.0], [2, 1, 1, 2]));
    assert!(close(&bn.running_mean.to_vec(), &[0.5 * 4.0]));
    assert!(close(&bn.running_var.to_vec(), &[0.5 + 0.5 * 20.0 / 3.0]));
}

// ------------------------------------------------------------- freezing

#[test]
fn freeze_and_unfreeze() {
    manual_seed(2);
    let net = Sequential::new()
        .add(Linear::new(LinearConfig::new(4, 8)))
        .add(ReLU)
        .add(BatchNorm1d::new(BatchNormConfig::new(8)))
        .add(Linear::new(LinearConfig::new(8, 3)));
    let total = net.num_parameters();
    assert_eq!(total, 4 * 8 + 8 + 16 + 8 * 3 + 3);
    assert_eq!(net.num_trainable_parameters(), total);
    let x = Tensor::randn([5, 4]);

    // A gradient from before freezing is cleared by freeze.
    net.forward(&x).sum().backward();
    let first = net.get(0).unwrap();
    first.freeze();
    assert!(first
        .parameters()
        .iter()
        .all(|p| p.grad().is_none() && !p.requires_grad()));
    assert_eq!(net.num_trainable_parameters(), total - 40);
    assert_eq!(net.num_parameters(), total);

    net.zero_grad();
    net.forward(&x).sum().backward();
    for (n, p) in net.named_parameters() {
        assert_eq!(p.grad().is_some(), !n.starts_with("0."), "{n}");
    }

    // Freeze everything: no parameter gets a gradient, the input still does.
    net.freeze();
    assert_eq!(net.num_trainable_parameters(), 0);
    let xg = x.detach().requires_grad_();
    net.forward(&xg).sum().backward();
    assert!(net.parameters().iter().all(|p| p.grad().is_none()));
    assert!(xg.grad().is_some());

    net.unfreeze();
    assert_eq!(net.num_trainable_parameters(), total);
    net.forward(&x).sum().backward();
    assert!(net.parameters().iter().all(|p| p.grad().is_some()));
    // Buffers are never trainable.
    assert!(net.named_buffers().iter().all(|(_, b)| !b.requires_grad()));
}

// -------------------------------------------------------------- summary

/// The summary's row for `name` (the first column, indented).
fn row<'a>(s: &'a str, name: &str) -> &'a str {
    s.lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no row {name} in\n{s}"))
}

#[test]
fn summary_lists_layers_shapes_and_counts() {
    let net = Sequential::new()
        .add(Conv2d::new(Conv2dConfig::new(3, 8, 3).padding(1)))
        .add(BatchNorm2d::new(BatchNormConfig::new(8)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Flatten::default())
        .add(Linear::new(LinearConfig::new(8 * 4 * 4, 5)))
        .add(ReLU);
    let s = summary(&net, &[2, 3, 8, 8]);
    let expect = [
        ("0", "Conv2d(3, 8", "[2, 8, 8, 8]", Some("224")),
        ("1", "BatchNorm2d(8", "[2, 8, 8, 8]", Some("16")),
        ("2", "ReLU()", "[2, 8, 8, 8]", None),
        ("3", "MaxPool2d(", "[2, 8, 4, 4]", None),
        ("4", "Flatten(", "[2, 128]", None),
        (
            "5",
            "Linear(in_features=128, out_features=5",
            "[2, 5]",
            Some("645"),
        ),
        ("6", "ReLU()", "[2, 5]", None),
    ];
    for (name, desc, shape, params) in expect {
        let r = row(&s, name);
        assert!(r.contains(desc), "row {name} lacks {desc}:\n{s}");
        assert!(r.contains(shape), "row {name} should show {shape}:\n{s}");
        if let Some(p) = params {
            assert!(
                r.trim_end().ends_with(p),
                "row {name} should count {p}:\n{s}"
            );
        }
    }
    assert!(s.contains("Total params: 885"), "{s}");
    assert!(s.contains("-> output [2, 5]"), "{s}");
    net.get(0).unwrap().freeze();
    let s = summary(&net, &[2, 3, 8, 8]);
    assert!(s.contains("trainable 661, frozen 224"), "{s}");
}

#[test]
fn summary_of_nested_blocks() {
    let net = Sequential::new()
        .add(BasicBlock::new(BlockConfig::new(4, 8).stride(2)))
        .add(Inception::new(InceptionConfig::new(8, 4, 4, 8, 2, 4, 4)))
        .add(Bottleneck::new(BlockConfig::new(20, 5)));
    let before = buffer_values(&net);
    let s = summary(&net, &[1, 4, 6, 6]);
    assert_eq!(
        buffer_values(&net),
        before,
        "summary restores the running statistics"
    );
    let expect = [
        ("0", "[1, 8, 3, 3]"),
        ("0.conv1", "[1, 8, 3, 3]"),
        ("0.bn1", "[1, 8, 3, 3]"),
        ("0.conv2", "[1, 8, 3, 3]"),
        ("0.downsample", "[1, 8, 3, 3]"),
        ("0.downsample.0", "[1, 8, 3, 3]"),
        ("1", "[1, 20, 3, 3]"),
        ("1.branch1", "[1, 4, 3, 3]"),
        ("1.branch1.conv", "[1, 4, 3, 3]"),
        ("1.branch2", "[1, 8, 3, 3]"),
        ("1.branch2.0", "[1, 4, 3, 3]"),
        ("1.branch2.0.conv", "[1, 4, 3, 3]"),
        ("1.branch2.1", "[1, 8, 3, 3]"),
        ("1.branch3", "[1, 4, 3, 3]"),
        ("1.branch3.0", "[1, 2, 3, 3]"),
        ("1.branch4", "[1, 4, 3, 3]"),
        ("1.branch4.0", "[1, 8, 3, 3]"),
        ("1.branch4.1", "[1, 4, 3, 3]"),
        ("2", "[1, 20, 3, 3]"),
        ("2.conv1", "[1, 5, 3, 3]"),
        ("2.conv2", "[1, 5, 3, 3]"),
        ("2.conv3", "[1, 20, 3, 3]"),
        ("2.bn3", "[1, 20, 3, 3]"),
    ];
    for (name, shape) in expect {
        assert!(
            row(&s, name).contains(shape),
            "row {name} should show {shape}:\n{s}"
        );
    }
    assert!(
        row(&s, "0.conv1")
            .trim_end()
            .ends_with(&format!("{}", 8 * 4 * 9)),
        "{s}"
    );
    assert!(
        s.contains(&format!("Total params: {}", group(net.num_parameters()))),
        "{s}"
    );
}

fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ------------------------------------------------------- initialisation

fn stats(v: &[f32]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let max = v.iter().map(|x| x.abs() as f64).fold(0.0, f64::max);
    (mean, var.sqrt(), max)
}

fn assert_uniform(v: &[f32], bound: f64, what: &str) {
    let (mean, std, max) = stats(v);
    assert!(
        max <= bound * (1.0 + 1e-6),
        "{what}: |value| {max} beyond the bound {bound}"
    );
    assert!(
        max > 0.95 * bound,
        "{what}: values do not reach the bound {bound} (max {max})"
    );
    let want_std = bound / 3f64.sqrt();
    assert!(
        (std / want_std - 1.0).abs() < 0.05,
        "{what}: std {std} vs {want_std}"
    );
    assert!(mean.abs() < 0.05 * bound, "{what}: mean {mean}");
}

fn assert_normal(v: &[f32], want_std: f64, what: &str) {
    let (mean, std, max) = stats(v);
    assert!(
        (std / want_std - 1.0).abs() < 0.05,
        "{what}: std {std} vs {want_std}"
    );
    assert!(mean.abs() < 0.05 * want_std, "{what}: mean {mean}");
    assert!(
        max > 2.5 * want_std,
        "{what}: no tails (max {max}): not normal"
    );
}

#[test]
fn default_initialisation_is_pytorchs() {
    manual_seed(3);
    let fc = Linear::new(LinearConfig::new(400, 300));
    assert_uniform(&fc.weight.to_vec(), 1.0 / 20.0, "Linear weight");
    let b = fc.bias.as_ref().unwrap().to_vec();
    assert!(
        b.iter().all(|v| v.abs() <= 1.0 / 20.0) && b.iter().any(|&v| v != 0.0),
        "Linear bias in +-1/sqrt(fan_in)"
    );

    let conv = Conv2d::new(Conv2dConfig::new(16, 64, 3));
    assert_uniform(
        &conv.weight.to_vec(),
        1.0 / 12.0,
        "Conv2d weight (fan_in 16*9)",
    );
    assert!(conv
        .bias
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|v| v.abs() <= 1.0 / 12.0));

    let grouped = Conv2d::new(Conv2dConfig::new(32, 64, 3).groups(8));
    assert_uniform(
        &grouped.weight.to_vec(),
        1.0 / 6.0,
        "grouped Conv2d weight (fan_in 4*9)",
    );

    // PyTorch computes ConvTranspose2d's fan_in from the weight's dim 1 (out / groups).
    let up = ConvTranspose2d::new(ConvTranspose2dConfig::new(64, 16, 3));
    assert_eq!(up.weight.shape(), vec![64, 16, 3, 3]);
    assert_uniform(&up.weight.to_vec(), 1.0 / 12.0, "ConvTranspose2d weight");

    // Batch norm: weight 1, bias 0, mean 0, var 1, no batches.
    let bn = BatchNorm2d::new(BatchNormConfig::new(4));
    assert_eq!(bn.weight.as_ref().unwrap().to_vec(), vec![1.0; 4]);
    assert_eq!(bn.bias.as_ref().unwrap().to_vec(), vec![0.0; 4]);
    assert_eq!(bn.running_mean.to_vec(), vec![0.0; 4]);
    assert_eq!(bn.running_var.to_vec(), vec![1.0; 4]);
    assert_eq!(bn.num_batches_tracked.to_vec(), vec![0.0]);

    // ResNet convolutions: He normal, fan_out, no bias.
    let block = BasicBlock::new(BlockConfig::new(64, 64));
    assert!(block.conv1.bias.is_none());
    assert_normal(
        &block.conv1.weight.to_vec(),
        (2.0 / (64.0 * 9.0f64)).sqrt(),
        "BasicBlock conv1 (kaiming fan_out)",
    );

    // One seed fixes the initialisation.
    manual_seed(42);
    let a = Linear::new(LinearConfig::new(10, 10)).weight.to_vec();
    manual_seed(42);
    let b = Linear::new(LinearConfig::new(10, 10)).weight.to_vec();
    manual_seed(43);
    let c = Linear::new(LinearConfig::new(10, 10)).weight.to_vec();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn initialisers() {
    manual_seed(4);
    let w: Tensor = Tensor::zeros([256, 128, 3, 3]);
    let (fan_in, fan_out) = (128.0 * 9.0f64, 256.0 * 9.0f64);
    assert_eq!(init::fans(&w.shape()), (128 * 9, 256 * 9));

    init::kaiming_normal_(&w, FanMode::FanIn, Nonlinearity::Relu);
    assert_normal(&w.to_vec(), (2.0 / fan_in).sqrt(), "kaiming_normal fan_in");
    init::kaiming_normal_(&w, FanMode::FanOut, Nonlinearity::Relu);
    assert_normal(
        &w.to_vec(),
        (2.0 / fan_out).sqrt(),
        "kaiming_normal fan_out",
    );
    init::kaiming_uniform_(&w, FanMode::FanIn, Nonlinearity::Relu);
    assert_uniform(&w.to_vec(), (6.0 / fan_in).sqrt(), "kaiming_uniform");
    init::kaiming_normal_(&w, FanMode::FanIn, Nonlinearity::LeakyRelu(0.2));
    assert_normal(
        &w.to_vec(),
        (2.0 / (1.0 + 0.04) / fan_in).sqrt(),
        "kaiming_normal leaky",
    );

    let m: Tensor = Tensor::zeros([300, 200]);
    init::xavier_uniform_(&m, 1.0);
    assert_uniform(&m.to_vec(), (6.0 / 500.0f64).sqrt(), "xavier_uniform");
    init::xavier_normal_(&m, 1.0);
    assert_normal(&m.to_vec(), (2.0 / 500.0f64).sqrt(), "xavier_normal");
    init::xavier_uniform_(&m, init::calculate_gain(Nonlinearity::Tanh));
    assert_uniform(
        &m.to_vec(),
        5.0 / 3.0 * (6.0 / 500.0f64).sqrt(),
        "xavier_uniform tanh gain",
    );

    init::zeros_(&m);
    assert!(m.to_vec().iter().all(|&v| v == 0.0));
    init::ones_(&m);
    assert!(m.to_vec().iter().all(|&v| v == 1.0));
    init::constant_(&m, 0.25);
    assert!(m.to_vec().iter().all(|&v| v == 0.25));

    assert_eq!(init::calculate_gain(Nonlinearity::Linear), 1.0);
    assert_eq!(init::calculate_gain(Nonlinearity::Sigmoid), 1.0);
    assert_eq!(init::calculate_gain(Nonlinearity::Relu), 2f64.sqrt());
    assert!((init::calculate_gain(Nonlinearity::Tanh) - 5.0 / 3.0).abs() < 1e-12);
    assert!(
        (init::calculate_gain(Nonlinearity::LeakyRelu(0.01)) - (2.0 / 1.0001f64).sqrt()).abs()
            < 1e-12
    );

    // Initialisers keep the tensor a trainable leaf.
    let p = Tensor::<f32>::zeros([4, 4]).requires_grad_();
    init::kaiming_uniform_(&p, FanMode::FanIn, Nonlinearity::Relu);
    assert!(p.requires_grad() && p.is_leaf());
}
