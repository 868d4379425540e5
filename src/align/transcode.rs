//! JPEG2000 inputs decoded once, into fast tiled GeoTIFFs.
//!
//! Why: decoding JPEG2000 is by far the dearest step on SAFE products (a
//! full 10 m band is about 18 s of one core), and a `detect` run reads the
//! scene up to three times: the statistics sample, the score pass and the
//! site descriptions. Each JPEG2000 file read at full resolution is
//! therefore decoded once, at the start, into a ZSTD-compressed tiled
//! GeoTIFF in the run's staging folder (lossless, so the numbers read are
//! the same), and every full-resolution read of the run uses that copy.
//! Decimated reads (the sites' scene background, chips) keep using the
//! JPEG2000 files and their wavelet overviews, as `dunewatch sites` does.

use super::{AlignedBand, AlignedPair, Source};
use crate::error::{gdal_msg, Error, Result};
use crate::read::Band;
use gdal::raster::RasterCreationOptions;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Which aligned band: date (0 before, 1 after) and band (None: the SCL).
pub(super) type Slot = (usize, Option<Band>);

/// Decoded copies, by the band they stand for. Keyed by band rather than
/// path: `detect` and its sites step open the same scene under different
/// path spellings (relative, absolute).
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    files: BTreeMap<Slot, String>,
}

impl Decoded {
    /// Number of files decoded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Copies made elsewhere (see [`super::remote_copy`]), by slot.
    pub(super) fn from_files(files: BTreeMap<Slot, String>) -> Self {
        Decoded { files }
    }

    /// Adds the copies of `other` (its slots win).
    pub fn extend(&mut self, other: Decoded) {
        self.files.extend(other.files);
    }

    /// Points the full-resolution sources of `pair` at the decoded copies.
    pub fn apply(&self, pair: &mut AlignedPair) {
        for (slot, ab) in slots_mut(pair) {
            let Some(copy) = self.files.get(&slot) else {
                continue;
            };
            match &mut ab.source {
                Source::Direct { path, index, .. } | Source::Upsampled { path, index, .. } => {
                    *path = copy.clone();
                    *index = 1;
                }
                Source::Warped { .. } => {}
            }
        }
    }
}

pub(super) fn slots(pair: &AlignedPair) -> Vec<(Slot, &AlignedBand)> {
    let mut v = Vec::new();
    for (d, s) in [&pair.before, &pair.after].into_iter().enumerate() {
        v.extend(s.bands.iter().map(|(b, ab)| ((d, Some(*b)), ab)));
        v.extend(s.scl.iter().map(|ab| ((d, None), ab)));
    }
    v
}

pub(super) fn slots_mut(pair: &mut AlignedPair) -> Vec<(Slot, &mut AlignedBand)> {
    let mut v = Vec::new();
    for (d, s) in [&mut pair.before, &mut pair.after].into_iter().enumerate() {
        v.extend(s.bands.iter_mut().map(|(b, ab)| ((d, Some(*b)), ab)));
        v.extend(s.scl.iter_mut().map(|ab| ((d, None), ab)));
    }
    v
}

/// Whether the band is read natively from a single-band JPEG2000 file.
fn is_jp2(ab: &AlignedBand) -> bool {
    if matches!(ab.source, Source::Warped { .. }) {
        return false;
    }
    gdal::Dataset::open(&ab.file.path)
        .map(|ds| ds.driver().short_name() == "JP2OpenJPEG" && ds.raster_count() == 1)
        .unwrap_or(false)
}

/// Decodes every JPEG2000 file `pair` reads natively into `dir`, the files
/// in parallel on the current rayon pool, largest first.
pub fn decode_jp2_once(
    pair: &AlignedPair,
    dir: &Path,
    progress: &dyn crate::progress::Progress,
) -> Result<Decoded> {
    let wanted: Vec<(Slot, String)> = slots(pair)
        .into_iter()
        .filter(|(_, ab)| is_jp2(ab))
        .map(|(slot, ab)| (slot, ab.file.path.clone()))
        .collect();
    let mut todo: Vec<String> = wanted.iter().map(|(_, p)| p.clone()).collect();
    todo.sort();
    todo.dedup();
    if todo.is_empty() {
        return Ok(Decoded::default());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let pixels = |p: &str| {
        gdal::Dataset::open(p)
            .map(|ds| ds.raster_size().0 * ds.raster_size().1)
            .unwrap_or(0)
    };
    todo.sort_by_cached_key(|p| std::cmp::Reverse(pixels(p)));
    progress.start("decode JPEG2000", todo.len() as u64);
    let copies = todo
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let name = Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dst = dir.join(format!("{i:02}-{name}.tif"));
            decode(path, &dst)?;
            progress.advance(1);
            Ok((path.clone(), dst.to_string_lossy().into_owned()))
        })
        .collect::<Result<BTreeMap<String, String>>>()?;
    Ok(Decoded {
        files: wanted
            .into_iter()
            .map(|(slot, p)| (slot, copies[&p].clone()))
            .collect(),
    })
}

/// One file: a tiled, ZSTD-compressed GeoTIFF copy (same pixels,
/// georeferencing and nodata).
fn decode(src: &str, dst: &Path) -> Result<()> {
    let ds = gdal::Dataset::open(src).map_err(|e| Error::input(src, gdal_msg(&e)))?;
    let err = |e: gdal::errors::GdalError| Error::output(dst, gdal_msg(&e));
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let opts = RasterCreationOptions::from_iter([
        "TILED=YES",
        "BLOCKXSIZE=512",
        "BLOCKYSIZE=512",
        "COMPRESS=ZSTD",
        "ZSTD_LEVEL=1",
        "PREDICTOR=2",
        "BIGTIFF=IF_SAFER",
    ]);
    let out = ds.create_copy(&drv, dst, &opts).map_err(|e| {
        Error::input(
            src,
            format!("cannot decode the JPEG2000 file: {}", gdal_msg(&e)),
        )
    })?;
    out.close().map_err(err)?;
    Ok(())
}
