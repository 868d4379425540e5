//! What `sites` needs from an earlier detect run: the change mask's grid
//! (from change_mask.tif itself), and from run.json the two scenes, their
//! dates and the pixel counts.
//!
//! Why read run.json as plain JSON: `sites` must keep working on run folders
//! written by other versions of `detect`, so only the few fields used are
//! looked up, and each missing one is reported by name.

use crate::align::Grid;
use crate::error::{gdal_msg, Error, Result};
use crate::run::{MASK_FILE, RUN_FILE, SCORE_FILE};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunInfo {
    pub dir: PathBuf,
    pub mask: PathBuf,
    /// change_score.tif, when the run has it.
    pub score: Option<PathBuf>,
    pub grid: Grid,
    pub before: PathBuf,
    pub after: PathBuf,
    pub before_date: Option<String>,
    pub after_date: Option<String>,
    /// Pixels on the grid, compared, changed, and masked as cloud or shadow.
    pub total: Option<u64>,
    pub compared: Option<u64>,
    pub changed: Option<u64>,
    pub cloud_masked: Option<u64>,
    pub threshold: Option<f64>,
    /// The shift `detect` applied to the after scene to co-register it
    /// (grid pixels, x and y), to read it as `detect` did.
    pub after_shift: Option<[f64; 2]>,
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Opens a raster of the run (mask, score) without its overviews: decimated
/// reads then always sample the full resolution, so the sites are the same
/// whether found from the working rasters during `detect` or from the
/// published COGs (whose overviews average or pick other pixels).
pub fn open_run_raster(path: &Path) -> gdal::errors::Result<gdal::Dataset> {
    gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_options: Some(&["OVERVIEW_LEVEL=NONE"]),
            ..Default::default()
        },
    )
}

/// Reads a run folder; errors name the missing or broken file.
pub fn read_run(dir: &Path) -> Result<RunInfo> {
    if !dir.exists() {
        return Err(Error::input(dir, "run folder not found"));
    }
    if !dir.is_dir() {
        return Err(Error::input(
            dir,
            "is not a folder (expected the output folder of `dunewatch detect`)",
        ));
    }
    let mask = dir.join(MASK_FILE);
    if !mask.is_file() {
        return Err(Error::input(
            &mask,
            "not found: run `dunewatch detect` into this folder first",
        ));
    }
    let ds = gdal::Dataset::open(&mask).map_err(|e| {
        Error::input(
            &mask,
            format!("cannot open the change mask: {}", gdal_msg(&e)),
        )
    })?;
    let grid = Grid::from_dataset(&ds, &mask.to_string_lossy())?;
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(&mask, gdal_msg(&e)))?;
    if band.band_type() != gdal::raster::GdalDataType::UInt8 {
        return Err(Error::input(
            &mask,
            "is not a byte raster (expected 0 no change, 1 change, 255 masked)",
        ));
    }
    let score = Some(dir.join(SCORE_FILE)).filter(|p| p.is_file());

    let run_path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&run_path)
        .map_err(|e| Error::input(&run_path, format!("cannot read: {e}")))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(&run_path, format!("is not valid JSON: {e}")))?;
    from_record(dir, mask, score, grid, &v, &run_path)
}

/// A detect run still being written: its working mask and score rasters and
/// its record, before the COGs and run.json are published. `detect` finds
/// the sites from these while it writes the COGs; the result is the same as
/// reading the published run folder.
pub fn working_run(
    dir: &Path,
    mask: &Path,
    score: &Path,
    record: &crate::run::RunRecord,
) -> Result<RunInfo> {
    let ds = gdal::Dataset::open(mask).map_err(|e| Error::output(mask, gdal_msg(&e)))?;
    let grid = Grid::from_dataset(&ds, &mask.to_string_lossy())?;
    // Through JSON, so every field reads exactly as from run.json.
    let v = serde_json::to_value(record).map_err(|e| Error::output(dir.join(RUN_FILE), e))?;
    from_record(
        dir,
        mask.to_path_buf(),
        Some(score.to_path_buf()),
        grid,
        &v,
        &dir.join(RUN_FILE),
    )
}

fn from_record(
    dir: &Path,
    mask: PathBuf,
    score: Option<PathBuf>,
    grid: Grid,
    v: &Value,
    run_path: &Path,
) -> Result<RunInfo> {
    let path_of = |date: &str| -> Result<PathBuf> {
        get(v, &[date, "path"])
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::input(
                    run_path,
                    format!("has no \"{date}\".\"path\" (the {date} scene)"),
                )
            })
    };
    let s = |path: &[&str]| get(v, path).and_then(Value::as_str).map(str::to_string);
    let n = |path: &[&str]| get(v, path).and_then(Value::as_u64);
    let cloud = match (
        n(&["detect", "pixels", "masked", "cloud"]),
        n(&["detect", "pixels", "masked", "cloud_shadow"]),
    ) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    Ok(RunInfo {
        dir: dir.to_path_buf(),
        mask,
        score,
        grid,
        before: path_of("before")?,
        after: path_of("after")?,
        before_date: s(&["before", "date"]),
        after_date: s(&["after", "date"]),
        total: n(&["detect", "pixels", "total"]),
        compared: n(&["detect", "pixels", "compared"]),
        changed: n(&["detect", "pixels", "changed"]),
        cloud_masked: cloud,
        threshold: get(v, &["detect", "threshold"]).and_then(Value::as_f64),
        after_shift: after_shift(v, run_path)?,
    })
}

/// The co-registration shift run.json says was applied (none in runs of
/// versions without co-registration).
fn after_shift(v: &Value, run_path: &Path) -> Result<Option<[f64; 2]>> {
    let Some(c) = v.get("coregistration") else {
        return Ok(None);
    };
    if c.get("applied").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let xy = c
        .get("shift_px")
        .and_then(Value::as_array)
        .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?]));
    match xy {
        Some(xy) => Ok(Some(xy)),
        None => Err(Error::input(
            run_path,
            "\"coregistration\" is applied but has no \"shift_px\" pair of numbers",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_after_scenes_shift_is_read_only_when_applied() {
        let run = Path::new("run.json");
        let v = serde_json::json!({"coregistration": {"applied": true, "shift_px": [0.5, -1.25]}});
        assert_eq!(after_shift(&v, run).unwrap(), Some([0.5, -1.25]));
        let v = serde_json::json!({"coregistration": {"applied": false, "shift_px": [0.1, 0.0]}});
        assert_eq!(after_shift(&v, run).unwrap(), None);
        assert_eq!(after_shift(&serde_json::json!({}), run).unwrap(), None);
        let v = serde_json::json!({"coregistration": {"applied": true}});
        let e = after_shift(&v, run).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("shift_px"), "{e}");
    }

    #[test]
    fn missing_folder_and_mask_name_the_path() {
        let e = read_run(Path::new("/nonexistent/run"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/run") && e.contains("not found"),
            "{e}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let e = read_run(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("change_mask.tif"), "{e}");
    }
}
