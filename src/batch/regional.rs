//! One site per structure across overlapping tiles: neighbouring Sentinel-2
//! tiles overlap by about 10 km (and across UTM zones), so a structure there
//! is found by two pairs of the same dates, each on its own grid. The batch
//! index's merged layer keeps one observation of it and lists every pair
//! that saw it.
//!
//! Two sites of different pairs with the same before and after dates are
//! the same site when their outlines (lon/lat) overlap by at least
//! [`MIN_OVERLAP`] of the smaller outline's area (GEOS through OGR; a ratio
//! of areas, so degrees serve as well as metres at a site's scale). A match
//! is transitive: sites chained by matches are one site (a structure split
//! in two by one grid and whole on the other). The kept observation is the
//! best: highest score, then largest area, then the earlier pair of the
//! list; when its pair saw the site in several parts, all those parts are
//! kept (they never overlap each other), so the kept outlines cover what
//! the dropped ones covered.
//! Candidates come from a grid of [`CELL_DEG`] cells over the sites' bounding
//! boxes, so the cost follows the number of sites, not its square.

use crate::error::{Error, Result};
use crate::union_find::UnionFind;
use gdal::vector::Geometry;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Share of the smaller outline that must lie inside the other outline for
/// two observations to be one site: a half-pixel shift between grids keeps
/// most of even a small site's area in common, while neighbouring sites
/// that merely touch after resampling share a sliver.
pub const MIN_OVERLAP: f64 = 0.2;

/// Cell of the spatial index, in degrees (about 1 km): a site meets the
/// sites of the cells its bounding box covers.
pub const CELL_DEG: f64 = 0.01;

/// One pair's site, as the matching sees it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Index of the pair (in the order the layers are given).
    pub pair: usize,
    /// The site's id in its pair's layer.
    pub id: String,
    /// Before and after dates: only sites of the same dates match.
    pub dates: (String, String),
    pub score: f64,
    pub area_m2: f64,
    /// lon0, lat0, lon1, lat1.
    pub bbox: [f64; 4],
    /// The outline as GeoJSON geometry text.
    pub geometry: String,
}

/// The de-duplicated layer: which observations give way to a better one of
/// the same site, and which pairs saw each kept site.
#[derive(Debug, Default)]
pub struct Regional {
    /// (pair, id) of the kept observations of sites seen by more than one
    /// pair -> those pairs (sorted indices).
    shared: HashMap<(usize, String), Vec<usize>>,
    /// (pair, id) of the observations of sites kept from another one.
    dropped: std::collections::HashSet<(usize, String)>,
}

impl Regional {
    /// The pairs (sorted indices) that saw the site of `pair`'s site `id`,
    /// or `None` when another observation of it is kept. A site the
    /// matching never saw is its own pair's only.
    pub fn seen_by(&self, pair: usize, id: &str) -> Option<Vec<usize>> {
        let key = (pair, id.to_string());
        if self.dropped.contains(&key) {
            return None;
        }
        Some(self.shared.get(&key).cloned().unwrap_or_else(|| vec![pair]))
    }

    /// How many observations gave way to a better one of the same site.
    pub fn merged(&self) -> usize {
        self.dropped.len()
    }

    /// Matches `obs` (see the module's doc).
    pub fn build(obs: &[Observation]) -> Regional {
        let mut sets = UnionFind::new(obs.len());
        let mut outlines: Vec<Option<Option<(Geometry, f64)>>> = vec![None; obs.len()];
        for (i, j) in candidates(obs) {
            for k in [i, j] {
                if outlines[k].is_none() {
                    outlines[k] = Some(outline(&obs[k].geometry));
                }
            }
            let (Some(Some((a, area_a))), Some(Some((b, area_b)))) = (&outlines[i], &outlines[j])
            else {
                continue;
            };
            let small = area_a.min(*area_b);
            if small <= 0.0 {
                continue;
            }
            let common = a.intersection(b).map(|g| g.area()).unwrap_or(0.0);
            if common >= MIN_OVERLAP * small {
                sets.union(i, j);
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..obs.len() {
            groups.entry(sets.find(i)).or_default().push(i);
        }
        let mut r = Regional::default();
        for members in groups.values().filter(|m| m.len() > 1) {
            let best = *members
                .iter()
                .min_by(|&&a, &&b| better(&obs[a], &obs[b]).then(a.cmp(&b)))
                .expect("a group has a member");
            let pairs: Vec<usize> = members
                .iter()
                .map(|&m| obs[m].pair)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for &m in members {
                let key = (obs[m].pair, obs[m].id.clone());
                if obs[m].pair == obs[best].pair {
                    r.shared.insert(key, pairs.clone());
                } else {
                    r.dropped.insert(key);
                }
            }
        }
        r
    }
}

/// Orders observations best first: higher score, larger area, earlier pair.
fn better(a: &Observation, b: &Observation) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(b.area_m2.total_cmp(&a.area_m2))
        .then(a.pair.cmp(&b.pair))
}

/// The outline and its area (square degrees), if it is a usable polygon.
fn outline(geojson: &str) -> Option<(Geometry, f64)> {
    let g = Geometry::from_geojson(geojson).ok()?;
    let area = g.area();
    (area > 0.0).then_some((g, area))
}

/// Pairs of observations (i < j) of different pairs and the same dates whose
/// bounding boxes meet, each once.
fn candidates(obs: &[Observation]) -> Vec<(usize, usize)> {
    let mut dates: HashMap<&(String, String), u32> = HashMap::new();
    let mut cells: HashMap<(u32, i64, i64), Vec<usize>> = HashMap::new();
    for (i, o) in obs.iter().enumerate() {
        let n = dates.len() as u32;
        let d = *dates.entry(&o.dates).or_insert(n);
        let c = |v: f64| (v / CELL_DEG).floor() as i64;
        for x in c(o.bbox[0])..=c(o.bbox[2]) {
            for y in c(o.bbox[1])..=c(o.bbox[3]) {
                cells.entry((d, x, y)).or_default().push(i);
            }
        }
    }
    let meet =
        |a: &[f64; 4], b: &[f64; 4]| a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
    let mut out = BTreeSet::new();
    for members in cells.values() {
        // Few pairs see a cell: compare across pairs only.
        let mut by_pair: Vec<(usize, Vec<usize>)> = Vec::new();
        for &m in members {
            match by_pair.iter_mut().find(|(p, _)| *p == obs[m].pair) {
                Some((_, v)) => v.push(m),
                None => by_pair.push((obs[m].pair, vec![m])),
            }
        }
        for (a, (_, xs)) in by_pair.iter().enumerate() {
            for (_, ys) in &by_pair[a + 1..] {
                for &i in xs {
                    for &j in ys {
                        if meet(&obs[i].bbox, &obs[j].bbox) {
                            out.insert((i.min(j), i.max(j)));
                        }
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Reads the observations of one pair's sites.geojson (`pair` is its index).
pub fn read_observations(pair: usize, file: &Path) -> Result<Vec<Observation>> {
    #[derive(Deserialize)]
    struct Collection {
        features: Vec<Feature>,
    }
    #[derive(Deserialize)]
    struct Feature {
        #[serde(default)]
        bbox: Option<[f64; 4]>,
        geometry: Box<serde_json::value::RawValue>,
        properties: Props,
    }
    #[derive(Deserialize)]
    struct Props {
        id: serde_json::Value,
        #[serde(default)]
        score: Option<f64>,
        #[serde(default)]
        area_m2: Option<f64>,
        #[serde(default)]
        before_date: Option<String>,
        #[serde(default)]
        after_date: Option<String>,
    }
    let bad = |e: String| Error::input(file, format!("not a sites GeoJSON: {e}"));
    let text = std::fs::read_to_string(file).map_err(|e| Error::input(file, e))?;
    let fc: Collection = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    fc.features
        .into_iter()
        .map(|f| {
            let geometry = f.geometry.get().to_string();
            let bbox = match f.bbox {
                Some(b) => b,
                None => {
                    let g = Geometry::from_geojson(&geometry)
                        .map_err(|e| bad(format!("site {}: {e}", f.properties.id)))?;
                    let e = g.envelope();
                    [e.MinX, e.MinY, e.MaxX, e.MaxY]
                }
            };
            Ok(Observation {
                pair,
                id: id_text(&f.properties.id),
                dates: (
                    f.properties.before_date.unwrap_or_default(),
                    f.properties.after_date.unwrap_or_default(),
                ),
                score: f.properties.score.unwrap_or(0.0),
                area_m2: f.properties.area_m2.unwrap_or(0.0),
                bbox,
                geometry,
            })
        })
        .collect()
}

/// A site id as the layers' rows name it (a number, or a string).
pub fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(pair: usize, id: &str, x: f64, y: f64, side: f64, score: f64) -> Observation {
        let ring = [
            (x, y),
            (x + side, y),
            (x + side, y + side),
            (x, y + side),
            (x, y),
        ]
        .iter()
        .map(|(a, b)| format!("[{a},{b}]"))
        .collect::<Vec<_>>()
        .join(",");
        Observation {
            pair,
            id: id.into(),
            dates: ("2020-01-01".into(), "2021-01-01".into()),
            score,
            area_m2: side * side * 1e10,
            bbox: [x, y, x + side, y + side],
            geometry: format!("{{\"type\":\"Polygon\",\"coordinates\":[[{ring}]]}}"),
        }
    }

    #[test]
    fn overlapping_sites_of_two_pairs_become_one_listing_both() {
        let s = 0.001; // about 100 m
        let obs = vec![
            square(0, "1", 10.0, 20.0, s, 0.7),
            // The same site on a grid shifted by a tenth of it, seen better.
            square(1, "5", 10.0 + s / 10.0, 20.0 + s / 10.0, s, 0.9),
            // Elsewhere: only pair 0 sees it.
            square(0, "2", 10.5, 20.5, s, 0.8),
            // Touching pair 0's site 2 by a sliver: another site.
            square(1, "6", 10.5 + 0.95 * s, 20.5, s, 0.8),
        ];
        let r = Regional::build(&obs);
        assert_eq!(r.seen_by(0, "1"), None, "the weaker observation goes");
        assert_eq!(r.seen_by(1, "5"), Some(vec![0, 1]));
        assert_eq!(r.seen_by(0, "2"), Some(vec![0]));
        assert_eq!(r.seen_by(1, "6"), Some(vec![1]));
        assert_eq!(r.merged(), 1);
    }

    #[test]
    fn same_pair_or_other_dates_never_merge() {
        let s = 0.001;
        let mut later = square(1, "1", 10.0, 20.0, s, 0.9);
        later.dates.1 = "2022-01-01".into();
        let obs = vec![
            square(0, "1", 10.0, 20.0, s, 0.5),
            square(0, "2", 10.0, 20.0, s, 0.5),
            later,
        ];
        let r = Regional::build(&obs);
        for (p, id) in [(0, "1"), (0, "2"), (1, "1")] {
            assert_eq!(r.seen_by(p, id).map(|v| v.len()), Some(1), "{p}/{id}");
        }
        assert_eq!(r.merged(), 0);
    }

    #[test]
    fn a_site_split_on_one_grid_is_one_site() {
        let s = 0.001;
        let whole = square(0, "1", 10.0, 20.0, 2.0 * s, 0.6);
        let left = square(1, "1", 10.0, 20.0, s, 0.9);
        let right = square(1, "2", 10.0 + s, 20.0 + s, s, 0.8);
        let r = Regional::build(&[whole, left, right]);
        // Pair 1 saw it best, in two parts: both kept.
        assert_eq!(r.seen_by(1, "1"), Some(vec![0, 1]));
        assert_eq!(r.seen_by(1, "2"), Some(vec![0, 1]));
        assert_eq!(r.seen_by(0, "1"), None);
        assert_eq!(r.merged(), 1);
    }

    #[test]
    fn ties_keep_the_larger_then_the_earlier_pair() {
        let s = 0.001;
        let r = Regional::build(&[
            square(0, "1", 10.0, 20.0, s, 0.8),
            square(1, "1", 10.0, 20.0, 1.1 * s, 0.8),
        ]);
        assert_eq!(r.seen_by(1, "1"), Some(vec![0, 1]));
        let r = Regional::build(&[
            square(0, "1", 10.0, 20.0, s, 0.8),
            square(1, "1", 10.0, 20.0, s, 0.8),
        ]);
        assert_eq!(r.seen_by(0, "1"), Some(vec![0, 1]));
    }

    #[test]
    fn many_sites_across_cells() {
        // Two pairs over the same 60 x 60 sites, the second shifted a little:
        // each site found once, listing both pairs.
        let s = 0.0005;
        let mut obs = Vec::new();
        for p in 0..2 {
            for i in 0..60 {
                for j in 0..60 {
                    let d = p as f64 * s / 8.0;
                    let id = format!("{i}-{j}");
                    obs.push(square(
                        p,
                        &id,
                        30.0 + i as f64 * 0.003 + d,
                        20.0 + j as f64 * 0.003,
                        s,
                        0.5,
                    ));
                }
            }
        }
        let r = Regional::build(&obs);
        assert_eq!(r.merged(), 3600);
        assert!(obs[..3600]
            .iter()
            .all(|o| r.seen_by(0, &o.id) == Some(vec![0, 1])));
    }
}
