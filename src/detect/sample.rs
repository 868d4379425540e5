//! The statistics sample: valid pixel pairs taken on a regular lattice.
//! Whole-scene statistics (IR-MAD covariances, robust CVA scales) are fitted
//! on it, so the second pass can stream block by block.
//!
//! Small scenes are sampled all over. On large ones (a full Sentinel-2 tile)
//! a lattice over everything would make the statistics pass decode the whole
//! scene once more just to keep one pixel in ten, since files are decoded in
//! whole tiles; there the lattice is laid over a spread of windows, one per
//! group of 512-pixel cells, each window inside one cell so it touches as few
//! file tiles as possible. The windows depend on the grid alone, never on
//! block size or thread count.

use crate::align::Window;

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
        self.before.len().checked_div(self.p).unwrap_or(0)
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

/// The lattice step that keeps a sample of `pixels` near `max_samples`.
pub fn decimation(pixels: usize, max_samples: usize) -> usize {
    ((pixels as f64 / max_samples.max(1) as f64).sqrt().ceil() as usize).max(1)
}

/// Side of the cells windows are laid in (a common file tile size).
pub const CELL: usize = 512;
/// Scenes up to this many pixels are sampled all over.
pub const SAMPLE_ALL_UP_TO: usize = 1 << 22;
/// Side of a window on large scenes.
pub const WINDOW: usize = 256;
/// Windows along each axis on large scenes, about.
pub const WINDOWS_PER_AXIS: usize = 6;

/// The windows a `width` x `height` grid is sampled in (row-major order).
pub fn windows(width: usize, height: usize) -> Vec<Window> {
    let cells = |n: usize| n.div_ceil(CELL);
    let (ncx, ncy) = (cells(width), cells(height));
    let dense = width * height <= SAMPLE_ALL_UP_TO;
    // Every cell when dense, else every `stride`-th cell, centred.
    let pick = |n: usize| -> Vec<usize> {
        if dense {
            return (0..n).collect();
        }
        let stride = n.div_ceil(WINDOWS_PER_AXIS).max(1);
        (stride / 2..n).step_by(stride).collect()
    };
    let mut out = Vec::new();
    for cy in pick(ncy) {
        for cx in pick(ncx) {
            let (x0, y0) = (cx * CELL, cy * CELL);
            let (x, y, side) = if dense {
                (x0, y0, CELL)
            } else {
                (x0 + (CELL - WINDOW) / 2, y0 + (CELL - WINDOW) / 2, WINDOW)
            };
            if x >= width || y >= height {
                continue;
            }
            out.push(Window {
                x,
                y,
                w: side.min(width - x),
                h: side.min(height - y),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_scenes_are_covered_whole() {
        let w = windows(1000, 700);
        assert_eq!(w.iter().map(|w| w.len()).sum::<usize>(), 700_000);
        assert_eq!(decimation(700_000, 1 << 18), 2);
    }

    #[test]
    fn large_scenes_get_a_spread_of_windows_inside_cells() {
        let w = windows(10980, 10980);
        assert!(w.len() >= 25 && w.len() <= 49, "{}", w.len());
        for v in &w {
            assert_eq!(v.x / CELL, (v.x + v.w - 1) / CELL, "one cell wide");
            assert_eq!(v.y / CELL, (v.y + v.h - 1) / CELL, "one cell high");
        }
        let area: usize = w.iter().map(|w| w.len()).sum();
        assert!(area < 10980 * 10980 / 20, "reads under 5% of the scene");
        // Spread: windows near both ends of each axis.
        assert!(w.iter().any(|v| v.x < 2048) && w.iter().any(|v| v.x > 8000));
        assert!(w.iter().any(|v| v.y < 2048) && w.iter().any(|v| v.y > 8000));
    }
}
