//! `dunewatch batch` as a Slurm job array on a real one-node slurm-wlm
//! cluster (scripts/slurm/local_cluster.sh, started and stopped by the
//! test), submitted with scripts/slurm/submit.sh: one task per shard, the
//! bad pair's failure in the index written by the dependent index job; then
//! a task cancelled mid-run leaves no finished-looking run, and submitting
//! the array again runs only that pair.
//!
//! Needs root and Debian's slurm-wlm and munge (scripts/setup-tests.sh; the
//! cluster script installs them when missing). When the daemons cannot run
//! here the test prints why, as "SKIPPED: ...", and passes; with
//! DUNEWATCH_REQUIRE_SLURM=1 it fails instead.

#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long an array and its index job may take here (a sample pair runs
/// in about 2 s).
const WAIT: Duration = Duration::from_secs(150);

fn script(name: &str) -> PathBuf {
    root().join("scripts/slurm").join(name)
}

/// The test's cluster, stopped on drop (also when the test fails).
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    /// Starts the cluster in `dir`; `Err` says why it cannot run here.
    fn start(dir: &Path) -> Result<Cluster, String> {
        let o = Command::new("bash")
            .arg(script("local_cluster.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .expect("run local_cluster.sh");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        };
        match o.status.code() {
            Some(0) => Ok(cluster),
            // The script's "cannot run here" (not root, a daemon that does
            // not start or a node that does not come up).
            Some(3) => Err(err),
            _ => panic!("local_cluster.sh start failed: {err}"),
        }
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Runs a Slurm command; its stdout.
    fn run(&self, prog: &str, args: &[&str]) -> String {
        let o = self.cmd(prog).args(args).output().expect(prog);
        assert!(
            o.status.success(),
            "{prog} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Submits the batch with scripts/slurm/submit.sh: (array id, index id).
    fn submit(&self, list: &Path, out: &Path, n: usize) -> (String, String) {
        let o = self
            .cmd("bash")
            .arg(script("submit.sh"))
            .arg(list)
            .arg(out)
            .arg(n.to_string())
            .args(["--chips", "2"])
            .env("DUNEWATCH", env!("CARGO_BIN_EXE_dunewatch"))
            // Two one-CPU tasks at a time on a two-CPU node.
            .env("SBATCH_ARGS", "--cpus-per-task=1")
            .env("GDAL_PAM_ENABLED", "NO")
            .output()
            .expect("run submit.sh");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "submit.sh: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let id = |what: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(what))
                .unwrap_or_else(|| panic!("submit.sh printed no {what}id: {text}"))
                .trim()
                .to_string()
        };
        (id("array "), id("index "))
    }

    /// The states of the jobs (array tasks as `<id>_<task>`).
    fn states(&self, ids: &[&str]) -> BTreeMap<String, String> {
        self.run(
            "squeue",
            &["-h", "--states=all", "-j", &ids.join(","), "-o", "%i %T"],
        )
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(i, s)| (i.to_string(), s.trim().to_string()))
        .collect()
    }

    /// Waits until every job of `ids` has ended; their final states.
    fn wait(&self, ids: &[&str]) -> BTreeMap<String, String> {
        let t0 = Instant::now();
        loop {
            let s = self.states(ids);
            let ended = |st: &str| {
                !matches!(
                    st,
                    "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING" | "SUSPENDED"
                )
            };
            if !s.is_empty() && s.values().all(|st| ended(st)) {
                return s;
            }
            if t0.elapsed() > WAIT {
                panic!(
                    "jobs {ids:?} not done after {WAIT:?}: {s:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn log_tail(&self) -> String {
        let mut t = String::new();
        for f in ["slurmctld.log", "slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.join("log").join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            t.push_str(&format!("--- {f}\n"));
            for l in &lines[lines.len().saturating_sub(15)..] {
                t.push_str(l);
                t.push('\n');
            }
        }
        t
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("local_cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn write_list(dir: &Path, name: &str, rows: &[(&str, PathBuf, PathBuf)]) -> PathBuf {
    let mut t = String::from("name,before,after\n");
    for (n, b, a) in rows {
        t.push_str(&format!("{n},{},{}\n", b.display(), a.display()));
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p
}

/// A copy of the scene folder `src` in `dst`, but for the files whose name
/// contains one of `drop`.
fn copy_scene(src: &Path, dst: &Path, drop: &[&str]) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !drop.iter().any(|d| name.contains(d)) {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// The batch.csv rows by pair name, as column -> value.
fn index(out: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(out.join("batch.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            // The error column is last and may hold commas.
            let cells: Vec<&str> = l.splitn(head.len(), ',').collect();
            let row: BTreeMap<String, String> = head
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
            (row["name"].clone(), row)
        })
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The job log of array task `task` of job `array`.
fn task_log(out: &Path, array: &str, task: usize) -> String {
    read(&out.join(".slurm").join(format!("batch-{array}_{task}.out")))
}

#[test]
fn job_array_runs_every_pair_indexes_and_resumes_after_a_cancelled_task() {
    let d = tempfile::tempdir().unwrap();
    let cluster = match Cluster::start(&d.path().join("cluster")) {
        Ok(c) => c,
        Err(why) => {
            let why = why.trim().replace('\n', "\n    ");
            eprintln!("\nSKIPPED: Slurm job array test: the local slurm-wlm cluster cannot run here:\n    {why}\n");
            if std::env::var_os("DUNEWATCH_REQUIRE_SLURM").is_some_and(|v| v == "1") {
                panic!("DUNEWATCH_REQUIRE_SLURM=1 but the cluster cannot run here");
            }
            return;
        }
    };
    let tiles = root().join("sample_tiles");
    let scene = |site: &str, date: &str| tiles.join(site).join(date);

    // Part one: the sample pairs and a pair whose after scene lacks bands.
    let bad_after = d.path().join("bad_after");
    copy_scene(&scene("abudhabi", "after"), &bad_after, &["B04", "B08"]);
    let list = write_list(
        d.path(),
        "pairs.csv",
        &[
            (
                "abudhabi",
                scene("abudhabi", "before"),
                scene("abudhabi", "after"),
            ),
            ("paris", scene("paris", "before"), scene("paris", "after")),
            ("bad", scene("abudhabi", "before"), bad_after.clone()),
        ],
    );
    let out = d.path().join("out");
    let (array, idx) = cluster.submit(&list, &out, 3);
    let st = cluster.wait(&[&array, &idx]);
    let state = |t: &str| st.get(t).map(String::as_str).unwrap_or("missing");
    assert_eq!(state(&format!("{array}_1")), "COMPLETED", "{st:?}");
    assert_eq!(state(&format!("{array}_2")), "COMPLETED", "{st:?}");
    // A failed pair fails its task (exit status 1).
    assert_eq!(state(&format!("{array}_3")), "FAILED", "{st:?}");
    assert_eq!(state(&idx), "COMPLETED", "{st:?}");

    // Each task took its shard from the array and ran its pair.
    for (task, pair) in [(1, "abudhabi"), (2, "paris"), (3, "bad")] {
        let log = task_log(&out, &array, task);
        assert!(
            log.contains(&format!("shard {task}/3 from Slurm array task {task}")),
            "task {task}: {log}"
        );
        assert!(
            log.contains(&format!("[1/1] {pair}:")),
            "task {task}: {log}"
        );
    }
    for pair in ["abudhabi", "paris"] {
        let dir = out.join(pair);
        for f in [
            "run.json",
            "change_mask.tif",
            "sites.geojson",
            "report.html",
        ] {
            assert!(dir.join(f).is_file(), "{pair}/{f} missing");
        }
    }
    assert!(!out.join("bad").join("run.json").exists());
    let rows = index(&out);
    assert_eq!(rows["abudhabi"]["status"], "done");
    assert_eq!(rows["paris"]["status"], "done");
    assert_eq!(rows["bad"]["status"], "failed");
    assert!(
        rows["bad"]["error"].contains("missing band B04"),
        "{:?}",
        rows["bad"]
    );
    // The index job wrote the index of all three pairs.
    let ilog = read(&out.join(".slurm").join(format!("index-{idx}.out")));
    assert!(
        ilog.contains("3 pairs: 2 done, 1 failed, 0 pending"),
        "index job: {ilog}"
    );
    let merged: serde_json::Value =
        serde_json::from_str(&read(&out.join("sites.geojson"))).unwrap();
    let pairs_in_layer: std::collections::BTreeSet<&str> = merged["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["properties"]["pair"].as_str())
        .collect();
    assert!(pairs_in_layer.contains("abudhabi"), "{pairs_in_layer:?}");

    // Part two: a task cancelled mid-run. The paris pair's after scene has
    // a FIFO for its B04 file, so its run stops there (its staging folder
    // made, nothing published) until the task is cancelled.
    let paris_after = d.path().join("paris_after");
    copy_scene(&scene("paris", "after"), &paris_after, &["B04"]);
    let b04 = band_file(&scene("paris", "after"), "B04");
    let fifo = paris_after.join(b04.file_name().unwrap());
    let mk = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(mk.success(), "mkfifo");
    let list2 = write_list(
        d.path(),
        "pairs2.csv",
        &[
            (
                "abudhabi",
                scene("abudhabi", "before"),
                scene("abudhabi", "after"),
            ),
            ("paris", scene("paris", "before"), paris_after.clone()),
        ],
    );
    let out2 = d.path().join("out2");
    let (array2, idx2) = cluster.submit(&list2, &out2, 2);
    let task2 = format!("{array2}_2");
    let partial = || {
        std::fs::read_dir(out2.join("paris"))
            .map(|r| {
                r.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("partial"))
            })
            .unwrap_or(false)
    };
    let t0 = Instant::now();
    while !(cluster.states(&[&task2]).get(&task2).map(String::as_str) == Some("RUNNING")
        && partial())
    {
        assert!(
            t0.elapsed() < WAIT,
            "task {task2} never got to its run: {:?}\n{}",
            cluster.states(&[&array2]),
            cluster.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.run("scancel", &[&task2]);
    let st = cluster.wait(&[&array2, &idx2]);
    assert_eq!(st[&format!("{array2}_1")], "COMPLETED", "{st:?}");
    assert_eq!(st[&task2], "CANCELLED", "{st:?}");
    assert_eq!(st[&idx2], "COMPLETED", "{st:?}");
    // The cancelled run left nothing that looks finished.
    assert!(!out2.join("paris").join("run.json").exists());
    assert!(!out2.join("paris").join("change_mask.tif").exists());
    let rows = index(&out2);
    assert_eq!(rows["abudhabi"]["status"], "done");
    assert_eq!(rows["paris"]["status"], "pending", "{:?}", rows["paris"]);
    let abudhabi_run = out2.join("abudhabi").join("run.json");
    let first_run = read(&abudhabi_run);
    let first_mtime = std::fs::metadata(&abudhabi_run)
        .unwrap()
        .modified()
        .unwrap();

    // The same array again, with the scene whole: only paris runs.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::copy(&b04, &fifo).unwrap();
    let (array3, idx3) = cluster.submit(&list2, &out2, 2);
    let st = cluster.wait(&[&array3, &idx3]);
    assert!(st.values().all(|s| s == "COMPLETED"), "{st:?}");
    let log1 = task_log(&out2, &array3, 1);
    assert!(
        log1.contains("abudhabi: done already, skipped") && log1.contains("0 failed"),
        "{log1}"
    );
    assert_eq!(read(&abudhabi_run), first_run, "abudhabi ran again");
    assert_eq!(
        std::fs::metadata(&abudhabi_run)
            .unwrap()
            .modified()
            .unwrap(),
        first_mtime,
        "abudhabi's run.json was rewritten"
    );
    let log2 = task_log(&out2, &array3, 2);
    assert!(log2.contains("[1/1] paris: "), "{log2}");
    assert!(!log2.contains("skipped"), "{log2}");
    assert!(out2.join("paris").join("run.json").is_file());
    let rows = index(&out2);
    assert_eq!(rows["paris"]["status"], "done");
    let ilog = read(&out2.join(".slurm").join(format!("index-{idx3}.out")));
    assert!(
        ilog.contains("2 pairs: 2 done, 0 failed, 0 pending"),
        "index job: {ilog}"
    );
    drop(cluster);
}
