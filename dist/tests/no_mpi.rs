//! Built without the `mpi` feature: a world of size 1 whose collectives are
//! identities, and a clear error when an MPI launcher started several ranks.
#![cfg(not(feature = "mpi"))]

use autograd::Tensor;
use dist::{DistError, DistributedDataParallel, ReduceOp};
use nn::{Linear, LinearConfig, Module};

// One test function: the environment variable is process-wide.
#[test]
fn size_one_world_and_the_launcher_check() {
    let world = dist::init().unwrap();
    assert_eq!((world.rank(), world.size()), (0, 1));
    let t = Tensor::<f64>::from_vec(vec![1.5, -2.0], [2]);
    world.all_reduce(&t, ReduceOp::Mean);
    world.broadcast(&t, 0);
    assert_eq!(t.to_vec(), vec![1.5, -2.0]);
    assert_eq!(world.all_gather(&t).shape(), vec![1, 2]);
    assert!(world.try_broadcast(&t, 1).is_err());
    assert_eq!(world.broadcast_bytes(b"x".to_vec(), 0), b"x");

    // DDP at size 1 is the plain module, gradients included (the buckets
    // are still flattened and written back).
    let plain = Linear::new(LinearConfig::new(3, 2));
    let x = Tensor::randn([4, 3]);
    plain.forward(&x).cross_entropy(&[0, 1, 1, 0]).backward();
    let want: Vec<Vec<f32>> = plain
        .parameters()
        .iter()
        .map(|p| p.grad().unwrap().to_vec())
        .collect();
    plain.zero_grad();
    let cfg = dist::DdpConfig {
        bucket_bytes: 8,
        ..Default::default()
    };
    let ddp = DistributedDataParallel::try_with_config(plain, &world, cfg).unwrap();
    assert_eq!(ddp.bucket_numels(), vec![2, 6]); // bias (last) first, then weight
    ddp.forward(&x).cross_entropy(&[0, 1, 1, 0]).backward();
    let got: Vec<Vec<f32>> = ddp
        .parameters()
        .iter()
        .map(|p| p.grad().unwrap().to_vec())
        .collect();
    assert_eq!(got, want);
    assert_eq!(ddp.comm_stats().syncs, 1);
    assert_eq!(ddp.comm_stats().collectives, 2);
    drop((ddp, world));

    // Started by mpirun as one of two, without MPI compiled in.
    std::env::set_var("OMPI_COMM_WORLD_SIZE", "2");
    match dist::init() {
        Err(e @ DistError::BuiltWithoutMpi { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("--features mpi") && msg.contains("OMPI_COMM_WORLD_SIZE=2"),
                "{msg}"
            );
        }
        other => panic!("expected BuiltWithoutMpi, got {other:?}"),
    }
    std::env::set_var("OMPI_COMM_WORLD_SIZE", "1");
    assert!(dist::init().is_ok(), "mpirun -np 1 is a plain run");
}
