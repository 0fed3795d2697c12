//! The golden fixture (`scripts/golden_optim.py` wrote it) and comparisons.
#![allow(dead_code)]

use std::collections::HashMap;

use autograd::{Float, Tensor};

pub struct Fixture(pub HashMap<String, (Vec<usize>, Vec<f64>)>);

impl Fixture {
    pub fn load() -> Fixture {
        let text = include_str!("../fixtures/golden_optim.txt");
        let mut map = HashMap::new();
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        while let Some(head) = lines.next() {
            let mut parts = head.split_whitespace();
            let name = parts.next().expect("name").to_string();
            let ndim: usize = parts.next().expect("ndim").parse().expect("ndim");
            let shape: Vec<usize> = parts.map(|p| p.parse().expect("dim")).collect();
            assert_eq!(shape.len(), ndim, "{name}");
            let values: Vec<f64> = lines
                .next()
                .expect("values")
                .split_whitespace()
                .map(|v| v.parse().expect("value"))
                .collect();
            map.insert(name, (shape, values));
        }
        Fixture(map)
    }

    pub fn values(&self, name: &str) -> &[f64] {
        &self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no {name}"))
            .1
    }

    pub fn tensor<T: Float>(&self, name: &str) -> Tensor<T> {
        let (shape, values) = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no {name}"));
        Tensor::from_vec(values.iter().map(|&v| T::of(v)).collect(), shape)
    }

    /// Names with the given prefix and suffix, sorted.
    pub fn names(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with(prefix) && k.ends_with(suffix))
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// Largest relative difference, elementwise: |got - want| / max(|want|, floor).
pub fn max_rel_diff(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(floor))
        .fold(0.0, f64::max)
}

/// Asserts every element agrees to `rtol` relative (values below `floor` compared absolutely to `rtol * floor`).
pub fn assert_close(name: &str, got: &[f64], want: &[f64], rtol: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * w.abs().max(floor);
        assert!(
            (g - w).abs() <= tol,
            "{name}[{i}]: got {g} want {w} (diff {:e}, tolerance {tol:e})",
            (g - w).abs()
        );
    }
}

pub fn to_f64<T: Float>(t: &Tensor<T>) -> Vec<f64> {
    t.to_vec().iter().map(|v| v.as_f64()).collect()
}
