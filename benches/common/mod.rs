//! What the benchmarks share: command-line options and timing.

#![allow(dead_code)] // each bench uses part of it

use std::time::Instant;

/// The value after `--name` on the command line, else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The string after `--name`, else empty.
pub fn arg_str(name: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_default()
}

/// Calls `f` `warmup` times untimed, then `iters` times timed, as the
/// PyTorch script does: (median, min, max) in milliseconds per call.
pub fn time_ms(warmup: usize, iters: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[t.len() / 2], t[0], t[t.len() - 1])
}
