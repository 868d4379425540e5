//! Builds small but real-layout Sentinel-2 SAFE products for tests: the
//! product XML copied from `tests/fixtures/safe/`, and every band file its
//! `IMAGE_FILE` entries list written as a tiny JPEG2000 raster.
//!
//! Every raster covers the same 600 m x 600 m square of UTM 34N (EPSG:32634)
//! at the tile's real upper-left corner: 60x60 pixels at 10 m, 30x30 at 20 m,
//! 10x10 at 60 m. Pixel values tell which file they came from, see [`dn`].

#![allow(dead_code)]

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::DriverManager;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const ULX: f64 = 300000.0;
pub const ULY: f64 = 6100020.0;
/// Side of the square every raster covers, in metres.
pub const EXTENT_M: u32 = 600;

/// A product built on disk.
pub struct Product {
    /// The `XXX.SAFE` folder.
    pub safe_dir: PathBuf,
    /// `MTD_MSIL1C.xml` or `MTD_MSIL2A.xml`.
    pub xml_name: String,
    /// Band files as listed (relative to `safe_dir`, with `.jp2`).
    pub image_files: Vec<String>,
}

impl Product {
    /// The listed file whose name ends with `suffix` (e.g. `_B04_10m.jp2`).
    pub fn file_ending(&self, suffix: &str) -> PathBuf {
        let rel = self
            .image_files
            .iter()
            .find(|f| f.ends_with(suffix))
            .unwrap_or_else(|| panic!("no listed file ends with {suffix}"));
        self.safe_dir.join(rel)
    }
}

/// `tests/fixtures/safe/<kind>/` (`L2A_N0509`, `L1C_N0509`, `L2A_N0208`).
pub fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/safe")
        .join(kind)
}

/// The product XML of a fixture: (file name, text).
pub fn fixture_xml(kind: &str) -> (String, String) {
    let dir = fixture_dir(kind);
    for name in ["MTD_MSIL2A.xml", "MTD_MSIL1C.xml"] {
        let p = dir.join(name);
        if p.is_file() {
            return (name.to_string(), std::fs::read_to_string(&p).unwrap());
        }
    }
    panic!("no product XML in {}", dir.display());
}

/// Builds the fixture product `kind` under `parent`, named by its PRODUCT_URI.
pub fn build_safe(parent: &Path, kind: &str) -> Product {
    let (name, xml) = fixture_xml(kind);
    build_safe_from_xml(parent, &name, &xml)
}

/// Builds a product from a given (possibly edited) product XML.
pub fn build_safe_from_xml(parent: &Path, xml_name: &str, xml: &str) -> Product {
    let doc = roxmltree::Document::parse(xml).expect("fixture XML parses");
    let uri = doc
        .descendants()
        .find(|n| n.has_tag_name("PRODUCT_URI"))
        .and_then(|n| n.text())
        .unwrap_or("PRODUCT.SAFE")
        .trim()
        .to_string();
    let image_files: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("IMAGE_FILE"))
        .filter_map(|n| n.text())
        .map(|t| format!("{}.jp2", t.trim()))
        .collect();
    assert!(!image_files.is_empty());

    let safe_dir = parent.join(&uri);
    std::fs::create_dir_all(&safe_dir).unwrap();
    std::fs::write(safe_dir.join(xml_name), xml).unwrap();
    for rel in &image_files {
        let path = safe_dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_jp2(&path);
    }
    // The other top-level parts of a real product, empty.
    for d in ["AUX_DATA", "DATASTRIP", "HTML", "rep_info"] {
        std::fs::create_dir_all(safe_dir.join(d)).unwrap();
    }
    Product {
        safe_dir,
        xml_name: xml_name.to_string(),
        image_files,
    }
}

/// What a file name stands for: a band's position (0..12, as `band_id`),
/// 13.. for the other products, and its resolution in metres.
fn token_and_resolution(file_name: &str) -> (&'static str, u32, u32) {
    let stem = file_name.split('.').next().unwrap();
    let parts: Vec<&str> = stem.split('_').collect();
    let (tok, res) = match parts
        .last()
        .unwrap()
        .strip_suffix('m')
        .and_then(|r| r.parse::<u32>().ok())
    {
        Some(r) => (parts[parts.len() - 2], Some(r)),
        None => (*parts.last().unwrap(), None),
    };
    const TOKENS: [(&str, u32); 17] = [
        ("B01", 60),
        ("B02", 10),
        ("B03", 10),
        ("B04", 10),
        ("B05", 20),
        ("B06", 20),
        ("B07", 20),
        ("B08", 10),
        ("B8A", 20),
        ("B09", 60),
        ("B10", 60),
        ("B11", 20),
        ("B12", 20),
        ("TCI", 10),
        ("AOT", 10),
        ("WVP", 10),
        ("SCL", 20),
    ];
    let i = TOKENS
        .iter()
        .position(|(t, _)| *t == tok)
        .unwrap_or_else(|| panic!("unexpected file {file_name}"));
    (TOKENS[i].0, i as u32, res.unwrap_or(TOKENS[i].1))
}

/// The digital number written at pixel (x, y) of a file: which file it is
/// can be read back from it. SCL files hold classes 0..11 instead.
pub fn dn(file_name: &str, x: usize, y: usize) -> u16 {
    let (tok, i, res) = token_and_resolution(file_name);
    if tok == "SCL" {
        return ((x + y) % 12) as u16;
    }
    (1000 + i * 100 + res) as u16 + ((x + 2 * y) % 7) as u16
}

/// Writes one band file as a lossless JPEG2000.
fn write_jp2(path: &Path) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let (tok, _, res) = token_and_resolution(name);
    let size = (EXTENT_M / res) as usize;
    let mem = DriverManager::get_driver_by_name("MEM").unwrap();
    let mut ds = if tok == "SCL" {
        mem.create_with_band_type::<u8, _>("", size, size, 1)
            .unwrap()
    } else {
        mem.create_with_band_type::<u16, _>("", size, size, 1)
            .unwrap()
    };
    ds.set_geo_transform(&[ULX, res as f64, 0.0, ULY, 0.0, -(res as f64)])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32634).unwrap())
        .unwrap();
    {
        let mut band = ds.rasterband(1).unwrap();
        let values: Vec<u16> = (0..size * size)
            .map(|k| dn(name, k % size, k / size))
            .collect();
        if tok == "SCL" {
            let mut buf = Buffer::new((size, size), values.iter().map(|v| *v as u8).collect());
            band.write((0, 0), (size, size), &mut buf).unwrap();
        } else {
            let mut buf = Buffer::new((size, size), values);
            band.write((0, 0), (size, size), &mut buf).unwrap();
        }
    }
    let jp2 =
        DriverManager::get_driver_by_name("JP2OpenJPEG").expect("GDAL has the JP2OpenJPEG driver");
    let opts = RasterCreationOptions::from_iter(["QUALITY=100", "REVERSIBLE=YES"]);
    ds.create_copy(&jp2, path, &opts)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Zips `dir` as a product download does: one top-level folder named like
/// `dir`, holding everything below it.
pub fn zip_folder(dir: &Path, zip_path: &Path) {
    let top = dir.file_name().unwrap().to_str().unwrap().to_string();
    let file = std::fs::File::create(zip_path).unwrap();
    let mut zw = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zw.add_directory(format!("{top}/"), opts).unwrap();
    add_to_zip(&mut zw, dir, &top, opts);
    zw.finish().unwrap();
}

fn add_to_zip(
    zw: &mut zip::ZipWriter<std::fs::File>,
    dir: &Path,
    prefix: &str,
    opts: zip::write::SimpleFileOptions,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let base = p.file_name().unwrap().to_str().unwrap();
        let name = if prefix.is_empty() {
            base.to_string()
        } else {
            format!("{prefix}/{base}")
        };
        if p.is_dir() {
            zw.add_directory(format!("{name}/"), opts).unwrap();
            add_to_zip(zw, &p, &name, opts);
        } else {
            zw.start_file(name, opts).unwrap();
            zw.write_all(&std::fs::read(&p).unwrap()).unwrap();
        }
    }
}

/// Zips what `dir` holds with no top-level folder, as some tools do.
pub fn zip_folder_contents(dir: &Path, zip_path: &Path) {
    let file = std::fs::File::create(zip_path).unwrap();
    let mut zw = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    add_to_zip(&mut zw, dir, "", opts);
    zw.finish().unwrap();
}

/// A zip of arbitrary (name, content) entries.
pub fn zip_entries(zip_path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(zip_path).unwrap();
    let mut zw = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zw.start_file(*name, opts).unwrap();
        zw.write_all(content).unwrap();
    }
    zw.finish().unwrap();
}

/// Reads pixel (x, y) of band 1 of a GDAL path (plain or `/vsizip/`).
pub fn read_pixel(gdal_path: &str, x: usize, y: usize) -> f64 {
    let ds = gdal::Dataset::open(Path::new(gdal_path))
        .unwrap_or_else(|e| panic!("GDAL cannot open {gdal_path}: {e}"));
    let band = ds.rasterband(1).unwrap();
    let buf = band
        .read_as::<f64>((x as isize, y as isize), (1, 1), (1, 1), None)
        .unwrap();
    buf.data()[0]
}

/// Raster size and pixel size of a GDAL path.
pub fn raster_shape(gdal_path: &str) -> ((usize, usize), f64) {
    let ds = gdal::Dataset::open(Path::new(gdal_path)).unwrap();
    let gt = ds.geo_transform().unwrap();
    (ds.raster_size(), gt[1])
}
