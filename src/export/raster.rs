//! Working rasters: the tiled, uncompressed single-band GeoTIFFs the run
//! writes block by block before they become COGs (see [`super::to_cog`]).
//! Every raster carries the grid's CRS, geotransform and nodata.

use crate::align::Grid;
use crate::error::{gdal_msg, Error, Result};
use gdal::raster::{GdalType, RasterCreationOptions};
use std::path::Path;

/// Creates a tiled, uncompressed single-band GeoTIFF on `grid`.
pub fn create_working<T: GdalType + Copy>(
    path: &Path,
    grid: &Grid,
    nodata: f64,
) -> Result<gdal::Dataset> {
    let err = |e: gdal::errors::GdalError| Error::output(path, gdal_msg(&e));
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let opts = RasterCreationOptions::from_iter([
        "TILED=YES",
        "BLOCKXSIZE=512",
        "BLOCKYSIZE=512",
        "BIGTIFF=IF_SAFER",
        "SPARSE_OK=TRUE",
    ]);
    let mut ds = drv
        .create_with_band_type_with_options::<T, _>(path, grid.width, grid.height, 1, &opts)
        .map_err(err)?;
    ds.set_geo_transform(&grid.geotransform).map_err(err)?;
    ds.set_projection(&grid.wkt).map_err(err)?;
    ds.rasterband(1)
        .map_err(err)?
        .set_no_data_value(Some(nodata))
        .map_err(err)?;
    Ok(ds)
}

/// Opens a working raster to change it in place.
pub fn open_for_update(path: &Path) -> Result<gdal::Dataset> {
    gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE | gdal::GdalOpenFlags::GDAL_OF_RASTER,
            ..Default::default()
        },
    )
    .map_err(|e| Error::output(path, gdal_msg(&e)))
}

/// Working rasters for tests of the COG writers.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn grid(w: usize, h: usize) -> Grid {
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(32634).unwrap();
        Grid {
            width: w,
            height: h,
            geotransform: [600_000.0, 10.0, 0.0, 2_500_000.0, 0.0, -10.0],
            wkt: srs.to_wkt().unwrap(),
            epsg: Some(32634),
        }
    }

    /// A working raster of `w` x `h` with `value(x, y)`, written by block as
    /// the score pass does (some blocks left unwritten when `skip` says so).
    pub fn working<T: GdalType + Copy>(
        path: &Path,
        g: &Grid,
        nodata: f64,
        value: impl Fn(usize, usize) -> T,
        skip: impl Fn(usize, usize) -> bool,
    ) {
        let ds = create_working::<T>(path, g, nodata).unwrap();
        let mut band = ds.rasterband(1).unwrap();
        for by in (0..g.height).step_by(300) {
            for bx in (0..g.width).step_by(300) {
                if skip(bx, by) {
                    continue;
                }
                let (bw, bh) = (300.min(g.width - bx), 300.min(g.height - by));
                let v: Vec<T> = (0..bw * bh)
                    .map(|i| value(bx + i % bw, by + i / bw))
                    .collect();
                let mut buf = gdal::raster::Buffer::new((bw, bh), v);
                band.write((bx as isize, by as isize), (bw, bh), &mut buf)
                    .unwrap();
            }
        }
        ds.close().unwrap();
    }

    pub fn read_level<T: GdalType + Copy>(
        ds: &gdal::Dataset,
        level: Option<usize>,
    ) -> (usize, usize, Vec<T>) {
        let b = ds.rasterband(1).unwrap();
        let b = match level {
            Some(k) => b.overview(k).unwrap(),
            None => b,
        };
        let (w, h) = b.size();
        let v = b.read_as::<T>((0, 0), (w, h), (w, h), None).unwrap();
        (w, h, v.data().to_vec())
    }
}
