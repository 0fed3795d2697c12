//! The MPI tests. Run by `cargo test -p dlfs-dist --features mpi`, this
//! program is the launcher: it starts itself under `mpirun -np 2` and `-np 3`
//! once per scenario (a mode argument), and checks each job's exit status,
//! output and duration. Under `mpirun`, it is one rank of that scenario.
//!
//! A scenario that finds a wrong result panics on that rank, which aborts
//! the job (the crate's panic hook), which the launcher reports.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use autograd::{manual_seed, Float, Tensor};
use dist::{DdpConfig, DistributedDataParallel, ReduceOp, World};
use nn::{BatchNorm1d, BatchNormConfig, Linear, LinearConfig, Module, ReLU, Sequential};
use optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() {
        let world = dist::init().expect("MPI");
        match args.get(1).map(String::as_str) {
            Some("equivalence") => equivalence(&world),
            Some("uneven") => uneven(&world),
            Some("broadcast") => broadcast(&world),
            Some("collectives") => collectives(&world),
            Some("mismatch") => mismatch(&world),
            Some("panic") => panic_on_rank_1(&world),
            Some("missing-file") => missing_file(&world),
            other => panic!("unknown mode {other:?}"),
        }
        println!("rank {} of {}: {} ok", world.rank(), world.size(), args[1]);
        return;
    }
    launcher();
}

// ---------------------------------------------------------------------------
// The launcher
// ---------------------------------------------------------------------------

fn mpirun(np: usize, mode: &str) -> (Output, Duration) {
    let exe = std::env::current_exe().expect("own path");
    let start = Instant::now();
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(np.to_string())
        .arg(exe)
        .arg(mode)
        .output()
        .expect("mpirun: install openmpi-bin (see .ci/run)");
    (out, start.elapsed())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn expect_ok(np: usize, mode: &str) {
    let (out, secs) = mpirun(np, mode);
    let t = text(&out);
    assert!(out.status.success(), "mpirun -np {np} {mode} failed:\n{t}");
    for r in 0..np {
        let line = format!("rank {r} of {np}: {mode} ok");
        assert!(
            t.contains(&line),
            "mpirun -np {np} {mode}: no '{line}':\n{t}"
        );
    }
    println!("ok   mpirun -np {np} {mode} ({:.1} s)", secs.as_secs_f64());
}

/// A job in which one rank fails must end, all of it, within seconds.
fn expect_failure(np: usize, mode: &str, needle: &str) {
    let (out, secs) = mpirun(np, mode);
    let t = text(&out);
    assert!(
        !out.status.success(),
        "mpirun -np {np} {mode} should fail:\n{t}"
    );
    assert!(
        t.contains(needle),
        "mpirun -np {np} {mode}: no '{needle}' in:\n{t}"
    );
    assert!(
        secs < Duration::from_secs(30),
        "mpirun -np {np} {mode} took {secs:?}: a rank waited for the failed one"
    );
    assert!(
        !t.contains(&format!("{mode} ok")),
        "a rank finished normally:\n{t}"
    );
    println!(
        "ok   mpirun -np {np} {mode} fails in {:.1} s",
        secs.as_secs_f64()
    );
}

fn launcher() {
    expect_ok(2, "collectives");
    expect_ok(3, "collectives");
    expect_ok(2, "equivalence");
    expect_ok(3, "uneven");
    expect_ok(2, "broadcast");
    expect_ok(3, "broadcast");
    // Every rank reports the same mismatch, naming rank 1 and the tensor.
    let (out, _) = mpirun(2, "mismatch");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for r in 0..2 {
        let line = format!(
            "rank {r} got: DistributedDataParallel: rank 1's model differs from rank 0's: parameter '2.weight' f32 [3, 16] on rank 0, parameter '2.weight' f32 [4, 16] on rank 1"
        );
        assert!(t.contains(&line), "no '{line}' in:\n{t}");
    }
    println!("ok   mpirun -np 2 mismatch");
    expect_failure(2, "panic", "rank 1 gives up here");
    expect_failure(3, "missing-file", "/nonexistent/mnist");
    println!("all MPI scenarios passed");
}

// ---------------------------------------------------------------------------
// Scenarios (one rank's part)
// ---------------------------------------------------------------------------

fn collectives(world: &World) {
    let (r, p) = (world.rank(), world.size());
    let t = Tensor::<f32>::from_vec(vec![r as f32, 1.0], [2]);
    world.all_reduce(&t, ReduceOp::Sum);
    let sum: f32 = (0..p).map(|i| i as f32).sum();
    assert_eq!(t.to_vec(), vec![sum, p as f32]);
    let m = Tensor::<f64>::from_vec(vec![r as f64], [1]);
    world.all_reduce(&m, ReduceOp::Mean);
    assert_eq!(m.item(), (p - 1) as f64 / 2.0);
    assert_eq!(
        world.all_reduce_scalar(r as f64, ReduceOp::Max),
        (p - 1) as f64
    );
    assert_eq!(world.all_reduce_scalar(r as f64, ReduceOp::Min), 0.0);
    let b = Tensor::<f32>::full([3], r as f32 + 5.0);
    world.broadcast(&b, p - 1);
    assert_eq!(b.to_vec(), vec![p as f32 + 4.0; 3]);
    let g = world.all_gather(&Tensor::<f32>::from_vec(
        vec![r as f32, 10.0 * r as f32],
        [2],
    ));
    assert_eq!(g.shape(), vec![p, 2]);
    let want: Vec<f32> = (0..p).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
    assert_eq!(g.to_vec(), want);
    let bytes = world.broadcast_bytes(format!("from rank {r}").into_bytes(), 0);
    assert_eq!(bytes, b"from rank 0");
    let all = world.all_gather_bytes(&vec![r as u8; r + 1]);
    assert_eq!(
        all,
        (0..p).map(|i| vec![i as u8; i + 1]).collect::<Vec<_>>()
    );
    assert!(world.try_broadcast(&b, p).is_err());
    world.barrier();
}

fn mlp<T: Float>(out: usize) -> Sequential<T> {
    Sequential::<T>::default()
        .add(Linear::<T>::build(LinearConfig::new(8, 16)))
        .add(ReLU)
        .add(Linear::<T>::build(LinearConfig::new(16, out)))
}

/// The same 100 examples on every rank.
fn data<T: Float>() -> (Tensor<T>, Vec<usize>) {
    let x: Vec<T> = (0..800)
        .map(|i| T::of(((i * 37 % 101) as f64 / 50.0 - 1.0) * 1.5))
        .collect();
    let y = (0..100).map(|i| (i * 7) % 3).collect();
    (Tensor::from_vec(x, [100, 8]), y)
}

fn rows<T: Float>(x: &Tensor<T>, lo: usize, hi: usize) -> Tensor<T> {
    Tensor::from_array(x.narrow(0, lo, hi - lo).to_array())
}

fn max_diff<T: Float>(a: &[Tensor<T>], b: &[Tensor<T>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(p, q)| {
            p.to_vec()
                .into_iter()
                .zip(q.to_vec())
                .map(|(u, v)| (u.as_f64() - v.as_f64()).abs())
        })
        .fold(0.0, f64::max)
}

fn optimizer<T: Float>(kind: &str, params: Vec<Tensor<T>>) -> Box<dyn Optimizer<T>> {
    match kind {
        "sgd" => Box::new(Sgd::<T>::new(
            params,
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            },
        )),
        _ => Box::new(Adam::<T>::new(
            params,
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
    }
}

const STEPS: usize = 5;

/// One process, batch 100 (run on every rank as the reference).
fn reference<T: Float>(kind: &str) -> Vec<Tensor<T>> {
    manual_seed(100); // rank 0's seed below
    let model = mlp::<T>(3);
    let mut opt = optimizer(kind, model.parameters());
    let (x, y) = data::<T>();
    for _ in 0..STEPS {
        opt.zero_grad();
        model.forward(&x).cross_entropy(&y).backward();
        opt.step();
    }
    model.parameters()
}

/// `size` ranks: rank r trains on rows `cuts[r]..cuts[r + 1]` of every
/// batch, its mean loss scaled by `loss_weight`; `accumulate` splits each
/// rank's share in two micro-batches, the first under `no_sync`.
fn data_parallel<T: Float>(
    world: &World,
    kind: &str,
    config: DdpConfig,
    cuts: &[usize],
    accumulate: bool,
) -> Vec<Tensor<T>> {
    manual_seed(100 + world.rank() as u64); // differently seeded replicas
    let overlap = config.overlap;
    let model = DistributedDataParallel::try_with_config(mlp::<T>(3), world, config).unwrap();
    // OpenMPI grants MPI_THREAD_MULTIPLE: the overlapping path is the one tested.
    assert_eq!(model.overlapping(), overlap);
    let mut opt = optimizer(kind, model.parameters());
    let (x, y) = data::<T>();
    let (lo, hi) = (cuts[world.rank()], cuts[world.rank() + 1]);
    let weight = model.loss_weight(hi - lo);
    for _ in 0..STEPS {
        opt.zero_grad();
        if accumulate {
            let mid = (lo + hi) / 2;
            {
                let _quiet = model.no_sync();
                let l = model.forward(&rows(&x, lo, mid)).cross_entropy(&y[lo..mid]);
                (l * (weight * (mid - lo) as f64 / (hi - lo) as f64)).backward();
            }
            let l = model.forward(&rows(&x, mid, hi)).cross_entropy(&y[mid..hi]);
            (l * (weight * (hi - mid) as f64 / (hi - lo) as f64)).backward();
        } else {
            let l = model.forward(&rows(&x, lo, hi)).cross_entropy(&y[lo..hi]);
            (l * weight).backward();
        }
        opt.step();
    }
    let stats = model.comm_stats();
    assert_eq!(stats.syncs, STEPS, "one synchronisation per step");
    assert_eq!(stats.collectives, STEPS * model.bucket_numels().len());
    model.parameters()
}

fn check<T: Float>(world: &World, cuts: &[usize], tol: f64) {
    for kind in ["sgd", "adam"] {
        let want = reference::<T>(kind);
        let configs = [
            DdpConfig::default(),
            // Small buckets (several collectives per step), with and without overlap.
            DdpConfig {
                bucket_bytes: 200,
                ..Default::default()
            },
            DdpConfig {
                bucket_bytes: 200,
                overlap: false,
                ..Default::default()
            },
        ];
        for (c, config) in configs.into_iter().enumerate() {
            for accumulate in [false, true] {
                let got = data_parallel::<T>(world, kind, config.clone(), cuts, accumulate);
                let d = max_diff(&got, &want);
                assert!(
                    d <= tol,
                    "{} {kind} config {c} accumulate {accumulate}: rank {} differs from the one-process run by {d:e} (> {tol:e})",
                    T::NAME,
                    world.rank()
                );
                // And the replicas agree exactly with each other.
                for p in &got {
                    let all = world.all_gather(p);
                    let v = all.to_vec();
                    let n = p.numel();
                    assert!(v.chunks(n).all(|c| c == &v[..n]), "replicas differ");
                }
            }
        }
    }
}

/// np 2, 50 examples each == one process with 100.
fn equivalence(world: &World) {
    assert_eq!(world.size(), 2);
    check::<f64>(world, &[0, 50, 100], 1e-12);
    // f32: the sum of two halves is not the sum of the whole in float.
    check::<f32>(world, &[0, 50, 100], 2e-5);
}

/// np 3 with 34/33/33: each loss scaled by n_r·size/N, the average equals
/// the global batch's mean gradient.
fn uneven(world: &World) {
    assert_eq!(world.size(), 3);
    check::<f64>(world, &[0, 34, 67, 100], 1e-12);
    check::<f32>(world, &[0, 34, 67, 100], 2e-5);
}

fn broadcast(world: &World) {
    let r = world.rank();
    manual_seed(7 + r as u64);
    let net = Sequential::new()
        .add(Linear::new(LinearConfig::new(4, 6)))
        .add(BatchNorm1d::new(BatchNormConfig::new(6)));
    let before = world.all_gather(&net.parameters()[0]).to_vec();
    let n = net.parameters()[0].numel();
    assert!(
        before[..n] != before[n..2 * n],
        "differently seeded ranks start apart"
    );
    // Rank-specific running statistics.
    for (_, b) in net.named_buffers() {
        b.set_data(Tensor::<f32>::full(b.shape(), r as f32 + 2.0).array());
    }
    let ddp = DistributedDataParallel::new(net, world);
    for p in ddp
        .parameters()
        .iter()
        .chain(ddp.named_buffers().iter().map(|(_, b)| b))
    {
        let v = world.all_gather(p).to_vec();
        let n = p.numel();
        assert!(
            v.chunks(n).all(|c| c == &v[..n]),
            "replicas differ after construction"
        );
    }
    // Buffers drift apart (rank-specific), then follow rank 0 at the next
    // training forward (in eval mode, so the forward itself leaves them).
    for (_, b) in ddp.named_buffers() {
        b.set_data(Tensor::<f32>::full(b.shape(), 10.0 * r as f32 + 1.0).array());
    }
    ddp.eval();
    let _ = ddp.forward(&Tensor::randn([5, 4]));
    for (name, b) in ddp.named_buffers() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        assert!(
            b.to_vec().iter().all(|&v| v == 1.0),
            "{name} did not follow rank 0: {b:?}"
        );
    }
    // Evaluation (no grad) does not communicate: ranks may run different counts.
    for (_, b) in ddp.named_buffers() {
        b.set_data(Tensor::<f32>::full(b.shape(), 10.0 * r as f32 + 1.0).array());
    }
    for _ in 0..r {
        autograd::no_grad(|| ddp.forward(&Tensor::randn([5, 4])));
    }
    let v = ddp.named_buffers()[0].1.to_vec();
    assert!(v.iter().all(|&x| x == 10.0 * r as f32 + 1.0));
}

fn mismatch(world: &World) {
    // Rank 1's last layer has 4 outputs instead of 3.
    let net = mlp::<f32>(if world.rank() == 1 { 4 } else { 3 });
    match DistributedDataParallel::try_new(net, world) {
        Ok(_) => panic!("rank {}: a mismatched model was accepted", world.rank()),
        Err(e) => println!("rank {} got: {e}", world.rank()),
    }
}

fn panic_on_rank_1(world: &World) {
    if world.rank() == 1 {
        std::thread::sleep(Duration::from_millis(200));
        panic!("rank 1 gives up here");
    }
    // The others wait in a collective that rank 1 never joins.
    world.barrier();
}

fn missing_file(world: &World) {
    let dir = if world.rank() == 1 {
        "/nonexistent/mnist"
    } else {
        "../examples/data/mnist"
    };
    match models::data::Mnist::load(dir, true) {
        Ok(_) => {}
        Err(e) => world.fail(&e),
    }
    world.barrier();
}
