//! Reading scenes: whatever form the user downloaded (a folder of per-band
//! rasters, a SAFE product as folder or zip, a multi-band GeoTIFF) becomes a
//! [`Scene`]: a list of band files with the numbers that turn their digital
//! numbers into reflectance.

pub mod band;
pub mod band_folder;
pub mod dates;
pub mod multiband;
pub mod predictor;
pub mod safe;
pub mod tiff_ifd;
pub mod tiff_tiles;
pub mod tile_codecs;

pub use band::Band;

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where one band's pixels are, and how to turn them into reflectance.
#[derive(Debug, Clone, Serialize)]
pub struct BandFile {
    /// A path GDAL can open (may be a `/vsizip/` path into a zip).
    pub path: String,
    /// 1-based band index inside that dataset.
    pub index: usize,
    /// reflectance = (DN + add_offset) / quantification.
    pub add_offset: f64,
    pub quantification: f64,
}

impl BandFile {
    /// A single-band file in plain L1C/L2A counts (reflectance x 10000).
    pub fn counts(path: impl Into<String>) -> Self {
        BandFile {
            path: path.into(),
            index: 1,
            add_offset: 0.0,
            quantification: 10000.0,
        }
    }
}

/// How the scene was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneForm {
    BandFolder,
    SafeFolder,
    SafeZip,
    MultiBandTiff,
}

/// One acquisition, ready for the aligner.
#[derive(Debug, Clone, Serialize)]
pub struct Scene {
    /// What the user passed.
    pub source: PathBuf,
    pub form: SceneForm,
    pub bands: BTreeMap<Band, BandFile>,
    /// L2A scene classification (SCL), when the product has one.
    pub scl: Option<BandFile>,
    /// Acquisition date as YYYY-MM-DD, when metadata or names tell.
    pub date: Option<String>,
    /// Processing level (L1C, L2A) when known.
    pub level: Option<String>,
}

impl Scene {
    /// The band file for `band`, or an error naming the scene and the band.
    pub fn band(&self, band: Band, why: &str) -> Result<&BandFile> {
        self.bands.get(&band).ok_or_else(|| {
            Error::input(
                &self.source,
                format!(
                    "missing band {band} (needed for {why}); bands found: {}",
                    self.band_list()
                ),
            )
        })
    }

    pub fn band_list(&self) -> String {
        if self.bands.is_empty() {
            return "none".into();
        }
        self.bands
            .keys()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Opens a scene in any supported form, telling the form from what is on disk.
pub fn open_scene(path: &Path) -> Result<Scene> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if meta.is_dir() {
        if safe::is_safe_folder(path) {
            return safe::open_safe_folder(path);
        }
        return band_folder::open_band_folder(path);
    }
    if name.ends_with(".zip") {
        return safe::open_safe_zip(path);
    }
    if name.ends_with(".xml") && name.starts_with("mtd_msil") {
        let dir = path.parent().unwrap_or(Path::new("."));
        return safe::open_safe_folder(dir);
    }
    multiband::open_multiband(path)
}
