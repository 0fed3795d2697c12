//! A printable model summary: each layer with its output shape and
//! parameter count, as `torchinfo`/Keras print them.
//!
//! Containers run their children through [`forward_recorded`], which notes
//! each child's output shape while a summary is being taken (and costs one
//! thread-local check otherwise).
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

use std::cell::RefCell;
use std::collections::HashMap;

use autograd::{no_grad, Float, Tensor};

use crate::module::Module;

thread_local! {
    static RECORD: RefCell<Option<Vec<(usize, Vec<usize>)>>> = const { RefCell::new(None) };
}

fn addr<T: Float>(m: &dyn Module<T>) -> usize {
    m as *const dyn Module<T> as *const () as usize
}

/// Runs `m` on `x`, noting the output shape when a summary is being taken.
pub fn forward_recorded<T: Float>(m: &dyn Module<T>, x: &Tensor<T>) -> Tensor<T> {
    let y = m.forward(x);
    RECORD.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.push((addr(m), y.shape()));
        }
    });
    y
}

fn walk<'a, T: Float>(m: &'a dyn Module<T>, prefix: &str, depth: usize, out: &mut Vec<(String, usize, &'a dyn Module<T>)>) {
    for (name, c) in m.children() {
        let full = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        out.push((full.clone(), depth, c));
        walk(c, &full, depth + 1, out);
    }
}

fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
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
    let saved: Vec<(Tensor<T>, autograd::ndarray::ArrayD<T>)> =
        model.named_buffers().into_iter().map(|(_, t)| (t.clone(), t.to_array())).collect();
    RECORD.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = no_grad(|| model.forward(&Tensor::<T>::zeros(input_shape)));
    let rec = RECORD.with(|r| r.borrow_mut().take()).unwrap_or_default();
    for (t, v) in saved {
        t.set_data(v);
    }
    let shapes: HashMap<usize, Vec<usize>> = rec.into_iter().collect();

    let mut rows = Vec::new();
    walk(model, "", 0, &mut rows);
    let mut s = format!("{:<60} {:>20} {:>12}\n", "Layer", "Output shape", "Param #");
    s += &"=".repeat(94);
    s.push('\n');
    for (name, depth, m) in rows {
        let own: usize = m.own_tensors().iter().filter(|t| t.kind == crate::TensorKind::Parameter).map(|t| t.tensor.numel()).sum();
        let shape = shapes.get(&addr(m)).map(|v| format!("{v:?}")).unwrap_or_else(|| "-".into());
        let label = format!("{}{name}: {}", "  ".repeat(depth), m.describe());
        let label: String = if label.chars().count() > 60 { label.chars().take(57).collect::<String>() + "..." } else { label };
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
