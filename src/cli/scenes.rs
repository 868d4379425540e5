//! `dunewatch scenes`.

use anyhow::{Context, Result};
use clap::Args;
use dunewatch::scenes::aoi_cloud::aoi_cloud;
use dunewatch::scenes::area::{parse_bbox, parse_lat_lon, Area, Origin};
use dunewatch::scenes::search::{suggest_pair, Candidate};
use dunewatch::scenes::stac::{self, SearchRequest};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The area a command is about: --aoi (a file, a preset place or region,
/// or LAT,LON), --point or --bbox.
#[derive(Args, Debug, Clone)]
pub struct AreaArgs {
    /// Area of interest: a vector file (GeoJSON or any OGR format), a preset
    /// place (name, alias or ICAO code: a box of half-side --buffer-km
    /// around it), a preset region (e.g. southern-libya), or LAT,LON (see
    /// `dunewatch places`).
    #[arg(
        long,
        value_name = "FILE|PLACE|REGION|LAT,LON",
        allow_hyphen_values = true
    )]
    pub aoi: Option<String>,
    /// Area as a point in degrees, latitude first, with --buffer-km around it.
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    pub point: Option<String>,
    /// Area as a box in degrees: W,S,E,N (e.g. 23.25,24.12,23.38,24.24).
    #[arg(long, value_name = "W,S,E,N", allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Half the side of the box around a place or point, in km.
    #[arg(long, default_value_t = 10.0)]
    pub buffer_km: f64,
}

impl AreaArgs {
    pub fn area(&self) -> Result<Area> {
        let given = [
            self.bbox.is_some(),
            self.point.is_some(),
            self.aoi.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        anyhow::ensure!(
            given == 1,
            "give the area with exactly one of --aoi FILE|PLACE|REGION|LAT,LON, \
             --point LAT,LON or --bbox W,S,E,N"
        );
        if let Some(b) = &self.bbox {
            let b = parse_bbox(b).with_context(|| {
                format!("--bbox {b}: expected W,S,E,N, e.g. 23.25,24.12,23.38,24.24")
            })??;
            return Ok(Area::from_bbox(b));
        }
        if let Some(p) = &self.point {
            anyhow::ensure!(
                parse_lat_lon(p).is_some(),
                "--point {p}: expected LAT,LON, e.g. 24.178,23.314"
            );
            return Ok(Area::resolve(p, self.buffer_km)?);
        }
        Ok(Area::resolve(
            self.aoi.as_deref().expect("counted"),
            self.buffer_km,
        )?)
    }
}

/// Search a STAC API for Sentinel-2 items over an area and a date range,
/// list them (id, date, tile, scene cloud cover, share of the area covered,
/// and with --aoi-cloud the cloud over the area itself from the SCL band:
/// its window only is read, and only the pixels inside the area's polygons
/// count), and suggest the clearest before/after
/// pair near the --from and --to dates. --pairs writes that pair as the CSV
/// `dunewatch batch` reads (items by URL; the area as aoi).
///
/// The default catalogue is Earth Search (Sentinel-2 L2A COGs on AWS); any
/// STAC API with item search works (--stac, --collection).
///
/// Examples:
///   dunewatch scenes --aoi Kufra --from 2024-03-01 --to 2024-09-30 --max-cloud 20
///   dunewatch scenes --aoi "Maaten al-Sarra" --buffer-km 5 --from 2024-01-01 --to 2024-06-30
///   dunewatch scenes --point 24.178,23.314 --from 2024-03-01 --to 2024-09-30 --aoi-cloud --pairs kufra.csv
///   dunewatch scenes --aoi kufra.geojson --from 2024-03-01 --to 2024-09-30
///   dunewatch batch kufra.csv --out out/kufra
///   dunewatch scenes --aoi kufra.geojson --from 2024-01-01 --to 2024-12-31 --max-cloud 10 --items kufra-items.csv
///   dunewatch watch kufra-items.csv --register kufra.gpkg --out out/kufra
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ScenesArgs {
    #[command(flatten)]
    pub area: AreaArgs,
    /// First acquisition date, YYYY-MM-DD.
    #[arg(long)]
    pub from: Option<String>,
    /// Last acquisition date, YYYY-MM-DD.
    #[arg(long)]
    pub to: Option<String>,
    /// Largest scene cloud cover, in percent.
    #[arg(long)]
    pub max_cloud: Option<f64>,
    /// STAC API root URL.
    #[arg(long, default_value = stac::EARTH_SEARCH)]
    pub stac: String,
    /// Collection to search.
    #[arg(long, default_value = stac::DEFAULT_COLLECTION)]
    pub collection: String,
    /// Most items listed.
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Also measure the cloud over the area itself from each item's SCL
    /// band: the share of its valid pixels inside the area's polygons that
    /// are cloud, cirrus or cloud shadow (reads the area's window of every
    /// item; L2A only).
    #[arg(long)]
    pub aoi_cloud: bool,
    /// Write the suggested pair as a batch CSV (name,before,after,aoi).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Write every listed item, oldest first, as a CSV
    /// (id,date,tile,cloud,covers,item,aoi) that `dunewatch watch` follows
    /// over time.
    #[arg(long, value_name = "FILE.csv")]
    pub items: Option<PathBuf>,
}

fn check_date(flag: &str, d: &Option<String>) -> Result<()> {
    if let Some(d) = d {
        anyhow::ensure!(
            dunewatch::scenes::search::day_number(d).is_some() && d.len() == 10,
            "{flag} {d:?}: expected a date as YYYY-MM-DD"
        );
    }
    Ok(())
}

pub fn run(a: &ScenesArgs) -> Result<()> {
    check_date("--from", &a.from)?;
    check_date("--to", &a.to)?;
    if let (Some(f), Some(t)) = (&a.from, &a.to) {
        anyhow::ensure!(f <= t, "--from {f} is after --to {t}");
    }
    let area = a.area.area()?;
    let req = SearchRequest {
        collections: vec![a.collection.clone()],
        intersects: area.geometry(),
        from: a.from.clone(),
        to: a.to.clone(),
        max_cloud: a.max_cloud,
        page_size: a.limit.clamp(1, 100),
        max_items: a.limit,
    };
    let items = stac::search(&a.stac, &req)?;
    let geom = gdal::vector::Geometry::from_geojson(&area.geometry().to_string())
        .with_context(|| format!("{}: not a valid area", area.describe()))?;
    let mut cands = items
        .into_iter()
        .map(|it| Candidate::new(it, &geom))
        .collect::<dunewatch::Result<Vec<_>>>()?;
    cands.sort_by(|x, y| {
        x.date
            .cmp(&y.date)
            .then_with(|| x.item.id().cmp(y.item.id()))
    });
    if a.aoi_cloud {
        for c in &mut cands {
            c.aoi_cloud = aoi_cloud(&c.item, &area)?;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "area: {}", area.describe())?;
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    if a.aoi_cloud {
        writeln!(
            out,
            "{:<40} {:<10} {:<6} {:>7} {:>8} {:>9}",
            "id", "date", "tile", "cloud%", "covers%", "aoicloud%"
        )?;
    } else {
        writeln!(
            out,
            "{:<40} {:<10} {:<6} {:>7} {:>8}",
            "id", "date", "tile", "cloud%", "covers%"
        )?;
    }
    for c in &cands {
        write!(
            out,
            "{:<40} {:<10} {:<6} {:>7} {:>8.1}",
            c.item.id(),
            c.date,
            c.tile,
            pct(c.cloud),
            100.0 * c.coverage
        )?;
        if a.aoi_cloud {
            write!(out, " {:>9}", pct(c.aoi_cloud))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{} item(s) from {}", cands.len(), a.stac)?;
    if let Some(p) = &a.items {
        anyhow::ensure!(!cands.is_empty(), "--items: no items found to write");
        write_items(p, &cands, &area)?;
        writeln!(out, "wrote {}", p.display())?;
    }
    let pair = suggest_pair(&cands, a.from.as_deref(), a.to.as_deref());
    match pair {
        Some((b, f)) => {
            let (b, f) = (&cands[b], &cands[f]);
            writeln!(
                out,
                "suggested pair: before {} ({}, cloud {}%), after {} ({}, cloud {}%)",
                b.item.id(),
                b.date,
                pct(b.aoi_cloud.or(b.cloud)),
                f.item.id(),
                f.date,
                pct(f.aoi_cloud.or(f.cloud))
            )?;
            if let Some(p) = &a.pairs {
                write_pairs(p, b, f, &area)?;
                writeln!(out, "wrote {}", p.display())?;
            }
        }
        None => {
            writeln!(out, "no before/after pair: fewer than two dates found")?;
            anyhow::ensure!(
                a.pairs.is_none(),
                "--pairs: no before/after pair to write (fewer than two dates found)"
            );
        }
    }
    Ok(())
}

/// Where a batch finds an item: its URL, else a copy of its JSON saved
/// beside the CSV.
fn item_ref(c: &Candidate, dir: &Path, stem: &str) -> Result<String> {
    if let Some(u) = c.item.self_href() {
        return Ok(u);
    }
    let name = format!("{stem}-{}.json", c.item.id().replace(['/', '\\'], "_"));
    let p = dir.join(&name);
    std::fs::write(&p, serde_json::to_vec_pretty(&c.item.json)?)
        .with_context(|| format!("{}: cannot write", p.display()))?;
    Ok(name)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The folder of a list file (made when missing), its stem, and the area
/// as the list names it: a file's absolute path, or a GeoJSON written
/// beside the list (`<stem>-aoi.geojson`) when the area was a place or point.
fn list_place(path: &Path, area: &Area, default_stem: &str) -> Result<(PathBuf, String, String)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(default_stem.into());
    let aoi = match &area.origin {
        Origin::File(f) => std::fs::canonicalize(f)
            .unwrap_or_else(|_| f.clone())
            .to_string_lossy()
            .into_owned(),
        _ => {
            let name = format!("{stem}-aoi.geojson");
            let p = dir.join(&name);
            dunewatch::export::write_file_atomic(&p, area.to_geojson().to_string().as_bytes())?;
            name
        }
    };
    Ok((dir, stem, aoi))
}

/// Writes the pair CSV (and the area as GeoJSON beside it when it was not
/// a file), each through a temporary name.
fn write_pairs(path: &Path, b: &Candidate, f: &Candidate, area: &Area) -> Result<()> {
    let (dir, stem, aoi) = list_place(path, area, "pairs")?;
    let dir = dir.as_path();
    let name = format!("{}_{}_{}", b.tile, b.date, f.date)
        .trim_start_matches('_')
        .to_string();
    let row = [
        name,
        item_ref(b, dir, &stem)?,
        item_ref(f, dir, &stem)?,
        aoi,
    ]
    .iter()
    .map(|s| csv_field(s))
    .collect::<Vec<_>>()
    .join(",");
    let text = format!("name,before,after,aoi\n{row}\n");
    dunewatch::export::write_file_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Writes every item as the CSV `watch` reads (id,date,tile,cloud,covers,
/// item,aoi; the area as GeoJSON beside it when it was not a file), through
/// a temporary name.
fn write_items(path: &Path, cands: &[Candidate], area: &Area) -> Result<()> {
    let (dir, stem, aoi) = list_place(path, area, "items")?;
    let dir = dir.as_path();
    let mut text = String::from("id,date,tile,cloud,covers,item,aoi\n");
    for c in cands {
        let row = [
            c.item.id().to_string(),
            c.date.clone(),
            c.tile.clone(),
            c.cloud.map_or(String::new(), |v| format!("{v:.1}")),
            format!("{:.1}", 100.0 * c.coverage),
            item_ref(c, dir, &stem)?,
            aoi.clone(),
        ];
        text.push_str(
            &row.iter()
                .map(|s| csv_field(s))
                .collect::<Vec<_>>()
                .join(","),
        );
        text.push('\n');
    }
    dunewatch::export::write_file_atomic(path, text.as_bytes())?;
    Ok(())
}
