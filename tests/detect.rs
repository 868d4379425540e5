//! `dunewatch detect` end to end: real sample tiles, every input form,
//! grids that differ, block/thread invariance, synthetic IR-MAD checks and
//! bad input.

#[path = "common/safe_fixture.rs"]
mod safe_fixture;
#[path = "common/scenes.rs"]
mod scenes;

use gdal::Metadata;
use scenes::*;
use std::path::{Path, PathBuf};

const STAT_BANDS: [&str; 6] = ["B02", "B03", "B04", "B08", "B11", "B12"];

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

/// Offset (cols, rows) of an output grid inside the before scene's 10 m grid.
fn offset_in_before(out_gt: &[f64; 6]) -> (usize, usize) {
    let ds = gdal::Dataset::open(band_file(&sample_before(), "B04")).unwrap();
    let gt = ds.geo_transform().unwrap();
    assert!(
        (out_gt[1] - gt[1]).abs() < 1e-12 && (out_gt[5] - gt[5]).abs() < 1e-12,
        "pixel size changed"
    );
    let fx = (out_gt[0] - gt[0]) / gt[1];
    let fy = (out_gt[3] - gt[3]) / gt[5];
    assert!(
        (fx - fx.round()).abs() < 1e-6 && (fy - fy.round()).abs() < 1e-6,
        "grid not aligned to the before grid"
    );
    (fx.round() as usize, fy.round() as usize)
}

/// The label cropped to the output grid.
fn label_on(out: &Path) -> Vec<f64> {
    let ds = gdal::Dataset::open(out.join("change_mask.tif")).unwrap();
    let (w, h) = ds.raster_size();
    let (ox, oy) = offset_in_before(&ds.geo_transform().unwrap());
    let (label, (lw, _)) = read_band(&sample_label());
    let mut v = Vec::with_capacity(w * h);
    for r in 0..h {
        for c in 0..w {
            v.push(label[(r + oy) * lw + c + ox]);
        }
    }
    v
}

fn assert_beats_chance(out: &Path, factor: f64) -> f64 {
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    let (f1, f1_random) = f1_vs_label(&mask, &label_on(out));
    assert!(
        f1 > factor * f1_random,
        "F1 {f1:.3} not above {factor} x chance ({f1_random:.3})"
    );
    f1
}

#[test]
fn sample_tiles_give_georeferenced_cogs_that_match_the_label() {
    let t = tmp();
    let out = t.path().join("run");
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &out,
        &["--chips", "3"],
    ));

    for (name, nodata) in [("change_mask.tif", 255.0), ("change_score.tif", -1.0)] {
        let ds = gdal::Dataset::open(out.join(name)).unwrap();
        let srs = ds.spatial_ref().unwrap();
        assert_eq!(srs.auth_code().unwrap(), 4326, "{name} CRS");
        offset_in_before(&ds.geo_transform().unwrap());
        let band = ds.rasterband(1).unwrap();
        assert_eq!(band.no_data_value(), Some(nodata), "{name} nodata");
        assert_eq!(
            ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG"),
            "{name} layout"
        );
        // The mask as every reader knows it; the float score as ZSTD with
        // the floating-point predictor (smaller and far cheaper to write).
        let (compression, predictor) = if name.contains("score") {
            ("ZSTD", Some("3"))
        } else {
            ("DEFLATE", Some("2"))
        };
        assert_eq!(
            ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                .as_deref(),
            Some(compression),
            "{name} compression"
        );
        assert_eq!(
            ds.metadata_item("PREDICTOR", "IMAGE_STRUCTURE").as_deref(),
            predictor,
            "{name} predictor"
        );
        assert!(
            band.overview_count().unwrap() >= 1,
            "{name} has no overviews"
        );
        assert_eq!(band.block_size(), (512, 512));
    }
    // Styled for QGIS and described for GDAL: the mask is a palette with
    // category names, both bands are described, styles sit beside them.
    let info = std::process::Command::new("gdalinfo")
        .arg(out.join("change_mask.tif"))
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    for line in [
        "ColorInterp=Palette",
        "Color Table (RGB with 256 entries)",
        "1: 255,150,0,255",
        "Categories:",
        "0: no change",
        "1: change",
        "255: masked",
        "Description = change: 0 no change, 1 change, 255 masked",
    ] {
        assert!(info.contains(line), "gdalinfo has no {line:?}: {info}");
    }
    let score = gdal::Dataset::open(out.join("change_score.tif")).unwrap();
    use gdal::Metadata as _;
    assert!(score
        .rasterband(1)
        .unwrap()
        .description()
        .unwrap()
        .starts_with("change score"));
    for qml in ["change_mask.qml", "change_score.qml"] {
        let text = std::fs::read_to_string(out.join(qml)).unwrap();
        assert!(text.contains("<rasterrenderer"), "{qml}");
    }
    // The overviews dunewatch computes: the mask's first pixel of every 2x2
    // square, the score's mean of the compared pixels of each.
    for (name, nodata) in [("change_mask.tif", 255.0), ("change_score.tif", -1.0)] {
        let ds = gdal::Dataset::open(out.join(name)).unwrap();
        let band = ds.rasterband(1).unwrap();
        let (w, h) = band.size();
        let base = band.read_as::<f64>((0, 0), (w, h), (w, h), None).unwrap();
        let ov = band.overview(0).unwrap();
        let (ow, oh) = ov.size();
        assert_eq!((ow, oh), (w.div_ceil(2), h.div_ceil(2)), "{name}");
        let ov = ov.read_as::<f64>((0, 0), (ow, oh), (ow, oh), None).unwrap();
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                let px = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .map(|(dy, dx)| base.data()[(2 * y + dy) * w + 2 * x + dx]);
                let got = ov.data()[y * ow + x];
                if name == "change_mask.tif" {
                    assert_eq!(got, px[0], "{name} ({x}, {y})");
                } else {
                    let valid: Vec<f64> = px.into_iter().filter(|&v| v != nodata).collect();
                    let want = if valid.is_empty() {
                        nodata
                    } else {
                        valid.iter().sum::<f64>() / valid.len() as f64
                    };
                    assert!(
                        (got - want).abs() < 1e-6,
                        "{name} ({x}, {y}): {got} vs {want}"
                    );
                }
            }
        }
    }
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0 || v == 255.0));
    assert!(mask.contains(&1.0) && mask.contains(&0.0));
    let (score, _) = read_band(&out.join("change_score.tif"));
    assert!(score.iter().all(|&v| v == -1.0 || (0.0..=1.0).contains(&v)));
    // Mask and score agree: changed exactly where the score passes the threshold.
    let rec = run_json(&out);
    let thr = rec["detect"]["threshold"].as_f64().unwrap();
    for (m, s) in mask.iter().zip(&score) {
        if *m != 255.0 {
            assert_eq!(*m == 1.0, *s >= thr as f32 as f64);
        }
    }
    let f1 = assert_beats_chance(&out, 4.0);
    assert!(f1 > 0.2, "F1 {f1}");

    assert_eq!(rec["before"]["date"], "2016-01-20");
    assert_eq!(rec["after"]["date"], "2018-03-28");
    assert_eq!(rec["detect"]["method"], "learned", "the default method");
    assert!(
        rec["weights"]["licence"]
            .as_str()
            .unwrap()
            .contains("CC BY-NC-SA"),
        "run.json names the licence of the default method's weights"
    );
    assert_eq!(
        rec["after"]["alignment"]["B04"], "warped",
        "the after scene is on another MGRS tile's grid"
    );
    assert_eq!(rec["before"]["alignment"]["B04"], "direct");
    assert_eq!(rec["before"]["alignment"]["B11"], "warped");
    let changed = rec["detect"]["pixels"]["changed"].as_u64().unwrap();
    assert_eq!(changed, mask.iter().filter(|&&v| v == 1.0).count() as u64);
    assert!(rec["timings_s"]["total"].as_f64().unwrap() > 0.0);
    assert!(rec["bands_used"].as_array().unwrap().len() >= 6);
    // Nothing left behind but the outputs.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "change_mask.qml",
            "change_mask.tif",
            "change_mask.tif.aux.xml",
            "change_score.qml",
            "change_score.tif",
            "chips",
            "compounds.csv",
            "compounds.csvt",
            "compounds.geojson",
            "compounds.qml",
            "report.html",
            "run.json",
            "sites.csv",
            "sites.csvt",
            "sites.geojson",
            "sites.kml",
            "sites.qml"
        ]
    );
    let site_chips = std::fs::read_dir(out.join("chips"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("compound-")
        })
        .count();
    assert_eq!(site_chips, 3);
    // Scene paths are absolute, so `sites` can re-read them from anywhere.
    assert!(Path::new(rec["before"]["path"].as_str().unwrap()).is_absolute());
}

#[test]
fn same_outputs_whatever_block_size_and_thread_count() {
    let t = tmp();
    let a = t.path().join("a");
    let b = t.path().join("b");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &a,
        &["--block-size", "64", "--threads", "1"],
    ));
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &b,
        &["--block-size", "300", "--threads", "2"],
    ));
    for f in ["change_score.tif", "change_mask.tif"] {
        let (x, _) = read_band(&a.join(f));
        let (y, _) = read_band(&b.join(f));
        assert!(x == y, "{f} differs between block sizes / thread counts");
    }
    assert_eq!(
        run_json(&a)["detect"]["threshold"],
        run_json(&b)["detect"]["threshold"]
    );
}

/// The top quarter of every band of `src` repeated `copies` times side by
/// side (mirrored in turn, so content runs on across each join), into `dst`
/// under the same names: a scene wider than a score panel, from real pixels.
fn widened_copy(src: &Path, dst: &Path, copies: usize) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let path = e.unwrap().path();
        let ds = gdal::Dataset::open(&path).unwrap();
        let band = ds.rasterband(1).unwrap();
        let (w, h) = band.size();
        let h = h / 4;
        let v = band
            .read_as::<u16>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1;
        let ww = w * copies;
        let mut out = Vec::with_capacity(ww * h);
        for row in v.chunks_exact(w) {
            for c in 0..copies {
                if c % 2 == 0 {
                    out.extend_from_slice(row);
                } else {
                    out.extend(row.iter().rev());
                }
            }
        }
        write_u16_tif(
            &dst.join(path.file_name().unwrap()),
            (ww, h),
            out,
            &ds.geo_transform().unwrap(),
            &ds.projection(),
        );
    }
}

#[test]
fn scores_across_panel_seams_equal_those_of_one_panel() {
    // Over 4096 px wide: with 512 px blocks the score pass cuts it into two
    // panels and carries the columns around the seam from one to the next;
    // with blocks as wide as the scene it reads one panel. Every method
    // with spatial context (their halos differ; cnn's pooling cells must
    // stay on the grid's lattice) must give the same rasters either way.
    let t = tmp();
    let (b, a) = (t.path().join("before"), t.path().join("after"));
    widened_copy(&sample_before(), &b, 6);
    widened_copy(&sample_after(), &a, 6);
    for method in ["combined", "learned", "cnn"] {
        let (x, y) = (
            t.path().join(format!("{method}_x")),
            t.path().join(format!("{method}_y")),
        );
        assert_ok(&detect(
            &b,
            &a,
            &x,
            &["--method", method, "--block-size", "512"],
        ));
        assert_ok(&detect(
            &b,
            &a,
            &y,
            &["--method", method, "--block-size", "8192"],
        ));
        for f in ["change_score.tif", "change_mask.tif"] {
            let (p, shape) = read_band(&x.join(f));
            let (q, _) = read_band(&y.join(f));
            assert!(shape.0 > 4096 + 512);
            assert!(p == q, "{method}: {f} differs across a panel seam");
        }
    }
}

/// A scene folder with the statistics bands under other naming styles.
fn renamed_copy(src: &Path, dst: &Path, style: &str) {
    std::fs::create_dir_all(dst).unwrap();
    // B10 too: the L1C cloud test uses it.
    for b in STAT_BANDS.iter().chain(&["B10"]) {
        let f = band_file(src, b);
        match style {
            "esa_jp2" => {
                let res = match *b {
                    "B11" | "B12" => 20,
                    "B10" => 60,
                    _ => 10,
                };
                translate(
                    &f,
                    &dst.join(format!("T39QZG_20160120T104345_{b}_{res}m.jp2")),
                    "JP2OpenJPEG",
                );
            }
            "cog_archive" => translate(&f, &dst.join(format!("{b}.tif")), "COG"),
            _ => unreachable!(),
        }
    }
}

#[test]
fn esa_jp2_and_cog_archive_folders_read_like_oscd_folders() {
    let t = tmp();
    let esa = t.path().join("esa");
    let cog = t.path().join("cog");
    renamed_copy(&sample_before(), &esa, "esa_jp2");
    renamed_copy(&sample_after(), &cog, "cog_archive");
    let base = t.path().join("base");
    let other = t.path().join("other");
    assert_ok(&detect(&sample_before(), &sample_after(), &base, &[]));
    assert_ok(&detect(&esa, &cog, &other, &[]));
    let (x, _) = read_band(&base.join("change_mask.tif"));
    let (y, _) = read_band(&other.join("change_mask.tif"));
    assert!(
        x == y,
        "lossless JPEG2000 / COG copies must give the same mask"
    );
    // The JPEG2000 files read natively (the four 10 m bands; the others
    // are warped) were decoded once and read from the copies; the sites
    // found from them equal those `dunewatch sites` finds reading the
    // JPEG2000 files themselves.
    let rec = run_json(&other);
    assert_eq!(rec["jp2_decoded_once"], 4, "{}", rec["before"]["alignment"]);
    assert_eq!(run_json(&other)["before"]["date"], "2016-01-20");
    let with_sites = t.path().join("with_sites");
    assert_ok(&detect_with_sites(
        &esa,
        &cog,
        &with_sites,
        &["--chips", "3"],
    ));
    let again = t.path().join("again");
    assert_sites_equal_from_published(&with_sites, &again, 3);
    assert!(!with_sites.join("decoded").exists());
}

#[test]
fn multiband_geotiff_with_band_descriptions() {
    let t = tmp();
    let path = t.path().join("before_stack.tif");
    let ref_ds = gdal::Dataset::open(band_file(&sample_before(), "B04")).unwrap();
    let (w, h) = ref_ds.raster_size();
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv
        .create_with_band_type::<u16, _>(&path, w, h, STAT_BANDS.len())
        .unwrap();
    ds.set_geo_transform(&ref_ds.geo_transform().unwrap())
        .unwrap();
    ds.set_projection(&ref_ds.projection()).unwrap();
    for (i, b) in STAT_BANDS.iter().enumerate() {
        let src = gdal::Dataset::open(band_file(&sample_before(), b)).unwrap();
        let sb = src.rasterband(1).unwrap();
        // 20 m bands are resampled onto the 10 m grid (nearest) for the stack.
        let mut buf = sb.read_as::<u16>((0, 0), sb.size(), (w, h), None).unwrap();
        let mut band = ds.rasterband(i + 1).unwrap();
        band.write((0, 0), (w, h), &mut buf).unwrap();
        band.set_description(b).unwrap();
    }
    ds.close().unwrap();
    let out = t.path().join("run");
    assert_ok(&detect(&path, &sample_after(), &out, &[]));
    assert_eq!(run_json(&out)["before"]["form"], "multi_band_tiff");
    assert_beats_chance(&out, 3.0);
}

#[test]
fn after_scene_in_another_crs_is_warped_onto_the_before_grid() {
    let t = tmp();
    let utm = t.path().join("after_utm");
    std::fs::create_dir_all(&utm).unwrap();
    for b in STAT_BANDS {
        let f = band_file(&sample_after(), b);
        let res = if matches!(b, "B11" | "B12") {
            "20"
        } else {
            "10"
        };
        let st = std::process::Command::new("gdalwarp")
            .args([
                "-q",
                "-t_srs",
                "EPSG:32640",
                "-tr",
                res,
                res,
                "-r",
                "bilinear",
            ])
            .arg(&f)
            .arg(utm.join(f.file_name().unwrap()))
            .status()
            .expect("gdalwarp (gdal-bin) is needed: run scripts/setup.sh");
        assert!(st.success());
    }
    let out = t.path().join("run");
    assert_ok(&detect(&sample_before(), &utm, &out, &[]));
    let ds = gdal::Dataset::open(out.join("change_mask.tif")).unwrap();
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 4326);
    assert_beats_chance(&out, 3.0);
}

/// A copy of a scene folder brightened (DN x 1.05 + 30: a radiometric
/// change, not a change on the ground) with every file displaced by `(dx,
/// dy)` of the scene's 10 m pixels (x east, y south).
fn displaced_copy(src: &Path, dst: &Path, dx: f64, dy: f64) {
    std::fs::create_dir_all(dst).unwrap();
    let ten = gdal::Dataset::open(band_file(src, "B04"))
        .unwrap()
        .geo_transform()
        .unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let p = e.path();
        let ds = gdal::Dataset::open(&p).unwrap();
        let mut gt = ds.geo_transform().unwrap();
        gt[0] += dx * ten[1];
        gt[3] += dy * ten[5];
        let (v, shape) = read_band(&p);
        let v = v
            .iter()
            .map(|&x| {
                if x == 0.0 {
                    0
                } else {
                    (x * 1.05 + 30.0) as u16
                }
            })
            .collect();
        write_u16_tif(
            &dst.join(p.file_name().unwrap()),
            shape,
            v,
            &gt,
            &ds.projection(),
        );
    }
}

#[test]
fn a_displaced_after_scene_is_shifted_back_onto_the_before_scene() {
    let t = tmp();
    let after = t.path().join("after");
    displaced_copy(&sample_before(), &after, 2.0, -1.0);
    let (on, off) = (t.path().join("on"), t.path().join("off"));
    assert_ok(&detect(&sample_before(), &after, &on, &[]));
    assert_ok(&detect(
        &sample_before(),
        &after,
        &off,
        &["--no-coregister"],
    ));
    let (on, off) = (run_json(&on), run_json(&off));
    let c = &on["coregistration"];
    assert_eq!(c["applied"], true, "{c}");
    let s: Vec<f64> = c["shift_px"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (s[0] - 2.0).abs() < 0.1 && (s[1] + 1.0).abs() < 0.1,
        "shift {s:?}"
    );
    // 10 m bands on the before lattice are interpolated; the 20 m bands,
    // already warped, are warped again onto the moved grid.
    assert_eq!(on["after"]["alignment"]["B04"], "shifted");
    assert_eq!(on["after"]["alignment"]["B11"], "warped");
    assert_eq!(off["coregistration"]["applied"], false);
    // The same ground: shifted back, next to nothing changed; left two
    // pixels off, edges everywhere look like change.
    let changed = |r: &serde_json::Value| r["detect"]["pixels"]["changed"].as_u64().unwrap();
    assert!(
        changed(&on) * 10 < changed(&off),
        "changed with co-registration {}, without {}",
        changed(&on),
        changed(&off)
    );
}

#[test]
fn the_sample_pairs_misregistration_is_corrected_and_accuracy_rises() {
    let t = tmp();
    let (on, off) = (t.path().join("on"), t.path().join("off"));
    assert_ok(&detect(&sample_before(), &sample_after(), &on, &[]));
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &off,
        &["--no-coregister"],
    ));
    // OSCD abudhabi's dates are about a pixel apart (0.7 px east, 1.1 px
    // south by an independent phase correlation of the same bands).
    let c = &run_json(&on)["coregistration"];
    let s = c["shift_px"].as_array().unwrap();
    let (dx, dy) = (s[0].as_f64().unwrap(), s[1].as_f64().unwrap());
    assert!((dx - 0.7).abs() < 0.25 && (dy - 1.1).abs() < 0.25, "{c}");
    let (f_on, f_off) = (
        assert_beats_chance(&on, 4.0),
        assert_beats_chance(&off, 4.0),
    );
    assert!(f_on > f_off + 0.01, "F1 {f_on:.3} with, {f_off:.3} without");
}

#[test]
fn safe_products_folder_and_zip() {
    let t = tmp();
    let p1 = safe_fixture::build_safe(&t.path().join("a"), "L2A_N0509");
    let p2 = safe_fixture::build_safe(&t.path().join("b"), "L2A_N0509");
    let zip = t.path().join("after.zip");
    safe_fixture::zip_folder(&p2.safe_dir, &zip);
    let out = t.path().join("run");
    // The fixture's bands share one pattern, so IR-MAD's covariances are
    // singular; CVA exercises the same pipeline.
    assert_ok(&detect(&p1.safe_dir, &zip, &out, &["--method", "cva"]));
    let rec = run_json(&out);
    assert_eq!(rec["before"]["form"], "safe_folder");
    assert_eq!(rec["after"]["form"], "safe_zip");
    assert_eq!(rec["before"]["level"], "L2A");
    assert_eq!(rec["before"]["scene_classification"], true);
    assert_eq!(rec["grid"]["epsg"], 32634);
    // SCL classes 3 and 8-10 are masked as shadow and cloud.
    assert!(rec["detect"]["pixels"]["masked"]["cloud"].as_u64().unwrap() > 0);
    assert!(
        rec["detect"]["pixels"]["masked"]["cloud_shadow"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    assert!(mask.contains(&255.0));
}

/// A synthetic before/after pair of 6-band folders on a UTM grid.
fn synthetic_pair(dir: &Path, insert_change: bool) -> (PathBuf, PathBuf) {
    synthetic_pair_with_cloud(dir, insert_change, |_, _| 0.0)
}

/// As [`synthetic_pair`], with a cloud of optical weight `cloud(row, col)`
/// over the after date: after = (1 - a) ground + a white.
fn synthetic_pair_with_cloud(
    dir: &Path,
    insert_change: bool,
    cloud: impl Fn(usize, usize) -> f64,
) -> (PathBuf, PathBuf) {
    let (w, h) = (160usize, 160usize);
    let mut seed = 12345u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f64) / (1u64 << 31) as f64
    };
    // Land cover: smooth random field per pixel, mixing two spectra.
    let cover: Vec<f64> = (0..w * h)
        .map(|i| {
            (0.5 + 0.4 * ((i % w) as f64 / 13.0).sin() * ((i / w) as f64 / 17.0).cos()
                + 0.1 * rnd())
            .clamp(0.0, 1.0)
        })
        .collect();
    let sand = [0.18, 0.26, 0.34, 0.40, 0.50, 0.45];
    let soil = [0.08, 0.10, 0.12, 0.25, 0.30, 0.22];
    let roof = [0.35, 0.36, 0.37, 0.38, 0.30, 0.25];
    let white = [0.50, 0.50, 0.50, 0.50, 0.40, 0.30];
    let before = dir.join("before");
    let after = dir.join("after");
    for (d, name) in [(&before, "20200101"), (&after, "20210101")] {
        std::fs::create_dir_all(d).unwrap();
        let is_after = name == "20210101";
        for (k, b) in STAT_BANDS.iter().enumerate() {
            let gain = 1.0 + 0.15 * k as f64;
            let off = 0.02;
            let data: Vec<u16> = (0..w * h)
                .map(|i| {
                    let (r, c) = (i / w, i % w);
                    let x = cover[i] * sand[k] + (1.0 - cover[i]) * soil[k];
                    let refl = if !is_after {
                        x + 0.004 * rnd()
                    } else if insert_change && (60..80).contains(&r) && (60..84).contains(&c) {
                        roof[k]
                    } else {
                        gain * x + off + 0.004 * rnd()
                    };
                    let a = if is_after { cloud(r, c) } else { 0.0 };
                    let refl = (1.0 - a) * refl + a * white[k];
                    (refl * 10000.0).round() as u16
                })
                .collect();
            write_u16_tif(
                &d.join(format!("T34UCF_{name}T100000_{b}.tif")),
                (w, h),
                data,
                &[300000.0, 10.0, 0.0, 6100000.0, 0.0, -10.0],
                &gdal::spatial_ref::SpatialRef::from_epsg(32634)
                    .unwrap()
                    .to_wkt()
                    .unwrap(),
            );
        }
    }
    (before, after)
}

#[test]
fn irmad_finds_inserted_change_and_ignores_linear_radiometric_change() {
    let t = tmp();
    let (b, a) = synthetic_pair(&t.path().join("changed"), true);
    let out = t.path().join("run");
    assert_ok(&detect(
        &b,
        &a,
        &out,
        &["--method", "irmad", "--threshold", "0.999"],
    ));
    let (mask, (w, _)) = read_band(&out.join("change_mask.tif"));
    let inside = |i: usize| (60..80).contains(&(i / w)) && (60..84).contains(&(i % w));
    let found = (0..mask.len())
        .filter(|&i| inside(i) && mask[i] == 1.0)
        .count();
    let false_alarms = (0..mask.len())
        .filter(|&i| !inside(i) && mask[i] == 1.0)
        .count();
    assert!(
        found >= 480 * 9 / 10,
        "only {found} of 480 changed pixels found; run.json: {}",
        run_json(&out)["detect"]
    );
    // IR-MAD's re-weighting slightly underestimates the no-change spread, so
    // a few percent of unchanged pixels pass a 0.999 cut.
    assert!(
        false_alarms < mask.len() / 20,
        "{false_alarms} false alarms"
    );

    let (b, a) = synthetic_pair(&t.path().join("linear"), false);
    let out = t.path().join("run_linear");
    assert_ok(&detect(
        &b,
        &a,
        &out,
        &["--method", "irmad", "--threshold", "0.999"],
    ));
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    let flagged = mask.iter().filter(|&&v| v == 1.0).count();
    assert!(
        flagged < mask.len() / 20,
        "{flagged} pixels flagged under a purely linear radiometric change"
    );

    // The combined score also ignores it (calibrated, neighbourhood-tolerant).
    let out = t.path().join("run_linear_combined");
    assert_ok(&detect(&b, &a, &out, &[]));
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    assert!(mask.iter().filter(|&&v| v == 1.0).count() < mask.len() / 100);
}

/// On a real pair IR-MAD is a chi-square test on its calibrated statistic:
/// raw, the iterated fit's no-change spread is so narrow that it flags
/// 93 % of the Abu Dhabi sample.
#[test]
fn irmad_on_a_real_pair_tests_at_its_significance_level() {
    let t = tmp();
    let out = t.path().join("irmad");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &out,
        &["--method", "irmad"],
    ));
    let d = &run_json(&out)["detect"];
    assert_eq!(d["threshold_source"], "significance", "{d}");
    assert!(
        (d["threshold"].as_f64().unwrap() - 0.99).abs() < 1e-6,
        "{d}"
    );
    let share = d["pixels"]["changed_fraction"].as_f64().unwrap();
    assert!(
        (0.005..0.3).contains(&share),
        "{share} of the pixels flagged"
    );
}

#[test]
fn a_thin_cloud_is_masked_and_the_new_roof_beside_it_is_still_found() {
    let t = tmp();
    // A thin cloud (white at 45 % in its middle, thinning out over ~300 m)
    // south-east of the 200 x 240 m roof, which is as white and flat as a
    // cloud but sharp-edged.
    let thin = |r: usize, c: usize| {
        let d2 = (r as f64 - 115.0).powi(2) + (c as f64 - 115.0).powi(2);
        0.45 * (-d2 / (2.0 * 14.0f64.powi(2))).exp()
    };
    let (b, a) = synthetic_pair_with_cloud(&t.path().join("cloudy"), true, thin);
    for method in ["combined", "learned", "cva"] {
        let out = t.path().join(format!("run_{method}"));
        assert_ok(&detect(&b, &a, &out, &["--method", method]));
        let masked = &run_json(&out)["detect"]["pixels"]["masked"];
        let cloud = masked["cloud"].as_u64().unwrap();
        // Where the cloud is thicker than 0.1 (blue up by > 0.03): ~1900 px.
        assert!((1500..5000).contains(&cloud), "{method}: {masked}");
        let (mask, (w, _)) = read_band(&out.join("change_mask.tif"));
        assert_eq!(mask[115 * w + 115], 255.0, "{method}");
        let roof = (0..mask.len())
            .filter(|&i| (60..80).contains(&(i / w)) && (60..84).contains(&(i % w)))
            .filter(|&i| mask[i] != 255.0)
            .count();
        assert_eq!(roof, 480, "{method}: the roof must not be masked");
    }
}

/// The mask is the score raster cut at the run's threshold, pixel for pixel,
/// and run.json's counts are its pixels; also where the multi-temporal cloud
/// test removes whole cells after the score pass (it then rewrites the score
/// and, when the threshold was known before the pass, the mask the pass
/// wrote). The Paris sample has two thin clouds and a cloud shadow that
/// only that test masks.
#[test]
fn the_mask_is_the_score_at_the_threshold_also_where_cloud_cells_are_removed() {
    let t = tmp();
    let paris = root().join("sample_tiles/paris");
    for method in ["combined", "cva"] {
        let out = t.path().join(format!("run_{method}"));
        assert_ok(&detect(
            &paris.join("before"),
            &paris.join("after"),
            &out,
            &["--method", method],
        ));
        let run = run_json(&out);
        let px = &run["detect"]["pixels"];
        // Shadows are only masked by the cell test.
        let shadow = px["masked"]["cloud_shadow"].as_u64().unwrap();
        assert!(shadow > 1000, "{method}: the cloud shadow is masked: {px}");
        let threshold = run["detect"]["threshold"].as_f64().unwrap() as f32;
        let (score, _) = read_band(&out.join("change_score.tif"));
        let (mask, _) = read_band(&out.join("change_mask.tif"));
        for (i, (&s, &m)) in score.iter().zip(&mask).enumerate() {
            let want = if s == -1.0 {
                255.0
            } else if s as f32 >= threshold {
                1.0
            } else {
                0.0
            };
            assert_eq!(m, want, "{method}: pixel {i}: score {s}, mask {m}");
        }
        let count = |f: &dyn Fn(f64) -> bool| mask.iter().filter(|&&m| f(m)).count() as u64;
        assert_eq!(
            px["changed"].as_u64().unwrap(),
            count(&|m| m == 1.0),
            "{method}"
        );
        assert_eq!(
            px["compared"].as_u64().unwrap(),
            count(&|m| m != 255.0),
            "{method}"
        );
    }
}

#[test]
fn aoi_clips_and_masks() {
    let t = tmp();
    let aoi = t.path().join("aoi.geojson");
    // A triangle inside the sample scene (lon/lat, RFC 7946).
    std::fs::write(
        &aoi,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[54.55,24.30],[54.60,24.30],[54.55,24.35],[54.55,24.30]]]}}]}"#,
    )
    .unwrap();
    let out = t.path().join("run");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &out,
        &["--aoi", aoi.to_str().unwrap()],
    ));
    let ds = gdal::Dataset::open(out.join("change_mask.tif")).unwrap();
    let (w, h) = ds.raster_size();
    assert!(
        w < 785 && h < 799 && w > 400 && h > 400,
        "grid not clipped to the AOI: {w} x {h}"
    );
    let (mask, _) = read_band(&out.join("change_mask.tif"));
    // Upper-right corner is outside the triangle, lower-left inside.
    assert_eq!(mask[w - 1], 255.0);
    assert_ne!(mask[(h - 2) * w + 1], 255.0);
    let masked = run_json(&out)["detect"]["pixels"]["masked"]["outside_aoi"]
        .as_u64()
        .unwrap();
    assert!(masked as usize > w * h / 3);
}

// ---- bad input: one line naming the file, non-zero exit, nothing written ----

fn assert_fails_cleanly(o: &std::process::Output, out: &Path, must_name: &str, must_say: &str) {
    assert!(!o.status.success(), "should have failed");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error must be one line: {err}"
    );
    assert!(
        err.contains(must_name),
        "error does not name {must_name}: {err}"
    );
    assert!(
        err.contains(must_say),
        "error does not say '{must_say}': {err}"
    );
    if out.exists() {
        let left: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "failed run left files behind: {left:?}");
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn missing_band_is_named() {
    let t = tmp();
    let before = t.path().join("before");
    copy_dir(&sample_before(), &before);
    std::fs::remove_file(band_file(&before, "B11")).unwrap();
    let out = t.path().join("out");
    let o = detect(&before, &sample_after(), &out, &[]);
    assert_fails_cleanly(&o, &out, before.to_str().unwrap(), "missing band B11");
}

#[test]
fn truncated_file_is_named() {
    let t = tmp();
    let before = t.path().join("before");
    copy_dir(&sample_before(), &before);
    let f = band_file(&before, "B04");
    let len = std::fs::metadata(&f).unwrap().len();
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..(len / 2) as usize]).unwrap();
    let out = t.path().join("out");
    let o = detect(&before, &sample_after(), &out, &[]);
    assert_fails_cleanly(&o, &out, f.file_name().unwrap().to_str().unwrap(), "");
}

#[test]
fn scenes_that_do_not_overlap() {
    let t = tmp();
    let after = t.path().join("after");
    std::fs::create_dir_all(&after).unwrap();
    for b in STAT_BANDS {
        let f = band_file(&sample_after(), b);
        // Moved ten degrees east.
        let st = std::process::Command::new("gdal_translate")
            .args(["-q", "-a_ullr", "64.54", "24.37", "64.61", "24.29"])
            .arg(&f)
            .arg(after.join(f.file_name().unwrap()))
            .status()
            .expect("gdal_translate (gdal-bin) is needed: run scripts/setup.sh");
        assert!(st.success());
    }
    let out = t.path().join("out");
    let o = detect(&sample_before(), &after, &out, &[]);
    assert_fails_cleanly(&o, &out, after.to_str().unwrap(), "do not overlap");
}

#[test]
fn all_pixels_masked() {
    let t = tmp();
    let before = t.path().join("before");
    copy_dir(&sample_before(), &before);
    // B02 all zero: Sentinel-2's no-data value everywhere.
    let f = band_file(&before, "B02");
    let ds = gdal::Dataset::open_ex(
        &f,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        },
    )
    .unwrap();
    let (w, h) = ds.raster_size();
    let mut buf = gdal::raster::Buffer::new((w, h), vec![0u16; w * h]);
    ds.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut buf)
        .unwrap();
    ds.close().unwrap();
    let out = t.path().join("out");
    let o = detect(&before, &sample_after(), &out, &[]);
    assert_fails_cleanly(&o, &out, "", "masked");
}

#[test]
fn unwritable_output_folder() {
    let t = tmp();
    let file = t.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("out");
    let o = detect(&sample_before(), &sample_after(), &out, &[]);
    assert_fails_cleanly(
        &o,
        &out,
        out.to_str().unwrap(),
        "cannot create output folder",
    );
}

#[test]
fn output_folder_equal_to_input_folder() {
    let t = tmp();
    let before = t.path().join("before");
    copy_dir(&sample_before(), &before);
    let n = std::fs::read_dir(&before).unwrap().count();
    let o = detect(&before, &sample_after(), &before, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is an input folder"), "{err}");
    assert_eq!(
        std::fs::read_dir(&before).unwrap().count(),
        n,
        "something was written into the input folder"
    );
}

#[test]
fn resolution_option_sets_the_pixel_size() {
    let t = tmp();
    let out = t.path().join("run");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &out,
        &["--resolution", "20"],
    ));
    let rec = run_json(&out);
    let px = rec["grid"]["pixel_size_m"].as_array().unwrap();
    for v in px {
        let m = v.as_f64().unwrap();
        assert!((m - 20.0).abs() < 0.5, "pixel size {m} m, asked for 20 m");
    }
    let w = rec["grid"]["width"].as_u64().unwrap();
    // 785 pixels of 0.000094 degrees of longitude at 24.3 N span 7.5 km.
    assert!((365..=385).contains(&w), "width {w} at 20 m");
    let o = detect(
        &sample_before(),
        &sample_after(),
        &t.path().join("bad"),
        &["--resolution=-5"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resolution"));
}

/// Copies the published rasters and run.json of `run` into `again`, runs
/// `dunewatch sites` there, and asserts the sites files and the `chips`
/// chips are the same bytes as those `detect` made in `run`.
fn assert_sites_equal_from_published(run: &Path, again: &Path, chips: usize) {
    std::fs::create_dir(again).unwrap();
    for f in ["change_mask.tif", "change_score.tif", "run.json"] {
        std::fs::copy(run.join(f), again.join(f)).unwrap();
    }
    let n = chips.to_string();
    assert_ok(&dunewatch(&[
        "sites",
        "--quiet",
        "--chips",
        &n,
        again.to_str().unwrap(),
    ]));
    let mut files: Vec<String> = [
        "sites.csv",
        "sites.geojson",
        "sites.kml",
        "compounds.csv",
        "compounds.geojson",
    ]
    .map(String::from)
    .to_vec();
    for e in std::fs::read_dir(run.join("chips")).unwrap() {
        files.push(format!(
            "chips/{}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    let site_chips = files
        .iter()
        .filter(|f| f.starts_with("chips/") && !f.starts_with("chips/compound-"))
        .count();
    assert_eq!(site_chips, chips, "{chips} chips");
    for f in &files {
        let a = std::fs::read(run.join(f)).unwrap();
        assert!(a.len() > 200, "{f} is empty");
        assert!(a == std::fs::read(again.join(f)).unwrap(), "{f} differs");
    }
}

fn kept_bytes(run: &Path) -> Option<u64> {
    run_json(run)["detect"]["kept_bytes"].as_u64()
}

/// `detect` describes its sites from the reflectance its score pass kept
/// around the changed pixels; `dunewatch sites` reads the scenes. With
/// blocks of 32 px most kept pixels lie on a block's border, and a site's
/// window crosses many blocks: the same sites either way.
#[test]
fn sites_from_the_kept_pixels_equal_sites_from_the_scenes_across_block_edges() {
    let t = tmp();
    let during = t.path().join("during");
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &during,
        &["--chips", "3", "--block-size", "32"],
    ));
    let kept = kept_bytes(&during).expect("the combined method keeps pixels");
    assert!(kept > 1000, "{kept} bytes kept");
    assert_sites_equal_from_published(&during, &t.path().join("after"), 3);
    // Otsu's threshold is known only after the pass: nothing kept, sites
    // read from the scenes.
    let otsu = t.path().join("otsu");
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &otsu,
        &["--chips", "1", "--method", "cva"],
    ));
    assert_eq!(run_json(&otsu)["detect"]["threshold_source"], "otsu");
    assert_eq!(kept_bytes(&otsu), None);
    assert_sites_equal_from_published(&otsu, &t.path().join("otsu_after"), 1);
}

/// `detect` finds the sites from its working rasters while it writes the
/// COGs; `dunewatch sites` on the published folder must find the same.
#[test]
fn sites_during_detect_equal_sites_from_the_published_run() {
    let t = tmp();
    let during = t.path().join("during");
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &during,
        &["--chips", "5"],
    ));
    assert_sites_equal_from_published(&during, &t.path().join("after"), 5);
    // No staging folder is left behind.
    assert!(std::fs::read_dir(&during).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}
