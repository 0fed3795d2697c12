//! Optimizer steps are in-place writes: one between a network's forward
//! pass and its backward pass (a GAN's usual mistake) is refused by the
//! backward pass instead of giving gradients of weights that are no longer
//! those of the forward pass; steps after backward, the usual loop, work.

use autograd::{Error, Tensor};
use optim::*;

/// A one-layer "network": `tanh(x w^T + b)`.
struct Net {
    w: Tensor,
    b: Tensor,
}

impl Net {
    fn new(inp: usize, out: usize) -> Self {
        Net {
            w: (Tensor::randn([out, inp]) * 0.5).detach().requires_grad_(),
            b: Tensor::zeros([out]).requires_grad_(),
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, Some(&self.b)).tanh()
    }
    fn params(&self) -> Vec<Tensor> {
        vec![self.w.clone(), self.b.clone()]
    }
}

#[test]
fn stepping_the_discriminator_between_the_generators_forward_and_backward_is_an_error() {
    autograd::manual_seed(1);
    let (g, d) = (Net::new(2, 3), Net::new(3, 1));
    let mut opt_g = Adam::new(g.params(), AdamConfig::default());
    let mut opt_d = Adam::new(d.params(), AdamConfig::default());
    let (z, real) = (Tensor::randn([4, 2]), Tensor::randn([4, 3]));

    // The mistake: D's output on the fakes is computed once, D is stepped,
    // then the generator's loss is backpropagated through the old graph.
    let fake = g.forward(&z);
    let g_loss = d.forward(&fake).mean().neg();
    opt_d.zero_grad();
    (d.forward(&real).mean() - d.forward(&fake.detach()).mean())
        .neg()
        .backward();
    opt_d.step();
    let err = g_loss.try_backward().unwrap_err();
    match &err {
        Error::InplaceModified {
            op,
            what,
            shape,
            saved,
            current,
        } => {
            assert_eq!(
                (*op, *what, shape.as_slice()),
                ("linear", "input 1", &[1, 3][..])
            );
            assert!(current > saved, "{err}");
        }
        other => panic!("expected InplaceModified, got {other}"),
    }
    assert!(err.to_string().contains("modified by an inplace operation"));
    assert!(
        g.w.grad().is_none(),
        "no generator gradient from the stepped D"
    );

    // The right order: the generator's loss through the stepped D.
    opt_g.zero_grad();
    d.forward(&g.forward(&z)).mean().neg().backward();
    opt_g.step();
    assert!(g.w.grad().is_some());
}

#[test]
fn the_usual_loop_and_updates_after_backward_keep_working() {
    autograd::manual_seed(2);
    let (l1, l2) = (Net::new(3, 8), Net::new(8, 1));
    let x = Tensor::randn([16, 3]);
    let y = x.sum_dim(1, true).tanh() * 0.5;
    let mut opt = Sgd::new(
        [l1.params(), l2.params()].concat(),
        SgdConfig {
            lr: 0.2,
            momentum: 0.9,
            ..Default::default()
        },
    );
    let loss = || l2.forward(&l1.forward(&x)).mse_loss(&y);
    let first = loss().item();
    for _ in 0..100 {
        opt.zero_grad();
        loss().backward();
        opt.step();
        // Hand-written updates under no_grad between steps (README's SGD).
        autograd::no_grad(|| l2.b.write().mapv_inplace(|v| v * 0.999));
    }
    let last = loss().item();
    assert!(last < first * 0.5, "loss {first} -> {last}");

    // The same step between this forward and backward is refused: the
    // gradient of the first layer goes through the second layer's weight.
    let l = loss();
    l.backward_opts(autograd::BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    opt.step();
    let err = l.try_backward().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InplaceModified {
                op: "linear",
                what: "input 1",
                ..
            }
        ),
        "{err}"
    );
}
