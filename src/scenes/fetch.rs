//! Local copies of an area's crops of STAC items, for offline runs: each
//! band asset (and the SCL) read through `/vsicurl/` over the area plus a
//! margin only, and written as a sparse tiled GeoTIFF of the asset's full
//! size and georeferencing that stores only the tiles of that window (the
//! rest reads as nodata); the item JSON is saved beside them with its hrefs
//! pointing at the copies. Keeping the full grid keeps every pixel where
//! it was, so `detect` on the saved item gives, byte for byte, the result
//! it gives on the remote item (a re-cut origin would change what GDAL's
//! approximate warper computes for scenes on different grids).
//!
//! The windows of a tile's 10, 20 and 60 m bands start and end on the 60 m
//! lattice, and the margin leaves room for interpolation and
//! co-registration shifts.

use super::area::Area;
use crate::error::{gdal_msg, Error, Result};
use crate::export::staging::Staging;
use crate::read::stac_item::StacItem;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Metres copied beyond the area on every side.
pub const MARGIN_M: f64 = 1200.0;

/// One asset's crop: asset key, source GDAL path, pixel window x, y, w, h.
struct Crop {
    key: String,
    src: String,
    win: [usize; 4],
}

/// Saves the area's crops of `item` and its JSON into `out`
/// (`<out>/<id>/<key>.tif`, `<out>/<id>.json`), staged: a failure leaves
/// nothing behind. Returns the saved item's path.
pub fn fetch_item(item: &StacItem, area: &Area, out: &Path) -> Result<PathBuf> {
    let id = safe_name(item.id());
    if id.is_empty() {
        return Err(Error::input(&item.location, "STAC item has no id"));
    }
    let (bands, scl) = item.band_assets();
    let assets: Vec<(String, String)> = bands.into_values().chain(scl).collect();
    if assets.is_empty() {
        return Err(Error::input(
            &item.location,
            "STAC item has no Sentinel-2 band assets to fetch",
        ));
    }
    let src_paths: Vec<(String, String)> = assets
        .iter()
        .map(|(k, h)| (k.clone(), item.gdal_path(h)))
        .collect();
    if src_paths.iter().any(|(_, p)| p.starts_with("/vsi")) {
        crate::read::http::configure_remote_reads();
    }
    // The coarsest pixel of the item (its 60 m bands) sets the lattice.
    let mut opened = Vec::new();
    for (key, p) in &src_paths {
        let ds = gdal::Dataset::open(p).map_err(|e| {
            let why = crate::read::http::open_failure(p, &gdal_msg(&e));
            Error::input(p, format!("cannot open raster: {why}"))
        })?;
        let gt = ds
            .geo_transform()
            .map_err(|e| Error::input(p, gdal_msg(&e)))?;
        opened.push((key.clone(), p.clone(), ds, gt));
    }
    let coarsest = opened
        .iter()
        .map(|(_, _, _, gt)| gt[1].abs())
        .fold(0.0, f64::max);
    let mut crops = Vec::new();
    for (key, p, ds, gt) in &opened {
        let win = window(ds, gt, p, area, coarsest)?;
        let Some(win) = win else {
            return Err(Error::input(
                &item.location,
                format!("the area does not overlap asset {key} ({p})"),
            ));
        };
        crops.push(Crop {
            key: key.clone(),
            src: p.clone(),
            win,
        });
    }
    drop(opened);

    let name = format!("{id}.json");
    // Items fetched before into the same folder stay.
    let staging = if out.is_dir() {
        Staging::update(out, &[&id, &name])?
    } else {
        Staging::new(out, &[])?
    };
    let dir = staging.path(&id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
    crops
        .par_iter()
        .map(|c| translate_window(&c.src, c.win, &dir.join(format!("{}.tif", c.key))))
        .collect::<Result<Vec<()>>>()?;

    let mut json = item.json.clone();
    if let Some(assets) = json.get_mut("assets").and_then(Value::as_object_mut) {
        assets.retain(|k, _| crops.iter().any(|c| &c.key == k));
        for c in &crops {
            let a = &mut assets[&c.key];
            a["href"] = json!(format!("./{id}/{}.tif", c.key));
            a["type"] = json!("image/tiff; application=geotiff");
            a["dunewatch:window"] = json!(c.win);
        }
    }
    let source = item.self_href().unwrap_or_else(|| item.location.clone());
    let links = json!([{"rel": "derived_from", "href": source, "type": "application/geo+json",
                        "title": "the item these crops were cut from"}]);
    json["links"] = links;
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::output(out, e))?;
    std::fs::write(staging.path(&name), text).map_err(|e| Error::output(out.join(&name), e))?;
    staging.commit()?;
    Ok(out.join(name))
}

/// The pixel window of `area` (plus [`MARGIN_M`]) in a raster with
/// geotransform `gt`, its edges on the `coarsest`-pixel lattice; None if
/// they do not overlap.
fn window(
    ds: &gdal::Dataset,
    gt: &[f64; 6],
    path: &str,
    area: &Area,
    coarsest: f64,
) -> Result<Option<[usize; 4]>> {
    let err = |m: String| Error::input(path, m);
    let mut dst = ds.spatial_ref().map_err(|e| err(gdal_msg(&e)))?;
    dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut src = SpatialRef::from_epsg(4326).map_err(|e| err(gdal_msg(&e)))?;
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&src, &dst).map_err(|e| err(gdal_msg(&e)))?;
    let b = ct
        .transform_bounds(&area.bbox(), 21)
        .map_err(|e| err(gdal_msg(&e)))?;
    // The margin in the raster's units (degrees for a lon/lat raster).
    let margin = if dst.is_geographic() {
        MARGIN_M / 111_320.0
    } else {
        MARGIN_M
    };
    let (w, h) = ds.raster_size();
    let k = ((coarsest / gt[1].abs()).round() as usize).max(1);
    let fx = |x: f64| (x - gt[0]) / gt[1];
    let fy = |y: f64| (y - gt[3]) / gt[5];
    let (xa, xb) = (fx(b[0] - margin), fx(b[2] + margin));
    let (ya, yb) = (fy(b[3] + margin), fy(b[1] - margin));
    let snap_down = |v: f64| ((v.max(0.0).floor() as usize) / k) * k;
    let snap_up = |v: f64, max: usize| ((v.max(0.0).ceil() as usize).div_ceil(k) * k).min(max);
    let (x0, x1) = (snap_down(xa.min(xb)), snap_up(xa.max(xb), w));
    let (y0, y1) = (snap_down(ya.min(yb)), snap_up(ya.max(yb), h));
    if x1 <= x0 || y1 <= y0 {
        return Ok(None);
    }
    Ok(Some([x0, y0, x1 - x0, y1 - y0]))
}

/// The window of `src` into a sparse GeoTIFF at `dst`.
fn translate_window(src: &str, win: [usize; 4], dst: &Path) -> Result<()> {
    let ds = gdal::Dataset::open(src).map_err(|e| Error::input(src, gdal_msg(&e)))?;
    crate::align::remote_copy::sparse_copy(&ds, 1, (win[0], win[1], win[2], win[3]), src, dst)
}

/// An id usable as a file name.
fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            safe_name("S2B_34RGM_20240105_0_L2A"),
            "S2B_34RGM_20240105_0_L2A"
        );
        assert_eq!(safe_name("../a b"), "_a_b");
    }
}
