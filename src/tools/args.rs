//! Minimal command-line options for the examples: `--name value` and `--flag`.
//!
//! ```
//! use dlfs::tools::Args;
//! let a = Args::from(["--epochs", "3", "--augment"]);
//! assert_eq!(a.get("--epochs", 20usize), 3);
//! assert_eq!(a.get("--seed", 0u64), 0);
//! assert!(a.flag("--augment") && !a.flag("--quick"));
//! ```

use std::str::FromStr;

/// The process's arguments (or any list), looked up by name.
#[derive(Clone, Debug, Default)]
pub struct Args {
    items: Vec<String>,
}

impl Args {
    /// The program's own arguments.
    pub fn parse() -> Args {
        Args {
            items: std::env::args().skip(1).collect(),
        }
    }

    /// Arguments from a list (for tests and for calling an example from code).
    pub fn from<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Args {
        Args {
            items: items.into_iter().map(Into::into).collect(),
        }
    }

    /// The value after `name`, parsed, or `default` when absent.
    ///
    /// # Panics
    /// When the value does not parse, with a message naming the option.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.value(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                panic!(
                    "option {name}: cannot parse '{v}' as {}",
                    std::any::type_name::<T>()
                )
            }),
        }
    }

    /// The raw value after `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        let i = self.items.iter().position(|a| a == name)?;
        self.items.get(i + 1).map(String::as_str)
    }

    /// Whether `name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.items.iter().any(|a| a == name)
    }
}
