//! The statistics sample: valid pixel pairs taken on a regular lattice over
//! the whole scene. Whole-scene statistics (IR-MAD covariances, robust CVA
//! scales) are fitted on it, so the second pass can stream block by block.

/// Pixel pairs, `p` bands per date, row-major (pixel-major).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub p: usize,
    pub before: Vec<f32>,
    pub after: Vec<f32>,
}

impl Sample {
    pub fn new(p: usize) -> Self {
        Sample {
            p,
            before: Vec::new(),
            after: Vec::new(),
        }
    }
    pub fn len(&self) -> usize {
        if self.p == 0 {
            0
        } else {
            self.before.len() / self.p
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn push(&mut self, x: &[f32], y: &[f32]) {
        self.before.extend_from_slice(x);
        self.after.extend_from_slice(y);
    }
    pub fn append(&mut self, mut o: Sample) {
        self.before.append(&mut o.before);
        self.after.append(&mut o.after);
    }
    pub fn x(&self, i: usize) -> &[f32] {
        &self.before[i * self.p..(i + 1) * self.p]
    }
    pub fn y(&self, i: usize) -> &[f32] {
        &self.after[i * self.p..(i + 1) * self.p]
    }
}

/// The lattice step that keeps the sample near `max_samples` pixels.
pub fn decimation(width: usize, height: usize, max_samples: usize) -> usize {
    let n = (width * height) as f64;
    ((n / max_samples as f64).sqrt().ceil() as usize).max(1)
}
