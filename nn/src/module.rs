//! The `Module` trait: a forward pass plus named parameters and buffers,
//! train/eval mode, freezing, parameter counts and state dicts.

use autograd::{Float, Tensor};

use crate::error::{NnError, Result};
use crate::state_dict::StateDict;

/// Whether a named tensor is learned (a parameter) or tracked state (a buffer,
/// such as batch norm's running mean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    Parameter,
    Buffer,
}

/// A tensor owned by a module, with its local name (`weight`, `running_mean`).
#[derive(Clone, Debug)]
pub struct NamedTensor<T: Float = f32> {
    pub name: String,
    pub tensor: Tensor<T>,
    pub kind: TensorKind,
}

impl<T: Float> NamedTensor<T> {
    /// A learned parameter.
    pub fn param(name: &str, tensor: &Tensor<T>) -> Self {
        NamedTensor {
            name: name.to_string(),
            tensor: tensor.clone(),
            kind: TensorKind::Parameter,
        }
    }

    /// A buffer (state that is saved but not learned).
    pub fn buffer(name: &str, tensor: &Tensor<T>) -> Self {
        NamedTensor {
            name: name.to_string(),
            tensor: tensor.clone(),
            kind: TensorKind::Buffer,
        }
    }
}

/// A layer or a network. Implementors provide `forward`, their own tensors,
/// their children and a one-line description; everything else (dotted names
/// as torchvision's `state_dict`, train/eval, freezing, saving) comes from
/// the provided methods.
pub trait Module<T: Float = f32>: Send + Sync {
    /// Runs the module.
    fn forward(&self, input: &Tensor<T>) -> Tensor<T>;

    /// Parameters (first) and buffers owned directly by this module, in
    /// PyTorch's registration order.
    fn own_tensors(&self) -> Vec<NamedTensor<T>> {
        Vec::new()
    }

    /// Sub-modules with their names (`"0"`, `"conv1"`, `"layer1"`), in order.
    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        Vec::new()
    }

    /// Sets this module's own training flag (children are handled by [`set_training`](Module::set_training)).
    fn set_own_training(&self, _training: bool) {}

    /// One line, as PyTorch prints the module: `Linear(in_features=784, out_features=100, bias=true)`.
    fn describe(&self) -> String;

    /// Every parameter and buffer, with dotted names (`layer1.0.conv1.weight`).
    fn named_tensors(&self) -> Vec<(String, NamedTensor<T>)> {
        let mut out = Vec::new();
        collect(self.as_dyn(), "", &mut out);
        out
    }

    /// This module as a trait object (implemented by the blanket helper below).
    fn as_dyn(&self) -> &dyn Module<T>;

    /// Parameters with their dotted names.
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        self.named_tensors()
            .into_iter()
            .filter(|(_, t)| t.kind == TensorKind::Parameter)
            .map(|(n, t)| (n, t.tensor))
            .collect()
    }

    /// All parameters, in order (what an optimizer takes).
    fn parameters(&self) -> Vec<Tensor<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Buffers with their dotted names.
    fn named_buffers(&self) -> Vec<(String, Tensor<T>)> {
        self.named_tensors()
            .into_iter()
            .filter(|(_, t)| t.kind == TensorKind::Buffer)
            .map(|(n, t)| (n, t.tensor))
            .collect()
    }

    /// Number of parameter values (trainable or frozen).
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }

    /// Number of parameter values that currently require grad.
    fn num_trainable_parameters(&self) -> usize {
        self.parameters()
            .iter()
            .filter(|p| p.requires_grad())
            .map(|p| p.numel())
            .sum()
    }

    /// Training (`true`: batch statistics, dropout on) or evaluation mode, here and in every child.
    fn set_training(&self, training: bool) {
        self.set_own_training(training);
        for (_, c) in self.children() {
            c.set_training(training);
        }
    }

    /// Training mode.
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation mode.
    fn eval(&self) {
        self.set_training(false);
    }

    /// Freezes every parameter: no gradient, so optimizers skip them.
    fn freeze(&self) {
        for p in self.parameters() {
            p.set_requires_grad(false).expect("parameters are leaves");
            p.zero_grad();
        }
    }

    /// Makes every parameter trainable again.
    fn unfreeze(&self) {
        for p in self.parameters() {
            p.set_requires_grad(true).expect("parameters are leaves");
        }
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Parameters and buffers by dotted name (values shared, not copied).
    fn state_dict(&self) -> StateDict {
        StateDict::from_pairs(
            self.named_tensors()
                .into_iter()
                .map(|(n, t)| (n, to_f32(&t.tensor)))
                .collect(),
        )
    }

    /// Copies values from `sd` into this module. Strict: every key must
    /// match in name and shape, or nothing is changed and one error lists
    /// every missing, unexpected and mismatched key. Not strict: matching
    /// keys are loaded and the others reported (fine-tuning a new head).
    fn load_state_dict(&self, sd: &StateDict, strict: bool) -> Result<LoadReport> {
        load_into(self.as_dyn(), sd, strict, None)
    }

    /// Saves the state dict as safetensors (f32, f16 or bf16 storage),
    /// through a temporary file renamed into place.
    fn save(&self, path: &std::path::Path, dtype: crate::state_dict::Dtype) -> Result<()> {
        self.state_dict().save(path, dtype)
    }

    /// Loads a safetensors state dict saved by this crate or by PyTorch.
    fn load(&self, path: &std::path::Path, strict: bool) -> Result<LoadReport> {
        let sd = StateDict::load(path)?;
        load_into(self.as_dyn(), &sd, strict, Some(path))
    }
}

/// What a non-strict load skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

fn collect<T: Float>(m: &dyn Module<T>, prefix: &str, out: &mut Vec<(String, NamedTensor<T>)>) {
    for t in m.own_tensors() {
        out.push((format!("{prefix}{}", t.name), t));
    }
    for (name, c) in m.children() {
        collect(c, &format!("{prefix}{name}."), out);
    }
}

fn load_into<T: Float>(
    m: &dyn Module<T>,
    sd: &StateDict,
    strict: bool,
    path: Option<&std::path::Path>,
) -> Result<LoadReport> {
    let own = m.named_tensors();
    let mut report = LoadReport::default();
    let mut assign = Vec::new();
    for (name, t) in &own {
        match sd.get(name) {
            None => report.missing.push(name.clone()),
            Some(v) => {
                let (want, got) = (t.tensor.shape(), v.shape());
                if want == got {
                    assign.push((t.tensor.clone(), v.clone()));
                } else {
                    report.mismatched.push((name.clone(), want, got));
                }
            }
        }
    }
    let names: std::collections::HashSet<&str> = own.iter().map(|(n, _)| n.as_str()).collect();
    report.unexpected = sd
        .keys()
        .filter(|k| !names.contains(k.as_str()))
        .cloned()
        .collect();
    let clean =
        report.missing.is_empty() && report.unexpected.is_empty() && report.mismatched.is_empty();
    if strict && !clean {
        return Err(NnError::Mismatch {
            path: path.map(|p| p.to_path_buf()),
            missing: report.missing,
            unexpected: report.unexpected,
            mismatched: report.mismatched,
        });
    }
    for (dst, src) in assign {
        dst.set_data(src.cast::<T>().array());
    }
    Ok(report)
}

/// The values as f32: shared when `T` is f32, converted otherwise.
fn to_f32<T: Float>(t: &Tensor<T>) -> Tensor<f32> {
    match (t as &dyn std::any::Any).downcast_ref::<Tensor<f32>>() {
        Some(same) => same.clone(),
        None => t.cast::<f32>(),
    }
}

/// Implements `as_dyn` for a module type.
#[macro_export]
macro_rules! impl_as_dyn {
    () => {
        fn as_dyn(&self) -> &dyn $crate::Module<T> {
            self
        }
    };
}
