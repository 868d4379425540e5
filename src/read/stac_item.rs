//! A STAC item (a local `.json` file or an http(s) URL) as a [`Scene`]: its
//! band assets are Cloud-Optimized GeoTIFFs that GDAL reads in place,
//! through `/vsicurl/` for http(s) hrefs, so a run fetches only the tiles of
//! its window, never the whole product.
//!
//! Asset keys are Earth Search's common names (`red`, `nir08`, `swir16`,
//! `scl`, ...) or band ids (`B04`, `B8A`, `SCL`). Digital numbers become
//! reflectance with the asset's `raster:bands` scale and offset; items
//! without them get the Sentinel-2 rule: processing baseline 04.00 and later
//! add -1000 to the counts before dividing by 10000.

use super::{http, Band, BandFile, Scene, SceneForm};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A STAC item and where it was read from (relative asset hrefs are
/// relative to it).
#[derive(Debug, Clone)]
pub struct StacItem {
    /// The URL or file the item was read from.
    pub location: String,
    pub json: Value,
}

/// Whether `path` names a STAC item rather than raster files: an http(s)
/// URL, or a `.json` file.
pub fn is_item_location(path: &Path) -> bool {
    let s = path.to_string_lossy();
    http::is_url(&s)
        || http::is_url(s.strip_prefix("/vsicurl/").unwrap_or(""))
        || s.to_ascii_lowercase().ends_with(".json")
}

/// An asset as `(key, href)`.
pub type Asset = (String, String);

impl StacItem {
    /// Reads an item from a URL (`/vsicurl/` prefix allowed) or a file.
    pub fn load(location: &str) -> Result<StacItem> {
        let location = location.strip_prefix("/vsicurl/").unwrap_or(location);
        let bytes = if http::is_url(location) {
            http::get(location).map_err(|m| Error::input(location, strip_url(&m, location)))?
        } else {
            std::fs::read(location)
                .map_err(|e| Error::input(location, format!("cannot read: {e}")))?
        };
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::input(location, format!("not a STAC item (bad JSON: {e})")))?;
        Self::from_json(location, json)
    }

    /// An item from its JSON, checking it is a STAC item with assets.
    pub fn from_json(location: &str, json: Value) -> Result<StacItem> {
        let is_feature = json.get("type").and_then(Value::as_str) == Some("Feature");
        if !is_feature || !json.get("assets").is_some_and(Value::is_object) {
            return Err(Error::input(
                location,
                "not a STAC item (expected a GeoJSON Feature with \"assets\")",
            ));
        }
        Ok(StacItem {
            location: location.to_string(),
            json,
        })
    }

    pub fn id(&self) -> &str {
        self.json.get("id").and_then(Value::as_str).unwrap_or("")
    }

    pub fn property(&self, key: &str) -> Option<&Value> {
        self.json.get("properties")?.get(key)
    }

    /// Acquisition date, YYYY-MM-DD.
    pub fn date(&self) -> Option<String> {
        let dt = self
            .property("datetime")
            .and_then(Value::as_str)
            .or_else(|| self.property("start_datetime").and_then(Value::as_str))?;
        (dt.len() >= 10).then(|| dt[..10].to_string())
    }

    /// Scene cloud cover in percent (`eo:cloud_cover`).
    pub fn cloud_cover(&self) -> Option<f64> {
        self.property("eo:cloud_cover").and_then(Value::as_f64)
    }

    /// The MGRS tile, e.g. `34RGM`: from the `mgrs:` properties, else
    /// `s2:mgrs_tile`, else the first tile-shaped token of the id.
    pub fn tile(&self) -> Option<String> {
        let zone = self.property("mgrs:utm_zone").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let band = self.property("mgrs:latitude_band").and_then(Value::as_str);
        let square = self.property("mgrs:grid_square").and_then(Value::as_str);
        if let (Some(z), Some(b), Some(s)) = (zone, band, square) {
            return Some(format!("{z:02}{b}{s}"));
        }
        if let Some(t) = self.property("s2:mgrs_tile").and_then(Value::as_str) {
            return Some(t.trim_start_matches('T').to_string());
        }
        tile_in_name(self.id())
    }

    /// Processing level (L1C, L2A) when the item tells.
    pub fn level(&self) -> Option<String> {
        let pt = self
            .property("s2:product_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let coll = self
            .json
            .get("collection")
            .and_then(Value::as_str)
            .unwrap_or("");
        let hay = format!("{pt} {coll} {}", self.id()).to_ascii_uppercase();
        if hay.contains("S2MSI2A") || hay.contains("L2A") {
            Some("L2A".into())
        } else if hay.contains("L1C") || hay.contains("S2MSI1C") {
            Some("L1C".into())
        } else {
            None
        }
    }

    /// `s2:processing_baseline` as a number (`"04.00"` -> 4.0).
    pub fn processing_baseline(&self) -> Option<f64> {
        let v = self.property("s2:processing_baseline")?;
        v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
    }

    /// The item's own URL: its `self` link, else where it was read from
    /// when that is a URL.
    pub fn self_href(&self) -> Option<String> {
        let links = self.json.get("links").and_then(Value::as_array);
        let from_link = links.and_then(|ls| {
            ls.iter().find_map(|l| {
                (l.get("rel")?.as_str()? == "self")
                    .then(|| l.get("href")?.as_str().map(str::to_string))?
            })
        });
        from_link
            .filter(|h| http::is_url(h))
            .or_else(|| http::is_url(&self.location).then(|| self.location.clone()))
    }

    /// A GDAL path for an asset href: `/vsicurl/` for http(s), `/vsis3/`
    /// for s3, relative hrefs resolved against the item's location.
    pub fn gdal_path(&self, href: &str) -> String {
        gdal_path(href, &self.location)
    }

    /// The assets that carry Sentinel-2 bands and the scene classification,
    /// by band: `(key, href)`. GeoTIFF assets are preferred over JPEG2000
    /// copies (Earth Search's `*-jp2` keys).
    pub fn band_assets(&self) -> (BTreeMap<Band, Asset>, Option<Asset>) {
        let mut bands: BTreeMap<Band, (bool, String, String)> = BTreeMap::new();
        let mut scl: Option<(bool, String, String)> = None;
        let Some(assets) = self.json.get("assets").and_then(Value::as_object) else {
            return (BTreeMap::new(), None);
        };
        for (key, asset) in assets {
            let Some(href) = asset.get("href").and_then(Value::as_str) else {
                continue;
            };
            let media = asset.get("type").and_then(Value::as_str).unwrap_or("");
            let jp2 = media.contains("jp2")
                || href.to_ascii_lowercase().ends_with(".jp2")
                || key.ends_with("-jp2");
            let base = key.strip_suffix("-jp2").unwrap_or(key);
            let tiff = !jp2;
            let entry = (tiff, key.clone(), href.to_string());
            if base.eq_ignore_ascii_case("scl") {
                if scl.as_ref().is_none_or(|(t, _, _)| tiff && !*t) {
                    scl = Some(entry);
                }
            } else if let Some(b) = band_of_key(base) {
                if bands.get(&b).is_none_or(|(t, _, _)| tiff && !*t) {
                    bands.insert(b, entry);
                }
            }
        }
        (
            bands
                .into_iter()
                .map(|(b, (_, k, h))| (b, (k, h)))
                .collect(),
            scl.map(|(_, k, h)| (k, h)),
        )
    }

    /// How the digital numbers of asset `key` become reflectance: its
    /// `raster:bands` scale and offset, else the processing baseline rule.
    pub fn scaling(&self, key: &str) -> (f64, f64) {
        let rb = self
            .json
            .get("assets")
            .and_then(|a| a.get(key))
            .and_then(|a| a.get("raster:bands"))
            .and_then(Value::as_array)
            .and_then(|v| v.first());
        let scale = rb.and_then(|r| r.get("scale")).and_then(Value::as_f64);
        let offset = rb.and_then(|r| r.get("offset")).and_then(Value::as_f64);
        match scale {
            Some(s) if s > 0.0 => {
                let o = offset.unwrap_or(0.0);
                (near_whole(o / s), near_whole(1.0 / s))
            }
            _ => {
                let add = if self.processing_baseline().is_some_and(|b| b >= 4.0) {
                    -1000.0
                } else {
                    0.0
                };
                (add, 10000.0)
            }
        }
    }

    /// The item as a scene of band files GDAL can open.
    pub fn to_scene(&self) -> Result<Scene> {
        let (assets, scl) = self.band_assets();
        if assets.is_empty() {
            return Err(Error::input(
                &self.location,
                "STAC item has no Sentinel-2 band assets (expected keys such as red, nir, swir16 or B04)",
            ));
        }
        let mut bands = BTreeMap::new();
        for (b, (key, href)) in &assets {
            let (add_offset, quantification) = self.scaling(key);
            bands.insert(
                *b,
                BandFile {
                    path: self.gdal_path(href),
                    index: 1,
                    add_offset,
                    quantification,
                },
            );
        }
        let scl = scl.map(|(_, href)| BandFile {
            path: self.gdal_path(&href),
            index: 1,
            add_offset: 0.0,
            quantification: 1.0,
        });
        if bands
            .values()
            .chain(scl.iter())
            .any(|f| f.path.starts_with("/vsi"))
        {
            http::configure_remote_reads();
        }
        Ok(Scene {
            source: PathBuf::from(&self.location),
            form: SceneForm::StacItem,
            bands,
            scl,
            date: self.date(),
            level: self.level(),
        })
    }
}

/// Opens a STAC item (file or URL) as a scene.
pub fn open_stac_item(path: &Path) -> Result<Scene> {
    StacItem::load(&path.to_string_lossy())?.to_scene()
}

/// Drops a leading `URL: ` from an HTTP error already naming the URL (the
/// error type names it).
fn strip_url(msg: &str, url: &str) -> String {
    msg.strip_prefix(url)
        .map(|m| m.trim_start_matches(':').trim().to_string())
        .unwrap_or_else(|| msg.to_string())
}

/// Rounds away the float noise of `1 / 0.0001` and `-0.1 / 0.0001`.
fn near_whole(x: f64) -> f64 {
    if (x - x.round()).abs() < 1e-6 * x.abs().max(1.0) {
        x.round()
    } else {
        x
    }
}

/// The band an asset key stands for: Earth Search common names or band ids.
pub fn band_of_key(key: &str) -> Option<Band> {
    let k = key.to_ascii_lowercase();
    let b = match k.as_str() {
        "coastal" => Band::B01,
        "blue" => Band::B02,
        "green" => Band::B03,
        "red" => Band::B04,
        "rededge1" => Band::B05,
        "rededge2" => Band::B06,
        "rededge3" => Band::B07,
        "nir" => Band::B08,
        "nir08" => Band::B8A,
        "nir09" => Band::B09,
        "cirrus" => Band::B10,
        "swir16" => Band::B11,
        "swir22" => Band::B12,
        _ if k.len() == 3 => return Band::parse(&k),
        _ => return None,
    };
    Some(b)
}

/// A GDAL path for `href` found in an item read from `location`.
pub fn gdal_path(href: &str, location: &str) -> String {
    if http::is_url(href) {
        return format!("/vsicurl/{href}");
    }
    if let Some(rest) = href.strip_prefix("s3://") {
        return format!("/vsis3/{rest}");
    }
    if let Some(rest) = href.strip_prefix("file://") {
        return rest.to_string();
    }
    if href.starts_with("/vsi") || Path::new(href).is_absolute() {
        return href.to_string();
    }
    let location = location.strip_prefix("/vsicurl/").unwrap_or(location);
    if http::is_url(location) {
        return format!("/vsicurl/{}", join_url(location, href));
    }
    let dir = Path::new(location).parent().unwrap_or(Path::new(""));
    dir.join(href.strip_prefix("./").unwrap_or(href))
        .to_string_lossy()
        .into_owned()
}

/// `href` relative to the document at `base` (RFC 3986 merge for the
/// `./`, `../` and plain names STAC items use).
pub fn join_url(base: &str, href: &str) -> String {
    if http::is_url(href) {
        return href.to_string();
    }
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let origin = &base[..host_end];
    if let Some(abs) = href.strip_prefix('/') {
        return format!("{origin}/{abs}");
    }
    let path = &base[host_end..];
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop(); // the document's own name
    for seg in href.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    let joined = if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    };
    format!("{origin}{joined}")
}

/// The first MGRS tile token of a product or item name: `34RGM` in
/// `S2B_34RGM_20240105_0_L2A` or `T34RGM` in SAFE names.
pub fn tile_in_name(name: &str) -> Option<String> {
    name.split(['_', '.', '-']).find_map(|t| {
        let t = t.strip_prefix('T').filter(|r| r.len() == 5).unwrap_or(t);
        let b = t.as_bytes();
        let ok = b.len() == 5
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2..].iter().all(|c| c.is_ascii_uppercase());
        ok.then(|| t.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(props: Value, assets: Value) -> StacItem {
        StacItem::from_json(
            "https://example.test/v1/collections/sentinel-2-l2a/items/S2B_34RGM_20240105_0_L2A",
            json!({"type": "Feature", "id": "S2B_34RGM_20240105_0_L2A", "properties": props, "assets": assets, "links": []}),
        )
        .unwrap()
    }

    #[test]
    fn earth_search_keys_and_baseline_04_offsets() {
        let it = item(
            json!({"datetime": "2024-01-05T08:32:41.024000Z", "s2:processing_baseline": "05.10",
                   "mgrs:utm_zone": 34, "mgrs:latitude_band": "R", "mgrs:grid_square": "GM",
                   "s2:product_type": "S2MSI2A", "eo:cloud_cover": 1.5}),
            json!({
                "red": {"href": "https://b.test/T34RGM/B04.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                        "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]},
                "red-jp2": {"href": "s3://b/T34RGM/B04.jp2", "type": "image/jp2"},
                "nir08": {"href": "./B8A.tif", "raster:bands": [{"scale": 0.0001, "offset": -0.1}]},
                "scl": {"href": "https://b.test/T34RGM/SCL.tif"},
                "B12": {"href": "../B12.tif"},
                "visual": {"href": "https://b.test/T34RGM/TCI.tif"},
                "thumbnail": {"href": "https://b.test/T34RGM/thumb.jpg"}
            }),
        );
        let s = it.to_scene().unwrap();
        assert_eq!(s.form, SceneForm::StacItem);
        assert_eq!(s.bands.len(), 3);
        let red = &s.bands[&Band::B04];
        assert_eq!(red.path, "/vsicurl/https://b.test/T34RGM/B04.tif");
        // reflectance = DN * 0.0001 - 0.1 = (DN - 1000) / 10000, exactly.
        assert_eq!((red.add_offset, red.quantification), (-1000.0, 10000.0));
        assert_eq!(
            s.bands[&Band::B8A].path,
            "/vsicurl/https://example.test/v1/collections/sentinel-2-l2a/items/B8A.tif"
        );
        // No raster:bands: the baseline (05.10 >= 04.00) sets the offset.
        let b12 = &s.bands[&Band::B12];
        assert_eq!(
            b12.path,
            "/vsicurl/https://example.test/v1/collections/sentinel-2-l2a/B12.tif"
        );
        assert_eq!((b12.add_offset, b12.quantification), (-1000.0, 10000.0));
        let scl = s.scl.unwrap();
        assert_eq!(scl.path, "/vsicurl/https://b.test/T34RGM/SCL.tif");
        assert_eq!(scl.quantification, 1.0);
        assert_eq!(s.date.as_deref(), Some("2024-01-05"));
        assert_eq!(s.level.as_deref(), Some("L2A"));
        assert_eq!(it.tile().as_deref(), Some("34RGM"));
        assert_eq!(it.cloud_cover(), Some(1.5));
    }

    #[test]
    fn older_baselines_have_no_offset() {
        let it = item(
            json!({"datetime": "2021-06-01T10:00:00Z", "s2:processing_baseline": "03.00"}),
            json!({"B04": {"href": "https://b.test/B04.tif"}, "SCL": {"href": "https://b.test/SCL.tif"}}),
        );
        let s = it.to_scene().unwrap();
        let f = &s.bands[&Band::B04];
        assert_eq!((f.add_offset, f.quantification), (0.0, 10000.0));
        assert!(s.scl.is_some());
        assert_eq!(it.tile().as_deref(), Some("34RGM"));
    }

    #[test]
    fn no_band_assets_is_an_error_naming_the_item() {
        let it = item(json!({}), json!({"thumbnail": {"href": "a.jpg"}}));
        let e = it.to_scene().unwrap_err().to_string();
        assert!(e.starts_with("https://example.test/"), "{e}");
        assert!(StacItem::from_json("x.json", json!({"type": "FeatureCollection"})).is_err());
    }

    #[test]
    fn hrefs_resolve_against_the_item() {
        assert_eq!(
            gdal_path("B04.tif", "/data/items/a.json"),
            "/data/items/B04.tif"
        );
        assert_eq!(gdal_path("/abs/B04.tif", "http://h/a.json"), "/abs/B04.tif");
        assert_eq!(
            gdal_path("s3://bucket/k/B04.tif", "x.json"),
            "/vsis3/bucket/k/B04.tif"
        );
        assert_eq!(
            join_url("http://h:8/a/b/item.json", "../c/B04.tif"),
            "http://h:8/a/c/B04.tif"
        );
        assert_eq!(
            join_url("http://h:8/a/b/item.json", "/root.tif"),
            "http://h:8/root.tif"
        );
        assert_eq!(
            tile_in_name("S2A_MSIL2A_20240105T083241_N0510_R021_T34RGM_20240105T112233"),
            Some("34RGM".into())
        );
    }
}
