//! Describing every site from strips of the rasters, read once and ahead of
//! use.
//!
//! Sites are taken panel by panel (columns, as the score pass reads the
//! scene), each strip by strip from the top. What a description needs
//! (labels, cut from [`LabelRuns`]; score and the statistics bands of both
//! dates, read from their rasters) is taken in
//! chunks of [`STRIP_ROWS`] rows by [`read_ahead`], each chunk over the runs
//! of columns its sites span: the next chunk is read while the sites of the
//! held ones are described. Every site whose window starts in a strip and
//! ends within [`STRIP_MARGIN`] rows below it is cut from the held pieces, so
//! each file tile is decoded about once however many sites it holds
//! (reading each site's window on its own decoded the same tiles again for
//! every site, which on a full tile with tens of thousands of sites took
//! longer than detection), and rows and columns without sites are not read
//! at all (a desert tile with a few dozen sites reads a small part of the
//! scene again). Taller or decimated sites are read on their own. Panels
//! keep the chunks in memory, and the file tiles GDAL's block cache must hold
//! for each to be decoded once, the same however wide the scene; a tile
//! under a seam is decoded for both panels when sites cross it.
//!
//! Inside `detect`, the bands come from the pixels the score pass kept
//! ([`crate::detect::kept_pixels`]): the strips hold labels, score and the
//! kept pixels of their rows, and each site's window is cut from those. (Cutting the bands from
//! strips too touched the whole grid on a full tile with 77 000 sites,
//! where the sites' windows cover a sixth of it.)

use super::area::PixelMetres;
use super::components::Labelled;
use super::describe::{describe, open_worker, read_site_window, site_window, SiteWindow, Worker};
use super::label_runs::LabelRuns;
use super::run_info::RunInfo;
use super::scenes::{self, Scenes};
use super::spectral::Background;
use super::{window_read, Site, SitesOptions};
use crate::align::read_ahead::read_ahead;
use crate::align::reader::Date;
use crate::align::{SceneReader, Window};
use crate::detect::kept_pixels::{KeptPiece, KeptPixels, PLANES};
use crate::detect::STAT_BANDS;
use crate::error::{gdal_msg, Error, Result};
use crate::progress::Progress;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::ops::Range;

/// Rows of the run grid in one chunk (and one strip of sites).
pub(super) const STRIP_ROWS: usize = 128;
/// Rows held below a strip, so sites starting in it up to this tall are cut
/// from memory.
const STRIP_MARGIN: usize = 128;

/// Column runs of a chunk closer than this are read as one (a few hundred
/// pixels more to decode cost less than another round of reads).
const RUN_GAP: usize = 256;

/// Sorts column ranges and merges those that overlap or lie within `gap` of
/// each other.
fn merge_runs(mut cols: Vec<Range<usize>>, gap: usize) -> Vec<Range<usize>> {
    cols.sort_by_key(|c| c.start);
    let mut out: Vec<Range<usize>> = Vec::new();
    for c in cols {
        match out.last_mut() {
            Some(last) if c.start <= last.end + gap => last.end = last.end.max(c.end),
            _ => out.push(c),
        }
    }
    out
}

/// Rows of a chunk, over one run of columns, of every raster a site
/// description needs.
struct Piece {
    /// The strip key of its chunk (see `describe_all`).
    key: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    labels: Vec<u32>,
    /// Empty when the run has no score raster.
    score: Vec<f32>,
    /// Statistics bands, before then after (empty with kept pixels).
    bands: Vec<Vec<f32>>,
    /// The kept pixels of the piece's rows, when the run has them.
    kept: Option<KeptPiece>,
}

/// One raster of a chunk, as read.
enum Item {
    Labels(Vec<u32>),
    Float(Vec<f32>),
    Kept(KeptPiece),
}

/// Item order: labels, score, then the statistics bands before and after,
/// or the kept pixels.
const N_ITEMS: usize = 2 + 2 * STAT_BANDS.len();
/// Items with kept pixels.
const N_ITEMS_KEPT: usize = 3;

/// A reader thread's handles.
struct Handles<'a> {
    full_res: SceneReader<'a>,
    score: Option<gdal::Dataset>,
}

fn read_item(
    h: &mut Handles,
    scenes: &Scenes,
    run: &RunInfo,
    labels: &LabelRuns,
    item: usize,
    win: Window,
) -> Result<Item> {
    let shape = (win.w, win.h);
    Ok(match item {
        0 => Item::Labels(labels.window(win)),
        1 => match (&h.score, &run.score) {
            (Some(ds), Some(path)) => {
                let band = ds
                    .rasterband(1)
                    .map_err(|e| Error::input(path, gdal_msg(&e)))?;
                Item::Float(
                    window_read::read_band::<f32>(&band, win, shape)
                        .map_err(|e| Error::input(path, gdal_msg(&e)))?,
                )
            }
            _ => Item::Float(Vec::new()),
        },
        2 if scenes.kept.is_some() => Item::Kept(scenes.kept.as_ref().expect("checked").load(win)?),
        i => {
            let k = (i - 2) % STAT_BANDS.len();
            let date = if i - 2 < STAT_BANDS.len() {
                Date::Before
            } else {
                Date::After
            };
            let mut v = scenes::read_bands(
                &mut h.full_res,
                scenes,
                date,
                &STAT_BANDS[k..k + 1],
                win,
                shape,
            )?;
            Item::Float(v.pop().unwrap_or_default())
        }
    })
}

impl Piece {
    fn new(win: Window, items: Vec<Item>) -> Piece {
        let mut it = items.into_iter();
        let labels = match it.next() {
            Some(Item::Labels(v)) => v,
            _ => unreachable!("item 0 is the labels"),
        };
        let (mut floats, mut kept) = (Vec::new(), None);
        for item in it {
            match item {
                Item::Float(v) => floats.push(v),
                Item::Kept(k) => kept = Some(k),
                Item::Labels(_) => unreachable!("only item 0 is the labels"),
            }
        }
        let mut floats = floats.into_iter();
        let score = floats.next().unwrap_or_default();
        Piece {
            key: 0,
            rows: win.y..win.y + win.h,
            cols: win.x..win.x + win.w,
            labels,
            score,
            bands: floats.collect(),
            kept,
        }
    }
}

/// `win` (full resolution) cut from the held pieces, which cover it.
fn take<T: Copy>(held: &VecDeque<Piece>, win: Window, pick: impl Fn(&Piece) -> &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(win.len());
    for r in win.y..win.y + win.h {
        let p = held
            .iter()
            .find(|p| p.rows.contains(&r) && p.cols.start <= win.x && win.x + win.w <= p.cols.end)
            .expect("the pieces of a strip's sites are held");
        let at = (r - p.rows.start) * p.cols.len() + win.x - p.cols.start;
        out.extend_from_slice(&pick(p)[at..at + win.w]);
    }
    out
}

/// The bands come from the pieces' kept pixels when `kept` is given (the
/// pieces then hold no bands).
fn cut(
    held: &VecDeque<Piece>,
    kept: Option<&KeptPixels>,
    win: Window,
    shape: (usize, usize),
    d: usize,
) -> Result<SiteWindow> {
    let has_score = held.front().is_some_and(|c| !c.score.is_empty());
    let (before, after) = match kept {
        Some(k) => {
            // Each row of the window lies in one held piece.
            let mut planes = vec![vec![f32::NAN; win.len()]; PLANES];
            let overlaps = |p: &&Piece| {
                p.rows.start < win.y + win.h
                    && win.y < p.rows.end
                    && p.cols.start < win.x + win.w
                    && win.x < p.cols.end
            };
            for piece in held.iter().filter(overlaps).filter_map(|p| p.kept.as_ref()) {
                piece.fill(k, win, &mut planes);
            }
            let after = planes.split_off(STAT_BANDS.len());
            (planes, after)
        }
        None => {
            let mut b: Vec<Vec<f32>> = (0..2 * STAT_BANDS.len())
                .map(|k| take(held, win, |c| &c.bands[k]))
                .collect();
            let a = b.split_off(STAT_BANDS.len());
            (b, a)
        }
    };
    Ok(SiteWindow {
        win,
        shape,
        d,
        labels: take(held, win, |c| &c.labels),
        score: has_score.then(|| take(held, win, |c| &c.score)),
        before,
        after,
    })
}

/// Describes every site (see the module's comment); returns them in id order.
pub(super) fn describe_all(
    scenes: &Scenes,
    run: &RunInfo,
    opts: &SitesOptions,
    labels: &LabelRuns,
    labelled: &Labelled,
    bg: &Background,
    progress: &dyn Progress,
) -> Result<Vec<Site>> {
    let g = &run.grid;
    let comps = &labelled.components;
    let site_of_label = &labelled.site_of_label;
    let workers = crate::per_thread::PerThread::new();
    let metres = PixelMetres::of(g);
    let n_chunks = g.height.div_ceil(STRIP_ROWS);
    // Strips are keyed panel-major (`panel * n_chunks + chunk`), so the scene
    // is taken one panel of columns at a time, top to bottom, as the score
    // pass does: GDAL's block cache then needs the file tiles under a panel,
    // not under the whole width. A site belongs to the panel its window
    // starts in; the pieces read for it may reach a little into the next
    // panel (the cache holds a block on either side of a panel).
    let panel_cols = opts.panel_cols.max(1);
    let n_keys = g.width.div_ceil(panel_cols).max(1) * n_chunks;
    // Sites by strip, in id order; the others are read on their own.
    let mut by_strip: Vec<Vec<usize>> = vec![Vec::new(); n_keys];
    let mut alone = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        let (win, _, d) = site_window(c, g, opts.max_window_px);
        let strip = win.y / STRIP_ROWS;
        if d == 1 && win.y + win.h <= (strip + 1) * STRIP_ROWS + STRIP_MARGIN {
            by_strip[(win.x / panel_cols) * n_chunks + strip].push(i);
        } else {
            alone.push(i);
        }
    }
    // The last chunk strip `key`'s sites lie in, in the same panel.
    let last_chunk = |key: usize| {
        let (panel, k) = (key / n_chunks, key % n_chunks);
        panel * n_chunks + (k + STRIP_MARGIN.div_ceil(STRIP_ROWS)).min(n_chunks - 1)
    };
    let strips: Vec<usize> = (0..n_keys).filter(|&k| !by_strip[k].is_empty()).collect();
    // Per chunk of a panel, the columns its sites span, merged into runs.
    let mut spans: Vec<Vec<Range<usize>>> = vec![Vec::new(); n_keys];
    for &k in &strips {
        for &i in &by_strip[k] {
            let (win, _, _) = site_window(&comps[i], g, opts.max_window_px);
            for span in &mut spans[k..=last_chunk(k)] {
                span.push(win.x..win.x + win.w);
            }
        }
    }
    // (key, window) of each piece, in key order.
    let keyed: Vec<(usize, Window)> = spans
        .into_iter()
        .enumerate()
        .flat_map(|(key, cols)| {
            let y = (key % n_chunks) * STRIP_ROWS;
            merge_runs(cols, RUN_GAP).into_iter().map(move |c| {
                let win = Window {
                    x: c.start,
                    y,
                    w: c.len(),
                    h: STRIP_ROWS.min(g.height - y),
                };
                (key, win)
            })
        })
        .collect();
    let pieces: Vec<Window> = keyed.iter().map(|&(_, w)| w).collect();

    // Describes sites `ids` in parallel, each from the window `window` gives.
    let describe_ids = |ids: &[usize],
                        window: &(dyn Fn(&mut Worker, usize) -> Result<SiteWindow> + Sync)|
     -> Result<Vec<Site>> {
        ids.par_iter()
            .map(|&i| {
                workers.with(
                    || open_worker(scenes, run),
                    |w| {
                        let sw = window(w, i)?;
                        let c = &comps[i];
                        describe(
                            &w.to_lonlat.0,
                            &metres,
                            run,
                            i as u32 + 1,
                            c,
                            site_of_label,
                            bg,
                            sw,
                        )
                    },
                )
            })
            .collect()
    };
    let mut out: Vec<Option<Site>> = vec![None; comps.len()];
    progress.start("describe sites", comps.len() as u64);
    let readers = match rayon::current_num_threads() {
        1 => 0,
        n => n,
    };
    let mut held: VecDeque<Piece> = VecDeque::new();
    // The first strip of `strips` not described yet.
    let mut next = 0;
    // Kept pixels hold the bands near every site: the strips then read
    // labels, score and the kept pixels of their rows.
    let kept = scenes.kept.as_deref();
    let n_items = if kept.is_some() {
        N_ITEMS_KEPT
    } else {
        N_ITEMS
    };
    read_ahead(
        &pieces,
        n_items,
        readers,
        || {
            Ok(Handles {
                full_res: SceneReader::new(scenes.full_res()),
                score: match &run.score {
                    Some(p) => Some(
                        super::run_info::open_run_raster(p)
                            .map_err(|e| Error::input(p, gdal_msg(&e)))?,
                    ),
                    None => None,
                },
            })
        },
        |h, item, win| read_item(h, scenes, run, labels, item, win),
        |k, items| {
            let key = keyed[k].0;
            held.push_back(Piece {
                key,
                ..Piece::new(pieces[k], items)
            });
            if keyed.get(k + 1).is_some_and(|p| p.0 == key) {
                return Ok(()); // more of this chunk to come
            }
            while next < strips.len() && last_chunk(strips[next]) <= key {
                let ids = &by_strip[strips[next]];
                let sites = describe_ids(ids, &|_, i| {
                    let (win, shape, d) = site_window(&comps[i], g, opts.max_window_px);
                    cut(&held, kept, win, shape, d)
                })?;
                progress.advance(ids.len() as u64);
                for (&i, s) in ids.iter().zip(sites) {
                    out[i] = Some(s);
                }
                next += 1;
                // Strips of the scenes' bands are tens of MB: their freed
                // heap goes back every 4 strips (512 rows; after each strip
                // cost more in page faults than it saved). With kept pixels
                // a strip holds labels and scores only, and trimming just
                // made the sites' small buffers fault in again: full mirrored
                // pair, 907k -> 360k page faults, system time 4.1 -> 2.6 s,
                // `describe` 3.4 -> 2.5 s, the same peak RSS.
                if kept.is_none() && next % 4 == 0 {
                    crate::run::release_free_memory();
                }
            }
            let first_needed = strips.get(next).copied().unwrap_or(usize::MAX);
            while held.front().is_some_and(|p| p.key < first_needed) {
                held.pop_front();
            }
            Ok(())
        },
    )?;
    drop(held);
    let sites = describe_ids(&alone, &|w, i| {
        read_site_window(w, scenes, run, opts, labels, &comps[i])
    })?;
    progress.advance(alone.len() as u64);
    for (&i, s) in alone.iter().zip(sites) {
        out[i] = Some(s);
    }
    Ok(out
        .into_iter()
        .map(|s| s.expect("every site described"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_runs_merge_when_they_overlap_or_nearly_touch() {
        assert_eq!(
            merge_runs(vec![500..600, 0..10, 5..20, 620..700, 2000..2100], 30),
            vec![0..20, 500..700, 2000..2100]
        );
        assert_eq!(merge_runs(Vec::new(), 30), Vec::<Range<usize>>::new());
    }

    /// A piece over `win` whose every raster holds `row * 1000 + col`.
    fn piece(win: Window) -> Piece {
        let v: Vec<f32> = (win.y..win.y + win.h)
            .flat_map(|r| (win.x..win.x + win.w).map(move |c| (r * 1000 + c) as f32))
            .collect();
        let mut items = vec![Item::Labels(v.iter().map(|&x| x as u32).collect())];
        items.extend((0..N_ITEMS - 1).map(|_| Item::Float(v.clone())));
        Piece::new(win, items)
    }

    #[test]
    fn site_windows_are_cut_from_the_pieces_that_hold_them() {
        let w = |x, y, w, h| Window { x, y, w, h };
        // Two chunks, each read over two runs of columns.
        let held: VecDeque<Piece> = [
            w(10, 0, 40, 4),
            w(300, 0, 50, 4),
            w(10, 4, 40, 4),
            w(300, 4, 50, 4),
        ]
        .into_iter()
        .map(piece)
        .collect();
        for win in [w(12, 2, 5, 4), w(320, 1, 30, 7), w(10, 0, 40, 8)] {
            let sw = cut(&held, None, win, (win.w, win.h), 1).unwrap();
            let expect: Vec<f32> = (win.y..win.y + win.h)
                .flat_map(|r| (win.x..win.x + win.w).map(move |c| (r * 1000 + c) as f32))
                .collect();
            assert_eq!(
                sw.labels,
                expect.iter().map(|&x| x as u32).collect::<Vec<_>>()
            );
            assert_eq!(sw.score.as_deref(), Some(&expect[..]));
            for b in sw.before.iter().chain(&sw.after) {
                assert_eq!(b, &expect);
            }
        }
    }
}
