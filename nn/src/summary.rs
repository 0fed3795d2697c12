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
use std::collections::{HashMap, VecDeque};

use autograd::{no_grad, Float, Tensor};

use crate::module::Module;

/// What a summary notes while the model runs: the addresses of the modules
/// being run (outermost first), and each recorded module's output shape
/// under its address path. The path, not the address alone, identifies a
/// layer: a child at offset 0 of its parent shares the parent's address, and
/// every zero-sized layer (`ReLU`) has the same address.
struct Recording {
    stack: Vec<usize>,
    shapes: Vec<(Vec<usize>, Vec<usize>)>,
}

thread_local! {
    static RECORD: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

fn addr<T: Float>(m: &dyn Module<T>) -> usize {
    m as *const dyn Module<T> as *const () as usize
}

/// Runs `m` on `x`, noting the output shape when a summary is being taken.
pub fn forward_recorded<T: Float>(m: &dyn Module<T>, x: &Tensor<T>) -> Tensor<T> {
    let recording = RECORD.with(|r| {
        r.borrow_mut()
            .as_mut()
            .map(|rec| rec.stack.push(addr(m)))
            .is_some()
    });
    let y = m.forward(x);
    if recording {
        RECORD.with(|r| {
            if let Some(rec) = r.borrow_mut().as_mut() {
                let path = rec.stack.clone();
                rec.stack.pop();
                rec.shapes.push((path, y.shape()));
            }
        });
    }
    y
}

/// A summary row: dotted name, depth, the module, and its address path.
type Row<'a, T> = (String, usize, &'a dyn Module<T>, Vec<usize>);

fn walk<'a, T: Float>(
    m: &'a dyn Module<T>,
    prefix: &str,
    depth: usize,
    path: &[usize],
    out: &mut Vec<Row<'a, T>>,
) {
    for (name, c) in m.children() {
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        let mut p = path.to_vec();
        p.push(addr(c));
        out.push((full.clone(), depth, c, p.clone()));
        walk(c, &full, depth + 1, &p, out);
    }
}

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
    RECORD.with(|r| {
        *r.borrow_mut() = Some(Recording {
            stack: Vec::new(),
            shapes: Vec::new(),
        })
    });
    let out = no_grad(|| model.forward(&Tensor::<T>::zeros(input_shape)));
    let rec = RECORD
        .with(|r| r.borrow_mut().take())
        .map(|r| r.shapes)
        .unwrap_or_default();
    for (t, v) in saved {
        t.set_data(v);
    }
    // Same-path layers (zero-sized siblings) in call order; by address alone
    // as a fallback for children a custom container runs without recording.
    let mut by_path: HashMap<Vec<usize>, VecDeque<Vec<usize>>> = HashMap::new();
    let mut by_addr: HashMap<usize, Vec<usize>> = HashMap::new();
    for (path, shape) in rec {
        by_addr.insert(*path.last().expect("non-empty path"), shape.clone());
        by_path.entry(path).or_default().push_back(shape);
    }

    let mut rows = Vec::new();
    walk(model, "", 0, &[], &mut rows);
    let mut s = format!("{:<60} {:>20} {:>12}\n", "Layer", "Output shape", "Param #");
    s += &"=".repeat(94);
    s.push('\n');
    for (name, depth, m, path) in rows {
        let own: usize = m
            .own_tensors()
            .iter()
            .filter(|t| t.kind == crate::TensorKind::Parameter)
            .map(|t| t.tensor.numel())
            .sum();
        let shape = by_path
            .get_mut(&path)
            .and_then(|q| q.pop_front())
            .or_else(|| by_addr.get(&addr(m)).cloned())
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
