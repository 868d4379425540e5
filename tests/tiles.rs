//! `dunewatch tiles` / `places` from the command line, and areas of interest
//! given as a point, place or region to `detect` and `sites`.

#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use serde_json::Value;
use std::path::Path;

fn stdout(o: &std::process::Output) -> String {
    assert_ok(o);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (tile, epsg, share %) rows of `dunewatch tiles` output.
fn rows(out: &str) -> Vec<(String, u32, f64)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [t, e, s] if t.len() == 5 && s.ends_with('%') => Some((
                    t.to_string(),
                    e.parse().ok()?,
                    s.trim_end_matches('%').parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

fn fails_with_one_line(o: &std::process::Output, must_say: &[&str]) {
    assert!(!o.status.success(), "must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for s in must_say {
        assert!(err.contains(s), "must say {s}: {err}");
    }
}

/// OSCD's Abu Dhabi area (its abudhabi.geojson), written to `dir`.
fn abu_dhabi_aoi(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("abudhabi.geojson");
    std::fs::write(
        &p,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[54.540252685546875,24.291407914292037],[54.61406707763672,24.291407914292037],[54.61406707763672,24.366488081551143],[54.540252685546875,24.366488081551143],[54.540252685546875,24.291407914292037]]]}}]}"#,
    )
    .unwrap();
    p
}

#[test]
fn abu_dhabi_is_in_both_oscd_tiles_with_footprints() {
    let t = tempfile::tempdir().unwrap();
    let aoi = abu_dhabi_aoi(t.path());
    let gj = t.path().join("footprints.geojson");
    let out = stdout(&dunewatch(&[
        "tiles",
        "--aoi",
        aoi.to_str().unwrap(),
        "--geojson",
        gj.to_str().unwrap(),
    ]));
    let r = rows(&out);
    // OSCD's before image is from 39QZG, the after image from 40QBM.
    assert!(r.contains(&("39QZG".into(), 32639, 100.0)), "{out}");
    assert!(r.contains(&("40QBM".into(), 32640, 100.0)), "{out}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&gj).unwrap()).unwrap();
    let feats = v["features"].as_array().unwrap();
    let zg = feats
        .iter()
        .find(|f| f["properties"]["tile"] == "39QZG")
        .expect("39QZG footprint");
    assert_eq!(zg["properties"]["epsg"], 32639);
    // 109.8 km from the 60 m-snapped corner of square ZG (E 800 km, N 2700 km).
    let b: Vec<f64> = serde_json::from_value(zg["properties"]["utm_bounds"].clone()).unwrap();
    assert_eq!(b, [799_980.0, 2_590_200.0, 909_780.0, 2_700_000.0]);
    let ring = zg["geometry"]["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.first(), ring.last(), "closed ring");
    for p in ring {
        let (lon, lat) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        assert!(
            (53.9..55.1).contains(&lon) && (23.3..24.4).contains(&lat),
            "{p}"
        );
    }
    // The area itself is in the file too.
    assert!(feats.iter().any(|f| f["properties"]["area"].is_string()));
}

#[test]
fn kufra_paris_and_the_region() {
    let out = stdout(&dunewatch(&["tiles", "Kufra"]));
    let r = rows(&out);
    let ids: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
    assert!(ids.contains(&"34RGM"), "{out}");
    assert!(!ids.contains(&"34QEK"), "34QEK is ~250 km away: {out}");
    assert!(out.contains("MGRS 34RGM"), "{out}");

    let out = stdout(&dunewatch(&["tiles", "--point", "48.853,2.3499"]));
    assert_eq!(rows(&out), [("31UDQ".to_string(), 32631, 100.0)], "{out}");

    let out = stdout(&dunewatch(&["tiles", "--region", "southern-libya"]));
    let r = rows(&out);
    assert!(r.len() > 100, "{}", r.len());
    assert!(r.iter().any(|x| x.0 == "34RGM"));
    // Tiles overlap: together they hold the region at least once.
    let sum: f64 = r.iter().map(|x| x.2).sum();
    assert!(sum >= 100.0, "{sum}");
    assert!(r.iter().all(|x| (32632..=32635).contains(&x.1)), "{out}");

    let out = stdout(&dunewatch(&["places"]));
    assert!(
        out.contains("HLKF") && out.contains("Kufra Airport"),
        "{out}"
    );
    assert!(
        out.contains("HL56") && out.contains("Maaten al-Sarra"),
        "{out}"
    );
    assert!(
        out.contains("licence MIT") && out.contains("airportsdata"),
        "{out}"
    );
    assert_eq!(stdout(&dunewatch(&["tiles", "--list-places"])), out);
}

#[test]
fn bad_areas_fail_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    fails_with_one_line(&dunewatch(&["tiles", "Atlantis"]), &["Atlantis", "places"]);
    fails_with_one_line(&dunewatch(&["tiles", "--point", "95,10"]), &["95,10"]);
    fails_with_one_line(
        &dunewatch(&["tiles", "--region", "kufra"]),
        &["--region kufra"],
    );
    let gj = t.path().join("no-such-dir/f.geojson");
    fails_with_one_line(
        &dunewatch(&["tiles", "Kufra", "--geojson", gj.to_str().unwrap()]),
        &["f.geojson"],
    );
    assert!(!gj.parent().unwrap().exists());
}

fn run_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// `--aoi LAT,LON --buffer-km` clips and masks exactly as the same box
/// given as a GeoJSON file; the sites step records its watchlist.
#[test]
fn detect_with_a_point_aoi() {
    let t = tempfile::tempdir().unwrap();
    let (lat, lon) = (24.33, 54.58);
    let area = dunewatch::scenes::area::Area::around_point(lat, lon, 2.0).unwrap();
    let file = t.path().join("box.geojson");
    std::fs::write(&file, area.to_geojson().to_string()).unwrap();

    let by_point = t.path().join("point");
    assert_ok(&detect_with_sites(
        &sample_before(),
        &sample_after(),
        &by_point,
        &["--aoi", "24.33,54.58", "--buffer-km", "2"],
    ));
    let by_file = t.path().join("file");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &by_file,
        &["--aoi", file.to_str().unwrap()],
    ));
    let (a, sa) = read_band(&by_point.join("change_mask.tif"));
    let (b, sb) = read_band(&by_file.join("change_mask.tif"));
    assert_eq!(sa, sb);
    assert_eq!(a, b, "same mask from the point and the file");
    // Clipped to the ~4 km box: far smaller than the 785 x 799 sample.
    assert!(sa.0 < 500 && sa.1 < 500, "{sa:?}");
    let j = run_json(&by_point);
    assert_eq!(j["aoi"], "24.33,54.58 (box of half-side 2 km)");
    assert_eq!(j["aoi_area"]["features"][0]["geometry"]["type"], "Polygon");
    assert!(run_json(&by_file)["aoi_area"].is_null());
    // Abu Dhabi is in no preset region: no default watchlist.
    assert_eq!(j["sites"]["watchlist"]["source"], "none");

    // A region's places as the watchlist, by name.
    assert_ok(&dunewatch(&[
        "sites",
        by_point.to_str().unwrap(),
        "--watchlist",
        "southern-libya",
    ]));
    let w = &run_json(&by_point)["sites"]["watchlist"];
    assert_eq!(w["source"], "preset");
    assert_eq!(w["name"], "southern-libya");
    assert_eq!(w["default"], false);
    assert!(w["points_count"].as_u64().unwrap() >= 10);
}

#[test]
fn detect_with_a_place_outside_the_scenes_fails_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("kufra");
    let o = detect(&sample_before(), &sample_after(), &out, &["--aoi", "Kufra"]);
    fails_with_one_line(&o, &["Kufra Airport", "does not overlap"]);
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_listing_piped_into_head_ends_quietly() {
    // The reader goes away before the listing is written (as `head` does
    // once it has its lines): the tool must stop without a panic message.
    let bin = env!("CARGO_BIN_EXE_dunewatch");
    for args in [&["tiles", "--region", "southern-libya"][..], &["places"]] {
        let mut child = std::process::Command::new(bin)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.trim().is_empty(), "{args:?}: nothing on stderr: {err}");
    }
}
