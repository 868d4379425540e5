//! Sites for analysts: the changed pixels of a finished `detect` run turned
//! into ranked sites, handed over as GeoJSON, CSV, KML, chips and a report.
//!
//! 1. **label** ([`components`]): the change mask is streamed in strips of
//!    rows through a 3x3 opening and closing ([`morphology`]) into an
//!    8-connected labeller (union-find over runs). Components under the
//!    minimum mapping unit are dropped as they complete; provisional labels
//!    are held as runs ([`label_runs`]).
//! 2. **describe** ([`describe`], in parallel, one GDAL handle set per worker): for each
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

mod area;
pub mod classify;
pub mod components;
pub mod compounds;
mod describe;
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

use crate::error::{gdal_msg, Error, Result};
use crate::export::Staging;
use crate::progress::Progress;
use classify::{Evidence, Kind, KINDS};
use components::Labeller;
use describe::background;
use label_runs::LabelRuns;
use morphology::Morphology;
use run_info::RunInfo;
use scenes::Scenes;
use serde::Serialize;
use shape::Shape;
use spectral::{Background, Spectral};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use watchlist::{WatchHit, WatchPoint};

pub(crate) use area::pixel_metres;
pub use area::{pixel_area_m2, row_areas};
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
    /// Keeps only the sites it accepts in every output (`--new-only`).
    pub filter: Option<SiteFilter>,
}

/// Which sites to keep, given each site's lon/lat outline (polygons of
/// rings): the caller decides (e.g. those new since a register's last run).
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct SiteFilter(
    pub std::sync::Arc<dyn Fn(&[&Vec<Vec<Vec<[f64; 2]>>>]) -> Result<Vec<bool>> + Send + Sync>,
);

impl std::fmt::Debug for SiteFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteFilter")
    }
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
            filter: None,
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

/// Adds the sites step (count, kinds, watch points, timings per stage) to
/// the run.json in `dir` (a staged run folder), when it has one.
pub fn record_in_run_json(dir: &Path, s: &SitesSummary) -> Result<()> {
    if !dir.join(crate::run::RUN_FILE).is_file() {
        return Ok(());
    }
    crate::run::set_in_run_json(
        dir,
        "sites",
        serde_json::json!({
            "sites": s.sites,
            "by_kind": s.by_kind,
            "compounds": s.compounds,
            "watchlist": s.watchlist,
            "timings_s": s.timings_s,
        }),
    )
}

/// The files the sites step writes into a run folder.
pub const OUTPUTS: [&str; 11] = export::FILES;

/// Turns a finished detect run's change mask into ranked sites and writes
/// sites.geojson, sites.csv, sites.kml, chips/ and report.html into the run
/// folder. The run folder is rebuilt beside it, with the earlier sites
/// outputs left out, and swapped in whole: readers see the earlier folder or
/// the new one, and a failure leaves the earlier one as it was.
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
    let staging = Staging::update(run_dir, &OUTPUTS)?;
    let s = stage_sites(
        &run,
        opts,
        &Default::default(),
        None,
        None,
        progress,
        staging.dir(),
    )?;
    record_in_run_json(staging.dir(), &s)?;
    staging.commit()?;
    Ok(s)
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
/// output ([`OUTPUTS`]) into the folder `into` (a staged run folder, which
/// its caller publishes). `decoded` and `kept` are what a `detect` run left for its
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
    into: &Path,
) -> Result<SitesSummary> {
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
    let (mut sites, bg) =
        pool.install(|| find_sites(run, &scenes, opts, &watch, &mut timings, progress))?;
    if let Some(f) = &opts.filter {
        let keep = (f.0)(&sites.iter().map(|s| &s.outline_lonlat).collect::<Vec<_>>())?;
        let mut k = keep.into_iter();
        sites.retain(|_| k.next().unwrap_or(true));
    }
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
    let chips_dir = into.join(CHIPS_DIR);
    std::fs::create_dir_all(&chips_dir).map_err(|e| Error::output(&chips_dir, e))?;
    // The text writers render their sites in parallel batches, all three at
    // once (each writes its batches on one thread, and the others' batches
    // fill the cores meanwhile); the chips are drawn meanwhile too.
    let text = || -> Result<()> {
        let (geojson, (csv, kml)) = rayon::join(
            || export::geojson::write(&into.join(GEOJSON_FILE), &ctx),
            || {
                rayon::join(
                    || export::csv::write(&into.join(CSV_FILE), &ctx),
                    || export::kml::write(&into.join(KML_FILE), &ctx),
                )
            },
        );
        geojson.and(csv).and(kml)?;
        export::compounds::write(into, &ctx)?;
        export::styles::write(into, &ctx)
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
        &into.join(REPORT_FILE),
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
        outputs: OUTPUTS.iter().map(|s| s.to_string()).collect(),
        scene,
        background: bg,
        timings_s: timings,
        watchlist: chosen,
    };
    // Freeing tens of thousands of sites took 0.2 s on one core at the very
    // end of a run; nothing waits for it.
    std::thread::spawn(move || drop(sites));
    Ok(summary)
}
