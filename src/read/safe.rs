//! Sentinel-2 SAFE products, L1C or L2A, as a folder or a `.zip`.
//!
//! The product XML (`MTD_MSIL1C.xml` / `MTD_MSIL2A.xml`) at the top of the
//! `.SAFE` folder says everything needed:
//! - `IMAGE_FILE`: each band file, relative to the `.SAFE` folder, without
//!   its `.jp2` extension. L2A lists most bands at several resolutions
//!   (`R10m`, `R20m`, `R60m`); the finest is kept. L2A also lists the scene
//!   classification (`..._SCL_20m`).
//! - `QUANTIFICATION_VALUE` (L1C) / `BOA_QUANTIFICATION_VALUE` (L2A) and,
//!   from processing baseline 04.00 on, the per-band `RADIO_ADD_OFFSET` /
//!   `BOA_ADD_OFFSET band_id="N"`: reflectance = (DN + offset) / quantification.
//! - `PRODUCT_START_TIME` and `PROCESSING_LEVEL`.
//!
//! Elements are looked up by name anywhere in the document: their parents
//! moved between processing baselines.
//!
//! A zipped product is read without unpacking: the XML through the `zip`
//! crate, the rasters by GDAL through `/vsizip/` paths.

use super::{dates, Band, BandFile, Scene, SceneForm};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Product XML names, L2A first (a folder holding both is treated as L2A).
const PRODUCT_XML_NAMES: [&str; 2] = ["MTD_MSIL2A.xml", "MTD_MSIL1C.xml"];

/// Reflectance scale of every product so far, used when the XML has none.
const DEFAULT_QUANTIFICATION: f64 = 10000.0;

/// A folder holding `MTD_MSIL1C.xml` or `MTD_MSIL2A.xml`, or a folder whose
/// only product is one such `*.SAFE` sub-folder (what unzipping a product
/// into a folder of its own gives).
pub fn is_safe_folder(dir: &Path) -> bool {
    product_xml_in(dir).is_some() || single_safe_child(dir).is_some()
}

pub fn open_safe_folder(dir: &Path) -> Result<Scene> {
    // `open_scene` passes the parent of a bare `MTD_MSIL2A.xml`, which is "".
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let (safe_dir, xml_path) = match product_xml_in(dir) {
        Some(x) => (dir.to_path_buf(), x),
        None => match single_safe_child(dir) {
            Some(child) => {
                let x = product_xml_in(&child).expect("checked by single_safe_child");
                (child, x)
            }
            None => {
                if !dir.is_dir() {
                    return Err(Error::input(dir, "not a folder"));
                }
                return Err(Error::input(
                    dir,
                    "not a Sentinel-2 SAFE product: no MTD_MSIL1C.xml or MTD_MSIL2A.xml in this folder",
                ));
            }
        },
    };
    let bytes = std::fs::read(&xml_path)
        .map_err(|e| Error::input(&xml_path, format!("cannot read: {e}")))?;
    let xml_name = file_name_of(&xml_path);
    let meta = parse_product_xml(&bytes, &xml_name).map_err(|msg| Error::input(&xml_path, msg))?;

    let mut chosen = choose_files(&meta).map_err(|msg| Error::input(&xml_path, msg))?;
    let locate = |rel: &str| -> Result<String> {
        let p = safe_dir.join(rel);
        if p.is_file() {
            Ok(p.to_string_lossy().into_owned())
        } else {
            Err(Error::input(
                &p,
                format!("band file listed in {xml_name} is missing"),
            ))
        }
    };
    let (bands, scl) = resolve(&mut chosen, &meta, locate)?;
    Ok(Scene {
        source: dir.to_path_buf(),
        form: SceneForm::SafeFolder,
        bands,
        scl,
        date: meta
            .date
            .clone()
            .or_else(|| date_from_names(&meta, &safe_dir)),
        level: meta.level.clone(),
    })
}

pub fn open_safe_zip(path: &Path) -> Result<Scene> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        Error::input(
            path,
            format!("cannot open as a zip (truncated or not a zip file): {e}"),
        )
    })?;
    let names: BTreeSet<String> = archive.file_names().map(str::to_string).collect();

    // The product XML at the top of the zip or, usually, in its one
    // top-level `XXX.SAFE/` folder.
    let mut xmls: Vec<&String> = names
        .iter()
        .filter(|n| {
            let parts: Vec<&str> = n.split('/').collect();
            parts.len() <= 2 && PRODUCT_XML_NAMES.contains(parts.last().unwrap())
        })
        .collect();
    if xmls.is_empty() {
        // What its top level holds, to show what was passed instead.
        let top: BTreeSet<&str> = names
            .iter()
            .map(|n| n.split_inclusive('/').next().unwrap_or(n))
            .collect();
        let mut listing: Vec<&str> = top.iter().copied().take(5).collect();
        if top.len() > 5 {
            listing.push("...");
        }
        return Err(Error::input(
            path,
            format!(
                "not a Sentinel-2 SAFE product: no MTD_MSIL1C.xml or MTD_MSIL2A.xml at its top or in a top-level .SAFE folder (it holds: {}); to read other rasters, unzip it and pass the folder",
                if listing.is_empty() { "nothing".to_string() } else { listing.join(", ") }
            ),
        ));
    }
    // L2A before L1C within one folder, shallower first.
    xmls.sort_by_key(|n| (n.matches('/').count(), !n.ends_with(PRODUCT_XML_NAMES[0])));
    let folders: BTreeSet<&str> = xmls
        .iter()
        .map(|n| n.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();
    if folders.len() > 1 {
        return Err(Error::input(
            path,
            format!(
                "holds {} SAFE products ({}); pass one product per zip",
                folders.len(),
                folders.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let xml_entry = xmls[0].clone();
    let prefix = match xml_entry.rsplit_once('/') {
        Some((d, _)) => format!("{d}/"),
        None => String::new(),
    };
    let xml_name = xml_entry
        .rsplit('/')
        .next()
        .unwrap_or(&xml_entry)
        .to_string();
    let mut bytes = Vec::new();
    archive
        .by_name(&xml_entry)
        .and_then(|mut f| {
            f.read_to_end(&mut bytes)
                .map_err(zip::result::ZipError::from)
        })
        .map_err(|e| {
            Error::input(
                path,
                format!("cannot read {xml_entry} inside the zip (damaged or truncated?): {e}"),
            )
        })?;
    let meta = parse_product_xml(&bytes, &xml_name)
        .map_err(|msg| Error::input(path, format!("{xml_entry}: {msg}")))?;

    let mut chosen =
        choose_files(&meta).map_err(|msg| Error::input(path, format!("{xml_entry}: {msg}")))?;
    let zip_abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let zip_str = zip_abs.to_string_lossy().into_owned();
    let locate = |rel: &str| -> Result<String> {
        let inner = format!("{prefix}{rel}");
        if names.contains(&inner) {
            Ok(format!("/vsizip/{zip_str}/{inner}"))
        } else {
            Err(Error::input(
                path,
                format!("band file listed in {xml_name} is missing from the zip: {inner}"),
            ))
        }
    };
    let (bands, scl) = resolve(&mut chosen, &meta, locate)?;
    let vsi = format!("/vsizip/{zip_str}/");
    let members: Vec<String> = bands
        .values()
        .chain(scl.iter())
        .filter_map(|b| b.path.strip_prefix(&vsi).map(str::to_string))
        .collect();
    verify_members(&mut archive, path, &members)?;
    let date = meta.date.clone().or_else(|| {
        meta.product_uri
            .as_deref()
            .and_then(dates::date_from_name)
            .or_else(|| dates::date_from_name(&prefix))
            .or_else(|| dates::date_from_name(&file_name_of(path)))
    });
    Ok(Scene {
        source: path.to_path_buf(),
        form: SceneForm::SafeZip,
        bands,
        scl,
        date,
        level: meta.level.clone(),
    })
}

/// What the product XML says.
#[derive(Debug, Default)]
struct ProductMeta {
    /// `IMAGE_FILE` entries, as listed (relative, no extension).
    image_files: Vec<String>,
    quantification: f64,
    /// Per band, from `*_ADD_OFFSET band_id=...`; absent means 0.
    offsets: BTreeMap<Band, f64>,
    date: Option<String>,
    level: Option<String>,
    product_uri: Option<String>,
}

fn parse_product_xml(bytes: &[u8], xml_name: &str) -> std::result::Result<ProductMeta, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "not a text XML file (invalid UTF-8)".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("cannot parse the XML: {e}"))?;

    let elems = |name: &'static str| {
        doc.descendants()
            .filter(move |n| n.is_element() && n.tag_name().name() == name)
    };
    let first_text = |name: &'static str| {
        elems(name).find_map(|n| {
            n.text()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        })
    };

    let root = doc.root_element().tag_name().name().to_ascii_uppercase();
    let processing_level = first_text("PROCESSING_LEVEL")
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let level = if processing_level.contains("2A") {
        Some("L2A")
    } else if processing_level.contains("1C") {
        Some("L1C")
    } else if root.contains("LEVEL-2A") {
        Some("L2A")
    } else if root.contains("LEVEL-1C") {
        Some("L1C")
    } else if xml_name.to_ascii_uppercase().contains("L2A") {
        Some("L2A")
    } else if xml_name.to_ascii_uppercase().contains("L1C") {
        Some("L1C")
    } else {
        None
    };
    let (quant_name, offset_name) = match level {
        Some("L2A") => ("BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET"),
        _ => ("QUANTIFICATION_VALUE", "RADIO_ADD_OFFSET"),
    };

    let quantification = match first_text(quant_name) {
        Some(t) => {
            let q: f64 = t
                .parse()
                .map_err(|_| format!("{quant_name} is not a number: {t:?}"))?;
            if !(q.is_finite() && q > 0.0) {
                return Err(format!("{quant_name} must be positive, found {t}"));
            }
            q
        }
        None => DEFAULT_QUANTIFICATION,
    };

    let mut offsets = BTreeMap::new();
    for n in elems(offset_name) {
        let id_attr = n.attribute("band_id").or_else(|| n.attribute("bandId"));
        let Some(id) = id_attr.and_then(|s| s.trim().parse::<usize>().ok()) else {
            return Err(format!("{offset_name} without a valid band_id attribute"));
        };
        let Some(&band) = Band::ALL.get(id) else {
            return Err(format!(
                "{offset_name} band_id=\"{id}\" is out of range (0..12)"
            ));
        };
        let t = n.text().map(str::trim).unwrap_or("");
        let v: f64 = t
            .parse()
            .map_err(|_| format!("{offset_name} band_id=\"{id}\" is not a number: {t:?}"))?;
        offsets.insert(band, v);
    }

    // `IMAGE_FILE`; Sen2Cor's early L2A products called it `IMAGE_FILE_2A`.
    let image_files: Vec<String> = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name().starts_with("IMAGE_FILE"))
        .filter_map(|n| n.text().map(str::trim).filter(|t| !t.is_empty()))
        .map(|t| t.replace('\\', "/").trim_start_matches("./").to_string())
        .collect();
    if image_files.is_empty() {
        return Err("lists no band files (no IMAGE_FILE element)".into());
    }
    if let Some(bad) = image_files.iter().find(|f| leaves_product(f)) {
        return Err(format!(
            "IMAGE_FILE {bad:?} points outside the product (an absolute path or a `..` step): refused"
        ));
    }

    let date = first_text("PRODUCT_START_TIME")
        .and_then(|t| iso_date(&t))
        .or_else(|| first_text("DATATAKE_SENSING_START").and_then(|t| iso_date(&t)));

    Ok(ProductMeta {
        image_files,
        quantification,
        offsets,
        date,
        level: level.map(str::to_string),
        product_uri: first_text("PRODUCT_URI"),
    })
}

/// Whether a relative path from the product XML could name a file outside
/// the product: absolute (`/x`, `C:/x`, `//server/x`) or with a `..` step.
fn leaves_product(rel: &str) -> bool {
    let rel = rel.replace('\\', "/");
    rel.starts_with('/')
        || rel.as_bytes().get(1) == Some(&b':')
        || rel.split('/').any(|c| c == "..")
}

/// Reads every `members` entry of the zip through, checking its CRC-32:
/// GDAL's `/vsizip/` reports a CRC mismatch but returns the bytes anyway.
fn verify_members<R: std::io::Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    path: &Path,
    members: &[String],
) -> Result<()> {
    for m in members {
        let mut f = archive
            .by_name(m)
            .map_err(|e| Error::input(path, format!("cannot read {m} inside the zip: {e}")))?;
        std::io::copy(&mut f, &mut std::io::sink()).map_err(|e| {
            Error::input(
                path,
                format!("{m} inside the zip is damaged (its CRC-32 or compressed data do not check out): {e}"),
            )
        })?;
    }
    Ok(())
}

/// `2023-08-23T09:55:59.024Z` -> `2023-08-23`.
fn iso_date(t: &str) -> Option<String> {
    let d = t.trim().get(..10)?;
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10))
        .then(|| d.to_string())
}

/// The file chosen for each band (and the SCL): relative path with `.jp2`,
/// and the resolution it was chosen at.
struct Chosen {
    bands: BTreeMap<Band, (u32, String)>,
    scl: Option<(u32, String)>,
}

fn choose_files(meta: &ProductMeta) -> std::result::Result<Chosen, String> {
    let mut bands: BTreeMap<Band, (u32, String)> = BTreeMap::new();
    let mut scl: Option<(u32, String)> = None;
    let mut granules = BTreeSet::new();
    for rel in &meta.image_files {
        let rel = if rel.to_ascii_lowercase().ends_with(".jp2") {
            rel.clone()
        } else {
            format!("{rel}.jp2")
        };
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        let is_scl = is_scl_name(name);
        let band = if is_scl {
            None
        } else {
            Band::from_file_name(name)
        };
        if !is_scl && band.is_none() {
            continue; // TCI, AOT, WVP, ...
        }
        if let Some(g) = granule_of(&rel) {
            granules.insert(g.to_string());
        }
        let res = resolution_of(&rel)
            .or(band.map(Band::native_resolution))
            .unwrap_or(u32::MAX);
        match band {
            Some(b) => {
                if bands.get(&b).is_none_or(|(r, _)| res < *r) {
                    bands.insert(b, (res, rel));
                }
            }
            None => {
                if scl.as_ref().is_none_or(|(r, _)| res < *r) {
                    scl = Some((res, rel));
                }
            }
        }
    }
    if bands.is_empty() {
        return Err(
            "lists no Sentinel-2 band files (IMAGE_FILE entries ending in _B02, _B04_10m, ...)"
                .into(),
        );
    }
    if granules.len() > 1 {
        return Err(format!(
            "lists band files of {} granules; only single-tile products are supported",
            granules.len()
        ));
    }
    Ok(Chosen { bands, scl })
}

/// Turns the chosen relative paths into GDAL paths (checking they exist)
/// and attaches the radiometric scaling.
fn resolve(
    chosen: &mut Chosen,
    meta: &ProductMeta,
    locate: impl Fn(&str) -> Result<String>,
) -> Result<(BTreeMap<Band, BandFile>, Option<BandFile>)> {
    let mut bands = BTreeMap::new();
    for (band, (_, rel)) in &chosen.bands {
        let path = locate(rel)?;
        let add_offset = meta.offsets.get(band).copied().unwrap_or(0.0);
        bands.insert(
            *band,
            BandFile {
                path,
                index: 1,
                add_offset,
                quantification: meta.quantification,
            },
        );
    }
    let scl = match chosen.scl.take() {
        Some((_, rel)) => Some(BandFile {
            path: locate(&rel)?,
            index: 1,
            add_offset: 0.0,
            quantification: 1.0,
        }),
        None => None,
    };
    Ok((bands, scl))
}

fn is_scl_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    stem.split(['_', '-']).any(|t| t == "SCL")
}

/// `..._B04_10m.jp2` or an `R10m/` folder -> 10.
fn resolution_of(rel: &str) -> Option<u32> {
    let name = rel.rsplit('/').next()?;
    let stem = name.split('.').next()?;
    let from_suffix = stem
        .rsplit('_')
        .next()
        .and_then(|t| t.strip_suffix('m'))
        .and_then(|t| t.parse().ok());
    from_suffix.or_else(|| {
        rel.split('/')
            .rev()
            .nth(1)
            .and_then(|d| d.strip_prefix('R'))
            .and_then(|t| t.strip_suffix('m'))
            .and_then(|t| t.parse().ok())
    })
}

/// `GRANULE/<id>/IMG_DATA/...` -> `<id>`.
fn granule_of(rel: &str) -> Option<&str> {
    let mut parts = rel.split('/');
    while let Some(p) = parts.next() {
        if p == "GRANULE" {
            return parts.next();
        }
    }
    None
}

fn product_xml_in(dir: &Path) -> Option<PathBuf> {
    PRODUCT_XML_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The one `*.SAFE` sub-folder holding a product XML, when there is exactly one.
fn single_safe_child(dir: &Path) -> Option<PathBuf> {
    let mut found = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let is_safe = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("safe"));
        if is_safe && p.is_dir() && product_xml_in(&p).is_some() {
            if found.is_some() {
                return None;
            }
            found = Some(p);
        }
    }
    found
}

fn date_from_names(meta: &ProductMeta, safe_dir: &Path) -> Option<String> {
    meta.product_uri
        .as_deref()
        .and_then(dates::date_from_name)
        .or_else(|| dates::date_from_name(&file_name_of(safe_dir)))
}

fn file_name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_from_suffix_or_folder() {
        assert_eq!(
            resolution_of("GRANULE/g/IMG_DATA/R20m/T34UCF_20230823T095559_B8A_20m.jp2"),
            Some(20)
        );
        assert_eq!(
            resolution_of("GRANULE/g/IMG_DATA/R60m/T34UCF_20230823T095559_B09.jp2"),
            Some(60)
        );
        assert_eq!(
            resolution_of("GRANULE/g/IMG_DATA/T34UCF_20230823T095559_B04.jp2"),
            None
        );
        assert_eq!(
            granule_of("GRANULE/L2A_T34UCF_A033753_20230823T095553/IMG_DATA/x.jp2"),
            Some("L2A_T34UCF_A033753_20230823T095553")
        );
    }

    #[test]
    fn iso_dates() {
        assert_eq!(
            iso_date("2023-08-23T09:55:59.024Z").as_deref(),
            Some("2023-08-23")
        );
        assert_eq!(iso_date("20230823"), None);
        assert_eq!(iso_date("2023"), None);
    }
}
