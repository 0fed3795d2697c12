//! SGEMM on the shapes that matter here (the MLP's products, DeepConvNet's
//! im2col products), our micro-kernels against `matrixmultiply`, one thread,
//! interleaved so machine noise hits both alike. Prints GFLOP/s.
//!
//! Run: `cargo bench --bench gemm`

use std::time::Instant;

fn main() {
    let shapes: [(&str, usize, usize, usize, bool, bool); 8] = [
        ("mlp fwd1 x@W^T 100x784x100", 100, 784, 100, false, true),
        ("mlp dW1 g^T@x 100x100x784", 100, 100, 784, true, false),
        ("mlp fwd2 100x100x100", 100, 100, 100, false, true),
        ("conv2 fwd W@col 16x144x784", 16, 144, 784, false, false),
        ("conv4 fwd 32x288x256", 32, 288, 256, false, false),
        ("conv6 fwd 64x576x64", 64, 576, 64, false, false),
        ("conv2 dW gy@col^T 16x784x144", 16, 784, 144, false, true),
        ("square 256", 256, 256, 256, false, false),
    ];
    println!(
        "{:<34} {:>12} {:>16}",
        "shape (m x k x n)", "ours GF/s", "matrixmult GF/s"
    );
    for (name, m, k, n, ta, tb) in shapes {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut c = vec![0.0f32; m * n];
        let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
        let reps = (2e8 / (2.0 * (m * k * n) as f64)).max(3.0) as usize;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _round in 0..7 {
            let t0 = Instant::now();
            for _ in 0..reps {
                autograd::bench_api::sgemm(m, k, n, &a, &b, &mut c, ta, tb, 1);
            }
            ours.push(t0.elapsed().as_secs_f64() / reps as f64);
            let t0 = Instant::now();
            for _ in 0..reps {
                // SAFETY: the slices hold the matrices described by the strides.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rsa,
                        csa,
                        b.as_ptr(),
                        rsb,
                        csb,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
            }
            theirs.push(t0.elapsed().as_secs_f64() / reps as f64);
        }
        ours.sort_by(|x, y| x.partial_cmp(y).unwrap());
        theirs.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let gf = |t: f64| 2.0 * (m * k * n) as f64 / t / 1e9;
        println!("{name:<34} {:>12.1} {:>16.1}", gf(ours[3]), gf(theirs[3]));
    }
}
