//! An area of interest in WGS 84 longitude/latitude, from whatever the user
//! names: a vector file, a `LAT,LON` point, a preset place (a box around it)
//! or a preset region.
//!
//! Why one type: `tiles`, `scenes`, `detect --aoi` and the batch list's aoi
//! column all start from "an area", and should accept the same spellings.
//! Edges are straight lines in longitude/latitude, as in GeoJSON (RFC 7946);
//! areas crossing the antimeridian are not supported.

use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::LayerAccess;
use serde_json::{json, Value};
use std::path::Path;

/// A ring: [lon, lat] vertices, closed (first == last).
pub type Ring = Vec<[f64; 2]>;
/// A polygon: the exterior ring, then holes.
pub type Polygon = Vec<Ring>;

/// Where an [`Area`] came from, recorded in run.json and printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(std::path::PathBuf),
    /// A `LAT,LON` point, with the half-side of the box around it.
    Point {
        lat: f64,
        lon: f64,
        buffer_km: f64,
    },
    /// A preset place (its name as shipped), with the box half-side.
    Place {
        name: String,
        lat: f64,
        lon: f64,
        buffer_km: f64,
    },
    /// A preset region, by name.
    Region(String),
    /// A box given as [west, south, east, north] degrees.
    Box([f64; 4]),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub origin: Origin,
    /// Polygons in WGS 84 lon/lat (degrees).
    pub polygons: Vec<Polygon>,
}

/// Metres per degree of latitude and of longitude at `lat` on WGS 84 (the
/// meridional and prime-vertical radii of curvature).
pub fn metres_per_degree(lat: f64) -> (f64, f64) {
    let (a, f) = (super::mgrs::A, super::mgrs::F);
    let e2 = f * (2.0 - f);
    let s = lat.to_radians().sin();
    let w = (1.0 - e2 * s * s).sqrt();
    let m = a * (1.0 - e2) / (w * w * w);
    let n = a / w;
    (m.to_radians(), (n * lat.to_radians().cos()).to_radians())
}

/// Parses "LAT,LON" (decimal degrees, optional spaces). None when `s` is not
/// two numbers; an error when they are out of range.
pub fn parse_lat_lon(s: &str) -> Option<Result<(f64, f64)>> {
    let (a, b) = s.split_once(',')?;
    let lat: f64 = a.trim().parse().ok()?;
    let lon: f64 = b.trim().parse().ok()?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Some(Err(Error::invalid(format!(
            "{s}: not a LAT,LON point (latitude -90..90, longitude -180..180)"
        ))));
    }
    Some(Ok((lat, lon)))
}

/// Parses "W,S,E,N" (decimal degrees): None when `s` is not four numbers;
/// an error when they are out of range or not west < east, south < north.
pub fn parse_bbox(s: &str) -> Option<Result<[f64; 4]>> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    let [w, so, e, n] = <[f64; 4]>::try_from(v).ok()?;
    let lon = -180.0..=180.0;
    let lat = -90.0..=90.0;
    let ok = w < e && so < n && lon.contains(&w) && lon.contains(&e);
    if !(ok && lat.contains(&so) && lat.contains(&n)) {
        return Some(Err(Error::invalid(format!(
            "{s}: not a W,S,E,N box (degrees, west < east, south < north)"
        ))));
    }
    Some(Ok([w, so, e, n]))
}

impl Area {
    /// The lon/lat box [west, south, east, north].
    pub fn from_bbox(b: [f64; 4]) -> Area {
        let [w, s, e, n] = b;
        Area {
            origin: Origin::Box(b),
            polygons: vec![vec![vec![[w, s], [e, s], [e, n], [w, n], [w, s]]]],
        }
    }

    /// A lon/lat box of half-side `buffer_km` around a point (half-sides
    /// measured along the meridian and the parallel through the point).
    /// A buffer of 0 gives a degenerate box: the point itself.
    pub fn around_point(lat: f64, lon: f64, buffer_km: f64) -> Result<Area> {
        if !(0.0..=1000.0).contains(&buffer_km) || !buffer_km.is_finite() {
            return Err(Error::invalid(format!(
                "--buffer-km {buffer_km}: expected 0..1000 km"
            )));
        }
        let (my, mx) = metres_per_degree(lat);
        let dlat = buffer_km * 1000.0 / my;
        let dlon = buffer_km * 1000.0 / mx.max(1.0);
        let (s, n) = ((lat - dlat).max(-90.0), (lat + dlat).min(90.0));
        let (w, e) = (lon - dlon, lon + dlon);
        Ok(Area {
            origin: Origin::Point {
                lat,
                lon,
                buffer_km,
            },
            polygons: vec![vec![vec![[w, s], [e, s], [e, n], [w, n], [w, s]]]],
        })
    }

    /// Reads the polygons of any OGR vector file (GeoJSON without a `crs`
    /// member is WGS 84), reprojected to lon/lat.
    pub fn from_file(path: &Path) -> Result<Area> {
        let ds = gdal::Dataset::open(path).map_err(|e| {
            Error::input(
                path,
                format!("cannot open area of interest: {}", gdal_msg(&e)),
            )
        })?;
        let mut wgs = SpatialRef::from_epsg(4326).map_err(|e| Error::input(path, gdal_msg(&e)))?;
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let mut polygons = Vec::new();
        for mut layer in ds.layers() {
            let layer_srs = layer.spatial_ref();
            for (i, feature) in layer.features().enumerate() {
                let Some(g) = feature.geometry() else {
                    continue;
                };
                let mut g = g.clone();
                if let Some(s) = &layer_srs {
                    let mut s = s.clone();
                    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                    g.set_spatial_ref(s);
                    g = g.transform_to(&wgs).map_err(|e| {
                        Error::input(path, format!("cannot reproject: {}", gdal_msg(&e)))
                    })?;
                }
                let text = g.json().map_err(|e| {
                    Error::input(path, format!("feature {}: {}", i + 1, gdal_msg(&e)))
                })?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| Error::input(path, format!("feature {}: {e}", i + 1)))?;
                polygons.extend(
                    polygons_of(&v)
                        .map_err(|m| Error::input(path, format!("feature {}: {m}", i + 1)))?,
                );
            }
        }
        if polygons.is_empty() {
            return Err(Error::input(path, "has no polygons"));
        }
        Ok(Area {
            origin: Origin::File(path.to_path_buf()),
            polygons,
        })
    }

    /// Bounds: [min lon, min lat, max lon, max lat].
    pub fn bbox(&self) -> [f64; 4] {
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for p in &self.polygons {
            for &[x, y] in p.iter().flatten() {
                b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            }
        }
        b
    }

    /// The single point the area was made from with a zero buffer, if so.
    pub fn as_point(&self) -> Option<(f64, f64)> {
        match self.origin {
            Origin::Point {
                lat,
                lon,
                buffer_km,
            }
            | Origin::Place {
                lat,
                lon,
                buffer_km,
                ..
            } if buffer_km == 0.0 => Some((lat, lon)),
            _ => None,
        }
    }

    /// Whether (lon, lat) lies inside (even-odd rule over all rings).
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        self.polygons
            .iter()
            .any(|p| p.iter().filter(|r| ring_contains(r, lon, lat)).count() % 2 == 1)
    }

    /// A short description: the file, the point or place and its box, or the region.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::File(p) => p.display().to_string(),
            Origin::Point {
                lat,
                lon,
                buffer_km,
            } if *buffer_km == 0.0 => {
                format!("{lat},{lon} (point)")
            }
            Origin::Point {
                lat,
                lon,
                buffer_km,
            } => {
                format!("{lat},{lon} (box of half-side {buffer_km} km)")
            }
            Origin::Place {
                name, buffer_km, ..
            } => format!("{name} (box of half-side {buffer_km} km)"),
            Origin::Region(n) => format!("region {n}"),
            Origin::Box([w, s, e, n]) => format!("{w},{s},{e},{n} (W,S,E,N box)"),
        }
    }

    /// The area as one GeoJSON Feature geometry (Polygon or MultiPolygon).
    pub fn geometry(&self) -> Value {
        if self.polygons.len() == 1 {
            json!({"type": "Polygon", "coordinates": self.polygons[0]})
        } else {
            json!({"type": "MultiPolygon", "coordinates": self.polygons})
        }
    }

    /// An RFC 7946 FeatureCollection with one feature, the area, and its
    /// origin in the properties.
    pub fn to_geojson(&self) -> Value {
        json!({
            "type": "FeatureCollection",
            "features": [{
                "type": "Feature",
                "properties": {"name": self.describe()},
                "geometry": self.geometry(),
            }]
        })
    }

    /// An OGR geometry in lon/lat (EPSG:4326, traditional axis order), for
    /// reprojection onto a raster grid.
    pub fn to_ogr(&self) -> Result<gdal::vector::Geometry> {
        let g = gdal::vector::Geometry::from_geojson(&self.geometry().to_string())
            .map_err(|e| Error::invalid(format!("{}: {}", self.describe(), gdal_msg(&e))))?;
        let mut wgs = SpatialRef::from_epsg(4326).map_err(|e| Error::invalid(gdal_msg(&e)))?;
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let mut g = g;
        g.set_spatial_ref(wgs);
        Ok(g)
    }
}

fn ring_contains(ring: &[[f64; 2]], lon: f64, lat: f64) -> bool {
    let mut hit = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        if (y1 > lat) != (y2 > lat) && lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1) {
            hit = !hit;
        }
    }
    hit
}

/// The polygons of a GeoJSON geometry (Polygon, MultiPolygon, or a
/// GeometryCollection of them).
pub fn polygons_of(g: &Value) -> std::result::Result<Vec<Polygon>, String> {
    let ty = g["type"].as_str().unwrap_or("");
    let parse = |c: &Value| -> std::result::Result<Polygon, String> {
        let rings: Vec<Ring> = serde_json::from_value(c.clone())
            .map_err(|e| format!("bad polygon coordinates: {e}"))?;
        if rings.is_empty() || rings.iter().any(|r| r.len() < 4) {
            return Err("a polygon ring has fewer than 4 positions".into());
        }
        Ok(rings)
    };
    match ty {
        "Polygon" => Ok(vec![parse(&g["coordinates"])?]),
        "MultiPolygon" => g["coordinates"]
            .as_array()
            .ok_or("MultiPolygon without coordinates")?
            .iter()
            .map(parse)
            .collect(),
        "GeometryCollection" => {
            let mut out = Vec::new();
            for m in g["geometries"].as_array().ok_or("no geometries")? {
                out.extend(polygons_of(m)?);
            }
            Ok(out)
        }
        other => Err(format!("is a {other}, expected a Polygon or MultiPolygon")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_box_has_the_buffer_as_half_side() {
        let a = Area::resolve("24.1787, 23.314", 10.0).unwrap();
        let [w, s, e, n] = a.bbox();
        let (my, mx) = metres_per_degree(24.1787);
        assert!(((n - s) / 2.0 * my - 10_000.0).abs() < 1.0);
        assert!(((e - w) / 2.0 * mx - 10_000.0).abs() < 1.0);
        // One degree of latitude at 24N is 110.8 km (WGS 84 meridian arc).
        assert!((my - 110_802.0).abs() < 50.0, "{my}");
        assert!(a.contains(23.314, 24.1787));
        assert!(!a.contains(23.6, 24.1787));
        assert!(Area::resolve("95,10", 1.0).is_err());
    }

    #[test]
    fn boxes() {
        let b = parse_bbox("23.2, 24.1,23.4,24.3").unwrap().unwrap();
        assert_eq!(b, [23.2, 24.1, 23.4, 24.3]);
        let a = Area::from_bbox(b);
        assert_eq!(a.bbox(), b);
        assert!(a.contains(23.3, 24.2) && !a.contains(23.5, 24.2));
        assert!(parse_bbox("23.4,24.1,23.2,24.3").unwrap().is_err());
        assert!(parse_bbox("1,2,3").is_none());
        assert!(parse_bbox("kufra").is_none());
    }

    #[test]
    fn resolves_places_regions_and_files() {
        let k = Area::resolve("kufra", 5.0).unwrap();
        assert!(matches!(&k.origin, Origin::Place { name, .. } if name == "Kufra Airport"));
        assert!(k.contains(23.314, 24.1787));
        let m = Area::resolve("Maaten al-Sarra", 10.0).unwrap();
        assert!(m.contains(21.8309, 21.6877));
        assert!(Area::resolve("HLKF", 10.0).is_ok());
        let r = Area::resolve("southern-libya", 10.0).unwrap();
        assert!(
            r.contains(23.314, 24.1787) && !r.contains(13.19, 32.89),
            "Tripoli is outside"
        );

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.geojson");
        std::fs::write(&f, k.to_geojson().to_string()).unwrap();
        let back = Area::resolve(f.to_str().unwrap(), 0.0).unwrap();
        assert_eq!(back.polygons.len(), 1);
        for (a, b) in back.polygons[0][0].iter().zip(&k.polygons[0][0]) {
            assert!((a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9);
        }
        let e = Area::resolve("Atlantis", 10.0).unwrap_err().to_string();
        assert!(
            e.contains("Atlantis") && e.contains("southern-libya"),
            "{e}"
        );
        let e = Area::resolve("missing.geojson", 10.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.geojson") && e.contains("not found"),
            "{e}"
        );
        let pts = dir.path().join("p.geojson");
        std::fs::write(&pts, r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2]}}]}"#).unwrap();
        let e = Area::resolve(pts.to_str().unwrap(), 10.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.geojson") && e.contains("Point"), "{e}");
    }
}
