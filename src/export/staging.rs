//! A run's output folder is built whole in a hidden staging folder beside it
//! (`<parent>/.dunewatch-partial-<name>-<n>-<pid>@<host>`) and swapped in
//! with renames only when every output is written, so readers see the
//! earlier folder or the new one, never a mix and never a half-written run.
//! A failed run (or one stopped by a signal, see [`crate::cleanup`]) leaves
//! the earlier folder as it was, and its staging folder is removed.
//!
//! Publishing: on Linux the two folders trade places in one
//! `renameat2(RENAME_EXCHANGE)`; elsewhere, or on a file system without it,
//! the earlier folder is renamed aside, the new one renamed in (the earlier
//! one renamed back if that fails). The earlier folder is then removed.
//!
//! Before the swap every staged file and folder is flushed to disk, and the
//! parent folder after it: after a crash or power loss the output folder is
//! the earlier run or the new one with its files' contents, never new names
//! over empty files.

use crate::cleanup::{self, Registered};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub struct Staging {
    /// The output folder as the user named it (for messages).
    out: PathBuf,
    /// Its absolute path, where the staging folder is published.
    target: PathBuf,
    dir: PathBuf,
    live: Option<Registered>,
    committed: bool,
    /// Folders made for the output folder's parent: a failed run removes
    /// them again, when empty (a mistyped path leaves nothing behind).
    made: Vec<PathBuf>,
}

/// The files a `detect` run writes; a folder holding only these (or a
/// run.json) is a run folder, which a new run may replace.
const RUN_OUTPUTS: &[&str] = &[
    "change_score.tif",
    "change_mask.tif",
    "run.json",
    "sites.geojson",
    "sites.csv",
    "sites.kml",
    "chips",
    "report.html",
];

impl Staging {
    /// Stages a new output folder `out`, to replace what is there when
    /// committed. Refuses an output folder that is, or holds, one of the
    /// `inputs`, and an existing folder that is not a dunewatch run (it
    /// would be replaced whole).
    pub fn new(out: &Path, inputs: &[&Path]) -> Result<Staging> {
        let (target, made) = target_of(out)?;
        if let Err(e) = check_target(out, &target, inputs) {
            for p in made.iter().rev() {
                let _ = std::fs::remove_dir(p);
            }
            return Err(e);
        }
        Staging::create(out, target, made)
    }

    /// Stages a new version of the existing folder `out`: everything in it
    /// but the `replaced` names is carried over (hard links where the file
    /// system allows, else copies), and the caller writes the rest.
    pub fn update(out: &Path, replaced: &[&str]) -> Result<Staging> {
        let target = out
            .canonicalize()
            .map_err(|e| Error::output(out, format!("cannot open: {e}")))?;
        let s = Staging::create(out, target, Vec::new())?;
        let entries = std::fs::read_dir(&s.target).map_err(|e| Error::output(out, e))?;
        for e in entries {
            let e = e.map_err(|e| Error::output(out, e))?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if replaced.iter().any(|r| *r == n) || n.starts_with(cleanup::PARTIAL_PREFIX) {
                continue;
            }
            carry_over(&e.path(), &s.dir.join(&name))?;
        }
        Ok(s)
    }

    fn create(out: &Path, target: PathBuf, made: Vec<PathBuf>) -> Result<Staging> {
        let parent = target
            .parent()
            .ok_or_else(|| Error::output(out, "cannot be replaced: it is a root folder"))?
            .to_path_buf();
        let name = target
            .file_name()
            .ok_or_else(|| Error::output(out, "cannot be replaced: it has no name"))?
            .to_string_lossy()
            .into_owned();
        cleanup::remove_stale(&parent, cleanup::PARTIAL_PREFIX);
        let dir = parent.join(cleanup::partial_name(&name));
        let live = cleanup::register(&dir);
        let mut s = Staging {
            out: out.to_path_buf(),
            target,
            dir,
            live: Some(live),
            committed: false,
            made,
        };
        if let Err(e) = std::fs::create_dir(&s.dir) {
            s.dir = PathBuf::new();
            return Err(Error::output(
                out,
                format!(
                    "cannot write beside the output folder, in {} (the run is built there \
                     and swapped in whole): {e}",
                    parent.display()
                ),
            ));
        }
        Ok(s)
    }

    /// Where to write `name` while the run is in progress.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The staging folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Publishes the staged folder as the output folder, replacing the
    /// earlier one whole.
    pub fn commit(mut self) -> Result<()> {
        let parent = self
            .target
            .parent()
            .expect("checked in create")
            .to_path_buf();
        let name = self.target.file_name().expect("checked in create");
        let aside = parent.join(cleanup::partial_name(&name.to_string_lossy()));
        {
            // A signal's cleanup waits for the renames to be done.
            let mut live = cleanup::lock();
            // Registered before the lock was taken would deadlock: push directly.
            live.push(aside.clone());
            let res = sync_tree(&self.dir).and_then(|()| {
                swap_in(&self.dir, &self.target, &aside)?;
                sync_dir(&parent);
                Ok(())
            });
            match res {
                Ok(()) => {}
                Err(e) => {
                    if let Some(i) = live.iter().rposition(|p| *p == aside) {
                        live.swap_remove(i);
                    }
                    return Err(Error::output(
                        &self.out,
                        format!("cannot move the finished run into place: {e}"),
                    ));
                }
            }
            self.committed = true;
        }
        // The earlier folder, now at `aside` (or where the staging was,
        // after an exchange), goes; a signal meanwhile removes it too.
        cleanup::remove(&aside);
        cleanup::remove(&self.dir);
        let mut live = cleanup::lock();
        if let Some(i) = live.iter().rposition(|p| *p == aside) {
            live.swap_remove(i);
        }
        Ok(())
    }
}

/// Flushes every file under `dir`, then the folders themselves (their
/// entries), to disk.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            sync_tree(&e.path())?;
        } else if t.is_file() {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir);
    Ok(())
}

/// Flushes a folder's entries (a rename in it); best effort, as some file
/// systems refuse fsync on a folder.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Puts `new` at `target`; what was at `target` ends up at `new` (an
/// exchange) or at `aside`.
fn swap_in(new: &Path, target: &Path, aside: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::rename(new, target);
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
        if let (Ok(a), Ok(b)) = (c(new), c(target)) {
            // SAFETY: two valid NUL-terminated paths, relative to the cwd.
            let r = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if r == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            // Not supported here (some network file systems): rename twice.
            if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
                return Err(e);
            }
        }
    }
    std::fs::rename(target, aside)?;
    if let Err(e) = std::fs::rename(new, target) {
        let _ = std::fs::rename(aside, target);
        return Err(e);
    }
    Ok(())
}

/// Refuses an output folder that is, or holds, one of the `inputs`, and an
/// existing folder that is not a dunewatch run.
fn check_target(out: &Path, target: &Path, inputs: &[&Path]) -> Result<()> {
    for i in inputs {
        let Ok(ic) = i.canonicalize() else { continue };
        if ic == *target {
            return Err(Error::output(
                out,
                "is an input folder: choose another output folder",
            ));
        }
        if ic.starts_with(target) {
            return Err(Error::output(
                out,
                format!(
                    "holds an input ({}) and would be replaced: choose another output folder",
                    i.display()
                ),
            ));
        }
    }
    if target.is_dir() {
        check_replaceable(out, target)?;
    }
    Ok(())
}

/// The absolute path `out` is published at, creating its parent folders
/// (returned, deepest last, for removal on failure).
fn target_of(out: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => {
            let t = out.canonicalize().map_err(|e| Error::output(out, e))?;
            return Ok((t, Vec::new()));
        }
        Ok(_) => return Err(Error::output(out, "exists and is not a folder")),
        Err(_) => {}
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::output(out, "is not a folder name"))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut made = Vec::new();
    let mut p = parent;
    while !p.as_os_str().is_empty() && !p.exists() {
        made.push(p.to_path_buf());
        match p.parent() {
            Some(q) => p = q,
            None => break,
        }
    }
    made.reverse();
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::output(out, format!("cannot create output folder: {e}")))?;
    let parent = parent
        .canonicalize()
        .map_err(|e| Error::output(out, format!("cannot create output folder: {e}")))?;
    Ok((parent.join(name), made))
}

/// Refuses to replace a folder that is not a dunewatch run: one with a
/// run.json, or holding nothing but run outputs and partial files, is.
fn check_replaceable(out: &Path, target: &Path) -> Result<()> {
    if target.join(crate::run::RUN_FILE).is_file() {
        return Ok(());
    }
    let entries = std::fs::read_dir(target).map_err(|e| Error::output(out, e))?;
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if RUN_OUTPUTS.contains(&n.as_ref()) || n.starts_with(".dunewatch-partial-") {
            continue;
        }
        return Err(Error::output(
            out,
            format!(
                "holds {n:?} and is not a dunewatch run folder; a run replaces its output \
                 folder whole: choose a new or empty folder"
            ),
        ));
    }
    Ok(())
}

/// Hard-links (or copies) `from` to `to`, folders recursively.
fn carry_over(from: &Path, to: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(from).map_err(|e| Error::output(from, e))?;
    if m.is_dir() {
        std::fs::create_dir(to).map_err(|e| Error::output(to, e))?;
        for e in std::fs::read_dir(from).map_err(|e| Error::output(from, e))? {
            let e = e.map_err(|e| Error::output(from, e))?;
            carry_over(&e.path(), &to.join(e.file_name()))?;
        }
        return Ok(());
    }
    #[cfg(unix)]
    if m.file_type().is_symlink() {
        let link = std::fs::read_link(from).map_err(|e| Error::output(from, e))?;
        return std::os::unix::fs::symlink(link, to).map_err(|e| Error::output(to, e));
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| Error::output(to, format!("cannot copy {}: {e}", from.display())))
}

/// Writes `bytes` to `path` whole or not at all: to a temporary name beside
/// it (removed on failure or a signal), flushed to disk, then renamed over
/// `path`. Readers (and other machines) see the old file or the new one; a
/// full disk leaves the old one as it was.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| Error::output(path, "is not a file name"))?
        .to_string_lossy()
        .into_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    cleanup::remove_stale(parent, cleanup::PARTIAL_PREFIX);
    let tmp = parent.join(cleanup::partial_name(&name));
    let live = cleanup::register(&tmp);
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the folder.
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        drop(live);
        return Err(Error::output(path, format!("cannot write: {e}")));
    }
    drop(live);
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed && !self.dir.as_os_str().is_empty() {
            cleanup::remove(&self.dir);
        }
        if !self.committed {
            // Only when empty: nothing the run did not make goes.
            for p in self.made.iter().rev() {
                let _ = std::fs::remove_dir(p);
            }
        }
        self.live.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_run_removes_the_folders_it_made_but_not_one_it_found() {
        let tmp = tempfile::tempdir().unwrap();
        let made = tmp.path().join("new/out");
        drop(Staging::new(&made, &[]).unwrap());
        assert!(!tmp.path().join("new").exists());
        let found = tmp.path().join("found");
        std::fs::create_dir(&found).unwrap();
        drop(Staging::new(&found, &[]).unwrap());
        assert!(found.is_dir());
        assert_eq!(names(tmp.path()), ["found"]);
    }

    #[test]
    fn commit_replaces_the_folder_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("run.json"), "old").unwrap();
        std::fs::write(out.join("sites.csv"), "old").unwrap();
        let s = Staging::new(&out, &[]).unwrap();
        std::fs::write(s.path("run.json"), "new").unwrap();
        // Nothing shows before the commit.
        assert_eq!(
            std::fs::read_to_string(out.join("run.json")).unwrap(),
            "old"
        );
        s.commit().unwrap();
        assert_eq!(names(&out), ["run.json"]);
        assert_eq!(
            std::fs::read_to_string(out.join("run.json")).unwrap(),
            "new"
        );
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn update_carries_over_what_it_does_not_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("chips")).unwrap();
        std::fs::write(out.join("chips/1.png"), "old").unwrap();
        std::fs::write(out.join("run.json"), "run").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let s = Staging::update(&out, &["chips"]).unwrap();
        std::fs::write(s.path("sites.csv"), "new").unwrap();
        s.commit().unwrap();
        assert_eq!(names(&out), ["notes.txt", "run.json", "sites.csv"]);
        assert_eq!(
            std::fs::read_to_string(out.join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn refuses_a_folder_that_is_not_a_run_or_holds_an_input() {
        let tmp = tempfile::tempdir().unwrap();
        let docs = tmp.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("thesis.tex"), "x").unwrap();
        let e = Staging::new(&docs, &[]).err().unwrap().to_string();
        assert!(
            e.contains("thesis.tex") && e.contains("not a dunewatch run"),
            "{e}"
        );
        let scene = tmp.path().join("data/before");
        std::fs::create_dir_all(&scene).unwrap();
        let e = Staging::new(&tmp.path().join("data"), &[&scene])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("holds an input"), "{e}");
        assert_eq!(names(tmp.path()), ["data", "docs"]);
    }
}
