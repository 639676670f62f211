//! Feature vectors of a set of images (rows of equal length), and the dot products between
//! two sets that KID's kernels and FID's covariances are made of, in f64.

/// Feature vectors, one row per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    dim: usize,
    data: Vec<f32>,
}

impl Features {
    /// No rows yet, of length `dim`.
    pub fn empty(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
        }
    }

    /// `rows` (each of length `dim`). `None` if a row has another length or `dim` is 0.
    pub fn from_rows(dim: usize, rows: &[Vec<f32>]) -> Option<Self> {
        if dim == 0 || rows.iter().any(|r| r.len() != dim) {
            return None;
        }
        Some(Self {
            dim,
            data: rows.concat(),
        })
    }

    /// Appends rows given as one flat slice (a whole number of rows).
    pub fn extend(&mut self, values: &[f32]) {
        self.data.extend_from_slice(values);
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The first `n` rows (all if fewer).
    pub fn head(&self, n: usize) -> Features {
        let n = n.min(self.len());
        Features {
            dim: self.dim,
            data: self.data[..n * self.dim].to_vec(),
        }
    }

    /// The rows as f64, row-major.
    pub(super) fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|&v| f64::from(v)).collect()
    }
}

/// `x y^T` for row-major `x` (`n x d`) and `y` (`m x d`): the `n x m` dot products, in f64.
pub(super) fn dots(x: &[f64], y: &[f64], d: usize) -> Vec<f64> {
    let (n, m) = (x.len() / d, y.len() / d);
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        for j in 0..m {
            let yj = &y[j * d..(j + 1) * d];
            out[i * m + j] = dot(xi, yj);
        }
    }
    out
}

/// A dot product in eight running sums, which the compiler turns into SIMD.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}
