//! Bad inputs and hostile options end cleanly: one line naming the file or
//! option and the problem, exit code 2 for usage errors and 1 for the rest,
//! no panic, no hang, no unbounded memory.

#[path = "common/safe_fixture.rs"]
#[allow(dead_code)]
mod safe_fixture;
#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The run failed with `code`, one message containing every one of `parts`,
/// and no panic.
fn assert_fails(o: &Output, code: i32, parts: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    for p in parts {
        assert!(e.contains(p), "message lacks {p:?}: {e}");
    }
}

/// A copy of a sample scene folder in `dir`.
fn copy_scene(src: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir.to_path_buf()
}

fn geo(path: &Path) -> ([f64; 6], (usize, usize), Option<i32>) {
    let ds = gdal::Dataset::open(path).unwrap();
    let srs = ds.spatial_ref().unwrap();
    (
        ds.geo_transform().unwrap(),
        ds.raster_size(),
        srs.auth_code().ok(),
    )
}

#[test]
fn resolution_in_metres_on_a_geographic_scene() {
    let t = tmp();
    let out = t.path().join("run");
    // With the sites step: it re-aligns the scenes on the run's grid.
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &out,
        &["--resolution", "20", "--chips", "2"],
    ));
    let (b_gt, (bw, bh), _) = geo(&band_file(&sample_before(), "B04"));
    for name in ["change_mask.tif", "change_score.tif"] {
        let (gt, (w, h), epsg) = geo(&out.join(name));
        assert_eq!(epsg, Some(4326), "{name}");
        // 20 m in degrees at latitude 24.33: 20 / 101 490 m per degree of
        // longitude and 20 / 110 760 m per degree of latitude.
        assert!(
            (gt[1] - 20.0 / 101_490.0).abs() < 2e-7,
            "{name} dx {}",
            gt[1]
        );
        assert!(
            (gt[5] + 20.0 / 110_760.0).abs() < 2e-7,
            "{name} dy {}",
            gt[5]
        );
        // The before grid's origin, about half as many pixels (less the
        // part the after scene does not cover).
        assert!((gt[0] - b_gt[0]).abs() < 1e-9 && (gt[3] - b_gt[3]).abs() < 1e-9);
        let ew = (bw as f64 * b_gt[1] / gt[1]).round() as usize;
        let eh = (bh as f64 * b_gt[5] / gt[5]).round() as usize;
        assert!(
            w <= ew && w + 3 >= ew,
            "{name} width {w}, expected about {ew}"
        );
        assert!(
            h <= eh && h + 3 >= eh,
            "{name} height {h}, expected about {eh}"
        );
    }
    assert!(out.join("sites.geojson").is_file());
}

#[test]
fn resolution_that_would_make_a_huge_grid_is_refused_with_the_limit() {
    let t = tmp();
    let o = detect(
        &sample_before(),
        &sample_after(),
        &t.path().join("run"),
        &["--resolution", "0.01"],
    );
    assert_fails(&o, 2, &["--resolution", "1073741824 pixels"]);
    assert!(!t.path().join("run/run.json").exists());
}

#[test]
fn options_out_of_range_are_usage_errors() {
    let t = tmp();
    let out = t.path().join("run");
    for (opt, val, says) in [
        ("--block-size", "0", "between 16 and 16384"),
        ("--threads", "1000000", "at most"),
        ("--threshold", "2", "[0, 1]"),
        ("--resolution", "0", "positive"),
        ("--resolution", "nan", "positive"),
        ("--method", "foo", "unknown method"),
    ] {
        let o = detect(&sample_before(), &sample_after(), &out, &[opt, val]);
        assert_fails(&o, 2, &[says]);
        if opt != "--method" {
            assert!(stderr(&o).contains(opt), "{opt}: {}", stderr(&o));
        }
    }
    // In batch, the same check refuses the whole batch before any pair.
    let o = dunewatch(&[
        "batch",
        sample_before().parent().unwrap().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--block-size",
        "0",
    ]);
    assert_fails(&o, 2, &["--block-size"]);
    assert!(!out.exists());
}

#[test]
fn runtime_errors_exit_1() {
    let t = tmp();
    let o = detect(
        &t.path().join("missing"),
        &sample_after(),
        &t.path().join("run"),
        &[],
    );
    assert_fails(&o, 1, &["missing"]);
}

/// A sparse tiled GeoTIFF declaring `n` x `n` UInt16 pixels over `like`'s
/// extent: a few MB on disk.
fn huge_sparse_like(like: &Path, dst: &Path, n: usize) {
    let src = gdal::Dataset::open(like).unwrap();
    let gt = src.geo_transform().unwrap();
    let (w, h) = src.raster_size();
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "TILED=YES",
        "SPARSE_OK=TRUE",
        "COMPRESS=DEFLATE",
        "BIGTIFF=YES",
    ]);
    let mut ds = drv
        .create_with_band_type_with_options::<u16, _>(dst, n, n, 1, &opts)
        .unwrap();
    let fine = [
        gt[0],
        gt[1] * w as f64 / n as f64,
        0.0,
        gt[3],
        0.0,
        gt[5] * h as f64 / n as f64,
    ];
    ds.set_geo_transform(&fine).unwrap();
    ds.set_projection(&src.projection()).unwrap();
    ds.close().unwrap();
}

#[test]
fn a_band_declaring_a_huge_size_is_refused_before_reading() {
    let t = tmp();
    let after = copy_scene(&sample_after(), &t.path().join("after"));
    let b04 = band_file(&after, "B04");
    std::fs::remove_file(&b04).unwrap();
    huge_sparse_like(&band_file(&sample_after(), "B04"), &b04, 100_000);
    assert!(std::fs::metadata(&b04).unwrap().len() < 200_000_000);
    let o = detect(&sample_before(), &after, &t.path().join("run"), &[]);
    assert_fails(
        &o,
        1,
        &[
            b04.file_name().unwrap().to_str().unwrap(),
            "100000 x 100000",
            "2147483648 pixels",
        ],
    );
}
