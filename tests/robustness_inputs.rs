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

/// A copy of the sample before scene (made unless `dir` exists) with
/// `band`'s file rewritten by `f` (from its values as f64, to `T`).
fn scene_with_band<T: gdal::raster::GdalType + Copy>(
    dir: &Path,
    band: &str,
    f: impl Fn(f64) -> T,
) -> PathBuf {
    let scene = if dir.exists() {
        dir.to_path_buf()
    } else {
        copy_scene(&sample_before(), dir)
    };
    let path = band_file(&scene, band);
    let src = gdal::Dataset::open(band_file(&sample_before(), band)).unwrap();
    let (vals, (w, h)) = read_band(&band_file(&sample_before(), band));
    std::fs::remove_file(&path).unwrap();
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv.create_with_band_type::<T, _>(&path, w, h, 1).unwrap();
    ds.set_geo_transform(&src.geo_transform().unwrap()).unwrap();
    ds.set_projection(&src.projection()).unwrap();
    let mut buf = gdal::raster::Buffer::new((w, h), vals.iter().map(|&v| f(v)).collect());
    ds.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut buf)
        .unwrap();
    ds.close().unwrap();
    scene
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn float_reflectance_bands_are_read_as_reflectance_and_recorded() {
    let t = tmp();
    let before = t.path().join("before");
    for b in ["B02", "B03", "B04", "B08", "B11", "B12"] {
        scene_with_band::<f32>(&before, b, |v| (v / 10000.0) as f32);
    }
    let out = t.path().join("run");
    assert_ok(&detect(&before, &sample_after(), &out, &[]));
    let rec = run_json(&out);
    let f = &rec["before"]["files"]["B04"];
    assert_eq!(f["values"], "reflectance", "{f}");
    assert_eq!(f["quantification"], 1.0);
    assert!(f["path"].as_str().unwrap().ends_with("_B04.tif"));
    assert_eq!(rec["after"]["files"]["B04"]["values"], "counts");
    // The same decisions as from the UInt16 counts.
    let counts = t.path().join("counts");
    assert_ok(&detect(&sample_before(), &sample_after(), &counts, &[]));
    let (a, _) = read_band(&out.join("change_mask.tif"));
    let (b, _) = read_band(&counts.join("change_mask.tif"));
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        differ * 1000 <= a.len(),
        "{differ} of {} pixels differ",
        a.len()
    );
}

#[test]
fn byte_and_float_count_bands_are_refused() {
    let t = tmp();
    let byte = scene_with_band::<u8>(&t.path().join("byte"), "B04", |v| (v / 40.0) as u8);
    let o = detect(&byte, &sample_after(), &t.path().join("r1"), &[]);
    assert_fails(&o, 1, &["_B04.tif", "is a Byte band", "UInt16"]);
    let float = scene_with_band::<f32>(&t.path().join("float"), "B04", |v| v as f32);
    let o = detect(&float, &sample_after(), &t.path().join("r2"), &[]);
    assert_fails(&o, 1, &["_B04.tif", "Float32", "neither reflectance"]);
}

#[test]
fn two_files_for_one_band_are_named() {
    let t = tmp();
    let before = copy_scene(&sample_before(), &t.path().join("before"));
    let b04 = band_file(&before, "B04");
    std::fs::copy(&b04, before.join("old_B04.tif")).unwrap();
    let o = detect(&before, &sample_after(), &t.path().join("run"), &[]);
    assert_fails(
        &o,
        1,
        &[
            "two files for band B04",
            "old_B04.tif",
            b04.file_name().unwrap().to_str().unwrap(),
        ],
    );
}

#[test]
fn a_fifo_named_like_a_band_is_refused_without_opening_it() {
    let t = tmp();
    let before = copy_scene(&sample_before(), &t.path().join("before"));
    let fifo = before.join("X_B01.tif");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    // Opening the FIFO would block forever: the run must end without it.
    let o = detect(&before, &sample_after(), &t.path().join("run"), &[]);
    assert_fails(&o, 1, &["X_B01.tif", "not a regular file"]);
}

#[test]
fn unreadable_and_non_utf8_band_files_are_named_with_the_cause() {
    use std::os::unix::ffi::OsStrExt;
    let t = tmp();
    let garbage = copy_scene(&sample_before(), &t.path().join("garbage"));
    let b03 = band_file(&garbage, "B03");
    std::fs::write(&b03, b"not a raster").unwrap();
    let o = detect(&garbage, &sample_after(), &t.path().join("r1"), &[]);
    assert_fails(
        &o,
        1,
        &[
            b03.file_name().unwrap().to_str().unwrap(),
            "not a raster GDAL can read",
        ],
    );
    assert!(!stderr(&o).contains("Error msg"), "{}", stderr(&o));

    let odd = copy_scene(&sample_before(), &t.path().join("odd"));
    let name = std::ffi::OsStr::from_bytes(b"\xffX_B05.tif");
    std::fs::rename(band_file(&odd, "B05"), odd.join(name)).unwrap();
    let o = detect(&odd, &sample_after(), &t.path().join("r2"), &[]);
    assert_fails(&o, 1, &["X_B05.tif", "not valid UTF-8"]);
}

fn write_geojson(path: &Path, ring: &[(f64, f64)]) {
    let coords: Vec<String> = ring.iter().map(|(x, y)| format!("[{x}, {y}]")).collect();
    std::fs::write(
        path,
        format!(
            r#"{{"type": "FeatureCollection", "features": [{{"type": "Feature", "properties": {{}}, "geometry": {{"type": "Polygon", "coordinates": [[{}]]}}}}]}}"#,
            coords.join(", ")
        ),
    )
    .unwrap();
}

#[test]
fn too_few_comparable_pixels_says_why() {
    let t = tmp();
    // An area of interest of a few metres: a grid of a pixel or two.
    let (gt, _, _) = geo(&band_file(&sample_before(), "B04"));
    let (x, y) = (gt[0] + 300.5 * gt[1], gt[3] + 300.5 * gt[5]);
    let d = gt[1] / 4.0;
    let aoi = t.path().join("aoi.geojson");
    write_geojson(
        &aoi,
        &[(x, y), (x + d, y), (x + d, y - d), (x, y - d), (x, y)],
    );
    let o = detect(
        &sample_before(),
        &sample_after(),
        &t.path().join("r1"),
        &["--aoi", aoi.to_str().unwrap(), "--no-coregister"],
    );
    assert_fails(
        &o,
        1,
        &["comparable pixels", "area of interest is too small"],
    );

    // A band that is no data everywhere.
    let empty = scene_with_band::<u16>(&t.path().join("empty"), "B08", |_| 0);
    let o = detect(
        &empty,
        &sample_after(),
        &t.path().join("r2"),
        &["--no-coregister"],
    );
    assert_fails(&o, 1, &["comparable pixels", "no data"]);
}

#[test]
fn eval_refuses_a_score_raster_as_prediction() {
    let t = tmp();
    let out = t.path().join("run");
    assert_ok(&detect(&sample_before(), &sample_after(), &out, &[]));
    let score = out.join("change_score.tif");
    let o = dunewatch(&[
        "eval",
        "--pred",
        score.to_str().unwrap(),
        "--truth",
        sample_label().to_str().unwrap(),
    ]);
    assert_fails(&o, 1, &["change_score.tif", "Float32", "change mask"]);
}

#[test]
fn train_on_a_one_class_label_names_the_label() {
    let t = tmp();
    let (_, (w, h)) = read_band(&sample_label());
    let label = t.path().join("flat-cm.tif");
    let src = gdal::Dataset::open(sample_label()).unwrap();
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv.create_with_band_type::<u8, _>(&label, w, h, 1).unwrap();
    if let Ok(gt) = src.geo_transform() {
        ds.set_geo_transform(&gt).unwrap();
    }
    ds.set_projection(&src.projection()).unwrap();
    let mut buf = gdal::raster::Buffer::new((w, h), vec![1u8; w * h]);
    ds.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut buf)
        .unwrap();
    ds.close().unwrap();
    let o = dunewatch(&[
        "train",
        "--quiet",
        "--pair",
        sample_before().to_str().unwrap(),
        sample_after().to_str().unwrap(),
        label.to_str().unwrap(),
        "--out",
        t.path().join("model.json").to_str().unwrap(),
    ]);
    assert_fails(&o, 1, &["flat-cm.tif", "one class"]);
    assert!(!stderr(&o).contains("singular Hessian"));
}

fn l1c_xml_with(rel_b04: &str) -> (String, String) {
    let (name, xml) = safe_fixture::fixture_xml("L1C_N0509");
    let line = xml
        .lines()
        .find(|l| l.contains("<IMAGE_FILE>") && l.contains("_B04<"))
        .unwrap()
        .to_string();
    let new = format!("            <IMAGE_FILE>{rel_b04}</IMAGE_FILE>");
    (name, xml.replace(&line, &new))
}

#[test]
fn safe_image_files_outside_the_product_are_refused() {
    let t = tmp();
    let (name, xml) = l1c_xml_with("../outside/T34UCF_20230823T095559_B04");
    let p = safe_fixture::build_safe_from_xml(&t.path().join("p"), &name, &xml);
    // The file it points to exists: it must still not be read.
    assert!(t
        .path()
        .join("p/outside/T34UCF_20230823T095559_B04.jp2")
        .is_file());
    let e = dunewatch::read::open_scene(&p.safe_dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("outside the product") && e.contains("../outside"),
        "{e}"
    );
    for bad in [
        "/etc/T34UCF_B04",
        "GRANULE/../../x/T34UCF_B04",
        "C:/x/T34UCF_B04",
    ] {
        let (name, xml) = l1c_xml_with(bad);
        let dir = t.path().join("q");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), &xml).unwrap();
        let e = dunewatch::read::open_scene(&dir).unwrap_err().to_string();
        assert!(e.contains("outside the product"), "{bad}: {e}");
    }
}

#[test]
fn safe_zip_member_with_a_bad_crc_is_refused() {
    use std::io::Write;
    let t = tmp();
    let p = safe_fixture::build_safe(&t.path().join("p"), "L1C_N0509");
    let top = p
        .safe_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let zip_path = t.path().join("product.zip");
    // Stored, so that a flipped byte is a CRC error and nothing else.
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut b04 = None;
    for e in walk(&p.safe_dir) {
        let rel = e.strip_prefix(&p.safe_dir).unwrap().to_str().unwrap();
        let bytes = std::fs::read(&e).unwrap();
        if rel.ends_with("_B04.jp2") {
            b04 = Some((rel.to_string(), bytes.clone()));
        }
        zw.start_file(format!("{top}/{rel}"), opts).unwrap();
        zw.write_all(&bytes).unwrap();
    }
    zw.finish().unwrap();
    // Untouched, it opens.
    dunewatch::read::open_scene(&zip_path).unwrap();
    let (member, bytes) = b04.unwrap();
    let mut z = std::fs::read(&zip_path).unwrap();
    let at = z
        .windows(bytes.len())
        .position(|w| w == bytes.as_slice())
        .unwrap()
        + bytes.len() / 2;
    z[at] ^= 0x55;
    std::fs::write(&zip_path, &z).unwrap();
    let e = dunewatch::read::open_scene(&zip_path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("product.zip") && e.contains(&member) && e.contains("damaged"),
        "{e}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}
