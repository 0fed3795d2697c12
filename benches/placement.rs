//! Where the machine has put our two threads: the time for a cache line to
//! go from one core to the other and back, and for 1 MiB written on one
//! core to be read and rewritten on the other and read back.
//!
//! Why: the development machine's two vCPUs sit sometimes on cores that
//! share an L3 and sometimes on cores that do not, and a multi-threaded
//! run's speed follows (2026-12-05, 2 vCPUs of an AMD EPYC: round trip
//! 57-122 ns on one L3, 225-300 ns across; DeepConvNet at batch 1 took
//! 0.150-0.155 ms on two threads in the first placement, 0.30-0.31 ms in
//! the second, 0.197 ms on one thread in either). `scripts/bench_vs_torch.py`
//! runs this before and after each run so that each figure can be read with
//! its placement. The threads are not pinned (neither are the kernels'),
//! and the figures mean something only with two CPUs free.
//!
//! Run: `cargo bench --bench placement` (option: `--trips N`, the round
//! trips over the three timed runs, 200,000).
mod common;
use common::*;

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// Waits until `flag` holds `value`: spinning, as the kernels' team does,
/// then yielding, so that a machine with one free CPU is slow, not stuck.
fn wait_for(flag: &AtomicU64, value: u64) {
    let mut spins = 0u32;
    while flag.load(Acquire) != value {
        spins = spins.saturating_add(1);
        if spins < 1 << 16 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Round trips above this many nanoseconds: the threads do not share an L3.
const FAR_NS: f64 = 200.0;

/// Nanoseconds per round trip of one cache line between two threads (the
/// other thread answers once before the clock starts).
fn round_trip(trips: u64) -> f64 {
    let flag = Arc::new(AtomicU64::new(0));
    let other = {
        let flag = Arc::clone(&flag);
        thread::spawn(move || {
            for i in 0..=trips {
                wait_for(&flag, 2 * i + 1);
                flag.store(2 * i + 2, Release);
            }
        })
    };
    flag.store(1, Release);
    wait_for(&flag, 2);
    let start = Instant::now();
    for i in 1..=trips {
        flag.store(2 * i + 1, Release);
        wait_for(&flag, 2 * i + 2);
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / trips as f64;
    other.join().expect("the other thread");
    ns
}

/// A buffer that two threads take turns at, each turn handed over through
/// a flag (release store, acquire load).
struct Shared {
    at: usize,
    len: usize,
}

impl Shared {
    /// The whole buffer.
    ///
    /// # Safety
    /// The caller's thread holds the turn (it stored the flag value the
    /// other thread waits for last, or loaded the one the other stored
    /// last), and no other slice from this call is alive.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self) -> &mut [u64] {
        std::slice::from_raw_parts_mut(self.at as *mut u64, self.len)
    }
}

/// Microseconds for 1 MiB written here, read and rewritten by the other
/// thread, and read back here (the median of `rounds`): 2 MiB cross
/// between the cores each round, in a window that also holds the three
/// passes over the buffer (an effective rate, not the link's).
fn handoff(rounds: u64) -> f64 {
    const LEN: usize = 1 << 17;
    let mut buf = vec![0u64; LEN];
    let shared = Arc::new(Shared {
        at: buf.as_mut_ptr() as usize,
        len: LEN,
    });
    let flag = Arc::new(AtomicU64::new(0));
    let other = {
        let (flag, shared) = (Arc::clone(&flag), Arc::clone(&shared));
        thread::spawn(move || {
            for r in 1..=rounds {
                wait_for(&flag, 2 * r - 1);
                // SAFETY: this thread holds the turn (it loaded 2r - 1);
                // `buf` outlives it (joined below).
                let v = unsafe { shared.slice() };
                v.iter_mut().for_each(|x| *x = x.wrapping_add(1));
                flag.store(2 * r, Release);
            }
        })
    };
    let mut us = Vec::new();
    for r in 1..=rounds {
        let start = Instant::now();
        // SAFETY: this thread holds the turn (the other waits for 2r - 1).
        unsafe { shared.slice() }.fill(r);
        flag.store(2 * r - 1, Release);
        wait_for(&flag, 2 * r);
        // SAFETY: the turn is back here (the other stored 2r, its last).
        let sum = unsafe { shared.slice() }
            .iter()
            .fold(0u64, |a, &v| a.wrapping_add(v));
        std::hint::black_box(sum);
        us.push(start.elapsed().as_secs_f64() * 1e6);
    }
    other.join().expect("the other thread");
    drop(buf);
    us.sort_by(f64::total_cmp);
    us[us.len() / 2]
}

fn main() {
    let trips = arg("--trips", 200_000) as u64;
    // The fastest of three: a descheduled thread only makes a run slower.
    let ns = (0..3)
        .map(|_| round_trip(trips / 3 + 1))
        .fold(f64::INFINITY, f64::min);
    let us = handoff(200);
    println!("core-to-core round trip          {ns:>9.0} ns");
    println!(
        "1 MiB handed over and back       {us:>9.1} us ({:.0} GB/s)",
        2.0 * (1 << 20) as f64 / (us * 1e-6) / 1e9
    );
    let place = if ns > FAR_NS {
        "far (no shared L3)"
    } else {
        "near (one L3)"
    };
    println!("placement                        {place}");
}
