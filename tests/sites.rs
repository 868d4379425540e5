//! `dunewatch sites`: synthetic run folders (scenes, change mask, score and
//! run.json written as GeoTIFFs and JSON in a temp dir) with sites known by
//! construction, and the sample tiles against their labels.

use dunewatch::align::Grid;
use dunewatch::sites::{run_sites, SitesOptions, SitesSummary};
use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Geometry, LayerAccess};
use gdal::DriverManager;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------ fixtures

/// Reflectance of B02 B03 B04 B08 B11 B12.
type Spectrum = [f32; 6];
const SAND: Spectrum = [0.18, 0.26, 0.34, 0.40, 0.50, 0.45];
/// A bright, flat-spectrum roof.
const ROOF: Spectrum = [0.42, 0.44, 0.45, 0.47, 0.46, 0.40];
const CROP: Spectrum = [0.04, 0.08, 0.05, 0.45, 0.25, 0.12];
const FALLOW: Spectrum = [0.12, 0.16, 0.20, 0.26, 0.34, 0.30];
const BANDS: [&str; 6] = ["B02", "B03", "B04", "B08", "B11", "B12"];

/// UTM 34N, 10 m pixels.
const UTM: (u32, [f64; 6]) = (32634, [500_000.0, 10.0, 0.0, 4_500_000.0, 0.0, -10.0]);
/// WGS 84, 0.0001 degree pixels at 10 E, 55 N.
const GEO: (u32, [f64; 6]) = (4326, [10.0, 1e-4, 0.0, 55.0, 0.0, -1e-4]);

fn srs(epsg: u32) -> SpatialRef {
    let mut s = SpatialRef::from_epsg(epsg).unwrap();
    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    s
}

fn create<T: gdal::raster::GdalType + Copy>(
    path: &Path,
    w: usize,
    h: usize,
    georef: (u32, [f64; 6]),
    data: Vec<T>,
    nodata: Option<f64>,
) {
    let drv = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = drv.create_with_band_type::<T, _>(path, w, h, 1).unwrap();
    ds.set_geo_transform(&georef.1).unwrap();
    ds.set_spatial_ref(&srs(georef.0)).unwrap();
    let mut band = ds.rasterband(1).unwrap();
    if let Some(n) = nodata {
        band.set_no_data_value(Some(n)).unwrap();
    }
    let mut buf = Buffer::new((w, h), data);
    band.write((0, 0), (w, h), &mut buf).unwrap();
}

/// Small deterministic noise in [-a, a] (texture for the scenes).
fn noise(x: usize, y: usize, k: usize, a: f32) -> f32 {
    let mut v = (x as u64).wrapping_mul(73_856_093)
        ^ (y as u64).wrapping_mul(19_349_663)
        ^ (k as u64).wrapping_mul(83_492_791);
    v = v
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((v >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
}

/// A band folder of six UInt16 GeoTIFFs (reflectance x 10000).
fn write_scene(
    dir: &Path,
    date: &str,
    w: usize,
    h: usize,
    georef: (u32, [f64; 6]),
    spectrum: &dyn Fn(usize, usize) -> Spectrum,
) {
    std::fs::create_dir_all(dir).unwrap();
    for (k, b) in BANDS.iter().enumerate() {
        let data: Vec<u16> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                ((spectrum(x, y)[k] + noise(x, y, k, 0.008)).clamp(0.001, 1.0) * 10000.0).round()
                    as u16
            })
            .collect();
        create(
            &dir.join(format!("S2_{date}_{b}.tif")),
            w,
            h,
            georef,
            data,
            Some(0.0),
        );
    }
}

/// A run folder as `detect` leaves it: change_mask.tif, change_score.tif, run.json.
fn write_run(
    run: &Path,
    w: usize,
    h: usize,
    georef: (u32, [f64; 6]),
    mask: &[u8],
    before: &Path,
    after: &Path,
) {
    std::fs::create_dir_all(run).unwrap();
    create(
        &run.join("change_mask.tif"),
        w,
        h,
        georef,
        mask.to_vec(),
        Some(255.0),
    );
    let score: Vec<f32> = mask
        .iter()
        .map(|&m| {
            if m == 1 {
                0.9
            } else if m == 255 {
                -1.0
            } else {
                0.1
            }
        })
        .collect();
    create(
        &run.join("change_score.tif"),
        w,
        h,
        georef,
        score,
        Some(-1.0),
    );
    let changed = mask.iter().filter(|&&m| m == 1).count();
    let rj = json!({
        "tool": "dunewatch",
        "command": "detect",
        "before": { "path": before, "date": "2020-01-05" },
        "after": { "path": after, "date": "2021-06-20" },
        "detect": { "threshold": 0.5, "pixels": { "total": w * h, "compared": w * h, "changed": changed, "masked": { "cloud": 0, "cloud_shadow": 0 } } },
    });
    std::fs::write(
        run.join("run.json"),
        serde_json::to_string_pretty(&rj).unwrap(),
    )
    .unwrap();
}

struct Case {
    _tmp: tempfile::TempDir,
    run: PathBuf,
    grid: Grid,
}

/// Scenes (sand everywhere unless `after`/`before` say otherwise) and a run
/// whose mask is `inside`.
fn case(
    w: usize,
    h: usize,
    georef: (u32, [f64; 6]),
    inside: &dyn Fn(usize, usize) -> bool,
    before: &dyn Fn(usize, usize) -> Spectrum,
    after: &dyn Fn(usize, usize) -> Spectrum,
) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let (b, a, run) = (
        tmp.path().join("before"),
        tmp.path().join("after"),
        tmp.path().join("run"),
    );
    write_scene(&b, "20200105", w, h, georef, before);
    write_scene(&a, "20210620", w, h, georef, after);
    let mask: Vec<u8> = (0..w * h).map(|i| inside(i % w, i / w) as u8).collect();
    write_run(&run, w, h, georef, &mask, &b, &a);
    let ds = gdal::Dataset::open(run.join("change_mask.tif")).unwrap();
    let grid = Grid::from_dataset(&ds, "mask").unwrap();
    Case {
        _tmp: tmp,
        run,
        grid,
    }
}

/// The `shapes` as new roofs on sand, on a UTM grid.
fn roofs_on_sand() -> Case {
    case(60, 50, UTM, &shapes, &sand, &|x, y| {
        if shapes(x, y) {
            ROOF
        } else {
            SAND
        }
    })
}

fn sand(_: usize, _: usize) -> Spectrum {
    SAND
}

fn opts() -> SitesOptions {
    SitesOptions {
        chips: 3,
        threads: 2,
        ..Default::default()
    }
}

fn geojson(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("sites.geojson")).unwrap()).unwrap()
}

fn features(v: &Value) -> &Vec<Value> {
    v["features"].as_array().unwrap()
}

fn prop<'a>(f: &'a Value, k: &str) -> &'a Value {
    &f["properties"][k]
}

// ------------------------------------------------------------ one site across a strip seam

/// A 20 x 15 pixel rectangle on rows 10-29: strips of 16 and 7 rows cut it.
fn rect(x: usize, y: usize) -> bool {
    (20..35).contains(&x) && (10..30).contains(&y)
}

fn roof_in_rect(x: usize, y: usize) -> Spectrum {
    if rect(x, y) {
        ROOF
    } else {
        SAND
    }
}

fn one_site(c: &Case, strip_rows: usize) -> (SitesSummary, Value) {
    let s = run_sites(
        &c.run,
        &SitesOptions {
            strip_rows,
            ..opts()
        },
    )
    .unwrap();
    (s, geojson(&c.run))
}

#[test]
fn rectangle_across_strip_seams_is_one_site_utm() {
    let c = case(64, 48, UTM, &rect, &sand, &roof_in_rect);
    for strip in [16, 7, 256] {
        let (s, g) = one_site(&c, strip);
        assert_eq!(s.sites, 1, "strip of {strip} rows");
        let f = &features(&g)[0];
        assert_eq!(
            prop(f, "area_m2").as_f64().unwrap(),
            300.0 * 100.0,
            "20 x 15 pixels of 100 m2"
        );
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        assert_eq!(
            ring.len(),
            5,
            "a rectangle: 4 corners and the closing position"
        );
        assert_eq!(prop(f, "kind"), "structure", "{f}");
        // The sites step is recorded in run.json, the detect record kept.
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(c.run.join("run.json")).unwrap())
                .unwrap();
        assert_eq!(run["sites"]["sites"], 1, "{run}");
        assert!(run["sites"]["timings_s"]["describe"].as_f64().is_some());
        assert_eq!(run["detect"]["threshold"], 0.5, "detect record kept");
    }
}

#[test]
fn rectangle_across_strip_seams_is_one_site_geographic() {
    let c = case(64, 48, GEO, &rect, &sand, &roof_in_rect);
    // The rectangle's true area: its lon/lat outline in an equal-area
    // projection (ETRS89 LAEA Europe).
    let gt = GEO.1;
    let (x0, x1) = (gt[0] + 20.0 * gt[1], gt[0] + 35.0 * gt[1]);
    let (y0, y1) = (gt[3] + 10.0 * gt[5], gt[3] + 30.0 * gt[5]);
    let mut poly = Geometry::from_wkt(&format!(
        "POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
    ))
    .unwrap();
    poly.set_spatial_ref(srs(4326));
    let truth = poly.transform_to(&srs(3035)).unwrap().area();
    for strip in [16, 7] {
        let (s, g) = one_site(&c, strip);
        assert_eq!(s.sites, 1, "strip of {strip} rows");
        let a = prop(&features(&g)[0], "area_m2").as_f64().unwrap();
        assert!(
            (a / truth - 1.0).abs() < 5e-4,
            "area {a} m2, true {truth} m2"
        );
        // 0.0001 deg at 55 N is about 6.4 m x 11.1 m: clearly not 10 m pixels.
        assert!((a - 300.0 * 100.0).abs() > 5000.0);
    }
}

// ------------------------------------------------------------ RFC 7946 and OGR

/// Twice the signed area of a closed ring of [lon, lat].
fn signed_area2(r: &[Value]) -> f64 {
    (0..r.len() - 1)
        .map(|i| {
            let (a, b) = (&r[i], &r[i + 1]);
            a[0].as_f64().unwrap() * b[1].as_f64().unwrap()
                - b[0].as_f64().unwrap() * a[1].as_f64().unwrap()
        })
        .sum()
}

/// The grid's footprint in lon/lat: (lon0, lat0, lon1, lat1).
fn footprint(g: &Grid) -> [f64; 4] {
    let ct = CoordTransform::new(&g.srs().unwrap(), &srs(4326)).unwrap();
    ct.transform_bounds(&g.bounds(), 21).unwrap()
}

fn inside(fp: &[f64; 4], lon: f64, lat: f64) -> bool {
    let e = 1e-7;
    lon >= fp[0] - e && lon <= fp[2] + e && lat >= fp[1] - e && lat <= fp[3] + e
}

/// Checks the RFC 7946 rules that matter here; returns the number of features.
fn assert_rfc7946(v: &Value, fp: &[f64; 4]) -> usize {
    assert_eq!(v["type"], "FeatureCollection");
    assert!(v.get("crs").is_none(), "RFC 7946 has no crs member");
    for f in features(v) {
        assert_eq!(f["type"], "Feature");
        for k in [
            "id",
            "rank",
            "kind",
            "score",
            "reasons",
            "area_m2",
            "centroid_lon",
            "centroid_lat",
            "before_date",
            "after_date",
            "features",
        ] {
            assert!(
                f["properties"].get(k).is_some(),
                "property {k} missing: {f}"
            );
        }
        assert!(prop(f, "reasons").is_array());
        let (lon, lat) = (
            prop(f, "centroid_lon").as_f64().unwrap(),
            prop(f, "centroid_lat").as_f64().unwrap(),
        );
        assert!(
            inside(fp, lon, lat),
            "centroid ({lon}, {lat}) off the scene {fp:?}"
        );
        // The feature's bbox holds every position.
        let bb: Vec<f64> = f["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            bb[0] <= bb[2]
                && bb[1] <= bb[3]
                && inside(fp, bb[0], bb[1])
                && inside(fp, bb[2], bb[3])
        );
        let geom = &f["geometry"];
        let polys: Vec<&Value> = match geom["type"].as_str().unwrap() {
            "Polygon" => vec![&geom["coordinates"]],
            "MultiPolygon" => geom["coordinates"].as_array().unwrap().iter().collect(),
            t => panic!("geometry type {t}"),
        };
        for p in polys {
            for (i, r) in p.as_array().unwrap().iter().enumerate() {
                let r = r.as_array().unwrap();
                assert!(r.len() >= 4, "a ring has at least 4 positions");
                assert_eq!(r[0], r[r.len() - 1], "ring not closed");
                for pos in r {
                    let (x, y) = (pos[0].as_f64().unwrap(), pos[1].as_f64().unwrap());
                    assert!(
                        x >= bb[0] && x <= bb[2] && y >= bb[1] && y <= bb[3],
                        "position outside the feature's bbox"
                    );
                    assert!(
                        inside(fp, x, y),
                        "position ({x}, {y}) off the scene {fp:?}: not lon/lat order?"
                    );
                }
                let a = signed_area2(r);
                if i == 0 {
                    assert!(a > 0.0, "exterior ring must be counter-clockwise");
                } else {
                    assert!(a < 0.0, "hole must be clockwise");
                }
            }
        }
        // OGC validity of the geometry itself (GEOS through OGR).
        let g = Geometry::from_geojson(&geom.to_string()).unwrap();
        assert!(g.is_valid(), "invalid geometry: {geom}");
    }
    features(v).len()
}

fn ogr_count(path: &Path) -> u64 {
    let ds = gdal::Dataset::open(path)
        .unwrap_or_else(|e| panic!("OGR cannot open {}: {e}", path.display()));
    (0..ds.layer_count())
        .map(|i| ds.layer(i).unwrap().feature_count())
        .sum()
}

/// Shapes: a rectangle, a ring with a hole, an L, two squares touching at a
/// corner (one 8-connected site of two polygons) and a blob cut by the grid edge.
fn shapes(x: usize, y: usize) -> bool {
    let r = (5..20).contains(&x) && (5..12).contains(&y);
    let ring = (30..45).contains(&x)
        && (5..20).contains(&y)
        && !((35..40).contains(&x) && (10..15).contains(&y));
    let l = ((5..10).contains(&x) && (25..45).contains(&y))
        || ((5..25).contains(&x) && (40..45).contains(&y));
    let diag = ((30..36).contains(&x) && (30..36).contains(&y))
        || ((36..42).contains(&x) && (36..42).contains(&y));
    let edge = (52..60).contains(&x) && (0..6).contains(&y);
    r || ring || l || diag || edge
}

/// Sites are described panel by panel (columns), one panel after the other;
/// those whose windows cross a panel seam are cut from pieces that reach into
/// the next panel. Any panel width gives the same sites.
#[test]
fn sites_across_panel_seams_are_described_as_in_one_panel() {
    let c = roofs_on_sand();
    let run = |panel_cols: usize| {
        let s = run_sites(
            &c.run,
            &SitesOptions {
                panel_cols,
                ..opts()
            },
        )
        .unwrap();
        let csv = std::fs::read_to_string(c.run.join("sites.csv")).unwrap();
        (s.sites, geojson(&c.run), csv)
    };
    let whole = run(4096);
    assert!(whole.0 >= 5, "the shapes give five sites or more");
    for cols in [7, 16, 31] {
        assert_eq!(run(cols), whole, "panels of {cols} columns");
    }
}

#[test]
fn geojson_is_rfc7946_inside_the_footprint_and_ogr_reads_every_output() {
    let c = roofs_on_sand();
    let s = run_sites(&c.run, &opts()).unwrap();
    assert_eq!(s.sites, 5);
    let v = geojson(&c.run);
    let fp = footprint(&c.grid);
    assert_eq!(assert_rfc7946(&v, &fp), 5);
    let types: Vec<&str> = features(&v)
        .iter()
        .map(|f| f["geometry"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "MultiPolygon").count(),
        1,
        "the corner-touching squares: {types:?}"
    );
    let holes: usize = features(&v)
        .iter()
        .filter(|f| f["geometry"]["type"] == "Polygon")
        .map(|f| f["geometry"]["coordinates"].as_array().unwrap().len() - 1)
        .sum();
    assert_eq!(holes, 1, "the ring's hole");
    let ranks: Vec<u64> = features(&v)
        .iter()
        .map(|f| prop(f, "rank").as_u64().unwrap())
        .collect();
    assert_eq!(ranks, vec![1, 2, 3, 4, 5], "features in rank order");
    for name in ["sites.geojson", "sites.csv"] {
        assert_eq!(ogr_count(&c.run.join(name)), 5, "{name}");
    }
    // sites.csvt types the CSV's columns for OGR (and QGIS).
    let ds = gdal::Dataset::open(c.run.join("sites.csv")).unwrap();
    let layer = ds.layer(0).unwrap();
    let types: std::collections::HashMap<String, u32> = layer
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    assert_eq!(types["id"], gdal_sys::OGRFieldType::OFTInteger);
    assert_eq!(types["score"], gdal_sys::OGRFieldType::OFTReal);
    assert_eq!(types["after_date"], gdal_sys::OGRFieldType::OFTDate);
    assert_eq!(types["kind"], gdal_sys::OGRFieldType::OFTString);
    // QGIS styles by kind beside the GeoJSON.
    let qml = std::fs::read_to_string(c.run.join("sites.qml")).unwrap();
    assert!(qml.contains("attr=\"kind\"") && qml.contains("value=\"structure\""));
    // Three chips, named by site id (beside the compounds'); no staging
    // left behind.
    let chips: Vec<_> = std::fs::read_dir(c.run.join("chips"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with("compound-"))
        .collect();
    assert_eq!(chips.len(), 3);
    let leftovers: Vec<_> = std::fs::read_dir(&c.run)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn ogr_reads_the_kml_with_pins_folders_by_kind_and_compounds() {
    let c = roofs_on_sand();
    let s = run_sites(&c.run, &opts()).unwrap();
    let ds = gdal::Dataset::open(c.run.join("sites.kml")).unwrap();
    let mut names = Vec::new();
    let mut sites = 0;
    for i in 0..ds.layer_count() {
        let mut layer = ds.layer(i).unwrap();
        let name = layer.name();
        for f in layer.features() {
            // A pin and the outline in one MultiGeometry.
            let g = f.geometry().unwrap();
            let wkt = g.wkt().unwrap();
            assert!(
                wkt.starts_with("GEOMETRYCOLLECTION (POINT ("),
                "{name}: {wkt}"
            );
            assert!(wkt.contains("POLYGON (("), "{name}: {wkt}");
            if name != "Compounds" {
                sites += 1;
                assert_eq!(
                    f.field_as_string(f.field_index("kind").unwrap())
                        .unwrap()
                        .unwrap(),
                    name
                );
            }
        }
        names.push(name);
    }
    assert_eq!(sites, s.sites, "every site in a kind's folder");
    assert_eq!(names[0], "Compounds", "{names:?}");
    assert!(names.contains(&"structure".to_string()), "{names:?}");
    let kml = std::fs::read_to_string(c.run.join("sites.kml")).unwrap();
    assert!(kml.contains("<TimeSpan><begin>2020-01-05</begin><end>2021-06-20</end></TimeSpan>"));
    // The balloons of the top 3 show their chips, relative to the KML.
    assert_eq!(
        kml.matches("<img src=\"chips/").count(),
        3 + 1,
        "3 sites, 1 compound"
    );
    for chip in kml.split("<img src=\"").skip(1) {
        let file = chip.split('"').next().unwrap();
        assert!(c.run.join(file).is_file(), "{file}");
    }
}

#[test]
fn huge_sites_are_read_decimated_and_stay_valid() {
    let c = roofs_on_sand();
    run_sites(&c.run, &opts()).unwrap();
    let full = geojson(&c.run);
    // Windows of at most 64 pixels: every site is read at 1/2 or 1/3.
    run_sites(
        &c.run,
        &SitesOptions {
            max_window_px: 64,
            ..opts()
        },
    )
    .unwrap();
    let dec = geojson(&c.run);
    assert_eq!(assert_rfc7946(&dec, &footprint(&c.grid)), 5);
    let area = |v: &Value| {
        let mut a: Vec<f64> = features(v)
            .iter()
            .map(|f| prop(f, "area_m2").as_f64().unwrap())
            .collect();
        a.sort_by(f64::total_cmp);
        a
    };
    assert_eq!(
        area(&full),
        area(&dec),
        "areas come from the full-resolution labelling"
    );
    // All but the 8 x 6 blob at the edge (a 9 x 7 window) are decimated.
    let decimated = features(&dec)
        .iter()
        .filter(|f| prop(f, "features")["decimation"].as_f64().unwrap() >= 2.0)
        .count();
    assert_eq!(decimated, 4);
    assert!(features(&full)
        .iter()
        .all(|f| prop(f, "features")["decimation"].as_f64().unwrap() == 1.0));
}

// ------------------------------------------------------------ kinds and ranking

/// A 60 x 60 pixel pair (600 m): a round irrigation pivot going from fallow
/// to crop, an irregular patch of new vegetation, and a new bright roof.
fn pivot(x: usize, y: usize) -> bool {
    ((x as f64 - 16.5).powi(2) + (y as f64 - 16.5).powi(2)).sqrt() <= 12.0
}
fn veg_patch(x: usize, y: usize) -> bool {
    (36..56).contains(&x)
        && (6..22).contains(&y)
        && !(x + 2 * y).is_multiple_of(11)
        && !(x > 50 && y < 12)
}
fn roof(x: usize, y: usize) -> bool {
    (12..26).contains(&x) && (38..48).contains(&y)
}

#[test]
fn pivot_and_vegetation_are_not_structures_and_a_new_roof_is() {
    let before = |x, y| if pivot(x, y) { FALLOW } else { SAND };
    let after = |x, y| {
        if pivot(x, y) || veg_patch(x, y) {
            CROP
        } else if roof(x, y) {
            ROOF
        } else {
            SAND
        }
    };
    let c = case(
        60,
        60,
        UTM,
        &|x, y| pivot(x, y) || veg_patch(x, y) || roof(x, y),
        &before,
        &after,
    );
    let s = run_sites(&c.run, &opts()).unwrap();
    assert_eq!(s.sites, 3);
    let v = geojson(&c.run);
    let fs = features(&v);
    let near = |f: &Value, cx: f64, cy: f64| {
        let ft = &prop(f, "features");
        let (x, y) = (
            (ft["bbox_col0"].as_f64().unwrap() + ft["bbox_col1"].as_f64().unwrap()) / 2.0,
            (ft["bbox_row0"].as_f64().unwrap() + ft["bbox_row1"].as_f64().unwrap()) / 2.0,
        );
        (x - cx).abs() < 4.0 && (y - cy).abs() < 4.0
    };
    let roof_f = fs.iter().find(|f| near(f, 18.5, 42.5)).expect("roof site");
    let pivot_f = fs.iter().find(|f| near(f, 16.5, 16.5)).expect("pivot site");
    let veg_f = fs
        .iter()
        .find(|f| prop(f, "id") != prop(roof_f, "id") && prop(f, "id") != prop(pivot_f, "id"))
        .unwrap();
    assert_eq!(prop(roof_f, "kind"), "structure", "{roof_f}");
    assert_eq!(prop(roof_f, "rank"), 1);
    for f in [pivot_f, veg_f] {
        assert_ne!(prop(f, "kind"), "structure", "{f}");
        assert!(
            prop(f, "score").as_f64().unwrap() < 0.5 * prop(roof_f, "score").as_f64().unwrap(),
            "{f}"
        );
    }
    assert_eq!(prop(pivot_f, "kind"), "vegetation");
    let reasons = prop(pivot_f, "reasons").to_string();
    assert!(reasons.contains("pivot"), "{reasons}");
    assert_eq!(prop(veg_f, "kind"), "vegetation");
    assert!(prop(&veg_f.clone(), "features")["d_ndvi"].as_f64().unwrap() > 0.3);
}

// ------------------------------------------------------------ watchlist and errors

fn watch_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("watch.geojson");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn watchlist_tags_sites_within_the_distance() {
    let c = case(64, 48, UTM, &rect, &sand, &roof_in_rect);
    // The rectangle's centre, and a point 2 km north of it.
    let g = &c.grid;
    let (cx, cy) = g.pixel_center(27.0, 19.5);
    let ct = CoordTransform::new(&g.srs().unwrap(), &srs(4326)).unwrap();
    let (mut xs, mut ys) = ([cx, cx], [cy, cy + 2000.0]);
    ct.transform_coords(&mut xs, &mut ys, &mut [0.0, 0.0])
        .unwrap();
    let text = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Far camp"}, "geometry": {"type": "Point", "coordinates": [xs[1], ys[1]]}},
    ]});
    let w = watch_file(c.run.parent().unwrap(), &text.to_string());
    run_sites(
        &c.run,
        &SitesOptions {
            watchlist: Some(w.clone()),
            watch_distance_m: 1500.0,
            ..opts()
        },
    )
    .unwrap();
    assert!(
        prop(&features(&geojson(&c.run))[0], "watch_name").is_null(),
        "2 km is beyond 1.5 km"
    );
    run_sites(
        &c.run,
        &SitesOptions {
            watchlist: Some(w),
            ..opts()
        },
    )
    .unwrap();
    let v = geojson(&c.run);
    let f = &features(&v)[0];
    assert_eq!(prop(f, "watch_name"), "Far camp");
    let d = prop(f, "watch_distance_m").as_f64().unwrap();
    assert!((d - 2000.0).abs() < 20.0, "{d}");
    let csv = std::fs::read_to_string(c.run.join("sites.csv")).unwrap();
    assert!(csv.contains("Far camp"));
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args(args)
        .output()
        .unwrap()
}

fn assert_fails_naming(o: &std::process::Output, name: &str) {
    assert!(!o.status.success(), "must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(name), "must name {name}: {err}");
}

#[test]
fn errors_name_the_file_and_leave_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-run");
    assert_fails_naming(&cli(&["sites", missing.to_str().unwrap()]), "no-such-run");
    assert!(!missing.exists(), "a missing run folder is not created");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_fails_naming(&cli(&["sites", empty.to_str().unwrap()]), "change_mask.tif");

    let c = case(64, 48, UTM, &rect, &sand, &roof_in_rect);
    let before: Vec<_> = std::fs::read_dir(&c.run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let bad = watch_file(
        c.run.parent().unwrap(),
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"label":"x"},"geometry":{"type":"Point","coordinates":[21,40.6]}}]}"#,
    );
    assert_fails_naming(
        &cli(&[
            "sites",
            c.run.to_str().unwrap(),
            "--watchlist",
            bad.to_str().unwrap(),
        ]),
        "watch.geojson",
    );
    let junk = c.run.parent().unwrap().join("junk.geojson");
    std::fs::write(&junk, "{ not json").unwrap();
    assert_fails_naming(
        &cli(&[
            "sites",
            c.run.to_str().unwrap(),
            "--watchlist",
            junk.to_str().unwrap(),
        ]),
        "junk.geojson",
    );
    let after: Vec<_> = std::fs::read_dir(&c.run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        before, after,
        "a failed run writes nothing into the run folder"
    );

    // Scenes gone since detect ran: named, with the way out.
    std::fs::remove_dir_all(c.run.parent().unwrap().join("after")).unwrap();
    let o = cli(&["sites", c.run.to_str().unwrap()]);
    assert_fails_naming(&o, "after");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--after"));

    // And success prints one summary line.
    let c = case(64, 48, UTM, &rect, &sand, &roof_in_rect);
    let o = cli(&["sites", c.run.to_str().unwrap(), "--chips", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 sites (1 structure)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

// ------------------------------------------------------------ report in a browser

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = std::process::Command::new("which").arg(name).output() {
            if o.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            }
        }
    }
    panic!("chromium is not installed: run scripts/setup-tests.sh (it installs the Debian package `chromium`) to test report.html");
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ];
    let profile_arg = format!("--user-data-dir={}", profile.display());
    args.push(&profile_arg);
    args.extend_from_slice(extra);
    args.push(url);
    std::process::Command::new(browser)
        .args(&args)
        .output()
        .unwrap()
}

#[test]
fn report_renders_in_headless_chromium_with_one_row_per_site() {
    let browser = chromium();
    let c = roofs_on_sand();
    let s = run_sites(&c.run, &opts()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "file://{}",
        c.run.join("report.html").canonicalize().unwrap().display()
    );

    let o = headless(&browser, &tmp.path().join("p1"), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && dom.contains("<table id=\"sites\""),
        "no sites table in the DOM: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        dom.matches("<tr class=\"site\"").count(),
        s.sites,
        "one row per site"
    );
    assert_eq!(
        dom.matches("<img class=\"chip\"").count(),
        3,
        "a chip for each of the top 3"
    );
    // Self-contained: nothing fetched (links to web maps are only links).
    assert!(
        !dom.contains("src=\"http") && !dom.contains("<link") && !dom.contains("<script src"),
        "self-contained"
    );

    let shot = tmp.path().join("shot.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let o = headless(
        &browser,
        &tmp.path().join("p2"),
        &[&shot_arg, "--window-size=1200,900"],
        &url,
    );
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let px = &buf[..info.buffer_size()];
    let n = px.len() as f64;
    let mean = px.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = px.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(
        info.width >= 1000 && var > 100.0,
        "blank screenshot: {}x{}, variance {var}",
        info.width,
        info.height
    );
}

/// The sites table's rows in the DOM as (id, kind, area, hidden).
fn dom_rows(dom: &str) -> Vec<(u32, String, f64, bool)> {
    dom.split("<tr class=\"site\"")
        .skip(1)
        .map(|r| {
            let head = &r[..r.find('>').unwrap()];
            let attr = |k: &str| {
                let i = head.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
                head[i..i + head[i..].find('"').unwrap()].to_string()
            };
            (
                attr("id").trim_start_matches("site-").parse().unwrap(),
                attr("data-kind"),
                attr("data-area").parse().unwrap(),
                head.contains(" hidden"),
            )
        })
        .collect()
}

#[test]
fn report_table_sorts_and_filters_in_headless_chromium() {
    let browser = chromium();
    let c = roofs_on_sand();
    let s = run_sites(&c.run, &opts()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "file://{}",
        c.run.join("report.html").canonicalize().unwrap().display()
    );
    let dump = |profile: &str, fragment: &str| {
        let o = headless(
            &browser,
            &tmp.path().join(profile),
            &["--dump-dom"],
            &format!("{url}#{fragment}"),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    // As written: rank order, all shown.
    let plain = dom_rows(&dump("p0", ""));
    assert_eq!(plain.len(), s.sites);
    assert!(plain.iter().all(|r| !r.3));
    // A click on the area header: largest first.
    let dom = dump("p1", "sort=area");
    assert!(
        dom.contains("data-sorted=\"area descending\""),
        "the script did not run"
    );
    let rows = dom_rows(&dom);
    let areas: Vec<f64> = rows.iter().map(|r| r.2).collect();
    assert!(areas.windows(2).all(|w| w[0] >= w[1]), "{areas:?}");
    assert_ne!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        plain.iter().map(|r| r.0).collect::<Vec<_>>(),
        "sorting by area changed nothing: pick shapes whose areas are not in rank order"
    );
    // Two clicks: smallest first.
    let rows = dom_rows(&dump("p2", "sort=area&sort=area"));
    let areas: Vec<f64> = rows.iter().map(|r| r.2).collect();
    assert!(areas.windows(2).all(|w| w[0] <= w[1]), "{areas:?}");
    // The kind filter hides the other kinds' rows.
    let kind = &plain[0].1;
    let rows = dom_rows(&dump("p3", &format!("kind={kind}")));
    assert!(rows.iter().all(|r| r.3 == (&r.1 != kind)), "{rows:?}");
    // And the area filter the smaller sites.
    let mut a: Vec<f64> = plain.iter().map(|r| r.2).collect();
    a.sort_by(f64::total_cmp);
    let cut = a[a.len() / 2];
    let rows = dom_rows(&dump("p4", &format!("min-area={cut}")));
    assert!(rows.iter().all(|r| r.3 == (r.2 < cut)), "{rows:?}");
    assert!(rows.iter().any(|r| r.3) && rows.iter().any(|r| !r.3));
}

// ------------------------------------------------------------ sample tiles

#[test]
fn sample_tiles_top_structures_overlap_labelled_change() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let req = dunewatch::run::DetectRequest {
        before: root.join("before"),
        after: root.join("after"),
        out: out.clone(),
        align: Default::default(),
        detect: Default::default(),
        threads: 2,
        keep_for_sites: false,
    };
    dunewatch::run::run_detect(&req, &dunewatch::progress::Silent).unwrap();
    let s = run_sites(
        &out,
        &SitesOptions {
            chips: 2,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(s.sites >= 20, "{} sites", s.sites);

    // The label: no georeferencing, on the before 10 m grid; 2 = change.
    let lab = gdal::Dataset::open(root.join("abudhabi-cm.tif")).unwrap();
    let (w, h) = lab.raster_size();
    let truth: Vec<u8> = lab
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .data()
        .to_vec();
    let mask = gdal::Dataset::open(out.join("change_mask.tif")).unwrap();
    let grid = Grid::from_dataset(&mask, "mask").unwrap();
    assert_eq!((grid.width, grid.height), (w, h));

    let v = geojson(&out);
    let polys = dunewatch::eval::sites::read_sites(&out.join("sites.geojson"), &grid).unwrap();
    assert_eq!(polys.len(), features(&v).len());
    let touches = |i: usize| {
        let ft = &prop(&features(&v)[i], "features");
        let b = |k: &str| ft[k].as_f64().unwrap() as usize;
        (b("bbox_row0").saturating_sub(1)..=(b("bbox_row1") + 1).min(h - 1)).any(|r| {
            (b("bbox_col0").saturating_sub(1)..=(b("bbox_col1") + 1).min(w - 1))
                .any(|c| truth[r * w + c] == 2 && polys[i].touches(c, r))
        })
    };
    let structures: Vec<usize> = (0..features(&v).len())
        .filter(|&i| prop(&features(&v)[i], "kind") == "structure")
        .collect();
    assert!(structures.len() >= 10);
    let top: Vec<bool> = structures.iter().take(10).map(|&i| touches(i)).collect();
    let hits = top.iter().filter(|&&t| t).count();
    // All sites, for comparison: the ranking must do better than the mask.
    let all =
        (0..features(&v).len()).filter(|&i| touches(i)).count() as f64 / features(&v).len() as f64;
    eprintln!("top 10 structures touching labelled change: {hits} {top:?}; all sites: {all:.2}");
    assert!(
        hits >= 5,
        "only {hits} of the top 10 structure sites touch labelled change: {top:?}"
    );
    assert!(
        hits as f64 / 10.0 > all,
        "ranking no better than the mask as a whole ({all:.2})"
    );
}

/// Records the stages a run reports and how far each got.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(&'static str, u64, u64)>>);

impl dunewatch::progress::Progress for Recorder {
    fn start(&self, stage: &'static str, total: u64) {
        self.0.lock().unwrap().push((stage, total, 0));
    }
    fn advance(&self, n: u64) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.2 += n;
        }
    }
}

#[test]
fn sites_report_each_stage_to_the_end() {
    let c = roofs_on_sand();
    let rec = Recorder::default();
    let s = dunewatch::sites::run_sites_with(&c.run, &opts(), &rec).unwrap();
    let stages = rec.0.into_inner().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s.0).collect();
    assert_eq!(names, ["label sites", "describe sites", "chips"]);
    for (name, total, done) in &stages {
        assert!(*total > 0 && done == total, "{name}: {done} of {total}");
    }
    assert_eq!(stages[1].1, s.sites as u64);
    assert_eq!(stages[2].1, 3);
}
