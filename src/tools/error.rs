//! [`Failure`]: the error an example's `main` returns. Any error converts
//! into it with `?`, and when `main` returns it the message is printed as
//! the user should read it: `Error: <message>` and its causes, not the
//! `Debug` dump of an error enum.
//!
//! ```
//! use dlfs::tools::Failure;
//! fn run(path: &str) -> Result<String, Failure> {
//!     if path.is_empty() {
//!         return Err(Failure::msg("no file named: pass --weights PATH"));
//!     }
//!     Ok(std::fs::read_to_string(path)?) // io::Error -> Failure
//! }
//! let e = run("/nonexistent/weights").unwrap_err();
//! assert!(format!("{e:?}").contains("No such file"));
//! assert_eq!(format!("{:?}", run("").unwrap_err()), "no file named: pass --weights PATH");
//! ```

use std::error::Error;
use std::fmt;

/// An error for the user: its `Debug` (what `main` prints) is its message
/// followed by its chain of causes.
pub struct Failure(Box<dyn Error + Send + Sync + 'static>);

impl Failure {
    /// A failure with this message.
    pub fn msg(message: impl Into<String>) -> Failure {
        Failure(message.into().into())
    }
}

/// `?` converts any error (as `anyhow` does; `Failure` itself is no `Error`,
/// which is what makes this blanket conversion possible).
impl<E: Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(Box::new(e))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            // thiserror messages often embed their source already: skip repeats.
            if !self.0.to_string().contains(&c.to_string()) {
                write!(f, "\n  caused by: {c}")?;
            }
            cause = c.source();
        }
        Ok(())
    }
}
