//! The batch index's regional layer: two pairs over overlapping crops of the
//! Abu Dhabi sample on different grids (one reprojected to UTM zone 39N,
//! the other to zone 40N, as neighbouring Sentinel-2 tiles across a zone
//! boundary are), run as one batch. The sites in the overlap appear once in
//! the merged sites.geojson and sites.csv, listing both pairs.

#[path = "common/scenes.rs"]
mod scenes;

use gdal::vector::Geometry;
use scenes::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The sample's 10 m grid: west edge, pixel size (degrees) and columns.
const WEST: f64 = 54.540_252_685_546_875;
const PX: f64 = 0.000_094_031_072_726;
const SOUTH: f64 = 24.2915;
const NORTH: f64 = 24.3664;

/// The crops' longitudes: A is columns 0..500, B columns 300..785 of the
/// sample, so they share 200 columns (about 1.9 km).
fn west_east(first: usize, last: usize) -> (f64, f64) {
    (WEST + first as f64 * PX, WEST + last as f64 * PX)
}

/// Warps every band of `src` to `epsg` over lon `w..e` (the sample's lat
/// range), each band at its own resolution (10, 20 or 60 m).
fn warp_scene(src: &Path, dst: &Path, epsg: u32, (w, e): (f64, f64)) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let p = entry.path();
        if p.extension().and_then(|x| x.to_str()) != Some("tif") {
            continue;
        }
        let ds = gdal::Dataset::open(&p).unwrap();
        let res = match ds.raster_size().0 {
            w if w > 600 => 10,
            w if w > 200 => 20,
            _ => 60,
        };
        drop(ds);
        let o = Command::new("gdalwarp")
            .args(["-q", "-overwrite", "-t_srs", &format!("EPSG:{epsg}")])
            .args([
                "-tr",
                &res.to_string(),
                &res.to_string(),
                "-tap",
                "-r",
                "near",
            ])
            .args(["-te_srs", "EPSG:4326", "-te"])
            .args([w, SOUTH, e, NORTH].map(|v| v.to_string()))
            .arg(&p)
            .arg(dst.join(p.file_name().unwrap()))
            .output()
            .expect("run gdalwarp");
        assert!(
            o.status.success(),
            "gdalwarp {}: {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn outline(f: &Value) -> Geometry {
    Geometry::from_geojson(&f["geometry"].to_string()).unwrap()
}

/// Pairs of features of `a` x `b` (or of `a` with itself when `b` is None)
/// whose outlines overlap by at least a fifth of the smaller one.
fn overlapping(a: &[Value], b: Option<&[Value]>) -> usize {
    let ga: Vec<(Geometry, f64)> = a.iter().map(|f| (outline(f), outline(f).area())).collect();
    let gb: Vec<(Geometry, f64)> = b
        .unwrap_or(&[])
        .iter()
        .map(|f| (outline(f), outline(f).area()))
        .collect();
    let mut n = 0;
    for (i, (x, ax)) in ga.iter().enumerate() {
        let others: Vec<&(Geometry, f64)> = match b {
            Some(_) => gb.iter().collect(),
            None => ga[i + 1..].iter().collect(),
        };
        for (y, ay) in others {
            let common = x.intersection(y).map(|g| g.area()).unwrap_or(0.0);
            if common >= 0.2 * ax.min(*ay) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn overlapping_tiles_on_two_utm_zones_give_each_site_once() {
    let d = tempfile::tempdir().unwrap();
    let (a_lon, b_lon) = (west_east(0, 500), west_east(300, 785));
    for (name, epsg, lon) in [("west", 32639, a_lon), ("east", 32640, b_lon)] {
        for date in ["before", "after"] {
            let src = root().join("sample_tiles/abudhabi").join(date);
            warp_scene(
                &src,
                &d.path().join("pairs").join(name).join(date),
                epsg,
                lon,
            );
        }
    }
    let out = d.path().join("out");
    let o = dunewatch(&[
        "batch",
        d.path().join("pairs").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--chips",
        "0",
        "--quiet",
    ]);
    assert_ok(&o);

    let west = json(&out.join("west/sites.geojson"));
    let east = json(&out.join("east/sites.geojson"));
    let (west, east) = (
        west["features"].as_array().unwrap(),
        east["features"].as_array().unwrap(),
    );
    // The two pairs do see the same sites in the overlap: as two layers put
    // together, they hold duplicates.
    let dups = overlapping(west, Some(east));
    assert!(dups >= 5, "only {dups} sites seen by both pairs");

    let merged = json(&out.join("sites.geojson"));
    let feats = merged["features"].as_array().unwrap();
    // No site twice.
    assert_eq!(
        overlapping(feats, None),
        0,
        "duplicate sites in the merged layer"
    );
    let both: Vec<&Value> = feats
        .iter()
        .filter(|f| f["properties"]["pairs"].as_array().unwrap().len() == 2)
        .collect();
    assert!(both.len() >= 5, "{} sites listing both pairs", both.len());
    let (overlap_w, overlap_e) = (b_lon.0, a_lon.1);
    for f in &both {
        assert_eq!(
            f["properties"]["pairs"],
            serde_json::json!(["east", "west"])
        );
        // In the overlap (a site cut by a crop's edge may reach a little out).
        let lon = f["properties"]["centroid_lon"].as_f64().unwrap();
        assert!(
            (overlap_w - 0.002..overlap_e + 0.002).contains(&lon),
            "site at {lon} outside the overlap {overlap_w}..{overlap_e}"
        );
    }
    // Every site outside the overlap is its own pair's only.
    for f in feats {
        let lon = f["properties"]["centroid_lon"].as_f64().unwrap();
        if lon < overlap_w - 0.002 || lon > overlap_e + 0.002 {
            let pair = f["properties"]["pair"].as_str().unwrap();
            assert_eq!(f["properties"]["pairs"], serde_json::json!([pair]));
        }
    }
    // Each site of either pair is in the merged layer, or gave way to a
    // better observation of it, which lists its pair and overlaps it.
    assert!(feats.len() < west.len() + east.len());
    for (pair, layer) in [("west", west), ("east", east)] {
        for s in layer {
            let id = format!("{pair}/{}", s["properties"]["id"]);
            if feats.iter().any(|f| f["id"] == Value::String(id.clone())) {
                continue;
            }
            let g = outline(s);
            let stand_in = both.iter().find(|f| {
                f["properties"]["pairs"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::String(pair.into()))
                    && outline(f).intersects(&g)
            });
            let f = stand_in.unwrap_or_else(|| panic!("{id} is lost from the merged layer"));
            assert!(
                f["properties"]["score"].as_f64() >= s["properties"]["score"].as_f64(),
                "{id} kept a weaker observation"
            );
        }
    }

    // sites.csv holds the same sites, with the pairs column.
    let csv = std::fs::read_to_string(out.join("sites.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("pair,id,") && rows[0].ends_with(",pairs"));
    assert_eq!(rows.len(), 1 + feats.len());
    assert_eq!(
        rows.iter().filter(|r| r.ends_with(",east;west")).count(),
        both.len()
    );
}
