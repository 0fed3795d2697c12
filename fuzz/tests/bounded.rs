//! The bounded fuzz run of CI: every target, a fixed seed, a fixed number
//! of mutated inputs each; any panic or oversized allocation fails the test
//! with the inputs that caused it (a hang or an allocation over the hard
//! limit aborts the process with the target, seed and iteration to replay).

#[global_allocator]
static ALLOC: dlfs_fuzz::CountingAlloc = dlfs_fuzz::CountingAlloc;

/// Inputs per target: a few seconds each in release.
const ITERATIONS: u64 = 100_000;

#[test]
fn every_reader_survives_its_fuzzer() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut failures = Vec::new();
    for t in dlfs_fuzz::targets() {
        let corpus = dlfs_fuzz::corpus(&t);
        // The seeds are valid files (the corpus holds them as written once,
        // and regressions; metadata order varies between writes).
        for (i, input) in (t.seeds)().iter().enumerate() {
            assert!((t.run)(input), "{}: seed {i} is refused", t.name);
        }
        let r = dlfs_fuzz::fuzz(
            &t,
            &corpus,
            0x5eed,
            dlfs_fuzz::Budget {
                iterations: Some(ITERATIONS),
                seconds: None,
            },
        );
        eprintln!(
            "{}: {} inputs in {:.1} s, {} accepted, {} findings",
            t.name,
            r.iterations,
            r.seconds,
            r.accepted,
            r.findings.len()
        );
        for f in r.findings.iter().take(3) {
            failures.push(format!(
                "{} iteration {} ({}): {}; input {:?}",
                t.name,
                f.iteration,
                f.kind,
                f.message,
                &f.input[..f.input.len().min(200)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz findings:\n{}",
        failures.join("\n")
    );
}

/// The harness finds what it is meant to: a panic on some inputs and an
/// input that makes a reader hold far more memory than it is long.
#[test]
fn the_harness_reports_panics_and_oversized_allocations() {
    fn panics_on_long(d: &[u8]) -> bool {
        assert!(d.len() <= 40, "too long");
        true
    }
    fn hoards(d: &[u8]) -> bool {
        // 100 MiB held for a 3-byte input, like a header believed.
        if d.first() == Some(&7) {
            let v = vec![1u8; 100 << 20];
            return v[d.len()] == 1;
        }
        true
    }
    let seeds = || vec![vec![0u8; 30], vec![7u8, 1, 2]];
    let budget = dlfs_fuzz::Budget {
        iterations: Some(300),
        seconds: None,
    };
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = dlfs_fuzz::Target {
        name: "self-test-panic",
        run: panics_on_long,
        seeds,
    };
    let r = dlfs_fuzz::fuzz(&t, &seeds(), 1, budget);
    assert!(r
        .findings
        .iter()
        .any(|f| f.kind == "panic" && f.message.contains("too long")));
    let t = dlfs_fuzz::Target {
        name: "self-test-alloc",
        run: hoards,
        seeds,
    };
    let r = dlfs_fuzz::fuzz(&t, &seeds(), 1, budget);
    assert!(
        r.findings.iter().any(|f| f.kind == "allocation"),
        "{:?}",
        r.findings.len()
    );
}

/// The allocation count is process-wide: one fuzz run at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
