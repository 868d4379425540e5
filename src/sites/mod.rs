//! Sites for analysts: the changed pixels of a finished `detect` run turned
//! into ranked sites, handed over as GeoJSON, CSV, KML, chips and a report.
//!
//! 1. **label** ([`components`]): the change mask is streamed in strips of
//!    rows through a 3x3 opening and closing ([`morphology`]) into an
//!    8-connected labeller (union-find over runs). Components under the
//!    minimum mapping unit are dropped as they complete; provisional labels
//!    are held as runs ([`label_runs`]).
//! 2. **describe** (in parallel, one GDAL handle set per worker): for each
//!    site, its bounding-box window (decimated when huge) of the labels,
//!    the score raster and both scenes' reflectance gives the
//!    outline ([`outline`]), shape ([`shape`]), scores and spectral/texture
//!    change ([`spectral`]) relative to the scene background.
//! 3. **classify** ([`classify`]): kind, reasons and structure score; rank;
//!    tag sites near watchlist points ([`watchlist`]).
//! 4. **export** ([`export`]): sites.geojson, sites.csv, sites.kml,
//!    `chips/<id>.png` and report.html, staged and renamed into the run folder
//!    only when all are written.
//!
//! Default minimum mapping unit: 800 m^2. The smallest structure to keep is a
//! 30 m x 30 m hangar (900 m^2); after the 3x3 opening, an object of that size
//! that falls across pixel borders on a 10 m grid is often flagged as 8 or 9
//! pixels (its edge pixels are mixed), so 800 m^2 (8 pixels at 10 m) keeps it
//! while still dropping anything under about 0.08 ha.

pub mod classify;
pub mod components;
pub mod compounds;
pub mod label_runs;
pub mod morphology;
pub mod outline;
pub mod run_info;
pub mod scenes;
pub mod shape;
pub mod spectral;
mod strips;
pub mod watchlist;
pub mod window_read;

/// Writers of the site outputs (the files live with the other exports).
#[path = "../export/sites/mod.rs"]
pub mod export;

use crate::align::grid::metres_per_degree;
use crate::align::reader::Date;
use crate::align::{Grid, SceneReader, Window};
use crate::detect::{SCORE_NODATA, STAT_BANDS};
use crate::error::{gdal_msg, Error, Result};
use crate::export::Staging;
use crate::progress::Progress;
use classify::{Evidence, Kind, KINDS};
use components::{Component, Labeller};
use gdal::spatial_ref::CoordTransform;
use label_runs::LabelRuns;
use morphology::Morphology;
use outline::Polygon;
use run_info::RunInfo;
use scenes::Scenes;
use serde::Serialize;
use shape::Shape;
use spectral::{Background, BackgroundSample, Spectral, NB};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use watchlist::{WatchHit, WatchPoint};

pub use run_info::read_run;

/// Options of `dunewatch sites`.
#[derive(Debug, Clone)]
pub struct SitesOptions {
    /// Minimum mapping unit, m^2.
    pub min_area_m2: f64,
    /// 3x3 opening (removes speckle and features under 3 pixels wide).
    pub opening: bool,
    /// 3x3 closing (fills one-pixel holes and gaps).
    pub closing: bool,
    /// Named points (GeoJSON, property `name`), a preset region's name, or
    /// "none"; without one, the places of the preset region the scene lies
    /// in (see [`watchlist::choose`]).
    pub watchlist: Option<PathBuf>,
    /// Sites within this distance (m) of a watch point are tagged.
    pub watch_distance_m: f64,
    /// Chips for the top N sites.
    pub chips: usize,
    /// Scene paths overriding run.json's.
    pub before: Option<PathBuf>,
    pub after: Option<PathBuf>,
    /// Rows of the change mask read at a time.
    pub strip_rows: usize,
    /// Columns of the panels the sites are described in, one panel after
    /// the other (see `strips`).
    pub panel_cols: usize,
    /// Largest site window read at full resolution, in pixels; larger sites
    /// are read decimated.
    pub max_window_px: usize,
    /// Rows of the report's table (all sites are in the vector files).
    pub report_rows: usize,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Sites closer than this (m) are grouped into compounds.
    pub compound_distance_m: f64,
}

impl Default for SitesOptions {
    fn default() -> Self {
        SitesOptions {
            min_area_m2: 800.0,
            opening: true,
            closing: true,
            watchlist: None,
            watch_distance_m: 5000.0,
            chips: 20,
            before: None,
            after: None,
            strip_rows: 256,
            panel_cols: crate::detect::PANEL_COLS,
            max_window_px: 1 << 20,
            report_rows: 500,
            threads: 0,
            compound_distance_m: compounds::DEFAULT_DISTANCE_M,
        }
    }
}

/// The features of a site that are not in [`Shape`] or [`Spectral`].
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Stable within a run: sites numbered in reading order (top row first).
    pub id: u32,
    /// 1 = highest structure score.
    pub rank: u32,
    pub kind: Kind,
    /// Structure score in [0, 1].
    pub score: f64,
    pub reasons: Vec<String>,
    pub area_m2: f64,
    pub pixels: u64,
    pub lon: f64,
    pub lat: f64,
    /// Centroid in the grid's CRS.
    pub x: f64,
    pub y: f64,
    /// Inclusive pixel bounds on the run grid: col0, row0, col1, row1.
    pub bbox_px: [usize; 4],
    /// lon0, lat0, lon1, lat1.
    pub bbox_lonlat: [f64; 4],
    pub mean_score: Option<f64>,
    pub max_score: Option<f64>,
    pub shape: Shape,
    pub spectral: Spectral,
    pub watch: Vec<WatchHit>,
    /// 1 when the site was read at full resolution, else the decimation.
    pub decimation: usize,
    /// Outline on the run grid in pixel coordinates (polygons of rings,
    /// exterior first; x right, y down).
    #[serde(skip)]
    pub outline_px: Vec<Vec<Vec<(f64, f64)>>>,
    /// Outline in lon/lat: closed rings, exteriors counter-clockwise, holes clockwise.
    #[serde(skip)]
    pub outline_lonlat: Vec<Vec<Vec<[f64; 2]>>>,
}

/// What the report says about the scene.
#[derive(Debug, Clone, Serialize)]
pub struct SceneSummary {
    pub before: PathBuf,
    pub after: PathBuf,
    pub before_date: Option<String>,
    pub after_date: Option<String>,
    pub width: usize,
    pub height: usize,
    pub pixel_size_m: [f64; 2],
    pub area_km2: f64,
    /// Share of the grid masked as cloud or cloud shadow (from run.json).
    pub cloud_masked_fraction: Option<f64>,
    pub changed_fraction: Option<f64>,
    /// lon0, lat0, lon1, lat1 of the grid.
    pub bounds_lonlat: [f64; 4],
    pub min_area_m2: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SitesSummary {
    pub run_dir: PathBuf,
    pub sites: usize,
    pub by_kind: BTreeMap<&'static str, usize>,
    pub compounds: usize,
    pub chips: usize,
    pub outputs: Vec<String>,
    pub scene: SceneSummary,
    pub background: Background,
    pub timings_s: BTreeMap<&'static str, f64>,
    /// The watch points used and where they came from.
    pub watchlist: watchlist::Chosen,
}

/// The lon/lat of the grid's centre (None when it cannot be transformed).
fn grid_centre_lonlat(g: &crate::align::grid::Grid) -> Option<(f64, f64)> {
    let (x, y) = g.pixel_center(g.width as f64 / 2.0 - 0.5, g.height as f64 / 2.0 - 0.5);
    let ct = g.to_lonlat().ok()?;
    let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
    ct.transform_coords(&mut xs, &mut ys, &mut zs).ok()?;
    Some((xs[0], ys[0]))
}

pub const GEOJSON_FILE: &str = "sites.geojson";
pub const CSV_FILE: &str = "sites.csv";
pub const KML_FILE: &str = "sites.kml";
pub const CHIPS_DIR: &str = "chips";
pub const REPORT_FILE: &str = "report.html";
pub const COMPOUNDS_GEOJSON_FILE: &str = "compounds.geojson";
pub const COMPOUNDS_CSV_FILE: &str = "compounds.csv";

/// Ground area of one pixel of `row` (m^2): from the geotransform, and for
/// geographic grids with metres per degree at the row's latitude.
pub fn pixel_area_m2(grid: &Grid, row: usize) -> f64 {
    row_areas(grid)(row)
}

/// [`pixel_area_m2`] for many rows: the CRS is looked at once.
pub fn row_areas(grid: &Grid) -> impl Fn(usize) -> f64 + '_ {
    let geographic = grid.is_geographic();
    let units = grid.metres_per_unit();
    move |row| row_area(grid, row, geographic, units)
}

fn row_area(grid: &Grid, row: usize, geographic: bool, (ux, uy): (f64, f64)) -> f64 {
    let (dx, dy) = grid.pixel_size();
    if geographic {
        let lat = grid.pixel_center(0.0, row as f64).1;
        let (mx, my) = metres_per_degree(lat);
        (dx * mx * dy * my).abs()
    } else {
        (dx * ux * dy * uy).abs()
    }
}

/// Metres per pixel along x and y at a latitude (geographic grids) or anywhere.
pub(crate) fn pixel_metres(grid: &Grid, lat: f64) -> (f64, f64) {
    PixelMetres::of(grid).at(lat)
}

/// [`pixel_metres`] for many sites: the CRS is looked at once.
pub(crate) struct PixelMetres {
    geographic: bool,
    units: (f64, f64),
    size: (f64, f64),
}

impl PixelMetres {
    pub(crate) fn of(grid: &Grid) -> PixelMetres {
        let geographic = grid.is_geographic();
        PixelMetres {
            geographic,
            units: if geographic {
                (1.0, 1.0)
            } else {
                grid.metres_per_unit()
            },
            size: grid.pixel_size(),
        }
    }

    /// At latitude `lat` (not used on projected grids).
    pub(crate) fn at(&self, lat: f64) -> (f64, f64) {
        let (dx, dy) = self.size;
        let (mx, my) = if self.geographic {
            metres_per_degree(lat)
        } else {
            self.units
        };
        (dx.abs() * mx, dy.abs() * my)
    }
}

/// Pass 1: clean, label and measure components; returns them with the
/// provisional labels as runs.
fn label_pass(
    run: &RunInfo,
    opts: &SitesOptions,
    progress: &dyn Progress,
) -> Result<(components::Labelled, LabelRuns)> {
    let g = &run.grid;
    let ds =
        run_info::open_run_raster(&run.mask).map_err(|e| Error::input(&run.mask, gdal_msg(&e)))?;
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(&run.mask, gdal_msg(&e)))?;
    let area_of_row = row_areas(g);
    let mut morph = Morphology::new(opts.opening, opts.closing);
    let mut lab = Labeller::new(g.width, opts.min_area_m2);
    let mut runs = LabelRuns::new(g.width);
    let mut take = |rows: Vec<Vec<bool>>, runs: &mut LabelRuns| {
        for r in rows {
            let y = runs.height();
            lab.push_row_into(&r, area_of_row(y), runs);
        }
    };
    let strip = opts.strip_rows.max(1);
    progress.start("label sites", g.height as u64);
    let mut y = 0;
    while y < g.height {
        let h = strip.min(g.height - y);
        let buf = band
            .read_as::<u8>((0, y as isize), (g.width, h), (g.width, h), None)
            .map_err(|e| {
                Error::input(&run.mask, format!("cannot read pixels: {}", gdal_msg(&e)))
            })?;
        let data = buf.data();
        for r in 0..h {
            let row = &data[r * g.width..(r + 1) * g.width];
            take(morph.push(row), &mut runs);
        }
        y += h;
        progress.advance(h as u64);
    }
    take(morph.finish(), &mut runs);
    debug_assert_eq!(runs.height(), g.height);
    Ok((lab.finish(), runs))
}

/// The scene's typical change: unchanged pixels on a lattice of at most
/// about 65536 points, read decimated in strips.
fn background(scenes: &Scenes, run: &RunInfo) -> Result<Background> {
    const TARGET: usize = 1 << 16;
    const STRIP: usize = 64;
    let g = &run.grid;
    let d = ((g.width * g.height) as f64 / TARGET as f64)
        .sqrt()
        .ceil()
        .max(1.0) as usize;
    let (cw, ch) = (g.width.div_ceil(d), g.height.div_ceil(d));
    let mask_ds =
        run_info::open_run_raster(&run.mask).map_err(|e| Error::input(&run.mask, gdal_msg(&e)))?;
    let mask_band = mask_ds
        .rasterband(1)
        .map_err(|e| Error::input(&run.mask, gdal_msg(&e)))?;
    let mut reader = SceneReader::new(&scenes.pair);
    let mut sample = BackgroundSample::default();
    let mut r0 = 0;
    while r0 < ch {
        let r1 = (r0 + STRIP).min(ch);
        let y0 = r0 * d;
        let y1 = (r1 * d).min(g.height);
        let win = Window {
            x: 0,
            y: y0,
            w: g.width,
            h: y1 - y0,
        };
        let shape = (cw, r1 - r0);
        let m = window_read::read_band::<u8>(&mask_band, win, shape)
            .map_err(|e| Error::input(&run.mask, gdal_msg(&e)))?;
        let b = scenes::read_bands(&mut reader, scenes, Date::Before, &STAT_BANDS, win, shape)?;
        let a = scenes::read_bands(&mut reader, scenes, Date::After, &STAT_BANDS, win, shape)?;
        for (i, &mv) in m.iter().enumerate() {
            if mv == 0 {
                let x: [f32; NB] = std::array::from_fn(|k| b[k][i]);
                let y: [f32; NB] = std::array::from_fn(|k| a[k][i]);
                sample.push(&x, &y);
            }
        }
        r0 = r1;
    }
    Ok(sample.finish())
}

/// Per-worker handles for the describe pass.
struct Worker<'a> {
    /// Decimated reads (JPEG2000 overviews, as `dunewatch sites` reads).
    reader: SceneReader<'a>,
    /// Full-resolution reads (decoded JPEG2000 copies during `detect`).
    full_res: SceneReader<'a>,
    score: Option<gdal::Dataset>,
    to_lonlat: OwnedTransform,
}

/// A coordinate transformation owned by one worker. GDAL transformations
/// must not be used by two threads at once; moving one to the thread that
/// will be its only user is fine, which is all `PerThread` does.
struct OwnedTransform(CoordTransform);

// SAFETY: see above; the transform is only ever used from one thread at a time.
unsafe impl Send for OwnedTransform {}

fn open_worker<'a>(scenes: &'a Scenes, run: &RunInfo) -> Result<Worker<'a>> {
    Ok(Worker {
        reader: SceneReader::new(&scenes.pair),
        full_res: SceneReader::new(scenes.full_res()),
        score: match &run.score {
            Some(p) => {
                Some(run_info::open_run_raster(p).map_err(|e| Error::input(p, gdal_msg(&e)))?)
            }
            None => None,
        },
        to_lonlat: OwnedTransform(run.grid.to_lonlat()?),
    })
}

/// The site's window (bounding box plus one pixel, clamped) and read shape.
fn site_window(c: &Component, g: &Grid, max_px: usize) -> (Window, (usize, usize), usize) {
    let x0 = c.col0.saturating_sub(1);
    let y0 = c.row0.saturating_sub(1);
    let x1 = (c.col1 + 2).min(g.width);
    let y1 = (c.row1 + 2).min(g.height);
    let win = Window {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    };
    let d = ((win.len() as f64 / max_px.max(1) as f64).sqrt().ceil() as usize).max(1);
    (win, (win.w.div_ceil(d), win.h.div_ceil(d)), d)
}

fn lonlat(ct: &CoordTransform, pts: &[(f64, f64)]) -> Result<Vec<[f64; 2]>> {
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let mut zs = vec![0.0; pts.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| Error::invalid(format!("cannot transform to lon/lat: {}", gdal_msg(&e))))?;
    Ok(xs.into_iter().zip(ys).map(|(x, y)| [x, y]).collect())
}

/// Twice the signed area of a closed lon/lat ring (positive = counter-clockwise).
fn signed_area2_ll(r: &[[f64; 2]]) -> f64 {
    (0..r.len().saturating_sub(1))
        .map(|i| r[i][0] * r[i + 1][1] - r[i + 1][0] * r[i][1])
        .sum()
}

/// The pixels of one site's window, at the site's read shape.
struct SiteWindow {
    win: Window,
    shape: (usize, usize),
    /// Decimation (1 = full resolution).
    d: usize,
    labels: Vec<u32>,
    score: Option<Vec<f32>>,
    /// Reflectance, band-major, NaN where no data.
    before: Vec<Vec<f32>>,
    after: Vec<Vec<f32>>,
}

/// Reads a site's window straight from the rasters (sites too tall or too
/// large for the chunks of [`strips::describe_all`]).
fn read_site_window(
    w: &mut Worker,
    scenes: &Scenes,
    run: &RunInfo,
    opts: &SitesOptions,
    labels: &LabelRuns,
    c: &Component,
) -> Result<SiteWindow> {
    let (win, shape, d) = site_window(c, &run.grid, opts.max_window_px);
    let labels = labels.read(win, shape);
    let score = match (&w.score, &run.score) {
        (Some(ds), Some(path)) => {
            let sb = ds
                .rasterband(1)
                .map_err(|e| Error::input(path, gdal_msg(&e)))?;
            Some(
                window_read::read_band::<f32>(&sb, win, shape)
                    .map_err(|e| Error::input(path, gdal_msg(&e)))?,
            )
        }
        _ => None,
    };
    let (before, after) = if d == 1 {
        scenes.read_full_res(&mut w.full_res, win)?
    } else {
        let r = &mut w.reader;
        (
            scenes::read_bands(r, scenes, Date::Before, &STAT_BANDS, win, shape)?,
            scenes::read_bands(r, scenes, Date::After, &STAT_BANDS, win, shape)?,
        )
    };
    Ok(SiteWindow {
        win,
        shape,
        d,
        labels,
        score,
        before,
        after,
    })
}

/// Pass 2 for one site: everything but kind, score and rank.
#[allow(clippy::too_many_arguments)]
fn describe(
    to_lonlat: &CoordTransform,
    metres: &PixelMetres,
    run: &RunInfo,
    site_no: u32,
    c: &Component,
    site_of_label: &[u32],
    bg: &Background,
    sw_: SiteWindow,
) -> Result<Site> {
    let g = &run.grid;
    let SiteWindow {
        win,
        shape,
        d,
        labels: lv,
        score,
        before,
        after,
    } = sw_;
    let (sw, sh) = shape;
    let members: Vec<bool> = lv
        .iter()
        .map(|&l| site_of_label.get(l as usize).copied() == Some(site_no))
        .collect();

    let (mut mean_score, mut max_score) = (None, None);
    if let Some(sv) = score {
        let (mut s, mut m, mut k) = (0.0f64, f32::NEG_INFINITY, 0usize);
        for (v, &inside) in sv.iter().zip(&members) {
            if inside && *v != SCORE_NODATA && v.is_finite() {
                s += *v as f64;
                m = m.max(*v);
                k += 1;
            }
        }
        if k > 0 {
            mean_score = Some(s / k as f64);
            max_score = Some(m as f64);
        }
    }

    let spectral = spectral::measure(&before, &after, &members, sw, sh, bg);

    // Outline and centroid, in run-grid pixel coordinates.
    let (rx, ry) = (win.w as f64 / sw as f64, win.h as f64 / sh as f64);
    let to_grid = |x: f64, y: f64| (win.x as f64 + x * rx, win.y as f64 + y * ry);
    let polys: Vec<Polygon> = outline::trace(&members, sw, sh);
    let (mut cx, mut cy, mut k) = (0.0, 0.0, 0usize);
    for (i, _) in members.iter().enumerate().filter(|(_, &m)| m) {
        let (x, y) = to_grid((i % sw) as f64 + 0.5, (i / sw) as f64 + 0.5);
        cx += x;
        cy += y;
        k += 1;
    }
    let (cx, cy) = if k > 0 {
        (cx / k as f64, cy / k as f64)
    } else {
        to_grid(sw as f64 / 2.0, sh as f64 / 2.0)
    };
    let gt = &g.geotransform;
    let crs = |p: (f64, f64)| (gt[0] + p.0 * gt[1], gt[3] + p.1 * gt[5]);
    let (x, y) = crs((cx, cy));
    let ll = lonlat(to_lonlat, &[(x, y)])?[0];
    let (mxp, myp) = metres.at(y);
    let shape_m = shape::measure(&polys, c.area_m2, mxp * rx, myp * ry);

    let mut outline_px = Vec::new();
    let mut outline_ll = Vec::new();
    let mut bb = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in &polys {
        let mut rings_px = Vec::new();
        let mut rings_ll = Vec::new();
        for (ri, r) in std::iter::once(&p.exterior)
            .chain(p.holes.iter())
            .enumerate()
        {
            let px: Vec<(f64, f64)> = r
                .iter()
                .map(|&(a, b)| to_grid(a as f64, b as f64))
                .collect();
            let mut ring = lonlat(to_lonlat, &px.iter().map(|&q| crs(q)).collect::<Vec<_>>())?;
            ring.push(ring[0]);
            let ccw = signed_area2_ll(&ring) > 0.0;
            if (ri == 0) != ccw {
                ring.reverse();
            }
            for q in &ring {
                bb = [
                    bb[0].min(q[0]),
                    bb[1].min(q[1]),
                    bb[2].max(q[0]),
                    bb[3].max(q[1]),
                ];
            }
            rings_px.push(px);
            rings_ll.push(ring);
        }
        outline_px.push(rings_px);
        outline_ll.push(rings_ll);
    }
    Ok(Site {
        id: site_no,
        rank: 0,
        kind: Kind::Other,
        score: 0.0,
        reasons: Vec::new(),
        area_m2: c.area_m2,
        pixels: c.pixels,
        lon: ll[0],
        lat: ll[1],
        x,
        y,
        bbox_px: [c.col0, c.row0, c.col1, c.row1],
        bbox_lonlat: bb,
        mean_score,
        max_score,
        shape: shape_m,
        spectral,
        watch: Vec::new(),
        decimation: d,
        outline_px,
        outline_lonlat: outline_ll,
    })
}

/// Finds, describes, classifies and ranks the sites of a run (no files
/// written).
pub fn find_sites(
    run: &RunInfo,
    scenes: &Scenes,
    opts: &SitesOptions,
    watch: &[WatchPoint],
    timings: &mut BTreeMap<&'static str, f64>,
    progress: &dyn Progress,
) -> Result<(Vec<Site>, Background)> {
    // Labelling reads the mask once, strip by strip, on one thread; the
    // background sample (the mask and the scenes, decimated) is independent
    // of it and taken meanwhile.
    crate::run::shrink_block_cache();
    let (labelled, bg) = rayon::join(
        || {
            let t = Instant::now();
            label_pass(run, opts, progress).map(|v| (v, t.elapsed().as_secs_f64()))
        },
        || {
            let t = Instant::now();
            background(scenes, run).map(|v| (v, t.elapsed().as_secs_f64()))
        },
    );
    let ((labelled, labels), t_label) = labelled?;
    let (bg, t_bg) = bg?;
    crate::run::release_free_memory();
    timings.insert("label", t_label);
    timings.insert("background", t_bg);

    let t = Instant::now();
    // The descriptions read panels of the scene in strips, with the score
    // (f32, 512 px tiles).
    let cols = opts.panel_cols.clamp(1, run.grid.width.max(1));
    crate::run::size_block_cache(scenes.full_res(), cols, 2 * cols as u64 * 512 * 4);
    let described = strips::describe_all(scenes, run, opts, &labels, &labelled, &bg, progress)?;
    drop(labelled);
    drop(labels);
    // The pieces and GDAL blocks of the descriptions are freed now; the
    // writers and chips that follow need a fraction of them.
    crate::run::release_free_memory();
    timings.insert("describe", t.elapsed().as_secs_f64());

    let mut sites = described;
    for s in sites.iter_mut() {
        let v = classify::classify(&Evidence {
            area_m2: s.area_m2,
            pixels: s.pixels,
            min_area_m2: opts.min_area_m2,
            mean_score: s.mean_score,
            shape: &s.shape,
            spectral: &s.spectral,
        });
        s.kind = v.kind;
        s.score = v.score;
        s.reasons = v.reasons;
        s.watch = watchlist::near(watch, s.lon, s.lat, opts.watch_distance_m);
        if let Some(h) = s.watch.first() {
            s.reasons.push(format!(
                "{:.1} km from watch point {}",
                h.distance_m / 1000.0,
                h.name
            ));
        }
    }
    sites.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.area_m2.total_cmp(&a.area_m2))
            .then(a.id.cmp(&b.id))
    });
    for (i, s) in sites.iter_mut().enumerate() {
        s.rank = i as u32 + 1;
    }
    Ok((sites, bg))
}

fn scene_summary(run: &RunInfo, opts: &SitesOptions) -> Result<SceneSummary> {
    let g = &run.grid;
    let (w, h) = (g.width, g.height);
    let row_area = row_areas(g);
    let area: f64 = (0..h).map(row_area).sum::<f64>() * w as f64;
    let mid_lat = g.pixel_center(0.0, h as f64 / 2.0).1;
    let (mx, my) = pixel_metres(g, mid_lat);
    let ct = g.to_lonlat()?;
    let b = ct
        .transform_bounds(&g.bounds(), 21)
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    let total = run.total.unwrap_or((w * h) as u64).max(1) as f64;
    Ok(SceneSummary {
        before: run.before.clone(),
        after: run.after.clone(),
        before_date: run.before_date.clone(),
        after_date: run.after_date.clone(),
        width: w,
        height: h,
        pixel_size_m: [mx, my],
        area_km2: area / 1e6,
        cloud_masked_fraction: run.cloud_masked.map(|c| c as f64 / total),
        changed_fraction: match (run.changed, run.compared) {
            (Some(c), Some(n)) if n > 0 => Some(c as f64 / n as f64),
            _ => None,
        },
        bounds_lonlat: b,
        min_area_m2: opts.min_area_m2,
    })
}

/// Adds the sites step (count, kinds, timings per stage) to run.json, when
/// the run folder has one: written to a temporary name, then renamed.
fn record_in_run_json(summary: &SitesSummary) -> Result<()> {
    let run_dir = &summary.run_dir;
    let path = run_dir.join(crate::run::RUN_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(());
    };
    if let Some(obj) = json.as_object_mut() {
        obj.insert(
            "sites".into(),
            serde_json::json!({
                "sites": summary.sites,
                "by_kind": summary.by_kind,
                "compounds": summary.compounds,
                "watchlist": summary.watchlist,
                "timings_s": summary.timings_s,
            }),
        );
    }
    let tmp = run_dir.join(format!(
        ".{}.partial-{}",
        crate::run::RUN_FILE,
        std::process::id()
    ));
    let out = serde_json::to_string_pretty(&json).map_err(|e| Error::output(&path, e))?;
    std::fs::write(&tmp, out).map_err(|e| Error::output(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))
}

/// Turns a finished detect run's change mask into ranked sites and writes
/// sites.geojson, sites.csv, sites.kml, chips/ and report.html into the run
/// folder (all or nothing).
pub fn run_sites(run_dir: &Path, opts: &SitesOptions) -> Result<SitesSummary> {
    run_sites_with(run_dir, opts, &crate::progress::Silent)
}

/// [`run_sites`], reporting its stages to `progress`.
pub fn run_sites_with(
    run_dir: &Path,
    opts: &SitesOptions,
    progress: &dyn Progress,
) -> Result<SitesSummary> {
    check_options(opts)?;
    let run = run_info::read_run(run_dir)?;
    stage_sites(&run, opts, &Default::default(), None, None, progress)?.commit()
}

/// Sites found and written to a staging folder of the run, not yet published.
pub struct StagedSites {
    staging: Staging,
    summary: SitesSummary,
}

impl StagedSites {
    /// Publishes the outputs into the run folder (which must hold its
    /// run.json by now) and records the sites step in run.json.
    pub fn commit(self) -> Result<SitesSummary> {
        let summary = self.summary;
        self.staging.commit(&export::FILES)?;
        record_in_run_json(&summary)?;
        Ok(summary)
    }
}

/// Refuses options no run could use, naming the option.
pub fn check_options(opts: &SitesOptions) -> Result<()> {
    if !(opts.min_area_m2 >= 0.0 && opts.min_area_m2.is_finite()) {
        return Err(Error::usage(format!(
            "--min-area must be a non-negative number of m2, got {}",
            opts.min_area_m2
        )));
    }
    if !(opts.watch_distance_m >= 0.0 && opts.watch_distance_m.is_finite()) {
        return Err(Error::usage(format!(
            "--watch-distance must be a non-negative number of metres, got {}",
            opts.watch_distance_m
        )));
    }
    if !(opts.compound_distance_m >= 0.0 && opts.compound_distance_m.is_finite()) {
        return Err(Error::usage(format!(
            "--compound-distance must be a non-negative number of metres, got {}",
            opts.compound_distance_m
        )));
    }
    Ok(())
}

/// Finds, describes and ranks the sites of `run` and writes every sites
/// output into a staging folder of `run.dir`; [`StagedSites::commit`]
/// publishes them. `decoded` and `kept` are what a `detect` run left for its
/// sites: decoded JPEG2000 copies, the reflectance around changed pixels.
/// `pool` is the threads to work on (`detect` passes its own, which encode
/// the COGs meanwhile: on the mirrored full pair, alternating, 15.97,
/// 14.17, 14.33 -> 15.01, 13.81, 14.03 s against a pool of their own); by
/// default a pool of `opts.threads`.
pub fn stage_sites(
    run: &RunInfo,
    opts: &SitesOptions,
    decoded: &crate::align::transcode::Decoded,
    kept: Option<std::sync::Arc<crate::detect::kept_pixels::KeptPixels>>,
    pool: Option<&rayon::ThreadPool>,
    progress: &dyn Progress,
) -> Result<StagedSites> {
    crate::run::configure_gdal();
    check_options(opts)?;
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    let chosen = watchlist::choose(opts.watchlist.as_deref(), grid_centre_lonlat(&run.grid))?;
    let watch = chosen.points.clone();
    let t = Instant::now();
    let mut scenes =
        Scenes::open_with_decoded(run, opts.before.as_deref(), opts.after.as_deref(), decoded)?;
    scenes.kept = kept;
    timings.insert("open_scenes", t.elapsed().as_secs_f64());

    let own;
    let pool = match pool {
        Some(p) => p,
        None => {
            own = rayon::ThreadPoolBuilder::new()
                .num_threads(opts.threads)
                .build()
                .map_err(|e| Error::invalid(format!("cannot start worker threads: {e}")))?;
            &own
        }
    };
    crate::run::limit_gdal_threads(pool.current_num_threads());
    let staging = Staging::new(&run.dir, &[])?;
    let (sites, bg) =
        pool.install(|| find_sites(run, &scenes, opts, &watch, &mut timings, progress))?;
    // Only the descriptions read the kept pixels.
    if let Some(kept) = scenes.kept.take() {
        crate::detect::kept_pixels::KeptPixels::discard(kept);
    }

    let t = Instant::now();
    let compounds = compounds::find(&sites, &run.grid, opts.compound_distance_m)?;
    timings.insert("compounds", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let scene = scene_summary(run, opts)?;
    let mut by_kind: BTreeMap<&'static str, usize> = KINDS.iter().map(|k| (k.name(), 0)).collect();
    for s in &sites {
        *by_kind.entry(s.kind.name()).or_default() += 1;
    }
    let ctx = export::Context {
        run,
        scene: &scene,
        sites: &sites,
        compounds: &compounds,
        by_kind: &by_kind,
        opts,
    };
    let chips_dir = staging.path(CHIPS_DIR);
    std::fs::create_dir_all(&chips_dir).map_err(|e| Error::output(&chips_dir, e))?;
    // The text writers render their sites in parallel batches, all three at
    // once (each writes its batches on one thread, and the others' batches
    // fill the cores meanwhile); the chips are drawn meanwhile too.
    let text = || -> Result<()> {
        let (geojson, (csv, kml)) = rayon::join(
            || export::geojson::write(&staging.path(GEOJSON_FILE), &ctx),
            || {
                rayon::join(
                    || export::csv::write(&staging.path(CSV_FILE), &ctx),
                    || export::kml::write(&staging.path(KML_FILE), &ctx),
                )
            },
        );
        geojson.and(csv).and(kml)?;
        export::compounds::write(&staging, &ctx)?;
        export::styles::write(&staging, &ctx)
    };
    // And the report's overview, which reads the whole scene decimated.
    let chips = || -> Result<_> {
        let sites = export::chips::write_all(&chips_dir, &ctx, &scenes, &run.mask, progress)?;
        let compounds = export::chips::write_compounds(&chips_dir, &ctx, &scenes, &run.mask)?;
        Ok((sites, compounds))
    };
    let overview = || export::report::overview_png(&ctx, &scenes);
    let (written, (chips, overview)) =
        pool.install(|| rayon::join(text, || rayon::join(chips, overview)));
    written?;
    let (chips, compound_chips) = chips?;
    let overview = overview?;
    timings.insert("chips", t.elapsed().as_secs_f64());
    let t = Instant::now();
    export::report::write(
        &staging.path(REPORT_FILE),
        &ctx,
        overview,
        &compound_chips,
        &chips,
    )?;
    timings.insert("report", t.elapsed().as_secs_f64());
    timings.insert("total", t0.elapsed().as_secs_f64());
    let summary = SitesSummary {
        run_dir: run.dir.clone(),
        sites: sites.len(),
        by_kind,
        compounds: compounds.len(),
        chips: chips.len(),
        outputs: export::FILES.iter().map(|s| s.to_string()).collect(),
        scene,
        background: bg,
        timings_s: timings,
        watchlist: chosen,
    };
    // Freeing tens of thousands of sites took 0.2 s on one core at the very
    // end of a run; nothing waits for it.
    std::thread::spawn(move || drop(sites));
    Ok(StagedSites { staging, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(epsg: u32, gt: [f64; 6]) -> Grid {
        let wkt = gdal::spatial_ref::SpatialRef::from_epsg(epsg)
            .unwrap()
            .to_wkt()
            .unwrap();
        Grid {
            wkt,
            epsg: Some(epsg as i32),
            geotransform: gt,
            width: 10,
            height: 10,
        }
    }

    #[test]
    fn pixel_area_utm_and_geographic() {
        let utm = grid(32634, [500000.0, 10.0, 0.0, 4e6, 0.0, -10.0]);
        assert!((pixel_area_m2(&utm, 3) - 100.0).abs() < 1e-9);
        // 0.0001 deg pixels: the row at 60 N is about half as wide as at the equator.
        let geo = grid(4326, [10.0, 1e-4, 0.0, 60.00005, 0.0, -1e-4]);
        let (mx, my) = metres_per_degree(60.0);
        assert!((pixel_area_m2(&geo, 0) / (1e-8 * mx * my) - 1.0).abs() < 1e-5);
        let eq = grid(4326, [10.0, 1e-4, 0.0, 0.00005, 0.0, -1e-4]);
        let ratio = pixel_area_m2(&geo, 0) / pixel_area_m2(&eq, 0);
        assert!((ratio - 0.5).abs() < 0.01, "{ratio}");
    }
}
