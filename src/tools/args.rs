//! Minimal command-line options for the examples: `--name value` and `--flag`.
//!
//! Every lookup records the option's name (and its default), so after the
//! last lookup [`Args::finish`] can answer `--help` with the list of options
//! and refuse a misspelt one instead of silently training with the defaults.
//!
//! ```
//! use dlfs::tools::Args;
//! let a = Args::from(["--epochs", "3", "--augment"]);
//! assert_eq!(a.get("--epochs", 20usize), 3);
//! assert_eq!(a.get("--seed", 0u64), 0);
//! assert!(a.flag("--augment") && !a.flag("--quick"));
//! assert!(a.check().is_ok());
//!
//! let typo = Args::from(["--epoch", "3"]);
//! let _ = typo.get("--epochs", 20usize);
//! assert!(typo.check().unwrap_err().contains("unknown option --epoch"));
//! ```

use std::cell::RefCell;
use std::fmt::Display;
use std::str::FromStr;

/// What `--help` prints for one option.
#[derive(Clone, Debug)]
struct Known {
    name: String,
    /// `None` for a flag; the default (or `VALUE`) for an option with a value.
    value: Option<String>,
}

/// The process's arguments (or any list), looked up by name.
#[derive(Clone, Debug, Default)]
pub struct Args {
    items: Vec<String>,
    known: RefCell<Vec<Known>>,
}

impl Args {
    /// The program's own arguments.
    pub fn parse() -> Args {
        Args::from(std::env::args().skip(1))
    }

    /// Arguments from a list (for tests and for calling an example from code).
    pub fn from<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Args {
        Args {
            items: items.into_iter().map(Into::into).collect(),
            known: RefCell::default(),
        }
    }

    fn learn(&self, name: &str, value: Option<String>) {
        let mut known = self.known.borrow_mut();
        if !known.iter().any(|k| k.name == name) {
            known.push(Known {
                name: name.to_string(),
                value,
            });
        }
    }

    /// The value after `name`, parsed, or `default` when absent.
    ///
    /// # Panics
    /// When the value does not parse, with a message naming the option.
    pub fn get<T: FromStr + Display>(&self, name: &str, default: T) -> T {
        self.learn(name, Some(format!("{default}")));
        self.parsed(name).unwrap_or(default)
    }

    /// The value after `name`, parsed, when present (for options whose
    /// default is only known later, such as a dataset's size).
    ///
    /// # Panics
    /// When the value does not parse, with a message naming the option.
    pub fn opt<T: FromStr>(&self, name: &str) -> Option<T> {
        self.learn(name, Some("VALUE".to_string()));
        self.parsed(name)
    }

    fn parsed<T: FromStr>(&self, name: &str) -> Option<T> {
        let v = self.raw(name)?;
        Some(v.parse().unwrap_or_else(|_| {
            panic!(
                "option {name}: cannot parse '{v}' as {}",
                std::any::type_name::<T>()
            )
        }))
    }

    /// The raw value after `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.learn(name, Some("VALUE".to_string()));
        self.raw(name)
    }

    fn raw(&self, name: &str) -> Option<&str> {
        let i = self.items.iter().position(|a| a == name)?;
        self.items.get(i + 1).map(String::as_str)
    }

    /// Whether `name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.learn(name, None);
        self.items.iter().any(|a| a == name)
    }

    /// The options looked up so far, one per line, with their defaults.
    pub fn usage(&self) -> String {
        let known = self.known.borrow();
        let mut s = String::from("Options:\n");
        for k in known.iter() {
            match &k.value {
                Some(v) => s.push_str(&format!("  {} {}\n", k.name, v)),
                None => s.push_str(&format!("  {}\n", k.name)),
            }
        }
        s.push_str("  --help\n");
        s
    }

    /// `Err` naming the first argument that no lookup asked for (a typo such
    /// as `--epoch`, or a stray value); call it after the last lookup.
    pub fn check(&self) -> Result<(), String> {
        let known = self.known.borrow();
        let mut i = 0;
        while i < self.items.len() {
            let a = &self.items[i];
            match known.iter().find(|k| &k.name == a) {
                Some(k) if k.value.is_some() => {
                    if i + 1 >= self.items.len() {
                        return Err(format!("option {a} needs a value"));
                    }
                    i += 2;
                }
                Some(_) => i += 1,
                None if a.starts_with('-') => return Err(format!("unknown option {a}")),
                None => return Err(format!("unexpected argument '{a}'")),
            }
        }
        Ok(())
    }

    /// Call after the last lookup: prints the options and exits on `--help`
    /// or `-h`, and exits with status 2 and the options on an unknown one.
    pub fn finish(&self) {
        if self.items.iter().any(|a| a == "--help" || a == "-h") {
            print!("{}", self.usage());
            std::process::exit(0);
        }
        if let Err(e) = self.check() {
            eprint!("error: {e}\n{}", self.usage());
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    #[test]
    fn check_accepts_known_and_refuses_the_rest() {
        let a = Args::from(["--lr", "0.5", "--quick"]);
        assert_eq!(a.get("--lr", 1.0f64), 0.5);
        assert!(a.flag("--quick"));
        assert_eq!(a.check(), Ok(()));

        let a = Args::from(["--lr"]);
        assert_eq!(a.get("--lr", 1.0f64), 1.0);
        assert_eq!(a.check(), Err("option --lr needs a value".to_string()));

        let a = Args::from(["--quick", "3"]);
        assert!(a.flag("--quick"));
        assert_eq!(a.check(), Err("unexpected argument '3'".to_string()));

        let a = Args::from(["--data", "d", "--train-subset", "7"]);
        assert_eq!(a.value("--data"), Some("d"));
        assert_eq!(a.opt::<usize>("--train-subset"), Some(7));
        assert_eq!(a.check(), Ok(()));
        let u = a.usage();
        assert!(u.contains("--data VALUE") && u.contains("--train-subset VALUE"));
    }
}
