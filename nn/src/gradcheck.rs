//! Gradient checks of whole modules in f64: the input's gradient and every
//! parameter's gradient against central differences (parameters are
//! perturbed in place, since they live inside the module).
//!
//! ```
//! use autograd::Tensor;
//! use nn::{gradcheck_module, Conv2d, Conv2dConfig};
//! let conv = Conv2d::<f64>::build(Conv2dConfig::new(2, 3, 3).padding(1));
//! gradcheck_module(&conv, &Tensor::randn([2, 2, 4, 4]), &Default::default()).unwrap();
//! ```

use autograd::gradcheck::{GradcheckError, GradcheckOptions};
use autograd::{no_grad, Tensor};

use crate::Module;

/// Checks `d sum(module(x) * v) / d x` and `/ d p` for every parameter `p`
/// that requires grad, for a fixed random `v`. Randomness inside the module
/// (dropout) is reseeded before every evaluation so it is the same each time.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a <= b)` also fails on NaN
pub fn gradcheck_module(
    module: &dyn Module<f64>,
    input: &Tensor<f64>,
    opts: &GradcheckOptions,
) -> Result<(), GradcheckError> {
    let failed = |message: String| GradcheckError::Failed {
        order: "first order",
        message,
    };
    let run = |x: &Tensor<f64>| {
        autograd::manual_seed(opts.seed);
        module.forward(x)
    };
    let x = Tensor::from_array(input.to_array()).requires_grad_();
    let out = run(&x);
    let v = {
        let mut rng = autograd::rng::generator(opts.seed ^ 0x5151);
        Tensor::randn_with(out.shape(), &mut rng)
    };
    let params: Vec<Tensor<f64>> = module
        .parameters()
        .into_iter()
        .filter(|p| p.requires_grad())
        .collect();
    for p in &params {
        p.zero_grad();
    }
    out.mul(&v)
        .sum()
        .try_backward()
        .map_err(|e| failed(e.to_string()))?;
    let scalar = |x: &Tensor<f64>| no_grad(|| run(x).mul(&v).sum().item());

    // Slot 0 is the input, then the parameters in order.
    let mut targets = vec![x.clone()];
    targets.extend(params.iter().cloned());
    for (slot, t) in targets.iter().enumerate() {
        let analytic = t
            .grad()
            .map(|g| g.to_vec())
            .unwrap_or_else(|| vec![0.0; t.numel()]);
        for (j, &a) in analytic.iter().enumerate() {
            let probe = |delta: f64| {
                let original = t.to_array();
                let mut changed = original.clone();
                *changed.iter_mut().nth(j).expect("element") += delta;
                t.set_data(changed);
                let s = scalar(&x.detach());
                t.set_data(original);
                s
            };
            let numeric = if slot == 0 {
                let base = x.to_array();
                let at = |delta: f64| {
                    let mut b = base.clone();
                    *b.iter_mut().nth(j).expect("element") += delta;
                    scalar(&Tensor::from_array(b))
                };
                (at(opts.eps) - at(-opts.eps)) / (2.0 * opts.eps)
            } else {
                (probe(opts.eps) - probe(-opts.eps)) / (2.0 * opts.eps)
            };
            let diff = (a - numeric).abs();
            if !(diff <= opts.atol + opts.rtol * numeric.abs()) {
                let shape = t.shape();
                let mut index = vec![0; shape.len()];
                let mut rest = j;
                for d in (0..shape.len()).rev() {
                    index[d] = rest % shape[d];
                    rest /= shape[d];
                }
                return Err(GradcheckError::Mismatch {
                    order: "first order",
                    input: slot,
                    index,
                    analytic: a,
                    numeric,
                    diff,
                });
            }
        }
    }
    Ok(())
}
