//! Step 1: a two-layer network trained with nothing but tensors and autograd.
//!
//! Data: 4,000 points in 2-D drawn around four centres (a synthetic stand-in
//! until the MNIST examples arrive), split 3,000 / 1,000. Model: Linear(2, 64)
//! -> ReLU -> Linear(64, 4), softmax cross-entropy, plain SGD written by hand.
//!
//! Run: `cargo run --release --example 01_mlp_synthetic [-- --epochs 20 --seed 0]`

use autograd::{manual_seed, no_grad, Tensor};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Points scattered around four centres; the label is the centre.
fn blobs(n: usize) -> (Tensor, Vec<usize>) {
    let centres = [[-1.0f32, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]];
    let labels: Vec<usize> = (0..n).map(|i| i % 4).collect();
    let noise = Tensor::randn([n, 2]) * 0.6;
    let base: Vec<f32> = labels.iter().flat_map(|&l| centres[l]).collect();
    (Tensor::from_vec(base, [n, 2]) + noise, labels)
}

fn accuracy(logits: &Tensor, labels: &[usize]) -> f32 {
    let pred = logits.argmax(1, false);
    let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f32 / labels.len() as f32
}

fn main() {
    let epochs = arg("--epochs", 20);
    manual_seed(arg("--seed", 0));
    let (x_train, y_train) = blobs(3000);
    let (x_test, y_test) = blobs(1000);

    // He initialisation: std = sqrt(2 / fan_in).
    let w1 = (Tensor::randn([2, 64]) * (2.0f32 / 2.0).sqrt()).requires_grad_();
    let b1 = Tensor::zeros([64]).requires_grad_();
    let w2 = (Tensor::randn([64, 4]) * (2.0f32 / 64.0).sqrt()).requires_grad_();
    let b2 = Tensor::zeros([4]).requires_grad_();
    let params = [&w1, &b1, &w2, &b2];
    let forward = |x: &Tensor| (x.matmul(&w1) + &b1).relu().matmul(&w2) + &b2;

    let (batch, lr) = (100, 0.1f32);
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for start in (0..3000).step_by(batch) {
            let x = x_train.narrow(0, start, batch);
            let loss = forward(&x).cross_entropy(&y_train[start..start + batch]);
            loss.backward(); // fills .grad() of every parameter, frees the graph
            for p in params {
                let g = p.grad().expect("every parameter is used");
                p.write().zip_mut_with(&*g.read(), |w, &d| *w -= lr * d);
                p.zero_grad();
            }
            total += loss.item();
        }
        let test_acc = no_grad(|| accuracy(&forward(&x_test), &y_test));
        println!(
            "epoch {epoch:2}  train loss {:.4}  test accuracy {:.2}%",
            total / (3000 / batch) as f32,
            100.0 * test_acc
        );
    }
}
