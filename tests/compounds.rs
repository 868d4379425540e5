//! Candidate compounds on real imagery: a compound (a ring berm, buildings
//! and an apron) pasted into the real Abu Dhabi after scene must come out
//! as the first-ranked compound, with its ring and apron among the reasons.
//!
//! The paste: `sample_tiles/abudhabi/after` is copied to a temp folder, and
//! the pixels of every band under the compound's shapes are overwritten
//! with that band's own values from real built-up pixels of the same scene
//! (the top-ranked new structure of a run on the untouched pair, tiled over
//! the shapes, each band read on its own 10, 20 or 60 m grid). The shapes
//! go into sand in the south-west of the crop where the untouched run finds
//! no change within 150 m (checked below). The berm is 6 pixels (60 m) wide,
//! a berm with its ditch: the change mask comes out about a pixel narrower
//! on each side than what was pasted, and the sites step's 3x3 opening
//! removes anything under 3 pixels wide, as it removes speckle.

use gdal::raster::Buffer;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The compound's top-left corner on the run grid (the before scene's).
const X0: usize = 130;
const Y0: usize = 665;
/// The ring's outer side and width, pixels.
const RING: usize = 44;
const RING_W: usize = 6;

/// Buildings and the apron inside the ring: x0, y0, x1, y1 (half-open,
/// relative to the corner), at least 4 pixels apart so that the 3x3
/// closing keeps them apart.
const BLOCKS: [[usize; 4]; 5] = [
    // Apron, 140 m x 70 m.
    [9, 9, 23, 16],
    // Buildings, 40-60 m.
    [27, 9, 32, 14],
    [9, 22, 14, 27],
    [19, 22, 23, 28],
    [27, 22, 32, 26],
];

fn in_compound(x: usize, y: usize) -> bool {
    if x < X0 || y < Y0 || x >= X0 + RING || y >= Y0 + RING {
        return false;
    }
    let (dx, dy) = (x - X0, y - Y0);
    let ring = dx < RING_W || dy < RING_W || dx >= RING - RING_W || dy >= RING - RING_W;
    ring || BLOCKS
        .iter()
        .any(|b| dx >= b[0] && dx < b[2] && dy >= b[1] && dy < b[3])
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_tiles/abudhabi")
}

fn detect_and_sites(before: &Path, after: &Path, out: &Path) {
    let req = dunewatch::run::DetectRequest {
        before: before.to_path_buf(),
        after: after.to_path_buf(),
        out: out.to_path_buf(),
        align: Default::default(),
        detect: Default::default(),
        threads: 2,
        keep_for_sites: false,
    };
    dunewatch::run::run_detect(&req, &dunewatch::progress::Silent).unwrap();
    dunewatch::sites::run_sites(
        out,
        &dunewatch::sites::SitesOptions {
            chips: 3,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn geotransform(path: &Path) -> [f64; 6] {
    gdal::Dataset::open(path).unwrap().geo_transform().unwrap()
}

/// Overwrites the compound's pixels of every band file in `after` with the
/// band's values at the donor pixels (run grid pixels), taken in a
/// scrambled order so that the pasted surfaces have the donor's texture
/// without its layout.
fn paste(after: &Path, grid: &[f64; 6], donor: &[(usize, usize)]) {
    for e in std::fs::read_dir(after).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("tif") {
            continue;
        }
        let ds = gdal::Dataset::open_ex(
            &path,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE
                    | gdal::GdalOpenFlags::GDAL_OF_RASTER,
                ..Default::default()
            },
        )
        .unwrap();
        let gt = ds.geo_transform().unwrap();
        let (w, h) = ds.raster_size();
        let mut band = ds.rasterband(1).unwrap();
        let mut data = band
            .read_as::<u16>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .data()
            .to_vec();
        let orig = data.clone();
        // This band's pixel holding a point of the run grid, and back.
        let band_px = |gx: f64, gy: f64| -> (usize, usize) {
            let (lon, lat) = (grid[0] + gx * grid[1], grid[3] + gy * grid[5]);
            (
                (((lon - gt[0]) / gt[1]).floor().max(0.0) as usize).min(w - 1),
                (((lat - gt[3]) / gt[5]).floor().max(0.0) as usize).min(h - 1),
            )
        };
        for by in 0..h {
            for bx in 0..w {
                // The band pixel's centre on the run grid.
                let (lon, lat) = (
                    gt[0] + (bx as f64 + 0.5) * gt[1],
                    gt[3] + (by as f64 + 0.5) * gt[5],
                );
                let (gx, gy) = ((lon - grid[0]) / grid[1], (lat - grid[3]) / grid[5]);
                if gx < 0.0 || gy < 0.0 || !in_compound(gx as usize, gy as usize) {
                    continue;
                }
                let (dx, dy) = donor[(gx as usize * 7 + gy as usize * 13) % donor.len()];
                let (sx, sy) = band_px(dx as f64 + 0.5, dy as f64 + 0.5);
                data[by * w + bx] = orig[sy * w + sx];
            }
        }
        let mut buf = Buffer::new((w, h), data);
        band.write((0, 0), (w, h), &mut buf).unwrap();
    }
}

fn contains(ring: &[Value], lon: f64, lat: f64) -> bool {
    // Convex and counter-clockwise: left of every edge.
    ring.windows(2).all(|e| {
        let (a, b) = (&e[0], &e[1]);
        let (ax, ay, bx, by) = (
            a[0].as_f64().unwrap(),
            a[1].as_f64().unwrap(),
            b[0].as_f64().unwrap(),
            b[1].as_f64().unwrap(),
        );
        (bx - ax) * (lat - ay) - (by - ay) * (lon - ax) >= 0.0
    })
}

#[test]
fn a_compound_pasted_into_a_real_scene_ranks_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = dir.join("untouched");
    detect_and_sites(&root().join("before"), &root().join("after"), &base);

    // The spot is sand with no change nearby in the untouched run.
    let mask_ds = gdal::Dataset::open(base.join("change_mask.tif")).unwrap();
    let (w, _) = mask_ds.raster_size();
    let (mx0, my0) = (X0 - 15, Y0 - 15);
    let side = RING + 30;
    let m = mask_ds
        .rasterband(1)
        .unwrap()
        .read_as::<u8>(
            (mx0 as isize, my0 as isize),
            (side, side),
            (side, side),
            None,
        )
        .unwrap();
    assert!(
        m.data().iter().all(|&v| v == 0),
        "the paste spot has change or masked pixels in the untouched run"
    );
    assert!(X0 + RING + 15 < w);

    // The donor: the untouched run's top-ranked structure.
    let sites = json(&base.join("sites.geojson"));
    let top = sites["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["kind"] == "structure")
        .unwrap();
    let ft = &top["properties"]["features"];
    let b = |k: &str| ft[k].as_f64().unwrap() as usize;
    // Its changed pixels away from its edge (whose pixels are mixed with
    // the ground round it).
    let full = mask_ds
        .rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), mask_ds.raster_size(), mask_ds.raster_size(), None)
        .unwrap();
    let changed = |x: usize, y: usize| full.data()[y * w + x] == 1;
    let donor: Vec<(usize, usize)> = (b("bbox_row0") + 1..b("bbox_row1"))
        .flat_map(|y| (b("bbox_col0") + 1..b("bbox_col1")).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            changed(x, y)
                && changed(x - 1, y)
                && changed(x + 1, y)
                && changed(x, y - 1)
                && changed(x, y + 1)
        })
        .collect();
    assert!(donor.len() >= 9, "{} donor pixels", donor.len());
    let untouched_top = json(&base.join("compounds.geojson"))["features"][0].clone();

    let after = dir.join("after");
    std::fs::create_dir_all(&after).unwrap();
    for e in std::fs::read_dir(root().join("after")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, after.join(p.file_name().unwrap())).unwrap();
    }
    let grid = geotransform(&base.join("change_mask.tif"));
    paste(&after, &grid, &donor);
    let run = dir.join("pasted");
    detect_and_sites(&root().join("before"), &after, &run);

    let comps = json(&run.join("compounds.geojson"));
    let feats = comps["features"].as_array().unwrap();
    for f in feats.iter().take(5) {
        eprintln!(
            "compound rank {} score {} members {} reasons {}",
            f["properties"]["rank"],
            f["properties"]["score"],
            f["properties"]["members"],
            f["properties"]["reasons"]
        );
    }
    let first = &feats[0];
    assert_eq!(first["properties"]["rank"], 1);
    let ring = first["geometry"]["coordinates"][0].as_array().unwrap();
    let centre = |x: f64, y: f64| (grid[0] + x * grid[1], grid[3] + y * grid[5]);
    let (lon, lat) = centre((X0 + RING / 2) as f64, (Y0 + RING / 2) as f64);
    assert!(
        contains(ring, lon, lat),
        "the first compound is not the pasted one: {first}; untouched run's first: {untouched_top}"
    );
    // Its parts were found as sites of their own, and the reasons name them.
    let members = first["properties"]["members"].as_array().unwrap().len();
    assert!(members >= 4, "{members} members: {first}");
    let reasons = first["properties"]["reasons"].to_string();
    assert!(reasons.contains("enclosing ring"), "{reasons}");
    assert!(reasons.contains("apron"), "{reasons}");
    // The untouched run's first compound was elsewhere.
    let ur = untouched_top["geometry"]["coordinates"][0]
        .as_array()
        .unwrap();
    assert!(!contains(ur, lon, lat));

    // The CSV has a row per compound, in the same order.
    let csv = std::fs::read_to_string(run.join("compounds.csv")).unwrap();
    assert_eq!(csv.lines().count(), feats.len() + 1);
    let row1 = csv.lines().nth(1).unwrap();
    assert!(
        row1.starts_with(&format!("{},1,", first["properties"]["id"])),
        "{row1}"
    );
    // OGR reads the compounds as polygons.
    let ds = gdal::Dataset::open(run.join("compounds.geojson")).unwrap();
    use gdal::vector::LayerAccess;
    assert_eq!(ds.layer(0).unwrap().feature_count() as usize, feats.len());
    assert!(run
        .join(first["properties"]["chip"].as_str().unwrap())
        .is_file());
}
