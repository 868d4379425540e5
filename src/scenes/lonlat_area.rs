//! The area a search or a fetch is about, as a lon/lat (WGS 84) polygon:
//! from a `W,S,E,N` box, a `LAT,LON` point with a buffer, or a vector file.

use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{Geometry, LayerAccess};
use std::path::{Path, PathBuf};

/// An area in lon/lat.
#[derive(Debug, Clone)]
pub struct LonLatArea {
    /// GeoJSON geometry (RFC 7946 order: lon, lat).
    pub geojson: serde_json::Value,
    /// [west, south, east, north]
    pub bbox: [f64; 4],
    /// The vector file it came from, if any.
    pub file: Option<PathBuf>,
}

/// Kilometres per degree of latitude.
const KM_PER_DEG: f64 = 111.32;

impl LonLatArea {
    /// A `W,S,E,N` box in degrees.
    pub fn from_bbox(text: &str) -> Result<LonLatArea> {
        let v = numbers(text, 4).map_err(|m| Error::invalid(format!("--bbox {text:?}: {m}")))?;
        let (w, s, e, n) = (v[0], v[1], v[2], v[3]);
        if !(w < e && s < n && (-180.0..=180.0).contains(&w) && (-180.0..=180.0).contains(&e))
            || !((-90.0..=90.0).contains(&s) && (-90.0..=90.0).contains(&n))
        {
            return Err(Error::invalid(format!(
                "--bbox {text:?}: expected W,S,E,N in degrees with W < E and S < N"
            )));
        }
        Ok(Self::boxed(w, s, e, n))
    }

    /// A square of `buffer_km` around a `LAT,LON` point.
    pub fn from_point(text: &str, buffer_km: f64) -> Result<LonLatArea> {
        let v = numbers(text, 2).map_err(|m| Error::invalid(format!("--point {text:?}: {m}")))?;
        let (lat, lon) = (v[0], v[1]);
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(Error::invalid(format!(
                "--point {text:?}: expected LAT,LON in degrees (latitude first)"
            )));
        }
        if !(buffer_km > 0.0) {
            return Err(Error::invalid("--buffer-km must be positive"));
        }
        let dlat = buffer_km / KM_PER_DEG;
        let dlon = buffer_km / (KM_PER_DEG * lat.to_radians().cos().max(1e-6));
        Ok(Self::boxed(lon - dlon, lat - dlat, lon + dlon, lat + dlat))
    }

    /// The union of the polygons of a vector file, in lon/lat.
    pub fn from_file(path: &Path) -> Result<LonLatArea> {
        let ds = gdal::Dataset::open(path).map_err(|e| {
            Error::input(
                path,
                format!("cannot open area of interest: {}", gdal_msg(&e)),
            )
        })?;
        let mut wgs84 =
            SpatialRef::from_epsg(4326).map_err(|e| Error::input(path, gdal_msg(&e)))?;
        wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let mut union: Option<Geometry> = None;
        for mut layer in ds.layers() {
            let srs = layer.spatial_ref();
            for f in layer.features() {
                let Some(g) = f.geometry() else { continue };
                let mut g = g.clone();
                if let Some(mut s) = srs.clone() {
                    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                    g.set_spatial_ref(s);
                    g = g.transform_to(&wgs84).map_err(|e| {
                        Error::input(path, format!("cannot reproject: {}", gdal_msg(&e)))
                    })?;
                }
                union = Some(match union {
                    None => g,
                    Some(u) => u.union(&g).unwrap_or(u),
                });
            }
        }
        let g = union.ok_or_else(|| Error::input(path, "has no geometries"))?;
        let env = g.envelope();
        let json = g
            .json()
            .map_err(|e| Error::input(path, gdal_msg(&e)))
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| Error::input(path, e.to_string()))
            })?;
        Ok(LonLatArea {
            geojson: json,
            bbox: [env.MinX, env.MinY, env.MaxX, env.MaxY],
            file: Some(path.to_path_buf()),
        })
    }

    fn boxed(w: f64, s: f64, e: f64, n: f64) -> LonLatArea {
        LonLatArea {
            geojson: serde_json::json!({"type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}),
            bbox: [w, s, e, n],
            file: None,
        }
    }

    /// The area as an OGR geometry (lon/lat order).
    pub fn geometry(&self) -> Result<Geometry> {
        Geometry::from_geojson(&self.geojson.to_string())
            .map_err(|e| Error::invalid(format!("area geometry: {}", gdal_msg(&e))))
    }

    /// The area as a GeoJSON FeatureCollection (for `--aoi` of detect/batch).
    pub fn feature_collection(&self) -> serde_json::Value {
        serde_json::json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": self.geojson}]})
    }
}

fn numbers(text: &str, n: usize) -> std::result::Result<Vec<f64>, String> {
    let v: Vec<f64> = text
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("expected {n} comma-separated numbers"))?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("expected {n} comma-separated numbers"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_points() {
        let a = LonLatArea::from_bbox("23.2,24.1,23.4,24.3").unwrap();
        assert_eq!(a.bbox, [23.2, 24.1, 23.4, 24.3]);
        assert!(LonLatArea::from_bbox("23.4,24.1,23.2,24.3").is_err());
        assert!(LonLatArea::from_bbox("1,2,3").is_err());
        // Kufra, 10 km: 20 km across, wider in degrees of longitude.
        let p = LonLatArea::from_point("24.178,23.314", 10.0).unwrap();
        let [w, s, e, n] = p.bbox;
        assert!(((n - s) * KM_PER_DEG - 20.0).abs() < 1e-9);
        assert!(e - w > n - s);
        assert!(((w + e) / 2.0 - 23.314).abs() < 1e-9);
        assert!(LonLatArea::from_point("123,10", 10.0).is_err());
    }
}
