//! `dunewatch eval`: hand-made change masks and labels written as GeoTIFFs,
//! with confusion counts, object sizes and sites known by construction.

use dunewatch::align::grid::metres_per_degree;
use dunewatch::eval::{self, EvalOptions, EvalReport};
use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::DriverManager;
use std::path::{Path, PathBuf};

/// UTM 33N, 10 m pixels.
const UTM: (u32, [f64; 6]) = (32633, [500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0]);
/// WGS 84, 0.001° pixels, north-west corner at 10° E, 50° N.
const GEO: (u32, [f64; 6]) = (4326, [10.0, 0.001, 0.0, 50.0, 0.0, -0.001]);

fn write_tif(path: &Path, w: usize, h: usize, data: &[u8], georef: Option<(u32, [f64; 6])>) {
    assert_eq!(data.len(), w * h);
    let drv = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv.create_with_band_type::<u8, _>(path, w, h, 1).unwrap();
    if let Some((epsg, gt)) = georef {
        ds.set_geo_transform(&gt).unwrap();
        ds.set_spatial_ref(&SpatialRef::from_epsg(epsg).unwrap())
            .unwrap();
    }
    let mut band = ds.rasterband(1).unwrap();
    let mut buf = Buffer::new((w, h), data.to_vec());
    band.write((0, 0), (w, h), &mut buf).unwrap();
}

/// Truth change flags as values of a coding: (no change, change).
fn coded(change: &[bool], coding: (u8, u8)) -> Vec<u8> {
    change
        .iter()
        .map(|&c| if c { coding.1 } else { coding.0 })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ---------------------------------------------------------------- pixels

const W: usize = 10;
const H: usize = 6;

/// Prediction and truth, 10 x 6:
/// - truth change: rows 0-1 cols 0-4 (10 px) and (8, 5), (9, 5);
/// - predicted change: rows 0-1 cols 2-6 (10 px);
/// - masked: all of row 3 (truth no change) and (9, 5) (truth change).
///
/// So TP = 6 (rows 0-1, cols 2-4), FP = 4 (cols 5-6), FN = 4 + 1
/// (cols 0-1, and (8, 5)), masked = 11, TN = 60 - 26 = 34.
fn pixel_case() -> (Vec<u8>, Vec<bool>) {
    let mut pred = vec![0u8; W * H];
    let mut truth = vec![false; W * H];
    for r in 0..2 {
        for c in 0..5 {
            truth[r * W + c] = true;
        }
        for c in 2..7 {
            pred[r * W + c] = 1;
        }
    }
    truth[5 * W + 8] = true;
    truth[5 * W + 9] = true;
    for c in 0..W {
        pred[3 * W + c] = 255;
    }
    pred[5 * W + 9] = 255;
    (pred, truth)
}

fn assert_pixel_case(r: &EvalReport) {
    let k = &r.pixels.counts;
    assert_eq!(
        (k.tp, k.fp, k.fn_, k.tn, k.masked),
        (6, 4, 5, 34, 11),
        "counts"
    );
    let (tp, fp, fn_, tn) = (6.0, 4.0, 5.0, 34.0);
    let n = tp + fp + fn_ + tn;
    assert!(
        close(r.pixels.precision, 6.0 / 10.0),
        "precision {}",
        r.pixels.precision
    );
    assert!(
        close(r.pixels.recall, 6.0 / 11.0),
        "recall {}",
        r.pixels.recall
    );
    assert!(close(r.pixels.f1, 12.0 / 21.0), "f1 {}", r.pixels.f1);
    assert!(close(r.pixels.iou, 6.0 / 15.0), "iou {}", r.pixels.iou);
    // Kappa from observed and chance agreement.
    let po = (tp + tn) / n;
    let pe = ((tp + fp) * (tp + fn_) + (fn_ + tn) * (fp + tn)) / (n * n);
    assert!(
        close(r.pixels.kappa, (po - pe) / (1.0 - pe)),
        "kappa {} vs {}",
        r.pixels.kappa,
        (po - pe) / (1.0 - pe)
    );
    assert_eq!((r.width, r.height), (W, H));
}

fn opts(strip_rows: usize) -> EvalOptions {
    EvalOptions { strip_rows }
}

/// The error evaluating `pred` against `truth` gives.
fn eval_error(pred: &Path, truth: &Path) -> String {
    eval::evaluate(pred, truth, None, &opts(0))
        .unwrap_err()
        .to_string()
}

/// `pred.tif` and `truth.tif` in a new temp dir: a W x H prediction of zeros
/// on the UTM grid, and a truth written by the test.
fn zero_pred() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, W, H, &[0u8; W * H], Some(UTM));
    (dir, pp, tp)
}

#[test]
fn counts_and_figures_for_every_coding() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, truth) = pixel_case();
    let pp = dir.path().join("pred.tif");
    write_tif(&pp, W, H, &pred, Some(UTM));
    for (coding, name) in [((0, 1), "0/1"), ((1, 2), "1/2"), ((0, 255), "0/255")] {
        let tp = dir
            .path()
            .join(format!("truth_{}_{}.tif", coding.0, coding.1));
        write_tif(&tp, W, H, &coded(&truth, coding), Some(UTM));
        // Whole image at once, strips of 4 (a short last strip) and of 1 row.
        for strip in [0, 4, 1] {
            let r = eval::evaluate(&pp, &tp, None, &opts(strip)).unwrap();
            assert_eq!(r.truth_coding.name(), name);
            assert_pixel_case(&r);
            assert!(r.notes.is_empty(), "{:?}", r.notes);
            assert!(r.sites.is_none());
        }
    }
}

#[test]
fn truth_without_georeferencing() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, truth) = pixel_case();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("label-cm.tif");
    write_tif(&pp, W, H, &pred, Some(UTM));
    write_tif(&tp, W, H, &coded(&truth, (1, 2)), None);
    let r = eval::evaluate(&pp, &tp, None, &opts(0)).unwrap();
    assert_eq!(r.truth_coding.name(), "1/2");
    assert_pixel_case(&r);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("truth has no georeferencing")),
        "{:?}",
        r.notes
    );
    // Pixel area still from the prediction's 10 m UTM grid.
    assert!(close(r.objects.pixel_area_m2, 100.0) && !r.objects.pixel_area_assumed);
}

#[test]
fn masked_prediction_counts_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (_, truth) = pixel_case();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, W, H, &[255u8; W * H], Some(UTM));
    write_tif(&tp, W, H, &coded(&truth, (0, 1)), Some(UTM));
    let r = eval::evaluate(&pp, &tp, None, &opts(0)).unwrap();
    let k = &r.pixels.counts;
    assert_eq!(
        (k.tp, k.fp, k.fn_, k.tn, k.masked),
        (0, 0, 0, 0, (W * H) as u64)
    );
    let p = &r.pixels;
    assert_eq!(
        (p.precision, p.recall, p.f1, p.iou, p.kappa),
        (0.0, 0.0, 0.0, 0.0, 0.0),
        "0/0 is 0"
    );
    // Every truth object lies under the mask: none is judged.
    assert_eq!((r.objects.all.objects, r.objects.all.masked), (0, 2));
}

#[test]
fn different_sizes_name_files_and_sizes() {
    let (_dir, pp, tp) = zero_pred();
    write_tif(&tp, W, H + 1, &[0u8; W * (H + 1)], None);
    let e = eval_error(&pp, &tp);
    assert!(e.contains("10 x 6") && e.contains("10 x 7"), "{e}");
    assert!(e.contains("pred.tif") && e.contains("truth.tif"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn different_grids_are_an_error() {
    let (_dir, pp, tp) = zero_pred();
    let mut shifted = UTM;
    shifted.1[0] += 20.0;
    write_tif(&tp, W, H, &[0u8; W * H], Some(shifted));
    let e = eval_error(&pp, &tp);
    assert!(e.contains("different grids"), "{e}");
    write_tif(&tp, W, H, &[0u8; W * H], Some((32634, UTM.1)));
    let e = eval_error(&pp, &tp);
    assert!(
        e.contains("different grids") && e.contains("EPSG:32634"),
        "{e}"
    );
}

#[test]
fn bad_values_are_errors() {
    let (_dir, pp, tp) = zero_pred();
    let mut truth = vec![0u8; W * H];
    truth[3] = 1;
    truth[4] = 2;
    write_tif(&tp, W, H, &truth, None);
    let e = eval_error(&pp, &tp);
    assert!(
        e.contains("0/1, 1/2 or 0/255") && e.contains("truth.tif"),
        "{e}"
    );
    let mut pred = vec![0u8; W * H];
    pred[W + 2] = 7;
    write_tif(&pp, W, H, &pred, Some(UTM));
    write_tif(&tp, W, H, &[0u8; W * H], None);
    let e = eval_error(&pp, &tp);
    assert!(
        e.contains("pixel (2, 1) has value 7") && e.contains("pred.tif"),
        "{e}"
    );
}

// ---------------------------------------------------------------- objects

const OW: usize = 40;
const OH: usize = 36;

/// Fills a rectangle (cols c0..c1, rows r0..r1, exclusive ends).
fn rect(v: &mut [bool], c0: usize, r0: usize, c1: usize, r1: usize) {
    for r in r0..r1 {
        for c in c0..c1 {
            v[r * OW + c] = true;
        }
    }
}

/// Truth objects of known sizes, and the prediction touching some of them:
/// - A 3x3 = 9 px, detected by one pixel;       (< 0.1 ha at 100 m2/px)
/// - B 1 px, missed;                             (< 0.1 ha)
/// - G 2x2 = 4 px, entirely masked;              (< 0.1 ha, not judged)
/// - C 5x2 = 10 px = 1000 m2, missed;            (0.1-1 ha, lower bound)
/// - D 10x10 = 100 px = 1 ha, detected;          (0.1-1 ha, upper bound)
/// - F two 3x3 squares touching at a corner = 18 px, missed: one object by
///   8-connectivity;                             (0.1-1 ha)
/// - E 11x10 = 110 px, detected by its last pixel only (> 1 ha);
/// - predicted change off any object (a false alarm, no effect on recall).
fn object_case() -> (Vec<u8>, Vec<bool>) {
    let mut t = vec![false; OW * OH];
    let mut p = vec![0u8; OW * OH];
    rect(&mut t, 0, 0, 3, 3); // A
    p[OW + 1] = 1;
    rect(&mut t, 6, 0, 7, 1); // B
    rect(&mut t, 9, 0, 11, 2); // G
    for r in 0..2 {
        for c in 9..11 {
            p[r * OW + c] = 255;
        }
    }
    rect(&mut t, 14, 0, 19, 2); // C
    rect(&mut t, 0, 5, 10, 15); // D
    p[14 * OW + 9] = 1;
    rect(&mut t, 14, 5, 17, 8); // F
    rect(&mut t, 17, 8, 20, 11);
    rect(&mut t, 22, 20, 33, 30); // E
    p[29 * OW + 32] = 1;
    p[33 * OW + 2] = 1; // false alarm
    (p, t)
}

fn assert_object_case(r: &EvalReport) {
    let o = &r.objects;
    let s = |c: &eval::objects::ClassRecall| (c.objects, c.detected, c.masked);
    assert_eq!(s(&o.under_0_1_ha), (2, 1, 1), "< 0.1 ha");
    assert_eq!(s(&o.from_0_1_to_1_ha), (3, 1, 0), "0.1-1 ha");
    assert_eq!(s(&o.over_1_ha), (1, 1, 0), "> 1 ha");
    assert_eq!(s(&o.all), (6, 3, 1), "all");
    assert!(close(o.under_0_1_ha.recall, 0.5));
    assert!(close(o.from_0_1_to_1_ha.recall, 1.0 / 3.0));
    assert!(close(o.over_1_ha.recall, 1.0));
    assert!(close(o.all.recall, 0.5));
}

#[test]
fn object_recall_by_size_class() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, truth) = object_case();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, OW, OH, &pred, Some(UTM));
    write_tif(&tp, OW, OH, &coded(&truth, (0, 255)), Some(UTM));
    // Strips of 3 and 7 rows cut objects D, F and E across strip borders.
    for strip in [0, 3, 7, 1] {
        let r = eval::evaluate(&pp, &tp, None, &opts(strip)).unwrap();
        assert!(close(r.objects.pixel_area_m2, 100.0));
        assert!(!r.objects.pixel_area_assumed);
        assert_object_case(&r);
    }
}

#[test]
fn pixel_area_without_georeferencing_is_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, truth) = object_case();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, OW, OH, &pred, None);
    write_tif(&tp, OW, OH, &coded(&truth, (1, 2)), None);
    let r = eval::evaluate(&pp, &tp, None, &opts(5)).unwrap();
    assert!(close(r.objects.pixel_area_m2, 100.0) && r.objects.pixel_area_assumed);
    assert!(
        r.notes.iter().any(|n| n.contains("10 m pixels assumed")),
        "{:?}",
        r.notes
    );
    assert_object_case(&r);
}

#[test]
fn pixel_area_on_a_geographic_grid() {
    let dir = tempfile::tempdir().unwrap();
    let (pred, truth) = object_case();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, OW, OH, &pred, Some(GEO));
    write_tif(&tp, OW, OH, &coded(&truth, (0, 1)), None);
    let r = eval::evaluate(&pp, &tp, None, &opts(0)).unwrap();
    let centre_lat = 50.0 - 0.001 * OH as f64 / 2.0;
    let (mx, my) = metres_per_degree(centre_lat);
    let expected = 0.001 * mx * 0.001 * my;
    assert!(
        (r.objects.pixel_area_m2 - expected).abs() < 1e-9 * expected,
        "{} vs {expected}",
        r.objects.pixel_area_m2
    );
    // About 71.7 m x 111.2 m, ~7 970 m2: B (1 px, ~0.8 ha) is the only object
    // under 1 ha now; A, C, D, E, F and the masked G are over 1 ha.
    assert!((7_900.0..8_050.0).contains(&r.objects.pixel_area_m2));
    assert_eq!(r.objects.under_0_1_ha.objects, 0);
    assert_eq!(
        (
            r.objects.from_0_1_to_1_ha.objects,
            r.objects.from_0_1_to_1_ha.masked
        ),
        (1, 0)
    );
    assert_eq!(
        (r.objects.over_1_ha.objects, r.objects.over_1_ha.masked),
        (5, 1)
    );
}

// ---------------------------------------------------------------- sites

/// Lon/lat of grid CRS points.
fn to_lonlat(epsg: u32, pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut from = SpatialRef::from_epsg(epsg).unwrap();
    from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut to = SpatialRef::from_epsg(4326).unwrap();
    to.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&from, &to).unwrap();
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
    ct.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    xs.into_iter().zip(ys).collect()
}

/// A GeoJSON polygon feature over pixel rectangle [c0, c1] x [r0, r1]
/// (continuous pixel coordinates) of a UTM grid.
fn utm_feature(kind: &str, c0: f64, r0: f64, c1: f64, r1: f64) -> String {
    let g = UTM.1;
    let xy = |c: f64, r: f64| (g[0] + c * g[1], g[3] + r * g[5]);
    let ll = to_lonlat(
        UTM.0,
        &[xy(c0, r0), xy(c1, r0), xy(c1, r1), xy(c0, r1), xy(c0, r0)],
    );
    let ring: Vec<String> = ll.iter().map(|(x, y)| format!("[{x}, {y}]")).collect();
    format!(
        r#"{{"type": "Feature", "properties": {{"kind": "{kind}", "score": 0.9}}, "geometry": {{"type": "Polygon", "coordinates": [[{}]]}}}}"#,
        ring.join(", ")
    )
}

/// `<dir>/sites.geojson`, a FeatureCollection of `features`.
fn write_sites(dir: &Path, features: &[String]) -> PathBuf {
    let sp = dir.join("sites.geojson");
    let fc = format!(
        r#"{{"type": "FeatureCollection", "features": [{}]}}"#,
        features.join(",\n")
    );
    std::fs::write(&sp, fc).unwrap();
    sp
}

/// 20 x 20 UTM truth with change at (5, 5) and (12, 3..=4).
fn site_truth() -> Vec<u8> {
    let mut t = vec![0u8; 400];
    t[5 * 20 + 5] = 1;
    t[3 * 20 + 12] = 1;
    t[4 * 20 + 12] = 1;
    t
}

#[test]
fn site_precision_on_a_utm_grid() {
    let dir = tempfile::tempdir().unwrap();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, 20, 20, &[0u8; 400], Some(UTM));
    write_tif(&tp, 20, 20, &site_truth(), Some(UTM));
    let features = [
        utm_feature("building", 5.2, 5.2, 5.8, 5.8), // inside pixel (5, 5): touches
        utm_feature("building", 0.2, 0.2, 2.8, 2.8), // no change there
        utm_feature("hangar", 10.2, 2.2, 13.8, 2.8), // row 2 only, change is in rows 3-4
        utm_feature("hangar", 11.5, 2.2, 12.5, 3.2), // reaches (12, 3): touches
        utm_feature("road", -60.0, -60.0, -50.0, -50.0), // off the grid
    ];
    let sp = write_sites(dir.path(), &features);
    for strip in [0, 3] {
        let r = eval::evaluate(&pp, &tp, Some(&sp), &opts(strip)).unwrap();
        let s = r.sites.as_ref().expect("site figures");
        assert_eq!((s.sites, s.touching, s.outside), (4, 2, 1));
        assert!(close(s.precision, 0.5));
        assert_eq!(
            (s.by_kind["building"].sites, s.by_kind["building"].touching),
            (2, 1)
        );
        assert_eq!(
            (s.by_kind["hangar"].sites, s.by_kind["hangar"].touching),
            (2, 1)
        );
        assert!(!s.by_kind.contains_key("road"));
    }
}

/// Hand-written lon/lat GeoJSON on a WGS 84 grid (10° E, 50° N, 0.001° pixels):
/// pixel (c, r) spans lon 10 + 0.001 c .. + 0.001, lat 50 - 0.001 r .. - 0.001.
const GEO_SITES: &str = r#"{
  "type": "FeatureCollection",
  "features": [
    {"type": "Feature", "properties": {"kind": "building"},
     "geometry": {"type": "Polygon", "coordinates": [[[10.0052, 49.9948], [10.0058, 49.9948], [10.0058, 49.9942], [10.0052, 49.9942], [10.0052, 49.9948]]]}},
    {"type": "Feature", "properties": {"kind": "berm"},
     "geometry": {"type": "MultiPolygon", "coordinates": [
        [[[10.0152, 49.9848], [10.0158, 49.9848], [10.0158, 49.9842], [10.0152, 49.9848]]],
        [[[10.0122, 49.9962], [10.0128, 49.9962], [10.0128, 49.9958], [10.0122, 49.9962]]]]}},
    {"type": "Feature", "properties": {},
     "geometry": {"type": "Point", "coordinates": [10.0015, 49.9985]}}
  ]
}"#;

#[test]
fn site_precision_on_a_geographic_grid_and_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let pp = run.join("change_mask.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, 20, 20, &[0u8; 400], Some(GEO));
    write_tif(&tp, 20, 20, &site_truth(), None);
    std::fs::write(run.join("sites.geojson"), GEO_SITES).unwrap();
    let input = eval::resolve_prediction(&run).unwrap();
    assert_eq!(input.mask, pp);
    assert_eq!(
        input.sites.as_deref(),
        Some(run.join("sites.geojson").as_path())
    );
    let r = eval::evaluate(&input.mask, &tp, input.sites.as_deref(), &opts(0)).unwrap();
    let s = r.sites.as_ref().unwrap();
    // building on (5, 5): yes; berm: pixel (15, 15) no, but its second part on (12, 3..4): yes;
    // the point on (1, 1): no.
    assert_eq!((s.sites, s.touching, s.outside), (3, 2, 0));
    assert_eq!(s.by_kind["berm"].touching, 1);
    assert_eq!(s.by_kind["unknown"].touching, 0);

    // A folder without a mask.
    let e = eval::resolve_prediction(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("change_mask.tif"), "{e}");
}

// ---------------------------------------------------------------- binary

fn dunewatch(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args(args)
        .output()
        .unwrap()
}

/// `dunewatch eval --pred <pred> --truth <truth>`, with `--json` when `json`.
fn eval_bin(pred: &Path, truth: &Path, json: bool) -> std::process::Output {
    let mut args = vec![
        "eval".as_ref(),
        "--pred".as_ref(),
        pred.as_os_str(),
        "--truth".as_ref(),
        truth.as_os_str(),
    ];
    if json {
        args.push("--json".as_ref());
    }
    dunewatch(&args)
}

/// The figures `dunewatch eval --json` prints; it must succeed.
fn eval_json(pred: &Path, truth: &Path) -> serde_json::Value {
    let out = eval_bin(pred, truth, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// `dunewatch detect --quiet --threads 2 <args> --before <before> --after
/// <after> --out <out>`; it must succeed.
fn detect(args: &[&str], before: &Path, after: &Path, out: &Path) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args(["detect", "--quiet", "--threads", "2"])
        .args(args)
        .arg("--before")
        .arg(before)
        .arg("--after")
        .arg(after)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn binary_prints_json_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let run: PathBuf = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let (pred, truth) = pixel_case();
    write_tif(&run.join("change_mask.tif"), W, H, &pred, Some(UTM));
    let tp = dir.path().join("truth.tif");
    write_tif(&tp, W, H, &coded(&truth, (1, 2)), None);

    let j = eval_json(&run, &tp);
    let px = &j["pixels"];
    let counts: Vec<u64> = ["tp", "fp", "fn", "tn", "masked"]
        .iter()
        .map(|k| px[k].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![6, 4, 5, 34, 11]);
    assert!((px["precision"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    assert!((px["iou"].as_f64().unwrap() - 0.4).abs() < 1e-12);
    assert_eq!(j["truth_coding"], "1/2");
    assert_eq!(j["objects"]["all"]["objects"], 2);
    assert!(j["objects"]["over_1_ha"]["recall"].is_number());
    assert!(j.get("sites").is_none(), "no sites file: no site figure");

    let out = eval_bin(&run, &tp, false);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("precision") && table.contains("kappa") && table.contains("> 1 ha"),
        "{table}"
    );

    // Size mismatch: exit 1, one line naming both sizes.
    let big = dir.path().join("big.tif");
    write_tif(&big, W + 1, H, &[0u8; (W + 1) * H], None);
    let out = eval_bin(&run, &big, false);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("10 x 6") && err.contains("11 x 6"), "{err}");
}

// ---------------------------------------------------------------- top-k sites on real data

/// Pixels a GeoJSON geometry covers on the sample's grid (EPSG:4326, so the
/// GeoJSON's lon/lat are grid coordinates), by GDAL's own rasterizer:
/// pixel centres inside, the rule `dunewatch eval` implements itself.
fn gdal_cover(geometry: &serde_json::Value, gt: [f64; 6], w: usize, h: usize) -> Vec<bool> {
    let drv = DriverManager::get_driver_by_name("MEM").unwrap();
    let mut ds = drv.create_with_band_type::<u8, _>("", w, h, 1).unwrap();
    ds.set_geo_transform(&gt).unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(4326).unwrap())
        .unwrap();
    let g = gdal::vector::Geometry::from_geojson(&geometry.to_string()).unwrap();
    gdal::raster::rasterize(&mut ds, &[1], &[g], &[1.0], None).unwrap();
    let band = ds.rasterband(1).unwrap();
    let buf = band.read_as::<u8>((0, 0), (w, h), (w, h), None).unwrap();
    buf.data().iter().map(|&v| v == 1).collect()
}

#[test]
fn top_k_site_precision_on_the_sample_tiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let label = root.join("abudhabi-cm.tif");
    detect(&[], &root.join("before"), &root.join("after"), &run);
    let j = eval_json(&run, &label);
    let s = &j["sites"];
    assert_eq!(s["ranked_by"], "rank");

    // The reference: each of the first 50 sites (the file is in rank order)
    // rasterized by GDAL on the mask's grid and judged against the label.
    let mask = gdal::Dataset::open(run.join("change_mask.tif")).unwrap();
    let (w, h) = mask.raster_size();
    let gt = mask.geo_transform().unwrap();
    let lab = gdal::Dataset::open(&label).unwrap();
    let truth: Vec<bool> = lab
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .data()
        .iter()
        .map(|&v| v == 2)
        .collect();
    let geo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("sites.geojson")).unwrap()).unwrap();
    let features = geo["features"].as_array().unwrap();
    let n = features.len();
    assert!(n >= 50, "the sample gives {n} sites");
    let mut is_true = Vec::new();
    for (i, f) in features.iter().take(50).enumerate() {
        assert_eq!(f["properties"]["rank"], i + 1, "file in rank order");
        let cover = gdal_cover(&f["geometry"], gt, w, h);
        let pixels = cover.iter().filter(|&&c| c).count() as u64;
        let change = cover.iter().zip(&truth).filter(|(&c, &t)| c && t).count() as u64;
        // The outline follows the site's pixel edges: its centres are its pixels.
        let own = f["properties"]["features"]["pixels"].as_f64().unwrap() as u64;
        assert_eq!(pixels, own, "site rank {}", i + 1);
        is_true.push(change >= 5 || 10 * change >= 3 * pixels);
    }
    let tops = s["top"].as_array().unwrap();
    assert_eq!(tops.len(), 3);
    for (t, k) in tops.iter().zip([10usize, 20, 50]) {
        let want = is_true[..k].iter().filter(|&&b| b).count();
        assert_eq!(t["k"], k);
        assert_eq!(t["sites"], k);
        assert_eq!(t["true_sites"], want, "top {k}");
        let p = t["precision"].as_f64().unwrap();
        assert!((p - want as f64 / k as f64).abs() < 1e-12);
    }
    // A true site touches change.
    assert!(s["true_sites"].as_u64().unwrap() <= s["touching"].as_u64().unwrap());

    // The table shows the top-k and object recall by size class next to pixel F1.
    let out = eval_bin(&run, &label, false);
    let table = String::from_utf8(out.stdout).unwrap();
    let summary = table
        .lines()
        .find(|l| l.contains("pixel F1"))
        .unwrap_or_else(|| panic!("{table}"));
    let want = format!(
        "top-10 {:.3} ({}/10)",
        tops[0]["precision"].as_f64().unwrap(),
        tops[0]["true_sites"]
    );
    assert!(summary.contains(&want), "{summary}");
    assert!(
        summary.contains("> 1 ha") && summary.contains("< 0.1 ha"),
        "{summary}"
    );
}

#[test]
fn top_k_with_fewer_sites_than_k() {
    let dir = tempfile::tempdir().unwrap();
    let pp = dir.path().join("pred.tif");
    let tp = dir.path().join("truth.tif");
    write_tif(&pp, 20, 20, &[0u8; 400], Some(UTM));
    write_tif(&tp, 20, 20, &site_truth(), Some(UTM));
    // Three sites: ranks 2 (on change pixel (5, 5) only: 1 of 1 pixels, true), 1 (a 3 x 3
    // block around (12, 3..4): 2 of 9 changed, 22 %, false), 3 (no change, false).
    let with_rank =
        |f: String, rank: u32| f.replace("\"score\": 0.9", &format!("\"rank\": {rank}"));
    let features = [
        with_rank(utm_feature("building", 5.0, 5.0, 6.0, 6.0), 2),
        with_rank(utm_feature("building", 11.0, 2.0, 14.0, 5.0), 1),
        with_rank(utm_feature("building", 0.0, 0.0, 2.0, 2.0), 3),
    ];
    let sp = write_sites(dir.path(), &features);
    let r = eval::evaluate(&pp, &tp, Some(&sp), &opts(0)).unwrap();
    let s = r.sites.unwrap();
    assert_eq!((s.touching, s.true_sites), (2, 1));
    let got: Vec<(usize, u64, u64)> = s.top.iter().map(|t| (t.k, t.sites, t.true_sites)).collect();
    assert_eq!(got, vec![(10, 3, 1), (20, 3, 1), (50, 3, 1)]);
    assert!(close(s.top[0].precision, 1.0 / 3.0));
}

/// An OSCD-style folder (`<dir>/oscd`) holding the sample pair, linked
/// from the repository.
fn oscd_folder(dir: &Path) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi");
    let oscd = dir.join("oscd");
    std::fs::create_dir_all(oscd.join("images/abudhabi")).unwrap();
    std::fs::create_dir_all(oscd.join("labels/abudhabi")).unwrap();
    let link = |from: &str, to: &str| std::os::unix::fs::symlink(sample.join(from), oscd.join(to));
    link("before", "images/abudhabi/imgs_1").unwrap();
    link("after", "images/abudhabi/imgs_2").unwrap();
    link("abudhabi-cm.tif", "labels/abudhabi/abudhabi-cm.tif").unwrap();
    oscd
}

#[test]
fn eval_oscd_script_tables_top_k_and_size_classes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let oscd = oscd_folder(dir.path());
    let out_dir = dir.path().join("out");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/eval_oscd.sh"))
        .arg(&oscd)
        .arg(&out_dir)
        .env("DUNEWATCH", env!("CARGO_BIN_EXE_dunewatch"))
        .env("DETECT_ARGS", "--threads 2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = stdout.lines().find(|l| l.starts_with("city")).unwrap();
    for col in [
        "F1",
        "obj<0.1ha",
        "obj0.1-1ha",
        "obj>1ha",
        "top10",
        "top20",
        "top50",
    ] {
        assert!(head.contains(col), "{head}");
    }

    // The CSV carries the figures of the city's eval.json; ALL (one city) the same.
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("runs/abudhabi/eval.json")).unwrap(),
    )
    .unwrap();
    let csv = std::fs::read_to_string(out_dir.join("eval.csv")).unwrap();
    let mut lines = csv.lines();
    let cols: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2);
    let get = |row: &Vec<&str>, col: &str| -> f64 {
        let i = cols
            .iter()
            .position(|c| *c == col)
            .unwrap_or_else(|| panic!("no {col}"));
        row[i].parse().unwrap()
    };
    for row in &rows {
        for (i, k) in [10, 20, 50].iter().enumerate() {
            let t = &j["sites"]["top"][i];
            assert_eq!(
                get(row, &format!("top{k}_true")),
                t["true_sites"].as_f64().unwrap()
            );
            assert_eq!(
                get(row, &format!("top{k}_sites")),
                t["sites"].as_f64().unwrap()
            );
            assert!(
                (get(row, &format!("top{k}_precision")) - t["precision"].as_f64().unwrap()).abs()
                    < 1e-6
            );
        }
        for class in ["under_0_1_ha", "from_0_1_to_1_ha", "over_1_ha"] {
            let c = &j["objects"][class];
            assert_eq!(
                get(row, &format!("objects_{class}")),
                c["objects"].as_f64().unwrap()
            );
            assert!(
                (get(row, &format!("object_recall_{class}")) - c["recall"].as_f64().unwrap()).abs()
                    < 1e-6
            );
        }
        assert!((get(row, "f1") - j["pixels"]["f1"].as_f64().unwrap()).abs() < 1e-6);
    }
}

// ---------------------------------------------------------------- desert scenarios

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Runs of two made-up methods over every scenario in `scen`, as
/// scripts/eval_desert.sh reads them: `truth` (the truth's change pixels
/// as sites and mask) and `giant` (one site over the whole scene, every
/// pixel flagged).
fn fake_desert_runs(scen: &Path, out: &Path) {
    let script = r#"
import json, os, sys
from osgeo import gdal, ogr, osr
gdal.UseExceptions()
scen, out = sys.argv[1], sys.argv[2]
wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326)
wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
for name in os.listdir(scen):
    if not os.path.isfile(os.path.join(scen, name, "structures.json")):
        continue
    truth = gdal.Open(os.path.join(scen, name, "truth.tif"))
    srs = truth.GetSpatialRef()
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, wgs)
    for method in ["truth", "giant"]:
        run = os.path.join(out, "runs", method, name)
        os.makedirs(run, exist_ok=True)
        with open(os.path.join(run, "run.json"), "w") as f:
            f.write("{}")
        mask = gdal.GetDriverByName("GTiff").CreateCopy(os.path.join(run, "change_mask.tif"), truth)
        band = mask.GetRasterBand(1)
        feats = []
        if method == "giant":
            band.Fill(1)
            gt, w, h = truth.GetGeoTransform(), truth.RasterXSize, truth.RasterYSize
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for c, r in [(0, 0), (w, 0), (w, h), (0, h), (0, 0)]:
                ring.AddPoint_2D(gt[0] + c * gt[1], gt[3] + r * gt[5])
            g = ogr.Geometry(ogr.wkbPolygon); g.AddGeometry(ring)
            feats.append(g)
        else:
            vds = ogr.GetDriverByName("Memory").CreateDataSource("v")
            layer = vds.CreateLayer("v", srs, ogr.wkbPolygon)
            layer.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
            gdal.Polygonize(truth.GetRasterBand(1), truth.GetRasterBand(1), layer, 0)
            feats = [f.GetGeometryRef().Clone() for f in layer]
        mask = None
        for g in feats:
            g.Transform(ct)
        fc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": json.loads(g.ExportToJson())}
            for g in feats]}
        with open(os.path.join(run, "sites.geojson"), "w") as f:
            json.dump(fc, f)
"#;
    let o = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(scen)
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn desert_scenarios_are_deterministic_and_match_their_truth() {
    // The sample pair is OSCD's Abu Dhabi pair: background and donor of real change pixels.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let oscd = oscd_folder(dir.path());
    let make = |out: &Path| {
        let o = std::process::Command::new("/usr/bin/python3")
            .arg(root.join("scripts/make_desert_scenarios.py"))
            .args([
                "--windows-per-city",
                "1",
                "--pasted-per-window",
                "1",
                "--oscd",
            ])
            .arg(&oscd)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    make(&a);
    make(&b);
    let ta = tree(&a);
    assert!(ta.len() > 50, "{} files", ta.len());
    assert!(ta == tree(&b), "same seed, different files");

    // Structures of every type, footprints that are exactly the truth's change pixels.
    let meta: serde_json::Value =
        serde_json::from_slice(&ta[Path::new("abudhabi1_pasted1/structures.json")]).unwrap();
    let structs = meta["structures"].as_array().unwrap();
    let mut types: Vec<&str> = structs
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "apron",
            "compound",
            "hangar",
            "hangar",
            "runway",
            "tent_camp"
        ]
    );
    let truth = gdal::Dataset::open(a.join("abudhabi1_pasted1/truth.tif")).unwrap();
    assert_eq!(truth.spatial_ref().unwrap().auth_code().unwrap(), 32640);
    let (w, h) = truth.raster_size();
    let t = truth
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .unwrap();
    let mut from_json = vec![0u8; w * h];
    for s in structs {
        let fp = s["footprint"].as_array().unwrap();
        assert_eq!(fp.len() as u64, s["pixels"].as_u64().unwrap());
        assert!(!fp.is_empty(), "{} has no truth pixel", s["type"]);
        for p in fp {
            let (c, r) = (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            );
            from_json[r * w + c] += 1;
        }
    }
    assert!(from_json == t.data(), "footprints and truth.tif differ");
    let runway = structs.iter().find(|s| s["type"] == "runway").unwrap();
    let len = runway["length_m"].as_f64().unwrap();
    assert!((1000.0..=3000.0).contains(&len));

    // The unchanged pair has no truth change; dunewatch reads both pairs.
    let zero = gdal::Dataset::open(a.join("abudhabi1_unchanged/truth.tif")).unwrap();
    let z = zero
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .unwrap();
    assert!(z.data().iter().all(|&v| v == 0));
    // The scorer: sites traced from the truth point at every structure; one
    // site over the whole scene covers them all and points at none.
    fake_desert_runs(&a, &dir.path().join("eval"));
    let o = std::process::Command::new("bash")
        .arg(root.join("scripts/eval_desert.sh"))
        .arg(&a)
        .arg(dir.path().join("eval"))
        .env("REUSE", "1")
        .env("METHODS", "truth giant")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = |m: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| {m} |")))
            .unwrap_or_else(|| panic!("no {m} row in {table}"))
            .to_string()
    };
    assert!(
        row("truth").contains("| 6/6 (100.0 %) | 6/6 | 0.0 (0 in 1"),
        "{table}"
    );
    assert!(row("truth").contains("| 0.00 % |"), "{table}");
    assert!(row("giant").contains("| 0/6 (0.0 %) | 6/6 |"), "{table}");
    assert!(row("giant").contains("| 100.00 % |"), "{table}");

    let scene = a.join("abudhabi1_pasted1");
    let run = dir.path().join("run");
    detect(
        &["--method", "combined"],
        &scene.join("imgs_1"),
        &scene.join("imgs_2"),
        &run,
    );
    let j = eval_json(&run, &scene.join("truth.tif"));
    // The runway alone is a truth object over 1 ha, and the pasted structures are found.
    assert!(j["objects"]["over_1_ha"]["objects"].as_u64().unwrap() >= 1);
    let recall = j["pixels"]["recall"].as_f64().unwrap();
    assert!(recall > 0.3, "{}", j["pixels"]);
}
