//! The networks against torchvision: the same parameter counts and the same
//! state_dict keys in the same order (`scripts/torchvision_names.py` wrote
//! the fixture), output shapes, and a forward + backward at a small input in
//! which every parameter receives a finite, non-zero gradient.

use std::collections::HashMap;

use autograd::{manual_seed, Tensor};
use models::{
    cifar_resnet, resnet, vgg, DeepConvNet, DeepConvNetConfig, GoogLeNet, GoogLeNetConfig,
    ResNetConfig, ResNetKind, VggConfig, VggKind,
};
use nn::Module;

/// `name -> (parameter count, state_dict keys)` from the fixture.
fn torchvision() -> HashMap<String, (usize, Vec<String>)> {
    let mut out = HashMap::new();
    let mut current: Option<(String, usize, Vec<String>)> = None;
    for line in include_str!("fixtures/torchvision_names.txt").lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("net ") {
            if let Some((n, c, k)) = current.take() {
                out.insert(n, (c, k));
            }
            let parts: Vec<&str> = rest.split_whitespace().collect();
            current = Some((parts[0].to_string(), parts[1].parse().unwrap(), Vec::new()));
        } else if let Some((_, _, keys)) = current.as_mut() {
            keys.push(line.to_string());
        }
    }
    if let Some((n, c, k)) = current {
        out.insert(n, (c, k));
    }
    out
}

fn check_against_torchvision(name: &str, net: &dyn Module) {
    let tv = torchvision();
    let (count, keys) = tv
        .get(name)
        .unwrap_or_else(|| panic!("fixture has no {name}"));
    assert_eq!(net.num_parameters(), *count, "{name}: parameter count");
    let ours: Vec<String> = net.state_dict().keys().cloned().collect();
    assert_eq!(ours.len(), keys.len(), "{name}: number of state_dict keys");
    for (i, (a, b)) in ours.iter().zip(keys).enumerate() {
        assert_eq!(a, b, "{name}: state_dict key {i}");
    }
}

#[test]
fn resnets_match_torchvision() {
    for (name, kind) in [
        ("resnet18", ResNetKind::ResNet18),
        ("resnet34", ResNetKind::ResNet34),
        ("resnet50", ResNetKind::ResNet50),
        ("resnet101", ResNetKind::ResNet101),
        ("resnet152", ResNetKind::ResNet152),
    ] {
        check_against_torchvision(name, &resnet(ResNetConfig::new(kind)));
    }
}

#[test]
fn vggs_match_torchvision() {
    for (name, kind, bn) in [
        ("vgg11", VggKind::Vgg11, false),
        ("vgg11_bn", VggKind::Vgg11, true),
        ("vgg13", VggKind::Vgg13, false),
        ("vgg13_bn", VggKind::Vgg13, true),
        ("vgg16", VggKind::Vgg16, false),
        ("vgg16_bn", VggKind::Vgg16, true),
        ("vgg19", VggKind::Vgg19, false),
        ("vgg19_bn", VggKind::Vgg19, true),
    ] {
        check_against_torchvision(name, &vgg(VggConfig::new(kind, bn)));
    }
}

#[test]
fn googlenets_match_torchvision() {
    check_against_torchvision("googlenet_aux", &GoogLeNet::new(GoogLeNetConfig::default()));
    check_against_torchvision(
        "googlenet",
        &GoogLeNet::new(GoogLeNetConfig::default().aux_logits(false)),
    );
}

#[test]
fn deep_convnet_is_the_books_network() {
    let net = DeepConvNet::new(DeepConvNetConfig::default());
    assert_eq!(net.num_parameters(), 123_552);
    let shapes: Vec<(String, Vec<usize>)> = net
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    let want: Vec<(&str, Vec<usize>)> = vec![
        ("conv1.weight", vec![16, 1, 3, 3]),
        ("conv1.bias", vec![16]),
        ("conv2.weight", vec![16, 16, 3, 3]),
        ("conv2.bias", vec![16]),
        ("conv3.weight", vec![32, 16, 3, 3]),
        ("conv3.bias", vec![32]),
        ("conv4.weight", vec![32, 32, 3, 3]),
        ("conv4.bias", vec![32]),
        ("conv5.weight", vec![64, 32, 3, 3]),
        ("conv5.bias", vec![64]),
        ("conv6.weight", vec![64, 64, 3, 3]),
        ("conv6.bias", vec![64]),
        ("fc1.weight", vec![50, 1024]),
        ("fc1.bias", vec![50]),
        ("fc2.weight", vec![10, 50]),
        ("fc2.bias", vec![10]),
    ];
    assert_eq!(shapes.len(), want.len());
    for ((n, s), (wn, ws)) in shapes.iter().zip(&want) {
        assert_eq!((n.as_str(), s), (*wn, ws));
    }
    // He initialisation: std sqrt(2 / fan_in), zero biases.
    let w = net.conv6.weight.to_vec();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!(
        (std - (2.0f32 / 576.0).sqrt()).abs() < 0.004,
        "conv6 std {std}"
    );
    assert!(net
        .fc1
        .bias
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&b| b == 0.0));
    let s = nn::summary(&net, &[1, 1, 28, 28]);
    for needle in [
        "[1, 16, 28, 28]",
        "[1, 32, 16, 16]",
        "[1, 64, 8, 8]",
        "[1, 10]",
        "123,552",
    ] {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
}

#[test]
fn cifar_resnets_have_the_papers_size() {
    // 6n + 2 layers: n blocks per stage of 16/32/64 channels.
    let r20 = cifar_resnet(20, 10, 3);
    assert_eq!(
        r20.layers.iter().map(|l| l.len()).collect::<Vec<_>>(),
        vec![3, 3, 3]
    );
    assert!(
        (260_000..280_000).contains(&r20.num_parameters()),
        "{}",
        r20.num_parameters()
    );
    for (depth, n) in [(32, 5), (44, 7), (56, 9), (110, 18)] {
        let r = cifar_resnet(depth, 10, 3);
        assert_eq!(r.layers[0].len(), n);
        let convs = r
            .named_parameters()
            .iter()
            .filter(|(name, p)| p.ndim() == 4 && !name.contains("downsample"))
            .count();
        assert_eq!(
            convs + 1,
            depth,
            "ResNet-{depth}: weighted layers (convs + fc)"
        );
    }
}

/// Every parameter gets a finite gradient that is not all zeros.
fn assert_all_params_learn(name: &str, net: &dyn Module, loss: Tensor) {
    assert!(loss.item().is_finite(), "{name}: loss {}", loss.item());
    loss.backward();
    for (pname, p) in net.named_parameters() {
        let g = p
            .grad()
            .unwrap_or_else(|| panic!("{name}: {pname} got no gradient"));
        let g = g.to_vec();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: {pname} has a non-finite gradient"
        );
        assert!(
            g.iter().any(|&v| v != 0.0),
            "{name}: {pname} has an all-zero gradient"
        );
    }
}

fn labels(n: usize, classes: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7 + 1) % classes).collect()
}

#[test]
fn deep_convnet_forward_backward() {
    manual_seed(1);
    let net = DeepConvNet::new(DeepConvNetConfig::default());
    let y = net.forward(&Tensor::randn([2, 1, 28, 28]));
    assert_eq!(y.shape(), vec![2, 10]);
    // Without dropout every logit carries gradient.
    net.eval();
    let y = net.forward(&Tensor::randn([2, 1, 28, 28]));
    assert_all_params_learn("DeepConvNet", &net, y.cross_entropy(&labels(2, 10)));
}

#[test]
fn resnets_forward_backward() {
    manual_seed(2);
    for kind in [
        ResNetKind::ResNet18,
        ResNetKind::ResNet34,
        ResNetKind::ResNet50,
        ResNetKind::ResNet101,
        ResNetKind::ResNet152,
    ] {
        let net = resnet(ResNetConfig::new(kind).num_classes(10));
        let y = net.forward(&Tensor::randn([2, 3, 32, 32]));
        assert_eq!(y.shape(), vec![2, 10]);
        assert_all_params_learn(&format!("{kind:?}"), &net, y.cross_entropy(&labels(2, 10)));
    }
    for depth in [20, 32, 44, 56, 110] {
        let net = cifar_resnet(depth, 10, 1);
        let y = net.forward(&Tensor::randn([2, 1, 32, 32]));
        assert_eq!(y.shape(), vec![2, 10]);
        assert_all_params_learn(
            &format!("ResNet-{depth}"),
            &net,
            y.cross_entropy(&labels(2, 10)),
        );
    }
    let small = resnet(
        ResNetConfig::new(ResNetKind::ResNet18)
            .num_classes(10)
            .small_input_stem(true),
    );
    assert!(small.maxpool.is_none());
    assert_eq!(
        small.forward(&Tensor::randn([2, 3, 32, 32])).shape(),
        vec![2, 10]
    );
}

#[test]
fn vggs_forward_backward() {
    manual_seed(3);
    // torchvision's full classifier once (its 120 M weights dominate the time)...
    let full = vgg(VggConfig::new(VggKind::Vgg11, false).num_classes(10));
    full.eval(); // dropout off, so every classifier weight sees gradient
    let y = full.forward(&Tensor::randn([2, 3, 32, 32]));
    assert_eq!(y.shape(), vec![2, 10]);
    assert_all_params_learn("VGG-11", &full, y.cross_entropy(&labels(2, 10)));
    drop(full);
    // ...and every depth, with and without batch norm (in training mode), with the compact head.
    for kind in [
        VggKind::Vgg11,
        VggKind::Vgg13,
        VggKind::Vgg16,
        VggKind::Vgg19,
    ] {
        for bn in [false, true] {
            let net = vgg(VggConfig::new(kind, bn)
                .num_classes(10)
                .compact_head()
                .in_channels(1));
            let y = net.forward(&Tensor::randn([2, 1, 32, 32]));
            assert_eq!(y.shape(), vec![2, 10]);
            assert_all_params_learn(
                &format!("{kind:?} bn={bn}"),
                &net,
                y.cross_entropy(&labels(2, 10)),
            );
        }
    }
}

#[test]
fn googlenet_forward_backward_with_aux_heads() {
    manual_seed(4);
    let net = GoogLeNet::new(GoogLeNetConfig::default().num_classes(10));
    let x = Tensor::randn([2, 3, 64, 64]);
    let out = net.forward_train(&x);
    let t = labels(2, 10);
    // torchvision's training loss: main + 0.3 * each auxiliary loss.
    let loss = out.logits.cross_entropy(&t)
        + out.aux1.unwrap().cross_entropy(&t) * 0.3
        + out.aux2.unwrap().cross_entropy(&t) * 0.3;
    // Dropout zeroes whole rows of the small heads at batch 2: check in eval-mode dropout.
    net.dropout.eval();
    for aux in [net.aux1.as_ref().unwrap(), net.aux2.as_ref().unwrap()] {
        aux.dropout.eval();
    }
    drop(loss);
    let out = net.forward_train(&x);
    let loss = out.logits.cross_entropy(&t)
        + out.aux1.unwrap().cross_entropy(&t) * 0.3
        + out.aux2.unwrap().cross_entropy(&t) * 0.3;
    assert_all_params_learn("GoogLeNet", &net, loss);
    // In eval mode the auxiliary heads are skipped.
    net.eval();
    let out = net.forward_train(&x);
    assert!(out.aux1.is_none() && out.aux2.is_none());
    assert_eq!(out.logits.shape(), vec![2, 10]);
}
