//! Runs the fuzz targets long: `fuzz [--target NAME] [--iters N] [--seconds S]
//! [--seed S] [--replay I] [--write-corpus]`. Findings are written to
//! `fuzz/findings/<target>-<iteration>.bin` and the run exits 1 if any.

#[global_allocator]
static ALLOC: dlfs_fuzz::CountingAlloc = dlfs_fuzz::CountingAlloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("fuzz [--target NAME] [--iters N] [--seconds S] [--seed S] [--replay I] [--write-corpus]");
        return;
    }
    if args.iter().any(|a| a == "--write-corpus") {
        dlfs_fuzz::write_corpus().expect("write the corpus");
        return;
    }
    let only = value("--target");
    let seed: u64 = value("--seed").map_or(0, |s| s.parse().expect("--seed N"));
    let budget = dlfs_fuzz::Budget {
        iterations: value("--iters").map(|s| s.parse().expect("--iters N")),
        seconds: value("--seconds").map(|s| s.parse().expect("--seconds S")),
    };
    let budget = if budget.iterations.is_none() && budget.seconds.is_none() {
        dlfs_fuzz::Budget {
            iterations: Some(10_000),
            seconds: None,
        }
    } else {
        budget
    };
    let mut found = 0;
    for t in dlfs_fuzz::targets() {
        if only.as_deref().is_some_and(|n| n != t.name) {
            continue;
        }
        let corpus = dlfs_fuzz::corpus(&t);
        if let Some(i) = value("--replay") {
            let i: u64 = i.parse().expect("--replay I");
            let input = dlfs_fuzz::harness::input_for(&corpus, t.name, seed, i);
            println!(
                "{}: iteration {i}: {:?}",
                t.name,
                dlfs_fuzz::harness::run_one(&t, &input, i).map(|r| r.0)
            );
            continue;
        }
        let r = dlfs_fuzz::fuzz(&t, &corpus, seed, budget);
        println!(
            "{:12} {:>10} inputs in {:6.1} s ({:.0}/s), {} accepted, peak {} KiB, {} findings",
            t.name,
            r.iterations,
            r.seconds,
            r.iterations as f64 / r.seconds.max(1e-9),
            r.accepted,
            r.max_peak >> 10,
            r.findings.len()
        );
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("findings");
        for f in &r.findings {
            std::fs::create_dir_all(&dir).expect("findings folder");
            let path = dir.join(format!("{}-{}.bin", t.name, f.iteration));
            std::fs::write(&path, &f.input).expect("write a finding");
            println!(
                "  {} at iteration {}: {} ({})",
                f.kind,
                f.iteration,
                f.message,
                path.display()
            );
        }
        found += r.findings.len();
    }
    if found > 0 {
        std::process::exit(1);
    }
}
