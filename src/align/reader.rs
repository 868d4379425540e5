//! Block reads on the output grid. One reader per worker thread: GDAL
//! datasets are not Sync, so each worker opens its own handles, lazily.

use super::{upsample, AlignedBand, AlignedPair, Source, Window};
use crate::error::{gdal_msg, Error, Result};
use crate::read::tiff_tiles::TiffTiles;
use crate::read::Band;
use std::collections::HashMap;

/// Which acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Date {
    Before,
    After,
}

pub struct SceneReader<'a> {
    pair: &'a AlignedPair,
    open: HashMap<String, gdal::Dataset>,
    /// Files whose full-resolution windows are decoded here
    /// ([`TiffTiles`]); None for those GDAL reads.
    tiles: HashMap<String, Option<TiffTiles>>,
    /// Reads are scattered windows, not strips down the scene: tiles are
    /// decoded only as deep as a read needs (see [`TiffTiles::shallow`]).
    scattered: bool,
}

impl<'a> SceneReader<'a> {
    pub fn new(pair: &'a AlignedPair) -> Self {
        SceneReader {
            pair,
            open: HashMap::new(),
            tiles: HashMap::new(),
            scattered: false,
        }
    }

    /// A reader for windows scattered over the scene (the statistics
    /// sample, co-registration windows, chips) rather than strips taken top
    /// to bottom: a file tile is decoded only down to the last row a window
    /// needs. The values are the same; only the decoding saved differs.
    pub fn scattered(pair: &'a AlignedPair) -> Self {
        SceneReader {
            scattered: true,
            ..SceneReader::new(pair)
        }
    }

    pub fn aligned(&self, date: Date, band: Band) -> Option<&'a AlignedBand> {
        let s = match date {
            Date::Before => &self.pair.before,
            Date::After => &self.pair.after,
        };
        s.bands.get(&band)
    }

    /// Reflectance of `band` over `win`, read into `shape` (cols, rows)
    /// (smaller than the window for decimated reads, by nearest neighbour).
    /// No data is NaN and saturation is +inf, so one f32 carries both.
    pub fn reflectance(
        &mut self,
        date: Date,
        band: Band,
        win: Window,
        shape: (usize, usize),
    ) -> Result<Vec<f32>> {
        let ab = self
            .aligned(date, band)
            .ok_or_else(|| Error::invalid(format!("band {band} was not aligned")))?;
        let mut v = self.raw(ab, win, shape)?;
        let (off, q) = (ab.file.add_offset as f32, ab.file.quantification as f32);
        let nodata = ab.nodata as f32;
        let sat = ab.saturated.map(|s| s as f32);
        for x in v.iter_mut() {
            let dn = *x;
            *x = if dn == nodata || dn.is_nan() {
                f32::NAN
            } else if sat.is_some_and(|s| dn >= s) {
                f32::INFINITY
            } else {
                (dn + off) / q
            };
        }
        Ok(v)
    }

    /// The band's own values (DN, class codes) over `win`.
    pub fn raw(
        &mut self,
        ab: &AlignedBand,
        win: Window,
        shape: (usize, usize),
    ) -> Result<Vec<f32>> {
        let (path, index, x, y) = match &ab.source {
            Source::Direct {
                path,
                index,
                x_off,
                y_off,
            } => (path, *index, win.x + x_off, win.y + y_off),
            Source::Warped { vrt } => (vrt, 1, win.x, win.y),
            Source::Upsampled {
                path,
                index,
                factor,
                x_off,
                y_off,
                src_w,
                src_h,
                ..
            } if shape != (win.w, win.h) => {
                // Decimated reads (overviews, samples) take the nearest
                // source pixel; interpolating would read every source pixel
                // the window spans. A shift by part of a pixel is rounded.
                let first = |w: usize, off: f64| (w as f64 + off).round().max(0.0) as usize;
                let (k, (x0, y0)) = (*factor, (first(win.x, *x_off), first(win.y, *y_off)));
                let (x0, y0) = (x0.min(src_w * k - 1), y0.min(src_h * k - 1));
                let x1 = ((x0 + win.w).div_ceil(k)).min(*src_w);
                let y1 = ((y0 + win.h).div_ceil(k)).min(*src_h);
                let src = Window {
                    x: (x0 / k).min(x1 - 1),
                    y: (y0 / k).min(y1 - 1),
                    w: 0,
                    h: 0,
                };
                let src = Window {
                    w: x1 - src.x,
                    h: y1 - src.y,
                    ..src
                };
                return self.read(ab, path, *index, src, shape);
            }
            Source::Upsampled {
                path,
                index,
                factor,
                x_off,
                y_off,
                src_w,
                src_h,
                nearest,
            } => {
                let cols = upsample::taps(
                    win.x as f64 + x_off,
                    win.w,
                    shape.0,
                    *factor,
                    *src_w,
                    *nearest,
                );
                let rows = upsample::taps(
                    win.y as f64 + y_off,
                    win.h,
                    shape.1,
                    *factor,
                    *src_h,
                    *nearest,
                );
                let src = self.read(
                    ab,
                    path,
                    *index,
                    Window {
                        x: cols.start,
                        y: rows.start,
                        w: cols.len,
                        h: rows.len,
                    },
                    (cols.len, rows.len),
                )?;
                return Ok(upsample::interpolate(
                    &src,
                    &cols,
                    &rows,
                    ab.nodata as f32,
                    ab.saturated.map(|s| s as f32),
                ));
            }
        };
        self.read(ab, path, index, Window { x, y, ..win }, shape)
    }

    /// A window of a file's band, as f32, into `shape`.
    fn read(
        &mut self,
        ab: &AlignedBand,
        path: &str,
        index: usize,
        win: Window,
        shape: (usize, usize),
    ) -> Result<Vec<f32>> {
        let (x, y) = (win.x, win.y);
        if !self.open.contains_key(path) {
            let ds = gdal::Dataset::open(path).map_err(|e| {
                Error::input(
                    &ab.file.path,
                    format!("cannot open raster: {}", gdal_msg(&e)),
                )
            })?;
            self.open.insert(path.to_string(), ds);
        }
        let ds = &self.open[path];
        let band = ds
            .rasterband(index)
            .map_err(|e| Error::input(&ab.file.path, gdal_msg(&e)))?;
        if shape == (win.w, win.h) && index == 1 {
            let tiles = self.tiles.entry(path.to_string()).or_insert_with(|| {
                let mut t = tiles_of(ds, &band, path);
                if let Some(t) = t.as_mut() {
                    t.shallow(self.scattered);
                }
                t
            });
            if let Some(t) = tiles {
                return t.read(win).map_err(|e| Error::input(&ab.file.path, e));
            }
        }
        let buf = band
            .read_as::<f32>((x as isize, y as isize), (win.w, win.h), shape, None)
            .map_err(|e| {
                let why = if crate::read::is_remote(std::path::Path::new(path)) {
                    "cannot read pixels (server gone or file changed?)"
                } else {
                    "cannot read pixels (truncated or corrupt file?)"
                };
                Error::input(&ab.file.path, format!("{why}: {}", gdal_msg(&e)))
            })?;
        Ok(buf.into_shape_and_vec().1)
    }
}

/// Whether tiled or stripped GeoTIFFs are decoded by dunewatch ([`TiffTiles`]) rather
/// than GDAL: yes unless `DUNEWATCH_TIFF_DECODER=gdal` (for comparing the
/// two; the pixels are the same).
fn decode_here() -> bool {
    static HERE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HERE.get_or_init(|| std::env::var("DUNEWATCH_TIFF_DECODER").map_or(true, |v| v != "gdal"))
}

/// The file's [`TiffTiles`] when dunewatch decodes its full-resolution
/// windows itself: a single-band UInt16 GeoTIFF in a layout it knows, and
/// `DUNEWATCH_TIFF_DECODER` is not `gdal`.
fn tiles_of(ds: &gdal::Dataset, band: &gdal::raster::RasterBand, path: &str) -> Option<TiffTiles> {
    let plain = band.band_type() == gdal::raster::GdalDataType::UInt16
        && ds.raster_count() == 1
        && ds.driver().short_name() == "GTiff"
        && decode_here();
    plain
        .then(|| {
            TiffTiles::open(
                std::path::Path::new(path),
                ds.raster_size(),
                band.no_data_value(),
            )
        })
        .flatten()
}

/// Whether band `index` of `path` is read at full resolution by
/// [`SceneReader`] without GDAL's block cache (see [`TiffTiles`]).
pub fn decoded_here(path: &str, index: usize) -> bool {
    index == 1
        && gdal::Dataset::open(path)
            .ok()
            .and_then(|ds| {
                let band = ds.rasterband(1).ok()?;
                tiles_of(&ds, &band, path)
            })
            .is_some()
}
