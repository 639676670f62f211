//! Fréchet Inception Distance (Heusel et al., *GANs Trained by a Two Time-Scale Update Rule
//! Converge to a Local Nash Equilibrium*, NeurIPS 2017): the Fréchet distance between Gaussians
//! fitted to two feature sets,
//!
//! `|mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x S_y)^(1/2))`,
//!
//! with unbiased covariances (`np.cov`). All in f64. The trace of the matrix square root is taken
//! without forming `S_x S_y` (not symmetric, so not stable to square-root directly): with
//! `A`, `B` the centred features scaled by `1/sqrt(n - 1)` (`S_x = A^T A`, `S_y = B^T B`), the
//! eigenvalues of `S_x S_y` are those of `sqrt(S_x) S_y sqrt(S_x)` and, but for zeros, the squared
//! singular values of `A B^T`. So the trace is the sum of the square roots of the eigenvalues of
//! a symmetric positive semi-definite matrix: `(A B^T)^T (A B^T)`, whose side is the smaller
//! set's size, when a set is smaller than the feature length (test sets of a few hundred images
//! against 2048 features); `sqrt(S_x) S_y sqrt(S_x)` otherwise.

use super::features::{dots, Features};
use super::linalg::symmetric_eigen;
use super::EvalError;

/// FID between feature sets `x` and `y` (at least 2 rows each).
pub fn fid(x: &Features, y: &Features) -> Result<f64, EvalError> {
    let d = x.dim();
    if y.dim() != d || x.len() < 2 || y.len() < 2 {
        return Err(EvalError::TooFew(format!(
            "FID needs at least 2 feature vectors of one length in each set (got {} of {} and {} of {})",
            x.len(),
            x.dim(),
            y.len(),
            y.dim()
        )));
    }
    let (mx, a) = centred(x);
    let (my, b) = centred(y);
    let mean_term: f64 = mx.iter().zip(&my).map(|(p, q)| (p - q) * (p - q)).sum();
    let trace = |m: &[f64]| m.iter().map(|v| v * v).sum::<f64>();
    let tr_sqrt = if x.len().min(y.len()) <= d {
        trace_sqrt_small(&a, &b, d)
    } else {
        trace_sqrt_full(&a, &b, d)
    }
    .ok_or_else(|| EvalError::TooFew("FID: the features hold NaN or infinite values".into()))?;
    Ok(mean_term + trace(&a) + trace(&b) - 2.0 * tr_sqrt)
}

/// The mean of the rows, and the rows less the mean scaled by `1/sqrt(n - 1)`.
fn centred(x: &Features) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.len(), x.dim());
    let f = x.to_f64();
    let mut mean = vec![0.0; d];
    for row in f.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let scale = 1.0 / ((n - 1) as f64).sqrt();
    let mut c = f;
    for row in c.chunks_exact_mut(d) {
        for (v, m) in row.iter_mut().zip(&mean) {
            *v = (*v - m) * scale;
        }
    }
    (mean, c)
}

/// `tr((S_x S_y)^(1/2))` as the sum of the singular values of `A B^T` (`n_x x n_y`).
fn trace_sqrt_small(a: &[f64], b: &[f64], d: usize) -> Option<f64> {
    let m = dots(a, b, d);
    let (nx, ny) = (a.len() / d, b.len() / d);
    // The Gram matrix of M's rows or columns, whichever is smaller.
    let (g, k) = if ny <= nx {
        (gram_of_columns(&m, nx, ny), ny)
    } else {
        (gram_of_columns(&transpose(&m, nx, ny), ny, nx), nx)
    };
    let eig = symmetric_eigen(&g, k, false)?;
    Some(eig.values.iter().map(|v| v.max(0.0).sqrt()).sum())
}

/// `tr((S_x S_y)^(1/2))` as `tr((sqrt(S_x) S_y sqrt(S_x))^(1/2))` (`d x d`).
fn trace_sqrt_full(a: &[f64], b: &[f64], d: usize) -> Option<f64> {
    let (nx, ny) = (a.len() / d, b.len() / d);
    let sx = gram_of_columns(a, nx, d);
    let sy = gram_of_columns(b, ny, d);
    let eig = symmetric_eigen(&sx, d, true)?;
    let vecs = eig.vectors?;
    // sqrt(S_x) = V diag(sqrt(max(lambda, 0))) V^T.
    let mut scaled = vecs.clone();
    for row in scaled.chunks_exact_mut(d) {
        for (v, l) in row.iter_mut().zip(&eig.values) {
            *v *= l.max(0.0).sqrt();
        }
    }
    let root = matmul_t(&scaled, &vecs, d);
    let p = matmul(&matmul(&root, &sy, d), &root, d);
    let eig = symmetric_eigen(&p, d, false)?;
    Some(eig.values.iter().map(|v| v.max(0.0).sqrt()).sum())
}

/// `M^T M` for row-major `M` (`rows x cols`).
fn gram_of_columns(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut g = vec![0.0; cols * cols];
    for r in 0..rows {
        let row = &m[r * cols..(r + 1) * cols];
        for (i, &vi) in row.iter().enumerate() {
            if vi == 0.0 {
                continue;
            }
            let gi = &mut g[i * cols..(i + 1) * cols];
            for (gij, &vj) in gi.iter_mut().zip(row) {
                *gij += vi * vj;
            }
        }
    }
    g
}

fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// `X Y` for square row-major `n x n` matrices.
fn matmul(x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        let oi = &mut out[i * n..(i + 1) * n];
        for k in 0..n {
            let xik = x[i * n + k];
            for (o, &ykj) in oi.iter_mut().zip(&y[k * n..(k + 1) * n]) {
                *o += xik * ykj;
            }
        }
    }
    out
}

/// `X Y^T` for square row-major `n x n` matrices.
fn matmul_t(x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    dots(x, y, n)
}
