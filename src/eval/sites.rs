//! Site figures: the share of reported sites that touch a labelled (truth)
//! change pixel, and the precision of the top-ranked sites
//! ([`super::top_sites`], judged on the pixels each site covers,
//! [`super::site_pixels`]).
//!
//! Sites come as RFC 7946 GeoJSON: longitude/latitude Polygons or
//! MultiPolygons (Points are accepted too), each with an optional string
//! property `kind`. Vertices are transformed to the prediction grid's CRS
//! with GDAL (traditional lon/lat axis order) and then to pixel coordinates.
//! The integer property `rank` orders the sites for the top-k figures.
//!
//! A site **touches** pixel (c, r) when its polygon and the pixel's square
//! share at least one point: the pixel centre lies inside the polygon
//! (even-odd rule, so holes count as outside), or one of the polygon's edges
//! crosses or lies in the square. This is GDAL's "all touched"
//! rasterization, so sites smaller than a pixel still touch the pixel they
//! lie in. A site touching a truth change pixel is a true site.
//!
//! Sites lying entirely off the grid cannot be judged: they are counted as
//! `outside` and left out of the precision. The test runs strip by strip
//! with the rest of the evaluation, and only on truth change pixels inside
//! a site's bounding box, so it stays cheap.

use super::confusion::ratio;
use super::top_sites::{is_true_site, top_k, Judged, TopK, TOP_K};
use crate::align::grid::Grid;
use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A ring: pixel-coordinate vertices (col, row), continuous.
type Ring = Vec<(f64, f64)>;

/// One site on the pixel grid.
#[derive(Debug, Clone)]
pub struct Site {
    /// The `kind` property ("unknown" when missing).
    pub kind: String,
    /// The `rank` property (1 = read first), when given.
    pub rank: Option<u64>,
    /// Polygons, each an outer ring and holes.
    pub(super) polygons: Vec<Vec<Ring>>,
    /// Inclusive pixel range to test: (col0, row0, col1, row1); None when off the grid.
    pub(super) range: Option<(usize, usize, usize, usize)>,
}

impl Site {
    /// Builds a site from polygons already in pixel coordinates.
    pub fn from_pixel_polygons(
        kind: &str,
        polygons: Vec<Vec<Vec<(f64, f64)>>>,
        width: usize,
        height: usize,
    ) -> Site {
        let (mut x0, mut y0, mut x1, mut y1) = (
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y) in polygons.iter().flatten().flatten() {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        let (w, h) = (width as f64, height as f64);
        let on_grid =
            x0.is_finite() && y0.is_finite() && x1 >= 0.0 && y1 >= 0.0 && x0 <= w && y0 <= h;
        let range = on_grid.then(|| {
            // One pixel of margin: a vertex exactly on a pixel border touches both sides.
            let lo = |v: f64| (v.floor() - 1.0).max(0.0) as usize;
            let hi = |v: f64, n: usize| ((v.floor() + 1.0).max(0.0) as usize).min(n - 1);
            (lo(x0), lo(y0), hi(x1, width), hi(y1, height))
        });
        Site {
            kind: kind.to_string(),
            rank: None,
            polygons,
            range,
        }
    }

    /// Whether the site lies (at least partly) on the grid.
    pub fn on_grid(&self) -> bool {
        self.range.is_some()
    }

    /// Whether the polygon touches pixel (col, row) (see the module doc).
    pub fn touches(&self, col: usize, row: usize) -> bool {
        let (x0, y0) = (col as f64, row as f64);
        let (x1, y1) = (x0 + 1.0, y0 + 1.0);
        let (cx, cy) = (x0 + 0.5, y0 + 0.5);
        self.polygons.iter().any(|poly| {
            let mut inside = false;
            for ring in poly {
                let n = ring.len();
                for i in 0..n {
                    let (a, b) = (ring[i], ring[(i + 1) % n]);
                    if segment_hits_box(a, b, x0, y0, x1, y1) {
                        return true;
                    }
                    if (a.1 > cy) != (b.1 > cy) && cx < a.0 + (cy - a.1) * (b.0 - a.0) / (b.1 - a.1)
                    {
                        inside = !inside;
                    }
                }
            }
            inside
        })
    }
}

/// Whether segment a–b shares a point with the closed box (Liang–Barsky).
fn segment_hits_box(a: (f64, f64), b: (f64, f64), x0: f64, y0: f64, x1: f64, y1: f64) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                if r > t1 {
                    return false;
                }
                t0 = t0.max(r);
            } else {
                if r < t0 {
                    return false;
                }
                t1 = t1.min(r);
            }
        }
    }
    true
}

/// Reads a sites GeoJSON and places its sites on `grid`.
pub fn read_sites(path: &Path, grid: &Grid) -> Result<Vec<Site>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read sites: {e}")))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(path, format!("not valid JSON: {e}")))?;
    let features: Vec<&Value> = match json.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => json
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::input(path, "FeatureCollection without a \"features\" array"))?
            .iter()
            .collect(),
        Some("Feature") => vec![&json],
        _ => {
            return Err(Error::input(
                path,
                "not a GeoJSON FeatureCollection or Feature",
            ))
        }
    };

    // Parse every site to lon/lat polygons first, then transform all vertices at once.
    let mut parsed: Vec<(String, Option<u64>, Vec<Vec<Ring>>)> = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let props = f.get("properties");
        let kind = props
            .and_then(|p| p.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let rank = match props.and_then(|p| p.get("rank")) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                Error::input(
                    path,
                    format!("feature {i}: property \"rank\" is {v}, not a whole number"),
                )
            })?),
        };
        let polys = geometry_polygons(f.get("geometry").unwrap_or(&Value::Null))
            .map_err(|m| Error::input(path, format!("feature {i}: {m}")))?;
        parsed.push((kind, rank, polys));
    }

    let mut wgs = SpatialRef::from_epsg(4326).map_err(|e| Error::invalid(gdal_msg(&e)))?;
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&wgs, &grid.srs()?).map_err(|e| Error::invalid(gdal_msg(&e)))?;
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = parsed
        .iter()
        .flat_map(|(_, _, p)| p.iter().flatten().flatten())
        .copied()
        .unzip();
    if !xs.is_empty() {
        ct.transform_coords(&mut xs, &mut ys, &mut [])
            .map_err(|e| {
                Error::input(
                    path,
                    format!(
                        "cannot transform site coordinates to the prediction grid: {}",
                        gdal_msg(&e)
                    ),
                )
            })?;
    }
    let mut k = 0;
    let mut sites = Vec::with_capacity(parsed.len());
    for (kind, rank, mut polys) in parsed {
        for v in polys.iter_mut().flatten().flatten() {
            *v = grid.to_pixel(xs[k], ys[k]);
            k += 1;
        }
        let mut site = Site::from_pixel_polygons(&kind, polys, grid.width, grid.height);
        site.rank = rank;
        sites.push(site);
    }
    Ok(sites)
}

/// A GeoJSON geometry as lon/lat polygons (a Point is a one-vertex polygon).
fn geometry_polygons(g: &Value) -> std::result::Result<Vec<Vec<Ring>>, String> {
    fn pos(v: &Value) -> std::result::Result<(f64, f64), String> {
        let a = v
            .as_array()
            .filter(|a| a.len() >= 2)
            .ok_or("a position is not [lon, lat]")?;
        match (a[0].as_f64(), a[1].as_f64()) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => Err("a position is not numeric".to_string()),
        }
    }
    fn ring(v: &Value) -> std::result::Result<Ring, String> {
        v.as_array()
            .ok_or("a ring is not an array")?
            .iter()
            .map(pos)
            .collect()
    }
    fn polygon(v: &Value) -> std::result::Result<Vec<Ring>, String> {
        v.as_array()
            .ok_or("a polygon is not an array of rings")?
            .iter()
            .map(ring)
            .collect()
    }
    let ty = g
        .get("type")
        .and_then(Value::as_str)
        .ok_or("has no geometry")?;
    let coords = g.get("coordinates").ok_or("geometry has no coordinates")?;
    match ty {
        "Polygon" => Ok(vec![polygon(coords)?]),
        "MultiPolygon" => coords
            .as_array()
            .ok_or("MultiPolygon coordinates are not an array")?
            .iter()
            .map(polygon)
            .collect(),
        "Point" => Ok(vec![vec![vec![pos(coords)?]]]),
        other => Err(format!(
            "geometry type {other} is not supported (Polygon, MultiPolygon or Point)"
        )),
    }
}

/// Site figures for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KindScores {
    /// Sites on the grid.
    pub sites: u64,
    /// Of which touching a truth change pixel.
    pub touching: u64,
    /// touching / sites (0 when there are none).
    pub precision: f64,
    /// Of the sites, true sites (30 % or 5 of their pixels changed).
    pub true_sites: u64,
}

/// Site precision as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteScores {
    pub file: PathBuf,
    /// Sites on the grid (judged).
    pub sites: u64,
    /// Sites entirely off the grid (not judged).
    pub outside: u64,
    /// Judged sites touching a truth change pixel.
    pub touching: u64,
    /// touching / sites (0 when there are none).
    pub precision: f64,
    /// Judged sites that are true: at least 30 % of the pixels they cover,
    /// or 5 of them, labelled change.
    pub true_sites: u64,
    /// true_sites / sites (0 when there are none).
    pub true_precision: f64,
    /// Precision of the first 10, 20 and 50 sites by rank.
    pub top: Vec<TopK>,
    /// How the sites were ordered: "rank" (every judged site has a rank
    /// property), "file order" (none has) or "rank, then file order".
    pub ranked_by: &'static str,
    pub by_kind: BTreeMap<String, KindScores>,
}

/// Tests sites against truth change pixels, strip by strip.
pub struct SiteChecker {
    sites: Vec<Site>,
    touching: Vec<bool>,
    /// Per site: judged by touched pixels (covers no pixel centre), pixels
    /// covered, and of those labelled change.
    cover: Vec<(bool, u64)>,
    change: Vec<u64>,
}

impl SiteChecker {
    /// Sites placed on a grid of `width` × `height` pixels.
    pub fn new(sites: Vec<Site>, width: usize, height: usize) -> Self {
        let n = sites.len();
        let cover = sites.iter().map(|s| s.cover(width, height)).collect();
        SiteChecker {
            sites,
            touching: vec![false; n],
            cover,
            change: vec![0; n],
        }
    }

    /// Looks at a strip of rows starting at row `y0`; `truth_change` holds
    /// whole rows of `width` pixels.
    pub fn push_strip(&mut self, y0: usize, width: usize, truth_change: &[bool]) {
        let rows = truth_change.len() / width;
        for (i, site) in self.sites.iter().enumerate() {
            let Some((c0, r0, c1, r1)) = site.range else {
                continue;
            };
            if r1 < y0 || r0 >= y0 + rows {
                continue;
            }
            let row_range = r0.max(y0)..=r1.min(y0 + rows - 1);
            let row_of = |r: usize| &truth_change[(r - y0) * width..(r - y0 + 1) * width];
            let mut change = 0u64;
            if self.cover[i].0 {
                for r in row_range.clone() {
                    let row = row_of(r);
                    change += (c0..=c1.min(width - 1))
                        .filter(|&c| row[c] && site.touches(c, r))
                        .count() as u64;
                }
            } else {
                for r in row_range.clone() {
                    let row = row_of(r);
                    for (a, b) in site.centre_runs(r, width) {
                        change += row[a..b].iter().filter(|&&t| t).count() as u64;
                    }
                }
            }
            self.change[i] += change;
            let hit = &mut self.touching[i];
            if *hit {
                continue;
            }
            'rows: for r in row_range {
                let row = row_of(r);
                for (c, &change) in row.iter().enumerate().take(c1 + 1).skip(c0) {
                    if change && site.touches(c, r) {
                        *hit = true;
                        break 'rows;
                    }
                }
            }
        }
    }

    pub fn finish(self, file: &Path) -> SiteScores {
        let mut s = SiteScores {
            file: file.to_path_buf(),
            sites: 0,
            outside: 0,
            touching: 0,
            precision: 0.0,
            true_sites: 0,
            true_precision: 0.0,
            top: Vec::new(),
            ranked_by: "rank",
            by_kind: BTreeMap::new(),
        };
        let mut judged = Vec::new();
        for (i, (site, &hit)) in self.sites.iter().zip(&self.touching).enumerate() {
            if !site.on_grid() {
                s.outside += 1;
                continue;
            }
            let is_true = is_true_site(self.cover[i].1, self.change[i]);
            judged.push(Judged {
                rank: site.rank,
                order: i,
                is_true,
            });
            s.sites += 1;
            s.touching += hit as u64;
            s.true_sites += is_true as u64;
            let k = s.by_kind.entry(site.kind.clone()).or_default();
            k.sites += 1;
            k.touching += hit as u64;
            k.true_sites += is_true as u64;
        }
        let ranked = judged.iter().filter(|j| j.rank.is_some()).count();
        s.ranked_by = if ranked == judged.len() {
            "rank"
        } else if ranked == 0 {
            "file order"
        } else {
            "rank, then file order"
        };
        s.top = top_k(&judged, &TOP_K);
        s.precision = ratio(s.touching as f64, s.sites as f64);
        s.true_precision = ratio(s.true_sites as f64, s.sites as f64);
        for k in s.by_kind.values_mut() {
            k.precision = ratio(k.touching as f64, k.sites as f64);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<Vec<(f64, f64)>> {
        vec![vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
    }

    #[test]
    fn touches_inside_edge_and_small() {
        // Covers pixels 2..=4 in x and 1..=2 in y, cutting through them.
        let s = Site::from_pixel_polygons("a", vec![square(2.5, 1.5, 4.5, 2.5)], 10, 10);
        assert!(s.touches(2, 1) && s.touches(3, 2) && s.touches(4, 2));
        assert!(!s.touches(1, 1) && !s.touches(5, 2) && !s.touches(3, 3) && !s.touches(3, 0));
        // Smaller than a pixel: touches the pixel it lies in only.
        let s = Site::from_pixel_polygons("a", vec![square(6.2, 6.2, 6.4, 6.4)], 10, 10);
        assert!(s.touches(6, 6));
        assert!(!s.touches(5, 6) && !s.touches(7, 7));
        // A point.
        let s = Site::from_pixel_polygons("p", vec![vec![vec![(1.5, 8.5)]]], 10, 10);
        assert!(s.touches(1, 8) && !s.touches(1, 7));
    }

    #[test]
    fn big_polygon_and_hole() {
        let mut poly = square(0.0, 0.0, 9.0, 9.0);
        poly.push(vec![
            (3.0, 3.0),
            (6.0, 3.0),
            (6.0, 6.0),
            (3.0, 6.0),
            (3.0, 3.0),
        ]);
        let s = Site::from_pixel_polygons("a", vec![poly], 10, 10);
        assert!(s.touches(1, 1), "centre inside, no edge near");
        assert!(!s.touches(4, 4), "inside the hole");
        assert!(s.touches(3, 4), "on the hole's edge");
        assert!(s.touches(9, 9), "shares the corner point (9, 9)");
        assert!(s.touches(8, 8));
    }

    #[test]
    fn segment_box() {
        assert!(segment_hits_box(
            (-1.0, 0.5),
            (2.0, 0.5),
            0.0,
            0.0,
            1.0,
            1.0
        ));
        assert!(!segment_hits_box(
            (-1.0, 1.5),
            (2.0, 1.5),
            0.0,
            0.0,
            1.0,
            1.0
        ));
        assert!(segment_hits_box((0.5, 0.5), (0.5, 0.5), 0.0, 0.0, 1.0, 1.0));
        assert!(!segment_hits_box(
            (1.5, 0.5),
            (1.5, 0.5),
            0.0,
            0.0,
            1.0,
            1.0
        ));
        // Diagonal missing the corner.
        assert!(!segment_hits_box(
            (1.2, 0.0),
            (2.0, 1.0),
            0.0,
            0.0,
            1.0,
            1.0
        ));
    }

    #[test]
    fn checker_counts_by_kind_and_strips() {
        let w = 6;
        let mut truth = vec![false; w * 6];
        truth[4 * w + 4] = true; // pixel (4, 4)
        let sites = vec![
            Site::from_pixel_polygons("building", vec![square(3.5, 3.5, 4.5, 4.5)], w, 6), // touches (4,4)
            Site::from_pixel_polygons("building", vec![square(0.2, 0.2, 0.8, 0.8)], w, 6), // no change there
            Site::from_pixel_polygons("road", vec![square(4.9, 3.1, 5.9, 3.9)], w, 6), // touches (4,3),(5,3) only
            Site::from_pixel_polygons("road", vec![square(20.0, 20.0, 21.0, 21.0)], w, 6), // off the grid
        ];
        let mut ck = SiteChecker::new(sites, w, 6);
        for y0 in (0..6).step_by(4) {
            let rows = 4.min(6 - y0);
            ck.push_strip(y0, w, &truth[y0 * w..(y0 + rows) * w]);
        }
        let s = ck.finish(Path::new("s.geojson"));
        assert_eq!((s.sites, s.outside, s.touching), (3, 1, 1));
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            s.by_kind["building"],
            KindScores {
                sites: 2,
                touching: 1,
                precision: 0.5,
                // (4, 4)'s site covers pixel (3, 3) only: its centre is the one inside.
                true_sites: 0
            }
        );
        assert_eq!(
            s.by_kind["road"],
            KindScores {
                sites: 1,
                touching: 0,
                precision: 0.0,
                true_sites: 0
            }
        );
    }

    fn ranked(rank: u64, polygons: Vec<Vec<Vec<(f64, f64)>>>) -> Site {
        let mut s = Site::from_pixel_polygons("x", polygons, 10, 10);
        s.rank = Some(rank);
        s
    }

    #[test]
    fn true_sites_by_covered_pixels_across_strips() {
        // Truth change: cols 0..=2, rows 2..=5 (12 pixels).
        let w = 10;
        let mut truth = vec![false; w * 10];
        for r in 2..=5 {
            for c in 0..=2 {
                truth[r * w + c] = true;
            }
        }
        let sites = vec![
            // rank 3: exactly the 12 change pixels: true.
            ranked(3, vec![square(0.0, 2.0, 3.0, 6.0)]),
            // rank 1: cols 2..=7, rows 2..=5, 24 pixels, 4 changed (17 %): false, though it
            // touches change (and would hold 8 change pixels counted all-touched).
            ranked(1, vec![square(2.0, 2.0, 8.0, 6.0)]),
            // rank 2: cols 1..=2, rows 5..=7, 6 pixels, 2 changed (33 %): true.
            ranked(2, vec![square(1.0, 5.0, 3.0, 8.0)]),
            // rank 4: inside pixel (8, 8), no change: false.
            ranked(4, vec![square(8.2, 8.2, 8.4, 8.4)]),
            // rank 5: a point in change pixel (1, 3): true by the one pixel it lies in.
            ranked(5, vec![vec![vec![(1.5, 3.5)]]]),
            // rank 6: the whole grid, 12 of 100 changed: true by the 5-pixel arm.
            ranked(6, vec![square(0.0, 0.0, 10.0, 10.0)]),
        ];
        for strip in [1, 3, 10] {
            let mut ck = SiteChecker::new(sites.clone(), w, 10);
            for y0 in (0..10).step_by(strip) {
                let rows = strip.min(10 - y0);
                ck.push_strip(y0, w, &truth[y0 * w..(y0 + rows) * w]);
            }
            assert_eq!(ck.change, vec![12, 4, 2, 0, 1, 12], "strip {strip}");
            assert_eq!(
                ck.cover.iter().map(|c| c.1).collect::<Vec<_>>(),
                vec![12, 24, 6, 1, 1, 100]
            );
            let s = ck.finish(Path::new("s.geojson"));
            assert_eq!((s.sites, s.touching, s.true_sites), (6, 5, 4));
            assert_eq!(s.ranked_by, "rank");
            assert_eq!(s.top.len(), 3);
            for t in &s.top {
                assert_eq!((t.sites, t.true_sites), (6, 4), "k {}", t.k);
            }
        }
    }

    #[test]
    fn geojson_geometries() {
        let g: Value = serde_json::from_str(r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}"#).unwrap();
        assert_eq!(geometry_polygons(&g).unwrap().len(), 2);
        let g: Value =
            serde_json::from_str(r#"{"type":"Point","coordinates":[5.5,40.1]}"#).unwrap();
        assert_eq!(
            geometry_polygons(&g).unwrap(),
            vec![vec![vec![(5.5, 40.1)]]]
        );
        let g: Value =
            serde_json::from_str(r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#).unwrap();
        assert!(geometry_polygons(&g).unwrap_err().contains("LineString"));
    }
}
