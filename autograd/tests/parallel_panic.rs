//! A panic inside a parallel section (one thread's chunk of the work)
//! reaches the caller as that panic, payload and message intact, and the
//! compute threads keep working in parallel afterwards. Each check runs in
//! a child thread under a deadline, so a hang fails instead of stalling.

use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Barrier, Mutex, Once};
use std::thread::{self, ThreadId};
use std::time::Duration;

use autograd::{num_threads, parallel_for_each, set_num_threads, Tensor};

/// The sections share one team: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// At least 3 compute threads, so a panic can hit a helper's part while
/// others run.
fn threads() -> usize {
    static POOL: Once = Once::new();
    POOL.call_once(|| {
        set_num_threads(4).ok();
    });
    let n = num_threads();
    assert!(n >= 3, "the pool has {n} threads");
    n
}

/// Runs `f` in a child thread and fails if it does not return within 60 s.
fn with_deadline<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        tx.send(r).ok();
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what}: no answer within 60 s (a deadlock)"),
    }
}

/// Every part of one section on a thread of its own, all at once: a
/// barrier that only `n` concurrent parts pass (a section run serially
/// would block on it, and the deadline reports it).
fn runs_in_parallel(n: usize) -> Vec<ThreadId> {
    let barrier = Barrier::new(n);
    let ids = Mutex::new(Vec::new());
    parallel_for_each((0..n).collect(), |_, _: usize| {
        barrier.wait();
        ids.lock().unwrap().push(thread::current().id());
    });
    let mut ids = ids.into_inner().unwrap();
    ids.sort_by_key(|id| format!("{id:?}"));
    ids.dedup();
    ids
}

#[derive(Debug, PartialEq)]
struct BadChunk(usize);

#[test]
fn a_helpers_panic_reaches_the_caller_with_its_payload() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = threads();
    let payload = with_deadline("panic on a helper", move || {
        catch_unwind(|| {
            parallel_for_each((0..n).collect(), |_, i: usize| {
                if i == n - 1 {
                    panic_any(BadChunk(i));
                }
            })
        })
        .unwrap_err()
    });
    assert_eq!(payload.downcast_ref::<BadChunk>(), Some(&BadChunk(n - 1)));
}

#[test]
fn a_bad_shape_in_one_chunk_is_the_callers_panic_message() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = threads();
    let payload = with_deadline("bad shape on a helper", move || {
        catch_unwind(|| {
            parallel_for_each((0..n).collect(), |_, i: usize| {
                let k = if i == 1 { 4 } else { 3 };
                let _ = Tensor::<f32>::ones([2, 3]).matmul(&Tensor::ones([k, 5]));
            })
        })
        .unwrap_err()
    });
    let msg = payload.downcast_ref::<String>().expect("the op's message");
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );
}

#[test]
fn the_threads_keep_working_in_parallel_after_panics() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = threads();
    with_deadline("sections after panics", move || {
        assert_eq!(runs_in_parallel(n).len(), n);
        // The caller's own part (item 0), then a helper's, then both.
        for bad in [vec![0], vec![n - 1], vec![0, 1]] {
            let r = catch_unwind(AssertUnwindSafe(|| {
                parallel_for_each((0..n).collect(), |_, i: usize| {
                    assert!(!bad.contains(&i), "part {i} fails");
                })
            }));
            let msg = r.unwrap_err().downcast::<String>().map(|m| *m).unwrap();
            assert!(msg.starts_with("part "), "{msg}");
            assert_eq!(runs_in_parallel(n).len(), n, "after {bad:?} failed");
        }
        // Tensor ops still give the right numbers.
        let a = Tensor::<f32>::ones([256, 300]);
        assert!(a
            .matmul(&Tensor::ones([300, 200]))
            .to_vec()
            .iter()
            .all(|&v| v == 300.0));
    });
}
