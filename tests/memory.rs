//! Memory of `dunewatch detect` stays per block: the model-based methods'
//! features and network activations must not grow with the scene.
//!
//! The sample pair is stacked into a scene several times taller (same
//! width, so every per-strip and per-block buffer is the same size); the
//! release binary runs on both as a child whose own peak RSS is read with
//! `wait4`. A run that held the whole scene's features or activations would
//! add at least their bytes for the extra rows.

#[path = "common/scenes.rs"]
mod scenes;

use dunewatch::detect::learned::NF;
use scenes::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// Times the sample pair is stacked (mirrored in turn, so content runs on
/// across each join).
const STACK: usize = 6;

/// GDAL's block cache for both runs. Why: the cache is bounded by its own
/// limit, but on the small scene it never fills; pinning it keeps the
/// comparison about dunewatch's buffers.
const GDAL_CACHE_MB: &str = "32";

/// Every band of `src` repeated `copies` times top to bottom (every other
/// copy upside down), into `dst` under the same names.
fn stacked_copy(src: &Path, dst: &Path, copies: usize) -> (usize, usize) {
    std::fs::create_dir_all(dst).unwrap();
    let mut size = (0, 0);
    for e in std::fs::read_dir(src).unwrap() {
        let path = e.unwrap().path();
        let ds = gdal::Dataset::open(&path).unwrap();
        let band = ds.rasterband(1).unwrap();
        let (w, h) = band.size();
        let v = band
            .read_as::<u16>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .into_shape_and_vec()
            .1;
        let mut out = Vec::with_capacity(w * h * copies);
        for c in 0..copies {
            if c % 2 == 0 {
                out.extend_from_slice(&v);
            } else {
                for row in v.chunks_exact(w).rev() {
                    out.extend_from_slice(row);
                }
            }
        }
        write_u16_tif(
            &dst.join(path.file_name().unwrap()),
            (w, h * copies),
            out,
            &ds.geo_transform().unwrap(),
            &ds.projection(),
        );
        size = size.max((w, h * copies));
    }
    size
}

/// Runs `dunewatch detect` on a pair and returns the child's peak resident
/// set in bytes (its own, from `wait4`, not the largest of every child this
/// test process has waited for).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn detect_peak_rss(before: &Path, after: &Path, out: &Path, method: &str) -> u64 {
    let log = out.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_dunewatch"))
        .args(["detect", "--quiet", "--no-sites", "--threads", "2"])
        .args(["--method", method, "--before"])
        .arg(before)
        .arg("--after")
        .arg(after)
        .arg("--out")
        .arg(out)
        .env("GDAL_PAM_ENABLED", "NO")
        .env("GDAL_CACHEMAX", GDAL_CACHE_MB)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run dunewatch");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose handle is not waited on again.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "dunewatch --method {method} failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(out.join("change_score.tif").exists());
    // Linux reports ru_maxrss in KiB.
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn model_methods_keep_memory_per_block_not_per_scene() {
    let t = tempfile::tempdir().unwrap();
    let (b, a) = (t.path().join("before"), t.path().join("after"));
    let (w, h) = stacked_copy(&sample_before(), &b, STACK);
    stacked_copy(&sample_after(), &a, STACK);
    let extra_px = (w * h - w * (h / STACK)) as u64;
    // Holding the extra rows' standardised inputs alone (the features
    // both methods compute, before any activation) would take this many
    // bytes.
    let whole_scene_inputs = extra_px * NF as u64 * 4;
    assert!(whole_scene_inputs > 400 << 20, "{whole_scene_inputs}");
    for method in ["learned", "cnn"] {
        let small = detect_peak_rss(
            &sample_before(),
            &sample_after(),
            &t.path().join(format!("{method}_small")),
            method,
        );
        let large = detect_peak_rss(&b, &a, &t.path().join(format!("{method}_large")), method);
        let grew = large.saturating_sub(small);
        eprintln!(
            "{method}: peak RSS {} MiB on {} px, {} MiB on {} px; whole-scene inputs {} MiB",
            small >> 20,
            w * (h / STACK),
            large >> 20,
            w * h,
            whole_scene_inputs >> 20
        );
        assert!(
            grew < whole_scene_inputs / 4,
            "{method}: peak RSS grew by {} MiB for {STACK}x the pixels \
             ({} -> {} MiB), a quarter or more of the {} MiB the extra rows' \
             inputs would take: memory is not per block",
            grew >> 20,
            small >> 20,
            large >> 20,
            whole_scene_inputs >> 20
        );
    }
}
