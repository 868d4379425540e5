//! Helpers shared by the detect tests: running the binary, reading rasters,
//! and building scene folders in a temp dir from the sample tiles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample_before() -> PathBuf {
    root().join("sample_tiles/abudhabi/before")
}

pub fn sample_after() -> PathBuf {
    root().join("sample_tiles/abudhabi/after")
}

pub fn sample_label() -> PathBuf {
    root().join("sample_tiles/abudhabi/abudhabi-cm.tif")
}

/// Runs `dunewatch` with arguments.
pub fn dunewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args(args)
        .env("GDAL_PAM_ENABLED", "NO")
        .output()
        .expect("run dunewatch")
}

/// `detect` without the sites step (see `detect_with_sites`).
pub fn detect(before: &Path, after: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut e = vec!["--no-sites"];
    e.extend_from_slice(extra);
    detect_with_sites(before, after, out, &e)
}

pub fn detect_with_sites(before: &Path, after: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "detect",
        "--quiet",
        "--before",
        before.to_str().unwrap(),
        "--after",
        after.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dunewatch(&args)
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "dunewatch failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whole first band as f64, with its (cols, rows).
pub fn read_band(path: &Path) -> (Vec<f64>, (usize, usize)) {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let b = ds.rasterband(1).unwrap();
    let buf = b.read_band_as::<f64>().unwrap();
    let shape = buf.shape();
    (buf.into_shape_and_vec().1, shape)
}

/// The file in `dir` whose name ends with `_<band>.tif`.
pub fn band_file(dir: &Path, band: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with(&format!("_{band}.tif"))
        })
        .unwrap_or_else(|| panic!("no {band} in {}", dir.display()))
}

/// Writes a one-band UInt16 GeoTIFF of `w` x `h` values, georeferenced by
/// `geo_transform` and the `projection` WKT.
pub fn write_u16_tif(
    path: &Path,
    (w, h): (usize, usize),
    data: Vec<u16>,
    geo_transform: &[f64; 6],
    projection: &str,
) {
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv.create_with_band_type::<u16, _>(path, w, h, 1).unwrap();
    ds.set_geo_transform(geo_transform).unwrap();
    ds.set_projection(projection).unwrap();
    let mut buf = gdal::raster::Buffer::new((w, h), data);
    ds.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut buf)
        .unwrap();
    ds.close().unwrap();
}

/// Copies a raster with GDAL into another format / name.
pub fn translate(src: &Path, dst: &Path, driver: &str) {
    let ds = gdal::Dataset::open(src).unwrap();
    let drv = gdal::DriverManager::get_driver_by_name(driver).unwrap();
    let opts = if driver == "JP2OpenJPEG" {
        gdal::raster::RasterCreationOptions::from_iter(["REVERSIBLE=YES", "QUALITY=100"])
    } else {
        gdal::raster::RasterCreationOptions::new()
    };
    ds.create_copy(&drv, dst, &opts).unwrap().close().unwrap();
}

/// F1 of a 0/1/255 mask against the 1/2 label, and the F1 a random mask with
/// the same changed fraction would get on average.
pub fn f1_vs_label(mask: &[f64], label: &[f64]) -> (f64, f64) {
    let (mut tp, mut fp, mut fneg, mut n, mut t) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&m, &l) in mask.iter().zip(label) {
        if m == 255.0 {
            continue;
        }
        n += 1.0;
        let truth = l == 2.0;
        let pred = m == 1.0;
        if truth {
            t += 1.0;
        }
        match (pred, truth) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fneg += 1.0,
            _ => {}
        }
    }
    let f1 = 2.0 * tp / (2.0 * tp + fp + fneg);
    let (q, tf) = ((tp + fp) / n, t / n);
    let f1_random = 2.0 * q * tf / (q + tf);
    (f1, f1_random)
}
