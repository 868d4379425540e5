//! `dunewatch tiles` and `dunewatch places`.

use anyhow::{bail, Context, Result};
use clap::Args;
use dunewatch::scenes::area::{parse_lat_lon, Area};
use dunewatch::scenes::{mgrs, places, tiles};
use std::path::PathBuf;

/// List the Sentinel-2 tiles whose footprint covers an area: tile id, UTM
/// EPSG code and the share of the area inside the tile.
///
/// Tiles are 109.8 km squares on the MGRS 100 km grid, so they overlap: a
/// place near a tile edge, a UTM zone edge or a latitude-band edge is in
/// several tiles, and all are listed (a square that straddles a band edge
/// is a tile under both band letters). The area is a place or region name
/// (see `dunewatch places`), a vector file, or a point.
///
/// Examples:
///   dunewatch tiles Kufra
///   dunewatch tiles --point 24.178,23.314
///   dunewatch tiles --aoi sample_tiles/abudhabi/aoi.geojson --geojson footprints.geojson
///   dunewatch tiles --region southern-libya
///   dunewatch tiles --list-places
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct TilesArgs {
    /// A preset place or region name, a vector file, or LAT,LON.
    #[arg(value_name = "AREA", conflicts_with_all = ["point", "aoi", "place", "region"])]
    pub area: Option<String>,
    /// A point, as LAT,LON in decimal degrees (e.g. 24.178,23.314).
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    pub point: Option<String>,
    /// Area of interest: GeoJSON or any OGR vector file.
    #[arg(long, value_name = "FILE")]
    pub aoi: Option<PathBuf>,
    /// A preset place (name, alias or ICAO code).
    #[arg(long)]
    pub place: Option<String>,
    /// A preset region (e.g. southern-libya): the tiles to watch.
    #[arg(long)]
    pub region: Option<String>,
    /// Half-side in km of the box around a place or point (default: 10 for
    /// a place, 0 for --point: the point itself).
    #[arg(long)]
    pub buffer_km: Option<f64>,
    /// Write the footprints (and the area) as GeoJSON (RFC 7946).
    #[arg(long, value_name = "FILE")]
    pub geojson: Option<PathBuf>,
    /// List the preset regions and places instead.
    #[arg(long)]
    pub list_places: bool,
}

/// List the preset regions and named places (with coordinates, source and
/// licence) that `--aoi`, `tiles` and the default watchlist accept.
///
/// Examples:
///   dunewatch places
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct PlacesArgs {}

fn area_of(a: &TilesArgs) -> Result<Area> {
    let given = [
        a.area.is_some(),
        a.point.is_some(),
        a.aoi.is_some(),
        a.place.is_some(),
        a.region.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => bail!(
            "name an area: a place or region, --point LAT,LON, --aoi FILE, --place or --region"
        ),
        1 => {}
        _ => bail!("give one area: a name, --point, --aoi, --place or --region"),
    }
    let buffer = |default: f64| a.buffer_km.unwrap_or(default);
    if let Some(p) = &a.point {
        let (lat, lon) = parse_lat_lon(p)
            .with_context(|| format!("--point {p}: expected LAT,LON, e.g. 24.178,23.314"))??;
        return Ok(Area::around_point(lat, lon, buffer(0.0))?);
    }
    if let Some(f) = &a.aoi {
        return Ok(Area::from_file(f)?);
    }
    if let Some(r) = &a.region {
        let Some(r) = places::find_region(r) else {
            bail!("--region {r}: no such preset region (`dunewatch places` lists them)");
        };
        return Ok(r.area());
    }
    if let Some(p) = &a.place {
        if places::find_place(p).is_none() {
            bail!("--place {p}: no such preset place (`dunewatch places` lists them)");
        }
        return Ok(Area::resolve(p, buffer(10.0))?);
    }
    let spec = a.area.as_deref().expect("counted");
    let zero_for_points = if parse_lat_lon(spec).is_some() {
        0.0
    } else {
        10.0
    };
    Ok(Area::resolve(spec, buffer(zero_for_points))?)
}

pub fn run(a: &TilesArgs) -> Result<()> {
    if a.list_places {
        return list_places();
    }
    let area = area_of(a)?;
    let covers = tiles::covering(&area)?;
    println!("area: {}", area.describe());
    let [w, s, e, n] = area.bbox();
    let (clat, clon) = ((s + n) / 2.0, (w + e) / 2.0);
    if let Some(m) = mgrs::to_mgrs(clat, clon, 5) {
        println!("centre: {clat:.5},{clon:.5} = MGRS {m}");
    }
    if covers.is_empty() {
        bail!("{}: no Sentinel-2 tile covers it", area.describe());
    }
    println!("{:<7} {:<6} {:>8}", "tile", "epsg", "share");
    for c in &covers {
        println!("{:<7} {:<6} {:>7.2}%", c.tile.id, c.epsg, c.share * 100.0);
    }
    if let Some(path) = &a.geojson {
        let mut fc = tiles::footprints_geojson(&covers);
        if area.as_point().is_none() {
            fc["features"]
                .as_array_mut()
                .expect("features")
                .push(serde_json::json!({
                    "type": "Feature",
                    "properties": {"area": area.describe()},
                    "geometry": area.geometry(),
                }));
        }
        write_atomically(path, &serde_json::to_string_pretty(&fc)?)?;
        println!("footprints: {}", path.display());
    }
    Ok(())
}

/// Writes to a temporary name beside `path`, then renames: no half-written file.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

pub fn run_places(_: &PlacesArgs) -> Result<()> {
    list_places()
}

fn list_places() -> Result<()> {
    for r in places::regions() {
        println!(
            "region {}: {} (source: {}; licence {})",
            r.name, r.title, r.source, r.licence
        );
        println!(
            "  {:<6} {:<32} {:>9} {:>9}  aliases",
            "icao", "name", "lat", "lon"
        );
        for p in r.places() {
            println!(
                "  {:<6} {:<32} {:>9.4} {:>9.4}  {}",
                p.icao.as_deref().unwrap_or("-"),
                p.name,
                p.lat,
                p.lon,
                p.aliases.join(", ")
            );
        }
        if let Some(p) = r.places().first() {
            println!("  places: source {}; licence {}", p.source, p.licence);
        }
    }
    Ok(())
}
