//! Remote scenes end to end, against real servers on 127.0.0.1 (nginx with
//! range requests, `rustac serve` as the STAC API; see
//! scripts/test_servers.sh): STAC items as scenes read window by window
//! through `/vsicurl/`, search, fetch, and clean failures.

#[path = "common/gpkg.rs"]
mod gpkg;
#[path = "common/scenes.rs"]
mod scenes;
#[path = "common/stac_fixture.rs"]
mod stac_fixture;

use gpkg::rows as gpkg_rows;
use scenes::{assert_ok, dunewatch};
use stac_fixture::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Inside both sample scenes, about half of them across.
const AOI: [f64; 4] = [54.556, 24.305, 54.598, 24.350];

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JSON file's contents.
fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(p)).unwrap()
}

/// The sample's before and after items (see [`abudhabi_site`], assets
/// under `prefix`) and the servers serving them.
fn served_site(dir: &Path, prefix: &str) -> (std::path::PathBuf, std::path::PathBuf, Servers) {
    let port = free_port();
    let (before, after) = abudhabi_site(dir, port, prefix);
    (before, after, Servers::start(dir, port, free_port()))
}

/// `<dir>/aoi.geojson`, the sample's area.
fn aoi_file(dir: &Path) -> std::path::PathBuf {
    let aoi = dir.join("aoi.geojson");
    write_aoi(&aoi, AOI[0], AOI[1], AOI[2], AOI[3]);
    aoi
}

/// `dunewatch scenes` on the servers' catalogue over the sample's area,
/// from `from` to 2018-12-31, with more arguments.
fn scenes_over_aoi(servers: &Servers, from: &str, args: &[&str]) -> std::process::Output {
    let bbox = format!("{},{},{},{}", AOI[0], AOI[1], AOI[2], AOI[3]);
    let stac = servers.stac();
    let mut all = vec![
        "scenes",
        "--stac",
        &stac,
        "--collection",
        "sentinel-2-l1c",
        "--bbox",
        &bbox,
        "--from",
        from,
        "--to",
        "2018-12-31",
    ];
    all.extend_from_slice(args);
    dunewatch(&all)
}

fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    err
}

#[test]
fn detect_on_remote_items_matches_the_same_files_read_locally() {
    let t = tempfile::tempdir().unwrap();
    let (before, after, servers) = served_site(t.path(), "");
    let aoi = aoi_file(t.path());
    let aoi = aoi.to_str().unwrap();

    let www = t.path().join("www");
    let local = t.path().join("local");
    let o = scenes::detect(
        &www.join("before"),
        &www.join("after"),
        &local,
        &["--aoi", aoi],
    );
    assert_ok(&o);

    let url = |p: &Path| servers.url_of(p);
    let (bu, au) = (url(&before), url(&after));
    // `detect` on the items' URLs into `<t>/<name>`.
    let detect_remote = |name: &str, args: &[&str]| {
        let out = t.path().join(name);
        assert_ok(&scenes::detect_with_sites(
            Path::new(&bu),
            Path::new(&au),
            &out,
            &[args, &["--aoi", aoi]].concat(),
        ));
        out
    };
    let remote = detect_remote("remote", &["--no-sites"]);
    let reqs = servers.requests();
    for f in ["change_score.tif", "change_mask.tif"] {
        assert!(
            read(&local.join(f)) == read(&remote.join(f)),
            "{f} differs between the remote items and the local files"
        );
    }
    let run: serde_json::Value = serde_json::from_slice(&read(&remote.join("run.json"))).unwrap();
    assert_eq!(run["before"]["path"], bu.as_str());
    assert_eq!(run["before"]["form"], "stac_item");
    assert_eq!(run["before"]["date"], "2016-01-20");

    // Only windows were read, each once: range requests, and fewer bytes
    // than the files hold (the area covers 9 of the 16 tiles of each file).
    let tif: Vec<_> = reqs.iter().filter(|r| r.1.ends_with(".tif")).collect();
    assert!(!tif.is_empty(), "no COG was read over HTTP");
    assert!(tif.iter().all(|r| r.2 == 206 || r.0 == "HEAD"), "{tif:?}");
    let fetched: u64 = tif.iter().map(|r| r.3).sum();
    let held: u64 = ["before", "after"]
        .iter()
        .flat_map(|s| std::fs::read_dir(www.join(s)).unwrap().flatten())
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        (fetched as f64) < 0.7 * held as f64,
        "fetched {fetched} bytes of COGs holding {held}: more than the area's tiles"
    );
    let mut ranges: Vec<_> = tif.iter().filter(|r| r.0 == "GET").collect();
    let n = ranges.len();
    ranges.sort();
    ranges.dedup();
    assert!(
        ranges.len() * 10 >= n * 9,
        "tiles fetched again: {n} requests, {} distinct",
        ranges.len()
    );

    // With its sites: the sites step finds the remote scenes again from run.json.
    let with_sites = detect_remote("remote-sites", &[]);
    assert!(with_sites.join("sites.geojson").is_file());
    assert!(read(&with_sites.join("change_mask.tif")) == read(&local.join("change_mask.tif")));
}

#[test]
fn a_missing_asset_is_a_one_line_error_naming_its_url() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    // The red band's file is gone from the server.
    std::fs::remove_file(t.path().join("www/after/B04.tif")).unwrap();
    let servers = Servers::start(t.path(), port, free_port());
    let url = |p: &Path| servers.url_of(p);
    let out = t.path().join("out");
    let o = dunewatch(&[
        "detect",
        "--quiet",
        "--before",
        &url(&before),
        "--after",
        &url(&after),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = one_line_error(&o);
    let missing = format!("{}/after/B04.tif", servers.www());
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("404"), "{err}");
    assert!(!out.exists(), "a failed run left {:?}", files_under(&out));

    // An item URL that is not there.
    let o = dunewatch(&[
        "detect",
        "--quiet",
        "--before",
        &format!("{}/nope.json", servers.www()),
        "--after",
        &url(&after),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = one_line_error(&o);
    assert!(err.contains("/nope.json"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_server_stopped_mid_run_is_a_clean_error() {
    let t = tempfile::tempdir().unwrap();
    // Items whose assets come through nginx's throttled /slow/ location.
    let (before, after, servers) = served_site(t.path(), "slow/");
    let url = |p: &Path| servers.url_of(p);
    let out = t.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args([
            "detect",
            "--quiet",
            "--before",
            &url(&before),
            "--after",
            &url(&after),
        ])
        .arg("--out")
        .arg(&out)
        .env("GDAL_HTTP_MAX_RETRY", "1")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the first window has come through /slow/, the server goes away.
    let t0 = Instant::now();
    while !servers.requests().iter().any(|r| r.1.starts_with("/slow/")) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no read through /slow/"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "detect ended before the server stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    servers.stop();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("detect did not end after the server stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    let err = err.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}/slow/", servers.www())), "{err}");
    assert!(!out.exists(), "a failed run left {:?}", files_under(&out));
}

/// A copy of `item` with another id, date and scene cloud cover.
fn variant(item: &serde_json::Value, id: &str, datetime: &str, cloud: f64) -> serde_json::Value {
    let mut v = item.clone();
    v["id"] = id.into();
    v["properties"]["datetime"] = datetime.into();
    v["properties"]["eo:cloud_cover"] = cloud.into();
    v
}

#[test]
fn scenes_finds_items_by_area_dates_and_cloud_and_its_pair_runs_in_batch() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    let (b, a) = (json(&before), json(&after));
    let mut paris = variant(&a, "S2A_31UDQ_20180328_0_L1C", "2018-03-28T10:50:00Z", 0.0);
    paris["geometry"] = serde_json::json!({"type": "Polygon",
        "coordinates": [[[2.2, 48.8], [2.5, 48.8], [2.5, 48.9], [2.2, 48.9], [2.2, 48.8]]]});
    paris["bbox"] = serde_json::json!([2.2, 48.8, 2.5, 48.9]);
    let catalogue = serde_json::json!({"type": "FeatureCollection", "features": [
        b.clone(),
        variant(&b, "S2A_39QZG_20160209_0_L1C", "2016-02-09T07:06:12.000000Z", 45.0),
        a.clone(),
        variant(&a, "S2B_40QBM_20180318_0_L1C", "2018-03-18T06:59:19.000000Z", 12.0),
        paris,
        variant(&b, "S2A_39QZG_20190105_0_L1C", "2019-01-05T07:06:12.000000Z", 1.0),
    ]});
    write_catalogue(t.path(), "items.json", &catalogue);
    let servers = Servers::start(t.path(), port, free_port());

    let pairs = t.path().join("lists/abudhabi.csv");
    let o = scenes_over_aoi(
        &servers,
        "2016-01-01",
        &["--max-cloud", "20", "--pairs", pairs.to_str().unwrap()],
    );
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("S2"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "S2A_39QZG_20160120_0_L1C",
            "S2B_40QBM_20180318_0_L1C",
            "S2B_40QBM_20180328_0_L1C"
        ],
        "{text}"
    );
    // Tile, scene cloud and coverage of the area, as listed.
    let row = text
        .lines()
        .find(|l| l.starts_with("S2A_39QZG_20160120"))
        .unwrap();
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&f[1..], ["2016-01-20", "39QZG", "3.1", "100.0"], "{row}");
    assert!(
        text.contains("suggested pair: before S2A_39QZG_20160120_0_L1C (2016-01-20, cloud 3.1%), after S2B_40QBM_20180328_0_L1C"),
        "{text}"
    );

    // The CSV names the items by URL and runs as it is in batch.
    let csv = String::from_utf8_lossy(&read(&pairs)).to_string();
    let item_url = |id: &str| format!("{}/collections/sentinel-2-l1c/items/{id}", servers.stac());
    assert_eq!(
        csv,
        format!(
            "name,before,after,aoi\n39QZG_2016-01-20_2018-03-28,{},{},abudhabi-aoi.geojson\n",
            item_url("S2A_39QZG_20160120_0_L1C"),
            item_url("S2B_40QBM_20180328_0_L1C")
        )
    );
    let out = t.path().join("batch");
    let o = dunewatch(&[
        "batch",
        pairs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--no-sites",
    ]);
    assert_ok(&o);
    let run: serde_json::Value =
        serde_json::from_slice(&read(&out.join("39QZG_2016-01-20_2018-03-28/run.json"))).unwrap();
    assert_eq!(run["after"]["date"], "2018-03-28");
    assert!(run["detect"]["pixels"]["compared"].as_u64().unwrap() > 10_000);

    // Dates alone: a narrower range leaves one date, so no pair.
    let o = scenes_over_aoi(&servers, "2018-03-20", &[]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("S2B_40QBM_20180328_0_L1C") && !text.contains("20180318"),
        "{text}"
    );
    assert!(text.contains("no before/after pair"), "{text}");
}

#[test]
fn fetched_crops_give_the_same_detect_result_offline() {
    let t = tempfile::tempdir().unwrap();
    let (before, after, servers) = served_site(t.path(), "");
    let aoi = aoi_file(t.path());
    let aoi = aoi.to_str().unwrap();
    let url = |p: &Path| servers.url_of(p);
    let fetched = t.path().join("fetched");
    let o = dunewatch(&[
        "fetch",
        &url(&before),
        &url(&after),
        "--aoi",
        aoi,
        "--out",
        fetched.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let item = fetched.join(format!("{}.json", BEFORE.id));
    let saved: serde_json::Value = serde_json::from_slice(&read(&item)).unwrap();
    assert_eq!(
        saved["assets"]["red"]["href"],
        format!("./{}/red.tif", BEFORE.id).as_str()
    );
    assert!(saved["assets"].get("red-jp2").is_none());
    // The copy keeps the grid but stores only the area's tiles.
    let copy = fetched.join(BEFORE.id).join("red.tif");
    let ds = gdal::Dataset::open(&copy).unwrap();
    assert_eq!(ds.raster_size(), (785, 799));
    let full = t.path().join("www/before/B04.tif");
    let (c, f) = (
        copy.metadata().unwrap().len(),
        full.metadata().unwrap().len(),
    );
    assert!((c as f64) < 0.8 * f as f64, "copy {c} bytes, full file {f}");
    // The area as LAT,LON with a box around it, or a preset place (which is
    // far from this scene: a one-line error, not "file not found").
    let by_point = t.path().join("by-point");
    let o = dunewatch(&[
        "fetch",
        &url(&before),
        "--aoi",
        "24.3275,54.577",
        "--buffer-km",
        "2",
        "--out",
        by_point.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let red = gdal::Dataset::open(by_point.join(BEFORE.id).join("red.tif")).unwrap();
    assert_eq!(red.raster_size(), (785, 799));
    let o = dunewatch(&[
        "fetch",
        &url(&before),
        "--aoi",
        "Kufra",
        "--out",
        t.path().join("kufra").to_str().unwrap(),
    ]);
    let err = one_line_error(&o);
    assert!(err.contains("does not overlap"), "{err}");
    assert!(!t.path().join("kufra").exists());
    // Offline from here on.
    servers.stop();

    let www = t.path().join("www");
    let local = t.path().join("local");
    assert_ok(&scenes::detect(
        &www.join("before"),
        &www.join("after"),
        &local,
        &["--aoi", aoi],
    ));
    let offline = t.path().join("offline");
    let after_item = fetched.join(format!("{}.json", AFTER.id));
    assert_ok(&scenes::detect(
        &item,
        &after_item,
        &offline,
        &["--aoi", aoi],
    ));
    for f in ["change_score.tif", "change_mask.tif"] {
        assert!(
            read(&local.join(f)) == read(&offline.join(f)),
            "{f} differs between the fetched crops and the full files"
        );
    }
}

/// A minimal Earth Search-like L2A item with a lon/lat box as footprint.
fn footprint_item(id: &str, datetime: &str, cloud: f64, b: [f64; 4]) -> serde_json::Value {
    let [w, s, e, n] = b;
    serde_json::json!({
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [],
        "id": id, "collection": "sentinel-2-l2a", "bbox": b,
        "geometry": {"type": "Polygon",
                     "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": datetime, "eo:cloud_cover": cloud},
        "links": [], "assets": {}
    })
}

/// Degrees of longitude per km at `lat` on WGS 84 (prime vertical radius).
fn lon_deg_per_km(lat: f64) -> f64 {
    let (a, f) = (6_378_137.0, 1.0 / 298.257_223_563);
    let e2 = f * (2.0 - f);
    let phi = f64::to_radians(lat);
    let n = a / (1.0 - e2 * phi.sin().powi(2)).sqrt();
    1.0 / (n * phi.cos() * std::f64::consts::PI / 180.0 / 1000.0)
}

/// The listed items of a `scenes` output: id -> the row's fields.
fn listed(text: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("S2"))
        .map(|l| {
            let f: Vec<String> = l.split_whitespace().map(String::from).collect();
            (f[0].clone(), f)
        })
        .collect()
}

#[test]
fn scenes_takes_a_place_name_or_the_region_as_its_area() {
    let t = tempfile::tempdir().unwrap();
    // Kufra Airport as shipped: 24.1787N 23.3140E. A 10 km box spans
    // 23.314 +- 0.0984 degrees of longitude there.
    let (lat, lon) = (24.1787, 23.314);
    let catalogue = serde_json::json!({"type": "FeatureCollection", "features": [
        // West of the airfield's meridian: half of any box around it.
        footprint_item("S2A_34RGM_20240105_0_L2A", "2024-01-05T08:40:00Z", 2.0,
                       [22.8, 23.9, lon, 24.5]),
        // From 23.40E: a sliver of the 10 km box.
        footprint_item("S2B_34RGM_20240420_0_L2A", "2024-04-20T08:40:00Z", 1.0,
                       [23.40, 23.9, 23.9, 24.5]),
        // From 23.45E: outside the 10 km box, inside a 15 km one.
        footprint_item("S2A_35RJG_20240601_0_L2A", "2024-06-01T08:40:00Z", 0.5,
                       [23.45, 23.9, 23.9, 24.5]),
        // Around Maaten al-Sarra (21.6877N 21.8309E).
        footprint_item("S2A_34QEK_20240110_0_L2A", "2024-01-10T08:40:00Z", 0.0,
                       [21.5, 21.4, 22.2, 22.0]),
        // Abu Dhabi: outside the region.
        footprint_item("S2A_39QZG_20240105_0_L2A", "2024-01-05T07:00:00Z", 0.0,
                       [54.0, 24.0, 55.0, 25.0]),
    ]});
    write_catalogue(t.path(), "items.json", &catalogue);
    let servers = Servers::start(t.path(), free_port(), free_port());
    let stac = servers.stac();
    let search = |area: &[&str]| {
        let mut args = vec![
            "scenes",
            "--stac",
            &stac,
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
        ];
        args.extend_from_slice(area);
        let o = dunewatch(&args);
        assert_ok(&o);
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let covers = |rows: &std::collections::BTreeMap<String, Vec<String>>, id: &str| -> f64 {
        rows[id][4].parse().unwrap()
    };

    // A place name: a box of half-side 10 km around the airfield.
    let text = search(&["--aoi", "kufra"]);
    assert!(
        text.contains("area: Kufra Airport (box of half-side 10 km)"),
        "{text}"
    );
    let rows = listed(&text);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["S2A_34RGM_20240105_0_L2A", "S2B_34RGM_20240420_0_L2A"],
        "{text}"
    );
    assert_eq!(covers(&rows, "S2A_34RGM_20240105_0_L2A"), 50.0, "{text}");
    let half = 10.0 * lon_deg_per_km(lat);
    let sliver = 100.0 * (lon + half - 23.40) / (2.0 * half);
    assert!(
        (covers(&rows, "S2B_34RGM_20240420_0_L2A") - sliver).abs() < 0.11,
        "expected {sliver:.2}%: {text}"
    );

    // --buffer-km widens the box; the ICAO code names the same place.
    let rows = listed(&search(&["--aoi", "HLKF", "--buffer-km", "15"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let half = 15.0 * lon_deg_per_km(lat);
    let edge = 100.0 * (lon + half - 23.45) / (2.0 * half);
    assert!((covers(&rows, "S2A_35RJG_20240601_0_L2A") - edge).abs() < 0.11);

    // A name with spaces, and the whole region.
    let rows = listed(&search(&["--aoi", "Maaten al-Sarra"]));
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["S2A_34QEK_20240110_0_L2A"]
    );
    assert_eq!(covers(&rows, "S2A_34QEK_20240110_0_L2A"), 100.0);
    let text = search(&["--aoi", "southern-libya"]);
    assert!(text.contains("area: region southern-libya"), "{text}");
    let rows = listed(&text);
    assert_eq!(rows.len(), 4, "{text}");
    assert!(!rows.contains_key("S2A_39QZG_20240105_0_L2A"), "{text}");

    // The pair CSV of a place carries its box as the aoi file.
    let pairs = t.path().join("kufra.csv");
    let text = search(&["--aoi", "Kufra", "--pairs", pairs.to_str().unwrap()]);
    assert!(text.contains("suggested pair"), "{text}");
    let csv = String::from_utf8_lossy(&read(&pairs)).to_string();
    assert!(csv.trim_end().ends_with(",kufra-aoi.geojson"), "{csv}");
    let aoi: serde_json::Value =
        serde_json::from_slice(&read(&t.path().join("kufra-aoi.geojson"))).unwrap();
    let ring = aoi["features"][0]["geometry"]["coordinates"][0]
        .as_array()
        .unwrap();
    let xs: Vec<f64> = ring.iter().map(|p| p[0].as_f64().unwrap()).collect();
    let w = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let half = 10.0 * lon_deg_per_km(lat);
    assert!((w - (lon - half)).abs() < 1e-4, "west edge {w}");

    // A name that is no place: one line naming it.
    let o = dunewatch(&["scenes", "--stac", &stac, "--aoi", "Atlantis"]);
    let err = one_line_error(&o);
    assert!(err.contains("Atlantis"), "{err}");
}

/// Writes `www/scl.tif` (a 20 m SCL COG in UTM 34N near Kufra: cloud over
/// its upper-right half, cloud shadow in a checker of blocks, a strip of
/// nodata) and `aoi.geojson` (a lon/lat triangle over the lower-left half),
/// and counts with GDAL's Python bindings, pixel centre by pixel centre,
/// the cloud share inside the triangle and over the whole raster.
/// Returns (item footprint [w, s, e, n], inside %, whole %).
fn scl_fixture(dir: &Path) -> ([f64; 4], f64, f64) {
    let script = r#"
import json, sys
from osgeo import gdal, osr
d = sys.argv[1]
utm = osr.SpatialReference(); utm.ImportFromEPSG(32634)
ll = osr.SpatialReference(); ll.ImportFromEPSG(4326)
for s in (utm, ll):
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
to_ll = osr.CoordinateTransformation(utm, ll)
to_utm = osr.CoordinateTransformation(ll, utm)
n, px, x0, y0 = 300, 20.0, 730000.0, 2680000.0
def cls(r, c):
    if r < 6: return 0
    if c > r + 20: return 9
    if (r // 12 + c // 12) % 5 == 0: return 3
    return 4 + (r + c) % 2
rows = [[cls(r, c) for c in range(n)] for r in range(n)]
mem = gdal.GetDriverByName("MEM").Create("", n, n, 1, gdal.GDT_Byte)
mem.SetGeoTransform((x0, px, 0, y0, 0, -px)); mem.SetProjection(utm.ExportToWkt())
mem.GetRasterBand(1).WriteRaster(0, 0, n, n, bytes(v for row in rows for v in row))
mem.GetRasterBand(1).SetNoDataValue(0)
gdal.Translate(f"{d}/www/scl.tif", mem, format="COG", creationOptions=["BLOCKSIZE=256", "COMPRESS=DEFLATE"])
# The triangle, in pixel units, then lon/lat.
tri = [(15.3, 10.7), (15.3, 290.2), (287.9, 290.2), (15.3, 10.7)]
ring = [list(to_ll.TransformPoint(x0 + px * c, y0 - px * r)[:2]) for c, r in tri]
json.dump({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
           "geometry": {"type": "Polygon", "coordinates": [ring]}}]}, open(f"{d}/aoi.geojson", "w"))
# Back in UTM, as pixel units: what the reader gets.
poly = []
for lon, lat in ring:
    x, y = to_utm.TransformPoint(lon, lat)[:2]
    poly.append(((x - x0) / px, (y0 - y) / px))
def inside(x, y):
    hit = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit
def share(keep):
    valid = cloud = 0
    for r in range(n):
        for c in range(n):
            v = rows[r][c]
            if v and keep(r, c):
                valid += 1; cloud += v in (3, 8, 9, 10)
    return 100.0 * cloud / valid
fp = [to_ll.TransformPoint(x0 + px * c, y0 - px * r)[:2] for c in (0, n) for r in (0, n)]
print(json.dumps({"footprint": [min(p[0] for p in fp), min(p[1] for p in fp),
                                max(p[0] for p in fp), max(p[1] for p in fp)],
                  "inside": share(lambda r, c: inside(c + 0.5, r + 0.5)),
                  "whole": share(lambda r, c: True)}))
"#;
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let o = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .expect("run /usr/bin/python3 (with GDAL's Python bindings)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fp: Vec<f64> = serde_json::from_value(v["footprint"].clone()).unwrap();
    (
        [fp[0], fp[1], fp[2], fp[3]],
        v["inside"].as_f64().unwrap(),
        v["whole"].as_f64().unwrap(),
    )
}

#[test]
fn aoi_cloud_counts_only_the_scl_pixels_inside_the_area() {
    let t = tempfile::tempdir().unwrap();
    let (fp, inside, whole) = scl_fixture(t.path());
    // The triangle is clear where the rest of its box is cloudy.
    assert!(whole - inside > 20.0, "inside {inside}%, whole {whole}%");
    let port = free_port();
    let mut item = footprint_item("S2A_34RGM_20240105_0_L2A", "2024-01-05T08:40:00Z", 50.0, fp);
    item["assets"]["scl"] = serde_json::json!({
        "href": format!("http://127.0.0.1:{port}/scl.tif"),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"]});
    write_catalogue(t.path(), "item.json", &item);
    let servers = Servers::start(t.path(), port, free_port());
    let aoi = t.path().join("aoi.geojson");
    let o = dunewatch(&[
        "scenes",
        "--stac",
        &servers.stac(),
        "--aoi",
        aoi.to_str().unwrap(),
        "--aoi-cloud",
    ]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    let rows = listed(&text);
    let measured: f64 = rows["S2A_34RGM_20240105_0_L2A"][5].parse().unwrap();
    assert!(
        (measured - inside).abs() <= 0.05,
        "aoi cloud {measured}%, counted inside the triangle {inside:.3}%: {text}"
    );
    // Read from the server, by range requests.
    let scl: Vec<_> = servers
        .requests()
        .into_iter()
        .filter(|r| r.0 == "GET" && r.1 == "/scl.tif")
        .collect();
    assert!(!scl.is_empty() && scl.iter().all(|r| r.2 == 206), "{scl:?}");
}

#[test]
fn watch_follows_a_scenes_item_list_and_item_urls_in_date_order() {
    use gdal::vector::LayerAccess;
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    let (b, a) = (json(&before), json(&after));
    // A third date: the after scene's own pixels again, three months on
    // (nothing changed since), listed first in the catalogue.
    let later = variant(
        &a,
        "S2B_40QBM_20180615_0_L1C",
        "2018-06-15T06:59:19.000000Z",
        0.5,
    );
    let catalogue = serde_json::json!({"type": "FeatureCollection", "features": [later, b, a]});
    write_catalogue(t.path(), "items.json", &catalogue);
    let servers = Servers::start(t.path(), port, free_port());
    let item_url = |id: &str| format!("{}/collections/sentinel-2-l1c/items/{id}", servers.stac());
    let ids = [
        "S2A_39QZG_20160120_0_L1C",
        "S2B_40QBM_20180328_0_L1C",
        "S2B_40QBM_20180615_0_L1C",
    ];

    // `scenes --items`: every item, oldest first, by URL, with the area.
    let list = t.path().join("lists/abudhabi.csv");
    let o = scenes_over_aoi(&servers, "2016-01-01", &["--items", list.to_str().unwrap()]);
    assert_ok(&o);
    let csv = String::from_utf8_lossy(&read(&list)).to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,date,tile,cloud,covers,item,aoi", "{csv}");
    assert_eq!(lines.len(), 4, "{csv}");
    for (l, id) in lines[1..].iter().zip(ids) {
        assert!(l.starts_with(&format!("{id},")), "{csv}");
        assert!(
            l.ends_with(&format!(",{},abudhabi-aoi.geojson", item_url(id))),
            "{csv}"
        );
    }

    // `watch` on the list: the consecutive comparisons in date order, over
    // the list's area.
    let out = t.path().join("out");
    let reg = t.path().join("w.gpkg");
    let o = dunewatch(&[
        "watch",
        list.to_str().unwrap(),
        "--register",
        reg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_ok(&o);
    let pairs = [
        ("2016-01-20_2018-03-28", ids[0], ids[1]),
        ("2018-03-28_2018-06-15", ids[1], ids[2]),
    ];
    for (d, bi, ai) in pairs {
        let run: serde_json::Value =
            serde_json::from_slice(&read(&out.join(d).join("run.json"))).unwrap();
        assert_eq!(run["before"]["path"], item_url(bi), "{d}");
        assert_eq!(run["after"]["path"], item_url(ai), "{d}");
        // Clipped to the list's area.
        assert!(
            run["aoi"]
                .as_str()
                .is_some_and(|s| s.contains("abudhabi-aoi")),
            "{d}: {}",
            run["aoi"]
        );
    }
    let rows = gpkg_rows(
        &reg,
        "SELECT before_date, after_date FROM runs ORDER BY after_date",
    );
    assert_eq!(rows, ["2016-01-20|2018-03-28", "2018-03-28|2018-06-15"]);
    // The real changes appeared between the first two dates; the third,
    // with nothing new, confirmed them.
    let first = gpkg_rows(
        &reg,
        "SELECT COUNT(*) FROM sites WHERE appeared_after = '2016-01-20' AND appeared_by = '2018-03-28'",
    )[0]
    .parse::<i64>()
    .unwrap();
    let confirmed = gpkg_rows(
        &reg,
        "SELECT COUNT(*) FROM sites WHERE appeared_by = '2018-03-28' AND confidence = 'medium'",
    )[0]
    .parse::<i64>()
    .unwrap();
    assert!(first > 10, "{first}");
    assert!(
        confirmed as f64 >= 0.9 * first as f64,
        "{confirmed} of {first}"
    );

    // Item URLs given out of order: sorted by the items' datetimes into the
    // same comparisons (found finished in `out`, so only registered).
    let reg2 = t.path().join("w2.gpkg");
    let aoi = t.path().join("lists/abudhabi-aoi.geojson");
    let o = dunewatch(&[
        "watch",
        &item_url(ids[2]),
        &item_url(ids[0]),
        &item_url(ids[1]),
        "--aoi",
        aoi.to_str().unwrap(),
        "--register",
        reg2.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!(
            "[1/2] 2016-01-20 -> 2018-03-28: {} -> {}",
            item_url(ids[0]),
            item_url(ids[1])
        )),
        "{text}"
    );
    let q = "SELECT run_id, before_date, after_date, sites FROM runs ORDER BY after_date";
    assert_eq!(gpkg_rows(&reg2, q), gpkg_rows(&reg, q));
    let ds = gdal::Dataset::open(&reg2).unwrap();
    assert_eq!(
        ds.layer_by_name("sites").unwrap().feature_count() as i64,
        gpkg_rows(&reg, "SELECT COUNT(*) FROM sites")[0]
            .parse::<i64>()
            .unwrap()
    );
    servers.stop();
}
