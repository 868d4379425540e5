//! The pixel grid every output lies on: CRS, geotransform and size.

use crate::error::{gdal_msg, Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use serde::Serialize;

/// A north-up raster grid.
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    /// CRS as WKT.
    pub wkt: String,
    /// EPSG code when the CRS has one.
    pub epsg: Option<i32>,
    /// GDAL geotransform: x0, dx, 0, y0, 0, dy (dy < 0).
    pub geotransform: [f64; 6],
    pub width: usize,
    pub height: usize,
}

/// A pixel window inside a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Window {
    pub fn len(&self) -> usize {
        self.w * self.h
    }
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }
}

impl Grid {
    pub fn from_dataset(ds: &gdal::Dataset, path: &str) -> Result<Grid> {
        let gt = ds
            .geo_transform()
            .map_err(|_| Error::input(path, "has no geotransform (not georeferenced)"))?;
        if gt[2] != 0.0 || gt[4] != 0.0 {
            return Err(Error::input(
                path,
                "rotated geotransforms are not supported",
            ));
        }
        let wkt = ds.projection();
        if wkt.is_empty() {
            return Err(Error::input(path, "has no coordinate reference system"));
        }
        let epsg = SpatialRef::from_wkt(&wkt).ok().and_then(|mut s| {
            let _ = s.auto_identify_epsg();
            s.auth_code().ok()
        });
        let (width, height) = ds.raster_size();
        Ok(Grid {
            wkt,
            epsg,
            geotransform: gt,
            width,
            height,
        })
    }

    pub fn srs(&self) -> Result<SpatialRef> {
        let mut s = SpatialRef::from_wkt(&self.wkt)
            .map_err(|e| Error::invalid(format!("bad CRS: {}", gdal_msg(&e))))?;
        s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Ok(s)
    }

    pub fn is_geographic(&self) -> bool {
        self.srs().map(|s| s.is_geographic()).unwrap_or(false)
    }

    pub fn pixel_size(&self) -> (f64, f64) {
        (self.geotransform[1], -self.geotransform[5])
    }

    /// (xmin, ymin, xmax, ymax) in the grid CRS.
    pub fn bounds(&self) -> [f64; 4] {
        let g = &self.geotransform;
        let x1 = g[0] + g[1] * self.width as f64;
        let y1 = g[3] + g[5] * self.height as f64;
        [g[0].min(x1), g[3].min(y1), g[0].max(x1), g[3].max(y1)]
    }

    /// Centre of pixel (col, row) in grid CRS coordinates.
    pub fn pixel_center(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.geotransform;
        (g[0] + (col + 0.5) * g[1], g[3] + (row + 0.5) * g[5])
    }

    /// Continuous pixel coordinates of a CRS point.
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        let g = &self.geotransform;
        ((x - g[0]) / g[1], (y - g[3]) / g[5])
    }

    /// The grid restricted to a window.
    pub fn subgrid(&self, w: Window) -> Grid {
        let g = &self.geotransform;
        let mut gt = *g;
        gt[0] = g[0] + w.x as f64 * g[1];
        gt[3] = g[3] + w.y as f64 * g[5];
        Grid {
            wkt: self.wkt.clone(),
            epsg: self.epsg,
            geotransform: gt,
            width: w.w,
            height: w.h,
        }
    }

    /// The grid moved by `dx` columns and `dy` rows (fractions allowed):
    /// its pixel (0, 0) is this grid's (dx, dy).
    pub fn translated(&self, dx: f64, dy: f64) -> Grid {
        let g = &self.geotransform;
        let mut gt = *g;
        gt[0] = g[0] + dx * g[1] + dy * g[2];
        gt[3] = g[3] + dx * g[4] + dy * g[5];
        Grid {
            geotransform: gt,
            ..self.clone()
        }
    }

    /// The same extent with another pixel size (CRS units).
    pub fn with_pixel_size(&self, dx: f64, dy: f64) -> Grid {
        let [xmin, ymin, xmax, ymax] = self.bounds();
        let width = ((xmax - xmin) / dx).round().max(1.0) as usize;
        let height = ((ymax - ymin) / dy).round().max(1.0) as usize;
        Grid {
            wkt: self.wkt.clone(),
            epsg: self.epsg,
            geotransform: [xmin, dx, 0.0, ymax, 0.0, -dy],
            width,
            height,
        }
    }

    /// Metres per CRS unit near the grid centre, along x and y (1 for
    /// projected metre grids; for geographic grids, from the WGS 84 ellipsoid).
    pub fn metres_per_unit(&self) -> (f64, f64) {
        if !self.is_geographic() {
            let u = self.srs().map(|s| s.linear_units()).unwrap_or(1.0);
            return (u, u);
        }
        let [_, ymin, _, ymax] = self.bounds();
        metres_per_degree((ymin + ymax) / 2.0)
    }

    /// Window of this grid covering CRS bounds, clamped to the grid; None if
    /// they do not intersect.
    pub fn window_of_bounds(&self, b: [f64; 4]) -> Option<Window> {
        let (c0, r0) = self.to_pixel(b[0], b[3]);
        let (c1, r1) = self.to_pixel(b[2], b[1]);
        let (cmin, cmax) = (c0.min(c1), c0.max(c1));
        let (rmin, rmax) = (r0.min(r1), r0.max(r1));
        // Pixels must lie inside by more than a hair: ignore 1e-6 px slivers.
        let x0 = (cmin + 1e-6).floor().max(0.0);
        let y0 = (rmin + 1e-6).floor().max(0.0);
        let x1 = (cmax - 1e-6).ceil().min(self.width as f64);
        let y1 = (rmax - 1e-6).ceil().min(self.height as f64);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        Some(Window {
            x: x0 as usize,
            y: y0 as usize,
            w: (x1 - x0) as usize,
            h: (y1 - y0) as usize,
        })
    }

    /// Splits the grid into blocks of `size` x `size` pixels, row by row.
    pub fn blocks(&self, size: usize) -> Vec<Window> {
        let mut v = Vec::new();
        let mut y = 0;
        while y < self.height {
            let h = size.min(self.height - y);
            let mut x = 0;
            while x < self.width {
                let w = size.min(self.width - x);
                v.push(Window { x, y, w, h });
                x += size;
            }
            y += size;
        }
        v
    }

    /// A transform from this grid's CRS to WGS 84 longitude/latitude.
    pub fn to_lonlat(&self) -> Result<CoordTransform> {
        let mut wgs = SpatialRef::from_epsg(4326).map_err(|e| Error::invalid(gdal_msg(&e)))?;
        wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        CoordTransform::new(&self.srs()?, &wgs).map_err(|e| Error::invalid(gdal_msg(&e)))
    }
}

/// Metres per degree of longitude and latitude at a latitude (WGS 84).
pub fn metres_per_degree(lat_deg: f64) -> (f64, f64) {
    let a = 6_378_137.0_f64;
    let e2 = 6.694_379_990_14e-3_f64;
    let phi = lat_deg.to_radians();
    let s = (1.0 - e2 * phi.sin().powi(2)).sqrt();
    let n = a / s; // prime vertical radius
    let m = a * (1.0 - e2) / s.powi(3); // meridional radius
    (
        n * phi.cos() * std::f64::consts::PI / 180.0,
        m * std::f64::consts::PI / 180.0,
    )
}

/// Transforms bounds between two CRSs, densifying the edges.
pub fn transform_bounds(b: [f64; 4], from: &SpatialRef, to: &SpatialRef) -> Result<[f64; 4]> {
    if from == to {
        return Ok(b);
    }
    let ct = CoordTransform::new(from, to).map_err(|e| Error::invalid(gdal_msg(&e)))?;
    ct.transform_bounds(&b, 21)
        .map_err(|e| Error::invalid(format!("cannot transform bounds: {}", gdal_msg(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metres_per_degree_at_equator_and_60n() {
        let (x, y) = metres_per_degree(0.0);
        assert!((x - 111_319.5).abs() < 1.0, "{x}");
        assert!((y - 110_574.3).abs() < 1.0, "{y}");
        let (x60, _) = metres_per_degree(60.0);
        assert!((x60 - 55_799.9).abs() < 5.0, "{x60}");
    }

    #[test]
    fn blocks_cover_grid_once() {
        let g = Grid {
            wkt: String::new(),
            epsg: None,
            geotransform: [0.0, 10.0, 0.0, 0.0, 0.0, -10.0],
            width: 1030,
            height: 517,
        };
        let blocks = g.blocks(256);
        assert_eq!(blocks.iter().map(|w| w.len()).sum::<usize>(), 1030 * 517);
        assert_eq!(blocks.len(), 5 * 3);
    }

    #[test]
    fn window_of_bounds_clamps() {
        let g = Grid {
            wkt: String::new(),
            epsg: None,
            geotransform: [100.0, 10.0, 0.0, 1000.0, 0.0, -10.0],
            width: 50,
            height: 40,
        };
        let w = g.window_of_bounds([150.0, 700.0, 10_000.0, 950.0]).unwrap();
        assert_eq!(
            w,
            Window {
                x: 5,
                y: 5,
                w: 45,
                h: 25
            }
        );
        assert!(g.window_of_bounds([0.0, 0.0, 50.0, 50.0]).is_none());
    }
}
