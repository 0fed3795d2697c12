//! The chapter's applications (examples 10 and 12), run as a user runs them
//! (`cargo run --release --example NAME -- --quick --out DIR`), and what
//! they write checked: CSV headers and numeric rows, valid PNGs, the
//! figures' ranges, and that a seed repeats a run exactly.
//!
//! Outputs go under `CARGO_TARGET_TMPDIR`; a lock runs the examples one at
//! a time (the machine has two cores).

mod common;
use common::*;

fn col(rows: &[Vec<f64>], i: usize) -> Vec<f64> {
    rows.iter().map(|r| r[i]).collect()
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
