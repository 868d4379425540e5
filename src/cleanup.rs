//! Partial outputs and temporary folders of the running process: removed
//! when it is stopped by SIGINT, SIGTERM or SIGHUP, and, when it was killed
//! outright (SIGKILL, a crash, a power cut), by the next run that finds them.
//!
//! Every such path ends in its owner, `-<pid>@<host>`: a later run removes
//! only what a process of its own machine left that no longer runs, so
//! machines sharing a batch folder on a network drive never remove each
//! other's live work.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Names of staging folders and temporary files beside an output
/// (`.dunewatch-partial-<name>-<n>-<pid>@<host>`).
pub const PARTIAL_PREFIX: &str = ".dunewatch-partial-";
/// Names of the aligned scenes' temporary folders in the system temp folder
/// (`dunewatch-align-<random>-<pid>@<host>`).
pub const ALIGN_PREFIX: &str = "dunewatch-align-";

/// The paths the signal handler removes.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry, locked. Publishing holds it across its renames, so a
/// signal's cleanup sees the paths either before or after them, never half way.
pub fn lock() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A path the signal handler removes while this guard lives. Dropping it
/// only unregisters the path: removing it is its owner's business.
#[derive(Debug)]
pub struct Registered(PathBuf);

/// Registers `path` for removal on a signal.
pub fn register(path: &Path) -> Registered {
    lock().push(path.to_path_buf());
    Registered(path.to_path_buf())
}

impl Registered {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut live = lock();
        if let Some(i) = live.iter().rposition(|p| *p == self.0) {
            live.swap_remove(i);
        }
    }
}

/// This machine's name, as it appears in owner tags: `[A-Za-z0-9.-]` only
/// (others become `_`), so a tag never holds `@` or a path separator.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; the name is cut at its NUL.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name: String = String::from_utf8_lossy(if ok { &buf[..end] } else { b"" })
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() {
            "localhost".into()
        } else {
            name
        }
    })
}

/// `<pid>@<host>`: the owner tag of process `pid` of this machine.
pub fn owner_tag(pid: u32) -> String {
    format!("{pid}@{}", host())
}

/// A name for a partial output beside `name`, unique to this process and
/// call, ending in the owner tag.
pub fn partial_name(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{PARTIAL_PREFIX}{name}-{n}-{}",
        owner_tag(std::process::id())
    )
}

/// The owner (pid, host) of a name that ends in `-<pid>@<host>`.
fn owner_of(name: &str) -> Option<(u32, &str)> {
    let (left, host) = name.rsplit_once('@')?;
    let (_, pid) = left.rsplit_once('-')?;
    Some((pid.parse().ok()?, host))
}

/// Whether process `pid` of this machine runs.
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the entries of `dir` named `prefix...-<pid>@<host>` that a
/// process of this machine left which no longer runs. Returns how many went.
pub fn remove_stale(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) {
            continue;
        }
        let Some((pid, h)) = owner_of(&name) else {
            continue;
        };
        if h != host() || pid == me || alive(pid) {
            continue;
        }
        if remove(&e.path()) {
            removed += 1;
        }
    }
    removed
}

/// Removes the entries of `dir` named `prefix...-<pid>@<host>` that this
/// process owns.
fn remove_own(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = owner_tag(std::process::id());
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(&format!("-{me}")) {
            remove(&e.path());
        }
    }
}

/// Removes a file or a whole folder (not following a symlink).
pub fn remove(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).is_ok(),
        Ok(_) => std::fs::remove_file(path).is_ok(),
        Err(_) => false,
    }
}

/// The write end of the pipe the signal handler writes the signal to.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the byte outlives the call.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every
/// registered path, then exit with 128 + the signal (130, 143, 129). A
/// signal ignored when the process started (`nohup`) stays ignored.
///
/// Why a thread: a signal handler may do next to nothing safely, so it only
/// writes the signal to a pipe; a thread blocked on the pipe does the
/// removing with ordinary code.
pub fn install_signal_handlers() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two descriptors of the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let [r, w] = fds;
    PIPE_W.store(w, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut b = 0u8;
            // SAFETY: reads one byte into a valid buffer.
            let n = unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                clean_up_and_exit(b as libc::c_int);
            }
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        });
    if spawned.is_err() {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction with zeroed, then filled, structures; the handler
        // is an extern "C" fn that only calls write(2).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

fn clean_up_and_exit(sig: libc::c_int) -> ! {
    // Held until exit: no staging is published after this point.
    let live = lock();
    // Twice: a worker may have created a file in a folder being removed.
    for _ in 0..2 {
        for p in live.iter() {
            remove(p);
        }
    }
    // A temporary folder made but not yet registered (the signal fell in
    // between) still carries this process's owner tag.
    remove_own(&std::env::temp_dir(), ALIGN_PREFIX);
    let name = match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    eprintln!("\ndunewatch: stopped by {name}; partial outputs removed");
    // SAFETY: ends the process at once, without running other threads'
    // code or exit handlers (GDAL's) that might wait for locks they hold.
    unsafe { libc::_exit(128 + sig) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_parse_back() {
        let n = partial_name("out-1@x");
        let (pid, h) = owner_of(&n).unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(h, host());
        assert_eq!(
            owner_of("dunewatch-align-Ab12cd-42@some-host.lan"),
            Some((42, "some-host.lan"))
        );
        assert_eq!(owner_of(".dunewatch-partial-x"), None);
    }

    #[test]
    fn stale_entries_of_dead_processes_go_live_ones_stay() {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let tag_dead = owner_tag(dead);
        let stale = d.path().join(format!("{PARTIAL_PREFIX}out-0-{tag_dead}"));
        std::fs::create_dir_all(stale.join("sub")).unwrap();
        let stale_file = d
            .path()
            .join(format!("{PARTIAL_PREFIX}model.json-0-{tag_dead}"));
        std::fs::write(&stale_file, b"x").unwrap();
        let mine = d.path().join(partial_name("out"));
        std::fs::create_dir(&mine).unwrap();
        let other_host = d
            .path()
            .join(format!("{PARTIAL_PREFIX}out-0-{dead}@elsewhere"));
        std::fs::create_dir(&other_host).unwrap();
        let unrelated = d.path().join("out");
        std::fs::create_dir(&unrelated).unwrap();
        assert_eq!(remove_stale(d.path(), PARTIAL_PREFIX), 2);
        assert!(!stale.exists() && !stale_file.exists());
        assert!(mine.exists() && other_host.exists() && unrelated.exists());
    }

    #[test]
    fn registered_paths_unregister_on_drop() {
        let p = PathBuf::from("/nonexistent/dunewatch-registry-test");
        let g = register(&p);
        assert!(lock().contains(&p));
        drop(g);
        assert!(!lock().contains(&p));
    }
}
