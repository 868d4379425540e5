//! Outputs are written into a hidden staging folder inside the output folder
//! and renamed into place only when the whole run succeeded, so a failed run
//! leaves nothing that looks finished. The staging folder is removed on
//! failure (on drop).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    committed: bool,
    /// Whether `out` was made here: a failed run then removes it too, when
    /// empty (a mistyped input left an empty output folder behind).
    created: bool,
}

impl Staging {
    /// Creates `out` if needed and a staging folder inside it. Refuses an
    /// output folder that is one of the input folders.
    pub fn new(out: &Path, inputs: &[&Path]) -> Result<Staging> {
        if out.exists() && !out.is_dir() {
            return Err(Error::output(out, "exists and is not a folder"));
        }
        let created = !out.exists();
        std::fs::create_dir_all(out)
            .map_err(|e| Error::output(out, format!("cannot create output folder: {e}")))?;
        let out_c = out.canonicalize().map_err(|e| Error::output(out, e))?;
        for i in inputs {
            if let Ok(ic) = i.canonicalize() {
                if ic == out_c {
                    return Err(Error::output(
                        out,
                        "is an input folder: choose another output folder",
                    ));
                }
            }
        }
        // One folder per staging, also within a process: `detect` stages
        // its sites while its own outputs are still staged.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = out.join(format!(".dunewatch-partial-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir(&dir) {
            if created {
                let _ = std::fs::remove_dir(out);
            }
            return Err(Error::output(
                out,
                format!("cannot write to output folder: {e}"),
            ));
        }
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
            committed: false,
            created,
        })
    }

    /// Where to write `name` while the run is in progress.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Moves the named staged files (and folders) into the output folder, in
    /// order; put the file that marks completion (run.json) last.
    pub fn commit(mut self, names: &[&str]) -> Result<()> {
        for n in names {
            let from = self.dir.join(n);
            let to = self.out.join(n);
            if to.is_dir() {
                let _ = std::fs::remove_dir_all(&to);
            }
            std::fs::rename(&from, &to)
                .map_err(|e| Error::output(&to, format!("cannot move into place: {e}")))?;
        }
        self.committed = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
            if self.created {
                // Only when empty: nothing the run did not make goes.
                let _ = std::fs::remove_dir(&self.out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_removes_the_output_folder_it_made_but_not_one_it_found() {
        let tmp = tempfile::tempdir().unwrap();
        let made = tmp.path().join("new/out");
        drop(Staging::new(&made, &[]).unwrap());
        assert!(!made.exists());
        let found = tmp.path().join("found");
        std::fs::create_dir(&found).unwrap();
        drop(Staging::new(&found, &[]).unwrap());
        assert!(found.is_dir());
    }
}
