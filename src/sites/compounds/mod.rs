//! Candidate compounds: a run's sites grouped into what could be one base,
//! each outlined, scored for how much it looks like one and ranked.
//!
//! A new base is not one blob of changed pixels but several: buildings, a
//! perimeter berm, graded ground, an apron, the tracks that join them. So:
//!
//! 1. every site gets a footprint in metres: the convex hull of its outline
//!    ([`hull`]), on the run grid scaled by the metres per pixel at the
//!    scene's middle latitude;
//! 2. man-made sites within `--compound-distance` of each other are linked
//!    (single linkage), and linear sites join the group they approach
//!    ([`grouping`]); groups of two sites or more are compounds;
//! 3. each compound's members are weighed for a rectilinear layout, an
//!    enclosing ring, an apron, a runway and tracks leading in
//!    ([`likeness`]), which gives its score and reasons;
//! 4. compounds are ranked by score (then changed area, then id). Ids
//!    number them by their lowest member site id, so both are the same
//!    for the same run whatever the thread count.

pub mod grouping;
pub mod hull;
pub mod likeness;

use super::classify::{Kind, KINDS};
use super::Site;
use crate::align::Grid;
use crate::error::{gdal_msg, Error, Result};
use grouping::{Footprint, Role};
use hull::Pt;
use serde::Serialize;
use std::collections::BTreeMap;

/// Default linkage distance, metres: the gaps between the buildings, apron
/// and berm of one base are tens to a couple of hundred metres, while
/// separate compounds are usually farther apart.
pub const DEFAULT_DISTANCE_M: f64 = 250.0;

#[derive(Debug, Clone, Serialize)]
pub struct Compound {
    /// Numbered by lowest member site id.
    pub id: u32,
    /// 1 = most base-like.
    pub rank: u32,
    /// Member site ids, ascending.
    pub members: Vec<u32>,
    /// Members per kind (every kind listed).
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Changed area of the members, m^2.
    pub area_m2: f64,
    /// Area of the outline (the members' convex hull), m^2.
    pub hull_area_m2: f64,
    /// Base-likeness in [0, 1].
    pub score: f64,
    pub reasons: Vec<String>,
    /// The cues' strengths: rectilinear, ring, apron, runway, tracks.
    pub cues: [f64; 5],
    /// Centre of the outline.
    pub lon: f64,
    pub lat: f64,
    /// Inclusive pixel bounds on the run grid: col0, row0, col1, row1.
    pub bbox_px: [usize; 4],
    /// lon0, lat0, lon1, lat1.
    pub bbox_lonlat: [f64; 4],
    /// The outline on the run grid, pixel coordinates.
    #[serde(skip)]
    pub outline_px: Vec<(f64, f64)>,
    /// The outline in lon/lat: closed, counter-clockwise.
    #[serde(skip)]
    pub outline_lonlat: Vec<[f64; 2]>,
}

/// The names of [`Compound::cues`], in order.
pub const CUE_NAMES: [&str; 5] = [
    "rectilinear_layout",
    "enclosing_ring",
    "apron",
    "runway",
    "tracks_leading_in",
];

fn role(k: Kind) -> Role {
    match k {
        Kind::Linear => Role::Linear,
        k if k.is_natural() => Role::None,
        _ => Role::Core,
    }
}

/// Groups, scores and ranks the compounds of `sites` (any order) on `grid`.
pub fn find(sites: &[Site], grid: &Grid, distance_m: f64) -> Result<Vec<Compound>> {
    let mid = grid.pixel_center(0.0, grid.height as f64 / 2.0).1;
    let (mx, my) = super::pixel_metres(grid, mid);
    let to_m = |p: (f64, f64)| (p.0 * mx, p.1 * my);
    let gt = grid.geotransform;
    // Sites in id order: the groups and ids do not depend on the ranking.
    let mut order: Vec<usize> = (0..sites.len()).collect();
    order.sort_by_key(|&i| sites[i].id);
    let fps: Vec<Footprint> = order
        .iter()
        .map(|&i| {
            let s = &sites[i];
            let pts: Vec<Pt> = s
                .outline_px
                .iter()
                .filter_map(|p| p.first())
                .flatten()
                .map(|&q| to_m(q))
                .collect();
            Footprint::new(hull::hull(pts), role(s.kind))
        })
        .collect();
    let groups = grouping::group(&fps, distance_m);
    let ct = grid.to_lonlat()?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let centroid = |s: &Site| {
            // The pixel centroid, from its grid coordinates.
            to_m(((s.x - gt[0]) / gt[1], (s.y - gt[3]) / gt[5]))
        };
        let members: Vec<likeness::Member> = g
            .iter()
            .map(|&k| likeness::Member {
                site: &sites[order[k]],
                hull: &fps[k].hull,
                centroid: centroid(&sites[order[k]]),
            })
            .collect();
        let all: Vec<Pt> = g.iter().flat_map(|&k| fps[k].hull.clone()).collect();
        let core: Vec<Pt> = g
            .iter()
            .filter(|&&k| fps[k].role == Role::Core)
            .flat_map(|&k| fps[k].hull.clone())
            .collect();
        let outline = hull::hull(all);
        let core_hull = hull::hull(core);
        let hull_area = hull::area(&outline);
        let l = likeness::assess(&members, &core_hull, hull_area);
        let mut by_kind: BTreeMap<&'static str, usize> =
            KINDS.iter().map(|k| (k.name(), 0)).collect();
        for m in &members {
            *by_kind.entry(m.site.kind.name()).or_default() += 1;
        }
        let mut bbox_px = [usize::MAX, usize::MAX, 0, 0];
        for m in &members {
            let b = m.site.bbox_px;
            bbox_px = [
                bbox_px[0].min(b[0]),
                bbox_px[1].min(b[1]),
                bbox_px[2].max(b[2]),
                bbox_px[3].max(b[3]),
            ];
        }
        let outline_px: Vec<(f64, f64)> = outline.iter().map(|p| (p.0 / mx, p.1 / my)).collect();
        let (outline_lonlat, bbox_lonlat) = lonlat_ring(&ct, &gt, &outline_px)?;
        let c = hull::centre(&outline_px);
        let centre = lonlat_ring(&ct, &gt, &[c])?.0[0];
        out.push(Compound {
            id: 0,
            rank: 0,
            members: members.iter().map(|m| m.site.id).collect(),
            by_kind,
            area_m2: members.iter().map(|m| m.site.area_m2).sum(),
            hull_area_m2: hull_area,
            score: l.score,
            reasons: l.reasons,
            cues: l.cues.map(|c| c.map_or(0.0, |c| c.value)),
            lon: centre[0],
            lat: centre[1],
            bbox_px,
            bbox_lonlat,
            outline_px,
            outline_lonlat,
        });
    }
    // `group` orders the groups by their first member, so by lowest site id.
    for (i, c) in out.iter_mut().enumerate() {
        c.id = i as u32 + 1;
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.area_m2.total_cmp(&a.area_m2))
            .then(a.id.cmp(&b.id))
    });
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i as u32 + 1;
    }
    Ok(out)
}

/// Grid pixel coordinates to a lon/lat ring (closed and counter-clockwise
/// when 3 points or more) and its bounds.
fn lonlat_ring(
    ct: &gdal::spatial_ref::CoordTransform,
    gt: &[f64; 6],
    px: &[(f64, f64)],
) -> Result<(Vec<[f64; 2]>, [f64; 4])> {
    let mut xs: Vec<f64> = px
        .iter()
        .map(|p| gt[0] + p.0 * gt[1] + p.1 * gt[2])
        .collect();
    let mut ys: Vec<f64> = px
        .iter()
        .map(|p| gt[3] + p.0 * gt[4] + p.1 * gt[5])
        .collect();
    let mut zs = vec![0.0; px.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| Error::invalid(format!("cannot transform to lon/lat: {}", gdal_msg(&e))))?;
    let mut ring: Vec<[f64; 2]> = xs.into_iter().zip(ys).map(|(x, y)| [x, y]).collect();
    let b = hull::bounds(&ring.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    if ring.len() >= 3 {
        let a2: f64 = (0..ring.len())
            .map(|i| {
                let (p, q) = (ring[i], ring[(i + 1) % ring.len()]);
                p[0] * q[1] - q[0] * p[1]
            })
            .sum();
        if a2 < 0.0 {
            ring.reverse();
        }
        ring.push(ring[0]);
    }
    Ok((ring, b))
}
