//! Ground areas and pixel sizes in metres of a run's grid, projected or
//! geographic (metres per degree at the row's latitude).

use crate::align::grid::metres_per_degree;
use crate::align::Grid;

/// Ground area of one pixel of `row` (m^2): from the geotransform, and for
/// geographic grids with metres per degree at the row's latitude.
pub fn pixel_area_m2(grid: &Grid, row: usize) -> f64 {
    row_areas(grid)(row)
}

/// [`pixel_area_m2`] for many rows: the CRS is looked at once.
pub fn row_areas(grid: &Grid) -> impl Fn(usize) -> f64 + '_ {
    let geographic = grid.is_geographic();
    let units = grid.metres_per_unit();
    move |row| row_area(grid, row, geographic, units)
}

fn row_area(grid: &Grid, row: usize, geographic: bool, (ux, uy): (f64, f64)) -> f64 {
    let (dx, dy) = grid.pixel_size();
    if geographic {
        let lat = grid.pixel_center(0.0, row as f64).1;
        let (mx, my) = metres_per_degree(lat);
        (dx * mx * dy * my).abs()
    } else {
        (dx * ux * dy * uy).abs()
    }
}

/// Metres per pixel along x and y at a latitude (geographic grids) or anywhere.
pub(crate) fn pixel_metres(grid: &Grid, lat: f64) -> (f64, f64) {
    PixelMetres::of(grid).at(lat)
}

/// [`pixel_metres`] for many sites: the CRS is looked at once.
pub(crate) struct PixelMetres {
    geographic: bool,
    units: (f64, f64),
    size: (f64, f64),
}

impl PixelMetres {
    pub(crate) fn of(grid: &Grid) -> PixelMetres {
        let geographic = grid.is_geographic();
        PixelMetres {
            geographic,
            units: if geographic {
                (1.0, 1.0)
            } else {
                grid.metres_per_unit()
            },
            size: grid.pixel_size(),
        }
    }

    /// At latitude `lat` (not used on projected grids).
    pub(crate) fn at(&self, lat: f64) -> (f64, f64) {
        let (dx, dy) = self.size;
        let (mx, my) = if self.geographic {
            metres_per_degree(lat)
        } else {
            self.units
        };
        (dx.abs() * mx, dy.abs() * my)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(epsg: u32, gt: [f64; 6]) -> Grid {
        let wkt = gdal::spatial_ref::SpatialRef::from_epsg(epsg)
            .unwrap()
            .to_wkt()
            .unwrap();
        Grid {
            wkt,
            epsg: Some(epsg as i32),
            geotransform: gt,
            width: 10,
            height: 10,
        }
    }

    #[test]
    fn pixel_area_utm_and_geographic() {
        let utm = grid(32634, [500000.0, 10.0, 0.0, 4e6, 0.0, -10.0]);
        assert!((pixel_area_m2(&utm, 3) - 100.0).abs() < 1e-9);
        // 0.0001 deg pixels: the row at 60 N is about half as wide as at the equator.
        let geo = grid(4326, [10.0, 1e-4, 0.0, 60.00005, 0.0, -1e-4]);
        let (mx, my) = metres_per_degree(60.0);
        assert!((pixel_area_m2(&geo, 0) / (1e-8 * mx * my) - 1.0).abs() < 1e-5);
        let eq = grid(4326, [10.0, 1e-4, 0.0, 0.00005, 0.0, -1e-4]);
        let ratio = pixel_area_m2(&geo, 0) / pixel_area_m2(&eq, 0);
        assert!((ratio - 0.5).abs() < 0.01, "{ratio}");
    }
}
