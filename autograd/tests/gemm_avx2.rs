//! The opt-in AVX2 micro-kernels (`AUTOGRAD_GEMM=avx2`), exercised on every
//! run: the GEMM against a naive product, and f32 convolutions (whose fast
//! paths pack im2col columns straight into the kernels' layout) against the
//! same convolutions in f64. One test, so the variable is set before any
//! GEMM runs in this process.

use autograd::{grad, ConvOptions, GradOptions, Tensor};

#[test]
fn avx2_kernels_match_references() {
    // SAFETY: set before any other thread of this test binary reads it.
    unsafe { std::env::set_var("AUTOGRAD_GEMM", "avx2") };
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        eprintln!("no AVX2 on this CPU: nothing to test");
        return;
    }
    assert!(autograd::bench_api::kernels_enabled());

    // GEMM against a naive f64 product, edges, transposes and threads included.
    let sizes = [1usize, 5, 6, 7, 16, 17, 100, 257, 300];
    for (t, &m) in sizes.iter().enumerate() {
        for &k in &sizes[..6] {
            let n = sizes[(t + k) % sizes.len()];
            let (ta, tb) = (t % 2 == 0, k % 2 == 1);
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32) / 101.0 - 0.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32) / 97.0 - 0.5)
                .collect();
            let mut c = vec![f32::NAN; m * n];
            autograd::bench_api::sgemm(m, k, n, &a, &b, &mut c, ta, tb, 1 + t % 2);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| {
                            let av = if ta { a[p * m + i] } else { a[i * k + p] };
                            let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                            av as f64 * bv as f64
                        })
                        .sum();
                    assert!(
                        (c[i * n + j] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "m {m} k {k} n {n}: [{i},{j}]"
                    );
                }
            }
        }
    }

    // Convolutions: forward and all gradients in f32 against f64.
    autograd::manual_seed(5);
    for (n, c, o, h, k, opts) in [
        (2, 1, 16, 28, 3, ConvOptions::new().padding(1)),
        (3, 16, 16, 14, 3, ConvOptions::new().padding(2)),
        (2, 8, 12, 9, 3, ConvOptions::new().stride(2).padding(1)),
        (2, 6, 8, 11, 3, ConvOptions::new().padding(2).dilation(2)),
        (2, 8, 8, 7, 3, ConvOptions::new().padding(1).groups(4)),
        (2, 8, 16, 6, 1, ConvOptions::new()),
    ] {
        let x64 = Tensor::<f64>::randn([n, c, h, h]);
        let w64 = Tensor::<f64>::randn([o, c / opts.groups, k, k]);
        let b64 = Tensor::<f64>::randn([o]);
        let run = |x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>| -> Vec<Vec<f64>> {
            let (x32, w32, b32) = (
                x.cast::<f32>().requires_grad_(),
                w.cast::<f32>().requires_grad_(),
                b.cast::<f32>().requires_grad_(),
            );
            let y = x32.conv2d(&w32, Some(&b32), opts);
            let gy = Tensor::<f32>::ones(y.shape());
            let g = grad(
                &[y.clone()],
                &[x32, w32, b32],
                GradOptions {
                    grad_outputs: Some(vec![gy]),
                    ..Default::default()
                },
            );
            let mut out = vec![y.to_vec().iter().map(|&v| v as f64).collect::<Vec<f64>>()];
            out.extend(
                g.into_iter()
                    .map(|t| t.unwrap().to_vec().iter().map(|&v| v as f64).collect()),
            );
            out
        };
        let got = run(&x64, &w64, &b64);
        let (x, w, b) = (
            x64.requires_grad_(),
            w64.requires_grad_(),
            b64.requires_grad_(),
        );
        let y = x.conv2d(&w, Some(&b), opts);
        let g = grad(
            &[y.clone()],
            &[x, w, b],
            GradOptions {
                grad_outputs: Some(vec![Tensor::ones(y.shape())]),
                ..Default::default()
            },
        );
        let mut want = vec![y.to_vec()];
        want.extend(g.into_iter().map(|t| t.unwrap().to_vec()));
        for (part, (gv, wv)) in got.iter().zip(&want).enumerate() {
            let scale = wv.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, e) in gv.iter().zip(wv) {
                assert!(
                    (a - e).abs() <= 1e-4 * scale,
                    "conv {opts:?}: part {part}: {a} vs {e}"
                );
            }
        }
    }
}
