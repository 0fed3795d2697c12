//! Where the machine has put our two threads: the time for a cache line to
//! go from one core to the other and back, and for 1 MiB written on one
//! core to be read and rewritten on the other and read back.
//!
//! Why: the development machine's two vCPUs sit sometimes on cores that
//! share an L3 and sometimes on cores that do not, and a multi-threaded
//! run's speed follows (2026-12-05, 2 vCPUs of an AMD EPYC: round trip
//! 57-122 ns and 1 MiB handed over and back at ~188 GB/s on one L3,
//! 338-356 ns and ~89 GB/s across; DeepConvNet at batch 1 took 0.150-0.155
//! ms on two threads in the first placement, 0.30-0.31 ms in the second,
//! 0.197 ms on one thread in either). `scripts/bench_vs_torch.py` runs this
//! between rounds so that each figure can be read with its placement.
//!
//! Run: `cargo bench --bench placement` (option: `--trips N`, 200,000).

mod common;
use common::*;

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// Round trips above this many nanoseconds: the threads do not share an L3.
const FAR_NS: f64 = 200.0;

/// Nanoseconds per round trip of one cache line between two threads.
fn round_trip(trips: u64) -> f64 {
    let flag = Arc::new(AtomicU64::new(0));
    let other = {
        let flag = Arc::clone(&flag);
        thread::spawn(move || {
            for i in 1..=trips {
                while flag.load(Acquire) != 2 * i - 1 {
                    std::hint::spin_loop();
                }
                flag.store(2 * i, Release);
            }
        })
    };
    let start = Instant::now();
    for i in 1..=trips {
        flag.store(2 * i - 1, Release);
        while flag.load(Acquire) != 2 * i {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / trips as f64;
    other.join().expect("the other thread");
    ns
}

/// Microseconds for 1 MiB written here, read and rewritten by the other
/// thread, and handed back (the median of `rounds`): 2 MiB cross between
/// the cores.
fn handoff(rounds: u64) -> f64 {
    const LEN: usize = 1 << 17;
    let mut buf = vec![0u64; LEN];
    let at = buf.as_mut_ptr() as usize;
    // SAFETY (both threads): the buffer outlives the other thread (joined
    // below), and the flag's release/acquire pairs order every access:
    // one thread touches it at a time.
    let view = move || unsafe { std::slice::from_raw_parts_mut(at as *mut u64, LEN) };
    let flag = Arc::new(AtomicU64::new(0));
    let other = {
        let flag = Arc::clone(&flag);
        thread::spawn(move || {
            for r in 1..=rounds {
                while flag.load(Acquire) != 2 * r - 1 {
                    std::hint::spin_loop();
                }
                view().iter_mut().for_each(|v| *v = v.wrapping_add(1));
                flag.store(2 * r, Release);
            }
        })
    };
    let mut us = Vec::new();
    for r in 1..=rounds {
        let start = Instant::now();
        view().fill(r);
        flag.store(2 * r - 1, Release);
        while flag.load(Acquire) != 2 * r {
            std::hint::spin_loop();
        }
        let sum = view().iter().fold(0u64, |a, &v| a.wrapping_add(v));
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
