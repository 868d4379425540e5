//! Window reads, decimated in strips.
//!
//! Why: a decimated read of a large window (the overview of a whole tile,
//! or a site spanning kilometres) can make GDAL hold the window at full
//! resolution (a 10980 x 10980 UInt16 band is 240 MB). Reading the window
//! in strips of output rows, each covering a bounded number of source
//! pixels, keeps memory flat whatever the window. A strip of output rows
//! [r0, r1) covers source rows [r0 h / sh, r1 h / sh) of the window, so the
//! strips tile it exactly.

use crate::align::Window;
use gdal::raster::{GdalType, RasterBand};

/// Source pixels read at a time, at most (about 16 MB of f32).
pub const MAX_SOURCE_PX: usize = 1 << 22;

/// The strips for reading `win` into `shape`: (first output row, output
/// rows, source window).
pub fn strips(win: Window, shape: (usize, usize)) -> Vec<(usize, usize, Window)> {
    let (_, sh) = shape;
    if sh == 0 || win.h == 0 {
        return Vec::new();
    }
    let src_rows_per_out = win.h.div_ceil(sh);
    let per = (MAX_SOURCE_PX / (win.w.max(1) * src_rows_per_out)).max(1);
    let mut v = Vec::new();
    let mut r0 = 0;
    while r0 < sh {
        let r1 = (r0 + per).min(sh);
        let y0 = win.y + r0 * win.h / sh;
        let y1 = win.y + r1 * win.h / sh;
        v.push((
            r0,
            r1 - r0,
            Window {
                x: win.x,
                y: y0,
                w: win.w,
                h: (y1 - y0).max(1),
            },
        ));
        r0 = r1;
    }
    v
}

/// Reads `win` of a band into `shape` (nearest neighbour), strip by strip.
pub fn read_band<T: GdalType + Copy>(
    band: &RasterBand,
    win: Window,
    shape: (usize, usize),
) -> gdal::errors::Result<Vec<T>> {
    let mut out = Vec::with_capacity(shape.0 * shape.1);
    for (_, rows, w) in strips(win, shape) {
        let buf = band.read_as::<T>(
            (w.x as isize, w.y as isize),
            (w.w, w.h),
            (shape.0, rows),
            None,
        )?;
        out.extend_from_slice(buf.data());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tile_the_window() {
        let win = Window {
            x: 7,
            y: 100,
            w: 10980,
            h: 10980,
        };
        let s = strips(win, (960, 960));
        assert!(s.len() > 1);
        assert_eq!(s[0].2.y, 100);
        let mut next = (0, 100);
        for (r0, rows, w) in &s {
            assert_eq!((*r0, w.y), next);
            assert!(w.w * w.h <= 2 * MAX_SOURCE_PX);
            next = (r0 + rows, w.y + w.h);
        }
        assert_eq!(next, (960, 100 + 10980));
        // Full-resolution reads of small windows stay one piece.
        assert_eq!(
            strips(
                Window {
                    x: 0,
                    y: 0,
                    w: 50,
                    h: 40
                },
                (50, 40)
            )
            .len(),
            1
        );
    }
}
