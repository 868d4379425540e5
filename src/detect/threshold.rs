//! Automatic threshold: Otsu's method on a histogram of the score, which
//! picks the cut that best separates two classes (maximum between-class
//! variance). Histogram counts are integers, so the result does not depend
//! on block order or thread count.

pub const BINS: usize = 1000;

/// Histogram of scores in [0, 1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    pub counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BINS],
        }
    }
}

impl Histogram {
    #[inline]
    pub fn add(&mut self, v: f32) {
        let b = ((v.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        self.counts[b] += 1;
    }
    /// Takes back a value [`Histogram::add`] counted.
    #[inline]
    pub fn remove(&mut self, v: f32) {
        let b = ((v.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        self.counts[b] -= 1;
    }
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Number of values at or above `t`.
    pub fn count_above(&self, t: f32) -> u64 {
        let b = ((t.clamp(0.0, 1.0) * BINS as f32).ceil() as usize).min(BINS);
        self.counts[b..].iter().sum()
    }
}

/// Otsu's threshold: the lower edge of the first bin of the upper class.
pub fn otsu(h: &Histogram) -> f32 {
    let total = h.total() as f64;
    if total == 0.0 {
        return 0.5;
    }
    let sum_all: f64 = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0.0f64, 0.0f64);
    let (mut best, mut best_t) = (-1.0f64, BINS / 2);
    for (i, &c) in h.counts.iter().enumerate().take(BINS - 1) {
        w0 += c as f64;
        sum0 += i as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = i + 1;
        }
    }
    best_t as f32 / BINS as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_modes() {
        let mut h = Histogram::default();
        for i in 0..1000 {
            h.add(0.1 + (i % 10) as f32 * 0.005);
        }
        for i in 0..100 {
            h.add(0.8 + (i % 10) as f32 * 0.005);
        }
        let t = otsu(&h);
        assert!(t > 0.145 && t <= 0.8, "{t}");
        assert_eq!(h.count_above(t), 100);
    }
}
