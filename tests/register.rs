//! The site register on real data: the Abu Dhabi sample pair, run on both
//! of its grids (before/after swapped puts the run on the other tile's
//! grid), and later dates made from the after scene's own pixels.
//!
//! The later dates are synthetic: the after folder is copied with a new
//! date in its file names, and blocks of every band are overwritten with
//! pixels copied from a bright built-up area of the same scene (pasted
//! "structures" on open sand). Real pixels, known positions and dates.

#[path = "common/gpkg.rs"]
mod gpkg;

use gdal::vector::{Geometry, LayerAccess};
use gdal::Dataset;
use gpkg::rows as text;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dunewatch"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{:?} failed:\n{so}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should have failed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn detect(before: &Path, after: &Path, out: &Path) {
    // The tests match the same pair's sites across its two grids by running
    // it both ways round; the combined score flags change in either
    // direction, the learned (default) method mostly new structures only.
    run_ok(
        bin()
            .args(["detect", "-q", "--method", "combined", "--before"])
            .arg(before)
            .arg("--after")
            .arg(after)
            .arg("--out")
            .arg(out),
    );
}

/// Detect runs shared by the tests (each takes seconds).
struct Runs {
    _dir: tempfile::TempDir,
    /// before -> after, on the before tile's (39QZG) grid.
    forward: PathBuf,
    /// after -> before, on the after tile's (40QBM) grid.
    swapped: PathBuf,
}

fn runs() -> &'static Runs {
    static R: OnceLock<Runs> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ad = repo().join("sample_tiles/abudhabi");
        let forward = root.join("forward");
        let swapped = root.join("swapped");
        detect(&ad.join("before"), &ad.join("after"), &forward);
        detect(&ad.join("after"), &ad.join("before"), &swapped);
        Runs {
            _dir: dir,
            forward,
            swapped,
        }
    })
}

fn add(reg: &Path, runs: &[&Path]) -> String {
    let mut c = bin();
    c.args(["register", "add"]);
    for r in runs {
        c.arg(r);
    }
    run_ok(c.arg("--into").arg(reg))
}

fn count(reg: &Path, sql: &str) -> i64 {
    let ds = Dataset::open(reg).unwrap();
    let mut rs = ds
        .execute_sql(sql, None, gdal::vector::sql::Dialect::SQLITE)
        .unwrap()
        .unwrap();
    let f = rs.features().next().unwrap();
    f.field_as_integer64(0).unwrap().unwrap_or(0)
}

/// An edit as an analyst makes it with ogr/sqlite: SQL through GDAL.
fn edit(reg: &Path, sql: &str) {
    let ds = gdal::Dataset::open_ex(
        reg,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        },
    )
    .unwrap();
    ds.execute_sql(sql, None, gdal::vector::sql::Dialect::SQLITE)
        .unwrap();
}

/// A JSON file's contents.
fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Writes `dst`: the JSON of `src` changed by `f`.
fn edit_json(src: &Path, dst: &Path, f: impl FnOnce(&mut Value)) {
    let mut v = json(src);
    f(&mut v);
    std::fs::write(dst, v.to_string()).unwrap();
}

/// `dunewatch register report`: the HTML it writes.
fn report(reg: &Path, out: &Path) -> String {
    run_ok(
        bin()
            .args(["register", "report"])
            .arg(reg)
            .arg("--out")
            .arg(out),
    );
    std::fs::read_to_string(out.join("register.html")).unwrap()
}

/// A copy of a finished run as if made with other options (a different
/// fingerprint), its sites changed by `f`.
fn variant(src: &Path, dst: &Path, f: impl Fn(&mut Value)) {
    std::fs::create_dir_all(dst).unwrap();
    edit_json(&src.join("run.json"), &dst.join("run.json"), |run| {
        run["detect"]["threshold"] = Value::from(0.91)
    });
    edit_json(&src.join("sites.geojson"), &dst.join("sites.geojson"), f);
}

#[test]
fn same_pair_twice_adds_no_site_and_review_edits_survive() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("watch.gpkg");
    add(&reg, &[&r.forward]);
    let n = count(&reg, "SELECT COUNT(*) FROM sites");
    assert!(n > 100, "{n} sites");
    assert_eq!(
        count(&reg, "SELECT COUNT(*) FROM sites WHERE status = 'new'"),
        n
    );
    // The same run again (same fingerprint): nothing changes.
    let out = add(&reg, &[&r.forward]);
    assert!(out.contains("in the register already"), "{out}");
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM observations"), n);

    // The analyst reviews three sites through GDAL (ogr SQL).
    edit(
        &reg,
        "UPDATE sites SET review = 'confirmed', note = 'new hangar, checked', \
         reviewed_by = 'ana' WHERE site_id = 1",
    );
    edit(
        &reg,
        "UPDATE sites SET review = 'dismissed' WHERE site_id IN (2, 3)",
    );
    let a3 = count(
        &reg,
        "SELECT CAST(area_m2 AS INTEGER) FROM sites WHERE site_id = 3",
    );

    // The same pair detected again with other options: every site matches
    // (same outlines), none is added. Site 3 grew to 3x its area.
    let grown_run = dir.path().join("again");
    let s3_run_id = count(
        &reg,
        "SELECT run_site_id FROM observations WHERE site_id = 3",
    );
    variant(&r.forward, &grown_run, |fc| {
        for f in fc["features"].as_array_mut().unwrap() {
            if f["properties"]["id"] == s3_run_id {
                let g = Geometry::from_geojson(&f["geometry"].to_string()).unwrap();
                // About 3x the area: 30 m around a site some 40 m across.
                let big = g.buffer(0.0003, 4).unwrap();
                f["geometry"] = serde_json::from_str(&big.json().unwrap()).unwrap();
                f["properties"]["area_m2"] = Value::from(3.2 * a3 as f64);
            }
        }
    });
    let out = add(&reg, &[&grown_run]);
    assert!(out.contains(" 0 new"), "{out}");
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM sites"), n);
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM runs"), 2);
    // Edits survive; the dismissed sites stay dismissed; only the one that
    // grew beyond the factor comes back.
    assert_eq!(
        text(
            &reg,
            "SELECT review, note, reviewed_by FROM sites WHERE site_id = 1"
        ),
        vec!["confirmed|new hangar, checked|ana"]
    );
    assert_eq!(
        text(&reg, "SELECT review, status FROM sites WHERE site_id = 2"),
        vec!["dismissed|seen_again"]
    );
    assert_eq!(
        text(&reg, "SELECT review, status FROM sites WHERE site_id = 3"),
        vec!["dismissed|changed_since_review"]
    );
    assert_eq!(
        count(&reg, "SELECT times_seen FROM sites WHERE site_id = 1"),
        2
    );
    // The register report lists unreviewed sites first.
    let html = report(&reg, &dir.path().join("rep"));
    let first_unrev = html.find("class=\"unreviewed\"").unwrap();
    let first_dism = html.find("class=\"dismissed\"").unwrap();
    assert!(first_unrev < first_dism);
    assert!(html.contains("data:image/png;base64,"), "chips embedded");

    // --new-only: the other grid's run, restricted to what the register
    // has not seen (its latest run added nothing new).
    let copy = dir.path().join("swapped_copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&r.swapped).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
        }
    }
    let reg_before = std::fs::read(&reg).unwrap();
    run_ok(
        bin()
            .args(["sites", "-q", "--new-only", "--register"])
            .arg(&reg)
            .arg(&copy),
    );
    assert_eq!(
        std::fs::read(&reg).unwrap(),
        reg_before,
        "--new-only only reads"
    );
    let kept = json(&copy.join("sites.geojson"))["features"]
        .as_array()
        .unwrap()
        .len();
    let all = json(&r.swapped.join("sites.geojson"))["features"]
        .as_array()
        .unwrap()
        .len();
    assert!(kept > 0 && kept * 5 < all, "{kept} of {all}");
    let report = std::fs::read_to_string(copy.join("report.html")).unwrap();
    assert!(report.contains(&format!("{kept} sites")) || report.contains(&kept.to_string()));
    // They are exactly the sites adding the whole run would make new.
    let reg2 = dir.path().join("copy.gpkg");
    std::fs::copy(&reg, &reg2).unwrap();
    add(&reg2, &[&r.swapped]);
    assert_eq!(
        count(&reg2, "SELECT new FROM runs ORDER BY fid DESC LIMIT 1"),
        kept as i64
    );
}

#[test]
fn a_grown_site_is_flagged() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("g.gpkg");
    add(&reg, &[&r.forward]);
    let s1 = count(
        &reg,
        "SELECT run_site_id FROM observations WHERE site_id = 1",
    );
    let grown = dir.path().join("grown");
    variant(&r.forward, &grown, |fc| {
        for f in fc["features"].as_array_mut().unwrap() {
            if f["properties"]["id"] == s1 {
                let g = Geometry::from_geojson(&f["geometry"].to_string()).unwrap();
                let big = g.buffer(0.0003, 4).unwrap();
                let a = f["properties"]["area_m2"].as_f64().unwrap();
                f["geometry"] = serde_json::from_str(&big.json().unwrap()).unwrap();
                f["properties"]["area_m2"] = Value::from(2.5 * a);
            }
        }
    });
    add(&reg, &[&grown]);
    assert_eq!(
        text(&reg, "SELECT status, review FROM sites WHERE site_id = 1"),
        vec!["grown|unreviewed"]
    );
    assert_eq!(
        count(&reg, "SELECT COUNT(*) FROM sites WHERE status = 'grown'"),
        1
    );
    let first = count(
        &reg,
        "SELECT CAST(area_first_m2 AS INTEGER) FROM sites WHERE site_id = 1",
    );
    let now = count(
        &reg,
        "SELECT CAST(area_m2 AS INTEGER) FROM sites WHERE site_id = 1",
    );
    assert!(now as f64 > 2.0 * first as f64, "{first} -> {now}");
}

#[test]
fn matching_holds_across_the_two_grids() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("x.gpkg");
    add(&reg, &[&r.forward]);
    let n1 = count(&reg, "SELECT COUNT(*) FROM sites");
    add(&reg, &[&r.swapped]);
    let grids = text(&reg, "SELECT DISTINCT grid FROM runs");
    assert_eq!(grids.len(), 2, "two grids: {grids:?}");
    let n2 = count(&reg, "SELECT COUNT(*) FROM observations WHERE run_id = (SELECT run_id FROM runs ORDER BY fid DESC LIMIT 1)");
    let new = count(&reg, "SELECT new FROM runs ORDER BY fid DESC LIMIT 1");
    // Most sites of the second grid are the first grid's sites again.
    assert!(
        (new as f64) < 0.2 * n2 as f64,
        "{new} of {n2} sites new on the other grid"
    );
    assert_eq!(
        count(&reg, "SELECT COUNT(*) FROM sites"),
        n1 + new + count(&reg, "SELECT split FROM runs ORDER BY fid DESC LIMIT 1")
    );
    // Splits and merges are recorded on the sites.
    assert_eq!(
        count(
            &reg,
            "SELECT COUNT(*) FROM sites WHERE split_from IS NOT NULL"
        ),
        count(&reg, "SELECT SUM(split) FROM runs")
    );
    assert_eq!(
        count(
            &reg,
            "SELECT COUNT(*) FROM sites WHERE merged_into IS NOT NULL"
        ),
        count(&reg, "SELECT SUM(merged) FROM runs")
    );
    // The backwards comparison is kept forward in time.
    assert_eq!(
        text(
            &reg,
            "SELECT DISTINCT before_date || ' ' || after_date FROM runs"
        ),
        vec!["2016-01-20 2018-03-28"]
    );
    // GDAL's own tool opens the register and lists its layers.
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-q"])
        .arg(&reg)
        .output()
        .expect("ogrinfo (gdal-bin) installed");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for l in [
        "sites (Multi Polygon)",
        "observations (Multi Polygon)",
        "runs (Polygon)",
        "compounds (Multi Polygon)",
    ] {
        assert!(s.contains(l), "{s}");
    }
}

/// A copy of a finished run with its compounds (made with other options:
/// another fingerprint), its after date and its compounds changed.
fn compounds_variant(src: &Path, dst: &Path, after: &str, f: impl Fn(&mut Vec<Value>)) {
    variant(src, dst, |_| {});
    let run = dst.join("run.json");
    edit_json(&run, &run, |run| run["after"]["date"] = Value::from(after));
    edit_json(
        &src.join("compounds.geojson"),
        &dst.join("compounds.geojson"),
        |fc| f(fc["features"].as_array_mut().unwrap()),
    );
}

#[test]
fn an_older_register_gets_the_compounds_layer_and_its_columns() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let n = json(&r.forward.join("compounds.geojson"))["features"]
        .as_array()
        .unwrap()
        .len() as i64;
    let ogr = |reg: &Path, sql: &str| {
        let o = Command::new("ogrinfo")
            .arg(reg)
            .args(["-q", "-sql", sql])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let columns = |reg: &Path| -> Vec<String> {
        let ds = Dataset::open(reg).unwrap();
        let layer = ds.layer_by_name("compounds").unwrap();
        let names = layer.defn().fields().map(|f| f.name()).collect();
        names
    };
    // Made before compounds existed: no layer.
    let reg = dir.path().join("no_compounds.gpkg");
    add(&reg, &[&r.forward]);
    ogr(&reg, "DROP TABLE compounds");
    assert!(Dataset::open(&reg)
        .unwrap()
        .layer_by_name("compounds")
        .is_err());
    let later = dir.path().join("later");
    compounds_variant(&r.forward, &later, "2018-06-15", |_| {});
    add(&reg, &[&later]);
    assert_eq!(
        count(&reg, "SELECT COUNT(*) FROM compounds WHERE status = 'new'"),
        n
    );

    // Made before splits and merges were recorded: no such columns.
    let reg = dir.path().join("no_split_columns.gpkg");
    add(&reg, &[&r.forward]);
    ogr(&reg, "ALTER TABLE compounds DROP COLUMN merged_into");
    ogr(&reg, "ALTER TABLE compounds DROP COLUMN split_from");
    assert!(!columns(&reg).contains(&"split_from".to_string()));
    add(&reg, &[&later]);
    let cols = columns(&reg);
    assert!(
        cols.contains(&"split_from".to_string()) && cols.contains(&"merged_into".to_string()),
        "{cols:?}"
    );
    assert_eq!(
        count(&reg, "SELECT COUNT(*) FROM compounds WHERE times_seen = 2"),
        n
    );
}

#[test]
fn the_analyst_reviews_from_the_command_line_and_runs_keep_it() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("r.gpkg");
    add(&reg, &[&r.forward]);
    let review = |args: &[&str]| {
        let mut c = bin();
        c.args(["register", "review"]).arg(&reg).args(args);
        c
    };
    let out = run_ok(&mut review(&[
        "--site",
        "3",
        "--site",
        "5",
        "--set",
        "dismissed",
        "--note",
        "salt works",
        "--by",
        "ana",
    ]));
    assert!(out.contains("2 sites set to dismissed"), "{out}");
    let out = run_ok(&mut review(&["--compound", "1", "--set", "watch"]));
    assert!(out.contains("1 compound set to watch"), "{out}");
    let rows = text(
        &reg,
        "SELECT site_id, review, note, reviewed_by, length(reviewed_at) FROM sites \
         WHERE review != 'unreviewed' ORDER BY site_id",
    );
    assert_eq!(
        rows,
        [
            "3|dismissed|salt works|ana|20",
            "5|dismissed|salt works|ana|20"
        ]
    );
    assert_eq!(
        text(
            &reg,
            "SELECT compound_id, review FROM compounds WHERE review != 'unreviewed'"
        ),
        ["1|watch"]
    );

    // An unknown id, an unknown review or no register: one line, nothing changed.
    let before = std::fs::read(&reg).unwrap();
    let err = run_err(&mut review(&[
        "--site",
        "3",
        "--site",
        "999999",
        "--set",
        "confirmed",
    ]));
    assert!(
        err.contains("no site 999999 in the register; nothing was changed"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    run_err(&mut review(&["--site", "3", "--set", "maybe"]));
    assert!(
        std::fs::read(&reg).unwrap() == before,
        "the register changed"
    );
    let err = run_err(
        bin()
            .args(["register", "review"])
            .arg(dir.path().join("none.gpkg"))
            .args(["--site", "1", "--set", "watch"]),
    );
    assert!(err.contains("none.gpkg: no such register"), "{err}");

    // A later run keeps the reviews, and the report shows them.
    let later = dir.path().join("later");
    compounds_variant(&r.forward, &later, "2018-06-15", |_| {});
    add(&reg, &[&later]);
    assert_eq!(
        text(
            &reg,
            "SELECT site_id, review, note FROM sites WHERE review != 'unreviewed' ORDER BY site_id"
        ),
        ["3|dismissed|salt works", "5|dismissed|salt works"]
    );
    let html = report(&reg, &dir.path().join("rep"));
    assert!(
        html.contains("<tr class=\"dismissed\" id=\"site-3\">"),
        "report"
    );
}

/// A compound's outline's bounding box, lon/lat.
fn bbox_of(f: &Value) -> [f64; 4] {
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for p in f["geometry"]["coordinates"][0].as_array().unwrap() {
        let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    b
}

#[test]
fn compounds_that_split_or_merge_keep_their_history() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let fc = json(&r.forward.join("compounds.geojson"));
    let feats = fc["features"].as_array().unwrap().clone();
    let n = feats.len() as i64;

    // Split: the dismissed top compound comes back as two compounds.
    let reg = dir.path().join("split.gpkg");
    add(&reg, &[&r.forward]);
    let top_area = &feats[0]["properties"]["hull_area_m2"];
    let top = text(
        &reg,
        &format!("SELECT compound_id, first_seen FROM compounds WHERE ABS(hull_area_m2 - {top_area}) < 0.5"),
    );
    assert_eq!(top.len(), 1);
    let (top_id, top_first) = top[0].split_once('|').unwrap();
    edit(
        &reg,
        &format!("UPDATE compounds SET review = 'dismissed' WHERE compound_id = {top_id}"),
    );
    let split = dir.path().join("split");
    compounds_variant(&r.forward, &split, "2018-06-15", |f| {
        let mut piece = f[0].clone();
        piece["properties"]["id"] = Value::from(n + 1);
        piece["properties"]["rank"] = Value::from(n + 1);
        f.push(piece);
    });
    let out = add(&reg, &[&split]);
    assert!(
        out.contains(&format!(
            "{} compounds: 0 new, {n} seen again, 1 split, 0 merged; 0 not seen since",
            n + 1
        )),
        "{out}"
    );
    assert_eq!(
        text(
            &reg,
            "SELECT split_from, review, status, times_seen, first_seen, last_seen FROM compounds \
             WHERE split_from IS NOT NULL"
        ),
        vec![format!(
            "{top_id}|dismissed|seen_again|2|{top_first}|2018-06-15"
        )]
    );
    let html = report(&reg, &dir.path().join("rep"));
    assert!(
        html.contains(&format!(
            "split from <a href=\"#compound-{top_id}\">{top_id}</a>"
        )),
        "report names the parent"
    );

    // Merge: the two compounds closest together come back as one covering both.
    let reg = dir.path().join("merge.gpkg");
    add(&reg, &[&r.forward]);
    let boxes: Vec<[f64; 4]> = feats.iter().map(bbox_of).collect();
    let union = |a: &[f64; 4], b: &[f64; 4]| {
        [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]
    };
    let area = |b: [f64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let (mut a, mut b) = (0, 1);
    for i in 0..boxes.len() {
        for j in i + 1..boxes.len() {
            if area(union(&boxes[i], &boxes[j])) < area(union(&boxes[a], &boxes[b])) {
                (a, b) = (i, j);
            }
        }
    }
    let u = union(&boxes[a], &boxes[b]);
    let merged = dir.path().join("merged");
    compounds_variant(&r.forward, &merged, "2018-06-15", |f| {
        let mut one = f[a].clone();
        one["geometry"]["coordinates"] = serde_json::json!([[
            [u[0], u[1]],
            [u[2], u[1]],
            [u[2], u[3]],
            [u[0], u[3]],
            [u[0], u[1]]
        ]]);
        f.remove(b);
        f[a] = one;
    });
    let out = add(&reg, &[&merged]);
    assert!(
        out.contains(&format!(
            "{} compounds: 0 new, {} seen again, 0 split, 1 merged; 0 not seen since",
            n - 1,
            n - 1
        )),
        "{out}"
    );
    let ids: Vec<String> = [a, b]
        .iter()
        .map(|&i| {
            let h = &feats[i]["properties"]["hull_area_m2"];
            text(
                &reg,
                &format!("SELECT compound_id FROM compounds WHERE hull_area_first_m2 = {h}"),
            )
            .join("")
        })
        .collect();
    let row = text(
        &reg,
        "SELECT compound_id, merged_into FROM compounds WHERE merged_into IS NOT NULL",
    );
    assert_eq!(row.len(), 1);
    let (gone, into) = row[0].split_once('|').unwrap();
    assert!(
        ids.contains(&gone.to_string()) && ids.contains(&into.to_string()) && gone != into,
        "{row:?} {ids:?}"
    );
    // A merged compound is no longer matched: the same run again leaves it.
    let again = dir.path().join("again");
    compounds_variant(&merged, &again, "2018-09-01", |_| {});
    let out = add(&reg, &[&again]);
    assert!(out.contains("0 split, 0 merged; 0 not seen since"), "{out}");
}

#[test]
fn compounds_are_followed_over_runs_with_their_member_sites() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("c.gpkg");
    add(&reg, &[&r.forward]);
    let fc = json(&r.forward.join("compounds.geojson"));
    let feats = fc["features"].as_array().unwrap();
    let n = feats.len() as i64;
    assert!(n > 5, "{n} compounds");
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM compounds"), n);
    assert_eq!(
        count(
            &reg,
            "SELECT COUNT(*) FROM compounds WHERE status = 'new' AND review = 'unreviewed' AND times_seen = 1"
        ),
        n
    );
    // The top compound's members, as register site ids: the register sites
    // whose observation in this run is one of its member sites.
    let top = &feats[0]["properties"];
    let run_members: Vec<String> = top["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    let mut want = text(
        &reg,
        &format!(
            "SELECT site_id FROM observations WHERE run_site_id IN ({}) ORDER BY site_id",
            run_members.join(",")
        ),
    );
    want.dedup();
    let got = text(
        &reg,
        &format!(
            "SELECT members, n_members FROM compounds WHERE ABS(hull_area_m2 - {}) < 0.5",
            top["hull_area_m2"]
        ),
    );
    assert_eq!(got, vec![format!("{}|{}", want.join(","), want.len())]);
    // The reasons name the same sites as the members: register ids.
    let mut named = 0;
    for row in text(&reg, "SELECT members, reasons FROM compounds") {
        let (members, reasons) = row.split_once('|').unwrap();
        let members: Vec<&str> = members.split(',').collect();
        let words: Vec<&str> = reasons.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if !matches!(w.trim_start_matches('('), "site" | "sites") {
                continue;
            }
            // "sites 3, 5, 8)": the list goes on while a word ends in a comma.
            for w in &words[i + 1..] {
                let id = w.trim_end_matches([',', ')', ';', ':']);
                if id.parse::<i64>().is_err() {
                    break;
                }
                assert!(
                    members.contains(&id),
                    "site {id} of {reasons:?} not in {members:?}"
                );
                named += 1;
                if !w.ends_with(',') {
                    break;
                }
            }
        }
    }
    assert!(named > 0, "no reasons name sites");

    // The analyst dismisses the top compound.
    edit(
        &reg,
        &format!(
            "UPDATE compounds SET review = 'dismissed', note = 'salt works' \
             WHERE ABS(hull_area_m2 - {}) < 0.5",
            top["hull_area_m2"]
        ),
    );
    // A later run finds all compounds again; one after that all but the top one.
    let later = dir.path().join("later");
    compounds_variant(&r.forward, &later, "2018-06-15", |_| {});
    let out = add(&reg, &[&later]);
    assert!(
        out.contains(&format!(
            "{n} compounds: 0 new, {n} seen again, 0 split, 0 merged; 0 not seen since"
        )),
        "{out}"
    );
    let last = dir.path().join("last");
    compounds_variant(&r.forward, &last, "2018-09-01", |f| {
        f.remove(0);
    });
    let last_run = last.join("run.json");
    edit_json(&last_run, &last_run, |run| {
        run["detect"]["threshold"] = Value::from(0.92)
    });
    let out = add(&reg, &[&last]);
    assert!(
        out.contains(&format!(
            "{} compounds: 0 new, {} seen again, 0 split, 0 merged; 1 not seen since",
            n - 1,
            n - 1
        )),
        "{out}"
    );
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM compounds"), n);
    assert_eq!(
        text(
            &reg,
            "SELECT review, note, status, times_seen, first_seen, last_seen FROM compounds \
             WHERE status = 'not_seen_since'"
        ),
        vec!["dismissed|salt works|not_seen_since|2|2018-03-28|2018-06-15"]
    );
    assert_eq!(
        count(
            &reg,
            "SELECT COUNT(*) FROM compounds WHERE times_seen = 3 AND last_seen = '2018-09-01' \
             AND status = 'seen_again'"
        ),
        n - 1
    );

    // The register report lists the compounds after the sites: counts by
    // status, unreviewed first, members linked to their sites' rows.
    let html = report(&reg, &dir.path().join("rep"));
    assert!(
        html.contains(&format!("&middot; {n} compounds, {} unreviewed", n - 1)),
        "summary line"
    );
    assert!(
        html.contains(&format!(
            "{n} compounds: {} seen_again, 1 not_seen_since</p>",
            n - 1
        )),
        "counts by status"
    );
    let compounds_at = html.find("<h2>Compounds</h2>").unwrap();
    assert!(html.rfind("id=\"site-").unwrap() < compounds_at);
    assert_eq!(html.matches("id=\"compound-").count() as i64, n);
    let dismissed = text(
        &reg,
        "SELECT compound_id, members, n_members, first_seen, last_seen FROM compounds \
         WHERE review = 'dismissed'",
    );
    let d: Vec<&str> = dismissed[0].split('|').collect();
    let row_at = html
        .find(&format!(
            "<tr class=\"dismissed\" id=\"compound-{}\">",
            d[0]
        ))
        .unwrap();
    let first_unreviewed = compounds_at
        + html[compounds_at..]
            .find("<tr class=\"unreviewed\"")
            .unwrap();
    assert!(first_unreviewed < row_at, "unreviewed compounds first");
    assert!(!html[row_at..].contains("<tr class=\"unreviewed\""));
    let row = &html[row_at..row_at + html[row_at..].find("</tr>").unwrap()];
    let links: Vec<String> = d[1]
        .split(',')
        .map(|m| format!("<a href=\"#site-{m}\">{m}</a>"))
        .collect();
    for want in [
        "<td>dismissed</td>",
        "<td>not_seen_since</td>",
        &format!("<td>{}</td><td>{}</td><td>2</td>", d[3], d[4]),
        &format!("<td>{}: {}</td>", d[2], links.join(", ")),
        "<td>salt works</td>",
    ] {
        assert!(row.contains(want), "{want} in {row}");
    }
    for m in d[1].split(',') {
        assert!(
            html.contains(&format!("id=\"site-{m}\"")),
            "site {m} listed"
        );
    }
}

#[test]
fn a_locked_or_corrupt_register_gives_clean_errors_and_is_left_unchanged() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("l.gpkg");
    add(&reg, &[&r.forward]);
    let before = std::fs::read(&reg).unwrap();
    // A live writer (this test process) holds the lock.
    let lock = dir.path().join("l.gpkg.lock");
    std::fs::write(&lock, format!("pid {} host x\n", std::process::id())).unwrap();
    let e = run_err(
        bin()
            .args(["register", "add"])
            .arg(&r.swapped)
            .arg("--into")
            .arg(&reg),
    );
    assert!(
        e.contains("l.gpkg.lock") && e.contains(&std::process::id().to_string()),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_eq!(std::fs::read(&reg).unwrap(), before);
    std::fs::remove_file(&lock).unwrap();

    // Not SQLite at all.
    let junk = dir.path().join("junk.gpkg");
    std::fs::write(&junk, b"this is not a database\n").unwrap();
    let e = run_err(
        bin()
            .args(["register", "add"])
            .arg(&r.forward)
            .arg("--into")
            .arg(&junk),
    );
    assert!(
        e.contains("junk.gpkg") && e.contains("not a dunewatch register"),
        "{e}"
    );
    assert_eq!(std::fs::read(&junk).unwrap(), b"this is not a database\n");
    // A GeoPackage without the register's layers.
    let other = dir.path().join("other.gpkg");
    {
        let drv = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
        let mut ds = drv.create_vector_only(&other).unwrap();
        ds.create_layer(gdal::vector::LayerOptions {
            name: "roads",
            ..Default::default()
        })
        .unwrap();
    }
    let bytes = std::fs::read(&other).unwrap();
    let e = run_err(
        bin()
            .args(["register", "add"])
            .arg(&r.forward)
            .arg("--into")
            .arg(&other),
    );
    assert!(e.contains("no layer `sites`"), "{e}");
    assert_eq!(std::fs::read(&other).unwrap(), bytes);
    // A truncated register.
    let cut = dir.path().join("cut.gpkg");
    std::fs::write(&cut, &before[..before.len() / 3]).unwrap();
    let e = run_err(
        bin()
            .args(["register", "add"])
            .arg(&r.swapped)
            .arg("--into")
            .arg(&cut),
    );
    assert!(e.contains("cut.gpkg"), "{e}");
    assert_eq!(std::fs::read(&cut).unwrap(), &before[..before.len() / 3]);
    assert!(!dir.path().join("cut.gpkg.lock").exists());
}

/// Overwrites, in every band of the scene folder `dir`, each target box
/// with the pixels of the source box (lon/lat boxes: west, north, east, south).
fn paste(dir: &Path, from: &Path, src: [f64; 4], targets: &[[f64; 4]]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let band = &name[name.len() - 7..];
        let from_file = std::fs::read_dir(from)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|f| f.to_string_lossy().ends_with(band))
            .unwrap();
        let src_ds = Dataset::open(&from_file).unwrap();
        let ds = Dataset::open_ex(
            &p,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let gt = ds.geo_transform().unwrap();
        let win = |b: [f64; 4]| {
            let c0 = ((b[0] - gt[0]) / gt[1]).round() as isize;
            let r0 = ((b[1] - gt[3]) / gt[5]).round() as isize;
            let c1 = ((b[2] - gt[0]) / gt[1]).round() as isize;
            let r1 = ((b[3] - gt[3]) / gt[5]).round() as isize;
            (
                c0,
                r0,
                ((c1 - c0).max(1) as usize, (r1 - r0).max(1) as usize),
            )
        };
        let (c0, r0, size) = win(src);
        let block = src_ds
            .rasterband(1)
            .unwrap()
            .read_as::<u16>((c0, r0), size, size, None)
            .unwrap();
        let mut band = ds.rasterband(1).unwrap();
        for t in targets {
            let (tc, tr, _) = win(*t);
            let mut b = gdal::raster::Buffer::new(size, block.data().to_vec());
            band.write((tc, tr), size, &mut b).unwrap();
        }
    }
}

/// The after folder under a new date.
fn redate(from: &Path, to: &Path, date: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let name = p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("20180328", date);
        std::fs::copy(&p, to.join(name)).unwrap();
    }
}

#[test]
fn watch_gives_pasted_structures_their_appearance_interval() {
    // A box 8 pixels square of the after grid at (row, col).
    let g = (
        54.540252685546875,
        0.000094391805741,
        24.366488081551143,
        -0.000094440461961,
    );
    let bx = |r: f64, c: f64| {
        [
            g.0 + c * g.1,
            g.2 + r * g.3,
            g.0 + (c + 8.0) * g.1,
            g.2 + (r + 8.0) * g.3,
        ]
    };
    // A bright, uniform built-up block, and two blocks of open sand.
    let roof = bx(164.0, 520.0);
    let (a, b) = (bx(216.0, 680.0), bx(192.0, 372.0));
    let dir = tempfile::tempdir().unwrap();
    let ad = repo().join("sample_tiles/abudhabi");
    let scenes = dir.path().join("scenes");
    // 2016-01-20 and 2018-03-28: the real pair.
    std::fs::create_dir_all(&scenes).unwrap();
    redate(&ad.join("before"), &scenes.join("d1"), "20180328");
    redate(&ad.join("after"), &scenes.join("d2"), "20180328");
    // 2018-06-15: structures A and B pasted on the sand.
    redate(&ad.join("after"), &scenes.join("d3"), "20180615");
    paste(&scenes.join("d3"), &ad.join("after"), roof, &[a, b]);
    // 2018-09-01: A still there, B gone (its sand pasted back).
    redate(&ad.join("after"), &scenes.join("d4"), "20180901");
    paste(&scenes.join("d4"), &ad.join("after"), roof, &[a]);
    let reg = dir.path().join("w.gpkg");
    let out = dir.path().join("out");
    let s = run_ok(
        bin()
            .arg("watch")
            .arg(&scenes)
            .arg("--register")
            .arg(&reg)
            .arg("--out")
            .arg(&out)
            .arg("-q"),
    );
    assert!(s.is_empty(), "{s}");
    for d in [
        "2016-01-20_2018-03-28",
        "2018-03-28_2018-06-15",
        "2018-06-15_2018-09-01",
    ] {
        assert!(out.join(d).join("sites.geojson").exists(), "{d}");
    }
    assert_eq!(count(&reg, "SELECT COUNT(*) FROM runs"), 3);
    let at = |bx: [f64; 4]| {
        let (x, y) = ((bx[0] + bx[2]) / 2.0, (bx[1] + bx[3]) / 2.0);
        text(
            &reg,
            &format!(
                "SELECT appeared_after, appeared_by, confidence FROM sites \
                 WHERE ST_Intersects(geom, MakePoint({x}, {y}, 4326))"
            ),
        )
    };
    assert_eq!(at(a), vec!["2018-03-28|2018-06-15|medium"]);
    assert_eq!(at(b), vec!["2018-03-28|2018-06-15|transient"]);
    // The real changes of the first pair appeared between its dates and
    // were confirmed by both later comparisons.
    let first = count(
        &reg,
        "SELECT COUNT(*) FROM sites WHERE appeared_by = '2018-03-28'",
    );
    let high = count(
        &reg,
        "SELECT COUNT(*) FROM sites WHERE appeared_by = '2018-03-28' AND confidence = 'high'",
    );
    assert!(
        first > 100 && high as f64 > 0.9 * first as f64,
        "{high} of {first}"
    );
    assert_eq!(
        count(
            &reg,
            "SELECT COUNT(*) FROM sites WHERE appeared_after = '2016-01-20'"
        ),
        first
    );
}
