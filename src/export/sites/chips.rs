//! `chips/<id>.png` for the top sites: before | after | change, side by side.
//!
//! Each panel shows the same window around the site (its bounding box grown
//! by 60% plus 8 pixels a side, at least 48 pixels), enlarged by a whole
//! factor to about 240 pixels (or read decimated when the window is larger).
//! Before and after are true colour (B04, B03, B02) with one robust 2-98%
//! stretch per band over both dates, so a brightness change stays visible.
//! The change panel is the after image in grey with the run's change mask
//! in orange, masked pixels in blue and the site filled in red. The site
//! outline is drawn in yellow on every panel; a scale bar with its length
//! in metres sits on the before panel, and the PNG's tEXt chunks repeat the
//! scale, the site and the dates.

use super::image::{enlarge, format_metres, nice_length, rgb, stretch, Canvas};
use super::Context;
use crate::align::reader::Date;
use crate::align::{SceneReader, Window};
use crate::error::{gdal_msg, Error, Result};
use crate::read::Band;
use crate::sites::scenes::{read_bands, Scenes};
use crate::sites::{pixel_metres, Site};
use rayon::prelude::*;
use std::path::Path;

/// Panel side the chips aim at, in PNG pixels.
pub const PANEL: usize = 240;
const GAP: usize = 6;
const TITLE: usize = 22;

pub struct Chip {
    pub id: u32,
    pub rank: u32,
    /// Relative to the run folder.
    pub file: String,
    pub png: Vec<u8>,
    pub scale_bar_m: f64,
    pub metres_per_png_px: f64,
}

/// The chip window on the run grid for a site.
pub fn chip_window(s: &Site, gw: usize, gh: usize) -> Window {
    window_of(s.bbox_px, gw, gh)
}

/// The chip window on the run grid for inclusive pixel bounds.
pub fn window_of(bbox_px: [usize; 4], gw: usize, gh: usize) -> Window {
    let [c0, r0, c1, r1] = bbox_px;
    let side = ((((c1 - c0 + 1).max(r1 - r0 + 1)) as f64 * 1.6) as usize + 16).max(48);
    let (w, h) = (side.min(gw), side.min(gh));
    let cx = (c0 + c1).div_ceil(2);
    let cy = (r0 + r1).div_ceil(2);
    let x = cx.saturating_sub(w / 2).min(gw - w);
    let y = cy.saturating_sub(h / 2).min(gh - h);
    Window { x, y, w, h }
}

const RGB: [Band; 3] = [Band::B04, Band::B03, Band::B02];

/// Reads true colour of both dates over `win` into `shape`, with a shared stretch.
pub fn true_colour(
    reader: &mut SceneReader,
    scenes: &Scenes,
    win: Window,
    shape: (usize, usize),
) -> Result<(Canvas, Canvas)> {
    let b = read_bands(reader, scenes, Date::Before, &RGB, win, shape)?;
    let a = read_bands(reader, scenes, Date::After, &RGB, win, shape)?;
    let st: [(f32, f32); 3] = std::array::from_fn(|k| stretch(&[&b[k], &a[k]]));
    Ok((
        rgb(&b[0], &b[1], &b[2], shape.0, shape.1, st),
        rgb(&a[0], &a[1], &a[2], shape.0, shape.1, st),
    ))
}

/// What a chip shows: a site or a compound.
struct Subject<'a> {
    bbox_px: [usize; 4],
    /// Outline rings in run grid pixel coordinates.
    rings: Vec<&'a [(f64, f64)]>,
    /// Whether the outline is filled in the change panel (a site's pixels;
    /// a compound's hull is only drawn).
    fill: bool,
    title: String,
    colour: [u8; 3],
    lat: f64,
}

impl<'a> Subject<'a> {
    fn site(s: &'a Site) -> Subject<'a> {
        Subject {
            bbox_px: s.bbox_px,
            rings: s
                .outline_px
                .iter()
                .flatten()
                .map(|r| r.as_slice())
                .collect(),
            fill: true,
            title: format!(
                "#{} {}  SCORE {:.2}  {}  SITE {}",
                s.rank,
                s.kind.name().replace('_', " "),
                s.score,
                area_text(s.area_m2),
                s.id
            ),
            colour: s.kind.colour(),
            lat: s.lat,
        }
    }
}

fn make_chip<'a>(
    (reader, full_res): (&mut SceneReader<'a>, &mut SceneReader<'a>),
    mask: &gdal::Dataset,
    mask_path: &Path,
    ctx: &Context,
    scenes: &Scenes,
    s: &Subject,
) -> Result<(Canvas, f64, f64)> {
    let g = &ctx.run.grid;
    let win = window_of(s.bbox_px, g.width, g.height);
    let long = win.w.max(win.h);
    let (shape, k) = if long <= PANEL {
        ((win.w, win.h), (PANEL / long).max(1))
    } else {
        (
            ((win.w * PANEL / long).max(1), (win.h * PANEL / long).max(1)),
            1,
        )
    };
    // Full resolution from the decoded JPEG2000 or remote copies when
    // `detect` made them (the same numbers); decimated from the files' own
    // overviews. A decimation under 1.5 reads no overview (GDAL takes one
    // from 1.67 for a factor-2 level), so it reads the same full-resolution
    // pixels, from the copies too.
    let reader = if 2 * long < 3 * PANEL {
        full_res
    } else {
        reader
    };
    let (before, after) = true_colour(reader, scenes, win, shape)?;
    let mb = mask
        .rasterband(1)
        .map_err(|e| Error::input(mask_path, gdal_msg(&e)))?;
    let mv = crate::sites::window_read::read_band::<u8>(&mb, win, shape)
        .map_err(|e| Error::input(mask_path, gdal_msg(&e)))?;
    let mut change = Canvas::new(shape.0, shape.1, [0, 0, 0]);
    for (i, m) in mv.iter().enumerate() {
        let p = after.get(i % shape.0, i / shape.0);
        let l = ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 3) as f32 * 0.75;
        let (x, y) = ((i % shape.0) as i64, (i / shape.0) as i64);
        change.set(x, y, [l as u8; 3]);
        match m {
            1 => change.blend(x, y, [255, 150, 0], 0.45),
            255 => change.blend(x, y, [60, 90, 200], 0.35),
            _ => {}
        }
    }
    let (before, after, mut change) =
        (enlarge(&before, k), enlarge(&after, k), enlarge(&change, k));
    // PNG pixels per grid pixel.
    let sc = before.w as f64 / win.w as f64;
    let rings: Vec<Vec<(f64, f64)>> = s
        .rings
        .iter()
        .map(|r| {
            r.iter()
                .map(|&(x, y)| ((x - win.x as f64) * sc, (y - win.y as f64) * sc))
                .collect()
        })
        .collect();
    if s.fill {
        change.fill_rings(&rings, [255, 0, 0], 0.45);
    }

    let (pw, ph) = (before.w, before.h);
    let width = 3 * pw + 4 * GAP;
    let height = TITLE + ph + 2 * GAP;
    let mut c = Canvas::new(width, height, [24, 24, 28]);
    c.text(GAP as i64, 6, &s.title, 2, [255, 255, 255]);
    c.fill_rect(0, 0, 3, TITLE as i64, s.colour);
    let t = if sc >= 3.0 { 2 } else { 1 };
    let dates = [
        format!("BEFORE {}", ctx.scene.before_date.as_deref().unwrap_or("")),
        format!("AFTER {}", ctx.scene.after_date.as_deref().unwrap_or("")),
        "CHANGE".to_string(),
    ];
    for (i, (mut p, label)) in [before, after, change].into_iter().zip(dates).enumerate() {
        p.rings(&rings, [255, 230, 0], t);
        p.text(4, 4, label.trim(), 2, [255, 255, 255]);
        c.paste(&p, (GAP + i * (pw + GAP)) as i64, (TITLE + GAP) as i64);
    }
    let (mx, _) = pixel_metres(g, s.lat);
    let m_per_px = mx * win.w as f64 / pw as f64;
    let bar = nice_length(0.4 * pw as f64 * m_per_px);
    c.scale_bar(
        (GAP + 6) as i64,
        (TITLE + GAP + ph - 6) as i64,
        bar,
        m_per_px,
    );
    Ok((c, bar, m_per_px))
}

fn area_text(m2: f64) -> String {
    if m2 >= 10_000.0 {
        format!("{:.1} HA", m2 / 10_000.0)
    } else {
        format!("{:.0} m2", m2)
    }
}

/// One worker's readers for drawing chips: the scenes on the run grid, at
/// full resolution, and the run's mask.
fn chip_readers<'a>(
    scenes: &'a Scenes,
    mask_path: &Path,
) -> Result<(SceneReader<'a>, SceneReader<'a>, gdal::Dataset)> {
    Ok((
        SceneReader::scattered(&scenes.pair),
        SceneReader::scattered(scenes.full_res()),
        crate::sites::run_info::open_run_raster(mask_path)
            .map_err(|e| Error::input(mask_path, gdal_msg(&e)))?,
    ))
}

/// Writes chips for the top `ctx.opts.chips` sites into `dir` (in parallel).
pub fn write_all(
    dir: &Path,
    ctx: &Context,
    scenes: &Scenes,
    mask_path: &Path,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Chip>> {
    let top: Vec<&Site> = ctx.sites.iter().take(ctx.opts.chips).collect();
    progress.start("chips", top.len() as u64);
    let workers = crate::per_thread::PerThread::new();
    top.par_iter()
        .map(|s| {
            workers.with(
                || chip_readers(scenes, mask_path),
                |(reader, full_res, mask)| -> Result<Chip> {
                    let (c, bar, mpp) = make_chip(
                        (reader, full_res),
                        mask,
                        mask_path,
                        ctx,
                        scenes,
                        &Subject::site(s),
                    )?;
                    let name = format!("{}.png", s.id);
                    let texts = [
                        (
                            "Title",
                            format!(
                                "dunewatch site {} (rank {}, {})",
                                s.id,
                                s.rank,
                                s.kind.name()
                            ),
                        ),
                        (
                            "Description",
                            format!(
                            "before {} | after {} | change; centroid {:.6} E {:.6} N; score {:.3}",
                            ctx.scene.before_date.as_deref().unwrap_or("?"),
                            ctx.scene.after_date.as_deref().unwrap_or("?"),
                            s.lon,
                            s.lat,
                            s.score
                        ),
                        ),
                        (
                            "Scale",
                            format!(
                                "scale bar {}; {:.2} m per image pixel",
                                format_metres(bar),
                                mpp
                            ),
                        ),
                        ("Software", format!("dunewatch {}", crate::VERSION)),
                    ];
                    let png = c.write_png(&dir.join(&name), &texts)?;
                    progress.advance(1);
                    Ok(Chip {
                        id: s.id,
                        rank: s.rank,
                        file: format!("chips/{name}"),
                        png,
                        scale_bar_m: bar,
                        metres_per_png_px: mpp,
                    })
                },
            )
        })
        .collect()
}

/// Colour of compounds on maps, chips and KML (RGB): apart from every kind's.
pub const COMPOUND_COLOUR: [u8; 3] = [0, 220, 255];

/// Writes `chips/compound-<id>.png` for the top `ctx.opts.chips` compounds
/// (in parallel): the window round the compound's members, its hull drawn.
pub fn write_compounds(
    dir: &Path,
    ctx: &Context,
    scenes: &Scenes,
    mask_path: &Path,
) -> Result<Vec<Chip>> {
    let top: Vec<&crate::sites::compounds::Compound> =
        ctx.compounds.iter().take(ctx.opts.chips).collect();
    let workers = crate::per_thread::PerThread::new();
    top.par_iter()
        .map(|c| {
            workers.with(
                || chip_readers(scenes, mask_path),
                |(reader, full_res, mask)| -> Result<Chip> {
                    let subject = Subject {
                        bbox_px: c.bbox_px,
                        rings: vec![c.outline_px.as_slice()],
                        fill: false,
                        title: format!(
                            "COMPOUND #{}  SCORE {:.2}  {} SITES  {}",
                            c.rank,
                            c.score,
                            c.members.len(),
                            area_text(c.area_m2)
                        ),
                        colour: COMPOUND_COLOUR,
                        lat: c.lat,
                    };
                    let (canvas, bar, mpp) =
                        make_chip((reader, full_res), mask, mask_path, ctx, scenes, &subject)?;
                    let name = format!("compound-{}.png", c.id);
                    let texts = [
                        (
                            "Title",
                            format!("dunewatch compound {} (rank {})", c.id, c.rank),
                        ),
                        (
                            "Description",
                            format!(
                                "before {} | after {} | change; centre {:.6} E {:.6} N; score {:.3}; sites {:?}",
                                ctx.scene.before_date.as_deref().unwrap_or("?"),
                                ctx.scene.after_date.as_deref().unwrap_or("?"),
                                c.lon,
                                c.lat,
                                c.score,
                                c.members
                            ),
                        ),
                        (
                            "Scale",
                            format!(
                                "scale bar {}; {:.2} m per image pixel",
                                format_metres(bar),
                                mpp
                            ),
                        ),
                        ("Software", format!("dunewatch {}", crate::VERSION)),
                    ];
                    let png = canvas.write_png(&dir.join(&name), &texts)?;
                    Ok(Chip {
                        id: c.id,
                        rank: c.rank,
                        file: format!("chips/{name}"),
                        png,
                        scale_bar_m: bar,
                        metres_per_png_px: mpp,
                    })
                },
            )
        })
        .collect()
}
