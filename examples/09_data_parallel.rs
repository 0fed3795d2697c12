//! Step 9 — the main job on several processes: DeepConvNet on MNIST with
//! data-parallel training over MPI (`dist`).
//!
//! Each of N processes (ranks) holds a replica of the network and trains on
//! its share of every batch: the global batch of 100 is split into N local
//! batches of 100 / N, taken from the same shuffled order on every rank
//! (`DistributedSampler`), and after each backward pass the gradients are
//! averaged across ranks (`DistributedDataParallel`), so every replica takes
//! the step one process would take on the whole batch. Rank 0 prints, draws
//! the progress bar and writes `metrics.csv`, `curves.png`, the checkpoint
//! and `deep_convnet.safetensors`; `--resume` has rank 0 read the checkpoint
//! and send it to the others.
//!
//! ```text
//! cargo run --release --example 09_data_parallel                      # one process
//! cargo build --release --features mpi --example 09_data_parallel
//! mpirun -np 2 target/release/examples/09_data_parallel --threads 1   # two ranks, one thread each
//! mpirun -np 8 --hostfile hosts target/release/examples/09_data_parallel --threads 4
//! ```
//!
//! Options: `--epochs N` `--seed S` `--threads T` (per rank; default: the
//! cores divided among the ranks on this machine) `--lr F` `--batch N` (global;
//! divisible by the number of ranks) `--bucket-mb F` `--no-overlap` `--data DIR`
//! `--out DIR` `--resume` `--quick` (a smoke run: 1 epoch on 600 training and
//! 500 test images) `--train-subset N` `--test-subset N`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use autograd::manual_seed;
use dist::{DdpConfig, DistributedDataParallel, World};
use dlfs::tools::ranks::{broadcast_file, evaluate_sharded, progress};
use dlfs::tools::train::count_correct;
use dlfs::tools::{plot_curves_png, Args, Curve, Failure, MetricsCsv};
use models::data::{DataLoader, Dataset, ImageDataset, Mnist, Subset, Tail};
use models::{DeepConvNet, DeepConvNetConfig};
use nn::{Dtype, Module, StateDict};
use optim::{Adam, AdamConfig, Optimizer, OptimizerState};

const HEADER: [&str; 9] = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "epoch_seconds",
    "images_per_second",
    "comm_wait_seconds",
    "wall_seconds",
];

struct Options {
    quick: bool,
    epochs: usize,
    seed: u64,
    threads: usize,
    batch: usize,
    lr: f64,
    bucket_mb: f64,
    overlap: bool,
    out: PathBuf,
    data: Option<PathBuf>,
    resume: bool,
    train_subset: Option<usize>,
    test_subset: Option<usize>,
}

fn main() {
    // Options first, before MPI: `--help` and a misspelt option end every
    // rank the same way, with no collective begun.
    let args = Args::parse();
    let quick = args.flag("--quick");
    let o = Options {
        quick,
        epochs: args.get("--epochs", if quick { 1 } else { 20 }),
        seed: args.get("--seed", 0),
        threads: args.get("--threads", 0),
        batch: args.get("--batch", 100),
        lr: args.get("--lr", 1e-3),
        bucket_mb: args.get("--bucket-mb", 4.0),
        overlap: !args.flag("--no-overlap"),
        out: PathBuf::from(args.get("--out", "runs/data_parallel".to_string())),
        data: args.value("--data").map(PathBuf::from),
        resume: args.flag("--resume"),
        train_subset: args.opt("--train-subset"),
        test_subset: args.opt("--test-subset"),
    };
    args.finish();
    let world = match dist::init() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    };
    // An error on one rank ends every rank (no one waits in a collective).
    if let Err(e) = run(&world, &o) {
        world.fail(&e);
    }
}

fn run(world: &World, o: &Options) -> Result<(), Failure> {
    let (rank, size) = (world.rank(), world.size());
    if o.batch == 0 || !o.batch.is_multiple_of(size) {
        return Err(Failure::msg(format!(
            "--batch {}: the global batch must divide among the {size} ranks",
            o.batch
        )));
    }
    let local_batch = o.batch / size;
    // Threads per rank: by default the cores of this machine shared among
    // the ranks that run on it (MPI tells how many: OMPI_COMM_WORLD_LOCAL_SIZE).
    let local_ranks: usize = std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(size);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if o.threads > 0 {
        o.threads
    } else {
        (cores / local_ranks).max(1)
    };
    autograd::set_num_threads(threads)?;
    if world.is_root() {
        std::fs::create_dir_all(o.out.join("checkpoint"))?;
    }

    let (train, test): (Arc<dyn ImageDataset>, Arc<dyn ImageDataset>) = match &o.data {
        Some(dir) => (
            Arc::new(Mnist::load(dir, true)?),
            Arc::new(Mnist::load(dir, false)?),
        ),
        None => (
            Arc::new(Mnist::load_default(true)?),
            Arc::new(Mnist::load_default(false)?),
        ),
    };
    let subset = |d: Arc<dyn ImageDataset>, n: usize| -> Arc<dyn ImageDataset> {
        if n < d.len() {
            Arc::new(Subset::first(d, n))
        } else {
            d
        }
    };
    let train_n = o
        .train_subset
        .unwrap_or(if o.quick { 600 } else { train.len() });
    let test_n = o
        .test_subset
        .unwrap_or(if o.quick { 500 } else { test.len() });
    let (train, test) = (subset(train, train_n), subset(test, test_n));
    // Every rank shuffles with the same seed and takes its share.
    let train_loader = DataLoader::new(train.clone(), local_batch)
        .shuffle(true)
        .seed(o.seed)
        .drop_last(true)
        .distributed(world.sampler());
    // Evaluation: each test image once over all ranks.
    let test_loader =
        DataLoader::new(test.clone(), 500).distributed(world.sampler().tail(Tail::Uneven));

    manual_seed(o.seed);
    let config = DdpConfig {
        bucket_bytes: (o.bucket_mb * (1 << 20) as f64) as usize,
        overlap: o.overlap,
        ..Default::default()
    };
    let model = DistributedDataParallel::try_with_config(
        DeepConvNet::new(DeepConvNetConfig::default()),
        world,
        config,
    )?;
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: o.lr,
            ..Default::default()
        },
    );
    let steps = train_loader.len();
    if world.is_root() {
        println!(
            "DeepConvNet: {} parameters; {} training and {} test images; {size} rank(s) x {threads} thread(s); global batch {} = {size} x {local_batch}; {steps} steps per epoch; Adam lr {}; {} gradient bucket(s){}",
            model.num_parameters(),
            train.len(),
            test.len(),
            o.batch,
            o.lr,
            model.bucket_numels().len(),
            if model.overlapping() { ", reduced during backward" } else { "" }
        );
    }

    // Resume: rank 0 reads the checkpoint, every rank loads what it sent.
    let ckpt = o.out.join("checkpoint");
    let mut start = 1;
    if o.resume {
        if let Some(epoch) = broadcast_file(world, &ckpt.join("epoch.txt"))? {
            let done: usize = String::from_utf8_lossy(&epoch).trim().parse()?;
            let sd = read_root(world, &ckpt.join("model.safetensors"))?;
            model.load_state_dict(
                &StateDict::from_bytes(&sd, &ckpt.join("model.safetensors"))?,
                true,
            )?;
            let os = read_root(world, &ckpt.join("optimizer.safetensors"))?;
            opt.load_state_dict(&OptimizerState::from_bytes(
                &os,
                &ckpt.join("optimizer.safetensors"),
            )?)?;
            start = done + 1;
            if world.is_root() {
                println!("resumed from {} after epoch {done}", ckpt.display());
            }
        }
    }
    let mut metrics = world.is_root().then(|| {
        if start > 1 {
            MetricsCsv::resume(o.out.join("metrics.csv"), &HEADER, (start - 1) as f64)
        } else {
            MetricsCsv::new(o.out.join("metrics.csv"), &HEADER)
        }
    });
    let wall0 = std::time::Instant::now();
    let wall_before = metrics
        .as_ref()
        .and_then(|m| m.column("wall_seconds").last().copied())
        .unwrap_or(0.0);

    for epoch in start..=o.epochs {
        // Dropout masks: one stream per epoch and rank (replayed on resume).
        manual_seed(models::data::seed::derive_seed(
            o.seed,
            &[epoch as u64, rank as u64],
        ));
        model.train();
        model.reset_comm_stats();
        let mut bar = progress(world, epoch, o.epochs, steps);
        for b in train_loader.epoch(epoch as u64) {
            opt.zero_grad();
            let logits = model.forward(b.images());
            let loss = logits.cross_entropy(b.labels());
            loss.backward(); // gradients averaged over the ranks
            opt.step();
            bar.batch(
                loss.item() as f64,
                count_correct(&logits, b.labels()),
                b.labels().len(),
            );
        }
        bar.finish();
        let comm = model.comm_stats();
        let wait = world.all_reduce_scalar(comm.wait_seconds, dist::ReduceOp::Max);
        bar.all_reduce(world);
        let ev = evaluate_sharded(&model, &test_loader, world, true);
        let secs = bar.seconds();
        let Some(metrics) = metrics.as_mut() else {
            continue; // rank 0 alone reports and writes
        };
        println!(
            "epoch {epoch:2}/{}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  {secs:.1} s ({:.0} img/s), waiting for gradients {wait:.1} s ({:.1}%)",
            o.epochs,
            bar.mean_loss(),
            bar.accuracy(),
            ev.loss,
            ev.accuracy,
            bar.images_per_second(),
            100.0 * wait / secs.max(1e-9)
        );
        metrics.push(&[
            epoch as f64,
            bar.mean_loss(),
            bar.accuracy(),
            ev.loss,
            ev.accuracy,
            secs,
            bar.images_per_second(),
            wait,
            wall_before + wall0.elapsed().as_secs_f64(),
        ])?;
        write_figures(&o.out, metrics)?;
        model.save(&ckpt.join("model.safetensors"), Dtype::F32)?;
        opt.save(&ckpt.join("optimizer.safetensors"))?;
        nn::state_dict::write_atomically(&ckpt.join("epoch.txt"), epoch.to_string().as_bytes())?;
    }
    if let Some(metrics) = &metrics {
        model.save(&o.out.join("deep_convnet.safetensors"), Dtype::F32)?;
        let last = metrics.column("test_acc").last().copied().unwrap_or(0.0);
        println!(
            "final test accuracy {last:.2}% on {size} rank(s); wrote {}/{{metrics.csv, curves.png, deep_convnet.safetensors}}",
            o.out.display()
        );
    }
    Ok(())
}

/// A checkpoint file that must exist on rank 0, on every rank.
fn read_root(world: &World, path: &Path) -> Result<Vec<u8>, Failure> {
    broadcast_file(world, path)?
        .ok_or_else(|| Failure::msg(format!("{}: missing from the checkpoint", path.display())))
}

fn write_figures(out: &Path, metrics: &MetricsCsv) -> Result<(), Failure> {
    let series = |name: &str| -> Vec<(f64, f64)> {
        metrics
            .column("epoch")
            .into_iter()
            .zip(metrics.column(name))
            .collect()
    };
    plot_curves_png(
        &out.join("curves.png"),
        "DeepConvNet on MNIST, data-parallel",
        &[
            (
                "cross-entropy",
                vec![
                    Curve::new("train (dropout on)", series("train_loss")),
                    Curve::new("test", series("test_loss")),
                ],
            ),
            (
                "accuracy (%)",
                vec![
                    Curve::new("train (dropout on)", series("train_acc")),
                    Curve::new("test", series("test_acc")),
                ],
            ),
        ],
    )?;
    Ok(())
}
