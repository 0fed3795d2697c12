//! `set_num_threads`: its own test binary, since the compute pool is built
//! once per process.

use autograd::{num_threads, set_num_threads, Tensor};

#[test]
fn the_calling_thread_joins_the_pool_once() {
    set_num_threads(2).expect("first call builds the pool");
    assert_eq!(num_threads(), 2);
    // The caller is worker 0: parallel ops run here instead of being handed over.
    assert_eq!(rayon::current_thread_index(), Some(0));
    // Ops still work and give the right numbers (a product big enough to be split).
    let a = Tensor::<f32>::ones([256, 300]);
    let b = Tensor::<f32>::ones([300, 200]);
    let c = a.matmul(&b);
    assert!(c.to_vec().iter().all(|&v| v == 300.0));
    // A second call is an error that says what to do, not a silent no-op.
    let err = set_num_threads(4).unwrap_err().to_string();
    assert!(
        err.contains("set_num_threads") && err.contains("once"),
        "{err}"
    );
    assert_eq!(num_threads(), 2);
}
