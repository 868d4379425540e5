//! A finished run as the register sees it: its sites (from sites.geojson, in
//! lon/lat) and what run.json says about it (dates, inputs, grid, method).
//!
//! Why the published files and not the pipeline's internals: `register add`
//! must work on any finished run folder, also one written by an older
//! version or copied from another machine.

use crate::error::{Error, Result};
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::Geometry;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One site of a run.
#[derive(Debug, Clone)]
pub struct RunSite {
    /// The site's id in its run (sites.geojson `id`: its chip is chips/<id>.png).
    pub id: i64,
    pub rank: i64,
    pub kind: String,
    pub score: f64,
    pub area_m2: f64,
    /// Mean reflectance brightness before and after (NaN when unknown): tells
    /// a change that undoes an earlier one.
    pub brightness_before: f64,
    pub brightness_after: f64,
    /// Outline, lon/lat (EPSG:4326, x = lon).
    pub outline: Geometry,
    /// The same outline as polygons of rings of points.
    pub polys: super::matching::Polys,
}

/// One finished run.
pub struct RunInput {
    pub dir: PathBuf,
    /// Fingerprint of the inputs, options and dates: the same comparison
    /// gives the same id wherever its folder lies.
    pub run_id: String,
    pub before: String,
    pub after: String,
    pub before_date: String,
    pub after_date: String,
    /// MGRS tiles named in the inputs' file names (`39QZG`), comma-separated.
    pub tile: String,
    /// The output grid: EPSG code, size and geotransform.
    pub grid: String,
    pub method: String,
    pub threshold: f64,
    /// The area compared (the grid's outline, lon/lat).
    pub footprint: Geometry,
    pub sites: Vec<RunSite>,
    /// Its candidate compounds (none for a run without compounds.geojson).
    pub compounds: Vec<super::compounds::RunCompound>,
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The part of a sites.geojson the register reads. Typed, so a full
/// tile's file (tens of thousands of outlines) is read without a JSON
/// value per number.
#[derive(Deserialize)]
struct SitesFile {
    features: Vec<SiteFeature>,
}

#[derive(Deserialize)]
struct SiteFeature {
    #[serde(default)]
    id: Option<serde_json::Number>,
    geometry: Option<SiteGeometry>,
    #[serde(default)]
    properties: SiteProps,
}

#[derive(Deserialize)]
struct SiteGeometry {
    #[serde(rename = "type")]
    ty: String,
    coordinates: Nested,
}

#[derive(Deserialize, Default)]
struct SiteProps {
    id: Option<serde_json::Number>,
    rank: Option<serde_json::Number>,
    kind: Option<String>,
    score: Option<f64>,
    area_m2: Option<f64>,
    #[serde(default)]
    features: Brightness,
}

#[derive(Deserialize, Default)]
struct Brightness {
    brightness_before: Option<f64>,
    brightness_after: Option<f64>,
}

/// GeoJSON coordinates: a position (its x and y) or a list of them.
enum Nested {
    Pos([f64; 2]),
    List(Vec<Nested>),
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Nested, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Nested;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("GeoJSON coordinates")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Nested, A::Error> {
                let Some(first) = seq.next_element::<NumOrNested>()? else {
                    return Ok(Nested::List(Vec::new()));
                };
                match first {
                    // A position: x, y, then any z or m, skipped.
                    NumOrNested::Num(x) => {
                        let y: f64 = seq
                            .next_element()?
                            .ok_or_else(|| serde::de::Error::custom("a position needs x and y"))?;
                        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                        Ok(Nested::Pos([x, y]))
                    }
                    NumOrNested::Nested(n) => {
                        let mut v = vec![n];
                        while let Some(n) = seq.next_element()? {
                            v.push(n);
                        }
                        Ok(Nested::List(v))
                    }
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// The first element of a coordinates list: a number (then the list is a
/// position) or a nested list.
enum NumOrNested {
    Num(f64),
    Nested(Nested),
}

impl<'de> Deserialize<'de> for NumOrNested {
    fn deserialize<D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<NumOrNested, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NumOrNested;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a list")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<NumOrNested, E> {
                Ok(NumOrNested::Num(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<NumOrNested, E> {
                Ok(NumOrNested::Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<NumOrNested, E> {
                Ok(NumOrNested::Num(v as f64))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<NumOrNested, A::Error> {
                Nested::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(NumOrNested::Nested)
            }
        }
        d.deserialize_any(V)
    }
}

impl SiteGeometry {
    /// The polygons of a Polygon or MultiPolygon.
    fn polys(&self) -> Option<super::matching::Polys> {
        fn ring(n: &Nested) -> Option<Vec<[f64; 2]>> {
            match n {
                Nested::List(v) => v
                    .iter()
                    .map(|p| match p {
                        Nested::Pos(p) => Some(*p),
                        Nested::List(_) => None,
                    })
                    .collect(),
                Nested::Pos(_) => None,
            }
        }
        fn poly(n: &Nested) -> Option<Vec<Vec<[f64; 2]>>> {
            match n {
                Nested::List(v) => v.iter().map(ring).collect(),
                Nested::Pos(_) => None,
            }
        }
        match (self.ty.as_str(), &self.coordinates) {
            ("Polygon", c) => Some(vec![poly(c)?]),
            ("MultiPolygon", Nested::List(v)) => v.iter().map(poly).collect(),
            _ => None,
        }
    }
}

/// 64-bit FNV-1a: a stable fingerprint (std's hasher may change between releases).
pub fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The MGRS tile tokens (`T39QZG` -> `39QZG`) in a path.
fn tiles_in(path: &str) -> Vec<String> {
    let b = path.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(5) {
        let w = &b[i..i + 6];
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let ends = i + 6 == b.len() || !b[i + 6].is_ascii_alphanumeric();
        if starts
            && ends
            && w[0] == b'T'
            && w[1].is_ascii_digit()
            && w[2].is_ascii_digit()
            && w[3..].iter().all(|c| c.is_ascii_uppercase())
        {
            let t = String::from_utf8_lossy(&w[1..]).to_string();
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The tiles of a scene: from the folder name, else from the file names in it.
fn scene_tiles(path: &str) -> Vec<String> {
    let mut t = tiles_in(path);
    if t.is_empty() {
        if let Ok(rd) = std::fs::read_dir(path) {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            names.sort();
            for n in names {
                for x in tiles_in(&n) {
                    if !t.contains(&x) {
                        t.push(x);
                    }
                }
            }
        }
    }
    t
}

/// The grid's outline in lon/lat, densified so a projected grid's curved
/// edges are followed.
fn footprint(grid: &Value, path: &Path) -> Result<Geometry> {
    let gt: Vec<f64> = grid["geotransform"]
        .as_array()
        .map(|a| a.iter().map(num).collect())
        .unwrap_or_default();
    let (w, h) = (num(&grid["width"]), num(&grid["height"]));
    if gt.len() != 6 || !w.is_finite() || !h.is_finite() {
        return Err(Error::input(
            path,
            "run.json has no grid (geotransform, width, height)",
        ));
    }
    let at = |c: f64, r: f64| (gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]);
    let n = 16;
    let mut pts = Vec::new();
    for i in 0..n {
        pts.push(at(w * i as f64 / n as f64, 0.0));
    }
    for i in 0..n {
        pts.push(at(w, h * i as f64 / n as f64));
    }
    for i in 0..n {
        pts.push(at(w * (n - i) as f64 / n as f64, h));
    }
    for i in 0..n {
        pts.push(at(0.0, h * (n - i) as f64 / n as f64));
    }
    let epsg = grid["epsg"].as_u64().unwrap_or(4326) as u32;
    if epsg != 4326 {
        let mut src = match grid["wkt"].as_str() {
            Some(wkt) => SpatialRef::from_wkt(wkt),
            None => SpatialRef::from_epsg(epsg),
        }
        .map_err(|e| Error::input(path, format!("run.json grid CRS: {e}")))?;
        let mut dst = SpatialRef::from_epsg(4326).map_err(|e| Error::input(path, e))?;
        src.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        dst.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        let t = CoordTransform::new(&src, &dst).map_err(|e| Error::input(path, e))?;
        let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let mut zs = vec![0.0; xs.len()];
        t.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(|e| Error::input(path, format!("run.json grid to lon/lat: {e}")))?;
        pts = xs.into_iter().zip(ys).collect();
    }
    let mut ring = Geometry::empty(gdal_sys::OGRwkbGeometryType::wkbLinearRing)
        .map_err(|e| Error::input(path, e))?;
    for p in &pts {
        ring.add_point_2d(*p);
    }
    ring.add_point_2d(pts[0]);
    let mut poly = Geometry::empty(gdal_sys::OGRwkbGeometryType::wkbPolygon)
        .map_err(|e| Error::input(path, e))?;
    poly.add_geometry(ring).map_err(|e| Error::input(path, e))?;
    Ok(poly)
}

/// Reads a finished run folder (run.json and sites.geojson).
pub fn read_run(dir: &Path) -> Result<RunInput> {
    let rj = dir.join("run.json");
    let text = std::fs::read_to_string(&rj)
        .map_err(|e| Error::input(&rj, format!("not a finished run folder: {e}")))?;
    let run: Value =
        serde_json::from_str(&text).map_err(|e| Error::input(&rj, format!("not JSON: {e}")))?;
    let sj = dir.join("sites.geojson");
    let text = std::fs::read_to_string(&sj).map_err(|e| {
        Error::input(
            &sj,
            format!("cannot read the run's sites ({e}); run `dunewatch sites` on the folder first"),
        )
    })?;
    let fc: SitesFile = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            &sj,
            format!("not a GeoJSON FeatureCollection of sites: {e}"),
        )
    })?;
    let date = |which: &str| -> Result<String> {
        run[which]["date"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Error::input(
                    &rj,
                    format!("no {which} date: the register orders runs by their dates"),
                )
            })
    };
    let mut before_date = date("before")?;
    let mut after_date = date("after")?;
    // A comparison run backwards in time (the later scene as `before`)
    // still says a change happened between the two dates: the register
    // keeps every comparison forward in time.
    let backwards = before_date > after_date;
    if backwards {
        std::mem::swap(&mut before_date, &mut after_date);
    }
    let before = run["before"]["path"].as_str().unwrap_or("").to_string();
    let after = run["after"]["path"].as_str().unwrap_or("").to_string();
    let method = run["detect"]["method"].as_str().unwrap_or("").to_string();
    let threshold = num(&run["detect"]["threshold"]);
    let grid = &run["grid"];
    let gt = grid["geotransform"].to_string();
    let grid_s = format!(
        "EPSG:{} {}x{} {}",
        grid["epsg"], grid["width"], grid["height"], gt
    );
    // What makes two runs the same comparison; not the folder, the time
    // taken or the thread count.
    let key = serde_json::json!({
        "before": [before, before_date],
        "after": [after, after_date],
        "aoi": run["aoi"],
        "bands": run["bands_used"],
        "grid": [grid["epsg"], grid["width"], grid["height"], gt],
        "method": method,
        "threshold": run["detect"]["threshold"],
        "coregistration": run["coregistration"]["applied"],
        "sites": run["sites"]["sites"],
    });
    let run_id = format!("{:016x}", fnv1a(&key.to_string()));
    let mut tiles = scene_tiles(&before);
    for t in scene_tiles(&after) {
        if !tiles.contains(&t) {
            tiles.push(t);
        }
    }
    let footprint = footprint(grid, &rj)?;
    let mut sites = Vec::with_capacity(fc.features.len());
    let int = |n: &Option<serde_json::Number>| n.as_ref().and_then(|n| n.as_i64());
    for (i, f) in fc.features.iter().enumerate() {
        let p = &f.properties;
        let bad = |e: &dyn std::fmt::Display| {
            Error::input(&sj, format!("feature {i}: bad geometry: {e}"))
        };
        let polys = f
            .geometry
            .as_ref()
            .and_then(SiteGeometry::polys)
            .filter(|p| !p.is_empty() && p.iter().all(|r| r.iter().all(|r| r.len() >= 4)))
            .ok_or_else(|| bad(&"not a polygon or multipolygon of closed rings"))?;
        let outline = super::matching::outline_geometry(&polys).map_err(|e| bad(&e))?;
        let (bb, ba) = (
            p.features.brightness_before.unwrap_or(f64::NAN),
            p.features.brightness_after.unwrap_or(f64::NAN),
        );
        sites.push(RunSite {
            id: int(&p.id).or(int(&f.id)).unwrap_or(i as i64 + 1),
            rank: int(&p.rank).unwrap_or(i as i64 + 1),
            kind: p.kind.clone().unwrap_or_else(|| "other".to_string()),
            score: p.score.unwrap_or(f64::NAN),
            area_m2: p.area_m2.unwrap_or(f64::NAN),
            brightness_before: if backwards { ba } else { bb },
            brightness_after: if backwards { bb } else { ba },
            outline,
            polys,
        });
    }
    Ok(RunInput {
        dir: dir.to_path_buf(),
        run_id,
        before,
        after,
        before_date,
        after_date,
        tile: tiles.join(","),
        grid: grid_s,
        method,
        threshold,
        footprint,
        sites,
        compounds: super::compounds::read_compounds(dir)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_from_names() {
        assert_eq!(
            tiles_in("S2A_OPER_MSI_L1C_TL_MTI__20160120T104345_A003020_T39QZG_B01.tif"),
            vec!["39QZG"]
        );
        assert_eq!(tiles_in("/x/T40QBM_20180328T065919_B01.tif"), vec!["40QBM"]);
        assert!(tiles_in("/x/TEST12/after").is_empty());
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a("a"), fnv1a("b"));
    }
}
