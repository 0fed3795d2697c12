//! The `Module` trait: a forward pass plus named parameters and buffers,
//! train/eval mode, freezing, parameter counts and state dicts.

use std::any::Any;
use std::sync::Arc;

use autograd::{Float, Tensor};

use crate::hooks::{HookHandle, Hooks};

use crate::error::{NnError, Result};
use crate::state_dict::{FileDtype, StateDict};

/// Whether a named tensor is learned (a parameter) or tracked state (a buffer,
/// such as batch norm's running mean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A learned tensor, returned by `parameters()` and updated by optimizers.
    Parameter,
    /// Tracked state, not learned (e.g. `running_mean`); saved in the state dict.
    Buffer,
}

/// A tensor owned by a module, with its local name (`weight`, `running_mean`).
#[derive(Clone, Debug)]
pub struct NamedTensor<T: Float = f32> {
    /// The local name (`weight`, `running_mean`).
    pub name: String,
    /// The tensor itself (shares storage with the module's field).
    pub tensor: Tensor<T>,
    /// Whether it is a parameter or a buffer.
    pub kind: TensorKind,
    /// The dtype a saved state dict stores it as, whatever the file's float
    /// dtype (`Some(I64)` for `num_batches_tracked`, as PyTorch); `None`:
    /// the float dtype given to [`Module::save`].
    pub stored_as: Option<FileDtype>,
}

impl<T: Float> NamedTensor<T> {
    /// A learned parameter.
    pub fn param(name: &str, tensor: &Tensor<T>) -> Self {
        NamedTensor {
            name: name.to_string(),
            tensor: tensor.clone(),
            kind: TensorKind::Parameter,
            stored_as: None,
        }
    }

    /// A buffer (state that is saved but not learned).
    pub fn buffer(name: &str, tensor: &Tensor<T>) -> Self {
        NamedTensor {
            name: name.to_string(),
            tensor: tensor.clone(),
            kind: TensorKind::Buffer,
            stored_as: None,
        }
    }

    /// The same tensor, saved as `dtype` in every state dict (set by
    /// `#[buffer(dtype = "i64")]`).
    pub fn stored_as(mut self, dtype: FileDtype) -> Self {
        self.stored_as = Some(dtype);
        self
    }
}

/// What `#[derive(Module)]` generates from a struct's fields: the module's
/// own parameters and buffers, its children in field order, and its hook
/// slot. Written by hand only for a container whose children are not fields.
pub trait ModuleFields<T: Float = f32> {
    /// Parameters (first) and buffers owned directly by this module, in
    /// PyTorch's registration order.
    fn own_tensors(&self) -> Vec<NamedTensor<T>>;

    /// Sub-modules with their names (`"0"`, `"conv1"`, `"layer1"`), in order.
    fn children(&self) -> Vec<(String, &dyn Module<T>)>;

    /// The slot that forward hooks are registered in, if the module has one.
    fn hooks(&self) -> Option<&Hooks> {
        None
    }
}

/// A module as a trait object and as `Any` (for finding a child by type);
/// implemented for every sized module.
pub trait AsDyn<T: Float = f32> {
    /// This module as `&dyn Module`.
    fn as_dyn(&self) -> &dyn Module<T>;
    /// This module as `&dyn Any`.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Float, M: Module<T> + 'static> AsDyn<T> for M {
    fn as_dyn(&self) -> &dyn Module<T> {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A tensor field of float type `F` (used by `#[derive(Module)]` to infer a
/// struct's float type from its fields).
#[doc(hidden)]
pub trait TensorOf<F: Float> {
    fn tensor_of(&self) -> &Tensor<F>;
}

impl<F: Float> TensorOf<F> for Tensor<F> {
    fn tensor_of(&self) -> &Tensor<F> {
        self
    }
}

#[doc(hidden)]
pub fn as_tensor<F: Float, X: TensorOf<F> + ?Sized>(x: &X) -> &Tensor<F> {
    x.tensor_of()
}

/// A child field as `&dyn Module` (used by `#[derive(Module)]`).
#[doc(hidden)]
pub fn as_child<T: Float, M: Module<T>>(m: &M) -> &dyn Module<T> {
    m.unboxed()
}

/// A layer or a network. Implementors write [`forward_impl`](Module::forward_impl)
/// and derive the rest (`#[derive(Module)]` on the struct); callers call
/// [`forward`](Module::forward), which runs the module's hooks around
/// `forward_impl`, as PyTorch's `module(x)` runs `forward`. Everything else
/// (dotted names as torchvision's `state_dict`, train/eval, freezing,
/// saving, walking the sub-modules) comes from the provided methods.
///
/// ```
/// use autograd::Tensor;
/// use nn::{Conv2d, Conv2dConfig, Hooks, Linear, LinearConfig, Module};
///
/// #[derive(Module)]
/// struct Net {
///     conv: Conv2d,
///     heads: Vec<Linear>,
///     hooks: Hooks,
/// }
///
/// impl Module for Net {
///     fn forward_impl(&self, x: &Tensor) -> Tensor {
///         let h = self.conv.forward(x).relu().flatten(1, -1);
///         self.heads[0].forward(&h) + self.heads[1].forward(&h)
///     }
/// }
///
/// let net = Net {
///     conv: Conv2d::new(Conv2dConfig::new(1, 2, 3)),
///     heads: vec![Linear::new(LinearConfig::new(8, 3)), Linear::new(LinearConfig::new(8, 3))],
///     hooks: Hooks::new(),
/// };
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["conv.weight", "conv.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]);
/// assert_eq!(net.forward(&Tensor::zeros([5, 1, 4, 4])).shape(), vec![5, 3]);
/// ```
///
/// A field that is not a module must say what it is (`#[param]`,
/// `#[buffer]`, `#[module(skip)]`): a child cannot be left out silently.
///
/// ```compile_fail
/// use autograd::Tensor;
/// use nn::{Linear, Module};
/// #[derive(Module)]
/// struct Net {
///     fc: Linear,
///     width: usize, // neither a module nor `#[module(skip)]`
/// }
/// impl Module for Net {
///     fn forward_impl(&self, x: &Tensor) -> Tensor {
///         self.fc.forward(x)
///     }
/// }
/// ```
pub trait Module<T: Float = f32>: ModuleFields<T> + AsDyn<T> + Send + Sync {
    /// The computation. Call [`forward`](Module::forward) instead, which runs
    /// the hooks around it.
    fn forward_impl(&self, input: &Tensor<T>) -> Tensor<T>;

    /// Runs the module: pre-hooks, [`forward_impl`](Module::forward_impl), forward hooks.
    fn forward(&self, input: &Tensor<T>) -> Tensor<T> {
        match self.hooks() {
            Some(h) => h.run(input, |x| self.forward_impl(x)),
            None => self.forward_impl(input),
        }
    }

    /// The module itself; for a `Box<dyn Module>`, the boxed module (so that a
    /// boxed child is found by its own type).
    #[doc(hidden)]
    fn unboxed(&self) -> &dyn Module<T> {
        self.as_dyn()
    }

    /// Sets this module's own training flag (children are handled by [`set_training`](Module::set_training)).
    fn set_own_training(&self, _training: bool) {}

    /// One line, as PyTorch prints the module: `Linear(in_features=784, out_features=100, bias=true)`.
    /// The type's name unless overridden.
    fn describe(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// Every parameter and buffer, with dotted names (`layer1.0.conv1.weight`).
    fn named_tensors(&self) -> Vec<(String, NamedTensor<T>)> {
        let mut out = Vec::new();
        collect(self.as_dyn(), "", &mut out);
        out
    }

    /// This module (named `""`) and every sub-module, depth first, with dotted names.
    fn named_modules(&self) -> Vec<(String, &dyn Module<T>)> {
        let mut out = vec![(String::new(), self.as_dyn())];
        walk_modules(self.as_dyn(), "", &mut out);
        out
    }

    /// This module and every sub-module, depth first.
    fn modules(&self) -> Vec<&dyn Module<T>> {
        self.named_modules().into_iter().map(|(_, m)| m).collect()
    }

    /// The sub-module with this dotted name (`""` is the module itself).
    fn get_submodule(&self, name: &str) -> Option<&dyn Module<T>> {
        self.named_modules()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
    }

    /// Calls `f` on this module and every sub-module with its dotted name
    /// (PyTorch's `apply`, e.g. to initialise every convolution).
    fn apply(&self, f: &mut dyn FnMut(&str, &dyn Module<T>)) {
        for (n, m) in self.named_modules() {
            f(&n, m);
        }
    }

    /// Every sub-module of type `M` (this module included), with its dotted name.
    fn modules_of_type<M: Module<T> + 'static>(&self) -> Vec<(String, &M)>
    where
        Self: Sized,
    {
        self.named_modules()
            .into_iter()
            .filter_map(|(n, m)| m.downcast_ref::<M>().map(|c| (n, c)))
            .collect()
    }

    /// Registers `hook(input, output)` on the sub-module `name` (`""`: this
    /// module); it runs after every forward of that module, and a `Some`
    /// return replaces the output. Errors when there is no such sub-module or
    /// it has no [`Hooks`] slot.
    fn register_forward_hook<F>(&self, name: &str, hook: F) -> Result<HookHandle>
    where
        Self: Sized,
        F: Fn(&Tensor<T>, &Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    {
        hook_slot(self.as_dyn(), name).map(|h| h.add_forward::<T>(Arc::new(hook)))
    }

    /// Registers `hook(input)` on the sub-module `name`; it runs before every
    /// forward of that module, and a `Some` return replaces the input.
    fn register_forward_pre_hook<F>(&self, name: &str, hook: F) -> Result<HookHandle>
    where
        Self: Sized,
        F: Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    {
        hook_slot(self.as_dyn(), name).map(|h| h.add_pre::<T>(Arc::new(hook)))
    }

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

    /// Parameters and buffers by dotted name (values shared, not copied
    /// when the module is f32), each with its stored dtype if it has one.
    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::default();
        for (n, t) in self.named_tensors() {
            match t.stored_as {
                Some(d) => sd.insert_stored_as(n, to_f32(&t.tensor), d),
                None => sd.insert(n, to_f32(&t.tensor)),
            }
        }
        sd
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
    /// Keys the module expects that the state dict lacks (left as they were).
    pub missing: Vec<String>,
    /// Keys in the state dict that the module does not have (ignored).
    pub unexpected: Vec<String>,
    /// Keys whose shapes differ: (name, shape in the module, shape in the state dict); left as they were.
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

fn walk_modules<'a, T: Float>(
    m: &'a dyn Module<T>,
    prefix: &str,
    out: &mut Vec<(String, &'a dyn Module<T>)>,
) {
    for (name, c) in m.children() {
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        out.push((full.clone(), c));
        walk_modules(c, &full, out);
    }
}

/// The hook slot of the sub-module `name`.
pub(crate) fn hook_slot<'a, T: Float>(m: &'a dyn Module<T>, name: &str) -> Result<&'a Hooks> {
    let sub = m.get_submodule(name).ok_or_else(|| NnError::NoSuchModule {
        name: name.to_string(),
        known: m
            .named_modules()
            .into_iter()
            .skip(1)
            .map(|(n, _)| n)
            .collect(),
    })?;
    sub.hooks().ok_or_else(|| NnError::NoHookSlot {
        name: name.to_string(),
        module: sub.describe(),
    })
}

impl<'a, T: Float> dyn Module<T> + 'a {
    /// The module as its concrete type, if it is an `M`.
    pub fn downcast_ref<M: 'static>(&self) -> Option<&M> {
        self.as_any().downcast_ref::<M>()
    }

    /// [`Module::register_forward_hook`] on a trait object.
    pub fn register_forward_hook<F>(&self, name: &str, hook: F) -> Result<HookHandle>
    where
        F: Fn(&Tensor<T>, &Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    {
        hook_slot(self, name).map(|h| h.add_forward::<T>(Arc::new(hook)))
    }

    /// [`Module::register_forward_pre_hook`] on a trait object.
    pub fn register_forward_pre_hook<F>(&self, name: &str, hook: F) -> Result<HookHandle>
    where
        F: Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    {
        hook_slot(self, name).map(|h| h.add_pre::<T>(Arc::new(hook)))
    }
}

/// A boxed module is a module (a `Box<dyn Module>` field is a child). Its
/// hooks are the inner module's.
impl<T: Float, M: Module<T> + ?Sized> ModuleFields<T> for Box<M> {
    fn own_tensors(&self) -> Vec<NamedTensor<T>> {
        (**self).own_tensors()
    }
    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        (**self).children()
    }
    fn hooks(&self) -> Option<&Hooks> {
        (**self).hooks()
    }
}

impl<T: Float, M: Module<T> + ?Sized + 'static> Module<T> for Box<M> {
    fn forward_impl(&self, input: &Tensor<T>) -> Tensor<T> {
        (**self).forward_impl(input)
    }
    fn unboxed(&self) -> &dyn Module<T> {
        (**self).unboxed()
    }
    fn set_own_training(&self, training: bool) {
        (**self).set_own_training(training)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
