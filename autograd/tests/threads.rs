//! `set_num_threads`: its own test binary, since the compute pool is built
//! once per process. The scenarios that need a process of their own (calls
//! racing from two threads, a call after work started) run this binary
//! again, one scenario per child process, under a deadline: a deadlock
//! fails the test instead of hanging it.

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use autograd::{num_threads, set_num_threads, Tensor};

/// A product big enough to be split across the compute threads.
fn parallel_work() {
    let a = Tensor::<f32>::ones([256, 300]);
    let b = Tensor::<f32>::ones([300, 200]);
    assert!(a.matmul(&b).to_vec().iter().all(|&v| v == 300.0));
}

#[test]
fn the_calling_thread_joins_the_pool_once() {
    set_num_threads(2).expect("first call builds the pool");
    assert_eq!(num_threads(), 2);
    // The caller is worker 0: parallel ops run here instead of being handed over.
    assert_eq!(rayon::current_thread_index(), Some(0));
    // Ops still work and give the right numbers.
    parallel_work();
    // Asking for the size the pool has changes nothing and is fine.
    set_num_threads(2).expect("the same size again");
    // Another size is an error that says what to do, not a silent no-op.
    let err = set_num_threads(4).unwrap_err().to_string();
    assert!(
        err.contains("set_num_threads") && err.contains("once") && err.contains("runs 2 threads"),
        "{err}"
    );
    assert_eq!(num_threads(), 2);
    parallel_work();
}

/// Runs the ignored test `name` of this binary in a child process and fails
/// if it fails or does not finish within a minute.
fn in_child(name: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .env("RAYON_NUM_THREADS", "3")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{name} failed in its child process");
            return;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{name} did not finish within 60 s: a deadlock");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn calls_racing_from_two_threads_never_deadlock() {
    in_child("child_two_threads_race");
}

#[test]
fn a_call_after_work_started_is_fine_for_the_same_size_and_an_error_otherwise() {
    in_child("child_after_work_started");
}

#[test]
#[ignore = "a scenario run in its own process by calls_racing_from_two_threads_never_deadlock"]
fn child_two_threads_race() {
    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                let r = set_num_threads(2);
                // Whichever thread built the pool, ops run from here.
                parallel_work();
                r
            })
        })
        .collect();
    for r in racers {
        r.join().unwrap().expect("the same size from both threads");
    }
    assert_eq!(num_threads(), 2);
    let err = set_num_threads(5).unwrap_err().to_string();
    assert!(
        err.contains("runs 2 threads") && err.contains("to 5"),
        "{err}"
    );
    parallel_work();
}

#[test]
#[ignore = "a scenario run in its own process by a_call_after_work_started_..."]
fn child_after_work_started() {
    // The first parallel op builds the pool with the default size
    // (RAYON_NUM_THREADS, set to 3 by the parent).
    parallel_work();
    assert_eq!(num_threads(), 3);
    set_num_threads(0).expect("0 asks for the default size the pool has");
    set_num_threads(3).expect("the size the pool has");
    let err = set_num_threads(2).unwrap_err().to_string();
    assert!(
        err.contains("runs 3 threads") && err.contains("to 2"),
        "{err}"
    );
    parallel_work();
}
