//! The mutation harness: each iteration takes an input of the committed
//! corpus and mutates it 1 to 4 times (bit flips, byte sets, "interesting"
//! integers written over header fields, little- or big-endian, numbers in a
//! text header replaced by huge ones, truncation, extension, splicing with
//! another input, deleted and duplicated chunks), then runs the target
//! under `catch_unwind`. A panic, an input that makes the reader hold more
//! than [`PEAK_BUDGET`] bytes at once, a single allocation over
//! [`HARD_LIMIT`](crate::alloc::HARD_LIMIT) or an input that runs longer
//! than [`TIME_LIMIT`] is a finding. Iteration `i` of a seed is a function
//! of the seed, the target and `i` alone, so any finding replays on its own.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::targets::Target;

/// The most bytes a reader may hold at once for one input (beyond its
/// length times [`EXPANSION`], for decompression).
pub const PEAK_BUDGET: usize = 64 << 20;
/// How far a gzip stream can expand (deflate's limit is about 1032).
pub const EXPANSION: usize = 1100;
/// The longest one input may run.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// What went wrong on one input.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The iteration that made the input (replay with the same seed).
    pub iteration: u64,
    /// `panic` or `allocation`.
    pub kind: &'static str,
    /// The panic message or the bytes held.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
}

/// A target's run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Inputs run.
    pub iterations: u64,
    /// How many of them the reader accepted.
    pub accepted: u64,
    /// What went wrong.
    pub findings: Vec<Finding>,
    /// The most bytes held at once for one input.
    pub max_peak: usize,
    /// Wall time.
    pub seconds: f64,
}

/// How long a run lasts: iterations, seconds, or whichever ends first.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// At most this many inputs.
    pub iterations: Option<u64>,
    /// At most this long.
    pub seconds: Option<f64>,
}

// What is running, for the messages of an abort (written without allocating).
static TARGET: Mutex<&'static str> = Mutex::new("");
static SEED: AtomicU64 = AtomicU64::new(0);
static ITERATION: AtomicU64 = AtomicU64::new(u64::MAX);
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

fn epoch() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Prints `what` with the target, seed and iteration running, and aborts:
/// for an allocation that must not be attempted and for a hang.
pub fn abort_with(what: &[u8]) -> ! {
    let mut err = std::io::stderr();
    let target = TARGET.try_lock().map(|t| *t).unwrap_or("?");
    let _ = err.write_all(b"\nfuzz finding: ");
    let _ = err.write_all(what);
    let _ = err.write_all(b"; target ");
    let _ = err.write_all(target.as_bytes());
    let _ = err.write_all(b", seed ");
    write_u64(&mut err, SEED.load(Ordering::Relaxed));
    let _ = err.write_all(b", iteration ");
    write_u64(&mut err, ITERATION.load(Ordering::Relaxed));
    let _ = err.write_all(b" (replay: fuzz --target NAME --seed S --replay I)\n");
    std::process::abort()
}

fn write_u64(w: &mut impl Write, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let _ = w.write_all(&buf[i..]);
}

/// The watchdog: aborts when one input has run past [`TIME_LIMIT`].
fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = epoch().elapsed().as_millis() as u64;
            let started = STARTED_MS.load(Ordering::Relaxed);
            if ACTIVE.load(Ordering::Relaxed) == 1
                && now.saturating_sub(started) > TIME_LIMIT.as_millis() as u64
            {
                abort_with(b"an input ran longer than TIME_LIMIT (10 s)");
            }
        });
        // Panics of the targets are findings, recorded quietly; any other
        // (a failing assertion of the caller) is reported as usual.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::Relaxed) != 1 {
                return default(info);
            }
            let msg = match info.payload().downcast_ref::<&str>() {
                Some(s) => s.to_string(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let at = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            *PANIC_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg + &at);
        }));
    });
}

/// SplitMix64: small, seedable, and enough for choosing mutations.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

const INTERESTING: [u64; 31] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 53,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

const INTERESTING_TEXT: [&str; 12] = [
    "0",
    "1",
    "-1",
    "4294967296",
    "1099511627776",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "NaN",
    "",
];

/// `input` mutated once by `rng`; `others` are the corpus, for splicing.
pub fn mutate_once(input: &mut Vec<u8>, others: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next_u64() as u8;
        }
        2 | 3 if len > 0 => {
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1, 2, 4, 8][rng.below(4)];
            let bytes = if rng.below(2) == 0 {
                v.to_le_bytes()
            } else {
                (v << (64 - 8 * width).min(63)).to_be_bytes()
            };
            let at = rng.below(len);
            for (k, b) in bytes.iter().take(width).enumerate() {
                if let Some(slot) = input.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
        4 => input.truncate(rng.below(len + 1)),
        5 => {
            let n = 1 + rng.below(64);
            if len > 0 && rng.below(2) == 0 {
                let from = rng.below(len);
                let chunk: Vec<u8> = input[from..(from + n).min(len)].to_vec();
                input.extend_from_slice(&chunk);
            } else {
                input.extend((0..n).map(|_| rng.next_u64() as u8));
            }
        }
        6 if !others.is_empty() => {
            let other = &others[rng.below(others.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        7 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            input.drain(at..at + n);
        }
        8 if len > 0 => {
            // A run of ASCII digits (a size or an offset in a text header).
            let starts: Vec<usize> = (0..len)
                .filter(|&i| {
                    input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit())
                })
                .collect();
            if !starts.is_empty() {
                let s = starts[rng.below(starts.len())];
                let e = (s..len)
                    .find(|&i| !input[i].is_ascii_digit())
                    .unwrap_or(len);
                let text = INTERESTING_TEXT[rng.below(INTERESTING_TEXT.len())];
                input.splice(s..e, text.bytes());
            }
        }
        9 if len >= 8 => {
            // A length prefix (safetensors' header size).
            let v = INTERESTING[rng.below(INTERESTING.len())];
            input[..8].copy_from_slice(&v.to_le_bytes());
        }
        _ => {
            let i = rng.below(len + 1);
            input.insert(i, rng.next_u64() as u8);
        }
    }
}

/// The input of iteration `iteration` of `seed` over `corpus`.
pub fn input_for(corpus: &[Vec<u8>], name: &str, seed: u64, iteration: u64) -> Vec<u8> {
    let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = Rng::new(seed ^ salt ^ iteration.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut input = corpus[rng.below(corpus.len())].clone();
    // One input in 32 runs unmutated, so that the corpus itself is checked.
    if rng.below(32) != 0 {
        for _ in 0..1 + rng.below(4) {
            mutate_once(&mut input, corpus, &mut rng);
        }
    }
    input
}

/// Runs `target` on one input; returns whether it accepted it, or the finding.
pub fn run_one(target: &Target, input: &[u8], iteration: u64) -> Result<(bool, usize), Finding> {
    start_watchdog();
    ITERATION.store(iteration, Ordering::Relaxed);
    let before = alloc::reset_peak();
    STARTED_MS.store(epoch().elapsed().as_millis() as u64, Ordering::Relaxed);
    ACTIVE.store(1, Ordering::Relaxed);
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    ACTIVE.store(0, Ordering::Relaxed);
    let held = alloc::peak().saturating_sub(before);
    match outcome {
        Err(_) => Err(Finding {
            iteration,
            kind: "panic",
            message: PANIC_MESSAGE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default(),
            input: input.to_vec(),
        }),
        Ok(_) if held > PEAK_BUDGET + EXPANSION * input.len() => Err(Finding {
            iteration,
            kind: "allocation",
            message: format!(
                "held {held} bytes at once for an input of {} bytes",
                input.len()
            ),
            input: input.to_vec(),
        }),
        Ok(accepted) => Ok((accepted, held)),
    }
}

/// Fuzzes `target` from `corpus` with `seed` for `budget`.
pub fn fuzz(target: &Target, corpus: &[Vec<u8>], seed: u64, budget: Budget) -> Report {
    assert!(!corpus.is_empty(), "{}: an empty corpus", target.name);
    *TARGET.lock().unwrap_or_else(|p| p.into_inner()) = target.name;
    SEED.store(seed, Ordering::Relaxed);
    let start = Instant::now();
    let mut report = Report::default();
    loop {
        if budget.iterations.is_some_and(|n| report.iterations >= n)
            || budget
                .seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let i = report.iterations;
        let input = input_for(corpus, target.name, seed, i);
        match run_one(target, &input, i) {
            Ok((accepted, held)) => {
                report.accepted += u64::from(accepted);
                report.max_peak = report.max_peak.max(held);
            }
            Err(f) => report.findings.push(f),
        }
        report.iterations += 1;
    }
    report.seconds = start.elapsed().as_secs_f64();
    report
}
