//! Watchlist: named points of interest; sites near one are tagged with its
//! name and distance.
//!
//! Why: analysts follow known places (a base, a camp, a crossing); a new
//! site within a few kilometres of one matters more than one in open desert.
//! Points come from any OGR vector file (normally GeoJSON, RFC 7946 lon/lat),
//! each with a `name` property; they are reprojected to lon/lat. Distances
//! are great-circle (haversine) distances on the WGS 84 mean sphere
//! (R = 6371.0088 km) from the site's centroid, within 0.5% of the
//! ellipsoidal distance, ample for a tagging radius.

use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::LayerAccess;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchPoint {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchHit {
    pub name: String,
    pub distance_m: f64,
}

/// Mean Earth radius (IUGG), metres.
const R: f64 = 6_371_008.8;

pub fn haversine_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().min(1.0).asin()
}

/// Reads the watchlist; every problem names the file (and the feature).
pub fn read_watchlist(path: &Path) -> Result<Vec<WatchPoint>> {
    if !path.is_file() {
        return Err(Error::input(path, "watchlist not found"));
    }
    let ds = gdal::Dataset::open(path).map_err(|e| {
        // GDAL's message for an unrecognised file says nothing useful.
        let detail = gdal_msg(&e);
        let detail = if detail.contains("NULL pointer") { String::new() } else { format!(": {detail}") };
        Error::input(path, format!("cannot read the watchlist (expected GeoJSON points with a \"name\" property){detail}"))
    })?;
    let mut wgs = SpatialRef::from_epsg(4326).map_err(|e| Error::input(path, gdal_msg(&e)))?;
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut points = Vec::new();
    for mut layer in ds.layers() {
        let ct = match layer.spatial_ref() {
            Some(mut s) => {
                s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                Some(CoordTransform::new(&s, &wgs).map_err(|e| Error::input(path, gdal_msg(&e)))?)
            }
            None => None,
        };
        for (i, f) in layer.features().enumerate() {
            let n = i + 1;
            let name = match f
                .field_index("name")
                .ok()
                .and_then(|k| f.field_as_string(k).ok().flatten())
            {
                Some(s) if !s.trim().is_empty() => s.trim().to_string(),
                _ => {
                    return Err(Error::input(
                        path,
                        format!("feature {n} has no \"name\" property"),
                    ))
                }
            };
            let g = f.geometry().ok_or_else(|| {
                Error::input(path, format!("feature {n} ({name}) has no geometry"))
            })?;
            let gname = g.geometry_name();
            if !gname.eq_ignore_ascii_case("POINT") {
                return Err(Error::input(
                    path,
                    format!("feature {n} ({name}) is a {gname}, expected a Point"),
                ));
            }
            let (mut x, mut y, _) = g.get_point(0);
            if let Some(ct) = &ct {
                let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
                ct.transform_coords(&mut xs, &mut ys, &mut zs)
                    .map_err(|e| {
                        Error::input(path, format!("feature {n} ({name}): {}", gdal_msg(&e)))
                    })?;
                (x, y) = (xs[0], ys[0]);
            }
            if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
                return Err(Error::input(
                    path,
                    format!("feature {n} ({name}) is not a longitude/latitude point: ({x}, {y})"),
                ));
            }
            points.push(WatchPoint {
                name,
                lon: x,
                lat: y,
            });
        }
    }
    if points.is_empty() {
        return Err(Error::input(path, "the watchlist has no points"));
    }
    Ok(points)
}

/// The watch points a run uses, and where they came from (recorded in
/// run.json under `sites.watchlist`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chosen {
    #[serde(skip)]
    pub points: Vec<WatchPoint>,
    /// "file", "preset" or "none".
    pub source: &'static str,
    /// The file, or the preset region's name.
    pub name: Option<String>,
    /// True when chosen because the scene lies in a preset region (no
    /// `--watchlist` given).
    pub default: bool,
    pub points_count: usize,
}

/// Chooses the watchlist: `spec` is a vector file, a preset region name
/// (its places), or "none"; without one, the places of the preset region
/// containing the scene's centre `centre` (lon, lat), if any.
pub fn choose(spec: Option<&Path>, centre: Option<(f64, f64)>) -> Result<Chosen> {
    use crate::scenes::places;
    let preset = |r: &places::Region, default: bool| {
        let points: Vec<WatchPoint> = r
            .places()
            .into_iter()
            .map(|p| WatchPoint {
                name: p.name.clone(),
                lon: p.lon,
                lat: p.lat,
            })
            .collect();
        Chosen {
            source: "preset",
            name: Some(r.name.clone()),
            default,
            points_count: points.len(),
            points,
        }
    };
    let none = Chosen {
        points: Vec::new(),
        source: "none",
        name: None,
        default: false,
        points_count: 0,
    };
    match spec {
        Some(p) if p.is_file() => {
            let points = read_watchlist(p)?;
            Ok(Chosen {
                source: "file",
                name: Some(p.display().to_string()),
                default: false,
                points_count: points.len(),
                points,
            })
        }
        Some(p) if p.as_os_str().eq_ignore_ascii_case("none") => Ok(none),
        Some(p) => match p.to_str().and_then(places::find_region) {
            Some(r) => Ok(preset(r, false)),
            None => Err(Error::input(
                p,
                "watchlist not found (a GeoJSON file, a preset region name, or none)",
            )),
        },
        None => Ok(centre
            .and_then(|(lon, lat)| places::region_at(lon, lat))
            .map(|r| preset(r, true))
            .unwrap_or(none)),
    }
}

/// Watch points within `max_m` of (lon, lat), nearest first.
pub fn near(points: &[WatchPoint], lon: f64, lat: f64, max_m: f64) -> Vec<WatchHit> {
    let mut hits: Vec<WatchHit> = points
        .iter()
        .map(|p| WatchHit {
            name: p.name.clone(),
            distance_m: haversine_m(lon, lat, p.lon, p.lat),
        })
        .filter(|h| h.distance_m <= max_m)
        .collect();
    hits.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        // One degree of latitude on the mean sphere: 111.195 km.
        assert!((haversine_m(54.0, 24.0, 54.0, 25.0) - 111_195.1).abs() < 1.0);
        assert!(haversine_m(54.37, 24.45, 54.37, 24.45) == 0.0);
    }

    #[test]
    fn default_watchlist_is_the_region_of_the_scene() {
        // A scene centred on Kufra: the southern-libya places, by default.
        let c = choose(None, Some((23.3, 24.2))).unwrap();
        assert_eq!((c.source, c.default), ("preset", true));
        assert_eq!(c.name.as_deref(), Some("southern-libya"));
        assert!(c.points.iter().any(|p| p.name == "Kufra Airport"));
        assert!(c.points.iter().any(|p| p.name == "Matan al-Sarra Air Base"));
        assert_eq!(c.points_count, c.points.len());
        // Abu Dhabi lies in no preset region: no watchlist.
        let c = choose(None, Some((54.37, 24.45))).unwrap();
        assert_eq!((c.source, c.points.len()), ("none", 0));
        // "none" switches the default off; a region can be named anywhere.
        let c = choose(Some(Path::new("none")), Some((23.3, 24.2))).unwrap();
        assert_eq!((c.source, c.points.len()), ("none", 0));
        let c = choose(Some(Path::new("southern-libya")), Some((54.37, 24.45))).unwrap();
        assert_eq!((c.source, c.default), ("preset", false));
        assert!(!c.points.is_empty());
        let e = choose(Some(Path::new("nowhere.geojson")), None).unwrap_err();
        assert!(e.to_string().contains("nowhere.geojson"), "{e}");
    }

    #[test]
    fn reads_points_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("w.geojson");
        std::fs::write(
            &good,
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"name":"Camp A"},"geometry":{"type":"Point","coordinates":[54.6,24.3]}},
              {"type":"Feature","properties":{"name":"Gate"},"geometry":{"type":"Point","coordinates":[54.65,24.31]}}]}"#,
        )
        .unwrap();
        let pts = read_watchlist(&good).unwrap();
        assert_eq!(pts.len(), 2);
        assert_eq!(
            pts[0],
            WatchPoint {
                name: "Camp A".into(),
                lon: 54.6,
                lat: 24.3
            }
        );
        let hits = near(&pts, 54.6, 24.301, 5000.0);
        assert_eq!(hits[0].name, "Camp A");
        assert!((hits[0].distance_m - 111.2).abs() < 1.0, "{hits:?}");
        assert_eq!(hits.len(), 1, "Gate is 5.1 km away");

        let noname = dir.path().join("n.geojson");
        std::fs::write(&noname, r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[54.6,24.3]}}]}"#).unwrap();
        let e = read_watchlist(&noname).unwrap_err().to_string();
        assert!(e.contains("n.geojson") && e.contains("name"), "{e}");
        let line = dir.path().join("l.geojson");
        std::fs::write(&line, r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"x"},"geometry":{"type":"LineString","coordinates":[[54.6,24.3],[54.7,24.3]]}}]}"#).unwrap();
        let e = read_watchlist(&line).unwrap_err().to_string();
        assert!(e.contains("LINESTRING") || e.contains("Point"), "{e}");
        let junk = dir.path().join("j.geojson");
        std::fs::write(&junk, "not json").unwrap();
        assert!(read_watchlist(&junk)
            .unwrap_err()
            .to_string()
            .contains("j.geojson"));
        assert!(read_watchlist(&dir.path().join("missing.geojson"))
            .unwrap_err()
            .to_string()
            .contains("missing.geojson"));
    }
}
