//! Small dense linear algebra for the p x p (p <= 13) matrices of IR-MAD:
//! Cholesky factorisation, triangular inverse and the cyclic Jacobi
//! eigen-solver. Plain loops in f64: deterministic and exact enough, and no
//! LAPACK to install.

/// Row-major square matrix of side `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Mat {
    pub fn zeros(n: usize) -> Mat {
        Mat {
            n,
            a: vec![0.0; n * n],
        }
    }
    pub fn identity(n: usize) -> Mat {
        let mut m = Mat::zeros(n);
        for i in 0..n {
            m.a[i * n + i] = 1.0;
        }
        m
    }
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.a[i * self.n + j] = v;
    }
    pub fn mul(&self, o: &Mat) -> Mat {
        let n = self.n;
        let mut r = Mat::zeros(n);
        for i in 0..n {
            for k in 0..n {
                let v = self.get(i, k);
                for j in 0..n {
                    r.a[i * n + j] += v * o.get(k, j);
                }
            }
        }
        r
    }
    pub fn transpose(&self) -> Mat {
        let n = self.n;
        let mut r = Mat::zeros(n);
        for i in 0..n {
            for j in 0..n {
                r.set(j, i, self.get(i, j));
            }
        }
        r
    }
    pub fn mul_vec(&self, v: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| (0..self.n).map(|j| self.get(i, j) * v[j]).sum())
            .collect()
    }

    /// Lower-triangular L with L L^T = self, or None if not positive definite.
    pub fn cholesky(&self) -> Option<Mat> {
        let n = self.n;
        let mut l = Mat::zeros(n);
        for i in 0..n {
            for j in 0..=i {
                let mut s = self.get(i, j);
                for k in 0..j {
                    s -= l.get(i, k) * l.get(j, k);
                }
                if i == j {
                    if s <= 0.0 || !s.is_finite() {
                        return None;
                    }
                    l.set(i, i, s.sqrt());
                } else {
                    l.set(i, j, s / l.get(j, j));
                }
            }
        }
        Some(l)
    }

    /// Inverse of a lower-triangular matrix.
    pub fn lower_inverse(&self) -> Mat {
        let n = self.n;
        let mut r = Mat::zeros(n);
        for i in 0..n {
            r.set(i, i, 1.0 / self.get(i, i));
            for j in 0..i {
                let mut s = 0.0;
                for k in j..i {
                    s -= self.get(i, k) * r.get(k, j);
                }
                r.set(i, j, s / self.get(i, i));
            }
        }
        r
    }

    /// Inverse of a symmetric positive definite matrix.
    pub fn spd_inverse(&self) -> Option<Mat> {
        let li = self.cholesky()?.lower_inverse();
        Some(li.transpose().mul(&li))
    }

    /// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations:
    /// (eigenvalues descending, eigenvectors as columns in the same order).
    pub fn symmetric_eigen(&self) -> (Vec<f64>, Mat) {
        let n = self.n;
        let mut a = self.clone();
        let mut v = Mat::identity(n);
        for _sweep in 0..100 {
            let off: f64 = (0..n)
                .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| a.get(i, j).powi(2))
                .sum();
            if off < 1e-30 {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    let apq = a.get(p, q);
                    if apq.abs() < 1e-300 {
                        continue;
                    }
                    let theta = (a.get(q, q) - a.get(p, p)) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for k in 0..n {
                        let akp = a.get(k, p);
                        let akq = a.get(k, q);
                        a.set(k, p, c * akp - s * akq);
                        a.set(k, q, s * akp + c * akq);
                    }
                    for k in 0..n {
                        let apk = a.get(p, k);
                        let aqk = a.get(q, k);
                        a.set(p, k, c * apk - s * aqk);
                        a.set(q, k, s * apk + c * aqk);
                    }
                    for k in 0..n {
                        let vkp = v.get(k, p);
                        let vkq = v.get(k, q);
                        v.set(k, p, c * vkp - s * vkq);
                        v.set(k, q, s * vkp + c * vkq);
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| {
            a.get(j, j)
                .partial_cmp(&a.get(i, i))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let vals = order.iter().map(|&i| a.get(i, i)).collect();
        let mut vecs = Mat::zeros(n);
        for (c, &i) in order.iter().enumerate() {
            for k in 0..n {
                vecs.set(k, c, v.get(k, i));
            }
        }
        (vals, vecs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd() -> Mat {
        Mat {
            n: 3,
            a: vec![4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0],
        }
    }

    #[test]
    fn cholesky_reconstructs() {
        let m = spd();
        let l = m.cholesky().unwrap();
        let r = l.mul(&l.transpose());
        for (x, y) in r.a.iter().zip(&m.a) {
            assert!((x - y).abs() < 1e-12);
        }
        assert!(Mat {
            n: 2,
            a: vec![1.0, 2.0, 2.0, 1.0]
        }
        .cholesky()
        .is_none());
    }

    #[test]
    fn inverse_is_inverse() {
        let m = spd();
        let i = m.mul(&m.spd_inverse().unwrap());
        for r in 0..3 {
            for c in 0..3 {
                assert!((i.get(r, c) - if r == c { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn jacobi_eigenpairs() {
        let m = spd();
        let (vals, vecs) = m.symmetric_eigen();
        assert!(vals[0] >= vals[1] && vals[1] >= vals[2]);
        for (c, val) in vals.iter().enumerate() {
            let v: Vec<f64> = (0..3).map(|k| vecs.get(k, c)).collect();
            let mv = m.mul_vec(&v);
            for k in 0..3 {
                assert!((mv[k] - val * v[k]).abs() < 1e-10);
            }
        }
        let trace: f64 = vals.iter().sum();
        assert!((trace - 9.0).abs() < 1e-10);
    }
}
