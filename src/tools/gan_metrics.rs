//! Measures of generated images, as the GAN literature reports them:
//! the Inception-style score `exp(E_x[KL(p(y|x) ‖ p(y))])` of a classifier's
//! predictions (Salimans et al. 2016; 1 for one class or for undecided
//! predictions, the number of classes at best), and the Fréchet distance
//! between Gaussians fitted to a network's hidden features of generated
//! and real images (Heusel et al. 2017's FID, here on DeepConvNet's 50-wide
//! hidden layer instead of Inception's 2048).
//!
//! The covariance square root comes from a symmetric eigendecomposition
//! (cyclic Jacobi: exact to rounding and plenty fast at 50×50):
//! `tr √(Σ₁Σ₂) = tr √(√Σ₁ Σ₂ √Σ₁)`, whose argument is symmetric.
//!
//! ```
//! use dlfs::tools::gan_metrics::{frechet_distance, inception_score};
//! // Confident predictions spread evenly over 4 classes score 4.
//! let p: Vec<Vec<f64>> = (0..8).map(|i| (0..4).map(|c| f64::from(u8::from(c == i % 4))).collect()).collect();
//! assert!((inception_score(&p) - 4.0).abs() < 1e-9);
//! // Two samples that differ by a shift of (3, 4): distance 25.
//! let a = vec![vec![0.0, 1.0], vec![2.0, -1.0], vec![1.0, 3.0]];
//! let b: Vec<Vec<f64>> = a.iter().map(|r| vec![r[0] + 3.0, r[1] + 4.0]).collect();
//! assert!((frechet_distance(&a, &b) - 25.0).abs() < 1e-9);
//! ```

use autograd::{no_grad, Tensor};
use models::DeepConvNet;
use nn::Module;

/// A square symmetric matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct SymMatrix {
    /// Rows (= columns).
    pub n: usize,
    /// `n * n` values, row-major.
    pub values: Vec<f64>,
}

impl SymMatrix {
    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.n + j]
    }

    /// The sum of the diagonal.
    pub fn trace(&self) -> f64 {
        (0..self.n).map(|i| self.at(i, i)).sum()
    }

    /// `self · other` (square, same size; the product need not be symmetric,
    /// so use it only where it is, e.g. `A B A`).
    pub fn matmul(&self, other: &SymMatrix) -> SymMatrix {
        let n = self.n;
        assert_eq!(n, other.n, "SymMatrix::matmul: sizes {n} and {}", other.n);
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let a = self.at(i, k);
                for j in 0..n {
                    values[i * n + j] += a * other.at(k, j);
                }
            }
        }
        SymMatrix { n, values }
    }
}

/// Eigenvalues (ascending) and eigenvectors (column `k` of the row-major
/// `n × n` result belongs to eigenvalue `k`) of a symmetric matrix, by
/// cyclic Jacobi rotations until the off-diagonal mass is below `1e-14`
/// of the total (at most 100 sweeps).
pub fn symmetric_eigen(m: &SymMatrix) -> (Vec<f64>, Vec<f64>) {
    let n = m.n;
    let mut a = m.values.clone();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-28 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub & Van Loan 8.5.2).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &src) in order.iter().enumerate() {
        for row in 0..n {
            vectors[row * n + col] = v[row * n + src];
        }
    }
    (values, vectors)
}

/// The symmetric positive semi-definite square root `V √Λ Vᵀ`; eigenvalues
/// that rounding made slightly negative count as 0.
pub fn sqrtm_psd(m: &SymMatrix) -> SymMatrix {
    let n = m.n;
    let (lambda, v) = symmetric_eigen(m);
    let roots: Vec<f64> = lambda.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut values = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            values[i * n + j] = (0..n).map(|k| v[i * n + k] * roots[k] * v[j * n + k]).sum();
        }
    }
    SymMatrix { n, values }
}

/// The mean and the unbiased covariance (divisor `N − 1`, as `numpy.cov`)
/// of row vectors.
///
/// # Panics
/// With fewer than two rows, or rows of different lengths.
pub fn mean_and_covariance(rows: &[Vec<f64>]) -> (Vec<f64>, SymMatrix) {
    assert!(
        rows.len() >= 2,
        "mean_and_covariance: {} rows, need 2",
        rows.len()
    );
    let d = rows[0].len();
    assert!(
        rows.iter().all(|r| r.len() == d),
        "mean_and_covariance: rows of different lengths (the first has {d})"
    );
    let n = rows.len() as f64;
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, x) in mean.iter_mut().zip(r) {
            *m += x / n;
        }
    }
    let mut values = vec![0.0; d * d];
    for r in rows {
        for i in 0..d {
            let di = r[i] - mean[i];
            for j in i..d {
                values[i * d + j] += di * (r[j] - mean[j]);
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let c = values[i * d + j] / (n - 1.0);
            values[i * d + j] = c;
            values[j * d + i] = c;
        }
    }
    (mean, SymMatrix { n: d, values })
}

/// The Fréchet distance between Gaussians fitted to two samples of
/// feature vectors: `‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 √(Σ₁Σ₂))`.
pub fn frechet_distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (mu1, s1) = mean_and_covariance(a);
    let (mu2, s2) = mean_and_covariance(b);
    assert_eq!(
        mu1.len(),
        mu2.len(),
        "frechet_distance: feature widths differ"
    );
    let shift: f64 = mu1.iter().zip(&mu2).map(|(x, y)| (x - y) * (x - y)).sum();
    let r1 = sqrtm_psd(&s1);
    let cross = sqrtm_psd(&r1.matmul(&s2).matmul(&r1)).trace();
    (shift + s1.trace() + s2.trace() - 2.0 * cross).max(0.0)
}

/// `exp(mean_i KL(p_i ‖ p̄))` with `p̄` the mean prediction; terms with
/// `p_i(y) = 0` contribute 0.
pub fn inception_score(probs: &[Vec<f64>]) -> f64 {
    let n = probs.len() as f64;
    let c = probs.first().map_or(0, Vec::len);
    let mut marginal = vec![0.0; c];
    for p in probs {
        for (m, &v) in marginal.iter_mut().zip(p) {
            *m += v / n;
        }
    }
    let kl: f64 = probs
        .iter()
        .map(|p| {
            p.iter()
                .zip(&marginal)
                .filter(|(&v, _)| v > 0.0)
                .map(|(&v, &m)| v * (v / m).ln())
                .sum::<f64>()
        })
        .sum::<f64>()
        / n;
    kl.exp()
}

/// How many predictions fall in each class (their argmax).
pub fn class_histogram(probs: &[Vec<f64>]) -> Vec<usize> {
    let c = probs.first().map_or(0, Vec::len);
    let mut counts = vec![0; c];
    for p in probs {
        let best = (0..c).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap_or(0);
        counts[best] += 1;
    }
    counts
}

/// DeepConvNet's class probabilities (softmax) and its 50-wide hidden
/// features (after `fc1` and its ReLU, in evaluation mode) for images
/// `[N, 1, 28, 28]`, computed in batches of `batch`.
pub fn deep_convnet_features(
    model: &DeepConvNet,
    images: &Tensor,
    batch: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    model.eval();
    let n = images.shape()[0];
    let (mut probs, mut features) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let pool = autograd::PoolOptions::new(2);
    let rows = |t: &Tensor| -> Vec<Vec<f64>> {
        let w = t.shape()[1];
        t.to_vec()
            .chunks(w)
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect()
    };
    no_grad(|| {
        for start in (0..n).step_by(batch.max(1)) {
            let x = images.narrow(0, start, batch.min(n - start));
            // DeepConvNet's forward, stopped after fc1 to keep the features.
            let cr = |c: &nn::Conv2d, h: &Tensor| c.forward(h).relu();
            let h = cr(&model.conv2, &cr(&model.conv1, &x)).max_pool2d(pool);
            let h = cr(&model.conv4, &cr(&model.conv3, &h)).max_pool2d(pool);
            let h = cr(&model.conv6, &cr(&model.conv5, &h)).max_pool2d(pool);
            let hidden = model.fc1.forward(&h.flatten(1, -1)).relu();
            let logits = model.fc2.forward(&hidden);
            features.extend(rows(&hidden));
            probs.extend(rows(&logits.softmax(1)));
        }
    });
    (probs, features)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::rng::generator;
    use rand::RngExt;

    /// A random symmetric positive definite matrix `B Bᵀ + 0.1 I`.
    fn spd(n: usize, seed: u64) -> SymMatrix {
        let mut rng = generator(seed);
        let b: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                values[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>()
                    + if i == j { 0.1 } else { 0.0 };
            }
        }
        SymMatrix { n, values }
    }

    fn assert_close(a: &SymMatrix, b: &SymMatrix, tol: f64) {
        let scale = b.values.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
            assert!((x - y).abs() <= tol * scale, "element {i}: {x} against {y}");
        }
    }

    #[test]
    fn eigen_of_a_known_matrix() {
        let m = SymMatrix {
            n: 2,
            values: vec![2.0, 1.0, 1.0, 2.0],
        };
        let (l, v) = symmetric_eigen(&m);
        assert!(
            (l[0] - 1.0).abs() < 1e-14 && (l[1] - 3.0).abs() < 1e-14,
            "{l:?}"
        );
        // The eigenvector of 3 is ±(1, 1)/√2.
        assert!((v[1].abs() - 0.5f64.sqrt()).abs() < 1e-14 && (v[1] - v[3]).abs() < 1e-14);
    }

    /// `V diag(λ) Vᵀ` rebuilds the matrix, `Vᵀ V = I`, and `√M √M = M`, at
    /// the 50×50 size the Fréchet distance uses.
    #[test]
    fn eigen_and_square_root_rebuild_the_matrix() {
        let n = 50;
        let m = spd(n, 7);
        let (l, v) = symmetric_eigen(&m);
        assert!(l.windows(2).all(|w| w[0] <= w[1]) && l[0] > 0.0, "{l:?}");
        let mut rebuilt = vec![0.0; n * n];
        let mut gram = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                rebuilt[i * n + j] = (0..n).map(|k| v[i * n + k] * l[k] * v[j * n + k]).sum();
                gram[i * n + j] = (0..n).map(|k| v[k * n + i] * v[k * n + j]).sum();
            }
        }
        assert_close(&SymMatrix { n, values: rebuilt }, &m, 1e-11);
        let identity = sqrtm_psd(&SymMatrix {
            n,
            values: (0..n * n)
                .map(|k| f64::from(u8::from(k % (n + 1) == 0)))
                .collect(),
        });
        assert_close(&SymMatrix { n, values: gram }, &identity, 1e-12);
        let r = sqrtm_psd(&m);
        assert_close(&r.matmul(&r), &m, 1e-11);
    }

    /// In one dimension the distance is `(μ₁ − μ₂)² + (σ₁ − σ₂)²`; a sample
    /// against itself is 0; scaling a sample by 2 gives `tr Σ` (all the
    /// other terms cancel: `Σ + 4Σ − 2·2Σ`).
    #[test]
    fn frechet_distance_by_hand() {
        let a: Vec<Vec<f64>> = [1.0, 2.0, 4.0, 7.0].iter().map(|&x| vec![x]).collect();
        let b: Vec<Vec<f64>> = [0.0, 3.0, 3.0, 10.0].iter().map(|&x| vec![x]).collect();
        let (ma, va) = (3.5, (6.25 + 2.25 + 0.25 + 12.25) / 3.0f64);
        let (mb, vb) = (4.0, (16.0 + 1.0 + 1.0 + 36.0) / 3.0f64);
        let want = (ma - mb) * (ma - mb) + (va.sqrt() - vb.sqrt()).powi(2);
        assert!((frechet_distance(&a, &b) - want).abs() < 1e-12);

        let mut rng = generator(3);
        let x: Vec<Vec<f64>> = (0..200)
            .map(|_| (0..50).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        assert!(frechet_distance(&x, &x).abs() < 1e-9);
        let centred: Vec<Vec<f64>> = {
            let (mu, _) = mean_and_covariance(&x);
            x.iter()
                .map(|r| r.iter().zip(&mu).map(|(v, m)| v - m).collect())
                .collect()
        };
        let doubled: Vec<Vec<f64>> = centred
            .iter()
            .map(|r| r.iter().map(|v| 2.0 * v).collect())
            .collect();
        let (_, cov) = mean_and_covariance(&centred);
        assert!((frechet_distance(&centred, &doubled) - cov.trace()).abs() < 1e-9 * cov.trace());
    }

    #[test]
    fn inception_score_and_histogram() {
        // One confident class for all: 1; undecided predictions: 1.
        assert!((inception_score(&vec![vec![0.0, 1.0, 0.0]; 5]) - 1.0).abs() < 1e-12);
        assert!((inception_score(&vec![vec![0.25; 4]; 5]) - 1.0).abs() < 1e-12);
        // Two equally likely confident classes, one row half-decided:
        // p̄ = (0.5, 0.5); KL of a one-hot row is ln 2, of (0.5, 0.5) is 0.
        let p = vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![0.5, 0.5],
            vec![0.5, 0.5],
        ];
        assert!((inception_score(&p) - (0.5 * 2f64.ln()).exp()).abs() < 1e-12);
        assert_eq!(
            class_histogram(&[vec![0.1, 0.9], vec![0.8, 0.2], vec![0.3, 0.7]]),
            vec![1, 2]
        );
    }
}
