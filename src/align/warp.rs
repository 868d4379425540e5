//! GDAL warped VRTs and the AOI raster: the two places the aligner asks GDAL
//! to make a new raster on the output grid.

use super::{AlignedBand, Grid, Source};
use crate::error::{gdal_msg, Error, Result};
use crate::read::BandFile;
use gdal::cpl::CslStringList;
use std::ffi::CString;
use std::path::Path;

fn csl(args: &[String]) -> Result<CslStringList> {
    let mut l = CslStringList::new();
    for a in args {
        l.add_string(a).map_err(|e| Error::invalid(gdal_msg(&e)))?;
    }
    Ok(l)
}

fn last_gdal_error() -> String {
    let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) };
    let m = msg.to_string_lossy().trim().to_string();
    if m.is_empty() {
        "GDAL failed".into()
    } else {
        m
    }
}

/// Writes a VRT selecting one band of a multi-band file.
fn select_band(src: &gdal::Dataset, index: usize, dst: &Path) -> Result<gdal::Dataset> {
    let args = csl(&["-of".into(), "VRT".into(), "-b".into(), index.to_string()])?;
    let dst_c = CString::new(dst.to_string_lossy().as_bytes()).unwrap();
    unsafe {
        let opts = gdal_sys::GDALTranslateOptionsNew(args.as_ptr(), std::ptr::null_mut());
        let mut usage = 0;
        let h = gdal_sys::GDALTranslate(dst_c.as_ptr(), src.c_dataset(), opts, &mut usage);
        gdal_sys::GDALTranslateOptionsFree(opts);
        if h.is_null() {
            return Err(Error::input(dst, last_gdal_error()));
        }
        Ok(gdal::Dataset::from_c_dataset(h))
    }
}

/// Makes a warped VRT of one band on exactly `grid`.
pub(super) fn warp_to_vrt(
    file: &BandFile,
    ds: &gdal::Dataset,
    grid: &Grid,
    vrt: &Path,
    categorical: bool,
    nodata: f64,
) -> Result<()> {
    let one_band;
    let src: &gdal::Dataset = if ds.raster_count() > 1 || file.index != 1 {
        one_band = select_band(ds, file.index, &vrt.with_extension("band.vrt"))?;
        &one_band
    } else {
        ds
    };
    let src_px = Grid::from_dataset(src, &file.path)?;
    // Metres per pixel of source and target, to choose up- or down-sampling.
    let (smx, smy) = src_px.metres_per_unit();
    let (gmx, gmy) = grid.metres_per_unit();
    let downsampling = grid.pixel_size().0 * gmx > src_px.pixel_size().0 * smx * 1.01;
    let ratio = (
        grid.pixel_size().0 * gmx / (src_px.pixel_size().0 * smx),
        grid.pixel_size().1 * gmy / (src_px.pixel_size().1 * smy),
    );
    let alg = match (categorical, downsampling) {
        (true, false) => "near",
        (true, true) => "mode",
        (false, false) => "bilinear",
        (false, true) => "average",
    };
    let [xmin, ymin, xmax, ymax] = grid.bounds();
    let mut args: Vec<String> = vec![
        "-of".into(),
        "VRT".into(),
        "-t_srs".into(),
        grid.wkt.clone(),
        "-te".into(),
    ];
    args.extend([xmin, ymin, xmax, ymax].iter().map(|v| format!("{v:.12}")));
    args.extend([
        "-ts".into(),
        grid.width.to_string(),
        grid.height.to_string(),
        "-r".into(),
        alg.into(),
    ]);
    args.extend([
        "-srcnodata".into(),
        nodata.to_string(),
        "-dstnodata".into(),
        nodata.to_string(),
    ]);
    // Never substitute an overview for the full-resolution source.
    args.extend(["-ovr".into(), "NONE".into(), "-q".into()]);
    let args = csl(&args)?;
    let dst_c = CString::new(vrt.to_string_lossy().as_bytes()).unwrap();
    unsafe {
        let opts = gdal_sys::GDALWarpAppOptionsNew(args.as_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(Error::input(
                &file.path,
                format!("cannot set up warping: {}", last_gdal_error()),
            ));
        }
        let mut srcs = [src.c_dataset()];
        let mut usage = 0;
        let h = gdal_sys::GDALWarp(
            dst_c.as_ptr(),
            std::ptr::null_mut(),
            1,
            srcs.as_mut_ptr(),
            opts,
            &mut usage,
        );
        gdal_sys::GDALWarpAppOptionsFree(opts);
        if h.is_null() {
            return Err(Error::input(
                &file.path,
                format!("cannot warp onto the output grid: {}", last_gdal_error()),
            ));
        }
        gdal_sys::GDALClose(h);
    }
    bound_vrt_blocks(vrt, ratio)
}

/// Source pixels one block of a warped VRT may need (GDAL warps a whole
/// VRT block at once, reading every source pixel under it: a source 128
/// times finer than the grid needs 2 GB for one 512 x 128 block).
const WARP_SOURCE_PIXELS_PER_BLOCK: f64 = 4.0 * 1024.0 * 1024.0;

/// The block size (square, a multiple of 16, 16 to 512 pixels) of a warped
/// VRT whose grid pixels are `ratio` source pixels wide and tall, so that a
/// block needs at most about [`WARP_SOURCE_PIXELS_PER_BLOCK`] source pixels.
/// None when GDAL's default (512 x 128) is within the budget.
fn warp_block_size(ratio: (f64, f64)) -> Option<usize> {
    let per_px = ratio.0.max(1.0) * ratio.1.max(1.0);
    if 512.0 * 128.0 * per_px <= WARP_SOURCE_PIXELS_PER_BLOCK {
        return None;
    }
    let side = (WARP_SOURCE_PIXELS_PER_BLOCK / per_px).sqrt();
    Some(((side / 16.0).floor() as usize * 16).clamp(16, 512))
}

/// Rewrites the block size of the warped VRT at `vrt` (gdalwarp takes none
/// for VRT output) so that a block reads a bounded source window.
fn bound_vrt_blocks(vrt: &Path, ratio: (f64, f64)) -> Result<()> {
    let Some(side) = warp_block_size(ratio) else {
        return Ok(());
    };
    let xml = std::fs::read_to_string(vrt)
        .map_err(|e| Error::output(vrt, format!("cannot read: {e}")))?;
    let mut out = String::with_capacity(xml.len());
    for line in xml.lines() {
        let t = line.trim_start();
        if t.starts_with("<BlockXSize>") {
            out.push_str(&format!("  <BlockXSize>{side}</BlockXSize>"));
        } else if t.starts_with("<BlockYSize>") {
            out.push_str(&format!("  <BlockYSize>{side}</BlockYSize>"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::fs::write(vrt, out).map_err(|e| Error::output(vrt, format!("cannot write: {e}")))
}

/// Burns the AOI polygons (already in the grid CRS) into a byte raster on the grid.
pub(super) fn rasterize_aoi(
    path: &Path,
    geoms: &[gdal::vector::Geometry],
    grid: &Grid,
    tmp: &Path,
) -> Result<AlignedBand> {
    let out = tmp.join("aoi.tif");
    let drv = gdal::DriverManager::get_driver_by_name("GTiff")
        .map_err(|e| Error::invalid(gdal_msg(&e)))?;
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "TILED=YES",
        "COMPRESS=DEFLATE",
        "SPARSE_OK=TRUE",
    ]);
    let mut ds = drv
        .create_with_band_type_with_options::<u8, _>(&out, grid.width, grid.height, 1, &opts)
        .map_err(|e| Error::output(&out, gdal_msg(&e)))?;
    ds.set_geo_transform(&grid.geotransform)
        .map_err(|e| Error::output(&out, gdal_msg(&e)))?;
    ds.set_projection(&grid.wkt)
        .map_err(|e| Error::output(&out, gdal_msg(&e)))?;
    let burn = vec![1.0; geoms.len()];
    gdal::raster::rasterize(&mut ds, &[1], geoms, &burn, None)
        .map_err(|e| Error::input(path, format!("cannot rasterize: {}", gdal_msg(&e))))?;
    ds.close().map_err(|e| Error::output(&out, gdal_msg(&e)))?;
    let p = out.to_string_lossy().into_owned();
    Ok(AlignedBand {
        file: BandFile {
            path: p.clone(),
            index: 1,
            add_offset: 0.0,
            quantification: 1.0,
        },
        source: Source::Direct {
            path: p,
            index: 1,
            x_off: 0,
            y_off: 0,
        },
        nodata: 255.0,
        saturated: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warp_blocks_shrink_with_finer_sources() {
        assert_eq!(warp_block_size((1.0, 1.0)), None);
        assert_eq!(warp_block_size((6.0, 6.0)), None);
        let s = warp_block_size((128.0, 128.0)).unwrap();
        assert_eq!(s, 16);
        let s = warp_block_size((20.0, 20.0)).unwrap();
        assert!(s * s * 400 <= 4 * 1024 * 1024 && s >= 16, "{s}");
    }
}
