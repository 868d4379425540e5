//! GeoTIFF writing: tiled working rasters during the run, converted to
//! Cloud-Optimized GeoTIFFs (DEFLATE masks, ZSTD scores, overviews) at the end. Every raster
//! carries the grid's CRS, geotransform and nodata.

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
    workers: Option<super::cog::Workers>,
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
        if super::cog::write_cog(src, dst, workers)? {
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

/// Block side of the COGs, and of the blocks the overviews are made from.
pub(crate) const COG_BLOCK: usize = 512;

/// The overview factors GDAL's COG driver makes for a `w` x `h` raster:
/// halving until the overview fits in one block.
pub fn overview_factors(w: usize, h: usize) -> Vec<i32> {
    let mut out = Vec::new();
    let mut f = 1;
    while w.max(h).div_ceil(f) > COG_BLOCK {
        f *= 2;
        out.push(f as i32);
    }
    out
}

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

/// One level of a block's pyramid: (columns, rows, values).
pub type Level<T> = (usize, usize, Vec<T>);

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

/// `levels` overviews of a `w` x `h` block, each half the previous (sizes
/// rounded up): the mean of the valid pixels (not `nodata`, not NaN) each
/// overview pixel covers, or `nodata` where there are none. Sums and counts
/// are carried from level to level, so every level is the exact mean over
/// the block's own pixels.
pub fn average_pyramid(
    v: &[f32],
    w: usize,
    h: usize,
    nodata: f32,
    levels: usize,
) -> Vec<Level<f32>> {
    let valid = |x: f32| !x.is_nan() && x != nodata;
    let mut sum: Vec<f64> = v
        .iter()
        .map(|&x| if valid(x) { x as f64 } else { 0.0 })
        .collect();
    let mut cnt: Vec<u32> = v.iter().map(|&x| valid(x) as u32).collect();
    let (mut cw, mut ch) = (w, h);
    let mut out = Vec::with_capacity(levels);
    for _ in 0..levels {
        let (nw, nh) = (cw.div_ceil(2), ch.div_ceil(2));
        let mut ns = vec![0.0f64; nw * nh];
        let mut nc = vec![0u32; nw * nh];
        for y in 0..ch {
            for x in 0..cw {
                let (i, o) = (y * cw + x, (y / 2) * nw + x / 2);
                ns[o] += sum[i];
                nc[o] += cnt[i];
            }
        }
        let values = ns
            .iter()
            .zip(&nc)
            .map(|(&s, &c)| {
                if c == 0 {
                    nodata
                } else {
                    (s / c as f64) as f32
                }
            })
            .collect();
        out.push((nw, nh, values));
        (sum, cnt, cw, ch) = (ns, nc, nw, nh);
    }
    out
}

/// `levels` overviews of a `w` x `h` block by nearest neighbour: the first
/// (top-left) pixel of the 2^k square an overview pixel covers, which is
/// what GDAL's NEAREST takes at the first level.
pub fn nearest_pyramid(v: &[u8], w: usize, h: usize, levels: usize) -> Vec<Level<u8>> {
    (1..=levels)
        .map(|k| {
            let f = 1usize << k;
            let (nw, nh) = (w.div_ceil(f), h.div_ceil(f));
            let mut out = Vec::with_capacity(nw * nh);
            for y in 0..nh {
                out.extend(v[y * f * w..].iter().step_by(f).take(nw));
            }
            (nw, nh, out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overview_factors_are_those_of_the_cog_driver() {
        // gdalinfo of COGs GDAL made: 10980 -> 5490 ... 344; 5490 -> ... 344.
        assert_eq!(overview_factors(10980, 10980), vec![2, 4, 8, 16, 32]);
        assert_eq!(overview_factors(5490, 5490), vec![2, 4, 8, 16]);
        assert_eq!(overview_factors(512, 300), Vec::<i32>::new());
        assert_eq!(overview_factors(513, 10), vec![2]);
    }

    #[test]
    fn average_pyramid_means_valid_pixels_only() {
        let nd = -1.0;
        // 3 x 3: the odd column and row make 1-pixel-wide edge windows.
        let v = [1.0, 3.0, 5.0, nd, 4.0, f32::NAN, 7.0, 9.0, nd];
        let levels = average_pyramid(&v, 3, 3, nd, 2);
        assert_eq!(levels[0].0, 2);
        assert_eq!(levels[0].1, 2);
        assert_eq!(levels[0].2, vec![8.0 / 3.0, 5.0, 8.0, nd]);
        // The second level is the mean of all six valid pixels, not of the means.
        assert_eq!(levels[1], (1, 1, vec![29.0 / 6.0]));
    }

    #[test]
    fn nearest_pyramid_takes_the_first_pixel_of_each_square() {
        let v: Vec<u8> = (0..25).collect(); // 5 x 5, row-major
        let levels = nearest_pyramid(&v, 5, 5, 2);
        // Factor 2: rows and columns 0, 2, 4.
        assert_eq!(levels[0], (3, 3, vec![0, 2, 4, 10, 12, 14, 20, 22, 24]));
        // Factor 4: rows and columns 0, 4.
        assert_eq!(levels[1], (2, 2, vec![0, 4, 20, 24]));
    }
}
