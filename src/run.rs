//! A whole `detect` job: read both scenes, align them, detect, and publish
//! the outputs with run.json. The command line and batch runs call this.

use crate::align::{self, AlignOptions, AlignedPair, Grid};
use crate::detect::{self, DetectOptions, DetectSummary, OPTIONAL_BANDS, STAT_BANDS};
use crate::error::{Error, Result};
use crate::export::{cog::Workers, to_cog::to_cog, Staging};
use crate::progress::Progress;
use crate::read::{self, Band, Scene};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Everything a detect run needs.
#[derive(Debug, Clone)]
pub struct DetectRequest {
    pub before: PathBuf,
    pub after: PathBuf,
    pub out: PathBuf,
    pub align: AlignOptions,
    pub detect: DetectOptions,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Keep the reflectance around the changed pixels for a `meanwhile`
    /// that finds the sites ([`WorkingRun::kept`]).
    pub keep_for_sites: bool,
}

#[derive(Debug, Serialize)]
pub struct SceneInfo {
    pub path: PathBuf,
    pub form: read::SceneForm,
    pub level: Option<String>,
    pub date: Option<String>,
    pub bands_found: Vec<Band>,
    pub scene_classification: bool,
    /// How each used band reaches the grid: "direct" or "warped".
    pub alignment: BTreeMap<Band, &'static str>,
    /// The file read for each used band (a `/vsizip/` path inside a zip),
    /// and how its values became reflectance.
    pub files: BTreeMap<Band, BandFileInfo>,
}

/// One band's file in run.json.
#[derive(Debug, Serialize)]
pub struct BandFileInfo {
    pub path: String,
    /// "counts" (integer counts, reflectance = (DN + offset) / quantification)
    /// or "reflectance" (float values taken as reflectance).
    pub values: &'static str,
    pub add_offset: f64,
    pub quantification: f64,
}

#[derive(Debug, Serialize)]
pub struct GridInfo {
    #[serde(flatten)]
    pub grid: Grid,
    pub pixel_size_m: [f64; 2],
}

/// The contents of run.json.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: &'static str,
    pub before: SceneInfo,
    pub after: SceneInfo,
    /// The AOI file, or a description of the place/region/point area.
    pub aoi: Option<PathBuf>,
    /// The area itself (GeoJSON) when the AOI was a place, region or point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aoi_area: Option<serde_json::Value>,
    pub grid: GridInfo,
    pub bands_used: Vec<Band>,
    pub threads: usize,
    /// JPEG2000 files decoded once into the run's staging folder (see
    /// [`align::transcode`]).
    pub jp2_decoded_once: usize,
    /// The after scene's misregistration, and whether it was corrected.
    pub coregistration: align::coregister::Coregistration,
    pub detect: DetectSummary,
    pub outputs: Vec<&'static str>,
    pub timings_s: BTreeMap<&'static str, f64>,
}

pub const SCORE_FILE: &str = "change_score.tif";
pub const MASK_FILE: &str = "change_mask.tif";
pub const RUN_FILE: &str = "run.json";

/// Makes freed strip and block buffers go back to the system (glibc only).
///
/// Why: glibc raises its mmap threshold to 32 MB after the first large free,
/// so the pipeline's few-MB buffers then come from per-thread heap arenas
/// that fragment and never shrink: a full-tile run held about twice its live
/// memory. A fixed 4 MB threshold (above the per-block buffers, below the
/// per-strip ones) and two arenas keep peak RSS near what is in use, for the
/// cost of page faults on large buffers.
///
/// The heaps keep up to 32 MB free at their top (glibc's default, fixed
/// once the mmap threshold is set, is 128 KB): below it, every block buffer
/// freed at the top of a heap was handed back and faulted in again, zeroed,
/// by the next. On a full tile's `dunewatch sites` (76 873 sites) that took
/// its page faults from 1.9 to 1.5 million and its system time from 4.9 to
/// 3.7 s, at the same peak RSS. [`release_free_memory`] still hands
/// everything back between stages.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Puts the calling thread in Linux's idle scheduling class: it runs when a
/// core would otherwise be idle.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call on the calling thread (pid 0), with a
    // valid parameter block.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Hands freed heap pages back to the system (glibc only). Why: between
/// stages (COG conversion, site descriptions) the heap holds hundreds of MB
/// of freed GDAL blocks and strip buffers between live allocations, which
/// glibc only returns from the top of a heap; a full tile pair run with one
/// thread peaked at 1.7 GB RSS for under 1 GB of live heap.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sets GDAL up for streaming: a bounded block cache (raised per run by
/// [`size_block_cache`]), and no .aux.xml side files written next to the
/// user's inputs.
pub fn configure_gdal() {
    let _ = gdal::config::set_config_option("GDAL_PAM_ENABLED", "NO");
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        let _ = gdal::config::set_config_option("GDAL_CACHEMAX", &DEFAULT_CACHE_MB.to_string());
    }
}

/// Keeps GDAL's own threads (JPEG2000 tile decoding) within `--threads`,
/// unless the user set GDAL_NUM_THREADS.
pub fn limit_gdal_threads(threads: usize) {
    if std::env::var_os("GDAL_NUM_THREADS").is_none() {
        let _ = gdal::config::set_config_option("GDAL_NUM_THREADS", &threads.to_string());
    }
}

/// Bytes of GDAL block cache a strip pass over `pair` needs so that every
/// input block is decoded once: two rows of blocks of every file read (a
/// strip with its halo straddles a block-row boundary once per block row,
/// and both rows must stay cached), `cols` grid columns wide (a panel, or
/// the whole width) plus a block on either side for the halo, plus `extra`
/// for the rasters the pass writes or also reads.
pub fn block_cache_need(pair: &AlignedPair, cols: usize, extra: u64) -> u64 {
    let bands = [&pair.before, &pair.after]
        .into_iter()
        .flat_map(|s| s.bands.values().chain(s.scl.iter()))
        .chain(pair.aoi.iter());
    let mut need = extra;
    for ab in bands {
        if !read_by_gdal(ab) {
            continue;
        }
        let Ok(ds) = gdal::Dataset::open(&ab.file.path) else {
            continue;
        };
        let Ok(band) = ds.rasterband(ab.file.index) else {
            continue;
        };
        let (w, _) = band.size();
        let (bw, bh) = band.block_size();
        let bytes = band.band_type().bytes() as u64;
        let blocks = panel_blocks(cols, pair.grid.width, w, bw);
        need += 2 * (blocks * bw) as u64 * bh as u64 * bytes;
    }
    need
}

/// Whether full-resolution reads of `ab` go through GDAL's block cache:
/// not when dunewatch decodes the file's tiles itself (its readers cache
/// them; see [`crate::read::tiff_tiles`]), which warped bands never are.
fn read_by_gdal(ab: &align::AlignedBand) -> bool {
    match &ab.source {
        align::Source::Direct { path, index, .. }
        | align::Source::Upsampled { path, index, .. } => {
            !align::reader::decoded_here(path, *index)
        }
        align::Source::Warped { .. } => true,
    }
}

/// Blocks across that a panel of `cols` columns of a `grid_width` grid
/// touches in a file `file_width` pixels wide (20 m files have half as many)
/// with `block_width` px blocks: its own and one on either side for the
/// halo, at most the file's.
fn panel_blocks(cols: usize, grid_width: usize, file_width: usize, block_width: usize) -> usize {
    let file_cols = (cols * file_width).div_ceil(grid_width.max(1));
    (file_cols.div_ceil(block_width) + 2).min(file_width.div_ceil(block_width))
}

/// GDAL's block cache when no pass asks for more, in MB (GDAL_CACHEMAX set
/// by [`configure_gdal`]).
const DEFAULT_CACHE_MB: u64 = 384;

/// Sets GDAL's block cache to what a strip pass over `pair` needs (see
/// [`block_cache_need`]: the files dunewatch decodes itself need none of
/// it), never below `STREAM_CACHE_MB`, unless the user
/// set GDAL_CACHEMAX. Why: on a full JPEG2000 tile (1024 px blocks) the
/// default held only about one row of blocks of every band, so each strip
/// crossing a block row decoded the row above again: tiles were decoded
/// two to three times. It sets rather than raises, so a pass that needs
/// less than the one before gets the memory back (GDAL drops blocks over a
/// lowered limit at once).
pub fn size_block_cache(pair: &AlignedPair, cols: usize, extra: u64) {
    let need = block_cache_need(pair, cols, extra) + (64 << 20);
    set_block_cache(need.max(STREAM_CACHE_MB << 20));
}

/// Shrinks GDAL's block cache to `STREAM_CACHE_MB` for stages that read
/// and write each block once (COG copies, labelling), dropping the blocks
/// over it: what a finished pass cached is not read again, and left there,
/// with the blocks such stages stream through, it would fill the cache's
/// whole size while they run.
pub fn shrink_block_cache() {
    set_block_cache(STREAM_CACHE_MB << 20);
}

/// GDAL's block cache for stages that touch each block once, in MB.
const STREAM_CACHE_MB: u64 = 128;

/// Sets GDAL's block cache, unless the user set GDAL_CACHEMAX.
fn set_block_cache(bytes: u64) {
    if std::env::var_os("GDAL_CACHEMAX").is_some() {
        return;
    }
    // SAFETY: a plain setter of GDAL's global cache size.
    unsafe {
        gdal_sys::GDALSetCacheMax64(bytes as i64);
    }
}

/// Co-registers the pair when `opts` asks for it (see
/// [`align::coregister`]), on `pool`.
pub fn coregister(
    pair: &mut AlignedPair,
    opts: &AlignOptions,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<align::coregister::Coregistration> {
    if !opts.coregister {
        return Ok(align::coregister::Coregistration::skipped(
            "--no-coregister",
        ));
    }
    progress.start("co-register", 1);
    let c = pool.install(|| align::coregister::coregister(pair))?;
    progress.advance(1);
    Ok(c)
}

fn scene_info(scene: &Scene, aligned: &align::AlignedScene) -> SceneInfo {
    SceneInfo {
        // Absolute, so `dunewatch sites` finds the scenes from any folder.
        path: scene
            .source
            .canonicalize()
            .unwrap_or_else(|_| scene.source.clone()),
        form: scene.form,
        level: scene.level.clone(),
        date: scene.date.clone(),
        bands_found: scene.bands.keys().copied().collect(),
        scene_classification: scene.scl.is_some(),
        alignment: aligned
            .bands
            .iter()
            .map(|(b, ab)| (*b, ab.source.kind()))
            .collect(),
        files: aligned
            .bands
            .iter()
            .map(|(b, ab)| {
                let f = &ab.file;
                let info = BandFileInfo {
                    path: f.path.clone(),
                    values: if f.quantification == 1.0 && f.add_offset == 0.0 {
                        "reflectance"
                    } else {
                        "counts"
                    },
                    add_offset: f.add_offset,
                    quantification: f.quantification,
                };
                (*b, info)
            })
            .collect(),
    }
}

/// Runs a detect job end to end and publishes its output folder.
pub fn run_detect(req: &DetectRequest, progress: &dyn Progress) -> Result<RunRecord> {
    let staged = run_detect_with(req, progress, |_| Ok(()))?;
    staged.publish().map(|(rec, ())| rec)
}

/// A finished detect run whose output folder is complete but not yet
/// published: the caller may add files (the sites) and run.json fields
/// to [`StagedRun::dir`], then [`StagedRun::publish`]es it. Dropped
/// unpublished, it leaves nothing behind.
pub struct StagedRun<T> {
    pub record: RunRecord,
    /// What `meanwhile` returned.
    pub during: T,
    staging: Staging,
}

impl<T> StagedRun<T> {
    /// The staging folder, to become the output folder.
    pub fn dir(&self) -> &std::path::Path {
        self.staging.dir()
    }

    /// Replaces the output folder with the staged one, whole.
    pub fn publish(self) -> Result<(RunRecord, T)> {
        self.staging.commit()?;
        Ok((self.record, self.during))
    }
}

/// Sets `key` of the run.json in `dir` to `value`; written to a temporary
/// name, then renamed (the file may be a hard link to a published run's).
pub fn set_in_run_json(dir: &std::path::Path, key: &str, value: serde_json::Value) -> Result<()> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::output(&path, e))?;
    let mut json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(&path, format!("is not valid JSON: {e}")))?;
    let Some(obj) = json.as_object_mut() else {
        return Err(Error::input(&path, "is not a JSON object"));
    };
    obj.insert(key.into(), value);
    let out = serde_json::to_string_pretty(&json).map_err(|e| Error::output(&path, e))?;
    let tmp = dir.join(format!(".{RUN_FILE}.partial"));
    std::fs::write(&tmp, out).map_err(|e| Error::output(&path, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))
}

/// A detect run whose working rasters are complete but not yet published.
pub struct WorkingRun<'a> {
    /// The output folder (where the run will be published).
    pub dir: &'a std::path::Path,
    /// The staging folder the run's outputs are written to.
    pub staging: &'a std::path::Path,
    pub mask: &'a std::path::Path,
    pub score: &'a std::path::Path,
    /// The record as run.json will hold it, but for the COG timings.
    pub record: &'a RunRecord,
    /// JPEG2000 files decoded for the run (alive until it is published).
    pub decoded: &'a align::transcode::Decoded,
    /// The reflectance the score pass kept for the sites, when asked for
    /// and the threshold was known before scoring; taken by the sites step,
    /// which lets it go as soon as it is read.
    pub kept: std::sync::Mutex<Option<std::sync::Arc<detect::kept_pixels::KeptPixels>>>,
    /// The worker threads that encode the COGs' tiles meanwhile: work run
    /// on them shares the cores with the COGs instead of competing with
    /// them from more threads.
    pub pool: &'a rayon::ThreadPool,
}

/// Runs a detect job and, while the COGs are written, `meanwhile` on the
/// finished working rasters (`detect` finds the sites there: the COG
/// conversion is partly single-threaded, and the two together keep both
/// cores busy). Nothing is published: see [`StagedRun`]; when `meanwhile`
/// fails, its error is returned and nothing is left behind.
pub fn run_detect_with<T>(
    req: &DetectRequest,
    progress: &dyn Progress,
    meanwhile: impl FnOnce(&WorkingRun) -> Result<T>,
) -> Result<StagedRun<T>> {
    configure_gdal();
    let t0 = Instant::now();
    let mut timings = BTreeMap::new();
    let staging = Staging::new(&req.out, &[&req.before, &req.after])?;

    let t = Instant::now();
    let before = read::open_scene(&req.before)?;
    let after = read::open_scene(&req.after)?;
    let mut pair = align::align(before, after, &STAT_BANDS, &OPTIONAL_BANDS, &req.align)?;
    timings.insert("read_align", t.elapsed().as_secs_f64());

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(req.threads)
        .build()
        .map_err(|e| Error::invalid(format!("cannot start worker threads: {e}")))?;
    let threads = pool.current_num_threads();
    limit_gdal_threads(threads);

    let t = Instant::now();
    let mut decoded = pool
        .install(|| align::transcode::decode_jp2_once(&pair, &staging.path("decoded"), progress))?;
    decoded.apply(&mut pair);
    if !decoded.is_empty() {
        timings.insert("decode_jp2", t.elapsed().as_secs_f64());
    }
    // Remote bands: the grid's window fetched once, then read locally.
    let t = Instant::now();
    let remote = pool.install(|| {
        align::remote_copy::copy_remote_windows(&pair, &staging.path("remote"), progress)
    })?;
    remote.apply(&mut pair)?;
    if !remote.is_empty() {
        timings.insert("fetch_remote", t.elapsed().as_secs_f64());
    }
    let jp2_decoded = decoded.len();
    decoded.extend(remote.decoded);
    let t = Instant::now();
    let coregistration = coregister(&mut pair, &req.align, &pool, progress)?;
    timings.insert("coregister", t.elapsed().as_secs_f64());
    // The score pass reads panels and writes a float score, 512 px tiles;
    // the mask pass writes a byte mask.
    let panel = detect::panel_cols(req.detect.block_size).min(pair.grid.width);
    size_block_cache(&pair, panel, 2 * (panel as u64 + 1024) * 512 * 5);

    let work_score = staging.path("score.work.tif");
    let work_mask = staging.path("mask.work.tif");
    let work_kept = staging.path("kept.work.bin");
    let keep = req.keep_for_sites.then_some(work_kept.as_path());
    let (summary, kept) = pool.install(|| {
        detect::detect_keeping(&pair, &req.detect, &work_score, &work_mask, keep, progress)
    })?;
    let kept = kept.map(std::sync::Arc::new);
    crate::export::qgis::describe_working(&work_mask, &work_score)?;
    pool.broadcast(|_| detect::score::release_planes());
    shrink_block_cache();
    release_free_memory();

    let (mx, my) = pair.grid.metres_per_unit();
    let (px, py) = pair.grid.pixel_size();
    let mut record = RunRecord {
        tool: "dunewatch",
        version: crate::VERSION,
        command: "detect",
        before: scene_info(&pair.before.scene, &pair.before),
        after: scene_info(&pair.after.scene, &pair.after),
        aoi: req.align.aoi.as_ref().map(|a| a.label()),
        aoi_area: match &req.align.aoi {
            Some(align::Aoi::Area(a)) => Some(a.to_geojson()),
            _ => None,
        },
        grid: GridInfo {
            grid: pair.grid.clone(),
            pixel_size_m: [px * mx, py * my],
        },
        bands_used: STAT_BANDS
            .iter()
            .chain(OPTIONAL_BANDS.iter())
            .filter(|b| pair.before.bands.contains_key(b))
            .copied()
            .collect(),
        threads,
        jp2_decoded_once: jp2_decoded,
        coregistration,
        detect: summary,
        outputs: vec![SCORE_FILE, MASK_FILE, RUN_FILE],
        timings_s: BTreeMap::new(),
    };
    drop(pair);

    // The sites' pool has a worker more than `threads`: the sites step's
    // own coordination occupies a worker that spends much of its time
    // waiting for its reader threads (when the COGs shared this pool, they
    // starved with `threads` workers: mirrored full pair, alternating,
    // 15.77, 14.95, 14.58 -> 14.29, 14.03, 13.76 s). The COGs finish on it
    // once the sites are done (below). One thread: one thing at a time, on
    // the run's pool.
    let shared;
    let pool = if threads > 1 {
        shared = rayon::ThreadPoolBuilder::new()
            .num_threads(threads + 1)
            .build()
            .map_err(|e| Error::invalid(format!("cannot start worker threads: {e}")))?;
        &shared
    } else {
        &pool
    };
    let t = Instant::now();
    progress.start("write COGs", 2);
    // The two conversions are independent; the score's is the long one.
    let (score_cog, mask_cog) = (staging.path(SCORE_FILE), staging.path(MASK_FILE));
    let working = WorkingRun {
        dir: &req.out,
        staging: staging.dir(),
        mask: &work_mask,
        score: &work_score,
        record: &record,
        decoded: &decoded,
        kept: std::sync::Mutex::new(kept),
        pool,
    };
    if threads == 1 {
        // One core: one thing at a time.
        pool.install(|| to_cog(&work_mask, &mask_cog, "NEAREST", 1, None))?;
        progress.advance(1);
        pool.install(|| to_cog(&work_score, &score_cog, "AVERAGE", 1, None))?;
        progress.advance(1);
        release_free_memory();
        timings.insert("write_cog", t.elapsed().as_secs_f64());
        timings.insert("total", t0.elapsed().as_secs_f64());
    }
    // The COGs' tiles are encoded on workers of their own in the idle
    // scheduling class while the sites are found, then on the shared pool
    // (see `cog::Workers`). Mirrored pair, five alternating rounds: wall
    // 13.20 -> 12.95 s, what follows the score pass 6.08 -> 5.87 s, the
    // sites step 4.60 -> 3.89 s (means).
    let idle = if threads > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(|_| idle_priority())
            .build()
            .map_err(|e| Error::invalid(format!("cannot start worker threads: {e}")))?;
        Some(pool)
    } else {
        None
    };
    let sites_done = std::sync::atomic::AtomicBool::new(false);
    let workers = idle.as_ref().map(|first| Workers {
        first,
        then: pool,
        switch: &sites_done,
    });
    let during = std::thread::scope(|s| -> Result<Result<T>> {
        if threads == 1 {
            return Ok(meanwhile(&working));
        }
        // The bar shows `meanwhile`'s stages (the sites); the COGs' stage
        // comes back when it is done, for what is left of them.
        // The COGs' tiles are encoded by `workers` (in the idle class, then
        // on the sites' pool); the rest of their work runs on these threads,
        // not on a pool's worker: there it waited for one of the sites'
        // tasks to end before each batch.
        let mask = s.spawn(|| -> Result<Instant> {
            to_cog(&work_mask, &mask_cog, "NEAREST", 1, workers)?;
            Ok(Instant::now())
        });
        let score = s.spawn(|| -> Result<Instant> {
            to_cog(&work_score, &score_cog, "AVERAGE", threads, workers)?;
            Ok(Instant::now())
        });
        let during = meanwhile(&working);
        sites_done.store(true, std::sync::atomic::Ordering::Relaxed);
        progress.start("write COGs", 2);
        let panicked = |p: &std::path::Path| Error::output(p, "the COG writer panicked");
        let score_done = score.join().map_err(|_| panicked(&score_cog))??;
        progress.advance(1);
        let mask_done = mask.join().map_err(|_| panicked(&mask_cog))??;
        progress.advance(1);
        // Detect's own timings end when its COGs are written.
        let done = score_done.max(mask_done);
        timings.insert("write_cog", (done - t).as_secs_f64());
        timings.insert("total", (done - t0).as_secs_f64());
        Ok(during)
    })?;
    let during = during?;
    // The working files go: the staging folder is published whole.
    drop(working);
    drop(decoded);
    for work in [&work_score, &work_mask, &work_kept] {
        let _ = std::fs::remove_file(work);
    }
    let _ = std::fs::remove_dir_all(staging.path("decoded"));
    record.timings_s = timings;

    let json = serde_json::to_string_pretty(&record)
        .map_err(|e| Error::output(staging.path(RUN_FILE), e))?;
    std::fs::write(staging.path(RUN_FILE), json)
        .map_err(|e| Error::output(staging.path(RUN_FILE), e))?;
    crate::export::qgis::write_raster_sidecars(staging.dir())?;
    Ok(StagedRun {
        record,
        during,
        staging,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn block_cache_holds_two_block_rows_of_every_file_gdal_reads() {
        // The sample before scene with its red band LZW-compressed, which
        // dunewatch leaves to GDAL; its other files (DEFLATE strips) it
        // decodes itself, and they need no GDAL cache.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi");
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(root.join("before")).unwrap() {
            let p = e.unwrap().path();
            let to = dir.path().join(p.file_name().unwrap());
            if p.to_string_lossy().ends_with("_B04.tif") {
                let src = gdal::Dataset::open(&p).unwrap();
                let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
                let o = gdal::raster::RasterCreationOptions::from_iter(["COMPRESS=LZW"]);
                src.create_copy(&drv, &to, &o).unwrap().close().unwrap();
            } else {
                std::fs::copy(&p, &to).unwrap();
            }
        }
        let b = read::open_scene(dir.path()).unwrap();
        let a = read::open_scene(&root.join("after")).unwrap();
        let pair =
            align::align(b, a, &STAT_BANDS, &OPTIONAL_BANDS, &AlignOptions::default()).unwrap();
        let mut gdal_files = 0;
        let mut expect = 0u64;
        for s in [&pair.before, &pair.after] {
            for ab in s.bands.values() {
                if !read_by_gdal(ab) {
                    continue;
                }
                let ds = gdal::Dataset::open(&ab.file.path).unwrap();
                let band = ds.rasterband(ab.file.index).unwrap();
                let (bw, bh) = band.block_size();
                expect += 2 * (band.size().0.div_ceil(bw) * bw * bh) as u64 * 2;
                gdal_files += 1;
            }
        }
        // The LZW file is GDAL's, the DEFLATE ones read natively are not
        // (the after scene, from another MGRS tile, is warped: GDAL's too).
        assert!(read_by_gdal(&pair.before.bands[&Band::B04]));
        assert!(!read_by_gdal(&pair.before.bands[&Band::B02]));
        assert!(gdal_files > pair.after.bands.len());
        let w = pair.grid.width;
        assert_eq!(block_cache_need(&pair, w, 0), expect);
        assert_eq!(block_cache_need(&pair, w, 1000), expect + 1000);
    }

    #[test]
    fn a_panel_needs_its_blocks_and_one_on_either_side() {
        // A 4096 px panel of a full tile: 10 m files with 1024 px blocks,
        // 20 m files (2048 of their columns), 512 px blocks.
        assert_eq!(panel_blocks(4096, 10980, 10980, 1024), 6);
        assert_eq!(panel_blocks(4096, 10980, 5490, 1024), 4);
        assert_eq!(panel_blocks(4096, 10980, 10980, 512), 10);
        // The whole width, or a file narrower than the panel: every block.
        assert_eq!(panel_blocks(10980, 10980, 10980, 1024), 11);
        assert_eq!(panel_blocks(4096, 5490, 5490, 1024), 6);
        assert_eq!(panel_blocks(4096, 4096, 4096, 4096), 1);
    }
}
