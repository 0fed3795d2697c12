//! Forward hooks and pre-hooks, as PyTorch's `register_forward_hook` and
//! `register_forward_pre_hook`.
//!
//! A module that can be hooked has a [`Hooks`] field (every layer of this
//! crate does; `#[derive(Module)]` finds the field by its type). Calling a
//! module's [`forward`](crate::Module::forward) runs its pre-hooks, its
//! [`forward_impl`](crate::Module::forward_impl), then its forward hooks; a
//! hook that returns `Some` replaces the input or output. Hooks are
//! registered on any sub-module by its dotted name and removed with the
//! handle they return.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use autograd::Tensor;
//! use nn::{Linear, LinearConfig, Module, ReLU, Sequential};
//! let net = Sequential::new()
//!     .add(Linear::new(LinearConfig::new(4, 8)))
//!     .add(ReLU)
//!     .add(Linear::new(LinearConfig::new(8, 2)));
//! // The fraction of ReLU outputs that are zero, seen on every call.
//! let dead = Arc::new(Mutex::new(Vec::new()));
//! let seen = dead.clone();
//! let handle = net
//!     .register_forward_hook("1", move |_input, output: &Tensor| {
//!         let zeros = output.to_vec().iter().filter(|v| **v == 0.0).count();
//!         seen.lock().unwrap().push(zeros as f32 / output.numel() as f32);
//!         None // keep the output as it is
//!     })
//!     .unwrap();
//! net.forward(&Tensor::randn([3, 4]));
//! assert_eq!(dead.lock().unwrap().len(), 1);
//! handle.remove();
//! net.forward(&Tensor::randn([3, 4]));
//! assert_eq!(dead.lock().unwrap().len(), 1);
//! ```

use std::any::Any;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use autograd::{Float, Tensor};

/// A pre-hook: sees the input, may replace it.
pub type PreHook<T> = Arc<dyn Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync>;
/// A forward hook: sees the input and the output, may replace the output.
pub type ForwardHook<T> = Arc<dyn Fn(&Tensor<T>, &Tensor<T>) -> Option<Tensor<T>> + Send + Sync>;

#[derive(Default)]
struct HookList {
    next: u64,
    // Type-erased over the float type: a `PreHook<T>` / `ForwardHook<T>`.
    pre: Vec<(u64, Box<dyn Any + Send + Sync>)>,
    post: Vec<(u64, Box<dyn Any + Send + Sync>)>,
}

/// A module's hook slot. Empty until the first hook is registered: calling a
/// module without hooks costs one atomic load.
pub struct Hooks {
    slot: OnceLock<Arc<Mutex<HookList>>>,
}

impl Hooks {
    /// An empty slot.
    pub const fn new() -> Self {
        Hooks {
            slot: OnceLock::new(),
        }
    }

    fn list(&self) -> &Arc<Mutex<HookList>> {
        self.slot.get_or_init(Default::default)
    }

    fn add(&self, hook: Box<dyn Any + Send + Sync>, pre: bool) -> HookHandle {
        let list = self.list();
        let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
        l.next += 1;
        let id = l.next;
        if pre {
            l.pre.push((id, hook));
        } else {
            l.post.push((id, hook));
        }
        HookHandle {
            list: Arc::downgrade(list),
            id,
        }
    }

    /// Registers a pre-hook on this module.
    pub fn add_pre<T: Float>(&self, hook: PreHook<T>) -> HookHandle {
        self.add(Box::new(hook), true)
    }

    /// Registers a forward hook on this module.
    pub fn add_forward<T: Float>(&self, hook: ForwardHook<T>) -> HookHandle {
        self.add(Box::new(hook), false)
    }

    /// Number of hooks registered (pre-hooks and forward hooks).
    pub fn len(&self) -> usize {
        self.slot.get().map_or(0, |l| {
            let l = l.lock().unwrap_or_else(|e| e.into_inner());
            l.pre.len() + l.post.len()
        })
    }

    /// Whether no hook is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on `x` between the hooks for float type `T`. The lists are
    /// copied out before any hook runs, so a hook may call the module again
    /// or register and remove hooks.
    pub fn run<T: Float>(
        &self,
        x: &Tensor<T>,
        f: impl FnOnce(&Tensor<T>) -> Tensor<T>,
    ) -> Tensor<T> {
        let Some(list) = self.slot.get() else {
            return f(x);
        };
        let (pre, post): (Vec<PreHook<T>>, Vec<ForwardHook<T>>) = {
            let l = list.lock().unwrap_or_else(|e| e.into_inner());
            (
                l.pre
                    .iter()
                    .filter_map(|(_, h)| h.downcast_ref::<PreHook<T>>().cloned())
                    .collect(),
                l.post
                    .iter()
                    .filter_map(|(_, h)| h.downcast_ref::<ForwardHook<T>>().cloned())
                    .collect(),
            )
        };
        let mut input = x.clone();
        for h in &pre {
            if let Some(new) = h(&input) {
                input = new;
            }
        }
        let mut output = f(&input);
        for h in &post {
            if let Some(new) = h(&input, &output) {
                output = new;
            }
        }
        output
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks::new()
    }
}

/// A copy of a module starts without hooks (they are registered on one module).
impl Clone for Hooks {
    fn clone(&self) -> Self {
        Hooks::new()
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hooks({})", self.len())
    }
}

/// Removes the hook it was returned for (PyTorch's `RemovableHandle`).
/// Dropping the handle keeps the hook.
#[derive(Debug)]
#[must_use = "keep the handle to remove the hook later"]
pub struct HookHandle {
    list: Weak<Mutex<HookList>>,
    id: u64,
}

impl HookHandle {
    /// Removes the hook; a no-op when the module is gone.
    pub fn remove(self) {
        if let Some(list) = self.list.upgrade() {
            let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
            l.pre.retain(|(id, _)| *id != self.id);
            l.post.retain(|(id, _)| *id != self.id);
        }
    }
}
