//! Writers of the `sites` outputs: GeoJSON, CSV, KML, chips and the HTML
//! report. Every writer writes one complete file at the path it is given (a
//! staging path); the caller renames them into the run folder when all are
//! done.
//!
//! Mounted from [`crate::sites`] (`#[path]`), so the export folder keeps all
//! writers while `export/mod.rs` stays untouched.

pub mod chips;
pub mod compounds;
pub mod csv;
pub mod decimal;
pub mod geojson;
pub mod image;
pub mod kml;
pub mod links;
pub mod report;
pub mod report_compounds;
pub mod report_table;
pub mod styles;

use super::run_info::RunInfo;
use super::{SceneSummary, Site, SitesOptions};
use crate::error::{Error, Result};
use crate::export::direct_file::DirectFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A buffered output file to `write!` text into; keeps the first I/O error
/// and reports it from [`Sink::finish`], naming the file. Written past the
/// page cache (hundreds of MB of text for tens of thousands of sites; see
/// [`DirectFile`]).
pub struct Sink {
    w: DirectFile,
    err: Option<std::io::Error>,
    path: PathBuf,
}

impl Sink {
    pub fn create(path: &Path) -> Result<Sink> {
        let w = DirectFile::create(path, 0).map_err(|e| Error::output(path, e))?;
        Ok(Sink {
            w,
            err: None,
            path: path.to_path_buf(),
        })
    }

    /// Writes one text per item in item order, rendering batches of items
    /// in parallel: the bytes are those of a serial loop, and only one batch
    /// is held at a time. Tens of thousands of sites made the serial writers
    /// the single-threaded tail of a run.
    pub fn write_each<T: Sync>(
        &mut self,
        items: &[T],
        render: impl Fn(&mut String, usize, &T) + Sync,
    ) {
        use rayon::prelude::*;
        const BATCH: usize = 4096;
        const PART: usize = 128;
        for (b, batch) in items.chunks(BATCH).enumerate() {
            let parts: Vec<String> = batch
                .par_chunks(PART)
                .enumerate()
                .map(|(p, part)| {
                    let mut s = String::new();
                    for (k, item) in part.iter().enumerate() {
                        render(&mut s, b * BATCH + p * PART + k, item);
                    }
                    s
                })
                .collect();
            for s in parts {
                let _ = std::fmt::Write::write_str(self, &s);
            }
        }
    }

    pub fn finish(mut self) -> Result<()> {
        if let Some(e) = self.err.take() {
            return Err(Error::output(&self.path, e));
        }
        self.w
            .finish()
            .map(drop)
            .map_err(|e| Error::output(&self.path, e))
    }
}

impl std::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.err.is_none() {
            if let Err(e) = self.w.write_all(s.as_bytes()) {
                self.err = Some(e);
            }
        }
        Ok(())
    }
}

/// The files and folders the sites step publishes into the run folder.
pub const FILES: [&str; 11] = [
    super::GEOJSON_FILE,
    super::CSV_FILE,
    super::KML_FILE,
    super::CHIPS_DIR,
    super::REPORT_FILE,
    super::COMPOUNDS_GEOJSON_FILE,
    super::COMPOUNDS_CSV_FILE,
    styles::SITES_QML,
    styles::COMPOUNDS_QML,
    styles::SITES_CSVT,
    styles::COMPOUNDS_CSVT,
];

/// Everything the writers need.
pub struct Context<'a> {
    pub run: &'a RunInfo,
    pub scene: &'a SceneSummary,
    /// Sorted by rank.
    pub sites: &'a [Site],
    /// Sorted by rank.
    pub compounds: &'a [super::compounds::Compound],
    pub by_kind: &'a BTreeMap<&'static str, usize>,
    pub opts: &'a SitesOptions,
}

/// Rounds for output: `d` decimals.
pub fn round(v: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    // Adding 0.0 turns -0.0 into 0.0: a value that rounds to zero is
    // written `0`, never `-0`.
    (v * p).round() / p + 0.0
}

/// Decimals for grid coordinates: millimetres on a projected grid (metres),
/// about a millimetre too on a geographic one (degrees). The same for x and
/// y of a site, so neither is cut coarser than the other.
fn grid_decimals(x: f64, y: f64) -> i32 {
    if x.abs() > 360.0 || y.abs() > 360.0 {
        3
    } else {
        8
    }
}

/// The numeric features of a site, flat, in output order: shape, scores,
/// and the change of each index, texture and edge density.
pub fn feature_pairs(s: &Site) -> Vec<(&'static str, f64)> {
    let sh = &s.shape;
    let sp = &s.spectral;
    let mut v = vec![
        ("perimeter_m", round(sh.perimeter_m, 1)),
        ("compactness", round(sh.compactness, 4)),
        ("rectangularity", round(sh.rectangularity, 4)),
        ("elongation", round(sh.elongation, 3)),
        ("orientation_deg", round(sh.orientation_deg, 1)),
        ("mean_width_m", round(sh.mean_width_m, 1)),
        ("length_m", round(sh.min_rect_length_m, 1)),
        ("width_m", round(sh.min_rect_width_m, 1)),
        ("bbox_col0", s.bbox_px[0] as f64),
        ("bbox_row0", s.bbox_px[1] as f64),
        ("bbox_col1", s.bbox_px[2] as f64),
        ("bbox_row1", s.bbox_px[3] as f64),
        ("bbox_lon0", round(s.bbox_lonlat[0], 7)),
        ("bbox_lat0", round(s.bbox_lonlat[1], 7)),
        ("bbox_lon1", round(s.bbox_lonlat[2], 7)),
        ("bbox_lat1", round(s.bbox_lonlat[3], 7)),
        ("pixels", s.pixels as f64),
        ("x", round(s.x, grid_decimals(s.x, s.y))),
        ("y", round(s.y, grid_decimals(s.x, s.y))),
    ];
    if let Some(m) = s.mean_score {
        v.push(("mean_score", round(m, 4)));
    }
    if let Some(m) = s.max_score {
        v.push(("max_score", round(m, 4)));
    }
    let idx = |i: &crate::detect::indices::Indices| [i.ndvi, i.ndbi, i.bsi, i.mndwi, i.brightness];
    let (b, a, d, r) = (
        idx(&sp.before),
        idx(&sp.after),
        idx(&sp.delta),
        idx(&sp.delta_rel),
    );
    const BEFORE: [&str; 5] = [
        "ndvi_before",
        "ndbi_before",
        "bsi_before",
        "mndwi_before",
        "brightness_before",
    ];
    const AFTER: [&str; 5] = [
        "ndvi_after",
        "ndbi_after",
        "bsi_after",
        "mndwi_after",
        "brightness_after",
    ];
    const DELTA: [&str; 5] = ["d_ndvi", "d_ndbi", "d_bsi", "d_mndwi", "d_brightness"];
    const REL: [&str; 5] = [
        "d_ndvi_vs_scene",
        "d_ndbi_vs_scene",
        "d_bsi_vs_scene",
        "d_mndwi_vs_scene",
        "d_brightness_vs_scene",
    ];
    for k in 0..5 {
        v.push((BEFORE[k], round(b[k] as f64, 4)));
        v.push((AFTER[k], round(a[k] as f64, 4)));
        v.push((DELTA[k], round(d[k] as f64, 4)));
        v.push((REL[k], round(r[k] as f64, 4)));
    }
    const BAND_REL: [&str; 6] = [
        "d_b02_vs_scene",
        "d_b03_vs_scene",
        "d_b04_vs_scene",
        "d_b08_vs_scene",
        "d_b11_vs_scene",
        "d_b12_vs_scene",
    ];
    for (k, name) in BAND_REL.iter().enumerate() {
        v.push((name, round(sp.band_delta_rel[k] as f64, 4)));
    }
    v.extend([
        ("spectral_angle_deg", round(sp.spectral_angle_deg as f64, 2)),
        (
            "spectral_angle_vs_scene_deg",
            round(sp.spectral_angle_excess_deg as f64, 2),
        ),
        ("texture_before", round(sp.texture_before as f64, 4)),
        ("texture_after", round(sp.texture_after as f64, 4)),
        (
            "d_texture",
            round((sp.texture_after - sp.texture_before) as f64, 4),
        ),
        (
            "edge_density_before",
            round(sp.edge_density_before as f64, 4),
        ),
        ("edge_density_after", round(sp.edge_density_after as f64, 4)),
        (
            "d_edge_density",
            round((sp.edge_density_after - sp.edge_density_before) as f64, 4),
        ),
        ("valid_pixels", sp.pixels as f64),
        ("decimation", s.decimation as f64),
    ]);
    v
}

/// The nearest watch point, if any: (name, distance in m).
pub fn nearest_watch(s: &Site) -> Option<(&str, f64)> {
    s.watch
        .first()
        .map(|h| (h.name.as_str(), round(h.distance_m, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_never_gives_negative_zero_and_grid_coordinates_share_decimals() {
        assert_eq!(round(-0.00001, 3).to_string(), "0");
        assert_eq!(
            format!("{}", super::decimal::Decimal(round(-0.00001, 3))),
            "0"
        );
        assert_eq!(grid_decimals(54.123456789, 24.1), 8);
        assert_eq!(grid_decimals(754321.5, 2671234.25), 3);
    }
    use std::fmt::Write as _;

    #[test]
    fn parallel_rendering_writes_the_bytes_of_a_serial_loop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        // More than one batch, and a last part that is not full.
        let items: Vec<u64> = (0..10_001).map(|i| i * 7 % 1000).collect();
        let mut sink = Sink::create(&path).unwrap();
        sink.write_each(&items, |out, i, v| {
            let _ = write!(out, "{}{i}:{v}", if i > 0 { "," } else { "" });
        });
        sink.finish().unwrap();
        let mut expect = String::new();
        for (i, v) in items.iter().enumerate() {
            let _ = write!(expect, "{}{i}:{v}", if i > 0 { "," } else { "" });
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expect);
    }
}
