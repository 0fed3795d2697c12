//! The identity shortcut of the residual blocks passes the upstream gradient
//! to the block's input unchanged.
//!
//! Exact test: with the residual branch isolated (last batch norm's weight
//! AND bias zero, so the branch outputs exactly 0 and sends exactly 0 back)
//! and an input > 0 (so the final ReLU passes everything), `x.grad` equals
//! the upstream gradient bit for bit.
//!
//! General test: with a normal branch, `x.grad == upstream * relu_mask +
//! (gradient through the branch alone)`, the branch's gradient computed
//! separately from `block.residual(x)`.

use autograd::{grad, manual_seed, Float, GradOptions, Tensor};
use nn::{init, BasicBlock, BlockConfig, Bottleneck, Module};

/// The two identity-shortcut blocks, through one interface.
trait Block<T: Float>: Module<T> {
    fn residual_branch(&self, x: &Tensor<T>) -> Tensor<T>;
    fn last_bn(&self) -> &nn::BatchNorm<T>;
}

impl<T: Float> Block<T> for BasicBlock<T> {
    fn residual_branch(&self, x: &Tensor<T>) -> Tensor<T> {
        self.residual(x)
    }
    fn last_bn(&self) -> &nn::BatchNorm<T> {
        &self.bn2
    }
}

impl<T: Float> Block<T> for Bottleneck<T> {
    fn residual_branch(&self, x: &Tensor<T>) -> Tensor<T> {
        self.residual(x)
    }
    fn last_bn(&self) -> &nn::BatchNorm<T> {
        &self.bn3
    }
}

fn bits<T: Float>(t: &Tensor<T>) -> Vec<u64> {
    t.to_vec().iter().map(|v| v.as_f64().to_bits()).collect()
}

/// Random non-trivial batch norms everywhere except where the test fixes them.
fn randomize_bns<T: Float>(m: &dyn Module<T>) {
    for (_, t) in m.named_tensors() {
        let c = t.tensor.numel();
        match t.name.as_str() {
            "running_mean" => init::uniform_(&t.tensor, -0.5, 0.5),
            "running_var" => init::uniform_(&t.tensor, 0.5, 2.0),
            _ if t.tensor.shape() == [c] && t.name == "bias" => {
                init::uniform_(&t.tensor, -0.3, 0.3)
            }
            _ => {}
        }
    }
}

/// The exact check on one isolated identity block, in the current mode.
fn isolated_identity_is_exact<T: Float, B: Block<T>>(block: &B, shape: [usize; 4], what: &str) {
    assert!(
        block
            .named_tensors()
            .iter()
            .all(|(n, _)| !n.starts_with("downsample")),
        "{what}: identity shortcut expected"
    );
    // All inputs > 0: the final ReLU passes everything.
    let x = Tensor::<T>::uniform(shape, T::of(0.1), T::of(2.0)).requires_grad_();
    let upstream = Tensor::<T>::randn(shape);

    // The branch is exactly zero, and sends exactly zero back.
    let xr = Tensor::from_array(x.to_array()).requires_grad_();
    let r = block.residual_branch(&xr);
    assert!(
        r.to_vec().iter().all(|&v| v == T::zero()),
        "{what}: isolated branch output is not exactly 0"
    );
    let through_branch = grad(
        &[r],
        &[xr],
        GradOptions {
            grad_outputs: Some(vec![upstream.clone()]),
            allow_unused: true,
            ..Default::default()
        },
    )
    .remove(0);
    if let Some(g) = through_branch {
        assert!(
            g.to_vec().iter().all(|&v| v == T::zero()),
            "{what}: gradient through the isolated branch is not exactly 0"
        );
    }

    // Through the whole block: the output is the input, the gradient the upstream gradient, bit for bit.
    let y = block.forward(&x);
    assert_eq!(bits(&y), bits(&x), "{what}: output differs from the input");
    y.backward_with(&upstream);
    let gx = x.grad().expect("input gradient");
    assert_eq!(gx.shape(), upstream.shape());
    assert_eq!(
        bits(&gx),
        bits(&upstream),
        "{what}: x.grad is not the upstream gradient bit for bit"
    );
    assert_eq!(gx.to_vec(), upstream.to_vec());
}

/// Isolates the residual branch: the last batch norm's weight and bias zero.
fn isolate<T: Float, B: Block<T>>(block: &B) {
    let bn = block.last_bn();
    init::zeros_(bn.bias.as_ref().unwrap());
    assert!(
        bn.weight
            .as_ref()
            .unwrap()
            .to_vec()
            .iter()
            .all(|&w| w == T::zero()),
        "zero_init_residual must zero the last BN weight"
    );
}

fn exact_in_both_modes<T: Float, B: Block<T>>(block: B, shape: [usize; 4], what: &str) {
    randomize_bns(&block);
    isolate(&block);
    isolated_identity_is_exact(&block, shape, &format!("{what} (train)"));
    block.eval();
    isolated_identity_is_exact(&block, shape, &format!("{what} (eval)"));
}

#[test]
fn basic_block_identity_gradient_is_exact_f32() {
    manual_seed(100);
    let b = BasicBlock::new(BlockConfig::new(4, 4).zero_init_residual(true));
    exact_in_both_modes(b, [2, 4, 5, 5], "BasicBlock f32");
}

#[test]
fn basic_block_identity_gradient_is_exact_f64() {
    manual_seed(101);
    let b = BasicBlock::<f64>::build(BlockConfig::new(3, 3).zero_init_residual(true));
    exact_in_both_modes(b, [3, 3, 4, 4], "BasicBlock f64");
}

#[test]
fn bottleneck_identity_gradient_is_exact_f32() {
    manual_seed(102);
    let b = Bottleneck::new(BlockConfig::new(8, 2).zero_init_residual(true));
    exact_in_both_modes(b, [2, 8, 4, 4], "Bottleneck f32");
}

#[test]
fn bottleneck_identity_gradient_is_exact_f64() {
    manual_seed(103);
    let b = Bottleneck::<f64>::build(BlockConfig::new(16, 4).zero_init_residual(true));
    exact_in_both_modes(b, [2, 16, 3, 3], "Bottleneck f64");
}

#[test]
fn zero_init_residual_alone_zeroes_only_the_weight() {
    // zero_init_residual zeroes the last BN's weight (torchvision); its bias starts at 0 too.
    let b = BasicBlock::new(BlockConfig::new(4, 4).zero_init_residual(true));
    assert!(b
        .bn2
        .weight
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&w| w == 0.0));
    assert!(b
        .bn1
        .weight
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&w| w == 1.0));
    let b = Bottleneck::new(BlockConfig::new(8, 2).zero_init_residual(true));
    assert!(b
        .bn3
        .weight
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&w| w == 0.0));
    assert!(b
        .bn2
        .weight
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&w| w == 1.0));
    let b = Bottleneck::new(BlockConfig::new(8, 2));
    assert!(b
        .bn3
        .weight
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .all(|&w| w == 1.0));
}

/// With a normal branch: x.grad == upstream * relu_mask + d(branch)/dx applied to upstream * relu_mask.
fn decomposes<T: Float, B: Block<T>>(block: &B, shape: [usize; 4], what: &str) {
    let x = Tensor::<T>::randn(shape).requires_grad_();
    let upstream = Tensor::<T>::randn(shape);
    let y = block.forward(&x);
    y.backward_with(&upstream);
    let gx = x.grad().expect("input gradient").to_vec();

    // The gradient reaching the sum before the final ReLU.
    let mask: Vec<f64> = y
        .to_vec()
        .iter()
        .map(|&v| if v > T::zero() { 1.0 } else { 0.0 })
        .collect();
    let up: Vec<f64> = upstream.to_vec().iter().map(|v| v.as_f64()).collect();
    let masked: Vec<f64> = up.iter().zip(&mask).map(|(u, m)| u * m).collect();
    let masked_t = Tensor::<T>::from_vec(masked.iter().map(|&v| T::of(v)).collect(), shape);

    // The branch alone, from a fresh copy of x.
    let xr = Tensor::from_array(x.to_array()).requires_grad_();
    let r = block.residual_branch(&xr);
    let through_branch = grad(
        &[r],
        &[xr],
        GradOptions {
            grad_outputs: Some(vec![masked_t]),
            ..Default::default()
        },
    )
    .remove(0)
    .unwrap()
    .to_vec();

    let mut max_branch: f64 = 0.0;
    for (i, g) in gx.iter().enumerate() {
        let b = through_branch[i].as_f64();
        max_branch = max_branch.max(b.abs());
        let want = masked[i] + b;
        assert!(
            (g.as_f64() - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "{what}: element {i}: x.grad {g:?} vs {want}"
        );
    }
    assert!(
        max_branch > 1e-3,
        "{what}: the branch should carry a real gradient"
    );
    assert!(
        mask.contains(&0.0) && mask.contains(&1.0),
        "{what}: the ReLU mask should be mixed"
    );
}

#[test]
fn identity_gradient_decomposes_with_a_normal_branch() {
    manual_seed(104);
    let b = BasicBlock::new(BlockConfig::new(4, 4));
    randomize_bns(&b);
    decomposes(&b, [2, 4, 5, 5], "BasicBlock f32 (train)");
    b.eval();
    decomposes(&b, [2, 4, 5, 5], "BasicBlock f32 (eval)");

    let b = BasicBlock::<f64>::build(BlockConfig::new(3, 3));
    randomize_bns(&b);
    decomposes(&b, [2, 3, 4, 4], "BasicBlock f64 (train)");

    let b = Bottleneck::new(BlockConfig::new(8, 2));
    randomize_bns(&b);
    decomposes(&b, [2, 8, 4, 4], "Bottleneck f32 (train)");
    b.eval();
    decomposes(&b, [2, 8, 4, 4], "Bottleneck f32 (eval)");
}

#[test]
fn projection_shortcut_gradient_decomposes() {
    // With a projection the shortcut's gradient is the downsample's, not the upstream:
    // x.grad == d(downsample)/dx + d(branch)/dx, both applied to upstream * relu_mask.
    manual_seed(105);
    let b = BasicBlock::new(BlockConfig::new(4, 8).stride(2));
    randomize_bns(&b);
    let down = b.downsample.as_ref().unwrap();
    let x = Tensor::randn([2, 4, 5, 5]).requires_grad_();
    let y = b.forward(&x);
    let upstream = Tensor::randn(y.shape());
    y.backward_with(&upstream);
    let gx = x.grad().unwrap().to_vec();

    let masked: Vec<f32> = upstream
        .to_vec()
        .iter()
        .zip(y.to_vec())
        .map(|(&u, v)| if v > 0.0 { u } else { 0.0 })
        .collect();
    let masked = Tensor::from_vec(masked, y.shape());
    let part = |f: &dyn Fn(&Tensor) -> Tensor| {
        let xr = Tensor::from_array(x.to_array()).requires_grad_();
        let out = f(&xr);
        grad(
            &[out],
            &[xr],
            GradOptions {
                grad_outputs: Some(vec![masked.clone()]),
                ..Default::default()
            },
        )
        .remove(0)
        .unwrap()
        .to_vec()
    };
    let g_short = part(&|t| down.forward(t));
    let g_branch = part(&|t| b.residual(t));
    for i in 0..gx.len() {
        let want = g_short[i] + g_branch[i];
        assert!(
            (gx[i] - want).abs() <= 1e-5 * (1.0 + want.abs()),
            "element {i}: {} vs {want}",
            gx[i]
        );
    }
}
