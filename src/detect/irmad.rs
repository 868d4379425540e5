//! IR-MAD: iteratively re-weighted multivariate alteration detection
//! (Nielsen 2007, IEEE TIP 16(2)). Canonical correlation analysis between
//! the two dates finds the linear combinations that agree best; their
//! differences (MAD variates) are invariant to any linear radiometric change
//! of either scene (gain, offset, haze), and the sum of their squares,
//! standardised, is chi-square with p degrees of freedom where nothing
//! changed. Re-weighting by the no-change probability makes the fit rest on
//! unchanged pixels.

use super::chi2::chi2_cdf;
use super::linalg::Mat;
use super::sample::Sample;
use rayon::prelude::*;
use serde::Serialize;

/// A fitted IR-MAD transformation.
#[derive(Debug, Clone, Serialize)]
pub struct IrMad {
    pub p: usize,
    pub mean_x: Vec<f64>,
    pub mean_y: Vec<f64>,
    /// Columns are the canonical vectors a_i, b_i (row-major p x p).
    #[serde(skip)]
    pub a: Mat,
    #[serde(skip)]
    pub b: Mat,
    /// Canonical correlations, descending.
    pub rho: Vec<f64>,
    /// Standard deviation of each MAD variate: sqrt(2 (1 - rho)).
    pub sigma: Vec<f64>,
    pub iterations: usize,
}

impl IrMad {
    /// Fits on a sample; None when the covariances are singular (e.g. a
    /// constant band).
    pub fn fit(s: &Sample, max_iter: usize) -> Option<IrMad> {
        let p = s.p;
        let n = s.len();
        if n < 2 * p + 2 || p > MAX_BANDS {
            return None;
        }
        let mut w = vec![1.0f64; n];
        let mut prev_rho: Option<Vec<f64>> = None;
        let mut fit = None;
        for it in 1..=max_iter {
            let (mx, my, s11, s22, s12) = weighted_cov(s, &w)?;
            let l = s11.cholesky()?;
            let li = l.lower_inverse();
            let s22i = s22.spd_inverse()?;
            let s21 = s12.transpose();
            let c = li.mul(&s12).mul(&s22i).mul(&s21).mul(&li.transpose());
            let c = symmetrize(&c);
            let (vals, u) = c.symmetric_eigen();
            let rho: Vec<f64> = vals.iter().map(|v| v.clamp(0.0, 1.0).sqrt()).collect();
            let a = li.transpose().mul(&u);
            let mut b = s22i.mul(&s21).mul(&a);
            for (j, r) in rho.iter().enumerate() {
                let r = r.max(1e-12);
                for i in 0..p {
                    b.set(i, j, b.get(i, j) / r);
                }
            }
            let sigma: Vec<f64> = rho
                .iter()
                .map(|r| (2.0 * (1.0 - r)).max(1e-12).sqrt())
                .collect();
            let m = IrMad {
                p,
                mean_x: mx,
                mean_y: my,
                a,
                b,
                rho: rho.clone(),
                sigma,
                iterations: it,
            };
            // Each weight is its own pixel's: the same values on any number of threads.
            w.par_chunks_mut(CHUNK).enumerate().for_each(|(c, wc)| {
                let mut chi = [0.0f64; CHUNK];
                m.chi2_chunk(s, c * CHUNK, &mut chi[..wc.len()]);
                for (wi, &q) in wc.iter_mut().zip(&chi) {
                    *wi = 1.0 - chi2_cdf(q, p);
                }
            });
            let converged = prev_rho
                .as_ref()
                .is_some_and(|pr| pr.iter().zip(&rho).all(|(a, b)| (a - b).abs() < 1e-4));
            fit = Some(m);
            if converged {
                break;
            }
            prev_rho = Some(rho);
        }
        fit
    }

    /// MAD variates of one pixel pair, divided by their no-change standard deviation.
    pub fn standardized_mads(&self, x: &[f32], y: &[f32], out: &mut [f64]) {
        let p = self.p;
        // The centred values once per pixel (not once per variate).
        let (mut dx, mut dy) = ([0.0f64; MAX_BANDS], [0.0f64; MAX_BANDS]);
        for i in 0..p {
            dx[i] = x[i] as f64 - self.mean_x[i];
            dy[i] = y[i] as f64 - self.mean_y[i];
        }
        for (j, o) in out[..p].iter_mut().enumerate() {
            let mut u = 0.0;
            let mut v = 0.0;
            for i in 0..p {
                u += self.a.get(i, j) * dx[i];
                v += self.b.get(i, j) * dy[i];
            }
            *o = (u - v) / self.sigma[j];
        }
    }

    /// Chi-square statistic of one pixel pair: large where something changed.
    pub fn chi2_f32(&self, x: &[f32], y: &[f32]) -> f64 {
        let mut m = [0.0f64; MAX_BANDS];
        self.standardized_mads(x, y, &mut m[..self.p]);
        m[..self.p].iter().map(|v| v * v).sum()
    }

    /// [`Self::chi2_f32`] of samples `i0..i0 + out.len()` (at most
    /// [`CHUNK`]), band by band over the pixels at once so that the loops
    /// vectorise: each pixel's sums are taken in the same order, so the
    /// values are the same to the bit.
    fn chi2_chunk(&self, s: &Sample, i0: usize, out: &mut [f64]) {
        let (p, n) = (self.p, out.len());
        let mut dx = [[0.0f64; CHUNK]; MAX_BANDS];
        let mut dy = [[0.0f64; CHUNK]; MAX_BANDS];
        for k in 0..n {
            let (x, y) = (s.x(i0 + k), s.y(i0 + k));
            for i in 0..p {
                dx[i][k] = x[i] as f64 - self.mean_x[i];
                dy[i][k] = y[i] as f64 - self.mean_y[i];
            }
        }
        out.fill(0.0);
        for j in 0..p {
            let (mut u, mut v) = ([0.0f64; CHUNK], [0.0f64; CHUNK]);
            for i in 0..p {
                let (a, b) = (self.a.get(i, j), self.b.get(i, j));
                for ((u, v), (&dx, &dy)) in u.iter_mut().zip(&mut v).zip(dx[i].iter().zip(&dy[i])) {
                    *u += a * dx;
                    *v += b * dy;
                }
            }
            let sigma = self.sigma[j];
            for ((o, &u), &v) in out.iter_mut().zip(&u).zip(&v) {
                let m = (u - v) / sigma;
                *o += m * m;
            }
        }
    }

    /// Probability that the pair changed (1 - the no-change probability).
    pub fn change_probability(&self, x: &[f32], y: &[f32]) -> f64 {
        chi2_cdf(self.chi2_f32(x, y), self.p)
    }
}

/// Bands a fit takes at most (per-pixel buffers are arrays this long).
const MAX_BANDS: usize = 16;
/// Samples whose weights are computed together.
const CHUNK: usize = 64;

fn symmetrize(m: &Mat) -> Mat {
    let mut r = m.clone();
    for i in 0..m.n {
        for j in 0..m.n {
            r.set(i, j, 0.5 * (m.get(i, j) + m.get(j, i)));
        }
    }
    r
}

type Cov = (Vec<f64>, Vec<f64>, Mat, Mat, Mat);

/// Weighted means and covariance blocks of the sample (two passes, f64),
/// for the sample's number of bands as a constant: the per-sample loops
/// then unroll and vectorise across the matrix entries.
fn weighted_cov(s: &Sample, w: &[f64]) -> Option<Cov> {
    match s.p {
        1 => weighted_cov_p::<1>(s, w),
        2 => weighted_cov_p::<2>(s, w),
        3 => weighted_cov_p::<3>(s, w),
        4 => weighted_cov_p::<4>(s, w),
        5 => weighted_cov_p::<5>(s, w),
        6 => weighted_cov_p::<6>(s, w),
        7 => weighted_cov_p::<7>(s, w),
        8 => weighted_cov_p::<8>(s, w),
        9 => weighted_cov_p::<9>(s, w),
        10 => weighted_cov_p::<10>(s, w),
        11 => weighted_cov_p::<11>(s, w),
        12 => weighted_cov_p::<12>(s, w),
        13 => weighted_cov_p::<13>(s, w),
        14 => weighted_cov_p::<14>(s, w),
        15 => weighted_cov_p::<15>(s, w),
        16 => weighted_cov_p::<16>(s, w),
        _ => None,
    }
}

/// [`weighted_cov`] for `P` bands. Every entry is summed over the samples
/// in their order, whichever thread sums it: the same bits on any number
/// of threads (and as the plain loops gave).
fn weighted_cov_p<const P: usize>(s: &Sample, w: &[f64]) -> Option<Cov> {
    let sw: f64 = w.iter().sum();
    if sw <= 0.0 {
        return None;
    }
    let (mut mx, mut my) = ([0.0f64; P], [0.0f64; P]);
    let pixels = s.before.chunks_exact(P).zip(s.after.chunks_exact(P));
    for ((x, y), &wi) in pixels.zip(w) {
        for k in 0..P {
            mx[k] += wi * x[k] as f64;
            my[k] += wi * y[k] as f64;
        }
    }
    mx.iter_mut().for_each(|v| *v /= sw);
    my.iter_mut().for_each(|v| *v /= sw);
    // The rows in two halves, one per thread: this pass is the fit's
    // serial part otherwise (28 iterations over 182k samples on a full tile).
    let half = P / 2;
    let (top, bottom) = rayon::join(
        || cov_rows::<P>(s, w, (&mx, &my), 0..half),
        || cov_rows::<P>(s, w, (&mx, &my), half..P),
    );
    let (mut s11, mut s22, mut s12) = (Mat::zeros(P), Mat::zeros(P), Mat::zeros(P));
    for (r, [a11, a22, a12]) in top.into_iter().chain(bottom).enumerate() {
        for c in 0..P {
            s11.a[r * P + c] = a11[c] / sw;
            s22.a[r * P + c] = a22[c] / sw;
            s12.a[r * P + c] = a12[c] / sw;
        }
    }
    Some((mx.to_vec(), my.to_vec(), s11, s22, s12))
}

/// Rows `rows` of the three weighted cross-product sums (before x before,
/// after x after, before x after) about the means `mx`, `my`.
fn cov_rows<const P: usize>(
    s: &Sample,
    w: &[f64],
    (mx, my): (&[f64; P], &[f64; P]),
    rows: std::ops::Range<usize>,
) -> Vec<[[f64; P]; 3]> {
    let mut acc = vec![[[0.0f64; P]; 3]; rows.len()];
    let pixels = s.before.chunks_exact(P).zip(s.after.chunks_exact(P));
    for ((x, y), &wi) in pixels.zip(w) {
        let (mut dx, mut dy) = ([0.0f64; P], [0.0f64; P]);
        for k in 0..P {
            dx[k] = x[k] as f64 - mx[k];
            dy[k] = y[k] as f64 - my[k];
        }
        for ([a11, a22, a12], r) in acc.iter_mut().zip(rows.clone()) {
            let (wx, wy) = (wi * dx[r], wi * dy[r]);
            for c in 0..P {
                a11[c] += wx * dx[c];
                a22[c] += wy * dy[c];
                a12[c] += wx * dy[c];
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers for synthetic scenes.
    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32) / (1u64 << 31) as f32
    }

    /// The covariance pass as first written (plain loops, one thread): the
    /// reference the vectorised, split one must equal to the bit.
    fn weighted_cov_plain(s: &Sample, w: &[f64]) -> Cov {
        let p = s.p;
        let sw: f64 = w.iter().sum();
        let mut mx = vec![0.0; p];
        let mut my = vec![0.0; p];
        for (i, &wi) in w.iter().enumerate() {
            let (x, y) = (s.x(i), s.y(i));
            for k in 0..p {
                mx[k] += wi * x[k] as f64;
                my[k] += wi * y[k] as f64;
            }
        }
        mx.iter_mut().for_each(|v| *v /= sw);
        my.iter_mut().for_each(|v| *v /= sw);
        let (mut s11, mut s22, mut s12) = (Mat::zeros(p), Mat::zeros(p), Mat::zeros(p));
        for (i, &wi) in w.iter().enumerate() {
            let (x, y) = (s.x(i), s.y(i));
            for r in 0..p {
                let (wx, wy) = (wi * (x[r] as f64 - mx[r]), wi * (y[r] as f64 - my[r]));
                for c in 0..p {
                    let (dxc, dyc) = (x[c] as f64 - mx[c], y[c] as f64 - my[c]);
                    s11.a[r * p + c] += wx * dxc;
                    s22.a[r * p + c] += wy * dyc;
                    s12.a[r * p + c] += wx * dyc;
                }
            }
        }
        for m in [&mut s11, &mut s22, &mut s12] {
            m.a.iter_mut().for_each(|v| *v /= sw);
        }
        (mx, my, s11, s22, s12)
    }

    #[test]
    fn covariances_equal_the_plain_loops_to_the_bit_for_every_band_count() {
        for p in 1..=MAX_BANDS {
            let s = scene(1000 + p, p);
            let mut seed = p as u64;
            let w: Vec<f64> = (0..s.len()).map(|_| lcg(&mut seed) as f64).collect();
            let got = weighted_cov(&s, &w).unwrap();
            let want = weighted_cov_plain(&s, &w);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.0), bits(&want.0), "p = {p}: mean x");
            assert_eq!(bits(&got.1), bits(&want.1), "p = {p}: mean y");
            assert_eq!(bits(&got.2.a), bits(&want.2.a), "p = {p}: s11");
            assert_eq!(bits(&got.3.a), bits(&want.3.a), "p = {p}: s22");
            assert_eq!(bits(&got.4.a), bits(&want.4.a), "p = {p}: s12");
        }
        let s = scene(100, MAX_BANDS + 1);
        assert!(weighted_cov(&s, &vec![1.0; 100]).is_none());
    }

    fn scene(n: usize, p: usize) -> Sample {
        let mut seed = 7u64;
        let mut s = Sample::new(p);
        for _ in 0..n {
            let base = lcg(&mut seed);
            let x: Vec<f32> = (0..p)
                .map(|k| 0.1 + 0.3 * base + 0.05 * k as f32 + 0.02 * lcg(&mut seed))
                .collect();
            // After = gain/offset of before plus a little noise: no change.
            let y: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(k, v)| (1.0 + 0.1 * k as f32) * v + 0.03 + 0.003 * lcg(&mut seed))
                .collect();
            s.push(&x, &y);
        }
        s
    }

    #[test]
    fn chunked_chi_square_is_the_per_pixel_one_to_the_bit() {
        for p in [4, 6] {
            // A length that leaves a short last chunk.
            let s = scene(3 * CHUNK + 17, p);
            let m = IrMad::fit(&s, 30).unwrap();
            let mut out = vec![0.0; s.len()];
            for (c, o) in out.chunks_mut(CHUNK).enumerate() {
                m.chi2_chunk(&s, c * CHUNK, o);
            }
            for (i, v) in out.iter().enumerate() {
                assert_eq!(
                    v.to_bits(),
                    m.chi2_f32(s.x(i), s.y(i)).to_bits(),
                    "pixel {i}"
                );
            }
        }
    }

    #[test]
    fn linear_radiometric_change_is_not_change() {
        let s = scene(5000, 4);
        let m = IrMad::fit(&s, 30).unwrap();
        let flagged = (0..s.len())
            .filter(|&i| m.change_probability(s.x(i), s.y(i)) > 0.999)
            .count();
        assert!(
            flagged < 50,
            "{flagged} of 5000 pixels flagged under a purely linear change"
        );
    }

    #[test]
    fn inserted_changes_are_found() {
        let mut s = scene(5000, 4);
        // Change 100 pixels: the after spectrum becomes something else.
        for i in (0..5000).step_by(50) {
            let y = &mut s.after[i * 4..(i + 1) * 4];
            y.copy_from_slice(&[0.6, 0.1, 0.5, 0.05]);
        }
        let m = IrMad::fit(&s, 30).unwrap();
        let found = (0..5000)
            .step_by(50)
            .filter(|&i| m.change_probability(s.x(i), s.y(i)) > 0.999)
            .count();
        assert!(found >= 95, "only {found} of 100 inserted changes found");
        let false_alarms = (0..5000)
            .filter(|i| i % 50 != 0)
            .filter(|&i| m.change_probability(s.x(i), s.y(i)) > 0.999)
            .count();
        assert!(false_alarms < 50, "{false_alarms} false alarms");
    }
}
