//! `dunewatch train` and `detect --method learned` end to end: train on the
//! sample pair with its label, apply the model, check provenance, block
//! invariance and bad use.

#[path = "common/scenes.rs"]
mod scenes;

use scenes::*;
use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_on_a_labelled_pair_then_detect_with_the_model() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("m/model.json");
    let o = dunewatch(&[
        "train",
        "--quiet",
        "--threads",
        "1",
        "--pair",
        sample_before().to_str().unwrap(),
        sample_after().to_str().unwrap(),
        sample_label().to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let m = json(&model);
    assert_eq!(m["format"], "dunewatch-learned/1");
    assert_eq!(m["kind"], "logistic_regression");
    let p = &m["provenance"];
    assert_eq!(p["trained_on"].as_array().unwrap().len(), 1);
    assert!(p["licence"].as_str().unwrap().contains("CC BY-NC-SA"));
    assert!(p["citation"].as_str().unwrap().contains("Daudt"));
    assert!(p["threshold_selection"]
        .as_str()
        .unwrap()
        .contains("in-sample"));
    assert!(p["positives"].as_u64().unwrap() > 1000);
    let features = m["features"].as_array().unwrap().len();
    assert_eq!(m["coef"].as_array().unwrap().len(), features);

    // Applied with two block sizes: same score (the halo covers every
    // feature's window), and better than chance against the label.
    let a = t.path().join("a");
    let b = t.path().join("b");
    for (out, bs) in [(&a, "64"), (&b, "300")] {
        assert_ok(&detect(
            &sample_before(),
            &sample_after(),
            out,
            &[
                "--method",
                "learned",
                "--model",
                model.to_str().unwrap(),
                "--block-size",
                bs,
                "--threads",
                "1",
            ],
        ));
    }
    for f in ["change_score.tif", "change_mask.tif"] {
        assert!(
            read_band(&a.join(f)).0 == read_band(&b.join(f)).0,
            "{f} differs between block sizes"
        );
    }
    let rec = json(&a.join("run.json"));
    assert_eq!(rec["detect"]["method"], "learned");
    assert_eq!(rec["detect"]["threshold"], 0.5);
    assert!(rec["detect"]["model"]["learned"]["weights"]["provenance"].is_object());
    let (mask, _) = read_band(&a.join("change_mask.tif"));
    let (label, _) = read_band(&sample_label());
    let (f1, f1_random) = f1_vs_label(&mask, &label);
    assert!(
        f1 > 0.3 && f1 > 3.0 * f1_random,
        "in-sample F1 {f1:.3} (chance {f1_random:.3})"
    );
}

#[test]
fn learned_method_defaults_to_the_shipped_model() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    assert_ok(&detect(
        &sample_before(),
        &sample_after(),
        &out,
        &["--method", "learned", "--threads", "1"],
    ));
    let rec = json(&out.join("run.json"));
    let trained_on = &rec["detect"]["model"]["learned"]["weights"]["provenance"]["trained_on"];
    assert!(trained_on.as_array().unwrap().len() >= 2, "{trained_on}");
}

#[test]
fn bad_use_fails_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let bogus = t.path().join("bogus.json");
    std::fs::write(&bogus, "{\"format\": \"something else\"}").unwrap();
    let o = detect(
        &sample_before(),
        &sample_after(),
        &t.path().join("o"),
        &["--method", "learned", "--model", bogus.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus.json"));
    let o = detect(
        &sample_before(),
        &sample_after(),
        &t.path().join("o2"),
        &["--method", "combined", "--model", bogus.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--method learned"));
    let o = dunewatch(&["train", "--out", t.path().join("m.json").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no labelled pairs"));
    let o = dunewatch(&[
        "train",
        "--oscd",
        t.path().to_str().unwrap(),
        "--out",
        t.path().join("m.json").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
}
