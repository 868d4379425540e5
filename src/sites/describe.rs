//! The describe pass: for each site, its window of labels, score and both
//! scenes' reflectance (decimated when huge), and from them its outline,
//! shape, scores and spectral change against the scene's background; the
//! per-worker GDAL handles it reads with.

use super::area::PixelMetres;
use super::classify::Kind;
use super::components::Component;
use super::label_runs::LabelRuns;
use super::outline::{self, Polygon};
use super::run_info::{self, RunInfo};
use super::scenes::{self, Scenes};
use super::shape;
use super::spectral::{self, Background, BackgroundSample, NB};
use super::window_read;
use super::{Site, SitesOptions};
use crate::align::reader::Date;
use crate::align::{Grid, SceneReader, Window};
use crate::detect::{SCORE_NODATA, STAT_BANDS};
use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::CoordTransform;

/// The scene's typical change: unchanged pixels on a lattice of at most
/// about 65536 points, read decimated in strips.
pub(crate) fn background(scenes: &Scenes, run: &RunInfo) -> Result<Background> {
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
pub(crate) struct Worker<'a> {
    /// Decimated reads (JPEG2000 overviews, as `dunewatch sites` reads).
    pub(crate) reader: SceneReader<'a>,
    /// Full-resolution reads (decoded JPEG2000 copies during `detect`).
    pub(crate) full_res: SceneReader<'a>,
    pub(crate) score: Option<gdal::Dataset>,
    pub(crate) to_lonlat: OwnedTransform,
}

/// A coordinate transformation owned by one worker. GDAL transformations
/// must not be used by two threads at once; moving one to the thread that
/// will be its only user is fine, which is all `PerThread` does.
pub(crate) struct OwnedTransform(pub(crate) CoordTransform);

// SAFETY: see above; the transform is only ever used from one thread at a time.
unsafe impl Send for OwnedTransform {}

pub(crate) fn open_worker<'a>(scenes: &'a Scenes, run: &RunInfo) -> Result<Worker<'a>> {
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
pub(crate) fn site_window(
    c: &Component,
    g: &Grid,
    max_px: usize,
) -> (Window, (usize, usize), usize) {
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

pub(crate) fn lonlat(ct: &CoordTransform, pts: &[(f64, f64)]) -> Result<Vec<[f64; 2]>> {
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let mut zs = vec![0.0; pts.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| Error::invalid(format!("cannot transform to lon/lat: {}", gdal_msg(&e))))?;
    Ok(xs.into_iter().zip(ys).map(|(x, y)| [x, y]).collect())
}

/// Twice the signed area of a closed lon/lat ring (positive = counter-clockwise).
pub(crate) fn signed_area2_ll(r: &[[f64; 2]]) -> f64 {
    (0..r.len().saturating_sub(1))
        .map(|i| r[i][0] * r[i + 1][1] - r[i + 1][0] * r[i][1])
        .sum()
}

/// The pixels of one site's window, at the site's read shape.
pub(crate) struct SiteWindow {
    pub(crate) win: Window,
    pub(crate) shape: (usize, usize),
    /// Decimation (1 = full resolution).
    pub(crate) d: usize,
    pub(crate) labels: Vec<u32>,
    pub(crate) score: Option<Vec<f32>>,
    /// Reflectance, band-major, NaN where no data.
    pub(crate) before: Vec<Vec<f32>>,
    pub(crate) after: Vec<Vec<f32>>,
}

/// Reads a site's window straight from the rasters (sites too tall or too
/// large for the chunks of [`strips::describe_all`]).
pub(crate) fn read_site_window(
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
pub(crate) fn describe(
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
