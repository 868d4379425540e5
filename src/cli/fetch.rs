//! `dunewatch fetch`.

use crate::cli::scenes::AreaArgs;
use anyhow::Result;
use clap::Args;
use dunewatch::read::stac_item::StacItem;
use dunewatch::scenes::fetch::fetch_item;
use std::path::PathBuf;

/// Save an area's crops of STAC items for offline runs: every band asset
/// (and the SCL) read over the area plus 1200 m only (never the whole
/// tile) and saved as a sparse GeoTIFF on the asset's own grid that stores
/// only those tiles, and each item's JSON with its hrefs pointing at the
/// copies. `detect` on a saved item gives the same result as on the remote
/// one.
///
/// ITEMS are STAC item URLs or JSON files, or a pairs CSV written by
/// `dunewatch scenes --pairs` (its items are fetched, and a pairs.csv
/// naming the local copies is written into --out).
///
/// Examples:
///   dunewatch fetch https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_34RGM_20240105_0_L2A --aoi Kufra --out kufra-data
///   dunewatch fetch kufra.csv --aoi kufra.geojson --out kufra-data
///   dunewatch batch kufra-data/pairs.csv --out out/kufra
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct FetchArgs {
    /// STAC items (URLs or .json files) or a pairs CSV.
    #[arg(required = true)]
    pub items: Vec<String>,
    #[command(flatten)]
    pub area: AreaArgs,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &FetchArgs) -> Result<()> {
    let area = a.area.area()?;
    let mut csv_rows = Vec::new();
    let mut wanted: Vec<String> = Vec::new();
    for it in &a.items {
        if it.to_ascii_lowercase().ends_with(".csv") {
            let pairs = dunewatch::batch::read_pairs(std::path::Path::new(it))?;
            for p in pairs {
                let (b, f) = (
                    p.before.to_string_lossy().into_owned(),
                    p.after.to_string_lossy().into_owned(),
                );
                wanted.push(b.clone());
                wanted.push(f.clone());
                csv_rows.push((p.name, b, f));
            }
        } else {
            wanted.push(it.clone());
        }
    }
    let mut saved = std::collections::BTreeMap::new();
    for loc in &wanted {
        if saved.contains_key(loc) {
            continue;
        }
        let item = StacItem::load(loc)?;
        let p = fetch_item(&item, &area, &a.out)?;
        println!("{}: {}", item.id(), p.display());
        saved.insert(loc.clone(), p);
    }
    if !csv_rows.is_empty() {
        let aoi = a.out.join("aoi.geojson");
        std::fs::write(&aoi, area.to_geojson().to_string())?;
        let mut text = String::from("name,before,after,aoi\n");
        for (name, b, f) in csv_rows {
            let rel = |k: &String| saved[k].file_name().unwrap().to_string_lossy().into_owned();
            text.push_str(&format!("{name},{},{},aoi.geojson\n", rel(&b), rel(&f)));
        }
        let tmp = a.out.join(".pairs.csv.partial");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, a.out.join("pairs.csv"))?;
        println!("wrote {}", a.out.join("pairs.csv").display());
    }
    Ok(())
}
