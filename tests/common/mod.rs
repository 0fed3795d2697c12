//! What the example tests share: running an example as a user does, and
//! checking the CSV and PNG files it writes.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One example at a time: the machine has two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// A fresh output directory for one run.
pub fn out_dir(run: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("examples")
        .join(run);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `cargo run --release --example NAME -- ARGS`, waiting for the others.
pub fn cargo_run(name: &str, args: &[&str]) -> Output {
    let _one_at_a_time = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--release", "--quiet", "--example", name, "--"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start cargo for example {name}: {e}"))
}

/// Runs an example in quick mode into `out` and returns its stdout; panics
/// with its output if it fails.
pub fn run_quick(name: &str, out: &Path, extra: &[&str]) -> String {
    let out = out.to_str().expect("a UTF-8 temporary path");
    let mut args = vec!["--quick", "--out", out];
    args.extend_from_slice(extra);
    let start = std::time::Instant::now();
    let output = cargo_run(name, &args);
    eprintln!("{name} --quick: {:.1} s", start.elapsed().as_secs_f64());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "example {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

/// Runs an example expected to refuse its arguments: it must exit with an
/// error (not a panic) whose message contains `expected`.
pub fn assert_user_error(name: &str, args: &[&str], expected: &str) {
    let output = cargo_run(name, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "example {name} {args:?} should fail with exit code 1; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "example {name} {args:?} panicked instead of returning an error:\n{stderr}"
    );
    assert!(
        stderr.contains(expected),
        "example {name} {args:?}: the error should mention '{expected}':\n{stderr}"
    );
}

/// A CSV's header and rows; every row must have the header's width and parse as numbers.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|line| {
            let row: Vec<f64> = line
                .split(',')
                .map(|v| {
                    v.parse().unwrap_or_else(|_| {
                        panic!("{}: '{v}' in row '{line}' is not a number", path.display())
                    })
                })
                .collect();
            assert_eq!(
                row.len(),
                header.len(),
                "{}: row '{line}' does not fit header {header:?}",
                path.display()
            );
            row
        })
        .collect();
    (header, rows)
}

/// Checks a CSV's header against `expected` and returns its rows (at least one).
pub fn csv_rows(path: &Path, expected: &[&str]) -> Vec<Vec<f64>> {
    let (header, rows) = read_csv(path);
    assert_eq!(header, expected, "{}: header", path.display());
    assert!(!rows.is_empty(), "{}: no rows", path.display());
    rows
}

/// Column `name` of `rows` under `header`.
pub fn column(rows: &[Vec<f64>], header: &[&str], name: &str) -> Vec<f64> {
    let i = header
        .iter()
        .position(|h| *h == name)
        .expect("a column of the header");
    rows.iter().map(|r| r[i]).collect()
}

/// Checks the PNG signature and IHDR chunk; returns (width, height), both > 0.
pub fn check_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 33,
        "{}: {} bytes is too short for a PNG",
        path.display(),
        bytes.len()
    );
    assert_eq!(
        bytes[..8],
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'],
        "{}: PNG signature",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}: first chunk", path.display());
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (w, h) = (be(&bytes[16..20]), be(&bytes[20..24]));
    assert!(w > 0 && h > 0, "{}: image of {w}x{h}", path.display());
    (w, h)
}
