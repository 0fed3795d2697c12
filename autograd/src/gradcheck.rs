//! Gradient checking against central finite differences, in f64.
//!
//! ```
//! use autograd::{gradcheck, gradgradcheck, Tensor};
//! let x = Tensor::<f64>::randn([3, 4]).requires_grad_();
//! let w = Tensor::<f64>::randn([4, 2]).requires_grad_();
//! let f = |t: &[Tensor<f64>]| t[0].matmul(&t[1]).tanh();
//! gradcheck(f, &[x.clone(), w.clone()]).unwrap();
//! gradgradcheck(f, &[x, w]).unwrap();
//! ```

use ndarray::IxDyn;
use rand::SeedableRng;

use crate::graph::{no_grad, try_grad, GradOptions};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// Tolerances of a check; the defaults are PyTorch's.
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the numeric value).
    pub rtol: f64,
    /// Seed of the random projection of the output.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// Where an analytic gradient disagrees with the numeric one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GradcheckError {
    /// A mismatch: which input, which element, both values.
    #[error("gradcheck ({order}): input {input}, element {index:?}: analytic {analytic:.8e} vs numeric {numeric:.8e} (|diff| {diff:.3e} > atol + rtol * |numeric|)")]
    Mismatch {
        /// `"first order"` (gradcheck) or `"second order"` (gradgradcheck).
        order: &'static str,
        /// Position of the input tensor in `inputs`.
        input: usize,
        /// Multi-index of the element within that input.
        index: Vec<usize>,
        /// The gradient from backward.
        analytic: f64,
        /// The central finite-difference estimate.
        numeric: f64,
        /// `|analytic - numeric|`.
        diff: f64,
    },
    /// The function or the backward pass failed.
    #[error("gradcheck ({order}): {message}")]
    Failed {
        /// `"first order"` (gradcheck) or `"second order"` (gradgradcheck).
        order: &'static str,
        /// The underlying error message.
        message: String,
    },
}

/// Checks the gradients of `f` at `inputs` (those that require grad) against
/// central differences of `sum(f(x) * v)` for a fixed random `v`, which tests
/// every row of the Jacobian at once.
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Tensor<f64>,
{
    gradcheck_with(f, inputs, &GradcheckOptions::default())
}

/// [`gradcheck`] with explicit tolerances.
pub fn gradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Tensor<f64>,
{
    check("first order", &f, inputs, opts)
}

/// Checks second derivatives: gradcheck of `x -> sum(u * d/dx sum(f(x) * v))`,
/// the gradient computed with `create_graph`.
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Tensor<f64>,
{
    gradgradcheck_with(f, inputs, &GradcheckOptions::default())
}

/// [`gradgradcheck`] with explicit tolerances.
pub fn gradgradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Tensor<f64>,
{
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape()).collect();
    let mut rng = Generator::seed_from_u64(opts.seed ^ 0x9e37_79b9);
    let us: Vec<Tensor<f64>> = shapes
        .iter()
        .map(|s| Tensor::randn_with(s, &mut rng))
        .collect();
    let first = |xs: &[Tensor<f64>]| -> Tensor<f64> {
        let out = f(xs);
        let v = projection(&out.shape(), opts.seed);
        let s = out.mul(&v).sum();
        let req: Vec<usize> = (0..xs.len()).filter(|&i| xs[i].requires_grad()).collect();
        if !s.requires_grad() || req.is_empty() {
            return Tensor::scalar(0.0);
        }
        let wrt: Vec<Tensor<f64>> = req.iter().map(|&i| xs[i].clone()).collect();
        let gs = try_grad(
            &[s],
            &wrt,
            GradOptions {
                create_graph: true,
                allow_unused: true,
                ..Default::default()
            },
        )
        .expect("first-order backward failed");
        let mut total = Tensor::scalar(0.0);
        for (g, &i) in gs.into_iter().zip(&req) {
            if let Some(g) = g {
                total = total.add(&g.mul(&us[i]).sum());
            }
        }
        total
    };
    check("second order", &first, inputs, opts)
}

fn projection(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = Generator::seed_from_u64(seed);
    Tensor::randn_with(shape, &mut rng)
}

#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a <= b)` also fails on NaN
fn check<F>(
    order: &'static str,
    f: &F,
    inputs: &[Tensor<f64>],
    opts: &GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: Fn(&[Tensor<f64>]) -> Tensor<f64>,
{
    let failed = |message: String| GradcheckError::Failed { order, message };
    // Fresh leaves, so the caller's tensors and their .grad stay untouched.
    let leaves: Vec<Tensor<f64>> = inputs
        .iter()
        .map(|t| {
            let l = Tensor::from_array(t.to_array());
            if t.requires_grad() {
                l.requires_grad_()
            } else {
                l
            }
        })
        .collect();
    let out = f(&leaves);
    let v = projection(&out.shape(), opts.seed);
    let scalar = |xs: &[Tensor<f64>]| -> f64 {
        let o = f(xs);
        no_grad(|| o.mul(&v).sum().item())
    };
    let s = out.mul(&v).sum();
    let wrt: Vec<usize> = (0..leaves.len())
        .filter(|&i| leaves[i].requires_grad())
        .collect();
    let analytic: Vec<Option<Tensor<f64>>> = if s.requires_grad() && !wrt.is_empty() {
        let xs: Vec<Tensor<f64>> = wrt.iter().map(|&i| leaves[i].clone()).collect();
        try_grad(
            &[s],
            &xs,
            GradOptions {
                allow_unused: true,
                ..Default::default()
            },
        )
        .map_err(|e| failed(e.to_string()))?
    } else {
        vec![None; wrt.len()]
    };

    for (slot, &i) in wrt.iter().enumerate() {
        let base = leaves[i].to_array();
        let shape = base.shape().to_vec();
        let a = analytic[slot]
            .as_ref()
            .map(|g| g.to_array())
            .unwrap_or_else(|| ndarray::ArrayD::zeros(IxDyn(&shape)));
        let flat: Vec<f64> = base.iter().copied().collect();
        for (j, &x0) in flat.iter().enumerate() {
            let eval = |x: f64| {
                let mut vals = flat.clone();
                vals[j] = x;
                let mut xs = leaves.clone();
                let t = Tensor::from_vec(vals, &shape);
                xs[i] = if leaves[i].requires_grad() {
                    t.requires_grad_()
                } else {
                    t
                };
                scalar(&xs)
            };
            let numeric = (eval(x0 + opts.eps) - eval(x0 - opts.eps)) / (2.0 * opts.eps);
            let an = *a.iter().nth(j).expect("same size");
            let diff = (an - numeric).abs();
            if !(diff <= opts.atol + opts.rtol * numeric.abs()) {
                return Err(GradcheckError::Mismatch {
                    order,
                    input: i,
                    index: unravel(j, &shape),
                    analytic: an,
                    numeric,
                    diff,
                });
            }
        }
    }
    Ok(())
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}
