//! The provisional labels of a scene, held as the runs the labeller found.
//!
//! The labelling pass gives every changed pixel a provisional label, and the
//! descriptions read them back over each site's window. They used to go to a
//! ZSTD-compressed u32 GeoTIFF: on a full tile with 77 000 sites, writing and
//! reading it back took about 1.3 CPU s (GDAL's compression and decoding
//! jobs, a TIFF handle opened per decoded block), for data the labeller
//! already holds as runs: a row's labels are a few (start, end, label)
//! triples, 12 bytes each, a few MB for the whole tile. Memory follows the
//! changed pixels' runs, as the sites themselves do.
//!
//! Decimated reads (sites too large to describe at full resolution) pick
//! pixels as GDAL's nearest-neighbour `RasterIO` did from the raster, strip
//! by strip as [`super::window_read::read_band`] reads, so the sites are the
//! same.

use super::window_read;
use crate::align::Window;

/// One run of a row: columns `start..end`, all with `label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: u32,
    end: u32,
    label: u32,
}

/// A scene's provisional labels, row by row (0 outside the runs).
#[derive(Debug, Clone)]
pub struct LabelRuns {
    width: usize,
    /// Index into `runs` of each row's first run, and one past the last row.
    row_start: Vec<usize>,
    runs: Vec<Run>,
}

impl LabelRuns {
    pub fn new(width: usize) -> Self {
        LabelRuns {
            width,
            row_start: vec![0],
            runs: Vec::new(),
        }
    }

    /// Rows pushed so far.
    pub fn height(&self) -> usize {
        self.row_start.len() - 1
    }

    /// Appends the next row: its runs `(start, end, label)`, left to right,
    /// not overlapping, within the width.
    pub fn push_row(&mut self, runs: impl IntoIterator<Item = (usize, usize, u32)>) {
        let mut last = 0;
        for (start, end, label) in runs {
            debug_assert!(last <= start && start < end && end <= self.width);
            last = end;
            self.runs.push(Run {
                start: start as u32,
                end: end as u32,
                label,
            });
        }
        self.row_start.push(self.runs.len());
    }

    /// Writes row `r`'s labels over columns `x0..x0 + out.len()` into `out`
    /// (which must be zero).
    fn fill_row(&self, r: usize, x0: usize, out: &mut [u32]) {
        let runs = &self.runs[self.row_start[r]..self.row_start[r + 1]];
        let x1 = x0 + out.len();
        let first = runs.partition_point(|run| run.end as usize <= x0);
        for run in &runs[first..] {
            let (s, e) = (run.start as usize, run.end as usize);
            if s >= x1 {
                break;
            }
            out[s.max(x0) - x0..e.min(x1) - x0].fill(run.label);
        }
    }

    /// The labels of `win` at full resolution, row-major.
    pub fn window(&self, win: Window) -> Vec<u32> {
        let mut out = vec![0u32; win.len()];
        if win.w == 0 {
            return out;
        }
        for (i, row) in out.chunks_exact_mut(win.w).enumerate() {
            self.fill_row(win.y + i, win.x, row);
        }
        out
    }

    /// The labels of `win` read into `shape` by nearest neighbour, the pixels
    /// GDAL's `RasterIO` picks for each strip of
    /// [`window_read::read_band`].
    pub fn read(&self, win: Window, shape: (usize, usize)) -> Vec<u32> {
        if shape == (win.w, win.h) {
            return self.window(win);
        }
        let (sw, sh) = shape;
        let mut out = Vec::with_capacity(sw * sh);
        let mut row = vec![0u32; win.w];
        let cols = nearest(win.x, win.w, sw, self.width);
        for (_, rows, strip) in window_read::strips(win, shape) {
            for y in nearest_rows(strip.y, strip.h, rows, self.height()) {
                row.fill(0);
                self.fill_row(y, win.x, &mut row);
                out.extend(cols.iter().map(|&x| row[x - win.x]));
            }
        }
        out
    }
}

/// GDAL's rule for the source pixel of each of `n_out` output pixels over
/// `len` source pixels from `off` (GDALRasterBand::IRasterIO, GDAL 3.x): the
/// centre of each output pixel plus 1e-10, truncated and kept in the raster.
/// Columns step by repeated addition, or by an integer step when the ratio is
/// a whole number, as GDAL does, so rounding is the same.
fn nearest(off: usize, len: usize, n_out: usize, size: usize) -> Vec<usize> {
    const EPS: f64 = 1e-10;
    let inc = len as f64 / n_out as f64;
    let start = 0.5 * inc + off as f64 + EPS;
    let clamp = |v: f64| v.max(0.0).min((size - 1) as f64) as usize;
    if inc as i64 as f64 == inc {
        let (x0, step) = (start as usize, inc as usize);
        (0..n_out).map(|k| (x0 + k * step).min(size - 1)).collect()
    } else {
        let mut x = start;
        (0..n_out)
            .map(|_| {
                let v = clamp(x);
                x += inc;
                v
            })
            .collect()
    }
}

/// Rows: each computed from its own index, as GDAL does.
fn nearest_rows(off: usize, len: usize, n_out: usize, size: usize) -> Vec<usize> {
    const EPS: f64 = 1e-10;
    let inc = len as f64 / n_out as f64;
    (0..n_out)
        .map(|k| {
            let v = (k as f64 + 0.5) * inc + off as f64 + EPS;
            v.max(0.0).min((size - 1) as f64) as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::raster::{Buffer, RasterCreationOptions};

    fn wn(x: usize, y: usize, w: usize, h: usize) -> Window {
        Window { x, y, w, h }
    }

    /// Labels with runs of many lengths and gaps, including the row edges.
    fn scene(w: usize, h: usize) -> (LabelRuns, Vec<u32>) {
        let mut runs = LabelRuns::new(w);
        let mut dense = vec![0u32; w * h];
        let mut label = 1;
        for r in 0..h {
            let mut row = Vec::new();
            let mut x = (r * 7) % 5;
            while x < w {
                let len = 1 + (r * 13 + x * 3) % 9;
                let end = (x + len).min(w);
                row.push((x, end, label));
                dense[r * w + x..r * w + end].fill(label);
                label += 1;
                x = end + 1 + (r + x) % 4;
            }
            runs.push_row(row);
        }
        (runs, dense)
    }

    #[test]
    fn windows_match_the_dense_labels() {
        let (w, h) = (97, 41);
        let (runs, dense) = scene(w, h);
        assert_eq!(runs.height(), h);
        for win in [
            Window { x: 0, y: 0, w, h },
            wn(3, 5, 10, 7),
            wn(90, 40, 7, 1),
            wn(50, 0, 1, 41),
        ] {
            let want: Vec<u32> = (win.y..win.y + win.h)
                .flat_map(|r| dense[r * w + win.x..r * w + win.x + win.w].to_vec())
                .collect();
            assert_eq!(runs.window(win), want, "{win:?}");
            assert_eq!(runs.read(win, (win.w, win.h)), want, "{win:?}");
        }
    }

    /// Decimated reads pick the pixels GDAL picks from the same labels in a
    /// tiled GeoTIFF, read through `window_read::read_band`.
    #[test]
    fn decimated_reads_pick_the_pixels_gdal_picks() {
        // Large enough that the whole window is read in two strips.
        let (w, h) = (2500, 2000);
        let (runs, dense) = scene(w, h);
        assert!(window_read::strips(Window { x: 0, y: 0, w, h }, (w / 2, h / 2)).len() > 1);
        let path = "/vsimem/label_runs_test.tif";
        let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let co = RasterCreationOptions::from_iter([
            "TILED=YES",
            "BLOCKXSIZE=256",
            "BLOCKYSIZE=256",
            "COMPRESS=ZSTD",
        ]);
        let ds = drv
            .create_with_band_type_with_options::<u32, _>(path, w, h, 1, &co)
            .unwrap();
        let mut band = ds.rasterband(1).unwrap();
        let mut buf = Buffer::new((w, h), dense);
        band.write((0, 0), (w, h), &mut buf).unwrap();
        let mut checked = 0;
        for win in [
            Window { x: 0, y: 0, w, h },
            wn(17, 3, 1001, 643),
            wn(1900, 1400, 600, 600),
            wn(5, 9, 333, 17),
        ] {
            for d in [2, 3, 7] {
                let shape = (win.w.div_ceil(d), win.h.div_ceil(d));
                let gdal = window_read::read_band::<u32>(&band, win, shape).unwrap();
                assert_eq!(runs.read(win, shape), gdal, "{win:?} / {d}");
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
        drop(ds);
        let _ = gdal::vsi::unlink_mem_file(path);
    }
}
