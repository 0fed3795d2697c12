//! Golden tests against PyTorch: composite expressions whose values and
//! gradients (first and second order) PyTorch computed in float64
//! (`scripts/golden_autograd.py` wrote the fixture). Checked in f64 to 1e-10
//! and in f32 to 1e-4 relative.

use std::collections::HashMap;

use autograd::{grad, Float, GradOptions, Reduction, Tensor};

struct Fixture(HashMap<String, (Vec<usize>, Vec<f64>)>);

impl Fixture {
    fn load() -> Fixture {
        let text = include_str!("fixtures/golden_autograd.txt");
        let mut map = HashMap::new();
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        while let Some(head) = lines.next() {
            let mut parts = head.split_whitespace();
            let name = parts.next().expect("name").to_string();
            let ndim: usize = parts.next().expect("ndim").parse().expect("ndim");
            let shape: Vec<usize> = parts.map(|p| p.parse().expect("dim")).collect();
            assert_eq!(shape.len(), ndim, "{name}");
            let values: Vec<f64> = lines
                .next()
                .expect("values")
                .split_whitespace()
                .map(|v| v.parse().expect("value"))
                .collect();
            map.insert(name, (shape, values));
        }
        Fixture(map)
    }

    fn get<T: Float>(&self, name: &str) -> Tensor<T> {
        let (shape, values) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no {name}"));
        Tensor::from_vec(values.iter().map(|&v| T::of(v)).collect(), shape)
    }

    fn leaf<T: Float>(&self, name: &str) -> Tensor<T> {
        self.get::<T>(name).requires_grad_()
    }

    fn labels(&self, name: &str) -> Vec<usize> {
        self.0[name].1.iter().map(|&v| v as usize).collect()
    }

    /// Compares shape and values to `rtol` relative (of the largest magnitude).
    fn assert_close<T: Float>(&self, name: &str, got: &Tensor<T>, rtol: f64) {
        let (shape, want) = &self.0[name];
        assert_eq!(&got.shape(), shape, "{name}: shape");
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.to_vec().iter().zip(want).enumerate() {
            let diff = (g.as_f64() - w).abs();
            assert!(
                diff <= rtol * scale,
                "{name}[{i}]: got {} want {w} (diff {diff:e}, tolerance {:e})",
                g.as_f64(),
                rtol * scale
            );
        }
    }

    /// Checks `out` and its gradients with respect to `inputs` against `prefix.out`, `prefix.gradI`.
    fn check_grads<T: Float>(
        &self,
        prefix: &str,
        out: &Tensor<T>,
        inputs: &[Tensor<T>],
        rtol: f64,
    ) {
        self.assert_close(&format!("{prefix}.out"), out, rtol);
        let gs = grad(std::slice::from_ref(out), inputs, GradOptions::default());
        for (i, g) in gs.into_iter().enumerate() {
            self.assert_close(&format!("{prefix}.grad{i}"), &g.expect("used"), rtol);
        }
    }
}

fn mlp<T: Float>(f: &Fixture, rtol: f64) {
    let [x, w1, b1, w2, b2] =
        ["x", "w1", "b1", "w2", "b2"].map(|n| f.leaf::<T>(&format!("mlp.{n}")));
    let labels = f.labels("mlp.labels");
    let h = (x.matmul(&w1) + &b1).relu();
    let loss = (h.matmul(&w2) + &b2).cross_entropy(&labels);
    f.check_grads("mlp", &loss, &[x, w1, b1, w2, b2], rtol);
}

fn arith<T: Float>(f: &Fixture, rtol: f64) {
    let [a, b, c, e] = ["a", "b", "c", "e"].map(|n| f.leaf::<T>(&format!("arith.{n}")));
    let base = (&a * &b + &c) / (c.abs() + 1.0);
    let out = (base.abs() + 0.5).pow(&e).sum() - (&a - &b).mean() * 3.0;
    f.check_grads("arith", &out, &[a, b, c, e], rtol);
}

fn soft<T: Float>(f: &Fixture, rtol: f64) {
    let [s, t] = ["s", "t"].map(|n| f.leaf::<T>(&format!("soft.{n}")));
    let out = (s.softmax(1) * &t).sum()
        + s.logsumexp(0, false).mean()
        + (t.log_softmax(0) * &s).sum()
        + s.max_dim(1, false).sum()
        - t.min_dim(0, false).sum();
    f.check_grads("soft", &out, &[s, t], rtol);
}

fn norm<T: Float>(f: &Fixture, rtol: f64) {
    let [n, g] = ["x", "g"].map(|k| f.leaf::<T>(&format!("norm.{k}")));
    let z = (&n - n.mean_dim(1, true)) / (n.var_dim(1, 1, true) + 1e-5).sqrt();
    let out = ((&z * &g).tanh() + z.sigmoid()).powf(2.0).mean();
    f.check_grads("norm", &out, &[n, g], rtol);
}

fn losses<T: Float>(f: &Fixture, rtol: f64) {
    let [lg, yp, yt] = ["logits", "pred", "target"].map(|k| f.leaf::<T>(&format!("loss.{k}")));
    let labels = f.labels("loss.labels");
    let out = lg.cross_entropy_with(&labels, Reduction::Sum, 0.1)
        + yp.mse_loss(&yt)
        + (&yp * 2.0).bce_with_logits(&yt);
    f.check_grads("loss", &out, &[lg, yp, yt], rtol);
}

fn robust_losses<T: Float>(f: &Fixture, rtol: f64) {
    let [x, y] = ["x", "y"].map(|k| f.leaf::<T>(&format!("robust.{k}")));
    let out = x.smooth_l1_loss(&y, 0.7)
        + (&x * 0.5)
            .try_smooth_l1_loss(&y, Reduction::Sum, 0.0)
            .unwrap()
        + x.huber_loss(&y, 1.3)
        + x.try_huber_loss(&(&y * 2.0), Reduction::None, 0.4)
            .unwrap()
            .powf(2.0)
            .sum();
    f.check_grads("robust", &out, &[x, y], rtol);
}

fn shapes<T: Float>(f: &Fixture, rtol: f64) {
    let [p, q, w] = ["p", "q", "w"].map(|k| f.leaf::<T>(&format!("shape.{k}")));
    let cat = Tensor::cat(&[p.clone(), q.clone()], 1);
    let st = Tensor::stack(&[p.clone(), q.clone()], -1).sum_dim(-1, false);
    let pd = st.pad(&[1, 2, 0, 1], 0.5);
    let sel = cat.index_select(1, &[5, 0, 0, 2]);
    let sl = pd.slice(1, 1, isize::MAX, 1).slice(2, 0, isize::MAX, 2);
    let mm = sel.permute([0, 2, 1]).matmul(&sel).matmul(&w);
    let out = mm.tanh().sum() + (&sl * &st).sum() + cat.slice(1, 0, isize::MAX, 3).powf(2.0).sum();
    f.check_grads("shape", &out, &[p, q, w], rtol);
}

fn activations<T: Float>(f: &Fixture, rtol: f64) {
    let v = f.leaf::<T>("act.v");
    let out = (v.elu(0.7) * v.leaky_relu(0.1)).sum()
        + v.clamp(Some(-0.5), Some(0.8)).exp().sum()
        + (&v * &v + 1.0).log().sum();
    f.check_grads("act", &out, &[v], rtol);
}

fn second_order<T: Float>(f: &Fixture, rtol: f64) {
    let create = || GradOptions {
        create_graph: true,
        ..Default::default()
    };
    // Hessian-vector product.
    let [hx, hw, hv] = ["x", "w", "v"].map(|k| f.leaf::<T>(&format!("hvp.{k}")));
    let y = hx.tanh().matmul(&hw).sigmoid().powf(2.0).sum();
    let gx = grad(&[y], &[hx.clone()], create()).remove(0).unwrap();
    f.assert_close("hvp.gx", &gx, rtol);
    let hvp = grad(&[(&gx * &hv).sum()], &[hx, hw], GradOptions::default());
    f.assert_close("hvp.hvp_x", hvp[0].as_ref().unwrap(), rtol);
    f.assert_close("hvp.hvp_w", hvp[1].as_ref().unwrap(), rtol);

    // Gradient penalty (WGAN-GP style): the penalty's gradient with respect to the weights.
    let [dx, dw1, dw2] = ["x", "w1", "w2"].map(|k| f.leaf::<T>(&format!("gp.{k}")));
    let d = dx.matmul(&dw1).tanh().matmul(&dw2);
    let gdx = grad(&[d.sum()], &[dx], create()).remove(0).unwrap();
    let penalty = ((gdx.powf(2.0).sum_dim(1, false) + 1e-12).sqrt() - 1.0)
        .powf(2.0)
        .mean();
    f.check_grads("gp", &penalty, &[dw1, dw2], rtol);
}

fn all<T: Float>(rtol: f64) {
    let f = Fixture::load();
    mlp::<T>(&f, rtol);
    arith::<T>(&f, rtol);
    soft::<T>(&f, rtol);
    norm::<T>(&f, rtol);
    losses::<T>(&f, rtol);
    robust_losses::<T>(&f, rtol);
    shapes::<T>(&f, rtol);
    activations::<T>(&f, rtol);
    second_order::<T>(&f, rtol);
}

#[test]
fn matches_pytorch_in_f64() {
    all::<f64>(1e-10);
}

#[test]
fn matches_pytorch_in_f32() {
    all::<f32>(1e-4);
}
