//! The chapter's applications (examples 10 and 12), run as a user runs them
//! (`cargo run --release --example NAME -- --quick --out DIR`), and what
//! they write checked: CSV headers and numeric rows, valid PNGs, the
//! figures' ranges, and that a seed repeats a run exactly.
//!
//! Outputs go under `CARGO_TARGET_TMPDIR`; a lock runs the examples one at
//! a time (the machine has two cores).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn out_dir(run: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("examples")
        .join(run);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cargo_run(name: &str, args: &[&str]) -> Output {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--release", "--quiet", "--example", name, "--"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start cargo for example {name}: {e}"))
}

/// Runs `name --quick --out OUT EXTRA...`; returns stdout, panics with the
/// output on failure.
fn run_quick(name: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--quick", "--out", out.to_str().expect("UTF-8 path")];
    args.extend_from_slice(extra);
    let start = std::time::Instant::now();
    let output = cargo_run(name, &args);
    eprintln!("{name} --quick: {:.1} s", start.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example {name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The header (which must be `expected`) and the rows, all numeric.
fn csv_rows(path: &Path, expected: &[&str]) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    assert_eq!(header, expected, "{}: header", path.display());
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            let row: Vec<f64> = l
                .split(',')
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{}: '{v}'", path.display()))
                })
                .collect();
            assert_eq!(row.len(), expected.len(), "{}: row '{l}'", path.display());
            row
        })
        .collect();
    assert!(!rows.is_empty(), "{}: no rows", path.display());
    rows
}

fn col(rows: &[Vec<f64>], i: usize) -> Vec<f64> {
    rows.iter().map(|r| r[i]).collect()
}

/// The PNG signature and a non-empty IHDR; returns (width, height).
fn check_png(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() > 33 && b[..8] == [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
    assert_eq!(&b[12..16], b"IHDR", "{}", path.display());
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    let (w, h) = (be(&b[16..20]), be(&b[20..24]));
    assert!(w > 0 && h > 0, "{}: {w}x{h}", path.display());
    (w, h)
}

#[test]
fn ex10_dcgan() {
    let out = out_dir("10_dcgan");
    let stdout = run_quick("10_dcgan", &out, &[]);
    assert!(stdout.contains("inception score"), "{stdout}");
    let header = ["epoch", "iteration", "loss_d", "loss_g", "d_real", "d_fake"];
    let rows = csv_rows(&out.join("losses.csv"), &header);
    assert!(rows.iter().flatten().all(|v| v.is_finite()), "{rows:?}");
    // Against the untrained generator the discriminator learns first: its
    // loss falls from about 2 ln 2 and it rates real images higher.
    let loss_d = col(&rows, 2);
    assert!(
        (loss_d[0] - 2.0 * 2f64.ln()).abs() < 0.3 && loss_d[loss_d.len() - 1] < loss_d[0],
        "discriminator loss {loss_d:?}"
    );
    let last = &rows[rows.len() - 1];
    assert!(
        last[4] > last[5],
        "D(real) {} <= D(fake) {}",
        last[4],
        last[5]
    );
    for png in ["samples_epoch_01.png", "samples.png", "losses.png"] {
        check_png(&out.join(png));
    }
    let (w, h) = check_png(&out.join("samples.png"));
    assert!(
        w >= 8 * 56 && h >= 8 * 56,
        "samples.png {w}x{h}: not 8x8 digits at scale 2"
    );

    let mut header = vec!["generated", "images", "inception_score", "frechet_distance"];
    let classes: Vec<String> = (0..10).map(|c| format!("class{c}")).collect();
    header.extend(classes.iter().map(String::as_str));
    let q = csv_rows(&out.join("quality.csv"), &header);
    assert_eq!(col(&q, 0), [1.0, 0.0], "generated, then real");
    for r in &q {
        assert_eq!(r[1], 256.0, "256 images measured in a quick run");
        assert!(
            (1.0..=10.0 + 1e-9).contains(&r[2]),
            "inception score {}",
            r[2]
        );
        assert!(r[3].is_finite() && r[3] >= 0.0, "Fréchet distance {}", r[3]);
        assert_eq!(r[4..].iter().sum::<f64>(), r[1], "histogram {r:?}");
    }
    // Width 16: 100·32·49 + 32·16·16 + 16·16 + 1 weights and biases, plus
    // batch norm's scales and shifts (2·(32 + 16)).
    let g = std::fs::metadata(out.join("generator.safetensors")).expect("generator weights");
    assert!(
        g.len() >= 4 * (156_800 + 8_192 + 257 + 96),
        "{} bytes",
        g.len()
    );
}

#[test]
fn ex12_dqn_cartpole() {
    let header = ["episode", "steps", "return", "mean100", "epsilon", "loss"];
    let run = |name: &str, seed: &str| {
        let out = out_dir(name);
        let stdout = run_quick("12_dqn_cartpole", &out, &["--seed", seed]);
        assert!(stdout.contains("not solved in 20 episodes"), "{stdout}");
        check_png(&out.join("returns.png"));
        assert!(out.join("q_network.safetensors").exists());
        let text = std::fs::read_to_string(out.join("returns.csv")).expect("returns.csv");
        (csv_rows(&out.join("returns.csv"), &header), text)
    };
    let (rows, text) = run("12_dqn_a", "5");
    assert_eq!(col(&rows, 0), (1..=20).map(f64::from).collect::<Vec<_>>());
    let returns = col(&rows, 2);
    assert!(
        returns.iter().all(|&r| (1.0..=500.0).contains(&r)),
        "{returns:?}"
    );
    let (mut total, mut sum) = (0.0, 0.0);
    for (i, r) in rows.iter().enumerate() {
        total += r[2];
        sum += r[2];
        assert_eq!(
            r[1], total,
            "steps are the running total of returns (1 per step)"
        );
        assert!(
            (r[3] - sum / (i + 1) as f64).abs() < 1e-9,
            "mean100 of row {i}"
        );
        assert!(r[4] > 0.0 && r[4] <= 1.0, "epsilon {}", r[4]);
        // No update before 200 transitions, a finite loss after.
        assert_eq!(
            r[5].is_nan(),
            total < 200.0,
            "loss {} after {total} steps",
            r[5]
        );
    }
    let eps = col(&rows, 4);
    assert!(
        eps.windows(2).all(|w| w[1] <= w[0]),
        "epsilon decays: {eps:?}"
    );
    // The same seed repeats the run exactly (the CSV's text: NaN != NaN);
    // another seed does not.
    assert_eq!(text, run("12_dqn_b", "5").1, "same seed, different run");
    assert_ne!(
        col(&run("12_dqn_c", "6").0, 2),
        returns,
        "seeds 5 and 6 agree"
    );
}

#[test]
fn applications_answer_help_and_refuse_unknown_options() {
    for name in ["10_dcgan", "12_dqn_cartpole"] {
        let help = cargo_run(name, &["--help"]);
        let stdout = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{name} --help:\n{stdout}");
        for option in ["--quick", "--out", "--seed", "--threads"] {
            assert!(
                stdout.contains(option),
                "{name} --help lacks {option}:\n{stdout}"
            );
        }
        let typo = cargo_run(name, &["--quick", "--epoch", "3"]);
        let stderr = String::from_utf8_lossy(&typo.stderr);
        assert_eq!(typo.status.code(), Some(2), "{name} --epoch:\n{stderr}");
        assert!(stderr.contains("unknown option --epoch"), "{stderr}");
    }
    let bad = cargo_run("10_dcgan", &["--quick", "--dataset", "cifar"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown dataset 'cifar'"), "{stderr}");
}
