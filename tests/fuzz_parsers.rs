//! Property tests in place of fuzzing (cargo-fuzz needs a nightly
//! toolchain): every parser of untrusted bytes gets the seed inputs of
//! `tests/fuzz_corpus/<target>/` (and the sample tiles), mutated at random
//! (bytes flipped, runs deleted or duplicated, tokens spliced in, cut
//! short). It must never panic, and every error must be one line. Case
//! counts are bounded so the whole file runs in seconds; set
//! `PROPTEST_CASES` to run longer (scripts/fuzz.sh does).

use dunewatch::align::Grid;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The seed files of one corpus folder, sorted.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("tests/fuzz_corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Flip(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
    Splice(prop::sample::Index, &'static str),
    Truncate(prop::sample::Index),
    /// A byte of the first 600: TIFF headers, IFDs and tag arrays.
    SetHead(usize, u8),
}

/// Tokens that matter to the formats: structure, escapes, numbers at the
/// edges of their types, path tricks.
const TOKENS: &[&str] = &[
    "<", ">", "</", "/>", "<IMAGE_FILE>../../x_B04</IMAGE_FILE>", "&amp;", "&#0;", "<!--",
    "\"", ",", "\n", "\r\n", "\u{feff}", "\0", "{", "}", "[", "]", ":", "null", "NaN",
    "-1", "1e309", "-0", "4294967295", "18446744073709551616", "..", "/", "\\", "\u{fffd}",
    "\"type\": \"Point\"", "\"coordinates\": []",
];

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<prop::sample::Index>();
    prop_oneof![
        (i.clone(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (i.clone(), 1u8..=255).prop_map(|(i, b)| Edit::Flip(i, b)),
        (i.clone(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        (i.clone(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (i.clone(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Edit::Splice(i, t)),
        i.prop_map(Edit::Truncate),
        (0usize..600, any::<u8>()).prop_map(|(k, b)| Edit::SetHead(k, b)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        if v.is_empty() {
            break;
        }
        match e {
            Edit::Set(i, b) => {
                let k = i.index(v.len());
                v[k] = *b;
            }
            Edit::Flip(i, b) => {
                let k = i.index(v.len());
                v[k] ^= *b;
            }
            Edit::Delete(i, n) => {
                let k = i.index(v.len());
                let end = (k + n).min(v.len());
                v.drain(k..end);
            }
            Edit::Duplicate(i, n) => {
                let k = i.index(v.len());
                let end = (k + n).min(v.len());
                let run = v[k..end].to_vec();
                v.splice(k..k, run);
            }
            Edit::Splice(i, t) => {
                let k = i.index(v.len() + 1);
                v.splice(k..k, t.bytes());
            }
            Edit::Truncate(i) => {
                let k = i.index(v.len() + 1);
                v.truncate(k);
            }
            Edit::SetHead(k, b) => {
                let k = (*k).min(v.len() - 1);
                v[k] = *b;
            }
        }
    }
    v
}

/// A seed and edits to it.
fn mutated(seeds: Vec<Vec<u8>>, max_edits: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..max_edits),
    )
        .prop_map(|(s, e)| apply(&s, &e))
}

fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// An error is one non-empty line.
fn clean(e: &dunewatch::Error) -> std::result::Result<(), TestCaseError> {
    let m = e.to_string();
    prop_assert!(!m.trim().is_empty(), "empty error");
    prop_assert!(!m.contains('\n'), "error spans lines: {m}");
    Ok(())
}

#[test]
fn safe_product_xml() {
    let dir = tempfile::tempdir().unwrap();
    runner(256)
        .run(&mutated(corpus("safe_xml"), 12), |xml| {
            let p = dir.path().join("MTD_MSIL1C.xml");
            std::fs::write(&p, &xml).unwrap();
            // The band files are not there: at best "missing", never a panic.
            if let Err(e) = dunewatch::read::open_scene(dir.path()) {
                clean(&e)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn batch_pairs_csv() {
    let dir = tempfile::tempdir().unwrap();
    runner(512)
        .run(&mutated(corpus("pairs_csv"), 16), |csv| {
            let p = dir.path().join("pairs.csv");
            std::fs::write(&p, &csv).unwrap();
            match dunewatch::batch::pairs::read_pairs(&p) {
                Ok(pairs) => {
                    prop_assert!(!pairs.is_empty());
                    for pair in &pairs {
                        prop_assert!(!pair.name.is_empty());
                    }
                }
                Err(e) => clean(&e)?,
            }
            Ok(())
        })
        .unwrap();
}

fn sample_grid() -> Grid {
    let b04 = std::fs::read_dir(root().join("sample_tiles/abudhabi/before"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_B04.tif"))
        .unwrap();
    let ds = gdal::Dataset::open(&b04).unwrap();
    Grid::from_dataset(&ds, &b04.to_string_lossy()).unwrap()
}

#[test]
fn aoi_geojson() {
    let dir = tempfile::tempdir().unwrap();
    let grid = sample_grid();
    runner(192)
        .run(&mutated(corpus("aoi"), 10), |json| {
            let p = dir.path().join("aoi.geojson");
            std::fs::write(&p, &json).unwrap();
            if let Err(e) = dunewatch::align::read_aoi_file(&p, &grid) {
                clean(&e)?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn watchlist_geojson() {
    let dir = tempfile::tempdir().unwrap();
    runner(192)
        .run(&mutated(corpus("watchlist"), 10), |json| {
            let p = dir.path().join("watch.geojson");
            std::fs::write(&p, &json).unwrap();
            match dunewatch::sites::watchlist::read_watchlist(&p) {
                Ok(_) => {}
                Err(e) => clean(&e)?,
            }
            Ok(())
        })
        .unwrap();
}

/// TIFF seeds: the corpus (tiled and stripped, DEFLATE with and without
/// the predictor, uncompressed) and a real band of the sample tiles.
fn tiff_seeds() -> Vec<(Vec<u8>, (usize, usize))> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fuzz_corpus/tiff"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let paris = root().join("sample_tiles/paris/before");
    let mut sample: Vec<PathBuf> = std::fs::read_dir(&paris)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_B02.tif"))
        .collect();
    files.append(&mut sample);
    files
        .iter()
        .map(|p| {
            let ds = gdal::Dataset::open(p).unwrap();
            (std::fs::read(p).unwrap(), ds.raster_size())
        })
        .collect()
}

fn decode_all(path: &Path, size: (usize, usize)) -> std::result::Result<(), TestCaseError> {
    use dunewatch::align::Window;
    let Some(mut t) = dunewatch::read::tiff_tiles::TiffTiles::open(path, size, Some(0.0)) else {
        return Ok(()); // a layout left to GDAL
    };
    let (w, h) = size;
    for win in [
        Window { x: 0, y: 0, w, h },
        Window { x: w / 3, y: h / 2, w: w - w / 3, h: h - h / 2 },
        Window { x: w - 1, y: h - 1, w: 1, h: 1 },
        Window { x: 0, y: 0, w: w + 1, h },
    ] {
        match t.read(win) {
            Ok(v) => prop_assert_eq!(v.len(), win.w * win.h),
            Err(m) => prop_assert!(!m.trim().is_empty() && !m.contains('\n'), "{}", m),
        }
    }
    Ok(())
}

#[test]
fn tiff_tile_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = tiff_seeds();
    // The unmutated seeds decode whole.
    for (k, (bytes, size)) in seeds.iter().enumerate() {
        let p = dir.path().join(format!("seed{k}.tif"));
        std::fs::write(&p, bytes).unwrap();
        let mut t = dunewatch::read::tiff_tiles::TiffTiles::open(&p, *size, Some(0.0))
            .unwrap_or_else(|| panic!("seed {k} is a layout the decoder reads"));
        let (w, h) = *size;
        t.read(dunewatch::align::Window { x: 0, y: 0, w, h }).unwrap();
    }
    let strategy = (
        0..seeds.len(),
        prop::collection::vec(edit(), 1..8),
    );
    runner(192)
        .run(&strategy, |(k, edits)| {
            let (bytes, size) = &seeds[k];
            let p = dir.path().join("case.tif");
            std::fs::write(&p, apply(bytes, &edits)).unwrap();
            decode_all(&p, *size)
        })
        .unwrap();
}
