//! Change detection as a streamed, parallel block pipeline whose memory does
//! not grow with the scene:
//!
//! 1. **sample**: a lattice sample of compared pixels in fixed windows spread
//!    over the scene (so it is the same whatever the block size or thread
//!    count); IR-MAD and CVA statistics are fitted on it.
//! 2. **score**: panels of at most 4096 columns, left to right, each in
//!    strips of 128 rows (plus a halo for spatial context), are read by one
//!    thread per worker, each owning its GDAL handles and always the same
//!    files, then scored in parallel column blocks with rayon; one
//!    writer thread owns the score raster and sums the score histogram;
//!    when the threshold is known before the pass (the combined and learned
//!    methods' significance levels, or `--threshold`) it writes the mask too.
//! 3. **threshold**: otherwise Otsu on that histogram, then the mask is
//!    written from the score raster.
//!
//! With an early threshold the score pass can also keep the reflectance
//! around the changed pixels for the sites step ([`kept_pixels`]), so that
//! the sites are described without decoding the scenes again.

pub mod chi2;
pub mod cloud_cells;
pub mod clouds;
pub mod cnn;
pub mod cva;
pub mod indices;
pub mod irmad;
pub mod kept_pixels;
pub mod learned;
pub mod linalg;
pub mod masks;
pub(crate) mod model_file;
pub mod pixels;
pub mod sample;
pub mod score;
pub mod sun;
pub mod threshold;

use crate::align::read_ahead::read_ahead;
use crate::align::{AlignedPair, SceneReader, Window};
use crate::error::{gdal_msg, Error, Result};
use crate::export::raster::create_working;
use crate::per_thread::PerThread;
use crate::progress::Progress;
use crate::read::Band;
use cloud_cells::{CellMask, CloudCells};
use clouds::CellCounts;
use kept_pixels::{KeptBlock, KeptPixels, KeptWriter};
use masks::{MaskReason, REASONS};
use rayon::prelude::*;
use sample::Sample;
pub use score::{Method, Model};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use threshold::Histogram;

/// Bands compared between dates (blue, green, red, NIR, SWIR1, SWIR2).
pub const STAT_BANDS: [Band; 6] = [
    Band::B02,
    Band::B03,
    Band::B04,
    Band::B08,
    Band::B11,
    Band::B12,
];
/// Used when present: B10 (cirrus) for the L1C cloud test.
pub const OPTIONAL_BANDS: [Band; 1] = [Band::B10];

/// Score raster nodata (masked pixels).
pub const SCORE_NODATA: f32 = -1.0;
/// Mask values.
pub const MASK_NO_CHANGE: u8 = 0;
pub const MASK_CHANGE: u8 = 1;
pub const MASK_NODATA: u8 = 255;

#[derive(Debug, Clone)]
pub struct DetectOptions {
    pub method: Method,
    /// Width in pixels of the score pass's column blocks (each
    /// [`STRIP_ROWS`] tall).
    pub block_size: usize,
    /// Fixed threshold on the score; None = the method's default
    /// (a significance level for the combined and IR-MAD scores, the
    /// trained cut for learned and cnn, Otsu for CVA and the indices).
    pub threshold: Option<f32>,
    /// Size of the statistics sample, in pixels.
    pub max_samples: usize,
    /// Weights of the learned method (None: the shipped model).
    pub model: Option<learned::LearnedModel>,
    /// Network of the cnn method (None: the shipped model).
    pub cnn: Option<cnn::CnnModel>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            method: Method::Combined,
            block_size: BLOCK_COLS,
            threshold: None,
            max_samples: 1 << 18,
            model: None,
            cnn: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PixelCounts {
    pub total: u64,
    pub compared: u64,
    pub changed: u64,
    pub changed_fraction: f64,
    pub masked: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectSummary {
    pub method: Method,
    pub threshold: f32,
    pub threshold_source: &'static str,
    pub sample_pixels: usize,
    pub sample_step: usize,
    pub block_size: usize,
    pub model: Model,
    pub pixels: PixelCounts,
    /// Bytes of reflectance the score pass kept for the sites step (a
    /// staging file, gone when the run ends; see [`kept_pixels`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_bytes: Option<u64>,
    pub timings_s: BTreeMap<&'static str, f64>,
}

/// Runs the three passes; writes the score and mask working rasters.
pub fn detect(
    pair: &AlignedPair,
    opts: &DetectOptions,
    score_path: &Path,
    mask_path: &Path,
    progress: &dyn Progress,
) -> Result<DetectSummary> {
    detect_keeping(pair, opts, score_path, mask_path, None, progress).map(|(s, _)| s)
}

/// [`detect`], also keeping the reflectance around the changed pixels in a
/// file at `keep` for the sites step ([`kept_pixels`]). Only a threshold
/// known before scoring says which pixels change during the score pass:
/// with the Otsu methods nothing is kept.
pub fn detect_keeping(
    pair: &AlignedPair,
    opts: &DetectOptions,
    score_path: &Path,
    mask_path: &Path,
    keep: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(DetectSummary, Option<KeptPixels>)> {
    if opts.block_size < 16 {
        return Err(Error::usage("--block-size must be at least 16"));
    }
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let (sample, step) = collect_sample(pair, opts.max_samples, progress)?;
    let model =
        Model::fit_with_models(&sample, opts.method, opts.model.as_ref(), opts.cnn.as_ref())?;
    timings.insert("fit", t.elapsed().as_secs_f64());

    // A threshold known before scoring (the combined and learned methods'
    // significance levels, or --threshold) lets the score pass's writer write
    // the mask too: no second pass over the score raster on one thread.
    let early = opts.threshold.or(opts.method.default_threshold());
    let t = Instant::now();
    let (mut hist, mut reasons, counts, mut changed, kept) = score_pass(
        pair,
        &model,
        opts.block_size,
        score_path,
        early.map(|t| (mask_path, t, keep)),
        progress,
    )?;
    timings.insert("score", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let cells = cloud_cells::decide(&counts, &cloud_cells::Geometry::of(pair));
    if cells.any() {
        let mask = early.map(|t| (mask_path, t, &mut changed));
        remove_cloud_cells(score_path, &cells, &mut hist, &mut reasons, mask)?;
    }
    timings.insert("clouds", t.elapsed().as_secs_f64());

    let compared = reasons[MaskReason::Valid as usize];
    if compared == 0 {
        return Err(Error::invalid("every pixel is masked (no data, cloud, saturation or outside the AOI): nothing to compare"));
    }
    let (threshold, source) = match (opts.threshold, opts.method.default_threshold()) {
        (Some(t), _) => (t, "user"),
        (None, Some(t)) => (t, "significance"),
        (None, None) => (threshold::otsu(&hist), "otsu"),
    };
    let t = Instant::now();
    if early.is_none() {
        changed = mask_pass(score_path, mask_path, threshold, progress)?;
    }
    timings.insert("mask", t.elapsed().as_secs_f64());

    let total = (pair.grid.width * pair.grid.height) as u64;
    let masked = REASONS
        .iter()
        .skip(1)
        .map(|r| (r.name(), reasons[*r as usize]))
        .collect();
    let summary = DetectSummary {
        method: opts.method,
        threshold,
        threshold_source: source,
        sample_pixels: sample.len(),
        sample_step: step,
        block_size: opts.block_size,
        model,
        pixels: PixelCounts {
            total,
            compared,
            changed,
            changed_fraction: changed as f64 / compared as f64,
            masked,
        },
        kept_bytes: kept.as_ref().map(KeptPixels::bytes),
        timings_s: timings,
    };
    Ok((summary, kept))
}

/// Pass 1: compared pixels on a lattice of step `d` (anchored at the grid
/// origin) inside the sample windows (see [`sample::windows`]). Windows are
/// read at full resolution and every d-th pixel kept: GDAL's decimated reads
/// would pick overviews when the file has them, and the statistics would
/// then depend on how the input was encoded.
pub(crate) fn collect_sample(
    pair: &AlignedPair,
    max_samples: usize,
    progress: &dyn Progress,
) -> Result<(Sample, usize)> {
    let g = &pair.grid;
    let windows = sample::windows(g.width, g.height);
    let d = sample::decimation(windows.iter().map(|w| w.len()).sum(), max_samples);
    progress.start("statistics", windows.len() as u64);
    let readers = PerThread::new();
    let parts: Vec<(Sample, [u64; 6])> = windows
        .par_iter()
        .map(|&win| {
            readers.with(
                || Ok(SceneReader::scattered(pair)),
                |reader| -> Result<(Sample, [u64; 6])> {
                    let mut s = Sample::new(STAT_BANDS.len());
                    let mut reasons = [0u64; 6];
                    let px = pixels::read_pixels(reader, pair, win, (win.w, win.h))?;
                    let first = |o: usize| o.div_ceil(d) * d - o;
                    for r in (first(win.y)..win.h).step_by(d) {
                        for c in (first(win.x)..win.w).step_by(d) {
                            let i = r * win.w + c;
                            reasons[px.mask[i] as usize] += 1;
                            if px.mask[i] == MaskReason::Valid {
                                s.push(&px.x(i), &px.y(i));
                            }
                        }
                    }
                    progress.advance(1);
                    Ok((s, reasons))
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut sample = Sample::new(STAT_BANDS.len());
    let mut reasons = [0u64; 6];
    for (p, r) in parts {
        sample.append(p);
        for (a, b) in reasons.iter_mut().zip(r) {
            *a += b;
        }
    }
    if sample.len() < MIN_SAMPLE {
        return Err(too_few_pixels(pair, sample.len(), &reasons));
    }
    Ok((sample, d))
}

/// Fewer compared pixels than this and the change statistics cannot be fitted.
pub const MIN_SAMPLE: usize = 100;

/// Why the statistics found too few comparable pixels: the grid is tiny (an
/// area of interest that is a point or a line), or most sampled pixels were
/// masked, for the reason that masked most.
fn too_few_pixels(pair: &AlignedPair, n: usize, reasons: &[u64; 6]) -> Error {
    let g = &pair.grid;
    let aoi = pair.aoi.is_some();
    let head = format!("only {n} comparable pixels, too few to fit the change statistics");
    if g.width * g.height < MIN_SAMPLE {
        let why = if aoi {
            "the area of interest is too small (a point or a line?)"
        } else {
            "the scenes overlap on a sliver"
        };
        return Error::invalid(format!(
            "{head}: the grid is {} x {} pixels ({why})",
            g.width, g.height
        ));
    }
    let sampled: u64 = reasons.iter().sum();
    let (worst, count) = crate::detect::masks::REASONS[1..]
        .iter()
        .map(|&r| (r, reasons[r as usize]))
        .max_by_key(|&(_, c)| c)
        .unwrap_or((MaskReason::NoData, 0));
    let why = match worst {
        MaskReason::NoData => {
            "no data: a band of the before or after scene is all no-data (or NaN) there"
        }
        MaskReason::Saturated => "saturated: a band is at its maximum value",
        MaskReason::Cloud => "cloud",
        MaskReason::CloudShadow => "cloud shadow",
        MaskReason::OutsideAoi => {
            "outside the area of interest: it covers almost none of the scenes"
        }
        MaskReason::Valid => "valid",
    };
    Error::invalid(format!(
        "{head}: {count} of the {sampled} pixels sampled are masked as {why}"
    ))
}

/// Output rows per strip of the score pass.
pub const STRIP_ROWS: usize = 128;
/// Output columns of a panel of the score pass, at most.
pub const PANEL_COLS: usize = 4096;
/// Default width of the score pass's column blocks. Why 256 and not 512:
/// a block's planes and the combined score's row rings stay in cache, and
/// the last block of a strip keeps one core waiting for half as long. The
/// scores are the same whatever the width (the halo is read with each
/// block); on full tile pairs 256 was about 2% faster in the score pass
/// than 512 (and the learned method too), 128 no faster than 256.
pub const BLOCK_COLS: usize = 256;

/// Columns of the score pass's panels: [`PANEL_COLS`] rounded down to whole
/// blocks (at least one). With the default blocks, 4096: panel edges
/// then fall on file tile edges for the usual tile sizes (256 to 1024 px).
pub fn panel_cols(block_size: usize) -> usize {
    (PANEL_COLS / block_size).max(1) * block_size
}

/// The score pass's output windows: the scene cut into panels of
/// [`panel_cols`] columns, left to right, each taken top to bottom in strips
/// of [`STRIP_ROWS`] rows. Why panels: the windows in memory, and the rows
/// of file tiles GDAL's block cache must hold so that each tile is decoded
/// once within a panel (see [`crate::run::block_cache_need`]), are then the
/// same however wide the scene. A panel is read over its own columns only:
/// the few columns around a seam that the blocks' halos need are carried
/// from one panel to the next (see `score_pass`), so the 10 m file tiles
/// under a seam are not decoded twice (the 20 m ones still are, for the
/// upsampling's one-pixel taps).
pub fn score_windows(width: usize, height: usize, block_size: usize) -> Vec<Window> {
    let panel = panel_cols(block_size);
    let mut v = Vec::new();
    for x in (0..width).step_by(panel) {
        for y in (0..height).step_by(STRIP_ROWS) {
            v.push(Window {
                x,
                y,
                w: panel.min(width - x),
                h: STRIP_ROWS.min(height - y),
            });
        }
    }
    v
}

struct Scored {
    block: Window,
    scores: Vec<f32>,
    kept: Option<KeptBlock>,
    hist: Histogram,
    reasons: [u64; REASONS.len()],
    cells: CellCounts,
}

/// The score histogram, the pixels per mask reason, the cloud test's cell
/// counts, the changed pixels (when the pass wrote the mask) and the kept
/// pixels (when asked for).
type Passed = (
    Histogram,
    [u64; REASONS.len()],
    CellCounts,
    u64,
    Option<KeptPixels>,
);

/// The mask value of a score.
#[inline]
fn mask_value(score: f32, threshold: f32) -> u8 {
    if score == SCORE_NODATA {
        MASK_NODATA
    } else if score >= threshold {
        MASK_CHANGE
    } else {
        MASK_NO_CHANGE
    }
}

/// Pass 2: the scene in the windows of [`score_windows`], each read with a
/// halo of `model.halo()` pixels.
///
/// Reading: [`read_ahead`], one reader thread per worker (none with one
/// worker, so that `--threads 1` uses one core), each owning its GDAL handles
/// and always the same rasters, so every file tile is decoded about once and
/// the next strip is read while this one is scored.
///
/// Scoring: rayon over `block_size`-wide column blocks of the window (plus a
/// column halo); one writer thread owns the score raster, the mask raster
/// when `mask` gives its path and threshold, and the kept pixels' file when
/// it gives that path too.
fn score_pass(
    pair: &AlignedPair,
    model: &Model,
    block_size: usize,
    score_path: &Path,
    mask: Option<(&Path, f32, Option<&Path>)>,
    progress: &dyn Progress,
) -> Result<Passed> {
    let g = &pair.grid;
    let ds = create_working::<f32>(score_path, g, SCORE_NODATA as f64)?;
    let mask_ds = match mask {
        Some((path, t, _)) => Some((create_working::<u8>(path, g, MASK_NODATA as f64)?, path, t)),
        None => None,
    };
    let (keep_at, mut kept) = match mask {
        Some((_, t, Some(path))) => (Some(t), Some(KeptWriter::create(path)?)),
        _ => (None, None),
    };
    let windows = score_windows(g.width, g.height, block_size);
    progress.start("score", windows.len() as u64);
    let items = pixels::items(pair);
    let halo = model.halo();
    let strips = g.height.div_ceil(STRIP_ROWS);
    // Read from the files: the panel's own columns only (so no file tile
    // under a seam is decoded twice), with the halo rows.
    let reads: Vec<Window> = windows
        .iter()
        .map(|w| Window {
            x: w.x,
            w: w.w,
            ..expand(*w, halo, g.width, g.height)
        })
        .collect();
    // Scored: a panel's columns but its last `halo` (scored with the next
    // panel, once its columns are read) and the panel before's last `halo`.
    let outs: Vec<Window> = windows
        .iter()
        .map(|w| {
            let x0 = if w.x == 0 { 0 } else { w.x - halo };
            let x1 = if w.x + w.w == g.width {
                g.width
            } else {
                w.x + w.w - halo
            };
            Window {
                x: x0,
                w: x1 - x0,
                ..*w
            }
        })
        .collect();
    // Per strip, the last 2 x `halo` columns of the panel before: the halo
    // of the columns it left to this one.
    let mut carried: Vec<Option<Vec<Vec<f32>>>> = vec![None; strips];
    // One worker reads inline: `--threads 1` keeps the run on one core.
    let readers = match rayon::current_num_threads() {
        1 => 0,
        n => n,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Scored>(2 * rayon::current_num_threads());

    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Passed> {
            let mut band = ds
                .rasterband(1)
                .map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
            let mut mask_band = match &mask_ds {
                Some((mds, path, t)) => Some((
                    mds.rasterband(1)
                        .map_err(|e| Error::output(path, gdal_msg(&e)))?,
                    *path,
                    *t,
                )),
                None => None,
            };
            let mut hist = Histogram::default();
            let mut reasons = [0u64; REASONS.len()];
            let mut cells = CellCounts::for_pixels(0, 0, g.width, g.height);
            let mut changed = 0u64;
            for s in rx {
                let (at, size) = (
                    (s.block.x as isize, s.block.y as isize),
                    (s.block.w, s.block.h),
                );
                if let Some((mband, path, t)) = &mut mask_band {
                    let m: Vec<u8> = s.scores.iter().map(|&v| mask_value(v, *t)).collect();
                    changed += m.iter().filter(|&&v| v == MASK_CHANGE).count() as u64;
                    let mut buf = gdal::raster::Buffer::new(size, m);
                    mband
                        .write(at, size, &mut buf)
                        .map_err(|e| Error::output(*path, gdal_msg(&e)))?;
                }
                let mut buf = gdal::raster::Buffer::new(size, s.scores);
                band.write(at, size, &mut buf)
                    .map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
                if let (Some(k), Some(w)) = (s.kept, &mut kept) {
                    w.push(k)?;
                }
                hist.merge(&s.hist);
                for (a, b) in reasons.iter_mut().zip(s.reasons) {
                    *a += b;
                }
                cells.merge(&s.cells);
            }
            if let Some((mds, path, _)) = mask_ds {
                mds.close().map_err(|e| Error::output(path, gdal_msg(&e)))?;
            }
            ds.close()
                .map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
            let kept = kept.map(KeptWriter::finish).transpose()?;
            Ok((hist, reasons, cells, changed, kept))
        });
        let scored = read_ahead(
            &reads,
            items.len(),
            readers,
            || Ok(SceneReader::new(pair)),
            |reader, i, w| pixels::read_item(reader, pair, items[i], w, (w.w, w.h)),
            |k, data| {
                let (read, strip) = (reads[k], k % strips);
                let seam = match carried[strip].take() {
                    Some(left) if read.x > 0 => {
                        Some(seam_columns(&left, &data, read, halo, block_size))
                    }
                    _ => None,
                };
                let mut sources = vec![(data.as_slice(), read)];
                if let Some((d, w)) = &seam {
                    sources.push((d.as_slice(), *w));
                }
                score_window(
                    &items,
                    &sources,
                    outs[k],
                    g.width,
                    model,
                    (block_size, keep_at),
                    &tx,
                    score_path,
                )?;
                if read.x + read.w < g.width {
                    carried[strip] = Some(last_columns(&data, read.w, 2 * halo));
                }
                progress.advance(1);
                Ok(())
            },
        );
        // Ends the writer's input.
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::output(score_path, "the score writer panicked"))?;
        scored?;
        written
    })
}

/// The last `n` columns of every item of a window `w` columns wide.
fn last_columns(data: &[Vec<f32>], w: usize, n: usize) -> Vec<Vec<f32>> {
    data.iter()
        .map(|v| {
            v.chunks_exact(w)
                .flat_map(|row| &row[w - n..])
                .copied()
                .collect()
        })
        .collect()
}

/// The columns around a panel's left seam: the `2 * halo` carried from the
/// panel before, then the first `block_size + 2 * halo` of `data` (read
/// over `read`), enough for every block whose halo crosses the seam.
fn seam_columns(
    left: &[Vec<f32>],
    data: &[Vec<f32>],
    read: Window,
    halo: usize,
    block_size: usize,
) -> (Vec<Vec<f32>>, Window) {
    let (lw, rw) = (2 * halo, (block_size + 2 * halo).min(read.w));
    let cols = left
        .iter()
        .zip(data)
        .map(|(l, d)| {
            let mut v = Vec::with_capacity((lw + rw) * read.h);
            for (a, b) in l.chunks_exact(lw).zip(d.chunks_exact(read.w)) {
                v.extend_from_slice(a);
                v.extend_from_slice(&b[..rw]);
            }
            v
        })
        .collect();
    let win = Window {
        x: read.x - lw,
        w: lw + rw,
        ..read
    };
    (cols, win)
}

/// Scores one window `win` in parallel column blocks and hands them to the
/// writer. `sources` are the items read over windows (`data[i]` is item
/// `i`); each block makes its pixels, from its columns plus halo, out of the
/// first source that holds them, so nothing runs serially. With `keep_at`
/// (the threshold) each block also keeps its pixels for the sites.
#[allow(clippy::too_many_arguments)]
fn score_window(
    items: &[pixels::Item],
    sources: &[(&[Vec<f32>], Window)],
    win: Window,
    width: usize,
    model: &Model,
    (block_size, keep_at): (usize, Option<f32>),
    tx: &std::sync::mpsc::SyncSender<Scored>,
    score_path: &Path,
) -> Result<()> {
    let end = win.x + win.w;
    let blocks: Vec<Window> = (win.x..end)
        .step_by(block_size)
        .map(|x| Window {
            x,
            w: block_size.min(end - x),
            ..win
        })
        .collect();
    blocks.par_iter().try_for_each(|&block| {
        let x0 = block.x.saturating_sub(model.halo());
        let x1 = (block.x + block.w + model.halo()).min(width);
        let (data, read) = sources
            .iter()
            .find(|(_, r)| r.x <= x0 && x1 <= r.x + r.w)
            .ok_or_else(|| Error::invalid(format!("internal: no read holds columns {x0}..{x1}")))?;
        let (c0, c1) = (x0 - read.x, x1 - read.x);
        let sub = pixels::assemble_cols(items, data, read.w, c0..c1);
        let sub_read = Window {
            x: x0,
            w: x1 - x0,
            ..*read
        };
        let scored = model.score_block(&sub, sub_read, block);
        let mut hist = Histogram::default();
        let mut reasons = [0u64; REASONS.len()];
        let mut cells = CellCounts::for_pixels(block.x, block.y, block.w, block.h);
        let (ox, oy) = (block.x - sub_read.x, block.y - sub_read.y);
        for r in 0..block.h {
            let row = (oy + r) * sub_read.w + ox;
            for m in &sub.mask[row..row + block.w] {
                reasons[*m as usize] += 1;
            }
            let y = block.y + r;
            model
                .clouds
                .count_row(&sub, row..row + block.w, block.x, y, &mut cells);
        }
        let scores: Vec<f32> = scored
            .into_iter()
            .map(|s| match s {
                Some(v) => {
                    hist.add(v);
                    v
                }
                None => SCORE_NODATA,
            })
            .collect();
        let kept = keep_at.map(|t| KeptBlock::keep(&sub, sub_read, block, &scores, t));
        tx.send(Scored {
            block,
            scores,
            kept,
            hist,
            reasons,
            cells,
        })
        .map_err(|_| Error::output(score_path, "the score writer stopped"))
    })
}

/// Between passes 2 and 3: the pixels of the cells the multi-temporal cloud
/// test masks become nodata in the score raster, leave the compared count
/// and Otsu's histogram, and count as cloud or cloud shadow; in the mask too
/// when the score pass wrote it (`mask`: its path, the threshold and the
/// changed count to correct). Only the 512 px blocks that hold such cells
/// are read and rewritten.
fn remove_cloud_cells(
    score_path: &Path,
    cells: &CloudCells,
    hist: &mut Histogram,
    reasons: &mut [u64; REASONS.len()],
    mask: Option<(&Path, f32, &mut u64)>,
) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::output(score_path, gdal_msg(&e));
    let ds = crate::export::raster::open_for_update(score_path)?;
    let grid = crate::align::Grid::from_dataset(&ds, &score_path.to_string_lossy())?;
    let mut band = ds.rasterband(1).map_err(err)?;
    let mut mask = match mask {
        Some((path, t, changed)) => Some((
            crate::export::raster::open_for_update(path)?,
            path,
            t,
            changed,
        )),
        None => None,
    };
    for b in grid.blocks(512) {
        let touched = (b.y / clouds::CELL..(b.y + b.h).div_ceil(clouds::CELL)).any(|cy| {
            (b.x / clouds::CELL..(b.x + b.w).div_ceil(clouds::CELL))
                .any(|cx| cells.cells[cy * cells.w + cx] != CellMask::Clear)
        });
        if !touched {
            continue;
        }
        let (at, size) = ((b.x as isize, b.y as isize), (b.w, b.h));
        let mut s = band.read_as::<f32>(at, size, size, None).map_err(err)?;
        let mut touched_mask = false;
        for (i, v) in s.data_mut().iter_mut().enumerate() {
            let reason = match cells.at(b.x + i % b.w, b.y + i / b.w) {
                CellMask::Clear => continue,
                CellMask::Cloud => MaskReason::Cloud,
                CellMask::Shadow => MaskReason::CloudShadow,
            };
            if *v != SCORE_NODATA {
                hist.remove(*v);
                reasons[MaskReason::Valid as usize] -= 1;
                reasons[reason as usize] += 1;
                if let Some((_, _, t, changed)) = &mut mask {
                    if mask_value(*v, *t) == MASK_CHANGE {
                        **changed -= 1;
                    }
                    touched_mask = true;
                }
                *v = SCORE_NODATA;
            }
        }
        band.write(at, size, &mut s).map_err(err)?;
        if let (true, Some((mds, path, t, _))) = (touched_mask, &mask) {
            // The block's mask anew from its final scores.
            let m = s.data().iter().map(|&v| mask_value(v, *t)).collect();
            let mut buf = gdal::raster::Buffer::new(size, m);
            mds.rasterband(1)
                .and_then(|mut mb| mb.write(at, size, &mut buf))
                .map_err(|e| Error::output(path, gdal_msg(&e)))?;
        }
    }
    ds.close().map_err(err)?;
    if let Some((mds, path, _, _)) = mask {
        mds.close().map_err(|e| Error::output(path, gdal_msg(&e)))?;
    }
    Ok(())
}

/// Pass 3: the mask from the score raster and the threshold. Returns the
/// number of changed pixels.
fn mask_pass(
    score_path: &Path,
    mask_path: &Path,
    threshold: f32,
    progress: &dyn Progress,
) -> Result<u64> {
    let src =
        gdal::Dataset::open(score_path).map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
    let grid = crate::align::Grid::from_dataset(&src, &score_path.to_string_lossy())?;
    let score = src
        .rasterband(1)
        .map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
    let ds = create_working::<u8>(mask_path, &grid, MASK_NODATA as f64)?;
    let mut changed = 0u64;
    {
        let mut band = ds
            .rasterband(1)
            .map_err(|e| Error::output(mask_path, gdal_msg(&e)))?;
        let blocks = grid.blocks(512);
        progress.start("mask", blocks.len() as u64);
        for b in blocks {
            progress.advance(1);
            let s = score
                .read_as::<f32>((b.x as isize, b.y as isize), (b.w, b.h), (b.w, b.h), None)
                .map_err(|e| Error::output(score_path, gdal_msg(&e)))?;
            let m: Vec<u8> = s.data().iter().map(|&v| mask_value(v, threshold)).collect();
            changed += m.iter().filter(|&&v| v == MASK_CHANGE).count() as u64;
            let mut buf = gdal::raster::Buffer::new((b.w, b.h), m);
            band.write((b.x as isize, b.y as isize), (b.w, b.h), &mut buf)
                .map_err(|e| Error::output(mask_path, gdal_msg(&e)))?;
        }
    }
    ds.close()
        .map_err(|e| Error::output(mask_path, gdal_msg(&e)))?;
    Ok(changed)
}

/// The block grown by `halo` on every side, clipped to the grid.
pub(crate) fn expand(b: Window, halo: usize, width: usize, height: usize) -> Window {
    let x0 = b.x.saturating_sub(halo);
    let y0 = b.y.saturating_sub(halo);
    let x1 = (b.x + b.w + halo).min(width);
    let y1 = (b.y + b.h + halo).min(height);
    Window {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_windows_cover_the_grid_once_in_whole_blocks_row_by_row() {
        for (w, h, bs) in [
            (10980, 300, 512),
            (5490, 129, 512),
            (700, 50, 4096),
            (2048, 128, 512),
        ] {
            let wins = score_windows(w, h, bs);
            let mut seen = vec![0u8; w * h];
            for win in &wins {
                assert!(win.w > 0 && win.h > 0 && win.w <= panel_cols(bs));
                // Panels start on block edges (file tile edges, for the
                // usual tile sizes).
                assert_eq!(win.x % bs, 0);
                for y in win.y..win.y + win.h {
                    for x in win.x..win.x + win.w {
                        seen[y * w + x] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{w} x {h}");
            // A panel's strips top to bottom, panels left to right.
            assert!(wins.windows(2).all(|p| (p[0].x, p[0].y) < (p[1].x, p[1].y)));
        }
        assert_eq!(score_windows(10980, 128, 512).len(), 3);
        assert_eq!(panel_cols(512), 4096);
        assert_eq!(panel_cols(5000), 5000);
    }
}
