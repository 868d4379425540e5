//! One writer at a time: an exclusive lock file `FILE.gpkg.lock` beside the
//! register, created with O_EXCL and holding the writer's pid and host.
//!
//! Why a side file and not SQLite's own locking: a register update reads,
//! matches and then writes; two writers interleaving would each match
//! against a register the other is changing. SQLite would serialise the
//! writes but not that read-match-write cycle. A lock left by a process
//! that died on this host is taken over; one held by a live process is an
//! error naming the file and the holder.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Held while the register is written; removes the lock file on drop.
pub struct RegisterLock {
    path: PathBuf,
}

/// The lock file of a register.
pub fn lock_path(register: &Path) -> PathBuf {
    let mut s = register.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks that the process exists; EPERM means it exists too.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

impl RegisterLock {
    pub fn acquire(register: &Path) -> Result<RegisterLock> {
        let path = lock_path(register);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "pid {} host {}", std::process::id(), host());
                    return Ok(RegisterLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut words = text.split_whitespace();
                    let pid = match (words.next(), words.next()) {
                        (Some("pid"), Some(p)) => p.parse::<i32>().ok(),
                        _ => None,
                    };
                    let holder_host = text.split_whitespace().nth(3).unwrap_or("").to_string();
                    let same_host = holder_host.is_empty() || holder_host == host();
                    if let (Some(p), true) = (pid, same_host) {
                        if !alive(p) {
                            // Left by a writer that died: take it over.
                            let _ = std::fs::remove_file(&path);
                            continue;
                        }
                    }
                    return Err(Error::output(
                        register,
                        format!(
                            "register is being written by another process ({}; lock file {}); \
                             try again when it has finished",
                            text.trim(),
                            path.display()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(Error::output(
                        register,
                        format!("cannot create lock file {}: {e}", path.display()),
                    ))
                }
            }
        }
        Err(Error::output(
            register,
            format!("cannot take the lock file {}", path.display()),
        ))
    }
}

impl Drop for RegisterLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_and_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("r.gpkg");
        let held = RegisterLock::acquire(&reg).unwrap();
        let e = RegisterLock::acquire(&reg).err().unwrap().to_string();
        assert!(
            e.contains("r.gpkg.lock") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        drop(held);
        assert!(!lock_path(&reg).exists());
        // A pid that cannot be running.
        std::fs::write(lock_path(&reg), format!("pid 2147483646 host {}\n", host())).unwrap();
        let l = RegisterLock::acquire(&reg).unwrap();
        drop(l);
    }
}
