//! Every layer gradient-checked in f64 with `nn::gradcheck_module`: the
//! input's gradient and every parameter's gradient against central
//! differences, at small sizes. A few layers are also checked over random
//! shapes and options with proptest.

use autograd::{manual_seed, GradcheckOptions, Tensor};
use nn::{
    gradcheck_module, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BasicBlock, BasicConv2d,
    BatchNorm1d, BatchNorm2d, BatchNormConfig, BlockConfig, Bottleneck, Conv2d, Conv2dConfig,
    ConvTranspose2d, ConvTranspose2dConfig, Dropout, Flatten, Identity, Inception, InceptionConfig,
    LeakyReLU, Linear, LinearConfig, LogSoftmax, MaxPool2d, Module, PoolConfig, ReLU, Sequential,
    Sigmoid, Softmax, Tanh, ELU,
};
use proptest::prelude::*;

type T64 = Tensor<f64>;

fn check(m: &dyn Module<f64>, x: &T64) {
    check_with(m, x, &GradcheckOptions::default());
}

fn check_with(m: &dyn Module<f64>, x: &T64, opts: &GradcheckOptions) {
    if let Err(e) = gradcheck_module(m, x, opts) {
        panic!("{}: input {:?}: {e}", m.describe(), x.shape());
    }
}

/// Every parameter of `m` received a gradient in the check (so "all parameter gradients" is not vacuous).
fn assert_all_params_have_grads(m: &dyn Module<f64>) {
    for (n, p) in m.named_parameters() {
        assert!(
            p.grad().is_some(),
            "{}: parameter {n} got no gradient",
            m.describe()
        );
    }
}

/// Random values pushed away from zero (|v| >= 0.1): no input sits within a
/// finite-difference step of a ReLU kink.
fn away_from_zero(shape: &[usize]) -> T64 {
    let x = T64::randn(shape.to_vec());
    T64::from_array(
        x.to_array()
            .mapv(|v| if v >= 0.0 { v + 0.1 } else { v - 0.1 }),
    )
}

/// Distinct values (a permutation of 0.1 * k, centred): no ties within a max-pool window.
fn distinct(shape: &[usize]) -> T64 {
    let n: usize = shape.iter().product();
    // 7919 is prime, so k -> 7919 k mod n is a permutation when n is not a multiple of it.
    assert!(!n.is_multiple_of(7919));
    let vals: Vec<f64> = (0..n)
        .map(|k| ((k * 7919) % n) as f64 * 0.1 - n as f64 * 0.05)
        .collect();
    T64::from_vec(vals, shape.to_vec())
}

/// Sets a batch norm's weight, bias and running statistics to non-trivial values.
fn randomize_bn(bn: &nn::BatchNorm<f64>) {
    let c = bn.running_mean.numel();
    bn.weight
        .as_ref()
        .unwrap()
        .set_data(T64::uniform([c], 0.5, 1.5).array());
    bn.bias
        .as_ref()
        .unwrap()
        .set_data(T64::uniform([c], -0.5, 0.5).array());
    bn.running_mean
        .set_data(T64::uniform([c], -0.5, 0.5).array());
    bn.running_var.set_data(T64::uniform([c], 0.5, 2.0).array());
}

/// Randomizes every batch norm reachable in `m` (found by their buffer names).
fn randomize_all_bn(m: &dyn Module<f64>) {
    for (name, t) in m.named_tensors() {
        let c = t.tensor.numel();
        let v = match t.name.as_str() {
            "running_mean" => T64::uniform([c], -0.5, 0.5),
            "running_var" => T64::uniform([c], 0.5, 2.0),
            "weight" if name.contains("bn") || name.ends_with("downsample.1.weight") => {
                T64::uniform([c], 0.5, 1.5)
            }
            "bias" if name.contains("bn") || name.ends_with("downsample.1.bias") => {
                T64::uniform([c], -0.5, 0.5)
            }
            _ => continue,
        };
        t.tensor.set_data(v.array());
    }
}

// ---------------------------------------------------------------- Linear

#[test]
fn linear_with_bias_2d() {
    manual_seed(1);
    let fc = Linear::<f64>::build(LinearConfig::new(5, 3));
    check(&fc, &T64::randn([4, 5]));
    assert_all_params_have_grads(&fc);
}

#[test]
fn linear_without_bias_2d() {
    manual_seed(2);
    let fc = Linear::<f64>::build(LinearConfig::new(5, 3).no_bias());
    assert!(fc.bias.is_none());
    check(&fc, &T64::randn([4, 5]));
    assert_all_params_have_grads(&fc);
}

#[test]
fn linear_3d_input() {
    manual_seed(3);
    for cfg in [LinearConfig::new(4, 3), LinearConfig::new(4, 3).no_bias()] {
        let fc = Linear::<f64>::build(cfg);
        let x = T64::randn([2, 3, 4]);
        assert_eq!(fc.forward(&x).shape(), vec![2, 3, 3]);
        check(&fc, &x);
        assert_all_params_have_grads(&fc);
    }
}

// ---------------------------------------------------------------- Conv2d

#[test]
fn conv2d_options() {
    manual_seed(4);
    let cases = [
        Conv2dConfig::new(2, 3, 3),
        Conv2dConfig::new(2, 3, 3).bias(false),
        Conv2dConfig::new(2, 3, 3).padding(1),
        Conv2dConfig::new(2, 4, 3).stride(2).padding(1),
        Conv2dConfig::new(2, 2, 3).dilation(2).padding(2),
        Conv2dConfig::new(4, 6, 3).groups(2).padding(1),
        Conv2dConfig::new(4, 4, 3).groups(4).padding(1).bias(false), // depthwise
        Conv2dConfig::new(2, 3, [3, 2])
            .stride([2, 1])
            .padding([1, 0]),
        Conv2dConfig::new(3, 2, 1),
    ];
    for cfg in cases {
        let conv = Conv2d::<f64>::build(cfg);
        check(&conv, &T64::randn([2, cfg.in_channels, 5, 5]));
        assert_all_params_have_grads(&conv);
        assert_eq!(conv.bias.is_some(), cfg.bias);
    }
}

// ------------------------------------------------------- ConvTranspose2d

#[test]
fn conv_transpose2d_options() {
    manual_seed(5);
    let cases = [
        ConvTranspose2dConfig::new(2, 3, 3),
        ConvTranspose2dConfig::new(2, 3, 3).bias(false),
        ConvTranspose2dConfig::new(3, 2, 4).stride(2).padding(1),
        ConvTranspose2dConfig::new(2, 2, 3)
            .stride(2)
            .padding(1)
            .output_padding(1),
        ConvTranspose2dConfig::new(4, 4, 3).groups(2).dilation(2),
    ];
    for cfg in cases {
        let up = ConvTranspose2d::<f64>::build(cfg);
        check(&up, &T64::randn([2, cfg.in_channels, 3, 3]));
        assert_all_params_have_grads(&up);
    }
}

// ------------------------------------------------------------ BatchNorm

#[test]
fn batch_norm1d_train_and_eval() {
    manual_seed(6);
    for shape in [vec![5, 3], vec![3, 3, 4]] {
        let bn = BatchNorm1d::<f64>::build(BatchNormConfig::new(3));
        randomize_bn(&bn);
        let x = T64::randn(shape.clone()) * 2.0 + 0.5;
        // Training: batch statistics.
        check(&bn, &x);
        assert_all_params_have_grads(&bn);
        // Evaluation: the (non-trivial) running statistics.
        bn.eval();
        bn.zero_grad();
        check(&bn, &x);
        assert_all_params_have_grads(&bn);
    }
}

#[test]
fn batch_norm2d_train_and_eval() {
    manual_seed(7);
    let bn = BatchNorm2d::<f64>::build(BatchNormConfig::new(3));
    randomize_bn(&bn);
    let x = T64::randn([2, 3, 3, 3]) * 1.5 - 0.3;
    check(&bn, &x);
    assert_all_params_have_grads(&bn);
    bn.eval();
    bn.zero_grad();
    check(&bn, &x);
    // GoogLeNet's eps and a different momentum change nothing in the gradients' correctness.
    let bn = BatchNorm2d::<f64>::build(BatchNormConfig::new(2).eps(1e-3).momentum(0.3));
    randomize_bn(&bn);
    check(&bn, &T64::randn([3, 2, 2, 2]));
    bn.eval();
    check(&bn, &T64::randn([3, 2, 2, 2]));
}

#[test]
fn batch_norm_eval_uses_running_stats_in_the_gradient() {
    // In eval mode the layer is affine in x: d out / d x = weight / sqrt(running_var + eps).
    manual_seed(8);
    let bn = BatchNorm2d::<f64>::build(BatchNormConfig::new(2));
    randomize_bn(&bn);
    bn.eval();
    let x = T64::randn([2, 2, 2, 2]).requires_grad_();
    bn.forward(&x).sum().backward();
    let (w, rv) = (
        bn.weight.as_ref().unwrap().to_vec(),
        bn.running_var.to_vec(),
    );
    let g = x.grad().unwrap().to_vec();
    for (i, gi) in g.iter().enumerate() {
        let c = (i / 4) % 2;
        let want = w[c] / (rv[c] + 1e-5).sqrt();
        assert!((gi - want).abs() < 1e-12, "element {i}: {gi} vs {want}");
    }
}

// -------------------------------------------------------------- Dropout

#[test]
fn dropout_with_fixed_mask() {
    manual_seed(9);
    for p in [0.0, 0.3, 0.5, 0.9] {
        let d = Dropout::<f64>::build(p);
        check(&d, &T64::randn([3, 7]));
    }
    // Evaluation: the identity.
    let d = Dropout::<f64>::build(0.5);
    d.eval();
    check(&d, &T64::randn([3, 7]));
}

// -------------------------------------------------------------- pooling

#[test]
fn max_pool2d() {
    let cases = [
        PoolConfig::new(2),
        PoolConfig::new(3).stride(1).padding(1),
        PoolConfig::new(3).stride(2).padding(1).ceil_mode(true),
        PoolConfig::new(2).dilation(2),
        PoolConfig::new([2, 3]).stride([1, 2]),
    ];
    for cfg in cases {
        check(&MaxPool2d::new(cfg), &distinct(&[2, 2, 5, 5]));
    }
}

#[test]
fn avg_pool2d() {
    manual_seed(10);
    let cases = [
        PoolConfig::new(2),
        PoolConfig::new(3).stride(2).padding(1),
        PoolConfig::new(3).stride(2).padding(1).ceil_mode(true),
        PoolConfig::new([2, 3]).stride([1, 2]),
    ];
    for cfg in cases {
        check(&AvgPool2d::new(cfg), &T64::randn([2, 2, 5, 5]));
    }
}

#[test]
fn adaptive_pools() {
    manual_seed(11);
    for out in [[1, 1], [2, 2], [3, 2], [5, 5]] {
        check(&AdaptiveAvgPool2d::new(out), &T64::randn([2, 2, 5, 4]));
        check(&AdaptiveMaxPool2d::new(out), &distinct(&[2, 2, 5, 4]));
    }
}

// -------------------------------------------------- parameter-free layers

#[test]
fn flatten_and_identity() {
    manual_seed(12);
    let x = T64::randn([2, 3, 2, 2]);
    check(&Flatten::default(), &x);
    check(&Flatten::new(2, 3), &x);
    check(&Flatten::new(0, -1), &x);
    check(&Identity::new(), &x);
}

#[test]
fn every_activation() {
    manual_seed(13);
    let x = away_from_zero(&[3, 5]);
    check(&ReLU::new(), &x);
    check(&LeakyReLU::default(), &x);
    check(&LeakyReLU::new(0.2), &x);
    check(&ELU::default(), &x);
    check(&ELU::new(0.5), &x);
    check(&Sigmoid::new(), &x);
    check(&Tanh::new(), &x);
    check(&Softmax::new(1), &x);
    check(&Softmax::new(0), &x);
    check(&Softmax::new(-1), &x);
    check(&LogSoftmax::new(1), &x);
    check(&LogSoftmax::new(0), &x);
    // 4-D input, softmax over channels.
    let x4 = away_from_zero(&[2, 3, 2, 2]);
    check(&ReLU::new(), &x4);
    check(&Softmax::new(1), &x4);
    check(&LogSoftmax::new(1), &x4);
}

// ----------------------------------------------------------- containers

#[test]
fn sequential_mlp_and_cnn() {
    manual_seed(14);
    let mlp = Sequential::<f64>::build()
        .add(Linear::build(LinearConfig::new(4, 6)))
        .add(Tanh)
        .add(Linear::build(LinearConfig::new(6, 3)))
        .add(LogSoftmax::new(1));
    check(&mlp, &T64::randn([3, 4]));
    assert_all_params_have_grads(&mlp);

    let cnn = Sequential::<f64>::build()
        .add(Conv2d::build(Conv2dConfig::new(2, 3, 3).padding(1)))
        .add(BatchNorm2d::build(BatchNormConfig::new(3)))
        .add(ReLU)
        .add(MaxPool2d::new(PoolConfig::new(2)))
        .add(Flatten::default())
        .add(Dropout::build(0.25))
        .add(Linear::build(LinearConfig::new(3 * 2 * 2, 2)));
    let x = T64::randn([2, 2, 4, 4]);
    check(&cnn, &x);
    assert_all_params_have_grads(&cnn);
    cnn.eval();
    cnn.zero_grad();
    check(&cnn, &x);
}

#[test]
fn basic_conv2d() {
    manual_seed(15);
    let b = BasicConv2d::<f64>::build(Conv2dConfig::new(2, 3, 3).padding(1));
    randomize_all_bn(&b);
    let x = T64::randn([2, 2, 3, 3]);
    check(&b, &x);
    assert_all_params_have_grads(&b);
    b.eval();
    b.zero_grad();
    check(&b, &x);
}

#[test]
fn inception_small() {
    manual_seed(16);
    let block = Inception::<f64>::build(InceptionConfig::new(3, 2, 2, 3, 1, 2, 2));
    randomize_all_bn(&block);
    let x = T64::randn([2, 3, 3, 3]);
    assert_eq!(block.forward(&x).shape(), vec![2, 9, 3, 3]);
    check(&block, &x);
    assert_all_params_have_grads(&block);
    block.eval();
    block.zero_grad();
    check(&block, &x);
}

#[test]
fn basic_block_identity_and_projection() {
    manual_seed(17);
    // Identity shortcut.
    let b = BasicBlock::<f64>::build(BlockConfig::new(3, 3));
    assert!(b.downsample.is_none());
    randomize_all_bn(&b);
    let x = T64::randn([2, 3, 4, 4]);
    check(&b, &x);
    assert_all_params_have_grads(&b);
    b.eval();
    b.zero_grad();
    check(&b, &x);
    // Projection with stride 2.
    let b = BasicBlock::<f64>::build(BlockConfig::new(2, 4).stride(2));
    assert!(b.downsample.is_some());
    randomize_all_bn(&b);
    let x = T64::randn([2, 2, 5, 5]);
    assert_eq!(b.forward(&x).shape(), vec![2, 4, 3, 3]);
    check(&b, &x);
    assert_all_params_have_grads(&b);
    b.eval();
    b.zero_grad();
    check(&b, &x);
}

#[test]
fn bottleneck_identity_and_projection() {
    manual_seed(18);
    // Identity shortcut: 8 = 2 * 4 channels.
    let b = Bottleneck::<f64>::build(BlockConfig::new(8, 2));
    assert!(b.downsample.is_none());
    randomize_all_bn(&b);
    let x = T64::randn([2, 8, 3, 3]);
    check(&b, &x);
    assert_all_params_have_grads(&b);
    b.eval();
    b.zero_grad();
    check(&b, &x);
    // Projection with stride 2.
    let b = Bottleneck::<f64>::build(BlockConfig::new(3, 2).stride(2));
    assert!(b.downsample.is_some());
    randomize_all_bn(&b);
    let x = T64::randn([2, 3, 4, 4]);
    assert_eq!(b.forward(&x).shape(), vec![2, 8, 2, 2]);
    check(&b, &x);
    assert_all_params_have_grads(&b);
    // Grouped (ResNeXt-style) 3x3.
    let b = Bottleneck::<f64>::build(BlockConfig::new(4, 2).groups(2, 64));
    randomize_all_bn(&b);
    check(&b, &T64::randn([2, 4, 3, 3]));
}

#[test]
fn frozen_parameters_are_skipped() {
    // A frozen parameter has no gradient and is not checked; the rest still are.
    manual_seed(19);
    let net = Sequential::<f64>::build()
        .add(Linear::build(LinearConfig::new(3, 4)))
        .add(Tanh)
        .add(Linear::build(LinearConfig::new(4, 2)));
    net.get(0).unwrap().freeze();
    check(&net, &T64::randn([2, 3]));
    let params = net.named_parameters();
    assert!(params[0].1.grad().is_none() && params[1].1.grad().is_none());
    assert!(params[2].1.grad().is_some() && params[3].1.grad().is_some());
}

// ------------------------------------------------------------ proptest

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn prop_linear(seed in 0u64..1000, batch in 1usize..4, inf in 1usize..5, outf in 1usize..5, bias: bool, three_d: bool) {
        manual_seed(seed);
        let cfg = LinearConfig::new(inf, outf);
        let fc = Linear::<f64>::build(if bias { cfg } else { cfg.no_bias() });
        let x = if three_d { T64::randn([batch, 2, inf]) } else { T64::randn([batch, inf]) };
        prop_assert!(gradcheck_module(&fc, &x, &GradcheckOptions::default()).is_ok());
    }

    #[test]
    fn prop_conv2d(
        seed in 0u64..1000,
        groups in 1usize..3,
        cin_per in 1usize..3,
        cout_per in 1usize..3,
        k in 1usize..4,
        stride in 1usize..3,
        padding in 0usize..2,
        dilation in 1usize..3,
        h in 4usize..7,
        w in 4usize..7,
        bias: bool,
    ) {
        let span = dilation * (k - 1) + 1;
        prop_assume!(h + 2 * padding >= span && w + 2 * padding >= span);
        manual_seed(seed);
        let cfg = Conv2dConfig::new(groups * cin_per, groups * cout_per, k)
            .stride(stride).padding(padding).dilation(dilation).groups(groups).bias(bias);
        let conv = Conv2d::<f64>::build(cfg);
        let x = T64::randn([2, cfg.in_channels, h, w]);
        let r = gradcheck_module(&conv, &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "{:?}: {:?}", cfg, r);
    }

    #[test]
    fn prop_batch_norm(seed in 0u64..1000, n in 2usize..5, c in 1usize..4, l in 1usize..4, rank in 2usize..5, training: bool) {
        manual_seed(seed);
        let x = match rank {
            2 => T64::randn([n, c]),
            3 => T64::randn([n, c, l]),
            _ => T64::randn([n, c, l, 2]),
        };
        let bn: Box<dyn Module<f64>> = if rank == 4 {
            let bn = BatchNorm2d::<f64>::build(BatchNormConfig::new(c));
            randomize_bn(&bn);
            Box::new(bn)
        } else {
            let bn = BatchNorm1d::<f64>::build(BatchNormConfig::new(c));
            randomize_bn(&bn);
            Box::new(bn)
        };
        bn.set_training(training);
        let r = gradcheck_module(bn.as_ref(), &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn prop_pools(kh in 1usize..4, kw in 1usize..4, stride in 1usize..3, pad in 0usize..2, ceil: bool, h in 3usize..7, w in 3usize..7) {
        prop_assume!(2 * pad <= kh.min(kw) && h >= kh && w >= kw);
        let cfg = PoolConfig::new([kh, kw]).stride(stride).padding(pad).ceil_mode(ceil);
        let x = distinct(&[1, 2, h, w]);
        let r = gradcheck_module(&MaxPool2d::new(cfg), &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "max {:?}: {:?}", cfg, r);
        let r = gradcheck_module(&AvgPool2d::new(cfg), &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "avg {:?}: {:?}", cfg, r);
        let r = gradcheck_module(&AdaptiveAvgPool2d::new([kh, kw]), &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "adaptive avg {:?}: {:?}", [kh, kw], r);
        let r = gradcheck_module(&AdaptiveMaxPool2d::new([kh, kw]), &x, &GradcheckOptions::default());
        prop_assert!(r.is_ok(), "adaptive max {:?}: {:?}", [kh, kw], r);
    }
}

// ------------------------------------------------------ the check itself

/// `x.detach() * x`: autograd sees `x`, the true derivative is `2x`.
#[derive(Module)]
struct WrongGrad {}

impl Module<f64> for WrongGrad {
    fn forward_impl(&self, x: &T64) -> T64 {
        x.detach() * x
    }
}

#[test]
fn gradcheck_module_catches_a_wrong_gradient() {
    manual_seed(20);
    let err = gradcheck_module(
        &WrongGrad {},
        &away_from_zero(&[2, 3]),
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("input 0"), "{err}");
    // A wrong parameter gradient is caught too: a frozen-in-the-graph weight.
    #[derive(Module)]
    struct DetachedWeight {
        fc: Linear<f64>,
    }
    impl Module<f64> for DetachedWeight {
        fn forward_impl(&self, x: &T64) -> T64 {
            x.matmul(&self.fc.weight.t()) + x.matmul(&self.fc.weight.detach().t())
        }
    }
    let m = DetachedWeight {
        fc: Linear::build(LinearConfig::new(3, 2).no_bias()),
    };
    let err = gradcheck_module(&m, &T64::randn([2, 3]), &GradcheckOptions::default()).unwrap_err();
    assert!(err.to_string().contains("input 1"), "{err}");
}
