//! What a run was made from: the size and modification time of every input
//! file, and the options that shape its outputs. `detect` records it in
//! run.json (`inputs`); a batch resume runs a finished pair again when its
//! fingerprint differs (a scene re-downloaded, an option changed).
//!
//! Why size and time, not a hash: a hash reads every byte of every scene
//! (gigabytes per pair) on each resume; a changed file almost always
//! changes its size or time, and a rewrite in place always changes the time.

use serde_json::{json, Value};
use std::path::Path;

/// Folders below an input are followed this deep (SAFE products nest five).
const MAX_DEPTH: usize = 12;

/// The fingerprint of `inputs` (files or folders; missing ones are recorded
/// as missing) and `options`.
pub fn fingerprint(inputs: &[&Path], options: Value) -> Value {
    let mut files = Vec::new();
    for p in inputs {
        let shown = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(&shown, 0, &mut files),
            Ok(m) => files.push(entry(&shown, &m)),
            Err(_) => files.push(json!({ "path": shown, "missing": true })),
        }
    }
    json!({ "files": files, "options": options })
}

fn entry(path: &Path, m: &std::fs::Metadata) -> Value {
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64);
    json!({ "path": path, "size": m.len(), "mtime_ns": mtime_ns })
}

/// Every file under `dir`, in name order; hidden entries (a run's staging
/// folder, should the output sit inside a scene) are left out, and
/// symlinked folders are not followed.
fn walk(dir: &Path, depth: usize, files: &mut Vec<Value>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        files.push(json!({ "path": dir, "unreadable": true }));
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let Ok(lm) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if lm.is_dir() {
            if depth < MAX_DEPTH {
                walk(&p, depth + 1, files);
            }
            continue;
        }
        if let Ok(m) = std::fs::metadata(&p) {
            if !m.is_dir() {
                files.push(entry(&p, &m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_a_file_or_an_option_not_with_hidden_entries() {
        let d = tempfile::tempdir().unwrap();
        let scene = d.path().join("scene");
        std::fs::create_dir_all(scene.join("GRANULE")).unwrap();
        std::fs::write(scene.join("GRANULE/B04.tif"), b"1234").unwrap();
        let opts = json!({ "method": "combined" });
        let a = fingerprint(&[&scene], opts.clone());
        std::fs::create_dir(scene.join(".dunewatch-partial-x")).unwrap();
        assert_eq!(fingerprint(&[&scene], opts.clone()), a);
        assert_ne!(fingerprint(&[&scene], json!({ "method": "cva" })), a);
        std::fs::write(scene.join("GRANULE/B04.tif"), b"12345").unwrap();
        assert_ne!(fingerprint(&[&scene], opts.clone()), a);
        let missing = d.path().join("gone.geojson");
        let f = fingerprint(&[&missing], opts);
        assert_eq!(f["files"][0]["missing"], true);
    }
}
