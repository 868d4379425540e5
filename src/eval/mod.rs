//! Scores a change mask against a labelled truth raster.
//!
//! Inputs: the prediction, a uint8 change mask (0 = no change, 1 = change,
//! 255 = masked / no data), and the truth, in any of the codings 0/1, 1/2 or
//! 0/255 (detected from its values, see [`truth`]). The truth may lack
//! georeferencing (OSCD labels do); it must then have the prediction's size
//! and is taken to lie pixel for pixel on its grid. When both are
//! georeferenced their grids must agree.
//!
//! Both rasters are read in strips of rows, twice: once to histogram the
//! truth values (its coding), once to count. Memory stays bounded by a strip
//! plus the object union-find, whatever the raster size.
//!
//! Figures:
//! - pixels ([`confusion`]): TP, FP, FN, TN, masked, precision, recall, F1,
//!   IoU, Cohen's kappa; masked pixels are counted apart; 0/0 is 0;
//! - objects ([`objects`]): recall of 8-connected truth change objects by
//!   size class; an object is detected when one of its pixels is predicted
//!   change;
//! - sites ([`sites`], when a sites GeoJSON is given): share of sites
//!   touching a truth change pixel, and precision of the top 10, 20 and 50
//!   sites by rank, a site being true when at least 30 % (or 5) of the
//!   pixels it covers are labelled change ([`top_sites`], [`site_pixels`]).

pub mod confusion;
pub mod objects;
pub mod site_pixels;
pub mod sites;
pub mod top_sites;
pub mod truth;

use crate::align::grid::Grid;
use crate::error::{gdal_msg, Error, Result};
use confusion::{Confusion, PixelScores, PRED_MASKED};
use objects::{score_objects, ObjectLabeller, ObjectScores};
use serde::Serialize;
use sites::{SiteChecker, SiteScores};
use std::path::{Path, PathBuf};
use truth::{code_of, TruthCoding};

/// Pixel side assumed when neither raster is georeferenced, m.
pub const ASSUMED_PIXEL_M: f64 = 10.0;

/// File name of the change mask in a run folder.
pub const MASK_FILE: &str = "change_mask.tif";
/// File name of the sites in a run folder.
pub const SITES_FILE: &str = "sites.geojson";

/// Pixels per strip when [`EvalOptions::strip_rows`] is 0.
const STRIP_PIXELS: usize = 4 << 20;

/// Tuning that does not change the figures.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Rows read at a time; 0 = about 4 Mpixels per strip.
    pub strip_rows: usize,
}

/// Everything `dunewatch eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub prediction: PathBuf,
    pub truth: PathBuf,
    pub width: usize,
    pub height: usize,
    /// The truth's coding as detected: "0/1", "1/2" or "0/255".
    pub truth_coding: TruthCoding,
    pub pixels: PixelScores,
    pub objects: ObjectScores,
    /// Present only when a sites file was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sites: Option<SiteScores>,
    /// Assumptions made (missing georeferencing, assumed pixel size, ...).
    pub notes: Vec<String>,
}

/// What to score: a change mask and, optionally, sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionInput {
    pub mask: PathBuf,
    pub sites: Option<PathBuf>,
}

/// A prediction given as a file is that mask; given as a run folder, it is
/// `<dir>/change_mask.tif`, plus `<dir>/sites.geojson` when it exists.
pub fn resolve_prediction(path: &Path) -> Result<PredictionInput> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(Error::input(path, "no such file or folder"));
        }
        return Ok(PredictionInput {
            mask: path.to_path_buf(),
            sites: None,
        });
    }
    let mask = path.join(MASK_FILE);
    if !mask.is_file() {
        return Err(Error::input(
            path,
            format!("is a folder without {MASK_FILE}"),
        ));
    }
    let sites = Some(path.join(SITES_FILE)).filter(|p| p.is_file());
    Ok(PredictionInput { mask, sites })
}

fn open(path: &Path) -> Result<gdal::Dataset> {
    crate::error::open_raster(path)
}

/// A float raster is a score, not a mask: thresholding it here would score
/// something other than what `detect` decided.
fn refuse_float_prediction(ds: &gdal::Dataset, path: &Path) -> Result<()> {
    use gdal::raster::GdalDataType as T;
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(path, gdal_msg(&e)))?;
    let t = band.band_type();
    if matches!(t, T::Float32 | T::Float64) {
        return Err(Error::input(
            path,
            format!(
                "is a {} raster (a change score?): --pred expects a change mask (8-bit 0/1, 255 = no data, as {MASK_FILE}) or a run folder",
                t.name()
            ),
        ));
    }
    Ok(())
}

/// The raster's grid, or None when it has no geotransform or no CRS.
fn georef(ds: &gdal::Dataset, path: &Path) -> Result<Option<Grid>> {
    if ds.geo_transform().is_err() || ds.projection().is_empty() {
        return Ok(None);
    }
    Grid::from_dataset(ds, &path.to_string_lossy()).map(Some)
}

/// Whether two same-sized grids are the same: same CRS, origins within 1 %
/// of a pixel, pixel sizes within 1e-6 relative.
fn same_grid(a: &Grid, b: &Grid) -> bool {
    let (ga, gb) = (&a.geotransform, &b.geotransform);
    let (dx, dy) = (ga[1].abs(), ga[5].abs());
    let close = (ga[0] - gb[0]).abs() <= 0.01 * dx
        && (ga[3] - gb[3]).abs() <= 0.01 * dy
        && (ga[1] - gb[1]).abs() <= 1e-6 * dx
        && (ga[5] - gb[5]).abs() <= 1e-6 * dy;
    let same_crs = match (a.epsg, b.epsg) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.srs(), b.srs()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
    };
    close && same_crs
}

fn describe_grid(g: &Grid) -> String {
    let crs = g
        .epsg
        .map(|e| format!("EPSG:{e}"))
        .unwrap_or_else(|| "a custom CRS".to_string());
    let t = &g.geotransform;
    format!(
        "origin ({}, {}), pixel {} x {} in {crs}",
        t[0], t[3], t[1], -t[5]
    )
}

/// Area of one pixel of `g` in m² (at the centre latitude for geographic grids).
pub fn pixel_area_m2(g: &Grid) -> f64 {
    let (mx, my) = g.metres_per_unit();
    let (dx, dy) = g.pixel_size();
    (dx * mx).abs() * (dy * my).abs()
}

/// Reads rows [y, y + rows) of band 1 into `buf` (whole rows).
fn read_strip<T: Copy + gdal::raster::GdalType>(
    ds: &gdal::Dataset,
    path: &Path,
    y: usize,
    width: usize,
    rows: usize,
    buf: &mut [T],
) -> Result<()> {
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(path, gdal_msg(&e)))?;
    band.read_into_slice::<T>(
        (0, y as isize),
        (width, rows),
        (width, rows),
        &mut buf[..width * rows],
        None,
    )
    .map_err(|e| {
        Error::input(
            path,
            format!(
                "cannot read pixels (truncated or corrupt file?): {}",
                gdal_msg(&e)
            ),
        )
    })
}

/// Scores the change mask `pred` against `truth`, and the sites in `sites`
/// when given. See the module doc for the rules.
pub fn evaluate(
    pred: &Path,
    truth: &Path,
    sites: Option<&Path>,
    opts: &EvalOptions,
) -> Result<EvalReport> {
    let pds = open(pred)?;
    refuse_float_prediction(&pds, pred)?;
    let tds = open(truth)?;
    let (w, h) = pds.raster_size();
    let (tw, th) = tds.raster_size();
    if (w, h) != (tw, th) {
        return Err(Error::invalid(format!(
            "prediction {} is {w} x {h} pixels but truth {} is {tw} x {th}: they must cover the same grid",
            pred.display(),
            truth.display()
        )));
    }

    let mut notes = Vec::new();
    let pgrid = georef(&pds, pred)?;
    let tgrid = georef(&tds, truth)?;
    match (&pgrid, &tgrid) {
        (Some(p), Some(t)) if !same_grid(p, t) => {
            return Err(Error::invalid(format!(
                "prediction {} ({}) and truth {} ({}) lie on different grids: resample the truth onto the prediction's grid",
                pred.display(),
                describe_grid(p),
                truth.display(),
                describe_grid(t)
            )));
        }
        (Some(_), None) => notes.push(
            "truth has no georeferencing: taken to lie pixel for pixel on the prediction's grid"
                .to_string(),
        ),
        (None, Some(_)) => notes.push(
            "prediction has no georeferencing: taken to lie pixel for pixel on the truth's grid"
                .to_string(),
        ),
        _ => {}
    }
    let grid = pgrid.or(tgrid);
    let (area, assumed) = match &grid {
        Some(g) => {
            if g.is_geographic() {
                let [_, ymin, _, ymax] = g.bounds();
                notes.push(format!(
                    "geographic CRS: pixel area taken at the grid's centre latitude {:.4}°",
                    (ymin + ymax) / 2.0
                ));
            }
            (pixel_area_m2(g), false)
        }
        None => {
            notes.push(format!("neither raster is georeferenced: {ASSUMED_PIXEL_M} m pixels assumed for object sizes"));
            (ASSUMED_PIXEL_M * ASSUMED_PIXEL_M, true)
        }
    };

    let strip = if opts.strip_rows > 0 {
        opts.strip_rows
    } else {
        (STRIP_PIXELS / w.max(1)).max(1)
    }
    .min(h.max(1));
    let mut tbuf = vec![0f32; w * strip];

    // Pass 1: the truth's coding.
    let mut hist = [0u64; 256];
    let mut y = 0;
    while y < h {
        let rows = strip.min(h - y);
        read_strip(&tds, truth, y, w, rows, &mut tbuf)?;
        for (i, &v) in tbuf[..w * rows].iter().enumerate() {
            let code = code_of(v).ok_or_else(|| {
                Error::input(
                    truth,
                    format!(
                        "pixel ({}, {}) has value {v}, not a label code (0..255)",
                        i % w,
                        y + i / w
                    ),
                )
            })?;
            hist[code as usize] += 1;
        }
        y += rows;
    }
    let coding = TruthCoding::detect(&hist).map_err(|m| Error::input(truth, m))?;
    let change = coding.change() as f32;

    let mut checker = match sites {
        Some(sp) => {
            let g = grid.as_ref().ok_or_else(|| {
                Error::input(
                    sp,
                    "sites need a georeferenced prediction or truth to be placed",
                )
            })?;
            Some(SiteChecker::new(sites::read_sites(sp, g)?, w, h))
        }
        None => None,
    };

    // Pass 2: counts, objects, sites.
    let mut pbuf = vec![0u8; w * strip];
    let mut tchange = vec![false; w * strip];
    let mut counts = Confusion::default();
    let mut labeller = ObjectLabeller::new(w);
    let mut y = 0;
    while y < h {
        let rows = strip.min(h - y);
        let n = w * rows;
        read_strip(&tds, truth, y, w, rows, &mut tbuf)?;
        read_strip(&pds, pred, y, w, rows, &mut pbuf)?;
        for i in 0..n {
            let p = pbuf[i];
            if p > 1 && p != PRED_MASKED {
                return Err(Error::input(
                    pred,
                    format!("pixel ({}, {}) has value {p}; a change mask holds 0 (no change), 1 (change) or 255 (masked)", i % w, y + i / w),
                ));
            }
            let t = tbuf[i] == change;
            tchange[i] = t;
            counts.add(p, t);
        }
        for r in 0..rows {
            labeller.push_row(&tchange[r * w..(r + 1) * w], &pbuf[r * w..(r + 1) * w]);
        }
        if let Some(c) = checker.as_mut() {
            c.push_strip(y, w, &tchange[..n]);
        }
        y += rows;
    }

    Ok(EvalReport {
        prediction: pred.to_path_buf(),
        truth: truth.to_path_buf(),
        width: w,
        height: h,
        truth_coding: coding,
        pixels: counts.scores(),
        objects: score_objects(&labeller.finish(), area, assumed),
        sites: checker.zip(sites).map(|(c, p)| c.finish(p)),
        notes,
    })
}
