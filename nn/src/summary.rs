//! A printable model summary: each layer with its output shape and
//! parameter count, as `torchinfo`/Keras print them.
//!
//! Built on forward hooks: a hook on every sub-module with a hook slot notes
//! its output shape while the model runs once on zeros.
//!
//! ```
//! use nn::{summary, Conv2d, Conv2dConfig, Flatten, Linear, LinearConfig, Module, ReLU, Sequential};
//! let net = Sequential::new()
//!     .add(Conv2d::new(Conv2dConfig::new(1, 4, 3)))
//!     .add(ReLU)
//!     .add(Flatten::default())
//!     .add(Linear::new(LinearConfig::new(4 * 26 * 26, 10)));
//! let s = summary(&net, &[1, 1, 28, 28]);
//! assert!(s.contains("[1, 4, 26, 26]") && s.contains("27,090"));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use autograd::{no_grad, Float, Tensor};

use crate::module::Module;

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

/// A table of every sub-module (indented by depth) with its output shape for
/// an input of `input_shape` and its parameter count, then the totals.
/// Buffers (running statistics) are restored afterwards.
pub fn summary<T: Float>(model: &dyn Module<T>, input_shape: &[usize]) -> String {
    let saved: Vec<(Tensor<T>, autograd::ndarray::ArrayD<T>)> = model
        .named_buffers()
        .into_iter()
        .map(|(_, t)| (t.clone(), t.to_array()))
        .collect();
    // A forward hook on every sub-module notes its output shape (the first
    // call's, for a module run twice).
    let shapes: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let rows: Vec<(String, &dyn Module<T>)> = model.named_modules().into_iter().skip(1).collect();
    let handles: Vec<_> = rows
        .iter()
        .filter_map(|(name, m)| {
            let (name, shapes) = (name.clone(), shapes.clone());
            m.hooks().map(|h| {
                h.add_forward::<T>(Arc::new(move |_, y: &Tensor<T>| {
                    let mut s = shapes.lock().unwrap_or_else(|e| e.into_inner());
                    s.entry(name.clone()).or_insert_with(|| y.shape());
                    None
                }))
            })
        })
        .collect();
    let out = no_grad(|| model.forward(&Tensor::<T>::zeros(input_shape)));
    for h in handles {
        h.remove();
    }
    for (t, v) in saved {
        t.set_data(v);
    }
    let shapes = shapes.lock().unwrap_or_else(|e| e.into_inner()).clone();

    let mut s = format!("{:<60} {:>20} {:>12}\n", "Layer", "Output shape", "Param #");
    s += &"=".repeat(94);
    s.push('\n');
    for (name, m) in rows {
        let depth = depth_of(model, &name);
        let own: usize = m
            .own_tensors()
            .iter()
            .filter(|t| t.kind == crate::TensorKind::Parameter)
            .map(|t| t.tensor.numel())
            .sum();
        let shape = shapes
            .get(&name)
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "-".into());
        let label = format!("{}{name}: {}", "  ".repeat(depth), m.describe());
        let label: String = if label.chars().count() > 60 {
            label.chars().take(57).collect::<String>() + "..."
        } else {
            label
        };
        let params = if own > 0 { group(own) } else { "-".into() };
        s += &format!("{label:<60} {shape:>20} {params:>12}\n");
    }
    s += &"=".repeat(94);
    s.push('\n');
    s += &format!("Input {:?} -> output {:?}\n", input_shape, out.shape());
    s += &format!(
        "Total params: {}  (trainable {}, frozen {})\n",
        group(model.num_parameters()),
        group(model.num_trainable_parameters()),
        group(model.num_parameters() - model.num_trainable_parameters())
    );
    s
}

/// How deep `name` sits: the number of modules above it (a `Vec` field's
/// `blocks.0` is one level, as its name is one child's).
fn depth_of<T: Float>(model: &dyn Module<T>, name: &str) -> usize {
    let mut depth = 0usize;
    let mut m = model;
    let mut rest = name;
    while !rest.is_empty() {
        let Some((child_name, child)) = m
            .children()
            .into_iter()
            .find(|(n, _)| rest == n || rest.starts_with(&format!("{n}.")))
        else {
            break;
        };
        rest = rest[child_name.len()..].trim_start_matches('.');
        m = child;
        depth += 1;
    }
    depth.saturating_sub(1)
}
