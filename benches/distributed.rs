//! The figures of docs/distributed.md (a benchmark that prints; needs the
//! `mpi` feature and `mpirun`):
//!
//! 1. memory copy bandwidth of this machine (one thread, 64 MB buffers);
//! 2. all-reduce of 4 KB–64 MB of f32 at `-np 2`: time, algorithm bandwidth
//!    (bytes / time) and bus bandwidth as nccl-tests define it
//!    (busbw = algbw · 2(p−1)/p);
//! 3. training throughput of DeepConvNet (1x28x28, global batch 100, Adam)
//!    and ResNet-18 (ImageNet stem, 3x32x32, global batch 64, SGD): one
//!    process × 2 threads against 2 processes × 1 thread, with and without
//!    overlapping the all-reduce with the backward pass, and the share of a
//!    step spent waiting for gradients; ResNet-50's step time (one process)
//!    for the projection;
//! 4. projected scaling to 1–256 machines on 10/25/100 Gb/s from the ring
//!    all-reduce cost model, as a table (printed and written to
//!    `docs/distributed_scaling.md`) and `docs/distributed_scaling.png`.
//!
//! Run: `cargo bench --features mpi --bench distributed` (as root, set
//! OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1). Options:
//! `--iters N` (training steps timed, default 10), `--skip-train`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use autograd::{manual_seed, Tensor};
use dist::{DdpConfig, DistributedDataParallel, ReduceOp, World};
use dlfs::tools::{plot_series_png, Curve};
use models::{resnet, DeepConvNet, DeepConvNetConfig, ResNetConfig, ResNetKind};
use nn::Module;
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.iter().skip(1).find(|a| !a.starts_with("--")).cloned();
    match mode.as_deref() {
        Some("allreduce") => allreduce(&dist::init().expect("MPI")),
        Some("train") => {
            let threads: usize = args[3].parse().expect("threads");
            let overlap = args[4] == "overlap";
            let iters: usize = args[5].parse().expect("iters");
            train(&dist::init().expect("MPI"), threads, overlap, iters);
        }
        _ => launcher(&args),
    }
}

fn opt_arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(np: usize, rest: &[&str]) -> String {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "--bind-to",
            "none",
            "-np",
        ])
        .arg(np.to_string())
        .arg(exe)
        .args(rest)
        .output()
        .expect("mpirun");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mpirun -np {np} {rest:?}:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// One thread copying 64 MB buffers: bytes read + written per second.
fn memory_bandwidth() -> f64 {
    let n = 16 << 20; // f32: 64 MB
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut best = f64::MAX;
    for _ in 0..8 {
        let t = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n * 4) as f64 / best
}

fn allreduce(world: &World) {
    let p = world.size() as f64;
    let mut sizes = Vec::new();
    let mut bytes = 4 << 10;
    while bytes <= 64 << 20 {
        sizes.push(bytes);
        bytes *= 4;
    }
    for bytes in sizes {
        let n = bytes / 4;
        let mut buf = vec![1.0f32; n];
        let iters = ((256 << 20) / bytes).clamp(5, 200);
        for _ in 0..3 {
            world.all_reduce_slice(&mut buf, ReduceOp::Sum);
        }
        world.barrier();
        let t = Instant::now();
        for _ in 0..iters {
            world.all_reduce_slice(&mut buf, ReduceOp::Sum);
        }
        let secs = world.all_reduce_scalar(t.elapsed().as_secs_f64() / iters as f64, ReduceOp::Max);
        if world.is_root() {
            let algbw = bytes as f64 / secs;
            println!(
                "ALLREDUCE {bytes} {:.3} {:.3} {:.3}",
                secs * 1e6,
                algbw / 1e9,
                algbw * 2.0 * (p - 1.0) / p / 1e9
            );
        }
    }
}

struct Case {
    name: &'static str,
    model: Box<dyn Fn() -> Box<dyn Module>>,
    shape: [usize; 4],
    adam: bool,
}

fn cases(single: bool) -> Vec<Case> {
    let mut v = vec![
        Case {
            name: "DeepConvNet",
            model: Box::new(|| Box::new(DeepConvNet::new(DeepConvNetConfig::default()))),
            shape: [100, 1, 28, 28],
            adam: true,
        },
        Case {
            name: "ResNet-18",
            model: Box::new(|| {
                Box::new(resnet(
                    ResNetConfig::new(ResNetKind::ResNet18).num_classes(10),
                ))
            }),
            shape: [64, 3, 32, 32],
            adam: false,
        },
    ];
    if single {
        v.push(Case {
            name: "ResNet-50",
            model: Box::new(|| {
                Box::new(resnet(
                    ResNetConfig::new(ResNetKind::ResNet50).num_classes(10),
                ))
            }),
            shape: [64, 3, 32, 32],
            adam: false,
        });
    }
    v
}

/// Timed training steps of each case on this world: the global batch split
/// among the ranks.
fn train(world: &World, threads: usize, overlap: bool, iters: usize) {
    autograd::set_num_threads(threads).expect("threads");
    for case in cases(world.size() == 1) {
        manual_seed(1);
        let config = DdpConfig {
            overlap,
            ..Default::default()
        };
        let model =
            DistributedDataParallel::try_with_config((case.model)(), world, config).unwrap();
        let params = model.parameters();
        let bytes: usize = params.iter().map(|p| p.numel() * 4).sum();
        let mut opt: Box<dyn Optimizer> = if case.adam {
            Box::new(Adam::new(params, AdamConfig::default()))
        } else {
            Box::new(Sgd::new(
                params,
                SgdConfig {
                    lr: 0.01,
                    momentum: 0.9,
                    ..Default::default()
                },
            ))
        };
        let mut shape = case.shape;
        shape[0] /= world.size();
        let x = Tensor::randn(shape);
        let labels: Vec<usize> = (0..shape[0]).map(|i| (i * 7 + 3) % 10).collect();
        let mut step = || {
            opt.zero_grad();
            model.forward(&x).cross_entropy(&labels).backward();
            opt.step();
        };
        step();
        step();
        model.reset_comm_stats();
        world.barrier();
        let t = Instant::now();
        let n = if case.name == "DeepConvNet" {
            iters * 3
        } else {
            iters
        };
        for _ in 0..n {
            step();
        }
        let secs = world.all_reduce_scalar(t.elapsed().as_secs_f64() / n as f64, ReduceOp::Max);
        let s = model.comm_stats();
        let wait = world.all_reduce_scalar(s.wait_seconds / n as f64, ReduceOp::Max);
        let reduce = world.all_reduce_scalar(s.reduce_seconds / n as f64, ReduceOp::Max);
        if world.is_root() {
            println!(
                "TRAIN {} {} {threads} {} {:.2} {:.6} {:.6} {:.6} {bytes} {}",
                case.name,
                world.size(),
                if overlap { "overlap" } else { "no-overlap" },
                case.shape[0] as f64 / secs,
                secs,
                wait,
                reduce,
                model.bucket_numels().len()
            );
        }
    }
}

/// One result line of the `train` mode.
#[derive(Clone, Debug)]
struct Train {
    name: String,
    procs: usize,
    threads: usize,
    overlap: bool,
    ips: f64,
    step: f64,
    wait: f64,
    reduce: f64,
    bytes: f64,
}

fn parse_train(text: &str) -> Vec<Train> {
    text.lines()
        .filter_map(|l| l.strip_prefix("TRAIN "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Train {
                name: f[0].into(),
                procs: f[1].parse().unwrap(),
                threads: f[2].parse().unwrap(),
                overlap: f[3] == "overlap",
                ips: f[4].parse().unwrap(),
                step: f[5].parse().unwrap(),
                wait: f[6].parse().unwrap(),
                reduce: f[7].parse().unwrap(),
                bytes: f[8].parse().unwrap(),
            }
        })
        .collect()
}

fn launcher(args: &[String]) {
    let iters = opt_arg(args, "--iters", 10);
    let membw = memory_bandwidth();
    println!(
        "memory copy bandwidth (1 thread, read + write): {:.2} GB/s",
        membw / 1e9
    );
    println!("\nall-reduce, f32, mpirun -np 2 (OpenMPI, shared memory)");
    println!(
        "{:>10} {:>12} {:>12} {:>12}",
        "bytes", "time (us)", "algbw GB/s", "busbw GB/s"
    );
    for l in run(2, &["allreduce"])
        .lines()
        .filter_map(|l| l.strip_prefix("ALLREDUCE "))
    {
        let f: Vec<&str> = l.split_whitespace().collect();
        println!("{:>10} {:>12} {:>12} {:>12}", f[0], f[1], f[2], f[3]);
    }
    if args.iter().any(|a| a == "--skip-train") {
        return;
    }
    let it = iters.to_string();
    let mut results = parse_train(&run(1, &["train", "x", "2", "overlap", &it]));
    results.extend(parse_train(&run(2, &["train", "x", "1", "overlap", &it])));
    results.extend(parse_train(&run(
        2,
        &["train", "x", "1", "no-overlap", &it],
    )));
    println!("\ntraining throughput (global batch as stated; step = zero_grad, forward, loss, backward, step)");
    println!(
        "{:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "network", "layout", "overlap", "img/s", "step ms", "wait ms", "wait %"
    );
    for r in &results {
        println!(
            "{:<12} {:>9} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            r.name,
            format!("{}x{}", r.procs, r.threads),
            if r.procs == 1 {
                "-"
            } else if r.overlap {
                "yes"
            } else {
                "no"
            },
            r.ips,
            r.step * 1e3,
            r.wait * 1e3,
            100.0 * r.wait / r.step
        );
    }
    projection(&results);
}

/// Ring all-reduce: 2(p−1)/p · bytes / bandwidth + 2(p−1) · latency.
fn ring(p: f64, bytes: f64, bw: f64, latency: f64) -> f64 {
    if p <= 1.0 {
        0.0
    } else {
        2.0 * (p - 1.0) / p * bytes / bw + 2.0 * (p - 1.0) * latency
    }
}

fn projection(results: &[Train]) {
    const LATENCY: f64 = 25e-6; // per message step, TCP over Ethernet (assumed)
                                // Hidden share of the all-reduce, measured at np 2: 1 − wait / reduce
                                // (with overlap); clamped to [0, 1].
    let hidden = |name: &str| -> f64 {
        results
            .iter()
            .find(|r| r.name == name && r.procs == 2 && r.overlap)
            .map_or(0.0, |r| {
                (1.0 - r.wait / r.reduce.max(1e-12)).clamp(0.0, 1.0)
            })
    };
    let resnet18_hidden = hidden("ResNet-18");
    let machines = [1usize, 2, 4, 8, 16, 32, 64, 128, 256];
    let nets: Vec<(&str, f64, f64, f64, usize)> = ["DeepConvNet", "ResNet-18", "ResNet-50"]
        .iter()
        .filter_map(|&n| {
            let single = results.iter().find(|r| r.name == n && r.procs == 1)?;
            // ResNet-50 is not run at np 2: it takes ResNet-18's hidden share.
            let h = if n == "ResNet-50" {
                resnet18_hidden
            } else {
                hidden(n)
            };
            let batch = (single.ips * single.step).round() as usize;
            Some((n, single.step, single.bytes, h, batch))
        })
        .collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| network | per-machine batch | compute/step (s) | gradient MB | hidden | link | {} |",
        machines.map(|p| format!("p={p}")).join(" | ")
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|{}",
        "---|".repeat(machines.len())
    );
    let mut panels: Vec<(String, Vec<Curve>)> = Vec::new();
    for &(name, compute, bytes, h, batch) in &nets {
        let mut curves = Vec::new();
        for gbit in [10.0, 25.0, 100.0] {
            let bw = gbit * 1e9 / 8.0;
            let eff: Vec<f64> = machines
                .iter()
                .map(|&p| {
                    let exposed = (1.0 - h) * ring(p as f64, bytes, bw, LATENCY);
                    compute / (compute + exposed)
                })
                .collect();
            let _ = writeln!(
                md,
                "| {name} | {batch} | {compute:.3} | {:.1} | {:.0}% | {gbit:.0} Gb/s | {} |",
                bytes / 1e6,
                100.0 * h,
                eff.iter()
                    .zip(machines)
                    .map(|(e, p)| format!(
                        "{:.0}% ({:.0} img/s)",
                        100.0 * e,
                        p as f64 * batch as f64 * e / compute
                    ))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            curves.push(Curve::new(
                &format!("{gbit:.0} Gb/s"),
                machines
                    .iter()
                    .zip(&eff)
                    .map(|(&p, &e)| ((p as f64).log2(), 100.0 * e))
                    .collect(),
            ));
        }
        panels.push((format!("{name}: scaling efficiency (%)"), curves));
    }
    println!("\nprojected scaling efficiency (model, see docs/distributed.md)\n{md}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::write(root.join("distributed_scaling.md"), &md).expect("write table");
    let panels: Vec<(&str, Vec<Curve>)> = panels
        .iter()
        .map(|(t, c)| (t.as_str(), c.clone()))
        .collect();
    plot_series_png(
        &root.join("distributed_scaling.png"),
        "Projected data-parallel scaling (ring all-reduce model)",
        "log2(machines)",
        &panels,
    )
    .expect("plot");
    println!("wrote docs/distributed_scaling.md and docs/distributed_scaling.png");
}
