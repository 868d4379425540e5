//! Cloud over the area itself, from an L2A item's scene classification
//! (SCL): the share of the area's valid pixels classed cloud shadow (3),
//! cloud of medium or high probability (8, 9) or thin cirrus (10). Only the
//! window of the area's bounding box is read (through `/vsicurl/` for a
//! remote item), not the tile, and of that window only the pixels whose
//! centre lies inside the area's polygons count: a place's box, a region's
//! outline or a drawn polygon, not the box around it.

use super::area::Area;
use crate::error::{gdal_msg, Error, Result};
use crate::read::stac_item::StacItem;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// SCL classes counted as cloud.
const CLOUD_CLASSES: [u8; 4] = [3, 8, 9, 10];

/// Percent of the area's valid SCL pixels that are cloud; None when the
/// item has no SCL asset or no valid pixel over the area.
pub fn aoi_cloud(item: &StacItem, area: &Area) -> Result<Option<f64>> {
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
        .transform_bounds(&area.bbox(), 21)
        .map_err(|e| err(gdal_msg(&e)))?;
    let (w, h) = ds.raster_size();
    let px = |x: f64| ((x - gt[0]) / gt[1]).floor().clamp(0.0, w as f64) as usize;
    let py = |y: f64| ((y - gt[3]) / gt[5]).floor().clamp(0.0, h as f64) as usize;
    let (x0, x1) = (px(b[0]), (px(b[2]) + 1).min(w));
    let (y0, y1) = (py(b[3]), (py(b[1]) + 1).min(h));
    if x1 <= x0 || y1 <= y0 {
        return Ok(None);
    }
    let (ww, wh) = (x1 - x0, y1 - y0);
    let band = ds.rasterband(1).map_err(|e| err(gdal_msg(&e)))?;
    let buf = band
        .read_as::<u8>((x0 as isize, y0 as isize), (ww, wh), (ww, wh), None)
        .map_err(|e| err(format!("cannot read pixels: {}", gdal_msg(&e))))?;
    if area.as_point().is_some() {
        // A point has no inside: the pixel under it.
        return Ok(cloud_share(buf.data(), None));
    }
    let win_gt = [
        gt[0] + x0 as f64 * gt[1] + y0 as f64 * gt[2],
        gt[1],
        gt[2],
        gt[3] + x0 as f64 * gt[4] + y0 as f64 * gt[5],
        gt[4],
        gt[5],
    ];
    let inside = inside_mask(area, &dst, win_gt, (ww, wh))
        .map_err(|e| err(format!("cannot rasterize the area: {e}")))?;
    Ok(cloud_share(buf.data(), Some(&inside)))
}

/// Which pixels of a `size` grid with geotransform `gt` in `srs` have their
/// centre inside the area's polygons (GDAL's rasterizer, not all-touched).
pub fn inside_mask(
    area: &Area,
    srs: &SpatialRef,
    gt: [f64; 6],
    size: (usize, usize),
) -> Result<Vec<bool>> {
    let g = area
        .to_ogr()?
        .transform_to(srs)
        .map_err(|e| Error::invalid(format!("cannot reproject: {}", gdal_msg(&e))))?;
    let drv =
        gdal::DriverManager::get_driver_by_name("MEM").map_err(|e| Error::invalid(gdal_msg(&e)))?;
    let mut mem = drv
        .create_with_band_type::<u8, _>("", size.0, size.1, 1)
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    mem.set_geo_transform(&gt)
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    mem.set_spatial_ref(srs)
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    gdal::raster::rasterize(&mut mem, &[1], &[g], &[1.0], None)
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    let burnt = mem
        .rasterband(1)
        .and_then(|b| b.read_as::<u8>((0, 0), size, size, None))
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    Ok(burnt.data().iter().map(|&v| v == 1).collect())
}

/// Percent cloud among valid (non-zero) SCL values, of those where
/// `inside` is true when given.
pub fn cloud_share(scl: &[u8], inside: Option<&[bool]>) -> Option<f64> {
    let kept = |i: usize| inside.is_none_or(|m| m[i]);
    let (mut valid, mut cloud) = (0usize, 0usize);
    for (i, &v) in scl.iter().enumerate() {
        if v != 0 && kept(i) {
            valid += 1;
            cloud += CLOUD_CLASSES.contains(&v) as usize;
        }
    }
    (valid > 0).then(|| 100.0 * cloud as f64 / valid as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(cloud_share(&[0, 0], None), None);
        assert_eq!(cloud_share(&[4, 5, 8, 0], None), Some(100.0 / 3.0));
        assert_eq!(cloud_share(&[3, 9, 10, 6], None), Some(75.0));
        let m = [true, false, true, true];
        assert_eq!(cloud_share(&[3, 9, 10, 6], Some(&m)), Some(200.0 / 3.0));
        assert_eq!(cloud_share(&[3, 9], Some(&[false, false])), None);
    }

    #[test]
    fn only_pixel_centres_inside_the_polygon_count() {
        // A 10 x 10 grid of 1 km pixels in UTM 34N, and a triangle over
        // the lower-left half of the grid.
        let mut utm = SpatialRef::from_epsg(32634).unwrap();
        utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let (x0, y0) = (700_000.0, 2_680_000.0);
        let gt = [x0, 1000.0, 0.0, y0, 0.0, -1000.0];
        let mut wgs = SpatialRef::from_epsg(4326).unwrap();
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let ct = CoordTransform::new(&utm, &wgs).unwrap();
        // In pixel units: (0.001, 0.2), (0.001, 9.999), (9.8, 9.999). The
        // long edge runs 0.2 pixel below the diagonal, so no centre is on it.
        let corners = [(0.001, 0.2), (0.001, 9.999), (9.8, 9.999), (0.001, 0.2)];
        let mut xs: Vec<f64> = corners.iter().map(|c| x0 + 1000.0 * c.0).collect();
        let mut ys: Vec<f64> = corners.iter().map(|c| y0 - 1000.0 * c.1).collect();
        ct.transform_coords(&mut xs, &mut ys, &mut [0.0; 4])
            .unwrap();
        let ring: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(&x, &y)| [x, y]).collect();
        let area = Area {
            origin: super::super::area::Origin::Region("triangle".into()),
            polygons: vec![vec![ring]],
        };
        let m = inside_mask(&area, &utm, gt, (10, 10)).unwrap();
        // Row r (from the top) has r pixels with their centre inside.
        for r in 0..10 {
            for c in 0..10 {
                assert_eq!(m[r * 10 + c], c < r, "row {r} column {c}");
            }
        }
        assert_eq!(m.iter().filter(|&&v| v).count(), 45);
    }
}
