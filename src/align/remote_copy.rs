//! Remote band files (`/vsicurl/` and other GDAL network paths) copied
//! once, window only, to the run's staging folder.
//!
//! Why: a `detect` run reads each band several times (co-registration,
//! statistics sample, score pass, sites). Each read of a remote COG through
//! a newly opened GDAL dataset fetches its tiles again, so a run fetched
//! about three times what it needed. Here the part of each remote file the
//! grid needs (plus a margin for interpolation and co-registration shifts)
//! is read once and written into a local tiled GeoTIFF of the file's full
//! size and georeferencing whose other tiles are left out (a sparse file):
//! pixel offsets stay valid, every later read is local, and the copies
//! are handed to the sites step like the JPEG2000 copies of
//! [`super::transcode`]. Warped bands get their VRT pointed at the copy.

use super::transcode::{slots, slots_mut, Decoded, Slot};
use super::{AlignedBand, AlignedPair, Grid, Source};
use crate::error::{gdal_msg, Error, Result};
use gdal::raster::{GdalDataType, GdalType, RasterCreationOptions};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Source pixels copied beyond what the grid covers, on every side.
const MARGIN_PX: usize = 16;
/// Rows read and written at a time.
const STRIP_ROWS: usize = 512;

/// Whether GDAL reads `path` over the network.
pub fn is_network_path(path: &str) -> bool {
    [
        "/vsicurl",
        "/vsis3",
        "/vsigs",
        "/vsiaz",
        "/vsiadls",
        "/vsioss",
        "/vsiswift",
        "/vsiwebhdfs",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Local copies of remote band files.
#[derive(Debug, Default)]
pub struct RemoteCopies {
    /// Full-resolution sources, for [`Decoded::apply`] (and the sites step).
    pub decoded: Decoded,
    /// Warped sources: their slot and copy.
    warped: Vec<(Slot, String)>,
}

impl RemoteCopies {
    pub fn is_empty(&self) -> bool {
        self.decoded.is_empty() && self.warped.is_empty()
    }

    /// Points `pair` at the copies: full-resolution sources through
    /// [`Decoded::apply`]; warped bands' files and VRTs at their copies
    /// (so a co-registration shift warps from the copy too).
    pub fn apply(&self, pair: &mut AlignedPair) -> Result<()> {
        self.decoded.apply(pair);
        for (slot, ab) in slots_mut(pair) {
            let Some((_, copy)) = self.warped.iter().find(|(s, _)| *s == slot) else {
                continue;
            };
            if let Source::Warped { vrt } = &ab.source {
                point_vrt_at(Path::new(vrt), &ab.file.path, copy)?;
            }
            ab.file.path = copy.clone();
            ab.file.index = 1;
        }
        Ok(())
    }
}

/// Copies the windows of every remote band file `pair` reads into `dir`,
/// in parallel on the current rayon pool; [`RemoteCopies::apply`] points
/// the pair at them.
pub fn copy_remote_windows(
    pair: &AlignedPair,
    dir: &Path,
    progress: &dyn crate::progress::Progress,
) -> Result<RemoteCopies> {
    let todo: Vec<(Slot, &AlignedBand)> = slots(pair)
        .into_iter()
        .filter(|(_, ab)| is_network_path(&ab.file.path))
        .collect();
    if todo.is_empty() {
        return Ok(RemoteCopies::default());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    progress.start("fetch remote windows", todo.len() as u64);
    let copies = todo
        .par_iter()
        .enumerate()
        .map(|(i, (slot, ab))| {
            let dst = dir.join(format!("{i:02}.tif"));
            let full_res = copy_band(ab, &pair.grid, &dst)?;
            progress.advance(1);
            Ok((*slot, dst.to_string_lossy().into_owned(), full_res))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = RemoteCopies::default();
    let mut full = BTreeMap::new();
    for (slot, copy, full_res) in copies {
        if full_res {
            full.insert(slot, copy);
        } else {
            out.warped.push((slot, copy));
        }
    }
    out.decoded = Decoded::from_files(full);
    Ok(out)
}

/// Copies the window of `ab`'s file the grid needs into `dst`; true for
/// a full-resolution source, false for a warped one.
fn copy_band(ab: &AlignedBand, grid: &Grid, dst: &Path) -> Result<bool> {
    let path = &ab.file.path;
    let ds = gdal::Dataset::open(path).map_err(|e| {
        let why = crate::read::http::open_failure(path, &gdal_msg(&e));
        Error::input(path, format!("cannot open raster: {why}"))
    })?;
    let (fw, fh) = ds.raster_size();
    let clamp = |x0: f64, y0: f64, x1: f64, y1: f64| {
        let m = MARGIN_PX as f64;
        let xa = (x0 - m).floor().max(0.0) as usize;
        let ya = (y0 - m).floor().max(0.0) as usize;
        let xb = ((x1 + m).ceil().max(0.0) as usize).min(fw);
        let yb = ((y1 + m).ceil().max(0.0) as usize).min(fh);
        (xa, ya, xb.saturating_sub(xa), yb.saturating_sub(ya))
    };
    let (win, full_res) = match &ab.source {
        Source::Direct { x_off, y_off, .. } => (
            clamp(
                *x_off as f64,
                *y_off as f64,
                (x_off + grid.width) as f64,
                (y_off + grid.height) as f64,
            ),
            true,
        ),
        Source::Upsampled {
            factor,
            x_off,
            y_off,
            ..
        } => {
            let k = *factor as f64;
            (
                clamp(
                    x_off / k,
                    y_off / k,
                    (x_off + grid.width as f64) / k,
                    (y_off + grid.height as f64) / k,
                ),
                true,
            )
        }
        Source::Warped { .. } => {
            let src = Grid::from_dataset(&ds, path)?;
            let b = super::grid::transform_bounds(grid.bounds(), &grid.srs()?, &src.srs()?)?;
            let (ax, ay) = src.to_pixel(b[0], b[3]);
            let (bx, by) = src.to_pixel(b[2], b[1]);
            (clamp(ax.min(bx), ay.min(by), ax.max(bx), ay.max(by)), false)
        }
    };
    sparse_copy(&ds, ab.file.index, win, path, dst)?;
    Ok(full_res)
}

/// Writes band `index` of `ds` (opened from `path`) into a sparse tiled
/// GeoTIFF at `dst` of the same size and georeferencing holding only `win`
/// (x, y, w, h): the window's pixels, read once; the tiles outside it are
/// not stored and read as nodata.
pub fn sparse_copy(
    ds: &gdal::Dataset,
    index: usize,
    win: (usize, usize, usize, usize),
    path: &str,
    dst: &Path,
) -> Result<()> {
    let band = ds
        .rasterband(index)
        .map_err(|e| Error::input(path, gdal_msg(&e)))?;
    match band.band_type() {
        GdalDataType::UInt8 => copy_window::<u8>(ds, index, win, path, dst),
        GdalDataType::UInt16 => copy_window::<u16>(ds, index, win, path, dst),
        GdalDataType::Int16 => copy_window::<i16>(ds, index, win, path, dst),
        _ => copy_window::<f32>(ds, index, win, path, dst),
    }
}

/// Writes band `index` of `ds` into a sparse tiled GeoTIFF of the same size
/// and georeferencing holding only `win` (x, y, w, h).
fn copy_window<T: GdalType + Copy>(
    ds: &gdal::Dataset,
    index: usize,
    (x, y, w, h): (usize, usize, usize, usize),
    src: &str,
    dst: &Path,
) -> Result<()> {
    let (fw, fh) = ds.raster_size();
    let out_err = |e: gdal::errors::GdalError| Error::output(dst, gdal_msg(&e));
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").map_err(out_err)?;
    let opts = RasterCreationOptions::from_iter([
        "TILED=YES",
        "BLOCKXSIZE=512",
        "BLOCKYSIZE=512",
        "COMPRESS=ZSTD",
        "ZSTD_LEVEL=1",
        "PREDICTOR=2",
        "SPARSE_OK=TRUE",
        "BIGTIFF=IF_SAFER",
    ]);
    let mut out = drv
        .create_with_band_type_with_options::<T, _>(dst, fw, fh, 1, &opts)
        .map_err(out_err)?;
    if let Ok(gt) = ds.geo_transform() {
        out.set_geo_transform(&gt).map_err(out_err)?;
    }
    out.set_projection(&ds.projection()).map_err(out_err)?;
    let band = ds
        .rasterband(index)
        .map_err(|e| Error::input(src, gdal_msg(&e)))?;
    let mut ob = out.rasterband(1).map_err(out_err)?;
    if let Some(nd) = band.no_data_value() {
        ob.set_no_data_value(Some(nd)).map_err(out_err)?;
    }
    let mut row = y;
    while row < y + h {
        let rows = STRIP_ROWS.min(y + h - row);
        let mut buf = band
            .read_as::<T>((x as isize, row as isize), (w, rows), (w, rows), None)
            .map_err(|e| {
                Error::input(
                    src,
                    format!(
                        "cannot read pixels (server gone or file changed?): {}",
                        gdal_msg(&e)
                    ),
                )
            })?;
        ob.write((x as isize, row as isize), (w, rows), &mut buf)
            .map_err(out_err)?;
        row += rows;
    }
    out.close().map_err(out_err)?;
    Ok(())
}

/// Points a warped VRT's source at the local copy.
fn point_vrt_at(vrt: &Path, remote: &str, local: &str) -> Result<()> {
    let text = std::fs::read_to_string(vrt).map_err(|e| Error::output(vrt, e))?;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut new = text.replace(&esc(remote), &esc(local));
    if new == text {
        new = text.replace(remote, &esc(local));
    }
    // The copy is an absolute path, not one relative to the VRT.
    let new = new.replace("relativeToVRT=\"1\"", "relativeToVRT=\"0\"");
    std::fs::write(vrt, new).map_err(|e| Error::output(vrt, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_paths() {
        assert!(is_network_path("/vsicurl/https://x/B04.tif"));
        assert!(is_network_path("/vsis3/bucket/B04.tif"));
        assert!(!is_network_path("/vsizip/a.zip/B04.jp2"));
        assert!(!is_network_path("/data/B04.tif"));
    }
}
