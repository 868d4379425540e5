//! A run's lifecycle under faults, end to end on the sample tiles: runs are
//! published whole or not at all (a real write error from a file size limit
//! half way through the sites step, a bad watchlist), over an earlier run
//! too; SIGINT and SIGTERM remove the partial outputs and temporary folders;
//! what a killed run left is removed by the next; `train` writes its model
//! whole; and a batch resume notices changed inputs and options, an output
//! folder inside the pairs folder, index names and a byte order mark.

#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dunewatch"));
    c.env("GDAL_PAM_ENABLED", "NO");
    c
}

fn detect_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "detect",
        "--quiet",
        "--before",
        sample_before().to_str().unwrap(),
        "--after",
        sample_after().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Starts `cmd` with SIGXFSZ ignored: once [`limit_file_size`] is applied,
/// a write past the limit fails with EFBIG, as on a full disk.
fn spawn_ignoring_xfsz(cmd: &mut Command) -> std::process::Child {
    // SAFETY: only an async-signal-safe call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Limits the files process `pid` writes to `bytes` (RLIMIT_FSIZE), from now on.
fn limit_file_size(pid: u32, bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: a valid limit for our own child.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Stops `child` (SIGSTOP) once `cond` holds; panics if it ends first.
fn stop_when(child: &mut std::process::Child, cond: impl Fn() -> bool) {
    let pid = child.id() as i32;
    loop {
        // SAFETY: signals to our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        if cond() {
            return;
        }
        unsafe { libc::kill(pid, libc::SIGCONT) };
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it was caught");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn resume(child: &std::process::Child) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
}

/// Whether a staging folder in `dir` holds `name`.
fn staged(dir: &Path, name: &str) -> bool {
    names(dir)
        .iter()
        .any(|n| n.starts_with(".dunewatch-partial-") && dir.join(n).join(name).exists())
}

/// Every file under `dir` (relative path) with its bytes and time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut m = BTreeMap::new();
    fn walk(root: &Path, d: &Path, m: &mut BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, m);
            } else {
                let t = e.metadata().unwrap().modified().unwrap();
                m.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    (std::fs::read(&p).unwrap(), t),
                );
            }
        }
    }
    walk(dir, dir, &mut m);
    m
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Entries of `dir` a run leaves only while it runs.
fn partials(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".dunewatch-partial-") || n.starts_with("dunewatch-align-"))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `detect` (one thread: the COGs are written before the sites step)
/// and, once the sites step has begun writing, limits the files it may
/// write to 1000 bytes: the sites files fail as on a full disk.
fn detect_with_disk_full_in_sites(t: &Path, out: &Path) -> Output {
    let mut child = spawn_ignoring_xfsz(bin().args(detect_args(out, &["--threads", "1"])));
    stop_when(&mut child, || staged(t, "chips"));
    assert!(staged(t, "change_score.tif"), "the COGs are written first");
    limit_file_size(child.id(), 1000);
    resume(&child);
    child.wait_with_output().unwrap()
}

#[test]
fn a_write_error_in_the_sites_step_leaves_the_earlier_run_untouched() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    assert_ok(&bin().args(detect_args(&out, &[])).output().unwrap());
    let before = snapshot(&out);

    // Over the earlier run: it stays as it was, file for file.
    let o = detect_with_disk_full_in_sites(t.path(), &out);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("File too large"), "a real write error: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(snapshot(&out) == before, "the earlier run was changed");
    assert_eq!(names(t.path()), ["run"], "leftovers beside the run");

    // Into a new folder: nothing at all.
    let fresh = t.path().join("fresh");
    let o = detect_with_disk_full_in_sites(t.path(), &fresh);
    assert!(!o.status.success());
    assert!(!fresh.exists());
    assert_eq!(names(t.path()), ["run"]);
}

#[test]
fn a_failing_sites_step_publishes_nothing_and_a_no_sites_rerun_leaves_no_sites_files() {
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("junk.geojson");
    std::fs::write(&junk, "{ not json").unwrap();
    let out = t.path().join("run");
    // The watchlist is read by the sites step, after the change mask.
    let o = bin()
        .args(detect_args(&out, &["--watchlist", junk.to_str().unwrap()]))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("junk.geojson"), "{}", stderr(&o));
    assert!(!out.exists(), "a failed run published {:?}", names(&out));
    assert_eq!(names(t.path()), ["junk.geojson"]);

    assert_ok(
        &bin()
            .args(detect_args(&out, &["--chips", "1"]))
            .output()
            .unwrap(),
    );
    assert!(out.join("sites.geojson").is_file() && out.join("chips").is_dir());
    assert_ok(
        &bin()
            .args(detect_args(&out, &["--no-sites"]))
            .output()
            .unwrap(),
    );
    assert_eq!(
        names(&out),
        [
            "change_mask.qml",
            "change_mask.tif",
            "change_mask.tif.aux.xml",
            "change_score.qml",
            "change_score.tif",
            "run.json"
        ],
        "a --no-sites run replaces the whole folder (the rasters and their QGIS sidecars only)"
    );
    assert_eq!(names(t.path()), ["junk.geojson", "run"]);

    // `dunewatch sites` rebuilds the folder whole: the user's own files
    // stay, a failure changes nothing.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = bin()
        .args(["sites", "-q", "--chips", "1", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(out.join("sites.geojson").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    let run = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(out.join("run.json")).unwrap(),
    )
    .unwrap();
    assert!(run["sites"]["sites"].as_u64().unwrap() > 0);
    let before = snapshot(&out);
    let mut child =
        spawn_ignoring_xfsz(bin().args(["sites", "-q", "--chips", "1", out.to_str().unwrap()]));
    stop_when(&mut child, || staged(t.path(), "chips"));
    limit_file_size(child.id(), 1000);
    resume(&child);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("File too large"), "{}", stderr(&o));
    assert!(snapshot(&out) == before, "a failed `sites` changed the run");
    assert_eq!(names(t.path()), ["junk.geojson", "run"]);
}

#[test]
fn an_output_folder_that_holds_an_input_or_is_not_a_run_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let before = data.join("before");
    std::fs::create_dir_all(&before).unwrap();
    for e in std::fs::read_dir(sample_before()).unwrap().flatten() {
        std::fs::copy(e.path(), before.join(e.file_name())).unwrap();
    }
    let o = detect(&before, &sample_after(), &data, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds an input"), "{}", stderr(&o));
    assert_eq!(names(&data), ["before"]);
    let docs = t.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("thesis.tex"), "x").unwrap();
    let o = detect(&sample_before(), &sample_after(), &docs, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("thesis.tex"), "{}", stderr(&o));
    assert_eq!(names(&docs), ["thesis.tex"]);
    assert_eq!(names(t.path()), ["data", "docs"]);
}

// ---- signals and killed runs ----

/// Starts `detect` with its own temp folder and waits (stopping it to look)
/// until its staging folder and its aligned-scene folder both exist.
fn start_and_catch_mid_run(t: &Path, out: &Path) -> std::process::Child {
    let tmp = t.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = bin()
        .args(detect_args(out, &["--threads", "1"]))
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let parent = out.parent().unwrap().to_path_buf();
    stop_when(&mut child, || {
        !partials(&parent).is_empty() && !partials(&tmp).is_empty()
    });
    child
}

#[test]
fn sigint_and_sigterm_remove_the_staging_and_temporary_folders() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("run");
        let child = start_and_catch_mid_run(t.path(), &out);
        let pid = child.id() as i32;
        // SAFETY: signals to our own child.
        unsafe {
            libc::kill(pid, sig);
            libc::kill(pid, libc::SIGCONT);
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
        assert!(stderr(&o).contains("partial outputs removed"));
        assert_eq!(names(t.path()), ["tmp"], "signal {sig}");
        assert!(names(&t.path().join("tmp")).is_empty(), "signal {sig}");
    }
}

#[test]
fn what_a_killed_run_left_is_removed_by_the_next_run() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let mut child = start_and_catch_mid_run(t.path(), &out);
    child.kill().unwrap(); // SIGKILL: no cleanup possible.
    child.wait().unwrap();
    let tmp = t.path().join("tmp");
    assert!(!partials(t.path()).is_empty() && !partials(&tmp).is_empty());
    let o = bin()
        .args(detect_args(&out, &["--no-sites"]))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(names(t.path()), ["run", "tmp"]);
    assert!(names(&tmp).is_empty(), "{:?}", names(&tmp));
}

// ---- train ----

#[test]
fn train_replaces_its_model_whole_or_not_at_all() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("model.json");
    std::fs::write(&model, "{\"earlier\": true}\n").unwrap();
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut c = bin();
    c.env("TMPDIR", &tmp).args([
        "train",
        "--quiet",
        "--pair",
        sample_before().to_str().unwrap(),
        sample_after().to_str().unwrap(),
        sample_label().to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    let mut child = spawn_ignoring_xfsz(&mut c);
    // Once the pair's features are read (its aligned-scene folder came and
    // went), the disk is "full": the model (a few KB) cannot be written.
    stop_when(&mut child, || !names(&tmp).is_empty());
    resume(&child);
    stop_when(&mut child, || names(&tmp).is_empty());
    limit_file_size(child.id(), 100);
    resume(&child);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("model.json"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&model).unwrap(),
        "{\"earlier\": true}\n"
    );
    assert!(stderr(&o).contains("File too large"), "{}", stderr(&o));
    assert_eq!(names(t.path()), ["model.json", "tmp"]);
}

// ---- batch ----

fn batch(list: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "batch",
        list.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-sites",
    ];
    args.extend_from_slice(extra);
    dunewatch(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_resume_runs_a_pair_again_when_its_scenes_or_options_changed() {
    let t = tempfile::tempdir().unwrap();
    let before = t.path().join("before");
    std::fs::create_dir(&before).unwrap();
    for e in std::fs::read_dir(sample_before()).unwrap().flatten() {
        std::fs::copy(e.path(), before.join(e.file_name())).unwrap();
    }
    let list = t.path().join("pairs.csv");
    std::fs::write(
        &list,
        format!(
            "name,before,after\np,{},{}\n",
            before.display(),
            sample_after().display()
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    let ran = |o: &Output| {
        assert_ok(o);
        !stdout(o).contains("done already, skipped")
    };
    assert!(ran(&batch(&list, &out, &[])));
    assert!(!ran(&batch(&list, &out, &[])), "unchanged: skipped");
    assert!(
        ran(&batch(&list, &out, &["--threshold", "0.8"])),
        "option changed"
    );
    assert!(!ran(&batch(&list, &out, &["--threshold", "0.8"])));
    // Threads do not change the outputs: still skipped.
    assert!(!ran(&batch(
        &list,
        &out,
        &["--threshold", "0.8", "--threads", "1"]
    )));
    // A band file re-written (same bytes, new time).
    let f = band_file(&before, "B04");
    let bytes = std::fs::read(&f).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&f, bytes).unwrap();
    let o = batch(&list, &out, &["--threshold", "0.8"]);
    assert!(ran(&o), "scene changed");
    assert!(
        stdout(&o).contains("changed since it ran"),
        "{}",
        stdout(&o)
    );
    assert!(!ran(&batch(&list, &out, &["--threshold", "0.8"])));
}

#[test]
fn an_output_folder_inside_the_pairs_folder_does_not_break_a_resume() {
    let t = tempfile::tempdir().unwrap();
    let pairs = t.path().join("pairs");
    std::fs::create_dir_all(pairs.join("abudhabi")).unwrap();
    std::os::unix::fs::symlink(sample_before(), pairs.join("abudhabi/before")).unwrap();
    std::os::unix::fs::symlink(sample_after(), pairs.join("abudhabi/after")).unwrap();
    let out = pairs.join("out");
    let o = batch(&pairs, &out, &[]);
    assert_ok(&o);
    assert!(out.join("abudhabi/run.json").is_file());
    let o = batch(&pairs, &out, &[]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("done already, skipped"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn index_names_are_refused_as_pair_names_and_a_byte_order_mark_is_accepted() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    for name in ["batch.csv", "index.html", "sites.geojson", "sites.csv"] {
        let list = t.path().join("pairs.csv");
        std::fs::write(
            &list,
            format!(
                "name,before,after\n{name},{},{}\n",
                sample_before().display(),
                sample_after().display()
            ),
        )
        .unwrap();
        let o = batch(&list, &out, &[]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(name) && err.contains("index"), "{err}");
        assert!(!out.exists());
    }
    let list = t.path().join("bom.csv");
    std::fs::write(
        &list,
        format!(
            "\u{feff}name,before,after\nabudhabi,{},{}\n",
            sample_before().display(),
            sample_after().display()
        ),
    )
    .unwrap();
    let o = batch(&list, &out, &["--index-only"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("1 pair: 0 done, 0 failed, 1 pending"),
        "{}",
        stdout(&o)
    );
}
