//! Change vector analysis on standardised reflectance differences. Each
//! band's difference is centred on its scene-wide median and divided by a
//! robust spread (1.4826 x median absolute deviation), so a uniform shift of
//! one date (haze, calibration) does not count as change and no band
//! dominates by its dynamic range.

use super::sample::Sample;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Cva {
    pub median: Vec<f64>,
    pub scale: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

impl Cva {
    pub fn fit(s: &Sample) -> Cva {
        let p = s.p;
        let mut med = Vec::with_capacity(p);
        let mut scale = Vec::with_capacity(p);
        for k in 0..p {
            let mut d: Vec<f64> = (0..s.len())
                .map(|i| (s.y(i)[k] - s.x(i)[k]) as f64)
                .collect();
            let m = median(&mut d);
            d.iter_mut().for_each(|v| *v = (*v - m).abs());
            let mad = median(&mut d) * 1.4826;
            med.push(m);
            scale.push(mad.max(1e-4));
        }
        Cva { median: med, scale }
    }

    /// Sum of squared standardised differences (chi-square-like, p dof).
    pub fn magnitude2(&self, x: &[f32], y: &[f32]) -> f64 {
        let mut s = 0.0;
        for k in 0..self.median.len() {
            let d = ((y[k] - x[k]) as f64 - self.median[k]) / self.scale[k];
            s += d * d;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_shift_is_removed() {
        let mut s = Sample::new(2);
        for i in 0..1000 {
            let v = (i % 17) as f32 * 0.01;
            s.push(
                &[v, v * 2.0],
                &[v + 0.05, v * 2.0 - 0.02 + (i % 3) as f32 * 0.001],
            );
        }
        let c = Cva::fit(&s);
        assert!((c.median[0] - 0.05).abs() < 1e-6);
        assert!(c.magnitude2(&[0.1, 0.2], &[0.15, 0.18]) < 4.0);
        assert!(c.magnitude2(&[0.1, 0.2], &[0.4, 0.18]) > 100.0);
    }
}
