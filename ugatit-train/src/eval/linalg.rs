//! Eigenvalues (and optionally eigenvectors) of a real symmetric matrix, in f64: Householder
//! reduction to tridiagonal form, then the implicit QL algorithm (EISPACK's `tred2` and `tql2`,
//! as the public-domain JAMA library writes them). Enough for FID's matrix square roots without
//! a LAPACK dependency.

/// The eigen-decomposition of a symmetric matrix.
#[derive(Debug, Clone)]
pub(super) struct SymmetricEigen {
    pub values: Vec<f64>,
    /// Row-major `n x n`: column `i` is the eigenvector of `values[i]` (when asked for).
    pub vectors: Option<Vec<f64>>,
}

/// The eigenvalues of the symmetric `n x n` row-major matrix `a` (only its lower triangle is
/// read), with the eigenvectors if `vectors`. `None` if the QL iteration does not converge
/// (a matrix holding NaN or infinity).
pub(super) fn symmetric_eigen(a: &[f64], n: usize, vectors: bool) -> Option<SymmetricEigen> {
    if n == 0 {
        return Some(SymmetricEigen {
            values: Vec::new(),
            vectors: vectors.then(Vec::new),
        });
    }
    let mut v = a.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(n, &mut v, &mut d, &mut e, vectors);
    tql2(n, &mut d, &mut e, vectors.then_some(&mut v[..]))?;
    Some(SymmetricEigen {
        values: d,
        vectors: vectors.then_some(v),
    })
}

/// Householder reduction of `v` to a tridiagonal matrix: its diagonal in `d`, sub-diagonal in
/// `e[1..]`; with `accumulate`, `v` then holds the orthogonal transformation.
fn tred2(n: usize, v: &mut [f64], d: &mut [f64], e: &mut [f64], accumulate: bool) {
    let at = |i: usize, j: usize| i * n + j;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in &mut e[..i] {
                *ej = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    if !accumulate {
        for (j, dj) in d.iter_mut().enumerate() {
            *dj = v[at(j, j)];
        }
        e[0] = 0.0;
        return;
    }
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal (`d`, `e`): `d` becomes the eigenvalues; `v`,
/// if given, the eigenvectors. `None` if an eigenvalue takes more than 100 iterations.
fn tql2(n: usize, d: &mut [f64], e: &mut [f64], mut v: Option<&mut [f64]>) -> Option<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 100 {
                    return None;
                }
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..n] {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if let Some(v) = v.as_deref_mut() {
                        for k in 0..n {
                            let h = v[k * n + i + 1];
                            v[k * n + i + 1] = s * v[k * n + i] + c * h;
                            v[k * n + i] = c * v[k * n + i] - s * h;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 || !e[l].is_finite() {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    d.iter().all(|x| x.is_finite()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenpairs_reconstruct_the_matrix() {
        let n = 7;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = ((i * 7 + j * 3) % 11) as f64 - 5.0 + if i == j { 3.0 } else { 0.0 };
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        let eig = symmetric_eigen(&a, n, true).unwrap();
        let vecs = eig.vectors.unwrap();
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n)
                    .map(|k| vecs[i * n + k] * eig.values[k] * vecs[j * n + k])
                    .sum();
                assert!(
                    (r - a[i * n + j]).abs() < 1e-12,
                    "{i},{j}: {r} vs {}",
                    a[i * n + j]
                );
            }
        }
        let only = symmetric_eigen(&a, n, false).unwrap();
        let (mut x, mut y) = (eig.values.clone(), only.values);
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() < 1e-12, "{p} vs {q}");
        }
    }
}
