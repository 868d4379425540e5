//! Sentinel-2 SAFE products (L1C, L2A; folder and zip) read into scenes.
//!
//! Fixtures: the real product XML of three products (tests/fixtures/safe),
//! laid out as a `.SAFE` folder with every listed band file written as a
//! tiny JPEG2000 (see tests/common/safe_fixture.rs).

#[path = "common/safe_fixture.rs"]
mod safe_fixture;

use dunewatch::read::{self, safe, Band, Scene, SceneForm};
use safe_fixture::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The bands an XML lists, by file name.
fn listed_bands(p: &Product) -> BTreeSet<Band> {
    p.image_files
        .iter()
        .filter_map(|f| Band::from_file_name(f))
        .collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// Checks a path ends with the given file name and reads back the pixel the
/// fixture wrote there.
fn assert_band_file(scene: &Scene, band: Band, ends_with: &str) {
    let bf = &scene.bands[&band];
    assert!(
        bf.path.ends_with(ends_with),
        "{band}: {} should end with {ends_with}",
        bf.path
    );
    assert_eq!(bf.index, 1);
    assert_eq!(
        read_pixel(&bf.path, 5, 3),
        dn(file_name(&bf.path), 5, 3) as f64,
        "{band} pixel"
    );
}

/// One clear line naming the file.
fn one_line_error(r: dunewatch::Result<Scene>) -> String {
    let msg = match r {
        Ok(s) => panic!(
            "expected an error, got a scene with bands {}",
            s.band_list()
        ),
        Err(e) => e.to_string(),
    };
    assert!(!msg.contains('\n'), "error spans several lines: {msg}");
    msg
}

fn zip_of(p: &Product, dir: &Path) -> PathBuf {
    let name = p
        .safe_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".SAFE");
    let zip = dir.join(format!("{name}.zip"));
    zip_folder(&p.safe_dir, &zip);
    zip
}

fn check_l2a_n0509(scene: &Scene, p: &Product) {
    assert_eq!(scene.level.as_deref(), Some("L2A"));
    assert_eq!(scene.date.as_deref(), Some("2023-08-23"));

    // Whatever the XML lists: every band but B10, which L2A drops.
    let found: BTreeSet<Band> = scene.bands.keys().copied().collect();
    assert_eq!(found, listed_bands(p));
    assert_eq!(found.len(), 12, "bands: {}", scene.band_list());
    assert!(!found.contains(&Band::B10));

    for (band, bf) in &scene.bands {
        assert_eq!(bf.add_offset, -1000.0, "{band} offset");
        assert_eq!(bf.quantification, 10000.0, "{band} quantification");
    }

    // The finest of the resolutions each band is listed at.
    for b in [Band::B02, Band::B03, Band::B04, Band::B08] {
        assert_band_file(
            scene,
            b,
            &format!("/R10m/T34UCF_20230823T095559_{b}_10m.jp2"),
        );
    }
    // B01 is listed at 20 m and 60 m.
    assert_band_file(scene, Band::B01, "/R20m/T34UCF_20230823T095559_B01_20m.jp2");
    for b in [
        Band::B05,
        Band::B06,
        Band::B07,
        Band::B8A,
        Band::B11,
        Band::B12,
    ] {
        assert_band_file(
            scene,
            b,
            &format!("/R20m/T34UCF_20230823T095559_{b}_20m.jp2"),
        );
    }
    assert_band_file(scene, Band::B09, "/R60m/T34UCF_20230823T095559_B09_60m.jp2");

    let b04 = &scene.bands[&Band::B04];
    assert_eq!(raster_shape(&b04.path), ((60, 60), 10.0));
    // reflectance = (DN + add_offset) / quantification
    let refl = (read_pixel(&b04.path, 0, 0) + b04.add_offset) / b04.quantification;
    assert!((refl - 0.0310).abs() < 1e-9, "B04 reflectance {refl}");

    let scl = scene.scl.as_ref().expect("L2A SCL");
    assert!(
        scl.path
            .ends_with("/R20m/T34UCF_20230823T095559_SCL_20m.jp2"),
        "{}",
        scl.path
    );
    assert_eq!(
        (scl.index, scl.add_offset, scl.quantification),
        (1, 0.0, 1.0)
    );
    assert_eq!(read_pixel(&scl.path, 4, 3), 7.0);
}

#[test]
fn l2a_n0509_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(tmp.path(), "L2A_N0509");
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert_eq!(scene.form, SceneForm::SafeFolder);
    assert_eq!(scene.source, p.safe_dir);
    check_l2a_n0509(&scene, &p);
}

#[test]
fn l2a_n0509_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("build");
    let p = build_safe(&build, "L2A_N0509");
    let zip = zip_of(&p, tmp.path());
    // Nothing may be read from the unpacked folder.
    std::fs::remove_dir_all(&build).unwrap();

    let scene = safe::open_safe_zip(&zip).unwrap();
    assert_eq!(scene.form, SceneForm::SafeZip);
    assert_eq!(scene.source, zip);
    let prefix = format!(
        "/vsizip/{}/S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE/GRANULE/",
        zip.display()
    );
    for bf in scene.bands.values().chain(scene.scl.as_ref()) {
        assert!(
            bf.path.starts_with(&prefix),
            "{} should start with {prefix}",
            bf.path
        );
    }
    check_l2a_n0509(&scene, &p);
}

#[test]
fn zip_without_top_level_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(&tmp.path().join("build"), "L2A_N0208");
    let zip = tmp.path().join("flat.zip");
    zip_folder_contents(&p.safe_dir, &zip);
    let scene = safe::open_safe_zip(&zip).unwrap();
    assert_eq!(scene.date.as_deref(), Some("2018-08-18"));
    let b02 = &scene.bands[&Band::B02];
    assert!(
        b02.path
            .starts_with(&format!("/vsizip/{}/GRANULE/", zip.display())),
        "{}",
        b02.path
    );
    assert_eq!(
        read_pixel(&b02.path, 1, 1),
        dn(file_name(&b02.path), 1, 1) as f64
    );
}

#[test]
fn l1c_n0509_has_radio_add_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(tmp.path(), "L1C_N0509");
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert_eq!(scene.level.as_deref(), Some("L1C"));
    assert_eq!(scene.date.as_deref(), Some("2023-08-23"));
    assert!(scene.scl.is_none());
    let found: BTreeSet<Band> = scene.bands.keys().copied().collect();
    assert_eq!(
        found,
        Band::ALL.into_iter().collect::<BTreeSet<_>>(),
        "bands: {}",
        scene.band_list()
    );
    for (band, bf) in &scene.bands {
        assert_eq!(bf.add_offset, -1000.0, "{band} offset");
        assert_eq!(bf.quantification, 10000.0, "{band} quantification");
    }
    assert_band_file(
        &scene,
        Band::B04,
        "/IMG_DATA/T34UCF_20230823T095559_B04.jp2",
    );
    assert_band_file(
        &scene,
        Band::B8A,
        "/IMG_DATA/T34UCF_20230823T095559_B8A.jp2",
    );
    assert_band_file(
        &scene,
        Band::B10,
        "/IMG_DATA/T34UCF_20230823T095559_B10.jp2",
    );
}

#[test]
fn l2a_n0208_has_no_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(tmp.path(), "L2A_N0208");
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert_eq!(scene.level.as_deref(), Some("L2A"));
    assert_eq!(scene.date.as_deref(), Some("2018-08-18"));
    assert_eq!(
        scene.bands.keys().copied().collect::<BTreeSet<_>>(),
        listed_bands(&p)
    );
    for (band, bf) in &scene.bands {
        assert_eq!(bf.add_offset, 0.0, "{band} offset");
        assert_eq!(bf.quantification, 10000.0, "{band} quantification");
    }
    assert_band_file(
        &scene,
        Band::B02,
        "/R10m/T34VFJ_20180818T094031_B02_10m.jp2",
    );
    // Baseline 02.08 has no B01 at 20 m.
    assert_band_file(
        &scene,
        Band::B01,
        "/R60m/T34VFJ_20180818T094031_B01_60m.jp2",
    );
    assert!(scene.scl.as_ref().unwrap().path.ends_with("_SCL_20m.jp2"));
}

#[test]
fn offsets_follow_band_id_and_quantification_is_read() {
    let (name, xml) = fixture_xml("L2A_N0509");
    let xml = xml
        .replace(
            r#"<BOA_ADD_OFFSET band_id="8">-1000<"#,
            r#"<BOA_ADD_OFFSET band_id="8">-800<"#,
        )
        .replace(
            r#"<BOA_ADD_OFFSET band_id="12">-1000<"#,
            r#"<BOA_ADD_OFFSET band_id="12">-1200<"#,
        )
        .replace(
            r#"<BOA_QUANTIFICATION_VALUE unit="none">10000<"#,
            r#"<BOA_QUANTIFICATION_VALUE unit="none">5000<"#,
        );
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe_from_xml(tmp.path(), &name, &xml);
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert_eq!(scene.bands[&Band::B8A].add_offset, -800.0);
    assert_eq!(scene.bands[&Band::B08].add_offset, -1000.0);
    assert_eq!(scene.bands[&Band::B09].add_offset, -1000.0);
    assert_eq!(scene.bands[&Band::B12].add_offset, -1200.0);
    assert!(scene.bands.values().all(|bf| bf.quantification == 5000.0));
}

#[test]
fn l1c_quantification_found_under_any_parent() {
    let (name, xml) = fixture_xml("L1C_N0509");
    let original = r#"<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>"#;
    assert!(xml.contains(original));
    let xml = xml.replace(original, "").replace(
        "<Reflectance_Conversion>",
        r#"<Reflectance_Conversion><Some_Other_Parent><QUANTIFICATION_VALUE unit="none">2000</QUANTIFICATION_VALUE></Some_Other_Parent>"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe_from_xml(tmp.path(), &name, &xml);
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert!(scene
        .bands
        .values()
        .all(|bf| bf.quantification == 2000.0 && bf.add_offset == -1000.0));
}

#[test]
fn missing_band_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(tmp.path(), "L2A_N0509");
    let gone = p.file_ending("_B04_10m.jp2");
    std::fs::remove_file(&gone).unwrap();
    let msg = one_line_error(safe::open_safe_folder(&p.safe_dir));
    assert!(msg.contains(&gone.display().to_string()), "{msg}");
    assert!(
        msg.contains("missing") && msg.contains("MTD_MSIL2A.xml"),
        "{msg}"
    );

    // The same in a zip.
    let zip = zip_of(&p, tmp.path());
    let msg = one_line_error(safe::open_safe_zip(&zip));
    assert!(msg.contains(&zip.display().to_string()), "{msg}");
    assert!(
        msg.contains("IMG_DATA/R10m/T34UCF_20230823T095559_B04_10m.jp2") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn missing_unused_coarser_copy_is_no_error() {
    // Only the files the scene uses must be there: the 60 m copy of B04 and
    // the true-colour image are not read.
    let tmp = tempfile::tempdir().unwrap();
    let p = build_safe(tmp.path(), "L2A_N0509");
    std::fs::remove_file(p.file_ending("_B04_60m.jp2")).unwrap();
    std::fs::remove_file(p.file_ending("_TCI_10m.jp2")).unwrap();
    let scene = safe::open_safe_folder(&p.safe_dir).unwrap();
    assert!(scene.bands[&Band::B04].path.ends_with("_B04_10m.jp2"));
}

#[test]
fn missing_or_broken_product_xml() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("EMPTY.SAFE");
    std::fs::create_dir(&empty).unwrap();
    let msg = one_line_error(safe::open_safe_folder(&empty));
    assert!(
        msg.contains("EMPTY.SAFE") && msg.contains("MTD_MSIL2A.xml"),
        "{msg}"
    );

    let p = build_safe(tmp.path(), "L2A_N0208");
    let xml = p.safe_dir.join(&p.xml_name);
    let text = std::fs::read_to_string(&xml).unwrap();
    std::fs::write(&xml, &text[..text.len() / 2]).unwrap();
    let msg = one_line_error(safe::open_safe_folder(&p.safe_dir));
    assert!(
        msg.contains(&xml.display().to_string()) && msg.contains("cannot parse"),
        "{msg}"
    );

    // Broken XML inside a zip names the entry.
    let zip = tmp.path().join("broken.zip");
    zip_entries(
        &zip,
        &[(
            "X.SAFE/MTD_MSIL1C.xml",
            b"<?xml version=\"1.0\"?>\n<Level-1C_User_Product><General_Info>",
        )],
    );
    let msg = one_line_error(safe::open_safe_zip(&zip));
    assert!(
        msg.contains("broken.zip")
            && msg.contains("X.SAFE/MTD_MSIL1C.xml")
            && msg.contains("cannot parse"),
        "{msg}"
    );
}

#[test]
fn non_product_and_damaged_zips_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();

    let other = tmp.path().join("rasters.zip");
    zip_entries(
        &other,
        &[("notes.txt", b"hello"), ("bands/B04.tif", b"not really")],
    );
    let msg = one_line_error(safe::open_safe_zip(&other));
    assert!(
        msg.contains("rasters.zip") && msg.contains("not a Sentinel-2 SAFE product"),
        "{msg}"
    );
    assert!(msg.contains("bands/, notes.txt"), "{msg}");

    let not_zip = tmp.path().join("fake.zip");
    std::fs::write(&not_zip, b"this is not a zip file at all").unwrap();
    let msg = one_line_error(safe::open_safe_zip(&not_zip));
    assert!(
        msg.contains("fake.zip") && msg.contains("cannot open as a zip"),
        "{msg}"
    );

    // A download cut short: the zip's directory at its end is gone.
    let p = build_safe(&tmp.path().join("build"), "L2A_N0208");
    let whole = zip_of(&p, tmp.path());
    let bytes = std::fs::read(&whole).unwrap();
    let cut = tmp.path().join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let msg = one_line_error(safe::open_safe_zip(&cut));
    assert!(
        msg.contains("cut.zip") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn open_scene_routes_safe_folders_and_zips() {
    let tmp = tempfile::tempdir().unwrap();
    let unpacked = tmp.path().join("unpacked");
    let p = build_safe(&unpacked, "L1C_N0509");

    let scene = read::open_scene(&p.safe_dir).unwrap();
    assert_eq!(scene.form, SceneForm::SafeFolder);
    assert_eq!(scene.level.as_deref(), Some("L1C"));
    assert_eq!(scene.bands.len(), 13);

    // The product XML itself.
    let scene = read::open_scene(&p.safe_dir.join("MTD_MSIL1C.xml")).unwrap();
    assert_eq!(scene.form, SceneForm::SafeFolder);
    assert_eq!(scene.bands.len(), 13);

    // A folder holding only the unzipped product.
    assert!(safe::is_safe_folder(&unpacked));
    let scene = read::open_scene(&unpacked).unwrap();
    assert_eq!(scene.form, SceneForm::SafeFolder);
    assert_eq!(scene.bands.len(), 13);

    let zip = zip_of(&p, tmp.path());
    let scene = read::open_scene(&zip).unwrap();
    assert_eq!(scene.form, SceneForm::SafeZip);
    assert_eq!(scene.bands[&Band::B8A].add_offset, -1000.0);
    assert!(scene.bands[&Band::B8A].path.starts_with("/vsizip/"));
    assert_eq!(
        read_pixel(&scene.bands[&Band::B8A].path, 2, 2),
        dn("T34UCF_20230823T095559_B8A.jp2", 2, 2) as f64
    );
}
