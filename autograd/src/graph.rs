//! The tape: nodes recorded by ops, grad mode, and the backward pass.
//!
//! Every op output that requires grad owns a `Node` holding its inputs and a
//! closure from the output gradient to the input gradients. `backward()` sorts
//! the reachable tensors topologically and replays the closures in reverse,
//! then frees each node's closure and inputs (unless asked to retain them),
//! so the activations go as soon as backward is done.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::grad_hooks::{accumulate_leaf, hooked_ids};
use crate::tensor::Tensor;

/// What an op's backward closure gets.
pub struct BackwardCtx<'a, T: Float> {
    /// Gradient of the loss with respect to the op's output.
    pub grad: &'a Tensor<T>,
    /// The op's output (in the graph, so it can be used differentiably).
    pub output: &'a Tensor<T>,
    /// Which inputs need a gradient; the closure may return `None` for the others.
    pub needs: &'a [bool],
    /// The op's name, for errors.
    pub(crate) op: &'static str,
}

impl<'a, T: Float> BackwardCtx<'a, T> {
    /// The op's output for a backward pass that reads its values (`exp`,
    /// `sigmoid`, `softmax`): an error if it was written in place since
    /// the op made it (a fresh output is at version 0).
    pub fn saved_output(&self) -> Result<&'a Tensor<T>> {
        crate::saved::check(self.op, "output", self.output, 0)?;
        Ok(self.output)
    }
}

pub(crate) type BackwardFn<T> =
    Arc<dyn Fn(&BackwardCtx<'_, T>) -> Result<Vec<Option<Tensor<T>>>> + Send + Sync>;

/// A node's inputs and backward closure, taken out for one backward step.
type Fetched<T> = (Vec<Option<Tensor<T>>>, BackwardFn<T>);

pub(crate) struct NodeState<T: Float> {
    /// One entry per op input: `None` where the input needs no gradient.
    inputs: Vec<Option<Tensor<T>>>,
    backward: BackwardFn<T>,
}

/// The record of one op application.
pub(crate) struct Node<T: Float> {
    pub(crate) name: &'static str,
    state: Mutex<Option<NodeState<T>>>,
}

static LIVE_NODES: AtomicUsize = AtomicUsize::new(0);

/// How many recorded graph nodes still hold their saved inputs right now, in
/// the whole process (a node lets go when backward frees it or when its
/// output is dropped). For leak tests: flat over a training loop.
pub fn live_nodes() -> usize {
    LIVE_NODES.load(Ordering::Relaxed)
}

impl<T: Float> Node<T> {
    pub(crate) fn new(
        name: &'static str,
        inputs: Vec<Option<Tensor<T>>>,
        backward: BackwardFn<T>,
    ) -> Self {
        LIVE_NODES.fetch_add(1, Ordering::Relaxed);
        Node {
            name,
            state: Mutex::new(Some(NodeState { inputs, backward })),
        }
    }

    /// Frees the node and hands back its inputs (for iterative dropping).
    pub(crate) fn take_inputs(&mut self) -> Vec<Tensor<T>> {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match state {
            Some(NodeState { inputs, backward }) => {
                LIVE_NODES.fetch_sub(1, Ordering::Relaxed);
                drop(backward);
                inputs.into_iter().flatten().collect()
            }
            None => Vec::new(),
        }
    }

    fn inputs(&self) -> Result<Vec<Option<Tensor<T>>>> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.as_ref() {
            Some(s) => Ok(s.inputs.clone()),
            None => Err(Error::GraphFreed { op: self.name }),
        }
    }

    fn fetch(&self, free: bool) -> Result<Fetched<T>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let taken = if free {
            let s = st.take();
            if s.is_some() {
                LIVE_NODES.fetch_sub(1, Ordering::Relaxed);
            }
            s
        } else {
            st.as_ref().map(|s| NodeState {
                inputs: s.inputs.clone(),
                backward: Arc::clone(&s.backward),
            })
        };
        taken
            .map(|s| (s.inputs, s.backward))
            .ok_or(Error::GraphFreed { op: self.name })
    }
}

impl<T: Float> Drop for Node<T> {
    fn drop(&mut self) {
        if self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            LIVE_NODES.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------
// Grad mode and anomaly mode (per thread, as in PyTorch)
// ---------------------------------------------------------------------------

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
}

/// Whether ops on this thread are recorded.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped"]
pub struct GradModeGuard {
    prev: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Turns recording on or off until the guard is dropped.
pub fn set_grad_enabled(on: bool) -> GradModeGuard {
    let prev = GRAD_ENABLED.with(|g| g.replace(on));
    GradModeGuard { prev }
}

/// Runs `f` without recording ops (evaluation, parameter updates).
///
/// ```
/// use autograd::{no_grad, Tensor};
/// let w = Tensor::<f32>::ones([3]).requires_grad_();
/// let y = no_grad(|| &w * 2.0);
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = set_grad_enabled(false);
    f()
}

/// Whether anomaly mode is on for this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly mode is restored when the guard is dropped"]
pub struct AnomalyGuard {
    prev: bool,
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.with(|a| a.set(self.prev));
    }
}

/// Anomaly mode: every op checks its output, and every backward step its
/// gradients, for NaN and infinity, and names the first op that made one
/// (a forward op panics; backward returns [`Error::Anomaly`]). Slow: for debugging.
pub fn detect_anomaly(on: bool) -> AnomalyGuard {
    let prev = ANOMALY.with(|a| a.replace(on));
    AnomalyGuard { prev }
}

// ---------------------------------------------------------------------------
// The backward pass
// ---------------------------------------------------------------------------

pub(crate) fn root_grad<T: Float>(root: &Tensor<T>, grad: Option<Tensor<T>>) -> Result<Tensor<T>> {
    if !root.requires_grad() {
        return Err(Error::NoGradFn);
    }
    match grad {
        Some(g) => {
            if g.shape() != root.shape() {
                return Err(Error::ShapeMismatch {
                    op: "backward",
                    lhs: root.shape(),
                    rhs: g.shape(),
                    reason: "(output and its gradient) differ".into(),
                });
            }
            Ok(g)
        }
        None => {
            if root.numel() != 1 {
                return Err(Error::NonScalarBackward {
                    shape: root.shape(),
                });
            }
            Ok(Tensor::ones(root.shape()))
        }
    }
}

/// Tensors reachable from `roots` through recorded inputs, each listed before
/// every tensor it was computed from.
fn topo_order<T: Float>(roots: &[Tensor<T>]) -> Result<Vec<Tensor<T>>> {
    let mut visited = HashSet::new();
    let mut post = Vec::new();
    let mut stack: Vec<(Tensor<T>, bool)> =
        roots.iter().rev().map(|r| (r.clone(), false)).collect();
    while let Some((t, done)) = stack.pop() {
        if done {
            post.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let inputs = match &t.inner.node {
            Some(node) => node.inputs()?,
            None => Vec::new(),
        };
        stack.push((t, true));
        for inp in inputs.into_iter().flatten() {
            if !visited.contains(&inp.id()) {
                stack.push((inp, false));
            }
        }
    }
    post.reverse();
    Ok(post)
}

fn accumulate<T: Float>(grads: &mut HashMap<u64, Tensor<T>>, id: u64, g: Tensor<T>) -> Result<()> {
    match grads.remove(&id) {
        Some(prev) => {
            grads.insert(id, prev.try_add(&g)?);
        }
        None => {
            grads.insert(id, g);
        }
    }
    Ok(())
}

/// One edge into a hooked leaf has been processed; after its last, the
/// leaf's gradient is final: accumulate it now and run its hooks.
fn finish_if_last<T: Float>(
    pending: &mut HashMap<u64, usize>,
    grads: &mut HashMap<u64, Tensor<T>>,
    leaf: &Tensor<T>,
) -> Result<()> {
    let Some(left) = pending.get_mut(&leaf.id()) else {
        return Ok(());
    };
    *left -= 1;
    if *left == 0 {
        if let Some(g) = grads.remove(&leaf.id()) {
            accumulate_leaf(leaf, &g, true)?;
        }
    }
    Ok(())
}

/// The engine. With `capture`, the gradients of those tensors are returned
/// and no `.grad` is touched (`torch.autograd.grad`); without, leaves (and
/// tensors that retain grad) accumulate into `.grad` (`Tensor::backward`).
pub(crate) fn run_backward<T: Float>(
    roots: &[Tensor<T>],
    root_grads: Vec<Tensor<T>>,
    capture: Option<&[Tensor<T>]>,
    retain_graph: bool,
    create_graph: bool,
) -> Result<Vec<Option<Tensor<T>>>> {
    let order = topo_order(roots)?;
    let _mode = set_grad_enabled(create_graph);
    let anomaly = is_anomaly_enabled();

    let mut grads: HashMap<u64, Tensor<T>> = HashMap::new();
    for (r, g) in roots.iter().zip(root_grads) {
        let g = if create_graph { g } else { g.detach() };
        accumulate(&mut grads, r.id(), g)?;
    }
    let capture_ids: HashMap<u64, Vec<usize>> = capture.map_or_else(HashMap::new, |c| {
        let mut m: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, t) in c.iter().enumerate() {
            m.entry(t.id()).or_default().push(i);
        }
        m
    });
    let mut captured = vec![None; capture.map_or(0, |c| c.len())];

    // Hooked leaves are finalized as soon as their last consumer has run
    // (`pending` counts the edges into each still to come), so that their
    // hooks fire early in the pass rather than where the order puts them.
    let hooked = if capture.is_none() {
        hooked_ids()
    } else {
        HashSet::new()
    };
    let mut pending: HashMap<u64, usize> = HashMap::new();
    if !hooked.is_empty() {
        for t in &order {
            if let Some(node) = &t.inner.node {
                for inp in node.inputs()?.into_iter().flatten() {
                    if inp.is_leaf() && hooked.contains(&inp.id()) {
                        *pending.entry(inp.id()).or_default() += 1;
                    }
                }
            }
        }
    }

    for t in &order {
        let Some(g) = grads.remove(&t.id()) else {
            continue;
        };
        if let Some(slots) = capture_ids.get(&t.id()) {
            for &i in slots {
                captured[i] = Some(g.clone());
            }
        } else if capture.is_none() && (t.is_leaf() || t.retains_grad()) {
            accumulate_leaf(t, &g, hooked.contains(&t.id()))?;
        }
        let Some(node) = &t.inner.node else {
            continue;
        };
        let (inputs, backward) = node.fetch(!retain_graph)?;
        let needs: Vec<bool> = inputs.iter().map(Option::is_some).collect();
        let in_grads = {
            // The engine checks what the node returns and names the node;
            // the ops inside its backward must not report first.
            let _quiet = anomaly.then(|| detect_anomaly(false));
            backward(&BackwardCtx {
                grad: &g,
                output: t,
                needs: &needs,
                op: node.name,
            })?
        };
        for (inp, gi) in inputs.into_iter().zip(in_grads) {
            let Some(inp) = inp else {
                continue;
            };
            let Some(gi) = gi else {
                // No gradient along this edge: one consumer fewer to wait for.
                finish_if_last(&mut pending, &mut grads, &inp)?;
                continue;
            };
            if gi.shape() != inp.shape() {
                return Err(Error::ShapeMismatch {
                    op: node.name,
                    lhs: inp.shape(),
                    rhs: gi.shape(),
                    reason:
                        "(input and the gradient its backward returned) differ: a bug in the op"
                            .into(),
                });
            }
            if anomaly && !gi.all_finite() {
                return Err(Error::Anomaly {
                    op: node.name,
                    phase: "backward",
                    shape: gi.shape(),
                });
            }
            accumulate(&mut grads, inp.id(), gi)?;
            finish_if_last(&mut pending, &mut grads, &inp)?;
        }
    }
    Ok(captured)
}

/// Options of [`grad`].
#[derive(Clone, Debug, Default)]
pub struct GradOptions<T: Float = f32> {
    /// Gradients of some scalar with respect to each output (default: ones, for scalars).
    pub grad_outputs: Option<Vec<Tensor<T>>>,
    /// Keep the graph for another backward.
    pub retain_graph: bool,
    /// Record the backward pass so that the returned gradients are differentiable.
    pub create_graph: bool,
    /// Return `None` for inputs the outputs do not depend on, instead of an error.
    pub allow_unused: bool,
}

/// The gradients of `outputs` with respect to `inputs`, returned rather than
/// accumulated into `.grad` (PyTorch's `torch.autograd.grad`).
///
/// With `create_graph`, the returned gradients are themselves in the graph:
/// differentiate them again for Hessian-vector products or gradient penalties.
///
/// ```
/// use autograd::{grad, GradOptions, Tensor};
/// let x = Tensor::<f64>::from_vec(vec![3.0], [1]).requires_grad_();
/// let y = x.powf(3.0).sum();                       // y = x^3
/// let opts = GradOptions { create_graph: true, ..Default::default() };
/// let dy = grad(&[y], &[x.clone()], opts).remove(0).unwrap(); // 3x^2 = 27
/// let d2y = grad(&[dy.sum()], &[x], GradOptions::default()).remove(0).unwrap(); // 6x = 18
/// assert_eq!((dy.item(), d2y.item()), (27.0, 18.0));
/// ```
#[track_caller]
pub fn grad<T: Float>(
    outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    opts: GradOptions<T>,
) -> Vec<Option<Tensor<T>>> {
    crate::error::ok(try_grad(outputs, inputs, opts))
}

/// Fallible form of [`grad`].
pub fn try_grad<T: Float>(
    outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    opts: GradOptions<T>,
) -> Result<Vec<Option<Tensor<T>>>> {
    let root_grads = match opts.grad_outputs {
        Some(gs) => {
            if gs.len() != outputs.len() {
                return Err(Error::InvalidArgument {
                    op: "grad",
                    shape: vec![],
                    reason: format!("{} grad_outputs for {} outputs", gs.len(), outputs.len()),
                });
            }
            outputs
                .iter()
                .zip(gs)
                .map(|(o, g)| root_grad(o, Some(g)))
                .collect::<Result<Vec<_>>>()?
        }
        None => outputs
            .iter()
            .map(|o| root_grad(o, None))
            .collect::<Result<Vec<_>>>()?,
    };
    for (i, x) in inputs.iter().enumerate() {
        if !x.requires_grad() {
            return Err(Error::InvalidArgument {
                op: "grad",
                shape: x.shape(),
                reason: format!("input {i} does not require grad"),
            });
        }
    }
    let out = run_backward(
        outputs,
        root_grads,
        Some(inputs),
        opts.retain_graph || opts.create_graph,
        opts.create_graph,
    )?;
    if !opts.allow_unused {
        if let Some(i) = out.iter().position(Option::is_none) {
            return Err(Error::UnusedInput { index: i });
        }
    }
    Ok(out)
}

/// The graph behind `root` in Graphviz DOT (as DeZero's `plot_dot_graph`):
/// boxes are ops, ellipses are tensors with their shapes. Render with
/// `dot -Tpng graph.dot -o graph.png`.
pub fn to_dot<T: Float>(root: &Tensor<T>) -> String {
    let mut s =
        String::from("digraph autograd {\n  rankdir=BT;\n  node [fontname=\"Helvetica\"];\n");
    let mut seen = HashSet::new();
    let mut stack = vec![root.clone()];
    while let Some(t) = stack.pop() {
        if !seen.insert(t.id()) {
            continue;
        }
        let color = if t.is_leaf() { "lightblue" } else { "white" };
        let _ = writeln!(
            s,
            "  t{} [label=\"{:?}\", shape=ellipse, style=filled, fillcolor={color}];",
            t.id(),
            t.shape()
        );
        if let Some(node) = &t.inner.node {
            let _ = writeln!(
                s,
                "  f{} [label=\"{}\", shape=box, style=filled, fillcolor=lightgrey];",
                t.id(),
                node.name
            );
            let _ = writeln!(s, "  f{} -> t{};", t.id(), t.id());
            if let Ok(inputs) = node.inputs() {
                for inp in inputs.into_iter().flatten() {
                    let _ = writeln!(s, "  t{} -> f{};", inp.id(), t.id());
                    stack.push(inp);
                }
            }
        }
    }
    s.push_str("}\n");
    s
}
