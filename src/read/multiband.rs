//! A multi-band GeoTIFF (or any GDAL raster) whose band descriptions name
//! the Sentinel-2 bands, as written by `gdal_merge`, rasterio or GEE exports.

use super::{dates, Band, BandFile, Scene, SceneForm};
use crate::error::{gdal_msg, Error, Result};
use gdal::Metadata;
use std::collections::BTreeMap;
use std::path::Path;

pub fn open_multiband(path: &Path) -> Result<Scene> {
    let ds = crate::error::open_raster(path)?;
    let s = path.to_string_lossy().into_owned();
    let mut bands = BTreeMap::new();
    let mut scl = None;
    let mut unnamed = 0;
    for i in 1..=ds.raster_count() {
        let rb = ds
            .rasterband(i)
            .map_err(|e| Error::input(path, gdal_msg(&e)))?;
        let desc = rb.description().unwrap_or_default();
        if desc.trim().eq_ignore_ascii_case("SCL") {
            scl = Some(BandFile {
                path: s.clone(),
                index: i,
                add_offset: 0.0,
                quantification: 1.0,
            });
            continue;
        }
        match Band::from_description(&desc) {
            Some(b) => {
                let mut bf = BandFile::counts(s.clone());
                bf.index = i;
                let scale = rb.scale().unwrap_or(1.0);
                if scale != 1.0 && scale > 0.0 {
                    bf.quantification = 1.0 / scale;
                    bf.add_offset = rb.offset().unwrap_or(0.0) / scale;
                }
                bands.entry(b).or_insert(bf);
            }
            None => unnamed += 1,
        }
    }
    if bands.is_empty() {
        return Err(Error::input(
            path,
            format!(
                "none of its {} band(s) has a description naming a Sentinel-2 band (B02, B04, B8A, ...){}",
                ds.raster_count(),
                if unnamed > 0 { "; set band descriptions or pass a folder of per-band files" } else { "" }
            ),
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let date = ds
        .metadata_item("ACQUISITION_DATE", "")
        .or_else(|| ds.metadata_item("TIFFTAG_DATETIME", ""))
        .and_then(|d| dates::date_from_name(&d.replace([':', '-'], "")))
        .or_else(|| dates::date_from_name(&name));
    Ok(Scene {
        source: path.to_path_buf(),
        form: SceneForm::MultiBandTiff,
        bands,
        scl,
        date,
        level: None,
    })
}
