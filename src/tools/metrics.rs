//! Per-epoch metrics as CSV, rewritten whole through a temporary file after
//! every row ([`autograd::io::write_atomic`]), so the file on disk is always complete.
//!
//! ```
//! use dlfs::tools::MetricsCsv;
//! let dir = std::env::temp_dir().join(format!("dlfs-doc-metrics-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let mut m = MetricsCsv::new(dir.join("metrics.csv"), &["epoch", "train_loss", "test_acc"]);
//! m.push(&[1.0, 0.25, 97.5]).unwrap();
//! let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
//! assert_eq!(text, "epoch,train_loss,test_acc\n1,0.25,97.5\n");
//! ```

use std::path::PathBuf;

/// A CSV of numeric rows under a fixed header.
pub struct MetricsCsv {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl MetricsCsv {
    /// A new table (nothing is written until the first row).
    pub fn new(path: impl Into<PathBuf>, header: &[&str]) -> Self {
        MetricsCsv {
            path: path.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Continues an existing table (after resuming from a checkpoint): its
    /// rows up to and including `upto_epoch` (first column) are kept.
    pub fn resume(path: impl Into<PathBuf>, header: &[&str], upto_epoch: f64) -> Self {
        let mut m = Self::new(path, header);
        if let Ok(text) = std::fs::read_to_string(&m.path) {
            for line in text.lines().skip(1) {
                let row: Vec<f64> = line.split(',').filter_map(|v| v.parse().ok()).collect();
                if row.len() == m.header.len() && row[0] <= upto_epoch {
                    m.rows.push(row);
                }
            }
        }
        m
    }

    /// Appends a row and rewrites the file atomically; an error names the
    /// file, which keeps its previous rows.
    ///
    /// # Panics
    /// If the row's length differs from the header's.
    pub fn push(&mut self, row: &[f64]) -> std::io::Result<()> {
        assert_eq!(
            row.len(),
            self.header.len(),
            "metrics row {row:?} does not fit header {:?}",
            self.header
        );
        self.rows.push(row.to_vec());
        let mut text = self.header.join(",");
        text.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
            text += &cells.join(",");
            text.push('\n');
        }
        autograd::io::write_atomic(&self.path, text.as_bytes())
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }

    /// Column `name` over all rows.
    pub fn column(&self, name: &str) -> Vec<f64> {
        match self.header.iter().position(|h| h == name) {
            Some(i) => self.rows.iter().map(|r| r[i]).collect(),
            None => Vec::new(),
        }
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }
}

/// Accuracies over several seeds as `mean ± sd (min–max)`, in percent (the
/// sample standard deviation; 0 for one value).
///
/// ```
/// assert_eq!(dlfs::tools::metrics::spread(&[99.0, 99.2, 99.4]), "99.20% ± 0.20 (99.00–99.40)");
/// assert_eq!(dlfs::tools::metrics::spread(&[97.5]), "97.50% ± 0.00 (97.50–97.50)");
/// ```
pub fn spread(values: &[f64]) -> String {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{mean:.2}% ± {sd:.2} ({lo:.2}–{hi:.2})")
}
