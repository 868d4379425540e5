//! Remote scenes end to end, against real servers on 127.0.0.1 (nginx with
//! range requests, `rustac serve` as the STAC API; see
//! scripts/test_servers.sh): STAC items as scenes read window by window
//! through `/vsicurl/`, search, fetch, and clean failures.

#[path = "common/scenes.rs"]
mod scenes;
#[path = "common/stac_fixture.rs"]
mod stac_fixture;

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

fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    err
}

#[test]
fn detect_on_remote_items_matches_the_same_files_read_locally() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    let servers = Servers::start(t.path(), port, free_port());
    let aoi = t.path().join("aoi.geojson");
    write_aoi(&aoi, AOI[0], AOI[1], AOI[2], AOI[3]);
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

    let url = |p: &Path| {
        format!(
            "{}/{}",
            servers.www(),
            p.file_name().unwrap().to_str().unwrap()
        )
    };
    let (bu, au) = (url(&before), url(&after));
    let remote = t.path().join("remote");
    let o = dunewatch(&[
        "detect",
        "--quiet",
        "--no-sites",
        "--before",
        &bu,
        "--after",
        &au,
        "--out",
        remote.to_str().unwrap(),
        "--aoi",
        aoi,
    ]);
    assert_ok(&o);
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
    let with_sites = t.path().join("remote-sites");
    let o = dunewatch(&[
        "detect",
        "--quiet",
        "--before",
        &bu,
        "--after",
        &au,
        "--out",
        with_sites.to_str().unwrap(),
        "--aoi",
        aoi,
    ]);
    assert_ok(&o);
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
    let url = |p: &Path| {
        format!(
            "{}/{}",
            servers.www(),
            p.file_name().unwrap().to_str().unwrap()
        )
    };
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
    let port = free_port();
    // Items whose assets come through nginx's throttled /slow/ location.
    let (before, after) = abudhabi_site(t.path(), port, "slow/");
    let servers = Servers::start(t.path(), port, free_port());
    let url = |p: &Path| {
        format!(
            "{}/{}",
            servers.www(),
            p.file_name().unwrap().to_str().unwrap()
        )
    };
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
    let b: serde_json::Value = serde_json::from_slice(&read(&before)).unwrap();
    let a: serde_json::Value = serde_json::from_slice(&read(&after)).unwrap();
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
    std::fs::create_dir_all(t.path().join("stac")).unwrap();
    std::fs::write(t.path().join("stac/items.json"), catalogue.to_string()).unwrap();
    let servers = Servers::start(t.path(), port, free_port());

    let pairs = t.path().join("lists/abudhabi.csv");
    let bbox = format!("{},{},{},{}", AOI[0], AOI[1], AOI[2], AOI[3]);
    let o = dunewatch(&[
        "scenes",
        "--stac",
        &servers.stac(),
        "--collection",
        "sentinel-2-l1c",
        "--bbox",
        &bbox,
        "--from",
        "2016-01-01",
        "--to",
        "2018-12-31",
        "--max-cloud",
        "20",
        "--pairs",
        pairs.to_str().unwrap(),
    ]);
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
    let o = dunewatch(&[
        "scenes",
        "--stac",
        &servers.stac(),
        "--collection",
        "sentinel-2-l1c",
        "--bbox",
        &bbox,
        "--from",
        "2018-03-20",
        "--to",
        "2018-12-31",
    ]);
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
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    let servers = Servers::start(t.path(), port, free_port());
    let aoi = t.path().join("aoi.geojson");
    write_aoi(&aoi, AOI[0], AOI[1], AOI[2], AOI[3]);
    let aoi = aoi.to_str().unwrap();
    let url = |p: &Path| {
        format!(
            "{}/{}",
            servers.www(),
            p.file_name().unwrap().to_str().unwrap()
        )
    };
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

/// The rows of an SQL query on a GeoPackage, fields joined by `|`.
fn gpkg_rows(path: &Path, sql: &str) -> Vec<String> {
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).unwrap();
    let mut rs = ds
        .execute_sql(sql, None, gdal::vector::sql::Dialect::SQLITE)
        .unwrap()
        .unwrap();
    rs.features()
        .map(|f| {
            (0..f.field_count())
                .map(|i| f.field_as_string(i).unwrap().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[test]
fn watch_follows_a_scenes_item_list_and_item_urls_in_date_order() {
    use gdal::vector::LayerAccess;
    let t = tempfile::tempdir().unwrap();
    let port = free_port();
    let (before, after) = abudhabi_site(t.path(), port, "");
    let b: serde_json::Value = serde_json::from_slice(&read(&before)).unwrap();
    let a: serde_json::Value = serde_json::from_slice(&read(&after)).unwrap();
    // A third date: the after scene's own pixels again, three months on
    // (nothing changed since), listed first in the catalogue.
    let later = variant(
        &a,
        "S2B_40QBM_20180615_0_L1C",
        "2018-06-15T06:59:19.000000Z",
        0.5,
    );
    let catalogue = serde_json::json!({"type": "FeatureCollection", "features": [later, b, a]});
    std::fs::create_dir_all(t.path().join("stac")).unwrap();
    std::fs::write(t.path().join("stac/items.json"), catalogue.to_string()).unwrap();
    let servers = Servers::start(t.path(), port, free_port());
    let item_url = |id: &str| format!("{}/collections/sentinel-2-l1c/items/{id}", servers.stac());
    let ids = [
        "S2A_39QZG_20160120_0_L1C",
        "S2B_40QBM_20180328_0_L1C",
        "S2B_40QBM_20180615_0_L1C",
    ];

    // `scenes --items`: every item, oldest first, by URL, with the area.
    let list = t.path().join("lists/abudhabi.csv");
    let bbox = format!("{},{},{},{}", AOI[0], AOI[1], AOI[2], AOI[3]);
    let o = dunewatch(&[
        "scenes",
        "--stac",
        &servers.stac(),
        "--collection",
        "sentinel-2-l1c",
        "--bbox",
        &bbox,
        "--from",
        "2016-01-01",
        "--to",
        "2018-12-31",
        "--items",
        list.to_str().unwrap(),
    ]);
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
