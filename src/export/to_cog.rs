//! Converting a working raster to a Cloud-Optimized GeoTIFF: the run's own
//! rasters (Float32 scores, byte masks) by [`super::cog`]'s writer, anything
//! else by GDAL's COG driver with overviews computed here block by block.

use super::cog::{write_cog, Workers};
use super::pyramid::{average_pyramid, nearest_pyramid, overview_factors, Level, COG_BLOCK};
use super::raster::open_for_update;
use crate::error::{gdal_msg, Error, Result};
use gdal::raster::{GdalType, RasterCreationOptions};
use std::path::Path;

/// Copies a working raster to a COG: 512 px tiles, overviews made with
/// `resampling` (NEAREST for class masks, AVERAGE for scores).
///
/// Byte masks use DEFLATE with the horizontal predictor at level 4: they
/// compress tens of times, and DEFLATE is what every GeoTIFF reader knows.
/// GDAL's default level 6 took 1.17 CPU s for a full tile's mask (its full
/// resolution, `gdal_translate -of COG`, libdeflate) where level 4 takes
/// 0.5 s for a file 10% larger (4.07 MB against 3.69 MB). Float scores use ZSTD at its fastest level with the
/// floating-point predictor: their mantissas barely compress, and DEFLATE
/// (level 1, no predictor, as before) spent about 4 CPU s of a full tile's
/// run compressing 482 MB to 415 MB, where ZSTD with the predictor gives
/// 371 MB for about 1.5 CPU s and reads back in half the time (`gdal_translate
/// -of COG` of a full tile's score, 2 threads). ZSTD GeoTIFFs open in GDAL
/// 2.3 and later (QGIS, rasterio, OTB).
///
/// The run's own rasters (Float32 with AVERAGE, bytes with NEAREST) are
/// written by [`super::cog`] (on the pools `workers` name, else on the
/// current rayon pool), with the same layout, encoding and pixels. Anything else goes through GDAL's COG driver, with
/// overviews computed here ([`add_overviews`]) and copied: GDAL 3.6 computes
/// them on one thread, which took 4.5 of the 7.5 s a full tile's float score
/// needed to become a COG.
pub fn to_cog(
    src: &Path,
    dst: &Path,
    resampling: &str,
    threads: usize,
    workers: Option<Workers>,
) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::output(dst, gdal_msg(&e));
    let ds = gdal::Dataset::open(src).map_err(|e| Error::output(src, gdal_msg(&e)))?;
    let float = ds
        .rasterband(1)
        .map(|b| b.band_type() == gdal::raster::GdalDataType::Float32)
        .unwrap_or(false);
    // The run's own rasters: written by `cog`.
    if matches!((resampling, float), ("AVERAGE", true) | ("NEAREST", false)) {
        drop(ds);
        if write_cog(src, dst, workers)? {
            return Ok(());
        }
    }
    let ours = add_overviews(src, resampling)?;
    let ds = gdal::Dataset::open(src).map_err(|e| Error::output(src, gdal_msg(&e)))?;
    let drv = gdal::DriverManager::get_driver_by_name("COG").map_err(err)?;
    let (compress, predictor, level) = if float {
        ("ZSTD", "FLOATING_POINT", "1")
    } else {
        ("DEFLATE", "YES", "4")
    };
    let mut opts = vec![
        format!("COMPRESS={compress}"),
        format!("PREDICTOR={predictor}"),
        format!("LEVEL={level}"),
        "BLOCKSIZE=512".to_string(),
        "BIGTIFF=IF_SAFER".to_string(),
        format!("NUM_THREADS={}", threads.max(1)),
    ];
    if ours {
        opts.push("OVERVIEWS=FORCE_USE_EXISTING".to_string());
    } else {
        opts.push("OVERVIEWS=IGNORE_EXISTING".to_string());
        opts.push(format!("OVERVIEW_RESAMPLING={resampling}"));
    }
    // GDAL copies through a swath buffer of a quarter of its block cache
    // unless told otherwise (about 100 MB per COG, two at once, beside the
    // sites step); 32 MB holds 512 rows of a 16 384 px float raster.
    let _ = gdal::config::set_thread_local_config_option("GDAL_SWATH_SIZE", SWATH_BYTES);
    let out = ds.create_copy(&drv, dst, &RasterCreationOptions::from_iter(opts));
    let _ = gdal::config::clear_thread_local_config_option("GDAL_SWATH_SIZE");
    let out = out.map_err(err)?;
    out.close().map_err(err)?;
    Ok(())
}

/// Bytes of the buffer GDAL copies a working raster into its COG through.
const SWATH_BYTES: &str = "33554432";

/// Writes the overviews of a working raster into it (AVERAGE of the valid
/// pixels for float scores, NEAREST for byte masks, as GDAL defines them).
/// Works block by block: a 512 px block holds whole pixels of every level
/// up to 1/512, so each block's pyramid is its own. Returns false, leaving
/// the raster alone, for other types or resamplings.
pub fn add_overviews(path: &Path, resampling: &str) -> Result<bool> {
    let err = |e: gdal::errors::GdalError| Error::output(path, gdal_msg(&e));
    let ds = open_for_update(path)?;
    let band_type = ds.rasterband(1).map_err(err)?.band_type();
    let kind = match (resampling, band_type) {
        ("AVERAGE", gdal::raster::GdalDataType::Float32) => Pyramid::Average,
        ("NEAREST", gdal::raster::GdalDataType::UInt8) => Pyramid::Nearest,
        _ => return Ok(false),
    };
    let (w, h) = ds.raster_size();
    let factors = overview_factors(w, h);
    if factors.is_empty() {
        return Ok(true);
    }
    let mut ds = ds;
    ds.build_overviews("NONE", &factors, &[]).map_err(err)?;
    let band = ds.rasterband(1).map_err(err)?;
    let nodata = band.no_data_value().unwrap_or(f64::NAN);
    let mut overviews = (0..factors.len())
        .map(|k| band.overview(k))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    for by in (0..h).step_by(COG_BLOCK) {
        for bx in (0..w).step_by(COG_BLOCK) {
            let (bw, bh) = (COG_BLOCK.min(w - bx), COG_BLOCK.min(h - by));
            let at = (bx as isize, by as isize);
            match kind {
                Pyramid::Average => {
                    let v = band
                        .read_as::<f32>(at, (bw, bh), (bw, bh), None)
                        .map_err(err)?;
                    let levels = average_pyramid(v.data(), bw, bh, nodata as f32, factors.len());
                    write_levels(&mut overviews, levels, bx, by).map_err(err)?;
                }
                Pyramid::Nearest => {
                    let v = band
                        .read_as::<u8>(at, (bw, bh), (bw, bh), None)
                        .map_err(err)?;
                    let levels = nearest_pyramid(v.data(), bw, bh, factors.len());
                    write_levels(&mut overviews, levels, bx, by).map_err(err)?;
                }
            }
        }
    }
    ds.close().map_err(err)?;
    Ok(true)
}

enum Pyramid {
    Average,
    Nearest,
}

fn write_levels<T: GdalType + Copy>(
    overviews: &mut [gdal::raster::RasterBand],
    levels: Vec<Level<T>>,
    bx: usize,
    by: usize,
) -> gdal::errors::Result<()> {
    for (k, (ov, (lw, lh, v))) in overviews.iter_mut().zip(levels).enumerate() {
        let f = 2usize << k;
        let mut buf = gdal::raster::Buffer::new((lw, lh), v);
        ov.write(((bx / f) as isize, (by / f) as isize), (lw, lh), &mut buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::cog_sample::{bytes_of, Sample};
    use crate::export::raster::testing::{grid, read_level, working};
    use gdal::Metadata;

    fn check_same_as_gdal<T: Sample + PartialEq + std::fmt::Debug>(
        value: impl Fn(usize, usize) -> T,
        nodata: f64,
        resampling: &str,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let g = grid(1100, 700);
        let src = dir.path().join("work.tif");
        // Two blocks never written: sparse tiles read as nodata.
        working::<T>(&src, &g, nodata, value, |bx, by| bx == 600 && by <= 300);
        let ours = dir.path().join("ours.tif");
        assert!(write_cog(&src, &ours, None).unwrap());
        // GDAL's COG driver on the same working raster, with the same
        // overviews (add_overviews writes them into a copy).
        let src2 = dir.path().join("work2.tif");
        std::fs::copy(&src, &src2).unwrap();
        let gdals = dir.path().join("gdal.tif");
        add_overviews(&src2, resampling).unwrap();
        {
            let ds = gdal::Dataset::open(&src2).unwrap();
            let drv = gdal::DriverManager::get_driver_by_name("COG").unwrap();
            let opts = gdal::raster::RasterCreationOptions::from_iter([
                "BLOCKSIZE=512",
                "OVERVIEWS=FORCE_USE_EXISTING",
            ]);
            ds.create_copy(&drv, &gdals, &opts)
                .unwrap()
                .close()
                .unwrap();
        }
        let (a, b) = (
            gdal::Dataset::open(&ours).unwrap(),
            gdal::Dataset::open(&gdals).unwrap(),
        );
        assert_eq!(a.raster_size(), (1100, 700));
        assert_eq!(a.geo_transform().unwrap(), g.geotransform);
        assert_eq!(
            a.spatial_ref().unwrap().auth_code().unwrap(),
            b.spatial_ref().unwrap().auth_code().unwrap()
        );
        assert_eq!(
            a.rasterband(1).unwrap().no_data_value(),
            b.rasterband(1).unwrap().no_data_value()
        );
        assert_eq!(
            a.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        let ov = a.rasterband(1).unwrap().overview_count().unwrap();
        // 1100 -> 550 -> 275 columns.
        assert_eq!(ov, 2);
        assert_eq!(ov, b.rasterband(1).unwrap().overview_count().unwrap());
        for level in [None, Some(0), Some(1)] {
            let (x, y) = (read_level::<T>(&a, level), read_level::<T>(&b, level));
            assert_eq!((x.0, x.1), (y.0, y.1));
            let same =
                x.2.iter()
                    .zip(&y.2)
                    .all(|(p, q)| bytes_of(&[*p]) == bytes_of(&[*q]));
            assert!(same, "level {level:?} differs from GDAL's");
        }
        // to_cog takes this path and leaves nothing beside its output.
        let via = dir.path().join("out").join("via.tif");
        std::fs::create_dir(via.parent().unwrap()).unwrap();
        to_cog(&src, &via, resampling, 1, None).unwrap();
        assert_eq!(std::fs::read(&via).unwrap(), std::fs::read(&ours).unwrap());
        assert_eq!(std::fs::read_dir(via.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn float_cog_has_gdals_pixels_overviews_and_georeferencing() {
        check_same_as_gdal::<f32>(
            |x, y| match (x * 7 + y * 13) % 11 {
                0 => f32::NAN,
                1 => -1.0,
                k => (x as f32 * 0.01).sin() * k as f32 + y as f32 * 1e-3,
            },
            -1.0,
            "AVERAGE",
        );
    }

    #[test]
    fn byte_cog_has_gdals_pixels_overviews_and_georeferencing() {
        check_same_as_gdal::<u8>(|x, y| ((x / 3 + y / 5) % 3) as u8 * 127, 255.0, "NEAREST");
    }
}
