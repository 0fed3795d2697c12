//! [`Interrupt`]: Ctrl-C (SIGINT) and SIGTERM turned into a flag that a
//! training loop reads between steps, so that it can finish the step, write
//! a checkpoint and exit instead of dying mid-update. A second signal while
//! the first is being handled ends the process at once (exit status 130),
//! for a user who really wants out.
//!
//! ```
//! use dlfs::tools::Interrupt;
//! let stop = Interrupt::new(); // not tied to signals: `request` sets it
//! assert_eq!(stop.requested(), None);
//! stop.request(Interrupt::SIGTERM);
//! assert_eq!(stop.requested(), Some(Interrupt::SIGTERM));
//! assert_eq!(stop.exit_code(), 143);
//! assert_eq!(Interrupt::signal_name(Interrupt::SIGINT), "SIGINT (Ctrl-C)");
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A stop request, shared by clones: set by a signal (after
/// [`install`](Interrupt::install)) or by [`request`](Interrupt::request).
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    /// The signal number received, 0 while none.
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// SIGINT's number (Ctrl-C).
    pub const SIGINT: i32 = signal_hook::consts::SIGINT;
    /// SIGTERM's number (`kill`, a job scheduler's stop).
    pub const SIGTERM: i32 = signal_hook::consts::SIGTERM;

    /// A flag that no signal sets (tests, or a loop stopped by other means).
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// A flag set by SIGINT and SIGTERM from now on; a second one of
    /// them before the process exits terminates it at once with status 130.
    pub fn install() -> std::io::Result<Interrupt> {
        let stop = Interrupt::new();
        let seen = Arc::new(AtomicBool::new(false));
        for signal in [Self::SIGINT, Self::SIGTERM] {
            // Registered first, so it runs before `seen` is set: the first
            // signal only sets the flags, a second one exits.
            signal_hook::flag::register_conditional_shutdown(signal, 130, seen.clone())?;
            signal_hook::flag::register(signal, seen.clone())?;
            signal_hook::flag::register_usize(signal, stop.signal.clone(), signal as usize)?;
        }
        Ok(stop)
    }

    /// Sets the flag as if `signal` had arrived.
    pub fn request(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    /// The exit status a shell gives a process killed by the signal
    /// (128 + its number: 130 for SIGINT, 143 for SIGTERM); 1 when none came.
    pub fn exit_code(&self) -> i32 {
        self.requested().map_or(1, |s| 128 + s)
    }

    /// `signal` as a user knows it.
    pub fn signal_name(signal: i32) -> &'static str {
        match signal {
            Self::SIGINT => "SIGINT (Ctrl-C)",
            Self::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }
}
