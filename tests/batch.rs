//! `dunewatch batch` end to end on the sample tiles: every pair run into its
//! own folder, failures isolated, resumption, shards over one folder, and
//! the index (batch.csv, merged sites) against the pairs' own outputs.

#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use serde_json::Value;
use std::path::Path;

fn write_list(dir: &Path, rows: &[(&str, &Path, &Path)]) -> std::path::PathBuf {
    let mut t = String::from("name,before,after\n");
    for (n, b, a) in rows {
        t.push_str(&format!("{n},{},{}\n", b.display(), a.display()));
    }
    let p = dir.join("pairs.csv");
    std::fs::write(&p, t).unwrap();
    p
}

fn batch(list: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "batch",
        list.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    dunewatch(&args)
}

fn index_rows(out: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(out.join("batch.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn col(rows: &[Vec<String>], row: usize, name: &str) -> String {
    let c = rows[0].iter().position(|h| h == name).unwrap();
    rows[row][c].clone()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn runs_every_pair_keeps_going_past_a_bad_one_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("no_such_scene");
    let list = write_list(
        d.path(),
        &[
            ("first", &sample_before(), &sample_after()),
            ("broken", &missing, &sample_after()),
            ("second", &sample_before(), &sample_after()),
        ],
    );
    let out = d.path().join("out");
    let o = batch(&list, &out, &["--chips", "2"]);
    assert!(!o.status.success(), "a failed pair must fail the batch");
    let err = String::from_utf8_lossy(&o.stderr);
    let broken: Vec<&str> = err.lines().filter(|l| l.contains("broken")).collect();
    assert_eq!(broken.len(), 1, "one line for the bad pair: {err}");
    assert!(broken[0].contains("no_such_scene"), "names the file: {err}");

    // The good pairs are complete runs, the bad one left nothing finished.
    for p in ["first", "second"] {
        assert!(out.join(p).join("run.json").is_file());
        assert!(out.join(p).join("sites.geojson").is_file());
    }
    assert!(!out.join("broken").exists());

    let rows = index_rows(&out);
    assert_eq!(rows.len(), 4);
    assert_eq!(col(&rows, 1, "status"), "done");
    assert_eq!(col(&rows, 2, "status"), "failed");
    assert!(col(&rows, 2, "error").contains("no_such_scene"));
    assert_eq!(col(&rows, 3, "status"), "done");

    // Merged sites: both pairs are the same scenes, so every site once,
    // from the first pair, listing both pairs; ids unique, chips pointing
    // into the pair folder.
    let first = json(&out.join("first/sites.geojson"));
    let n = first["features"].as_array().unwrap().len();
    assert!(n > 10);
    assert_eq!(col(&rows, 1, "sites"), n.to_string());
    let merged = json(&out.join("sites.geojson"));
    let feats = merged["features"].as_array().unwrap();
    assert_eq!(feats.len(), n);
    assert_eq!(merged["type"], "FeatureCollection");
    let mut ids: Vec<&str> = feats.iter().map(|f| f["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    for f in feats {
        assert_eq!(f["properties"]["pair"], "first");
        assert_eq!(
            f["properties"]["pairs"],
            serde_json::json!(["first", "second"])
        );
    }
    assert_eq!(feats[0]["geometry"], first["features"][0]["geometry"]);
    let chip = feats[0]["properties"]["chip"].as_str().unwrap();
    assert!(out.join(chip).is_file(), "{chip}");
    let lon = feats[0]["properties"]["centroid_lon"].as_f64().unwrap();
    assert!(
        (54.0..55.0).contains(&lon),
        "longitude first (RFC 7946): {lon}"
    );
    let csv = std::fs::read_to_string(out.join("sites.csv")).unwrap();
    let csv_rows: Vec<&str> = csv.lines().collect();
    assert_eq!(csv_rows.len(), 1 + n);
    assert!(csv_rows[0].starts_with("pair,id,") && csv_rows[0].ends_with(",pairs"));
    assert!(csv_rows[1].starts_with("first,") && csv_rows[1].contains(",first/chips/"));
    assert!(csv_rows[1].ends_with(",first;second"));
    assert!(std::fs::read_to_string(out.join("index.html"))
        .unwrap()
        .contains("href=\"first/report.html\""));

    // Again: finished pairs are skipped, not rewritten.
    let stamp = |p: &str| {
        std::fs::metadata(out.join(p).join("run.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = stamp("first");
    let o = batch(&list, &out, &["--chips", "2"]);
    assert!(!o.status.success());
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(said.matches("done already, skipped").count(), 2, "{said}");
    assert_eq!(stamp("first"), before);
    assert_eq!(
        json(&out.join("sites.geojson"))["features"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
}

#[test]
fn shards_share_one_folder_and_the_index_shows_what_is_left() {
    let d = tempfile::tempdir().unwrap();
    let list = write_list(
        d.path(),
        &[
            ("a", &sample_before(), &sample_after()),
            ("b", &sample_before(), &sample_after()),
            ("c", &sample_before(), &sample_after()),
        ],
    );
    let out = d.path().join("out");
    assert_ok(&batch(&list, &out, &["--no-sites", "--shard", "2/2"]));
    assert!(out.join("b/run.json").is_file());
    assert!(!out.join("a").exists() && !out.join("c").exists());
    let rows = index_rows(&out);
    let status: Vec<String> = (1..4).map(|r| col(&rows, r, "status")).collect();
    assert_eq!(status, ["pending", "done", "pending"]);

    assert_ok(&batch(&list, &out, &["--no-sites", "--shard", "1/2"]));
    let rows = index_rows(&out);
    let status: Vec<String> = (1..4).map(|r| col(&rows, r, "status")).collect();
    assert_eq!(status, ["done", "done", "done"]);
    // The same scenes and options give the same change counts on every shard.
    assert_eq!(col(&rows, 1, "changed_px"), col(&rows, 2, "changed_px"));

    // The index alone is rebuilt from the folder.
    std::fs::remove_file(out.join("batch.csv")).unwrap();
    assert_ok(&batch(&list, &out, &["--index-only"]));
    assert_eq!(index_rows(&out).len(), 4);

    let o = batch(&list, &out, &["--shard", "3/2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard must be K/N"));
}

#[test]
fn a_folder_holding_other_scenes_is_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &out.join("kufra"),
        &[],
    ));
    // The list names other scenes for the folder's pair.
    let other = d.path().join("other_after");
    std::fs::create_dir(&other).unwrap();
    for e in std::fs::read_dir(sample_after()).unwrap() {
        let e = e.unwrap().path();
        std::fs::copy(&e, other.join(e.file_name().unwrap())).unwrap();
    }
    let list = write_list(d.path(), &[("kufra", &sample_before(), &other)]);
    let stamp = std::fs::metadata(out.join("kufra/run.json"))
        .unwrap()
        .modified()
        .unwrap();
    let o = batch(&list, &out, &["--no-sites"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holds a run of other scenes"), "{err}");
    assert_eq!(
        std::fs::metadata(out.join("kufra/run.json"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
}

#[test]
fn a_list_without_the_columns_is_a_one_line_error() {
    let d = tempfile::tempdir().unwrap();
    let list = d.path().join("pairs.csv");
    std::fs::write(&list, "city,first,second\nx,a,b\n").unwrap();
    let o = batch(&list, &d.path().join("out"), &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("pairs.csv") && err.contains("name, before, after"),
        "{err}"
    );
}
