//! A fork-join team for the kernels' short parallel sections (GEMM blocks,
//! convolution chunks, pooling planes, batch-norm channels, elementwise
//! rows, optimizer pieces): helper threads that wait for the next section by
//! spinning for a while before they sleep, as OpenMP's threads do.
//!
//! Why: rayon's idle workers go to sleep after ~30 µs without work, and on a
//! virtual machine waking a halted core takes tens of microseconds. A small
//! training step (the 784-100-100-10 MLP: six GEMMs of 20-60 µs separated by
//! serial elementwise work) paid that wake-up on nearly every product.
//! Spinning helpers make the fork cost a cache-line write. They spin with
//! `yield_now` after a short busy phase, so a runnable rayon worker sharing
//! the core is not starved, and sleep after [`SPIN`] without work.

use std::any::Any;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::dtype::Float;

/// How long an idle helper keeps looking for work before it sleeps.
const SPIN: Duration = Duration::from_micros(500);

type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// `section << 16 | parts`, one word so that a helper never pairs one
    /// section's number with another's part count; helpers wait for it to
    /// change.
    state: AtomicU64,
    /// The section's job (a `*const Job`, valid until `pending` reaches 0).
    job: AtomicPtr<()>,
    /// Parts not finished yet (the caller's own part excluded).
    pending: AtomicUsize,
    /// Set by a helper whose part panicked; the caller panics in turn.
    panicked: AtomicBool,
    /// The first helper panic's payload, which the caller resumes.
    payload: Mutex<Option<Box<dyn Any + Send>>>,
    sleeping: Vec<AtomicBool>,
}

struct Team {
    shared: &'static Shared,
    helpers: Vec<Thread>,
    /// One section at a time; a caller that finds it taken runs serially.
    busy: Mutex<()>,
}

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let n = rayon::current_num_threads().saturating_sub(1);
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            payload: Mutex::new(None),
            sleeping: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }));
        let helpers = (0..n)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("autograd-team-{}", i + 1))
                    .spawn(move || helper(shared, i))
                    .expect("spawning a compute thread")
                    .thread()
                    .clone()
            })
            .collect();
        Team {
            shared,
            helpers,
            busy: Mutex::new(()),
        }
    })
}

fn helper(s: &'static Shared, i: usize) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let state = loop {
            let e = s.state.load(Acquire);
            if e != seen {
                break e;
            }
            spins += 1;
            if spins < 1 << 10 {
                std::hint::spin_loop();
            } else if spins.is_multiple_of(16) && start.elapsed() > SPIN {
                s.sleeping[i].store(true, SeqCst);
                if s.state.load(SeqCst) == seen {
                    thread::park();
                }
                s.sleeping[i].store(false, SeqCst);
            } else {
                thread::yield_now();
            }
        };
        seen = state;
        if i + 1 < (state & 0xffff) as usize {
            // SAFETY: the caller keeps the job alive until `pending` is 0,
            // which it cannot be before this part is counted.
            let job = unsafe { *(s.job.load(Acquire) as *const Job) };
            crate::denormals::sync_flush_denormals();
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(i + 1))) {
                let mut slot = s.payload.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
                s.panicked.store(true, Release);
            }
            s.pending.fetch_sub(1, Release);
        }
    }
}

/// Runs `f(0)`, ..., `f(parts - 1)` in parallel, `f(0)` on this thread.
/// Serial when `parts` is 1, when the team is in use (nested or concurrent
/// calls), or when there are fewer threads than parts.
pub(crate) fn run(parts: usize, f: impl Fn(usize) + Sync) {
    let t = team();
    if parts <= 1 || parts > t.helpers.len() + 1 {
        return (0..parts).for_each(f);
    }
    let guard = match t.busy.try_lock() {
        Ok(g) => g,
        // Nothing is left half-done behind a poisoned lock: the section
        // state is reset by every section.
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => return (0..parts).for_each(f),
    };
    let s = t.shared;
    let job: Job = &f;
    s.job.store(&job as *const Job as *mut (), Release);
    s.pending.store(parts - 1, Release);
    let section = (s.state.load(Relaxed) >> 16) + 1;
    s.state.store(section << 16 | parts as u64, SeqCst);
    for (i, h) in t.helpers.iter().enumerate() {
        if s.sleeping[i].load(SeqCst) {
            h.unpark();
        }
    }
    // The helpers hold a pointer to `job` until they are done: `f(0)` must
    // not unwind past the wait. Catching its panic also keeps `busy` from
    // being poisoned, which would make every later section serial.
    let own = catch_unwind(AssertUnwindSafe(|| f(0)));
    wait_for_helpers(s);
    let helper = if s.panicked.swap(false, AcqRel) {
        s.payload.lock().unwrap_or_else(|e| e.into_inner()).take()
    } else {
        None
    };
    drop(guard);
    // The panic reaches the caller as it was raised (message and payload):
    // this thread's own first, else the first helper's.
    if let Err(p) = own {
        resume_unwind(p);
    }
    if let Some(p) = helper {
        resume_unwind(p);
    }
}

/// Waits until every helper has finished its part of the section.
fn wait_for_helpers(s: &Shared) {
    // Spin, then yield: when other programs load the cores, a helper may be
    // descheduled, and spinning would only delay it further.
    let mut spins = 0u32;
    while s.pending.load(Acquire) != 0 {
        spins += 1;
        if spins < 1 << 12 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Parts a section can have: the helpers and the caller.
pub(crate) fn threads() -> usize {
    team().helpers.len() + 1
}

/// Runs `f(index, chunk)` for every `per`-long chunk of `out` (the last may
/// be shorter). Each thread claims the next chunk when it is done with one,
/// so a thread that the OS pauses (other programs on the cores) holds up
/// only the chunk it is on; every chunk is computed the same way whoever
/// takes it, so results do not depend on the claiming order.
pub(crate) fn for_chunks<T: Send>(out: &mut [T], per: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if per == 0 || out.is_empty() {
        return;
    }
    let (len, chunks) = (out.len(), out.len().div_ceil(per));
    let base = out.as_mut_ptr() as usize;
    claim(chunks, |i| {
        let start = i * per;
        // SAFETY: chunk i is `out[start..start + per]`, claimed by one thread
        // only, and `out` is borrowed mutably for the whole call.
        let chunk = unsafe {
            std::slice::from_raw_parts_mut((base as *mut T).add(start), per.min(len - start))
        };
        f(i, chunk);
    });
}

/// `f(0)`, ..., `f(items - 1)`, each thread claiming the next index when
/// it is done with one (as [`for_chunks`] deals its chunks): uneven items
/// and a thread the OS pauses hold up only the item it is on.
pub(crate) fn claim(items: usize, f: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    run(threads().min(items), |_| loop {
        let i = next.fetch_add(1, Relaxed);
        if i >= items {
            break;
        }
        f(i);
    });
}

/// A vector of `len` zeros whose `per`-long chunks go to `f(index, chunk)`:
/// in parallel as [`for_chunks`] deals them, each zeroed by the thread that
/// takes it just before `f` sees it, or (`parallel` false) in order on this
/// thread after a parallel zero-fill. A plain `vec![0.0; len]` zeroes the
/// whole output on the calling thread while the others wait (memset was 6%
/// of a GoogLeNet step, in convolution and pooling outputs and gradients).
pub(crate) fn zeroed_chunks<T: Float>(
    len: usize,
    per: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    if !parallel || per == 0 {
        let mut v = zeros(len);
        if per > 0 {
            v.chunks_mut(per).enumerate().for_each(|(i, c)| f(i, c));
        }
        return v;
    }
    let mut v = Vec::with_capacity(len);
    for_chunks(&mut v.spare_capacity_mut()[..len], per, |i, c| {
        c.iter_mut().for_each(|x| {
            x.write(T::zero());
        });
        // SAFETY: every element of the chunk was just written.
        let c = unsafe { &mut *(c as *mut [MaybeUninit<T>] as *mut [T]) };
        f(i, c)
    });
    // SAFETY: the chunks cover `0..len` and each was zeroed.
    unsafe { v.set_len(len) };
    v
}

/// `len` zeros, written by every thread when there are many.
pub(crate) fn zeros<T: Float>(len: usize) -> Vec<T> {
    if len < 1 << 15 || threads() < 2 {
        return vec![T::zero(); len];
    }
    zeroed_chunks(len, len.div_ceil(threads()), true, |_, _| {})
}

/// `f(t, items[t])` for every item in parallel (one part per item: at most
/// [`threads`] items for them all to run at once).
pub(crate) fn for_each<I: Send>(items: Vec<I>, f: impl Fn(usize, I) + Sync) {
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    run(slots.len(), |t| {
        let item = slots[t].lock().expect("unpoisoned").take().expect("once");
        f(t, item)
    });
}

/// `f(0)`, ..., `f(parts - 1)` in parallel, collected in order.
pub(crate) fn map<R: Send>(parts: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = (0..parts).map(|_| Mutex::new(None)).collect();
    run(parts, |t| {
        *slots[t].lock().expect("unpoisoned") = Some(f(t))
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().expect("unpoisoned").expect("every part ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every chunk reaches `f` once, zeroed, in parallel or in order, over
    /// recycled allocations (which hold old values, not zeros).
    #[test]
    fn zeroed_chunks_hand_out_every_chunk_zeroed() {
        for round in 0..6 {
            // Dirty the allocator's free lists with non-zero values.
            drop(vec![7.5f32; 1 << 16]);
            let len: usize = [0, 5, 1000, 1 << 15, (1 << 16) + 3, 100_003][round];
            for parallel in [false, true] {
                let per = 997;
                let seen: Vec<AtomicUsize> = (0..len.div_ceil(per))
                    .map(|_| AtomicUsize::new(0))
                    .collect();
                let v = zeroed_chunks(len, per, parallel, |i, c: &mut [f32]| {
                    assert!(c.iter().all(|&x| x == 0.0), "chunk {i} not zeroed");
                    assert_eq!(c.len(), per.min(len - i * per));
                    seen[i].fetch_add(1, Relaxed);
                    c.fill(i as f32);
                });
                assert!(seen.iter().all(|s| s.load(Relaxed) == 1));
                assert!(v.iter().enumerate().all(|(j, &x)| x == (j / per) as f32));
            }
            assert!(zeros::<f64>(len).iter().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn every_part_runs_once_also_nested_and_after_a_panic() {
        let parts = threads().min(4);
        for round in 0..200 {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            run(parts, |t| {
                hits[t].fetch_add(1, Relaxed);
                // A nested section runs serially on this thread.
                let inner = AtomicUsize::new(0);
                run(parts, |_| {
                    inner.fetch_add(1, Relaxed);
                });
                assert_eq!(inner.load(Relaxed), parts);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "round {round}");
            if round % 50 == 0 {
                // Let the helpers fall asleep once in a while.
                thread::sleep(Duration::from_millis(2));
            }
        }
        let last = parts - 1;
        let caught = catch_unwind(|| run(parts, |t| assert!(t != last, "part {t} fails")));
        assert!(caught.is_err());
        let sum = AtomicUsize::new(0);
        run(parts, |t| {
            sum.fetch_add(t + 1, Relaxed);
        });
        assert_eq!(sum.load(Relaxed), parts * (parts + 1) / 2);
    }
}
