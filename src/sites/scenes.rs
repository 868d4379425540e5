//! The two scenes of a run put back on the run's grid, to re-read their
//! reflectance over site windows.
//!
//! Why: `sites` works from a finished run folder and never recomputes the
//! change mask, but the spectral features and the chips need the scenes'
//! pixels. The scenes are opened and aligned exactly as `detect` does
//! (without the AOI, which only crops), and the run's grid is found inside
//! the aligned grid as a whole-pixel offset; anything else is an error.

use super::run_info::RunInfo;
use crate::align::reader::Date;
use crate::align::transcode::Decoded;
use crate::align::{self, AlignOptions, AlignedPair, Grid, SceneReader, Window};
use crate::detect::kept_pixels::{DatePlanes, KeptPixels};
use crate::detect::STAT_BANDS;
use crate::error::{Error, Result};
use crate::read::{self, Band};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Scenes {
    pub pair: AlignedPair,
    /// The same scenes with their JPEG2000 files replaced by the copies
    /// `detect` decoded (full-resolution reads only; see
    /// [`crate::align::transcode`]).
    pub full_res: Option<AlignedPair>,
    /// Offset of the run grid inside `pair.grid`.
    pub x_off: usize,
    pub y_off: usize,
    /// The reflectance `detect`'s score pass kept around the changed
    /// pixels, read instead of the scenes at full resolution (see
    /// [`crate::detect::kept_pixels`]).
    pub kept: Option<Arc<KeptPixels>>,
}

/// Whole-pixel offset of `inner` inside `outer` (same CRS and pixel size).
fn offset_in(outer: &Grid, inner: &Grid) -> Option<(usize, usize)> {
    let (o, i) = (&outer.geotransform, &inner.geotransform);
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    if !same(o[1], i[1]) || !same(o[5], i[5]) {
        return None;
    }
    let fx = (i[0] - o[0]) / o[1];
    let fy = (i[3] - o[3]) / o[5];
    if (fx - fx.round()).abs() > 1e-3
        || (fy - fy.round()).abs() > 1e-3
        || fx.round() < 0.0
        || fy.round() < 0.0
    {
        return None;
    }
    let (x, y) = (fx.round() as usize, fy.round() as usize);
    (x + inner.width <= outer.width && y + inner.height <= outer.height).then_some((x, y))
}

impl Scenes {
    /// Opens and aligns the scenes (`before`/`after` override run.json's
    /// paths), the after scene shifted as `detect` shifted it.
    pub fn open(run: &RunInfo, before: Option<&Path>, after: Option<&Path>) -> Result<Scenes> {
        let mut s = Scenes::open_unshifted(run, before, after)?;
        if let Some(shift) = run.after_shift {
            align::coregister::shift_after(&mut s.pair, shift)?;
        }
        Ok(s)
    }

    fn open_unshifted(
        run: &RunInfo,
        before: Option<&Path>,
        after: Option<&Path>,
    ) -> Result<Scenes> {
        let pick =
            |o: Option<&Path>, p: &PathBuf| o.map(Path::to_path_buf).unwrap_or_else(|| p.clone());
        let (bp, ap) = (pick(before, &run.before), pick(after, &run.after));
        for p in [&bp, &ap] {
            if !p.exists() {
                return Err(Error::input(
                    p,
                    "scene named in run.json not found (paths are relative to where `detect` ran; pass --before/--after)",
                ));
            }
        }
        let b = read::open_scene(&bp)?;
        let a = read::open_scene(&ap)?;
        let mut opts = AlignOptions::default();
        let pair = align::align(b.clone(), a.clone(), &STAT_BANDS, &[], &opts)?;
        if let Some((x, y)) = offset_in(&pair.grid, &run.grid) {
            return Ok(Scenes {
                pair,
                full_res: None,
                x_off: x,
                y_off: y,
                kept: None,
            });
        }
        // The run used --resolution: align again at the run's exact pixel
        // size (in CRS units: metres to degrees depends on the latitude).
        opts.pixel_size = Some(run.grid.pixel_size());
        let pair = align::align(b, a, &STAT_BANDS, &[], &opts)?;
        match offset_in(&pair.grid, &run.grid) {
            Some((x, y)) => Ok(Scenes {
                pair,
                full_res: None,
                x_off: x,
                y_off: y,
                kept: None,
            }),
            None => Err(Error::input(
                &run.mask,
                format!(
                    "its grid does not match the grid of the scenes {} and {}",
                    bp.display(),
                    ap.display()
                ),
            )),
        }
    }

    /// Opens the scenes, and for full-resolution reads also with the
    /// JPEG2000 copies `decoded` (nothing more when there are none).
    pub fn open_with_decoded(
        run: &RunInfo,
        before: Option<&Path>,
        after: Option<&Path>,
        decoded: &Decoded,
    ) -> Result<Scenes> {
        let mut scenes = Scenes::open(run, before, after)?;
        if !decoded.is_empty() {
            let mut full = Scenes::open_unshifted(run, before, after)?.pair;
            decoded.apply(&mut full);
            if let Some(shift) = run.after_shift {
                align::coregister::shift_after(&mut full, shift)?;
            }
            scenes.full_res = Some(full);
        }
        Ok(scenes)
    }

    /// Reflectance of the statistics bands before and after over a
    /// run-grid window at full resolution, as [`read_bands`] gives it: from
    /// the kept pixels when there are some (they hold every pixel a site
    /// description looks at; the others are NaN), else from the scenes.
    pub fn read_full_res(&self, reader: &mut SceneReader, win: Window) -> Result<DatePlanes> {
        match &self.kept {
            Some(kept) => kept.read_dates(win),
            None => {
                let shape = (win.w, win.h);
                Ok((
                    read_bands(reader, self, Date::Before, &STAT_BANDS, win, shape)?,
                    read_bands(reader, self, Date::After, &STAT_BANDS, win, shape)?,
                ))
            }
        }
    }

    /// The pair to read full-resolution windows from.
    pub fn full_res(&self) -> &AlignedPair {
        self.full_res.as_ref().unwrap_or(&self.pair)
    }

    /// A window of the run grid as a window of the aligned grid.
    pub fn window(&self, w: Window) -> Window {
        Window {
            x: w.x + self.x_off,
            y: w.y + self.y_off,
            ..w
        }
    }
}

/// Reflectance of the statistics bands over a run-grid window, band-major:
/// `[band][pixel]`, NaN where no data or saturated.
pub fn read_bands(
    reader: &mut SceneReader,
    scenes: &Scenes,
    date: Date,
    bands: &[Band],
    win: Window,
    shape: (usize, usize),
) -> Result<Vec<Vec<f32>>> {
    bands
        .iter()
        .map(|b| {
            // In strips: see [`super::window_read`].
            let mut v = Vec::with_capacity(shape.0 * shape.1);
            for (_, rows, sw) in super::window_read::strips(win, shape) {
                v.extend(reader.reflectance(date, *b, scenes.window(sw), (shape.0, rows))?);
            }
            for x in v.iter_mut() {
                if !x.is_finite() {
                    *x = f32::NAN;
                }
            }
            Ok(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_of_subgrid() {
        let g = Grid {
            wkt: String::new(),
            epsg: None,
            geotransform: [100.0, 10.0, 0.0, 1000.0, 0.0, -10.0],
            width: 50,
            height: 40,
        };
        let s = g.subgrid(Window {
            x: 3,
            y: 7,
            w: 10,
            h: 10,
        });
        assert_eq!(offset_in(&g, &s), Some((3, 7)));
        let moved = Grid {
            geotransform: [105.0, 10.0, 0.0, 1000.0, 0.0, -10.0],
            ..s.clone()
        };
        assert_eq!(offset_in(&g, &moved), None, "half-pixel shift");
        let big = Grid {
            width: 60,
            ..g.clone()
        };
        assert_eq!(offset_in(&g, &big), None);
    }
}
