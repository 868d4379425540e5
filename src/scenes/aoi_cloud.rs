//! Cloud over the area itself, from an L2A item's scene classification
//! (SCL): the share of the area's valid pixels classed cloud shadow (3),
//! cloud of medium or high probability (8, 9) or thin cirrus (10). Only the
//! window of the area's bounding box is read (through `/vsicurl/` for a
//! remote item), not the tile.

use crate::error::{gdal_msg, Error, Result};
use crate::read::stac_item::StacItem;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// SCL classes counted as cloud.
const CLOUD_CLASSES: [u8; 4] = [3, 8, 9, 10];

/// Percent of the area's valid SCL pixels that are cloud; None when the
/// item has no SCL asset or no valid pixel over the area.
pub fn aoi_cloud(item: &StacItem, bbox: [f64; 4]) -> Result<Option<f64>> {
    let (_, scl) = item.band_assets();
    let Some((_, href)) = scl else {
        return Ok(None);
    };
    let path = item.gdal_path(&href);
    if path.starts_with("/vsi") {
        crate::read::http::configure_remote_reads();
    }
    let err = |m: String| Error::input(&path, m);
    let ds = gdal::Dataset::open(&path).map_err(|e| {
        err(format!(
            "cannot open raster: {}",
            crate::read::http::open_failure(&path, &gdal_msg(&e))
        ))
    })?;
    let gt = ds.geo_transform().map_err(|e| err(gdal_msg(&e)))?;
    let mut dst = ds.spatial_ref().map_err(|e| err(gdal_msg(&e)))?;
    dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut src = SpatialRef::from_epsg(4326).map_err(|e| err(gdal_msg(&e)))?;
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&src, &dst).map_err(|e| err(gdal_msg(&e)))?;
    let b = ct
        .transform_bounds(&bbox, 21)
        .map_err(|e| err(gdal_msg(&e)))?;
    let (w, h) = ds.raster_size();
    let px = |x: f64| ((x - gt[0]) / gt[1]).floor().clamp(0.0, w as f64) as usize;
    let py = |y: f64| ((y - gt[3]) / gt[5]).floor().clamp(0.0, h as f64) as usize;
    let (x0, x1) = (px(b[0]), (px(b[2]) + 1).min(w));
    let (y0, y1) = (py(b[3]), (py(b[1]) + 1).min(h));
    if x1 <= x0 || y1 <= y0 {
        return Ok(None);
    }
    let band = ds.rasterband(1).map_err(|e| err(gdal_msg(&e)))?;
    let buf = band
        .read_as::<u8>(
            (x0 as isize, y0 as isize),
            (x1 - x0, y1 - y0),
            (x1 - x0, y1 - y0),
            None,
        )
        .map_err(|e| err(format!("cannot read pixels: {}", gdal_msg(&e))))?;
    Ok(cloud_share(buf.data()))
}

/// Percent cloud among valid (non-zero) SCL values.
pub fn cloud_share(scl: &[u8]) -> Option<f64> {
    let valid = scl.iter().filter(|&&v| v != 0).count();
    let cloud = scl.iter().filter(|v| CLOUD_CLASSES.contains(v)).count();
    (valid > 0).then(|| 100.0 * cloud as f64 / valid as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(cloud_share(&[0, 0]), None);
        assert_eq!(cloud_share(&[4, 5, 8, 0]), Some(100.0 / 3.0));
        assert_eq!(cloud_share(&[3, 9, 10, 6]), Some(75.0));
    }
}
