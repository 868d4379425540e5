//! A folder of per-band rasters whose names carry the band: OSCD style
//! `..._B04.tif`, ESA style `T34QEK_20240105T083241_B04_10m.jp2`, COG-archive
//! style `B04.tif`. L2A `IMG_DATA/R10m|R20m|R60m` sub-folders are searched too.

use super::{dates, Band, BandFile, Scene, SceneForm};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RASTER_EXTS: [&str; 5] = ["tif", "tiff", "jp2", "vrt", "img"];

pub fn open_band_folder(dir: &Path) -> Result<Scene> {
    let mut files = Vec::new();
    collect_rasters(dir, 0, &mut files)?;
    files.sort();

    // Several files may carry one band (an L2A granule has B02 at 10, 20 and
    // 60 m): keep the finest. Two files for one band at one resolution are
    // ambiguous: refused, naming both.
    let mut best: BTreeMap<Band, (u32, PathBuf)> = BTreeMap::new();
    let mut scl: Option<(u32, PathBuf)> = None;
    let duplicate = |what: &str, a: &Path, b: &Path| {
        Error::input(
            dir,
            format!(
                "two files for {what}: {} and {} (keep one)",
                a.display(),
                b.display()
            ),
        )
    };
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let res = resolution_suffix(name).unwrap_or(0);
        if is_scl_name(name) {
            match &scl {
                Some((r, other)) if *r == res => {
                    return Err(duplicate("the scene classification", other, f))
                }
                Some((r, _)) if *r < res => {}
                _ => scl = Some((res, f.clone())),
            }
            continue;
        }
        if let Some(b) = Band::from_file_name(name) {
            match best.get(&b) {
                Some((r, other)) if *r == res => {
                    return Err(duplicate(&format!("band {b}"), other, f))
                }
                Some((r, _)) if *r < res => {}
                _ => {
                    best.insert(b, (res, f.clone()));
                }
            }
        }
    }
    if best.is_empty() {
        return Err(Error::input(
            dir,
            "no Sentinel-2 band files found (expected names like *_B04.tif, *_B04_10m.jp2 or B04.tif)",
        ));
    }

    let mut bands = BTreeMap::new();
    for (b, (_, path)) in best {
        bands.insert(b, band_file_with_scaling(&path)?);
    }
    let date = dates::date_from_oscd_side_file(dir).or_else(|| {
        files
            .iter()
            .find_map(|f| dates::date_from_name(&f.file_name()?.to_string_lossy()))
    });
    let level = files.iter().find_map(|f| {
        let n = f.to_string_lossy().to_ascii_uppercase();
        if n.contains("L2A") {
            Some("L2A".to_string())
        } else if n.contains("L1C") {
            Some("L1C".to_string())
        } else {
            None
        }
    });
    Ok(Scene {
        source: dir.to_path_buf(),
        form: SceneForm::BandFolder,
        bands,
        scl: scl.map(|(_, p)| BandFile {
            path: p.to_string_lossy().into_owned(),
            index: 1,
            add_offset: 0.0,
            quantification: 1.0,
        }),
        date,
        level,
    })
}

fn collect_rasters(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::input(dir, format!("cannot list folder: {e}")))?;
    for entry in rd.flatten() {
        let p = entry.path();
        // Follows symbolic links; a FIFO, socket or device is never opened
        // (opening a FIFO blocks until something writes to it).
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if depth < 3 {
                collect_rasters(&p, depth + 1, out)?;
            }
            continue;
        }
        let raster_ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| RASTER_EXTS.contains(&e.as_str()));
        if !raster_ext {
            continue;
        }
        if p.to_str().is_none() {
            return Err(Error::input(
                &p,
                "the file name is not valid UTF-8, which GDAL cannot open: rename the file",
            ));
        }
        if !meta.is_file() {
            return Err(Error::input(
                &p,
                "not a regular file (a FIFO, socket or device?): band files must be regular files",
            ));
        }
        out.push(p);
    }
    Ok(())
}

fn is_scl_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    stem.split(['_', '-']).any(|t| t == "SCL")
}

/// `_10m`, `_20m`, `_60m` suffixes of ESA names.
fn resolution_suffix(name: &str) -> Option<u32> {
    let stem = name.split('.').next()?;
    let last = stem.rsplit('_').next()?;
    last.strip_suffix('m')?.parse().ok()
}

/// Plain counts (reflectance x 10000) unless the file itself declares a
/// scale and offset, as some COG archives do.
pub(crate) fn band_file_with_scaling(path: &Path) -> Result<BandFile> {
    let ds = crate::error::open_raster(path)?;
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(path, crate::error::gdal_msg(&e)))?;
    let mut bf = BandFile::counts(path.to_string_lossy().into_owned());
    let scale = band.scale().unwrap_or(1.0);
    let offset = band.offset().unwrap_or(0.0);
    if scale != 1.0 && scale > 0.0 {
        bf.quantification = 1.0 / scale;
        bf.add_offset = offset / scale;
    }
    Ok(bf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_and_scl_names() {
        assert_eq!(
            resolution_suffix("T34QEK_20240105T083241_B04_10m.jp2"),
            Some(10)
        );
        assert_eq!(resolution_suffix("B04.tif"), None);
        assert!(is_scl_name("T34QEK_20240105T083241_SCL_20m.jp2"));
        assert!(is_scl_name("SCL.tif"));
        assert!(!is_scl_name("B04.tif"));
    }
}
