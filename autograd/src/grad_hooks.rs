//! Post-accumulate-grad hooks on leaves (PyTorch's
//! `register_post_accumulate_grad_hook`), kept in a table beside the
//! tensors; the engine (`graph`) finalizes hooked leaves early and runs them.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::dtype::Float;
use crate::error::Result;
use crate::tensor::Tensor;

/// A hook called with a leaf once its `.grad` is final for a backward pass.
pub type PostGradHook<T> = Arc<dyn Fn(&Tensor<T>) + Send + Sync>;

/// Hooks by tensor id, type-erased (`PostGradHook<T>` for the tensor's `T`),
/// kept beside the tensors rather than in them so that a tensor without
/// hooks pays nothing.
type HookTable = HashMap<u64, Vec<(usize, Box<dyn Any + Send + Sync>)>>;

static HOOKS: Mutex<Option<HookTable>> = Mutex::new(None);
static HOOK_COUNT: AtomicUsize = AtomicUsize::new(0);
static NEXT_HOOK: AtomicUsize = AtomicUsize::new(1);

fn hook_table() -> std::sync::MutexGuard<'static, Option<HookTable>> {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a hook registered with
/// [`Tensor::register_post_accumulate_grad_hook`].
#[derive(Debug)]
#[must_use = "a hook stays registered until its handle's remove() is called"]
pub struct GradHookHandle {
    tensor: u64,
    key: usize,
}

impl GradHookHandle {
    /// Unregisters the hook (hooks are not removed when the handle is dropped,
    /// as in PyTorch).
    pub fn remove(self) {
        let mut table = hook_table();
        let Some(map) = table.as_mut() else { return };
        if let Some(list) = map.get_mut(&self.tensor) {
            let before = list.len();
            list.retain(|(k, _)| *k != self.key);
            HOOK_COUNT.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                map.remove(&self.tensor);
            }
        }
    }
}

impl<T: Float> Tensor<T> {
    /// Calls `hook(leaf)` each time a backward pass has finished
    /// accumulating this leaf's `.grad` (PyTorch's
    /// `register_post_accumulate_grad_hook`). The engine finalizes a hooked
    /// leaf as soon as the last op that used it has passed its gradient back,
    /// not at the end of the pass, so the hook can start work on the
    /// gradient (an all-reduce) while the rest of the backward runs. Not
    /// called by [`grad`](crate::grad()) (which leaves `.grad` alone).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use autograd::Tensor;
    /// let w = Tensor::<f32>::ones([2]).requires_grad_();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let handle = w.register_post_accumulate_grad_hook(move |leaf| {
    ///     s.lock().unwrap().push(leaf.grad().unwrap().to_vec())
    /// });
    /// (&w * 3.0).sum().backward();
    /// assert_eq!(*seen.lock().unwrap(), vec![vec![3.0, 3.0]]);
    /// handle.remove();
    /// (&w * 3.0).sum().backward();
    /// assert_eq!(seen.lock().unwrap().len(), 1);
    /// ```
    pub fn register_post_accumulate_grad_hook(
        &self,
        hook: impl Fn(&Tensor<T>) + Send + Sync + 'static,
    ) -> GradHookHandle {
        let key = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
        let hook: PostGradHook<T> = Arc::new(hook);
        hook_table()
            .get_or_insert_with(HashMap::new)
            .entry(self.id())
            .or_default()
            .push((key, Box::new(hook)));
        HOOK_COUNT.fetch_add(1, Ordering::Relaxed);
        GradHookHandle {
            tensor: self.id(),
            key,
        }
    }
}

/// The ids of the tensors that have hooks now (empty, without locking, when none do).
pub(crate) fn hooked_ids() -> HashSet<u64> {
    if HOOK_COUNT.load(Ordering::Relaxed) == 0 {
        return HashSet::new();
    }
    hook_table()
        .as_ref()
        .map_or_else(HashSet::new, |m| m.keys().copied().collect())
}

/// Runs `t`'s hooks (taken out of the table first: a hook may block).
fn run_hooks<T: Float>(t: &Tensor<T>) {
    let hooks: Vec<PostGradHook<T>> = hook_table()
        .as_ref()
        .and_then(|m| m.get(&t.id()))
        .map(|list| {
            list.iter()
                .filter_map(|(_, h)| h.downcast_ref::<PostGradHook<T>>().cloned())
                .collect()
        })
        .unwrap_or_default();
    for h in hooks {
        h(t);
    }
}

/// Adds `g` to the leaf's `.grad`, then runs its hooks if it has any.
pub(crate) fn accumulate_leaf<T: Float>(t: &Tensor<T>, g: &Tensor<T>, hooked: bool) -> Result<()> {
    let acc = match t.grad() {
        Some(prev) => prev.try_add(g)?,
        None => g.clone(),
    };
    t.set_grad(Some(acc));
    if hooked {
        run_hooks(t);
    }
    Ok(())
}
