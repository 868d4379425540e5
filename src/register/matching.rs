//! Overlap matching of a run's sites against the register's, in a common
//! metric frame.
//!
//! Why a frame of its own: runs come on different grids and tiles (a UTM
//! zone each, or lon/lat), so outlines are compared as lon/lat polygons
//! projected to one sinusoidal (equal-area) projection centred on the run.
//! A site matches a register site when, grown by a tolerance (a pixel, so
//! runs a pixel apart still match), it covers at least `min_overlap` of the
//! smaller of the two: a site that grew still matches its earlier outline.
//!
//! Why not GEOS: a full tile is tens of thousands of sites against as many
//! register sites, and each GEOS overlay converts both outlines and builds
//! a planar graph. Here every outline is cut once into horizontal spans on
//! rows a metre apart, shared by all outlines of the frame (exact along
//! each row, sampled across rows: the areas are right to within a metre of
//! the perimeter, well inside a 10 m pixel), and two outlines' common area
//! is a merge of their spans. Candidates come from a grid index over the
//! register's bounding boxes, so matching costs about one span merge per
//! true neighbour, not n x m; sites are matched in parallel, each on its
//! own, so the result does not depend on the thread count.

use crate::error::Result;
use gdal::vector::Geometry;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Polygons of closed rings of (x, y) points: a site's outline.
pub type Polys = Vec<Vec<Vec<[f64; 2]>>>;

/// Height of the rows outlines are cut into, metres.
const ROW_M: f64 = 1.0;

/// WGS 84.
const A: f64 = 6_378_137.0;
const F: f64 = 1.0 / 298.257_223_563;

/// Lon/lat to metres in a sinusoidal projection on the WGS 84 ellipsoid
/// centred on `lon0` (the formulas of PROJ's `+proj=sinu`).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    lon0: f64,
}

impl Frame {
    pub fn new(lon0: f64) -> Result<Frame> {
        Ok(Frame { lon0 })
    }

    /// One point, lon/lat degrees to metres.
    pub fn project(&self, lon: f64, lat: f64) -> [f64; 2] {
        let es = F * (2.0 - F);
        let (phi, lam) = (lat.to_radians(), (lon - self.lon0).to_radians());
        let (s, c) = phi.sin_cos();
        let x = A * lam * c / (1.0 - es * s * s).sqrt();
        // Meridian arc length.
        let (e4, e6) = (es * es, es * es * es);
        let m = A
            * ((1.0 - es / 4.0 - 3.0 * e4 / 64.0 - 5.0 * e6 / 256.0) * phi
                - (3.0 * es / 8.0 + 3.0 * e4 / 32.0 + 45.0 * e6 / 1024.0) * (2.0 * phi).sin()
                + (15.0 * e4 / 256.0 + 45.0 * e6 / 1024.0) * (4.0 * phi).sin()
                - (35.0 * e6 / 3072.0) * (6.0 * phi).sin());
        [x, m]
    }

    /// The outline (an OGR polygon or multipolygon, lon/lat) in metres.
    pub fn shape(&self, lonlat: &Geometry) -> Result<Shape> {
        Ok(self.shape_of(&polys_of(lonlat)))
    }

    /// The outline (polygons of lon/lat rings) in metres.
    pub fn shape_of(&self, lonlat: &[Vec<Vec<[f64; 2]>>]) -> Shape {
        let rings: Vec<Vec<[f64; 2]>> = lonlat
            .iter()
            .flatten()
            .map(|r| r.iter().map(|p| self.project(p[0], p[1])).collect())
            .collect();
        Shape::from_rings(rings)
    }
}

/// The polygons of an OGR geometry (polygon, multipolygon or a collection
/// of them) as rings of points.
pub fn polys_of(g: &Geometry) -> Polys {
    use gdal_sys::OGRwkbGeometryType::{wkbPolygon, wkbPolygon25D};
    let mut out = Vec::new();
    let ty = g.geometry_type();
    if ty == wkbPolygon || ty == wkbPolygon25D {
        let mut rings = Vec::with_capacity(g.geometry_count());
        let mut pts = Vec::new();
        for i in 0..g.geometry_count() {
            pts.clear();
            g.get_geometry(i).get_points(&mut pts);
            rings.push(pts.iter().map(|p| [p.0, p.1]).collect());
        }
        out.push(rings);
    } else {
        for i in 0..g.geometry_count() {
            out.extend(polys_of(&g.get_geometry(i)));
        }
    }
    out
}

/// One site outline (polygons of closed lon/lat rings) as an OGR
/// multipolygon, made from its WKB in one call (not one per point).
pub fn outline_geometry(polys: &[Vec<Vec<[f64; 2]>>]) -> Result<Geometry> {
    let n: usize = polys.iter().flatten().map(|r| 4 + 16 * r.len()).sum();
    let mut w = Vec::with_capacity(9 + 9 * polys.len() + n);
    let u32le = |w: &mut Vec<u8>, v: usize| w.extend_from_slice(&(v as u32).to_le_bytes());
    w.push(1);
    u32le(&mut w, 6);
    u32le(&mut w, polys.len());
    for p in polys {
        w.push(1);
        u32le(&mut w, 3);
        u32le(&mut w, p.len());
        for r in p {
            u32le(&mut w, r.len());
            for q in r {
                w.extend_from_slice(&q[0].to_le_bytes());
                w.extend_from_slice(&q[1].to_le_bytes());
            }
        }
    }
    Geometry::from_wkb(&w).map_err(crate::error::Error::invalid)
}

/// Sorted, disjoint spans [x0, x1) on consecutive rows.
#[derive(Debug, Clone, Default)]
struct Spans {
    /// Index of the first row (row k samples y = (k + 0.5) ROW_M).
    row0: i64,
    /// offs[i]..offs[i + 1]: row row0 + i's span ends in `xs`.
    offs: Vec<u32>,
    xs: Vec<f64>,
}

impl Spans {
    fn rows(&self) -> i64 {
        self.offs.len().saturating_sub(1) as i64
    }

    fn row(&self, k: i64) -> &[f64] {
        let i = k - self.row0;
        if i < 0 || i >= self.rows() {
            return &[];
        }
        &self.xs[self.offs[i as usize] as usize..self.offs[i as usize + 1] as usize]
    }

    /// Even-odd fill of rings (outer rings and holes alike).
    fn fill(rings: &[Vec<[f64; 2]>], y0: f64, y1: f64) -> Spans {
        let row0 = (y0 / ROW_M - 0.5).ceil() as i64;
        let row1 = (y1 / ROW_M - 0.5).floor() as i64;
        if row1 < row0 {
            return Spans::default();
        }
        let n = (row1 - row0 + 1) as usize;
        // Rows whose sample line lies in [lo, hi) of an edge: each vertex
        // counted once. Two passes (count, fill) into one buffer.
        let edges = || {
            rings.iter().flat_map(|r| r.windows(2)).filter_map(|w| {
                let (p, q) = (w[0], w[1]);
                if p[1] == q[1] {
                    return None;
                }
                let (lo, hi) = if p[1] < q[1] {
                    (p[1], q[1])
                } else {
                    (q[1], p[1])
                };
                let k0 = ((lo / ROW_M - 0.5).ceil() as i64).max(row0);
                let k1 = ((hi / ROW_M - 0.5).ceil() as i64 - 1).min(row1);
                (k1 >= k0).then_some((p, q, k0, k1))
            })
        };
        let mut start = vec![0u32; n + 1];
        for (_, _, k0, k1) in edges() {
            for k in k0..=k1 {
                start[(k - row0) as usize + 1] += 1;
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut cut = vec![0.0; start[n] as usize];
        for (p, q, k0, k1) in edges() {
            for k in k0..=k1 {
                let y = (k as f64 + 0.5) * ROW_M;
                let i = &mut fill[(k - row0) as usize];
                cut[*i as usize] = p[0] + (y - p[1]) * (q[0] - p[0]) / (q[1] - p[1]);
                *i += 1;
            }
        }
        let mut offs = Vec::with_capacity(n + 1);
        let mut xs = Vec::with_capacity(cut.len());
        offs.push(0);
        for k in 0..n {
            let r = &mut cut[start[k] as usize..start[k + 1] as usize];
            if r.len() == 2 {
                // Most rows of most outlines: one span.
                if r[0] > r[1] {
                    r.swap(0, 1);
                }
            } else {
                r.sort_unstable_by(f64::total_cmp);
            }
            // Even-odd pairs; touching spans (a hole's edge on the outer's) merge.
            let row_start = xs.len();
            for pair in r.chunks_exact(2) {
                let (a, b) = (pair[0], pair[1]);
                if b > a {
                    if xs.len() > row_start && *xs.last().expect("xs") >= a {
                        *xs.last_mut().expect("xs") = b;
                    } else {
                        xs.push(a);
                        xs.push(b);
                    }
                }
            }
            offs.push(xs.len() as u32);
        }
        Spans { row0, offs, xs }
    }

    fn area(&self) -> f64 {
        self.xs.chunks(2).map(|s| s[1] - s[0]).sum::<f64>() * ROW_M
    }

    /// Area shared with another set of spans.
    fn common_area(&self, o: &Spans) -> f64 {
        let k0 = self.row0.max(o.row0);
        let k1 = (self.row0 + self.rows()).min(o.row0 + o.rows());
        let mut sum = 0.0;
        for k in k0..k1 {
            let (a, b) = (self.row(k), o.row(k));
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                let lo = a[i].max(b[j]);
                let hi = a[i + 1].min(b[j + 1]);
                if hi > lo {
                    sum += hi - lo;
                }
                if a[i + 1] < b[j + 1] {
                    i += 2;
                } else {
                    j += 2;
                }
            }
        }
        sum * ROW_M
    }

    /// The spans grown by a disc of radius `t` metres.
    fn grown(&self, t: f64) -> Spans {
        let r = (t / ROW_M).floor() as i64;
        let widths: Vec<f64> = (0..=r)
            .map(|d| (t * t - (d as f64 * ROW_M).powi(2)).max(0.0).sqrt())
            .collect();
        let (row0, n) = (self.row0 - r, self.rows() + 2 * r);
        let mut offs = Vec::with_capacity(n as usize + 1);
        let mut xs = Vec::new();
        offs.push(0);
        let mut iv: Vec<(f64, f64)> = Vec::new();
        for k in row0..row0 + n {
            iv.clear();
            for j in (k - r).max(self.row0)..=(k + r).min(self.row0 + self.rows() - 1) {
                let w = widths[(k - j).unsigned_abs() as usize];
                iv.extend(self.row(j).chunks(2).map(|s| (s[0] - w, s[1] + w)));
            }
            iv.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let start = xs.len();
            for &(a, b) in &iv {
                if xs.len() > start && *xs.last().expect("xs") >= a {
                    let e: &mut f64 = xs.last_mut().expect("xs");
                    *e = e.max(b);
                } else {
                    xs.push(a);
                    xs.push(b);
                }
            }
            offs.push(xs.len() as u32);
        }
        Spans { row0, offs, xs }
    }
}

/// An outline in the frame.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Rings in metres (outer rings and holes).
    rings: Vec<Vec<[f64; 2]>>,
    spans: Spans,
    /// Area, square metres (of the spans, as the overlaps are).
    pub area: f64,
    pub bbox: [f64; 4],
}

impl Shape {
    fn from_rings(rings: Vec<Vec<[f64; 2]>>) -> Shape {
        let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for p in rings.iter().flatten() {
            bbox = [
                bbox[0].min(p[0]),
                bbox[1].min(p[1]),
                bbox[2].max(p[0]),
                bbox[3].max(p[1]),
            ];
        }
        if bbox[0] > bbox[2] {
            bbox = [0.0; 4];
        }
        let spans = Spans::fill(&rings, bbox[1], bbox[3]);
        Shape {
            area: spans.area(),
            rings,
            spans,
            bbox,
        }
    }
}

/// A uniform grid over bounding boxes: cell -> indices of the boxes touching it.
pub struct GridIndex {
    cell: f64,
    cells: HashMap<(i64, i64), Vec<usize>>,
}

impl GridIndex {
    pub fn new(boxes: &[[f64; 4]], cell: f64) -> GridIndex {
        let mut cells: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, b) in boxes.iter().enumerate() {
            let (x0, y0, x1, y1) = Self::range(cell, b);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    cells.entry((x, y)).or_default().push(i);
                }
            }
        }
        GridIndex { cell, cells }
    }

    fn range(cell: f64, b: &[f64; 4]) -> (i64, i64, i64, i64) {
        let f = |v: f64| (v / cell).floor() as i64;
        (f(b[0]), f(b[1]), f(b[2]).max(f(b[0])), f(b[3]).max(f(b[1])))
    }

    /// Indices of the boxes that may intersect `b`, each once, ascending.
    pub fn query(&self, b: &[f64; 4]) -> Vec<usize> {
        let (x0, y0, x1, y1) = Self::range(self.cell, b);
        let mut out = Vec::new();
        for x in x0..=x1 {
            for y in y0..=y1 {
                if let Some(v) = self.cells.get(&(x, y)) {
                    out.extend_from_slice(v);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn boxes_meet(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// How two outlines are matched.
#[derive(Debug, Clone, Copy)]
pub struct MatchOptions {
    /// Tolerance in metres the new outline is grown by (one 10 m pixel).
    pub tolerance_m: f64,
    /// Share of the smaller outline the grown one must cover.
    pub min_overlap: f64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            tolerance_m: 10.0,
            min_overlap: 0.5,
        }
    }
}

/// For each new shape, the register shapes it matches with their overlap
/// (common area over the smaller area), best first.
pub fn match_shapes(
    new: &[Shape],
    reg: &[Shape],
    opts: &MatchOptions,
) -> Result<Vec<Vec<(usize, f64)>>> {
    // Cells about the size of a large site: few cells per box, few boxes per cell.
    let index = GridIndex::new(&reg.iter().map(|s| s.bbox).collect::<Vec<_>>(), 250.0);
    Ok(new
        .par_iter()
        .map(|n| match_one(n, reg, &index, opts))
        .collect())
}

/// How a run's outlines continue the register's, from each run outline's
/// matches (best first). A run outline continues its best match
/// (`primary`); a register outline that is the best match of several
/// split (`continued_by`: its run outlines, in run order); one that a run
/// outline also matches but that no run outline continues merged into that
/// run outline's best match (`merged`: (run outline, register outline)
/// pairs, each register outline once, in run order).
pub struct Lineage {
    pub primary: Vec<Option<usize>>,
    pub continued_by: BTreeMap<usize, Vec<usize>>,
    pub merged: Vec<(usize, usize)>,
}

pub fn lineage(found: &[Vec<(usize, f64)>]) -> Lineage {
    let primary: Vec<Option<usize>> = found.iter().map(|m| m.first().map(|x| x.0)).collect();
    let mut continued_by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (n, p) in primary.iter().enumerate() {
        if let Some(r) = p {
            continued_by.entry(*r).or_default().push(n);
        }
    }
    let mut merged = Vec::new();
    let mut gone = BTreeSet::new();
    for (n, m) in found.iter().enumerate() {
        for &(r, _) in m.iter().skip(1) {
            if !continued_by.contains_key(&r) && gone.insert(r) {
                merged.push((n, r));
            }
        }
    }
    Lineage {
        primary,
        continued_by,
        merged,
    }
}

fn match_one(
    n: &Shape,
    reg: &[Shape],
    index: &GridIndex,
    opts: &MatchOptions,
) -> Vec<(usize, f64)> {
    let t = opts.tolerance_m.max(0.0);
    let b = [n.bbox[0] - t, n.bbox[1] - t, n.bbox[2] + t, n.bbox[3] + t];
    let mut found = Vec::new();
    // Grown only when needed: most matches overlap enough as they are.
    let mut grown: Option<Spans> = None;
    for i in index.query(&b) {
        let r = &reg[i];
        if !boxes_meet(&b, &r.bbox) {
            continue;
        }
        let smaller = n.area.min(r.area).max(1e-9);
        // The boxes' overlap bounds the outlines': most neighbours are
        // ruled out without looking at the outlines.
        let bx = (b[2].min(r.bbox[2]) - b[0].max(r.bbox[0])).max(0.0)
            * (b[3].min(r.bbox[3]) - b[1].max(r.bbox[1])).max(0.0);
        if bx < opts.min_overlap * smaller {
            continue;
        }
        // The same outline again (a run re-added from another folder, a
        // site that did not change) needs no merge.
        let mut ratio = if n.bbox == r.bbox && n.rings == r.rings {
            1.0
        } else {
            (n.spans.common_area(&r.spans) / smaller).min(1.0)
        };
        if ratio < opts.min_overlap && t > 0.0 {
            let g = grown.get_or_insert_with(|| n.spans.grown(t));
            ratio = (g.common_area(&r.spans) / smaller).min(1.0);
        }
        if ratio >= opts.min_overlap {
            found.push((i, ratio));
        }
    }
    found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_continues_splits_and_merges() {
        // Run outline 0 and 1 both best match register 0 (a split); 2
        // matches register 1 best, then 2 and 3 (merged into 1), 3 again
        // through run outline 3 (merged once); 4 matches nothing.
        let found = vec![
            vec![(0, 0.9)],
            vec![(0, 0.6)],
            vec![(1, 1.0), (2, 0.7), (3, 0.6), (0, 0.5)],
            vec![(1, 0.8), (3, 0.6)],
            vec![],
        ];
        let l = lineage(&found);
        assert_eq!(l.primary, [Some(0), Some(0), Some(1), Some(1), None]);
        assert_eq!(
            l.continued_by.into_iter().collect::<Vec<_>>(),
            [(0, vec![0, 1]), (1, vec![2, 3])]
        );
        assert_eq!(l.merged, [(2, 2), (2, 3)]);
    }

    fn square(lon: f64, lat: f64, d: f64) -> Geometry {
        Geometry::from_wkt(&format!(
            "POLYGON(({lon} {lat},{x} {lat},{x} {y},{lon} {y},{lon} {lat}))",
            x = lon + d,
            y = lat + d
        ))
        .unwrap()
    }

    fn metres(rings: &[&[[f64; 2]]]) -> Shape {
        Shape::from_rings(rings.iter().map(|r| r.to_vec()).collect())
    }

    #[test]
    fn index_finds_overlapping_boxes_only() {
        let idx = GridIndex::new(
            &[[0.0, 0.0, 10.0, 10.0], [1000.0, 1000.0, 1010.0, 1010.0]],
            250.0,
        );
        assert_eq!(idx.query(&[5.0, 5.0, 6.0, 6.0]), vec![0]);
        assert!(idx.query(&[500.0, 500.0, 600.0, 600.0]).is_empty());
    }

    #[test]
    fn projection_is_proj_sinusoidal() {
        // GDAL/PROJ, EPSG:4326 to +proj=sinu +lon_0=54 +datum=WGS84:
        // 54.5 24.3 -> 50757.253 2688516.772
        let p = Frame::new(54.0).unwrap().project(54.5, 24.3);
        assert!((p[0] - 50757.253).abs() < 0.01, "{p:?}");
        assert!((p[1] - 2688516.772).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn areas_of_pixel_outlines_with_holes_and_parts() {
        // A 40 x 30 m block with a 10 x 10 m hole, and a 10 x 10 m part beside it.
        let outer = [
            [0.3, 0.2],
            [40.3, 0.2],
            [40.3, 30.2],
            [0.3, 30.2],
            [0.3, 0.2],
        ];
        let hole = [
            [10.3, 10.2],
            [10.3, 20.2],
            [20.3, 20.2],
            [20.3, 10.2],
            [10.3, 10.2],
        ];
        let part = [
            [40.3, 0.2],
            [50.3, 0.2],
            [50.3, 10.2],
            [40.3, 10.2],
            [40.3, 0.2],
        ];
        let s = metres(&[&outer, &hole, &part]);
        assert!((s.area - 1200.0).abs() < 1e-6, "{}", s.area);
        // A rotated square (another grid): within a metre of the perimeter.
        let c = std::f64::consts::FRAC_1_SQRT_2 * 20.0;
        let d = metres(&[&[[0.0, 0.0], [c, c], [0.0, 2.0 * c], [-c, c], [0.0, 0.0]]]);
        assert!((d.area - 400.0).abs() < 80.0 * ROW_M / 2.0, "{}", d.area);
        // Common area with itself shifted by 5 m east: 35 x 30 - hole overlaps.
        let shifted: Vec<[f64; 2]> = outer.iter().map(|p| [p[0] + 5.0, p[1]]).collect();
        let t = metres(&[&shifted]);
        let common = s.spans.common_area(&t.spans);
        // Block 35 x 30 = 1050, minus the hole (100), plus the part's 5 x 10 = 50.
        assert!((common - 1000.0).abs() < 1e-6, "{common}");
        // Grown by 10 m: the hole closes, the outline gains about 2 t perimeter + pi t^2.
        let g = metres(&[&outer]).spans.grown(10.0);
        let want = 1200.0 + 2.0 * 10.0 * (40.0 + 30.0) + std::f64::consts::PI * 100.0;
        assert!(
            (g.area() - want).abs() < 0.02 * want,
            "{} vs {want}",
            g.area()
        );
    }

    #[test]
    fn a_pixel_shift_and_growth_match_a_neighbour_does_not() {
        let f = Frame::new(54.5).unwrap();
        // About 40 m squares at 24.3 N.
        let d = 0.0004;
        let reg = vec![
            f.shape(&square(54.5, 24.3, d)).unwrap(),
            f.shape(&square(54.51, 24.3, d)).unwrap(),
        ];
        let shifted = f.shape(&square(54.5 + 0.0001, 24.3, d)).unwrap();
        let grown = f.shape(&square(54.5, 24.3, 2.0 * d)).unwrap();
        // 2 pixels east of the first square's edge: no overlap.
        let beside = f.shape(&square(54.5 + d + 0.0002, 24.3, d)).unwrap();
        let same = f.shape(&square(54.51, 24.3, d)).unwrap();
        let m = match_shapes(
            &[shifted, grown, beside, same],
            &reg,
            &MatchOptions::default(),
        )
        .unwrap();
        assert_eq!(m[0].len(), 1);
        assert_eq!(m[0][0].0, 0);
        assert_eq!(m[1][0].0, 0);
        assert!(m[2].is_empty(), "{:?}", m[2]);
        assert_eq!(m[3], vec![(1, 1.0)]);
    }

    #[test]
    fn the_same_matches_whatever_the_thread_count() {
        let f = Frame::new(54.5).unwrap();
        let shapes: Vec<Shape> = (0..400)
            .map(|i| {
                let (x, y) = ((i % 20) as f64 * 0.0003, (i / 20) as f64 * 0.0003);
                f.shape(&square(
                    54.5 + x,
                    24.3 + y,
                    0.0002 + (i % 7) as f64 * 0.00005,
                ))
                .unwrap()
            })
            .collect();
        let reg: Vec<Shape> = shapes.iter().step_by(3).cloned().collect();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| match_shapes(&shapes, &reg, &MatchOptions::default()).unwrap())
        };
        let one = run(1);
        assert!(one.iter().filter(|m| !m.is_empty()).count() > 100);
        assert_eq!(one, run(3));
    }
}
