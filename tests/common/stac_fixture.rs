//! Remote scenes for tests: COGs made from the sample tiles, STAC items
//! written the way Earth Search writes its Sentinel-2 items, and the real
//! servers of `scripts/test_servers.sh` (nginx with range requests, `rustac
//! serve`), stopped by a guard even when the test fails.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::scenes::root;

/// Earth Search asset keys of the bands, with their band ids and native GSD.
pub const ASSETS: [(&str, &str, u32); 13] = [
    ("coastal", "B01", 60),
    ("blue", "B02", 10),
    ("green", "B03", 10),
    ("red", "B04", 10),
    ("rededge1", "B05", 20),
    ("rededge2", "B06", 20),
    ("rededge3", "B07", 20),
    ("nir", "B08", 10),
    ("nir08", "B8A", 20),
    ("nir09", "B09", 60),
    ("cirrus", "B10", 60),
    ("swir16", "B11", 20),
    ("swir22", "B12", 20),
];

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The servers of `scripts/test_servers.sh` over `dir`, stopped on drop.
pub struct Servers {
    pub dir: PathBuf,
    pub nginx_port: u16,
    pub stac_port: u16,
}

impl Servers {
    /// Starts nginx over `dir/www` (and rustac over `dir/stac/*.json` when
    /// that folder exists) on the given ports.
    pub fn start(dir: &Path, nginx_port: u16, stac_port: u16) -> Servers {
        let s = Servers {
            dir: dir.to_path_buf(),
            nginx_port,
            stac_port,
        };
        let out = Command::new("bash")
            .arg(root().join("scripts/test_servers.sh"))
            .arg("start")
            .arg(dir)
            .arg(nginx_port.to_string())
            .arg(stac_port.to_string())
            .output()
            .expect("run scripts/test_servers.sh");
        assert!(
            out.status.success(),
            "test_servers.sh start failed (run scripts/setup-tests.sh for nginx and rustac): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/test_servers.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }

    pub fn www(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    /// The URL of a file nginx serves from `www/`, by its name.
    pub fn url_of(&self, p: &Path) -> String {
        format!(
            "{}/{}",
            self.www(),
            p.file_name().unwrap().to_str().unwrap()
        )
    }

    pub fn stac(&self) -> String {
        format!("http://127.0.0.1:{}", self.stac_port)
    }

    /// nginx's access log: (method, uri, status, bytes, range) per request.
    pub fn requests(&self) -> Vec<(String, String, u16, u64, String)> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.splitn(5, ' ');
                Some((
                    f.next()?.to_string(),
                    f.next()?.to_string(),
                    f.next()?.parse().ok()?,
                    f.next()?.parse().ok()?,
                    f.next().unwrap_or("").to_string(),
                ))
            })
            .collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a COG of every band of sample scene folder `src` into `dst` as
/// `Bxx.tif` (256 px tiles, so a window reads some of a file's tiles).
pub fn make_cogs(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for (_, id, _) in ASSETS {
        let from = crate::scenes::band_file(src, id);
        let to = dst.join(format!("{id}.tif"));
        let out = Command::new("gdal_translate")
            .args([
                "-q",
                "-of",
                "COG",
                "-co",
                "BLOCKSIZE=256",
                "-co",
                "COMPRESS=DEFLATE",
            ])
            .arg(&from)
            .arg(&to)
            .output()
            .expect("run gdal_translate");
        assert!(
            out.status.success(),
            "gdal_translate {}: {}",
            from.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What an item says about its acquisition.
pub struct ItemInfo<'a> {
    pub id: &'a str,
    pub datetime: &'a str,
    /// (UTM zone, latitude band, grid square)
    pub mgrs: (u32, &'a str, &'a str),
    pub cloud: f64,
    pub baseline: &'a str,
    pub collection: &'a str,
}

/// A STAC item laid out as Earth Search writes its Sentinel-2 items: assets
/// keyed by common name with `raster:bands` (scale 0.0001, and offset -0.1
/// from processing baseline 04.00), `proj:` members, `eo:cloud_cover`,
/// `mgrs:` and `s2:` properties, and geometry and bbox in lon/lat (the
/// footprint of `cog_dir`'s B04). Asset hrefs are `href_base/Bxx.tif`.
pub fn item(info: &ItemInfo, cog_dir: &Path, href_base: &str) -> Value {
    let ds = gdal::Dataset::open(cog_dir.join("B04.tif")).unwrap();
    let gt = ds.geo_transform().unwrap();
    let (w, h) = ds.raster_size();
    let (w0, n0) = (gt[0], gt[3]);
    let (e0, s0) = (gt[0] + gt[1] * w as f64, gt[3] + gt[5] * h as f64);
    let epsg = 4326; // the sample tiles are in lon/lat
    let b = info.baseline.parse::<f64>().unwrap();
    let offset = if b >= 4.0 { -0.1 } else { 0.0 };
    let mut assets = serde_json::Map::new();
    for (key, id, gsd) in ASSETS {
        let d = gdal::Dataset::open(cog_dir.join(format!("{id}.tif"))).unwrap();
        let (aw, ah) = d.raster_size();
        let t = d.geo_transform().unwrap();
        assets.insert(
            key.to_string(),
            json!({
                "href": format!("{href_base}/{id}.tif"),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": format!("{key} ({id})"),
                "eo:bands": [{"name": id, "common_name": key}],
                "gsd": gsd,
                "proj:shape": [ah, aw],
                "proj:transform": [t[1], t[2], t[0], t[4], t[5], t[3]],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                  "spatial_resolution": gsd, "scale": 0.0001, "offset": offset}],
                "roles": ["data", "reflectance"]
            }),
        );
        // Earth Search also lists the JPEG2000 originals; they must be passed over.
        assets.insert(
            format!("{key}-jp2"),
            json!({"href": format!("{href_base}/{id}.jp2"), "type": "image/jp2", "roles": ["data"]}),
        );
    }
    assets.insert(
        "thumbnail".into(),
        json!({"href": format!("{href_base}/thumb.jpg"), "type": "image/jpeg", "roles": ["thumbnail"]}),
    );
    let (zone, band, square) = info.mgrs;
    json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json"
        ],
        "id": info.id,
        "collection": info.collection,
        "bbox": [w0, s0, e0, n0],
        "geometry": {"type": "Polygon", "coordinates": [[[w0, n0], [w0, s0], [e0, s0], [e0, n0], [w0, n0]]]},
        "properties": {
            "datetime": info.datetime,
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": info.cloud,
            "proj:epsg": epsg,
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": band,
            "mgrs:grid_square": square,
            "grid:code": format!("MGRS-{zone}{band}{square}"),
            "s2:processing_baseline": info.baseline,
            "s2:product_type": "S2MSI1C"
        },
        "links": [],
        "assets": assets
    })
}

/// The OSCD Abu Dhabi pair as served: COGs in `www/before` and
/// `www/after`, items `www/before.json` and `www/after.json` whose hrefs
/// point at `http://127.0.0.1:<port>/<prefix>before/...`.
pub fn abudhabi_site(dir: &Path, port: u16, prefix: &str) -> (PathBuf, PathBuf) {
    let www = dir.join("www");
    let base = format!("http://127.0.0.1:{port}/{prefix}");
    let mut out = Vec::new();
    for (side, src, info) in [
        ("before", crate::scenes::sample_before(), BEFORE),
        ("after", crate::scenes::sample_after(), AFTER),
    ] {
        let cogs = www.join(side);
        if !cogs.join("B04.tif").is_file() {
            make_cogs(&src, &cogs);
        }
        let it = item(&info, &cogs, &format!("{base}{side}"));
        let p = www.join(format!("{prefix}{side}.json").replace('/', "-"));
        std::fs::write(&p, serde_json::to_vec_pretty(&it).unwrap()).unwrap();
        out.push(p);
    }
    (out[0].clone(), out[1].clone())
}

pub const BEFORE: ItemInfo<'static> = ItemInfo {
    id: "S2A_39QZG_20160120_0_L1C",
    datetime: "2016-01-20T07:06:12.000000Z",
    mgrs: (39, "Q", "ZG"),
    cloud: 3.1,
    baseline: "02.01",
    collection: "sentinel-2-l1c",
};

pub const AFTER: ItemInfo<'static> = ItemInfo {
    id: "S2B_40QBM_20180328_0_L1C",
    datetime: "2018-03-28T06:59:19.000000Z",
    mgrs: (40, "Q", "BM"),
    cloud: 0.4,
    baseline: "02.06",
    collection: "sentinel-2-l1c",
};

/// A GeoJSON polygon (lon/lat) written to `path`.
/// Writes `<dir>/stac/<name>`, a file `rustac serve` serves.
pub fn write_catalogue(dir: &Path, name: &str, v: &Value) {
    std::fs::create_dir_all(dir.join("stac")).unwrap();
    std::fs::write(dir.join("stac").join(name), v.to_string()).unwrap();
}

pub fn write_aoi(path: &Path, w: f64, s: f64, e: f64, n: f64) {
    let g = json!({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}]});
    std::fs::write(path, g.to_string()).unwrap();
}

/// Every file under `dir` (relative paths), sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}
